/* test_config.c - the config loader: defaults, every error names file, line,
 * section and key. */
#include <glib.h>
#include <string.h>

#include "config.h"

struct bad_case {
	const char *label;
	const char *text;
	const char *want;   /* substring of the error */
};

static const struct bad_case bad_cases[] = {
	{ "unknown key", "[upstream]\nhost = x\n[proxy]\nfoo = 1\n", "t.conf:4: [proxy] foo: unknown key" },
	{ "unknown section", "[upstream]\nhost = x\n[nope]\na = 1\n", "t.conf:3: [nope]: unknown section" },
	{ "bad number", "[upstream]\nhost = x\n[proxy]\nmax_recipients = abc\n",
	  "t.conf:4: [proxy] max_recipients: not a number" },
	{ "out of range", "[upstream]\nhost = x\n[proxy]\nmax_recipients = 0\n",
	  "[proxy] max_recipients: 0 is out of range" },
	{ "bad enum", "[upstream]\nhost = x\ntls = maybe\n", "t.conf:3: [upstream] tls: 'maybe' is not one of starttls | tls | none" },
	{ "bad bool", "[upstream]\nhost = x\n[pgp]\nsign = perhaps\n", "t.conf:4: [pgp] sign: 'perhaps' is not yes or no" },
	{ "bad duration", "[upstream]\nhost = x\n[queue]\nlifetime = 3x\n", "t.conf:4: [queue] lifetime: not a duration" },
	{ "bad size", "[upstream]\nhost = x\n[proxy]\nmax_message_size = 10T\n", "[proxy] max_message_size: not a size" },
	{ "missing host", "[proxy]\nauth = none\n", "[upstream] host: required" },
	{ "tls none remote", "[upstream]\nhost = smtp.example.com\ntls = none\n",
	  "t.conf:3: [upstream] tls: 'none' is allowed only for a loopback host" },
	{ "public listener without auth", "[upstream]\nhost = x\n[proxy]\nlisten = 0.0.0.0:587\n",
	  "t.conf:4: [proxy] listen: 0.0.0.0 is not a loopback address and auth = none" },
	{ "bad listen", "[upstream]\nhost = x\n[proxy]\nlisten = 127.0.0.1\n", "[proxy] listen: '127.0.0.1': expected ADDR:PORT" },
	{ "bad listen option", "[upstream]\nhost = x\n[proxy]\nlisten = 127.0.0.1:25 ssl\n", "unknown listener option 'ssl'" },
	{ "both passwords", "[upstream]\nhost = x\npassword_file = /a\npassword_command = b\n",
	  "[upstream] password_command: set either password_file or password_command" },
	{ "username without password", "[upstream]\nhost = x\nusername = me\n", "[upstream] username: needs password_file" },
	{ "cert without key", "[upstream]\nhost = x\n[proxy]\ntls_cert = /a.crt\n", "[proxy] tls_key: tls_cert and tls_key go together" },
	{ "bad url", "[upstream]\nhost = x\n[link]\nbase_url = ftp://x/\n", "[link] base_url: 'ftp://x/' is not an http(s):// URL" },
	{ "outbox beyond loopback", "[upstream]\nhost = x\n[linkserver]\noutbox_listen = 0.0.0.0:8026\n",
	  "t.conf:4: [linkserver] outbox_listen: 0.0.0.0 is not a loopback address" },
	{ "outbox on a LAN address", "[upstream]\nhost = x\n[linkserver]\noutbox_listen = 192.168.1.5:8026\n",
	  "[linkserver] outbox_listen: 192.168.1.5 is not a loopback address" },
	{ "outbox on the viewer's port", "[upstream]\nhost = x\n[linkserver]\nlisten = 127.0.0.1:9000\n"
	  "outbox_listen = 127.0.0.2:9000\n", "[linkserver] outbox_listen: port 9000 is the viewer's" },
	{ "outbox with tls", "[upstream]\nhost = x\n[linkserver]\noutbox_listen = 127.0.0.1:8026 tls\n",
	  "[linkserver] outbox_listen: no 'tls' option" },
	{ "syntax", "[upstream]\nhost = x\njunk line\n", "t.conf:3: syntax error" },
	{ "nul byte", "[upstream]\nhost = x\0\n", "contains a NUL byte" },
	{ "trusted proxy not an address", "[upstream]\nhost = x\n[linkserver]\ntrusted_proxies = proxy.lan\n",
	  "t.conf:4: [linkserver] trusted_proxies: 'proxy.lan' is not an IPv4 or IPv6 address" },
	{ "trusted proxy prefix", "[upstream]\nhost = x\n[linkserver]\ntrusted_proxies = 10.0.0.0/33\n",
	  "[linkserver] trusted_proxies: '10.0.0.0/33': the prefix length must be 0..32" },
	{ "trusted proxy host bits", "[upstream]\nhost = x\n[linkserver]\ntrusted_proxies = 10.0.0.1/8\n",
	  "[linkserver] trusted_proxies: '10.0.0.1/8' has bits set after the prefix" },
	{ "trusted proxy v6 prefix", "[upstream]\nhost = x\n[linkserver]\ntrusted_proxies = ::1/129\n",
	  "the prefix length must be 0..128" },
	{ "keyserver over http", "[upstream]\nhost = x\n[discovery]\nkeyserver = http://keys.example\n",
	  "t.conf:4: [discovery] keyserver: must be an https:// URL" },
	{ "connect_to not four fields", "[upstream]\nhost = x\n[discovery]\n"
	  "connect_to = a.example:443:127.0.0.1:8443;b.example:443\n",
	  "t.conf:4: [discovery] connect_to: 'b.example:443' is not HOST:PORT:CONNECT-TO-HOST:CONNECT-TO-PORT" },
	{ "on_key_change", "[upstream]\nhost = x\n[discovery]\non_key_change = ignore\n",
	  "[discovery] on_key_change: 'ignore' is not one of next-form | accept" },
	{ "discovery timeout", "[upstream]\nhost = x\n[discovery]\ntimeout = 2m\n",
	  "[discovery] timeout: 2m is out of range (1s..60s)" },
};

static void
test_bad(gconstpointer p)
{
	const struct bad_case *c = p;
	struct sp_config cfg;
	char err[SP_ERRLEN] = "";
	size_t len = strlen(c->text);

	if (strcmp(c->label, "nul byte") == 0)
		len = strlen(c->text) + 2;
	g_assert_cmpint(sp_config_load_data(&cfg, "t.conf", c->text, len, true, err, sizeof err), ==, -1);
	if (strstr(err, c->want) == NULL)
		g_error("%s: error '%s' does not contain '%s'", c->label, err, c->want);
}

static void
test_defaults(void)
{
	const char *text = "; a comment\n[upstream]\nhost = smtp.example.com   ; inline comment\n";
	struct sp_config cfg;
	char err[SP_ERRLEN] = "";

	g_setenv("SEALPOST_STATE_DIR", "/tmp/sp-state", TRUE);
	g_assert_cmpint(sp_config_load_data(&cfg, "/etc/x/t.conf", text, strlen(text), true, err, sizeof err), ==, 0);
	g_assert_cmpstr(cfg.upstream.host, ==, "smtp.example.com");
	g_assert_cmpstr(cfg.upstream.port, ==, "587");
	g_assert_cmpint(cfg.upstream.tls, ==, SP_UPSTREAM_STARTTLS);
	g_assert_cmpstr(cfg.upstream.helo, ==, "localhost");
	g_assert_cmpuint(cfg.proxy.n_listen, ==, 1);
	g_assert_cmpstr(cfg.proxy.listen[0].host, ==, "127.0.0.1");
	g_assert_cmpstr(cfg.proxy.listen[0].port, ==, "587");
	g_assert_false(cfg.proxy.listen[0].implicit_tls);
	g_assert_cmpint(cfg.proxy.auth, ==, SP_AUTH_NONE);
	g_assert_cmpint(cfg.proxy.bare_lf, ==, SP_BARE_LF_ACCEPT_TRUSTED);
	g_assert_cmpuint(cfg.proxy.max_message_size, ==, 52428800);
	g_assert_cmpuint(cfg.proxy.max_recipients, ==, 100);
	g_assert_cmpuint(cfg.proxy.max_connections, ==, 256);
	g_assert_true(cfg.proxy.tls_generate);
	g_assert_cmpstr(cfg.proxy.tls_cert, ==, "/tmp/sp-state/local.crt");
	g_assert_cmpstr(cfg.proxy.users_file, ==, "/etc/x/users");
	g_assert_cmpint(cfg.policy.no_key, ==, SP_NOKEY_LINK);
	g_assert_cmpint(cfg.queue.lifetime, ==, 3 * 86400);
	g_assert_cmpstr(cfg.queue.dir, ==, "/tmp/sp-state/queue");
	g_assert_cmpint(cfg.link.expiry, ==, 14 * 86400);
	g_assert_true(cfg.pgp.hide_subject);
	g_assert_true(cfg.pgp.encrypt_to_self);
	g_assert_false(cfg.pgp.sign);
	g_assert_cmpint(cfg.log.level, ==, SP_LOG_INFO);
	/* Key discovery: WKD on, the keyserver off (it tells a third party). */
	g_assert_true(cfg.discovery.wkd);
	g_assert_cmpstr(cfg.discovery.keyserver, ==, "");
	g_assert_cmpint(cfg.discovery.timeout, ==, 3);
	g_assert_cmpint(cfg.discovery.ttl, ==, 7 * 86400);
	g_assert_cmpint(cfg.discovery.negative_ttl, ==, 3600);
	g_assert_cmpint(cfg.discovery.on_key_change, ==, SP_KEY_CHANGE_NEXT_FORM);
	g_assert_cmpstr(cfg.discovery.connect_to, ==, "");
	/* Forwarding headers are believed from a reverse proxy on this host. */
	g_assert_cmpuint(cfg.linkserver.trusted_proxies.n, ==, 2);
	g_assert_cmpuint(cfg.linkserver.trusted_proxies.net[0].prefix, ==, 96 + 8);
	g_assert_cmpuint(cfg.linkserver.trusted_proxies.net[1].prefix, ==, 128);
	sp_config_free(&cfg);
}

/* [linkserver] trusted_proxies: addresses and networks, both families. */
static void
test_trusted_proxies(void)
{
	static const struct { const char *addr; bool in; } cases[] = {
		{ "192.0.2.7", true }, { "192.0.2.255", true }, { "192.0.3.1", false },
		{ "10.200.1.1", true }, { "11.0.0.1", false },
		{ "2001:db8:1::5", true }, { "2001:db8:2::5", false }, { "::1", true }, { "::2", false },
		{ "::ffff:192.0.2.7", true }, { "127.0.0.1", false },
	};
	const char *text = "[upstream]\nhost = x\n[linkserver]\n"
	                   "trusted_proxies = 192.0.2.0/24, 10.0.0.0/8 ,2001:db8:1::/48, ::1\n";
	const char *empty = "[upstream]\nhost = x\n[linkserver]\ntrusted_proxies =\n";
	struct sp_config cfg;
	char err[SP_ERRLEN] = "";
	unsigned char a[16];
	size_t i;

	g_assert_cmpint(sp_config_load_data(&cfg, "t.conf", text, strlen(text), true, err, sizeof err), ==, 0);
	g_assert_cmpuint(cfg.linkserver.trusted_proxies.n, ==, 4);
	for (i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_test_message("%s", cases[i].addr);
		g_assert_true(sp_addr_parse(cases[i].addr, a));
		g_assert_cmpint(sp_net_list_contains(&cfg.linkserver.trusted_proxies, a), ==, cases[i].in);
	}
	sp_config_free(&cfg);
	/* Empty: nobody is believed. */
	g_assert_cmpint(sp_config_load_data(&cfg, "t.conf", empty, strlen(empty), true, err, sizeof err), ==, 0);
	g_assert_cmpuint(cfg.linkserver.trusted_proxies.n, ==, 0);
	g_assert_true(sp_addr_parse("127.0.0.1", a));
	g_assert_false(sp_net_list_contains(&cfg.linkserver.trusted_proxies, a));
	sp_config_free(&cfg);
	/* 0.0.0.0/0 is every IPv4 address and no IPv6 one. */
	{
		struct sp_net_list l;
		g_assert_cmpint(sp_parse_net_list("0.0.0.0/0", &l, err, sizeof err), ==, 0);
		g_assert_true(sp_addr_parse("203.0.113.1", a));
		g_assert_true(sp_net_list_contains(&l, a));
		g_assert_true(sp_addr_parse("2001:db8::1", a));
		g_assert_false(sp_net_list_contains(&l, a));
	}
}

static void
test_values(void)
{
	const char *text =
		"[proxy]\n"
		"listen = 127.0.0.1:2587, [::1]:2465 tls\n"
		"auth = users\n"
		"bare_lf = reject\n"
		"max_message_size = 10M\n"
		"timeout = 2m\n"
		"[upstream]\nhost = localhost\ntls = none\nport = 2525\n"
		"[policy]\nno_key = plain\n"
		"[link]\nexpiry = 3d\nmax_views = 1\n"
		"[log]\nlevel = debug\n";
	struct sp_config cfg;
	char err[SP_ERRLEN] = "";

	g_assert_cmpint(sp_config_load_data(&cfg, "t.conf", text, strlen(text), true, err, sizeof err), ==, 0);
	g_assert_cmpuint(cfg.proxy.n_listen, ==, 2);
	g_assert_cmpstr(cfg.proxy.listen[1].host, ==, "::1");
	g_assert_cmpstr(cfg.proxy.listen[1].port, ==, "2465");
	g_assert_true(cfg.proxy.listen[1].implicit_tls);
	g_assert_cmpint(cfg.proxy.auth, ==, SP_AUTH_USERS);
	g_assert_cmpint(cfg.proxy.bare_lf, ==, SP_BARE_LF_REJECT);
	g_assert_cmpuint(cfg.proxy.max_message_size, ==, 10 * 1024 * 1024);
	g_assert_cmpint(cfg.proxy.timeout, ==, 120);
	g_assert_cmpint(cfg.upstream.tls, ==, SP_UPSTREAM_NONE);
	g_assert_cmpstr(cfg.upstream.port, ==, "2525");
	g_assert_cmpint(cfg.policy.no_key, ==, SP_NOKEY_PLAIN);
	g_assert_cmpint(cfg.link.expiry, ==, 3 * 86400);
	g_assert_cmpuint(cfg.link.max_views, ==, 1);
	g_assert_cmpint(cfg.log.level, ==, SP_LOG_DEBUG);
	sp_config_free(&cfg);
}

static void
test_implicit_tls_port(void)
{
	const char *text = "[upstream]\nhost = smtp.example.com\ntls = tls\n";
	struct sp_config cfg;
	char err[SP_ERRLEN] = "";

	g_assert_cmpint(sp_config_load_data(&cfg, "t.conf", text, strlen(text), true, err, sizeof err), ==, 0);
	g_assert_cmpstr(cfg.upstream.port, ==, "465");
	sp_config_free(&cfg);
}

struct dur_case {
	const char *in;
	int64_t want;   /* -1: error */
};

static void
test_durations(void)
{
	static const struct dur_case cases[] = {
		{ "30", 30 }, { "30s", 30 }, { "5m", 300 }, { "2h", 7200 }, { "14d", 1209600 },
		{ "1w", 604800 }, { "", -1 }, { "d", -1 }, { "5x", -1 }, { "-1", -1 }, { "5mm", -1 },
		{ "99999999999999999999", -1 },
	};
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(cases); i++) {
		int64_t v = 0;
		char err[SP_ERRLEN];
		int r = sp_parse_duration(cases[i].in, &v, err, sizeof err);
		if (cases[i].want < 0)
			g_assert_cmpint(r, ==, -1);
		else {
			g_assert_cmpint(r, ==, 0);
			g_assert_cmpint(v, ==, cases[i].want);
		}
	}
}

int
main(int argc, char **argv)
{
	size_t i;

	g_test_init(&argc, &argv, NULL);
	for (i = 0; i < G_N_ELEMENTS(bad_cases); i++) {
		char *name = g_strdup_printf("/config/bad/%s", bad_cases[i].label);
		g_test_add_data_func(name, &bad_cases[i], test_bad);
		g_free(name);
	}
	g_test_add_func("/config/defaults", test_defaults);
	g_test_add_func("/config/values", test_values);
	g_test_add_func("/config/trusted_proxies", test_trusted_proxies);
	g_test_add_func("/config/implicit-tls-port", test_implicit_tls_port);
	g_test_add_func("/config/durations", test_durations);
	return g_test_run();
}

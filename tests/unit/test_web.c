/* test_web.c - the viewer's building blocks: escaping, addresses, the tarpit,
 * download sessions, the outbox list, the upload record format, the link path,
 * MIME rendering and the pages. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib.h>
#include <sodium.h>

#include "link_record.h"
#include "net.h"
#include "web_client.h"
#include "web_conn.h"
#include "web_html.h"
#include "web_outbox.h"
#include "web_pages.h"
#include "view_render.h"
#include "web_server.h"
#include "web_session.h"

/* ---- escaping ---- */

static const struct {
	const char *label, *in, *want;
} esc_cases[] = {
	{ "plain", "hello", "hello" },
	{ "markup", "<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;" },
	{ "attribute breakout", "\" onload=\"x", "&quot; onload=&quot;x" },
	{ "single quote", "it's", "it&#39;s" },
	{ "ampersand", "a&b&amp;", "a&amp;b&amp;amp;" },
	{ "utf-8 kept", "Gr\xc3\xbc\xc3\x9f\x65 \xe2\x82\xac \xf0\x9f\x94\x92", "Gr\xc3\xbc\xc3\x9f\x65 \xe2\x82\xac \xf0\x9f\x94\x92" },
	{ "invalid byte", "a\xff" "b", "a\xef\xbf\xbd" "b" },
	{ "overlong slash", "\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd" },
	{ "surrogate", "\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
	{ "truncated sequence", "x\xe2\x82", "x\xef\xbf\xbd\xef\xbf\xbd" },
	{ "controls", "a\x01" "b\x7f" "c", "a\xef\xbf\xbd" "b\xef\xbf\xbd" "c" },
	{ "whitespace kept", "a\tb\nc\r", "a\tb\nc\r" },
};

static void
test_escape(void)
{
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(esc_cases); i++) {
		struct sp_buf b;
		sp_buf_init(&b, 0);
		g_test_message("case %s", esc_cases[i].label);
		g_assert_cmpint(sp_html_puts(&b, esc_cases[i].in), ==, 0);
		g_assert_cmpstr(b.data ? b.data : "", ==, esc_cases[i].want);
		sp_buf_free(&b);
	}
}

static void
test_escape_nul(void)
{
	struct sp_buf b;

	sp_buf_init(&b, 0);
	g_assert_cmpint(sp_html_escape(&b, "a\0<", 3), ==, 0);
	g_assert_cmpstr(b.data, ==, "a\xef\xbf\xbd&lt;");
	sp_buf_free(&b);
}

static const struct {
	const char *in, *want;
} fname_cases[] = {
	{ "report.pdf", "report.pdf" },
	{ "a\"b.txt", "a_b.txt" },
	{ "../../etc/passwd", ".._.._etc_passwd" },
	{ "Gr\xc3\xbc\xc3\x9f\x65.txt", "Gr__e.txt" },
	{ "", "attachment" },
	{ "..", "attachment" },
	{ "a\r\nX-Evil: 1", "a__X-Evil: 1" },
	{ NULL, "attachment" },
};

static void
test_filename(void)
{
	size_t i;
	char out[64];

	for (i = 0; i < G_N_ELEMENTS(fname_cases); i++) {
		web_ascii_filename(fname_cases[i].in, "attachment", out, sizeof out);
		g_assert_cmpstr(out, ==, fname_cases[i].want);
	}
}

static void
test_percent(void)
{
	struct sp_buf b;

	sp_buf_init(&b, 0);
	web_percent_encode(&b, "a b/\xc3\xbc\"~", 8);
	g_assert_cmpstr(b.data, ==, "a%20b%2F%C3%BC%22~");
	sp_buf_free(&b);
}

/* ---- addresses ---- */

static void
sa_from(const char *text, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof *ss);
	if (strchr(text, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		s6->sin6_family = AF_INET6;
		g_assert_cmpint(inet_pton(AF_INET6, text, &s6->sin6_addr), ==, 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		s4->sin_family = AF_INET;
		g_assert_cmpint(inet_pton(AF_INET, text, &s4->sin_addr), ==, 1);
	}
}

/* The default [linkserver] trusted_proxies, and a chain of two proxies. */
#define LOOPBACK_PROXIES "127.0.0.0/8, ::1"
#define CHAIN_PROXIES "127.0.0.0/8, ::1, 10.0.0.0/8, 2001:db8:ffff::/48"

static const struct {
	const char *addr;
	bool loopback;
	const char *trusted;   /* [linkserver] trusted_proxies */
	const char *xff, *fwd, *real_ip;
	const char *key;       /* the tarpit key */
} addr_cases[] = {
	{ "127.0.0.1", true, LOOPBACK_PROXIES, NULL, NULL, NULL, "127.0.0.1" },
	{ "127.0.0.2", true, LOOPBACK_PROXIES, NULL, NULL, NULL, "127.0.0.2" },
	{ "127.255.255.254", true, LOOPBACK_PROXIES, NULL, NULL, NULL, "127.255.255.254" },
	{ "10.0.0.1", false, LOOPBACK_PROXIES, NULL, NULL, NULL, "10.0.0.1" },
	{ "192.0.2.2", false, LOOPBACK_PROXIES, NULL, NULL, NULL, "192.0.2.2" },
	{ "128.0.0.1", false, LOOPBACK_PROXIES, NULL, NULL, NULL, "128.0.0.1" },
	{ "::1", true, LOOPBACK_PROXIES, NULL, NULL, NULL, "::/64" },
	{ "::ffff:127.0.0.1", true, LOOPBACK_PROXIES, NULL, NULL, NULL, "127.0.0.1" },
	{ "::ffff:10.1.2.3", false, LOOPBACK_PROXIES, NULL, NULL, NULL, "10.1.2.3" },
	{ "2001:db8:1:2:3:4:5:6", false, LOOPBACK_PROXIES, NULL, NULL, NULL, "2001:db8:1:2::/64" },
	{ "fe80::1", false, LOOPBACK_PROXIES, NULL, NULL, NULL, "fe80::/64" },
	/* A trusted proxy names the client; anyone else cannot. */
	{ "127.0.0.1", true, LOOPBACK_PROXIES, "203.0.113.9", NULL, NULL, "203.0.113.9" },
	{ "::ffff:127.0.0.1", true, LOOPBACK_PROXIES, "203.0.113.9", NULL, NULL, "203.0.113.9" },
	{ "::1", true, LOOPBACK_PROXIES, "203.0.113.9", NULL, NULL, "203.0.113.9" },
	{ "127.0.0.1", true, LOOPBACK_PROXIES, " 2001:db8::7 ", NULL, NULL, "2001:db8::/64" },
	{ "127.0.0.1", true, LOOPBACK_PROXIES, "not-an-address", NULL, NULL, "127.0.0.1" },
	{ "198.51.100.1", false, LOOPBACK_PROXIES, "203.0.113.9", NULL, NULL, "198.51.100.1" },
	{ "198.51.100.1", false, LOOPBACK_PROXIES, NULL, "for=203.0.113.9", "203.0.113.8", "198.51.100.1" },
	/* The right-most entry is what the trusted proxy saw; what the client wrote
	 * to the left of it is never believed. */
	{ "127.0.0.1", true, LOOPBACK_PROXIES, "1.1.1.1, 203.0.113.9", NULL, NULL, "203.0.113.9" },
	{ "127.0.0.1", true, LOOPBACK_PROXIES, "1.1.1.1,203.0.113.9:4711", NULL, NULL, "203.0.113.9" },
	{ "127.0.0.1", true, LOOPBACK_PROXIES, "garbage, 203.0.113.9", NULL, NULL, "203.0.113.9" },
	/* ... unless it is a trusted proxy too: walk on (real_ip_recursive). */
	{ "127.0.0.1", true, CHAIN_PROXIES, "1.1.1.1, 203.0.113.9, 10.2.3.4", NULL, NULL, "203.0.113.9" },
	{ "127.0.0.1", true, CHAIN_PROXIES, "203.0.113.9, [2001:db8:ffff::1]:80", NULL, NULL, "203.0.113.9" },
	{ "127.0.0.1", true, LOOPBACK_PROXIES, "1.1.1.1, 203.0.113.9, 10.2.3.4", NULL, NULL, "10.2.3.4" },
	{ "10.9.9.9", false, CHAIN_PROXIES, "203.0.113.9", NULL, NULL, "203.0.113.9" },
	/* Every hop trusted: the left-most one reached. */
	{ "127.0.0.1", true, CHAIN_PROXIES, "10.1.1.1, 10.2.2.2", NULL, NULL, "10.1.1.1" },
	/* Garbage behind a trusted hop: the last address reached. */
	{ "127.0.0.1", true, CHAIN_PROXIES, "garbage, 10.2.2.2", NULL, NULL, "10.2.2.2" },
	/* Forwarded (RFC 7239) when there is no X-Forwarded-For. */
	{ "127.0.0.1", true, LOOPBACK_PROXIES, NULL, "for=1.1.1.1, for=203.0.113.9;proto=https", NULL, "203.0.113.9" },
	{ "127.0.0.1", true, LOOPBACK_PROXIES, NULL, "proto=https;For=\"[2001:db8::5]:4711\"", NULL, "2001:db8::/64" },
	{ "127.0.0.1", true, LOOPBACK_PROXIES, NULL, "for=unknown", NULL, "127.0.0.1" },
	{ "127.0.0.1", true, LOOPBACK_PROXIES, NULL, "for=_hidden", NULL, "127.0.0.1" },
	{ "127.0.0.1", true, LOOPBACK_PROXIES, "203.0.113.9", "for=1.1.1.1", NULL, "203.0.113.9" },
	/* X-Real-IP last. */
	{ "127.0.0.1", true, LOOPBACK_PROXIES, NULL, NULL, "203.0.113.8", "203.0.113.8" },
	{ "127.0.0.1", true, LOOPBACK_PROXIES, NULL, NULL, "nonsense", "127.0.0.1" },
	/* No trusted proxies: nobody names a client. */
	{ "127.0.0.1", true, "", "203.0.113.9", "for=203.0.113.9", "203.0.113.9", "127.0.0.1" },
	/* Only the named host, not its neighbours. */
	{ "127.0.0.2", true, "127.0.0.1", "203.0.113.9", NULL, NULL, "127.0.0.2" },
	{ "127.0.0.1", true, "127.0.0.1", "203.0.113.9", NULL, NULL, "203.0.113.9" },
};

static void
test_addresses(void)
{
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(addr_cases); i++) {
		struct web_forwarded fw = { addr_cases[i].xff, addr_cases[i].fwd, addr_cases[i].real_ip };
		struct sp_net_list trusted;
		struct sockaddr_storage ss;
		char key[WEB_CLIENT_KEYLEN], err[SP_ERRLEN];

		g_test_message("case %s xff=%s fwd=%s", addr_cases[i].addr,
		               addr_cases[i].xff ? addr_cases[i].xff : "-",
		               addr_cases[i].fwd ? addr_cases[i].fwd : "-");
		g_assert_cmpint(sp_parse_net_list(addr_cases[i].trusted, &trusted, err, sizeof err), ==, 0);
		sa_from(addr_cases[i].addr, &ss);
		g_assert_cmpint(sp_net_addr_is_loopback((struct sockaddr *)&ss), ==, addr_cases[i].loopback);
		g_assert_true(web_client_key((struct sockaddr *)&ss, &trusted, &fw, key));
		g_assert_cmpstr(key, ==, addr_cases[i].key);
	}
}

/* More hops than WEB_FORWARDED_MAX_HOPS, all trusted: the walk stops there. */
static void
test_address_hops(void)
{
	struct sp_net_list trusted;
	struct sockaddr_storage ss;
	struct web_forwarded fw = { 0 };
	char key[WEB_CLIENT_KEYLEN], err[SP_ERRLEN], want[32];
	GString *xff = g_string_new("203.0.113.9");
	int i;

	for (i = 0; i < WEB_FORWARDED_MAX_HOPS + 5; i++)
		g_string_append_printf(xff, ", 10.0.0.%d", i + 1);
	g_assert_cmpint(sp_parse_net_list(CHAIN_PROXIES, &trusted, err, sizeof err), ==, 0);
	sa_from("127.0.0.1", &ss);
	fw.xff = xff->str;
	g_assert_true(web_client_key((struct sockaddr *)&ss, &trusted, &fw, key));
	snprintf(want, sizeof want, "10.0.0.%d", 5 + 1);
	g_assert_cmpstr(key, ==, want);
	g_string_free(xff, TRUE);
}

static void
test_address_other_family(void)
{
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	char key[WEB_CLIENT_KEYLEN];

	g_assert_false(sp_net_addr_is_loopback((struct sockaddr *)&un));
	g_assert_false(sp_net_addr_is_loopback(NULL));
	g_assert_false(web_client_key((struct sockaddr *)&un, NULL, NULL, key));
}

static const struct {
	const char *host;
	bool loopback;
} host_cases[] = {
	{ "localhost", true },
	{ "localhost:8025", true },
	{ "LOCALHOST.", true },
	{ "127.0.0.1", true },
	{ "127.0.0.1:8025", true },
	{ "127.9.9.9:1", true },
	{ "[::1]:8025", true },
	{ "[::1]", true },
	{ "mail.example.org", false },
	{ "mail.example.org:8025", false },
	{ "127.0.0.1.nip.io:8025", false },  /* DNS rebinding names */
	{ "localhost.example.org", false },
	{ "[::2]:80", false },
	{ "[::1", false },
	{ "", false },
	{ NULL, false },
};

static void
test_host_header(void)
{
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(host_cases); i++) {
		g_test_message("case %s", host_cases[i].host ? host_cases[i].host : "(null)");
		g_assert_cmpint(web_host_is_loopback(host_cases[i].host), ==, host_cases[i].loopback);
	}
}

/* ---- tarpit ---- */

static void
test_tarpit_delays(void)
{
	static const struct { unsigned failures; int64_t ms; } cases[] = {
		{ 0, 0 }, { 1, 1000 }, { 2, 2000 }, { 3, 4000 }, { 4, 8000 }, { 5, 8000 },
		{ 64, 8000 },
	};
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(cases); i++)
		g_assert_cmpint(web_tarpit_delay(cases[i].failures), ==, cases[i].ms);
}

#define LINK_A "0000000000000000000000000000000a"
#define LINK_B "0000000000000000000000000000000b"
#define LINK_C "0000000000000000000000000000000c"

static void
test_tarpit(void)
{
	struct web_tarpit *t = web_tarpit_new(2);
	int64_t now = 1000000, at;
	int i;

	/* A client without failures goes ahead, as often as it likes. */
	g_assert_cmpint(web_tarpit_enter(t, "a", now), ==, 0);
	g_assert_cmpint(web_tarpit_enter(t, "a", now), ==, 0);
	/* One failure: the next attempt within a second is held for the rest of it. */
	g_assert_cmpint(web_tarpit_failed(t, "a", LINK_A, now), ==, 1000);
	g_assert_cmpint(web_tarpit_enter(t, "a", now + 300), ==, 700);
	/* ... and a parallel one waits one more delay: the turn was taken. */
	g_assert_cmpint(web_tarpit_enter(t, "a", now + 300), ==, 1700);
	/* Other clients are not slowed. */
	g_assert_cmpint(web_tarpit_enter(t, "b", now + 300), ==, 0);
	/* Failures pile up: 1, 2, 4, 8 s, and 8 s from then on. */
	g_assert_cmpint(web_tarpit_failed(t, "a", LINK_A, now + 2000), ==, 2000);
	g_assert_cmpint(web_tarpit_failed(t, "a", LINK_A, now + 4000), ==, 4000);
	g_assert_cmpint(web_tarpit_failed(t, "a", LINK_A, now + 8000), ==, 8000);
	g_assert_cmpint(web_tarpit_failed(t, "a", LINK_B, now + 8000), ==, 8000);
	g_assert_cmpuint(web_tarpit_failures(t, "a", now + 8000), ==, 5);
	/* An attempt that comes on its own is held, never refused, however many
	 * failures came before: the right password must get through. */
	g_assert_cmpint(web_tarpit_enter(t, "a", now + 8000), ==, 8000);
	/* Several at once from a client that failed: beyond one turn, refused. */
	g_assert_cmpint(web_tarpit_enter(t, "a", now + 8000), ==, -16000);
	g_assert_cmpint(web_tarpit_enter(t, "a", now + 8000 + 9000), ==, 7000);
	/* The right password on link A takes back the 4 failures made on A, not the
	 * one on B: the client is held for B's alone. */
	web_tarpit_succeeded(t, "a", LINK_A, now + 30000);
	g_assert_cmpuint(web_tarpit_failures(t, "a", now + 30000), ==, 1);
	web_tarpit_succeeded(t, "a", LINK_A, now + 30000);
	g_assert_cmpuint(web_tarpit_failures(t, "a", now + 30000), ==, 1);
	/* A link it never failed on clears nothing (no laundering with a known link). */
	web_tarpit_succeeded(t, "a", LINK_C, now + 30000);
	g_assert_cmpuint(web_tarpit_failures(t, "a", now + 30000), ==, 1);
	/* Success on B too: nothing left, not held at all. */
	web_tarpit_succeeded(t, "a", LINK_B, now + 30000);
	g_assert_cmpuint(web_tarpit_failures(t, "a", now + 30000), ==, 0);
	g_assert_cmpint(web_tarpit_enter(t, "a", now + 30000), ==, 0);
	/* After a success the count starts again from one. */
	g_assert_cmpint(web_tarpit_failed(t, "a", LINK_A, now + 30000), ==, 1000);
	/* Failures on more links than are remembered stay counted, unattributed. */
	at = now + 40000;
	for (i = 0; i < WEB_TARPIT_LINKS_PER_CLIENT + 2; i++) {
		char id[SP_LINK_ID_HEXLEN + 1];
		snprintf(id, sizeof id, "%032x", 0x100 + i);
		web_tarpit_failed(t, "z", id, at);
	}
	for (i = 0; i < WEB_TARPIT_LINKS_PER_CLIENT + 2; i++) {
		char id[SP_LINK_ID_HEXLEN + 1];
		snprintf(id, sizeof id, "%032x", 0x100 + i);
		web_tarpit_succeeded(t, "z", id, at);
	}
	g_assert_cmpuint(web_tarpit_failures(t, "z", at), ==, 2);
	/* Forgotten after WEB_TARPIT_FORGET_MS without failures. */
	g_assert_cmpint(web_tarpit_enter(t, "z", at + WEB_TARPIT_FORGET_MS), ==, 0);
	g_assert_cmpuint(web_tarpit_failures(t, "z", at + WEB_TARPIT_FORGET_MS), ==, 0);
	/* Bounded: with room for 2 clients, a third evicts the oldest. */
	web_tarpit_failed(t, "c", LINK_A, now);
	web_tarpit_failed(t, "d", LINK_A, now + 1);
	web_tarpit_failed(t, "e", LINK_A, now + 2);
	g_assert_cmpint(web_tarpit_enter(t, "c", now + 3), ==, 0);
	g_assert_cmpint(web_tarpit_enter(t, "e", now + 3), >, 0);
	web_tarpit_expire(t, now + 10 * WEB_TARPIT_FORGET_MS);
	g_assert_cmpint(web_tarpit_enter(t, "e", now + 10 * WEB_TARPIT_FORGET_MS), ==, 0);
	web_tarpit_free(t);
}

/* Attempts under way per link: counted, released, bounded. */
static void
test_tarpit_attempts(void)
{
	struct web_tarpit *t = web_tarpit_new(0);
	int i;

	g_assert_cmpint(web_tarpit_attempt_begin(t, LINK_A), ==, 0);
	g_assert_cmpint(web_tarpit_attempt_begin(t, LINK_A), ==, 1);
	g_assert_cmpint(web_tarpit_attempt_begin(t, LINK_B), ==, 0);
	web_tarpit_attempt_end(t, LINK_A);
	g_assert_cmpint(web_tarpit_attempt_begin(t, LINK_A), ==, 1);
	web_tarpit_attempt_end(t, LINK_A);
	web_tarpit_attempt_end(t, LINK_A);
	web_tarpit_attempt_end(t, LINK_B);
	g_assert_cmpint(web_tarpit_attempt_begin(t, LINK_A), ==, 0);
	web_tarpit_attempt_end(t, LINK_A);
	/* The table is bounded: a full table answers -1 (busy) for a new link. */
	for (i = 0; i < WEB_ATTEMPTS_MAX_LINKS; i++) {
		char id[SP_LINK_ID_HEXLEN + 1];
		snprintf(id, sizeof id, "%032x", 0x1000 + i);
		g_assert_cmpint(web_tarpit_attempt_begin(t, id), ==, 0);
	}
	g_assert_cmpint(web_tarpit_attempt_begin(t, LINK_C), ==, -1);
	web_tarpit_free(t);
}

/* ---- download sessions ---- */

static void
fake_message(struct sp_view *m, size_t n, size_t size)
{
	size_t i;

	memset(m, 0, sizeof *m);
	m->att = sp_xcalloc(n, sizeof *m->att);
	m->n_att = n;
	for (i = 0; i < n; i++) {
		m->att[i].filename = sp_xasprintf("file%zu.bin", i);
		m->att[i].content_type = sp_xstrdup("application/octet-stream");
		m->att[i].data = sp_xmalloc(size);
		memset(m->att[i].data, 'a' + (int)i, size);
		m->att[i].len = size;
	}
}

static void
test_sessions(void)
{
	struct web_sessions *ss = web_sessions_new(1000, 3);
	char cap[WEB_SESSION_CAPLEN + 1], cap2[WEB_SESSION_CAPLEN + 1], bad[WEB_SESSION_CAPLEN + 1];
	const char *id = "00000000000000000000000000000001";
	const char *other = "00000000000000000000000000000002";
	struct sp_view_attachment a;
	struct sp_view m;
	int64_t now = 5000;
	int i;

	fake_message(&m, 2, 10);
	web_sessions_new_cap(cap);
	g_assert_cmpuint(strlen(cap), ==, WEB_SESSION_CAPLEN);
	g_assert_cmpint(web_sessions_add(ss, cap, id, &m, now, INT64_MAX, false), ==, 0);
	g_assert_cmpuint(m.n_att, ==, 0); /* moved */
	sp_view_free(&m);

	g_assert_cmpint(web_sessions_get(ss, cap, id, 1, now + 1, &a, NULL), ==, 0);
	g_assert_cmpstr(a.filename, ==, "file1.bin");
	g_assert_cmpmem(a.data, a.len, "bbbbbbbbbb", 10);
	sp_view_attachment_clear(&a);
	/* Bound to its link, its parts, its lifetime, and the exact capability. */
	g_assert_cmpint(web_sessions_get(ss, cap, other, 1, now, &a, NULL), ==, -1);
	g_assert_cmpint(web_sessions_get(ss, cap, id, 2, now, &a, NULL), ==, -1);
	g_assert_cmpint(web_sessions_get(ss, cap, id, 0, now + WEB_SESSION_TTL_MS, &a, NULL), ==, -1);
	memcpy(bad, cap, sizeof bad);
	bad[0] = bad[0] == '0' ? '1' : '0';
	g_assert_cmpint(web_sessions_get(ss, bad, id, 0, now, &a, NULL), ==, -1);
	g_assert_cmpint(web_sessions_get(ss, "short", id, 0, now, &a, NULL), ==, -1);
	g_assert_cmpint(web_sessions_get(ss, NULL, id, 0, now, &a, NULL), ==, -1);

	/* Too large for the whole bound: refused. */
	fake_message(&m, 1, 2000);
	web_sessions_new_cap(cap2);
	g_assert_cmpint(web_sessions_add(ss, cap2, id, &m, now, INT64_MAX, false), ==, -1);
	sp_view_free(&m);
	/* The byte bound evicts the oldest: 20 + 3 x 300 > 1000 drops the first. */
	for (i = 0; i < 3; i++) {
		fake_message(&m, 1, 300);
		web_sessions_new_cap(cap2);
		g_assert_cmpint(web_sessions_add(ss, cap2, id, &m, now, INT64_MAX, false), ==, 0);
		sp_view_free(&m);
	}
	g_assert_cmpint(web_sessions_get(ss, cap2, id, 0, now, &a, NULL), ==, 0);
	sp_view_attachment_clear(&a);
	g_assert_cmpint(web_sessions_get(ss, cap, id, 0, now, &a, NULL), ==, -1);
	/* No attachments: nothing kept, nothing to fail. */
	memset(&m, 0, sizeof m);
	g_assert_cmpint(web_sessions_add(ss, cap, id, &m, now, INT64_MAX, false), ==, 0);
	web_sessions_expire(ss, now + WEB_SESSION_TTL_MS);
	g_assert_cmpint(web_sessions_get(ss, cap2, id, 0, now, &a, NULL), ==, -1);
	web_sessions_free(ss);
}

/* Every capability of a link ends at once; a link's expiry is a capability's
 * too (the clock is injected: now_ms). */
static void
test_sessions_per_link(void)
{
	struct web_sessions *ss = web_sessions_new(0, 0);
	char caps[4][WEB_SESSION_CAPLEN + 1], ids[4][SP_LINK_ID_HEXLEN + 1];
	const char *id = "00000000000000000000000000000001";
	const char *other = "00000000000000000000000000000002";
	struct sp_view_attachment a;
	struct sp_view m;
	bool last = true;
	int64_t now = 5000;
	int i;

	/* Three unlocks of one link, one of another. */
	for (i = 0; i < 4; i++) {
		fake_message(&m, 1, 10);
		web_sessions_new_cap(caps[i]);
		g_assert_cmpint(web_sessions_add(ss, caps[i], i < 3 ? id : other, &m, now, INT64_MAX,
		                                 false), ==, 0);
		sp_view_free(&m);
	}
	g_assert_cmpuint(web_sessions_links(ss, ids, 4), ==, 2);
	g_assert_cmpint(web_sessions_get(ss, caps[1], id, 0, now, &a, &last), ==, 0);
	g_assert_false(last);
	sp_view_attachment_clear(&a);
	/* The link goes (revoke, expiry, destruction): all three end together. */
	g_assert_cmpuint(web_sessions_drop_link(ss, id), ==, 3);
	for (i = 0; i < 3; i++)
		g_assert_cmpint(web_sessions_get(ss, caps[i], id, 0, now, &a, NULL), ==, -1);
	g_assert_cmpint(web_sessions_get(ss, caps[3], other, 0, now, &a, NULL), ==, 0);
	sp_view_attachment_clear(&a);
	g_assert_cmpuint(web_sessions_drop_link(ss, id), ==, 0);
	g_assert_cmpuint(web_sessions_links(ss, ids, 4), ==, 1);
	g_assert_cmpstr(ids[0], ==, other);

	/* A link expiring before the session's own TTL takes the capability with it. */
	fake_message(&m, 1, 10);
	web_sessions_new_cap(caps[0]);
	g_assert_cmpint(web_sessions_add(ss, caps[0], id, &m, now, now + 2000, false), ==, 0);
	sp_view_free(&m);
	g_assert_cmpint(web_sessions_get(ss, caps[0], id, 0, now + 1999, &a, NULL), ==, 0);
	sp_view_attachment_clear(&a);
	g_assert_cmpint(web_sessions_get(ss, caps[0], id, 0, now + 2000, &a, NULL), ==, -1);
	/* ... and the sweeper's expiry wipes it. */
	web_sessions_expire(ss, now + 2000);
	g_assert_cmpuint(web_sessions_drop_link(ss, id), ==, 0);

	/* The capability of the view that used the link up: marked, and not listed
	 * among those that depend on the store. */
	fake_message(&m, 1, 10);
	web_sessions_new_cap(caps[1]);
	g_assert_cmpint(web_sessions_add(ss, caps[1], id, &m, now, now + 60000, true), ==, 0);
	sp_view_free(&m);
	g_assert_cmpint(web_sessions_get(ss, caps[1], id, 0, now, &a, &last), ==, 0);
	g_assert_true(last);
	sp_view_attachment_clear(&a);
	g_assert_cmpuint(web_sessions_links(ss, ids, 4), ==, 1);
	g_assert_cmpstr(ids[0], ==, other);
	web_sessions_free(ss);
}

/* ---- outbox ---- */

static void
count_entry(const struct web_outbox_entry *e, void *arg)
{
	GPtrArray *seen = arg;
	g_ptr_array_add(seen, g_strdup(e->subject));
}

static void
test_outbox(void)
{
	struct web_outbox_rcpt r = { .address = "bob@example.org", .form = "link",
	                             .link_id = "00000000000000000000000000000001",
	                             .url = "https://v/s/x", .password = "pw" };
	GPtrArray *seen = g_ptr_array_new_with_free_func(g_free);
	int i;

	web_outbox_clear();
	for (i = 0; i < WEB_OUTBOX_MAX + 5; i++) {
		char subj[32];
		snprintf(subj, sizeof subj, "m%d", i);
		web_outbox_add("me@example.org", subj, 100, i < 10 ? 200 : 1000, &r, 1);
	}
	g_assert_cmpuint(web_outbox_count(), ==, WEB_OUTBOX_MAX);
	web_outbox_foreach(count_entry, seen);
	g_assert_cmpuint(seen->len, ==, WEB_OUTBOX_MAX);
	g_assert_cmpstr(g_ptr_array_index(seen, 0), ==, "m104"); /* newest first */
	g_assert_cmpstr(g_ptr_array_index(seen, WEB_OUTBOX_MAX - 1), ==, "m5");
	web_outbox_expire(500); /* m5..m9 expired at 200 */
	g_assert_cmpuint(web_outbox_count(), ==, WEB_OUTBOX_MAX - 5);
	web_outbox_clear();
	g_assert_cmpuint(web_outbox_count(), ==, 0);
	g_ptr_array_free(seen, TRUE);
}

/* ---- upload record ---- */

static void
test_record_roundtrip(void)
{
	struct link_store_new_link links[2] = {
		{ .id = "0123456789abcdef0123456789abcdef", .wrapped = "WRAP1", .wrapped_len = 5 },
		{ .id = "fedcba9876543210fedcba9876543210", .wrapped = "WRAPPED-2", .wrapped_len = 9 },
	};
	struct link_store_new_msg m = { .ciphertext = "CIPHERTEXT", .ciphertext_len = 10,
	                                .created = 5, .expires = 1700000000, .max_views = 1,
	                                .max_failed = 10, .links = links, .n_links = 2,
	                                .sender = "Alice <alice@example.com>", .hint = "caf\xc3\xa9" }, d;
	char err[SP_ERRLEN];
	struct sp_buf b;

	sp_buf_init(&b, 0);
	g_assert_cmpint(link_record_encode(&m, &b, err, sizeof err), ==, 0);
	g_assert_cmpint(link_record_decode(b.data, b.len, &d, err, sizeof err), ==, 0);
	g_assert_cmpint(d.expires, ==, 1700000000);
	g_assert_cmpint(d.created, ==, 0);
	g_assert_cmpuint(d.max_views, ==, 1);
	g_assert_cmpuint(d.max_failed, ==, 10);
	g_assert_cmpuint(d.n_links, ==, 2);
	g_assert_cmpstr(d.links[1].id, ==, links[1].id);
	g_assert_cmpmem(d.links[1].wrapped, d.links[1].wrapped_len, "WRAPPED-2", 9);
	g_assert_cmpmem(d.ciphertext, d.ciphertext_len, "CIPHERTEXT", 10);
	/* Version 2 carries what the v2 page shows before the password. */
	g_assert_cmpmem(b.data, 8, "SPLINKR\x02", 8);
	g_assert_cmpstr(d.sender, ==, "Alice <alice@example.com>");
	g_assert_cmpstr(d.hint, ==, "caf\xc3\xa9");
	link_record_free(&d);

	/* Every truncation is refused, and so is one byte too many. */
	for (size_t cut = 0; cut < b.len; cut++)
		g_assert_cmpint(link_record_decode(b.data, cut, &d, err, sizeof err), ==, -1);
	sp_buf_append(&b, "X", 1);
	g_assert_cmpint(link_record_decode(b.data, b.len, &d, err, sizeof err), ==, -1);
	/* A wrong magic / version. */
	b.data[7] = 3;
	g_assert_cmpint(link_record_decode(b.data, b.len - 1, &d, err, sizeof err), ==, -1);
	g_assert_nonnull(strstr(err, "version 1 or 2"));
	/* A NUL inside the sender. */
	b.data[7] = 2;
	b.data[8 + 8 + 4 + 4 + 2 + 2] = '\0';
	g_assert_cmpint(link_record_decode(b.data, b.len - 1, &d, err, sizeof err), ==, -1);
	sp_buf_free(&b);

	/* No sender and no hint ([link] version = 1): a version 1 record, as a
	 * sealpost 0.1 viewer reads it, 4 bytes shorter than an empty v2 one. */
	{
		struct link_store_new_msg m1 = m;
		struct sp_buf b1, b2;
		m1.sender = m1.hint = NULL;
		sp_buf_init(&b1, 0);
		sp_buf_init(&b2, 0);
		g_assert_cmpint(link_record_encode(&m1, &b1, err, sizeof err), ==, 0);
		g_assert_cmpmem(b1.data, 8, "SPLINKR\x01", 8);
		m1.sender = "";
		g_assert_cmpint(link_record_encode(&m1, &b2, err, sizeof err), ==, 0);
		g_assert_cmpmem(b2.data, 8, "SPLINKR\x02", 8);
		g_assert_cmpuint(b2.len, ==, b1.len + 4);
		g_assert_cmpint(link_record_decode(b1.data, b1.len, &d, err, sizeof err), ==, 0);
		g_assert_cmpuint(d.n_links, ==, 2);
		g_assert_cmpmem(d.ciphertext, d.ciphertext_len, "CIPHERTEXT", 10);
		g_assert_true(d.sender == NULL || d.sender[0] == '\0');
		link_record_free(&d);
		sp_buf_free(&b1);
		sp_buf_free(&b2);
	}

	/* Malformed input is refused by the encoder too. */
	links[0].id[0] = 'X';
	sp_buf_init(&b, 0);
	g_assert_cmpint(link_record_encode(&m, &b, err, sizeof err), ==, -1);
	sp_buf_free(&b);
}

static void
test_record_fields(void)
{
	/* Header with 1 link, then hand-made bodies for the field checks. */
	static const struct {
		const char *label;
		uint32_t max_failed;
		uint16_t n_links;
		uint16_t wlen;
	} cases[] = {
		{ "ok", 3, 1, 4 },
		{ "max_failed 0", 0, 1, 4 },
		{ "no links", 3, 0, 4 },
		{ "too many links", 3, LINK_STORE_LINKS_MAX + 1, 4 },
		{ "empty wrapped", 3, 1, 0 },
		{ "huge wrapped", 3, 1, LINK_STORE_WRAPPED_MAX + 1 },
	};
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(cases); i++) {
		unsigned char buf[8192] = { 0 }, *p = buf;
		struct link_store_new_msg d;
		char err[SP_ERRLEN];
		int want = i == 0 ? 0 : -1;

		memcpy(p, LINK_RECORD_MAGIC_V1, 8); p += 8; /* version 1: no sender, hint */
		p[7] = 100; p += 8;                           /* expires */
		p += 4;                                       /* max_views */
		p[3] = (unsigned char)cases[i].max_failed; p += 4;
		p[0] = (unsigned char)(cases[i].n_links >> 8); p[1] = (unsigned char)cases[i].n_links; p += 2;
		p += 16;                                      /* id */
		p[0] = (unsigned char)(cases[i].wlen >> 8); p[1] = (unsigned char)cases[i].wlen; p += 2;
		if (cases[i].wlen <= 4)
			p += cases[i].wlen;
		p[7] = 3; p += 8;                             /* ct_len */
		p += 3;
		g_test_message("case %s", cases[i].label);
		g_assert_cmpint(link_record_decode(buf, (size_t)(p - buf), &d, err, sizeof err), ==, want);
		if (want == 0)
			link_record_free(&d);
	}
}

/* ---- the link path of [link] base_url ---- */

static void
test_link_path(void)
{
	static const struct { const char *url, *want; } cases[] = {
		{ "", "/s/" },
		{ NULL, "/s/" },
		{ "https://mail.example.org/s/", "/s/" },
		{ "http://127.0.0.1:8025/view/", "/view/" },
		{ "HTTPS://x.example/a/b/", "/a/b/" },
		{ "https://x.example", "/" },
		{ "https://x.example/?t=", NULL },
		{ "ftp://x.example/s/", NULL },
	};
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(cases); i++) {
		char *p = web_link_path(cases[i].url);
		g_assert_cmpstr(p, ==, cases[i].want);
		free(p);
	}
}

/* ---- MIME rendering ---- */

static const char sample[] =
	"From: =?ISO-8859-1?Q?J=F6rg_M=FCller?= <joerg@example.org>\r\n"
	"To: Bob <bob@example.net>, carol@example.net\r\n"
	"Cc: =?UTF-8?B?w4lsb8Ovc2U=?= <eloise@example.com>\r\n"
	"Date: Tue, 14 Nov 2023 22:13:20 +0100\r\n"
	"Subject: =?UTF-8?Q?Quarterly_r=C3=A9sum=C3=A9_=E2=82=AC?=\r\n"
	"MIME-Version: 1.0\r\n"
	"Content-Type: multipart/mixed; boundary=\"outer\"\r\n"
	"\r\n"
	"--outer\r\n"
	"Content-Type: multipart/alternative; boundary=\"alt\"\r\n"
	"\r\n"
	"--alt\r\n"
	"Content-Type: text/plain; charset=ISO-8859-1\r\n"
	"Content-Transfer-Encoding: quoted-printable\r\n"
	"\r\n"
	"Gr=FC=DFe aus K=F6ln <b>not bold</b>\r\n"
	"--alt\r\n"
	"Content-Type: text/html; charset=UTF-8\r\n"
	"Content-Transfer-Encoding: base64\r\n"
	"\r\n"
	"PHA+SGVsbG8gPGltZyBzcmM9Imh0dHA6Ly90cmFja2VyLmV4YW1wbGUvcC5naWYiPjwvcD4=\r\n"
	"--alt--\r\n"
	"--outer\r\n"
	"Content-Type: application/octet-stream\r\n"
	"Content-Disposition: attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.bin\r\n"
	"Content-Transfer-Encoding: base64\r\n"
	"\r\n"
	"AAECA/8=\r\n"
	"--outer\r\n"
	"Content-Type: text/plain; name=\"notes.txt\"\r\n"
	"Content-Disposition: attachment\r\n"
	"\r\n"
	"just notes\r\n"
	"--outer--\r\n";

static void
test_render(void)
{
	struct sp_view m;
	char err[SP_ERRLEN];

	g_assert_cmpint(sp_view_render(sample, sizeof sample - 1, &m, err, sizeof err), ==, 0);
	g_assert_nonnull(strstr(m.from, "J\xc3\xb6rg M\xc3\xbcller"));
	g_assert_nonnull(strstr(m.from, "joerg@example.org"));
	g_assert_nonnull(strstr(m.to, "bob@example.net"));
	g_assert_nonnull(strstr(m.to, "carol@example.net"));
	g_assert_nonnull(strstr(m.cc, "\xc3\x89lo\xc3\xafse"));
	g_assert_cmpstr(m.subject, ==, "Quarterly r\xc3\xa9sum\xc3\xa9 \xe2\x82\xac");
	g_assert_nonnull(strstr(m.date, "14 Nov 2023"));
	g_assert_nonnull(strstr(m.text, "Gr\xc3\xbc\xc3\x9f\x65 aus K\xc3\xb6ln <b>not bold</b>"));
	/* Sanitised: the remote image keeps no src. */
	g_assert_cmpstr(m.html, ==, "<p>Hello <img></p>");
	g_assert_false(m.html_refused);
	g_assert_cmpuint(m.n_att, ==, 2);
	g_assert_cmpstr(m.att[0].filename, ==, "r\xc3\xa9sum\xc3\xa9.bin");
	g_assert_cmpmem(m.att[0].data, m.att[0].len, "\x00\x01\x02\x03\xff", 5);
	g_assert_cmpstr(m.att[1].filename, ==, "notes.txt");
	g_assert_cmpstr(m.att[1].content_type, ==, "text/plain");
	g_assert_false(m.truncated);

	/* And the page shows it all escaped: the text's markup, the HTML part only
	 * inside an escaped srcdoc of a sandboxed iframe. */
	{
		struct sp_buf b;
		sp_buf_init(&b, 0);
		g_assert_cmpint(web_page_message(&b, "/s/TOKEN", &m, "CAP", 1, 1), ==, 0);
		g_assert_null(strstr(b.data, "<b>not bold"));
		g_assert_nonnull(strstr(b.data, "&lt;b&gt;not bold"));
		g_assert_null(strstr(b.data, "<img"));
		g_assert_nonnull(strstr(b.data, "<iframe sandbox=\"allow-popups allow-popups-to-escape-sandbox\""));
		g_assert_nonnull(strstr(b.data, "srcdoc=\"&lt;meta http-equiv=&quot;Content-Security-Policy"));
		g_assert_nonnull(strstr(b.data, "&lt;p&gt;Hello &lt;img&gt;&lt;/p&gt;"));
		g_assert_null(strstr(b.data, "tracker.example"));
		g_assert_nonnull(strstr(b.data, "name=\"dl\" value=\"CAP\""));
		g_assert_nonnull(strstr(b.data, "last allowed view"));
		g_assert_true(g_utf8_validate(b.data, (gssize)b.len, NULL));
		sp_buf_free(&b);
	}
	sp_view_free(&m);
}

static void
test_render_odd(void)
{
	static const struct { const char *label, *msg; const char *want_text; size_t n_att; } cases[] = {
		{ "no headers at all", "\r\njust a body\r\n", "just a body", 0 },
		{ "unknown charset", "Content-Type: text/plain; charset=x-unknown\r\n\r\nabc\xff\r\n",
		  "abc", 0 },
		{ "inline image", "Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\n"
		  "iVBORw0KGgo=\r\n", NULL, 1 },
		{ "forwarded message", "Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nhi\r\n",
		  NULL, 1 },
	};
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(cases); i++) {
		struct sp_view m;
		char err[SP_ERRLEN];

		g_test_message("case %s", cases[i].label);
		g_assert_cmpint(sp_view_render(cases[i].msg, strlen(cases[i].msg), &m, err, sizeof err),
		                ==, 0);
		if (cases[i].want_text)
			g_assert_nonnull(strstr(m.text, cases[i].want_text));
		else
			g_assert_null(m.text);
		if (m.text)
			g_assert_true(g_utf8_validate(m.text, -1, NULL));
		g_assert_cmpuint(m.n_att, ==, cases[i].n_att);
		sp_view_free(&m);
	}
}

static void
test_pages(void)
{
	struct sp_buf b;

	/* The action is escaped too (it comes from the request URL). */
	sp_buf_init(&b, 0);
	g_assert_cmpint(web_page_form(&b, "/s/\"><script>", WEB_FORM_WRONG, 0), ==, 0);
	g_assert_null(strstr(b.data, "<script>"));
	g_assert_nonnull(strstr(b.data, "action=\"/s/&quot;&gt;&lt;script&gt;\""));
	g_assert_nonnull(strstr(b.data, "does not open"));
	g_assert_nonnull(strstr(b.data, "name=\"viewport\""));
	sp_buf_free(&b);
	g_assert_true(g_str_has_prefix(web_pages_style_source(), "'sha256-"));
}

/* ---- connections: per-client counts (IPv6 by /64) and request deadlines ---- */

static const struct {
	const char *label, *addr, *key;
} conn_key_cases[] = {
	{ "v4 exact", "127.0.0.2", "127.0.0.2" },
	{ "v4 neighbour apart", "127.0.0.3", "127.0.0.3" },
	{ "v6 /64", "2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64" },
	{ "v6 same /64", "2001:db8:1:2::1", "2001:db8:1:2::/64" },
	{ "v6 next /64", "2001:db8:1:3::1", "2001:db8:1:3::/64" },
	{ "v6 loopback", "::1", "::/64" },
	{ "v4-mapped folds to v4", "::ffff:198.51.100.7", "198.51.100.7" },
};

static void
test_conn_keys(void)
{
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(conn_key_cases); i++) {
		struct sockaddr_storage ss;
		char key[WEB_CLIENT_KEYLEN];

		g_test_message("case %s", conn_key_cases[i].label);
		sa_from(conn_key_cases[i].addr, &ss);
		g_assert_true(web_conns_key((struct sockaddr *)&ss, key));
		g_assert_cmpstr(key, ==, conn_key_cases[i].key);
	}
}

static void
test_conn_limit(void)
{
	struct web_conns *cs = web_conns_new(2, 1000);
	struct sockaddr_storage a, b, c, other, v4a, v4b;
	struct web_conn *ca, *cb, *c4[2];

	/* Three hosts of one IPv6 /64 are one client. */
	sa_from("2001:db8:1:2::a", &a);
	sa_from("2001:db8:1:2:ffff:ffff:ffff:ffff", &b);
	sa_from("2001:db8:1:2::c", &c);
	sa_from("2001:db8:1:3::a", &other);
	g_assert_true(web_conns_admit(cs, (struct sockaddr *)&a));
	ca = web_conns_open(cs, (struct sockaddr *)&a, -1, 0);
	g_assert_true(web_conns_admit(cs, (struct sockaddr *)&b));
	cb = web_conns_open(cs, (struct sockaddr *)&b, -1, 0);
	g_assert_cmpuint(web_conns_count(cs, (struct sockaddr *)&c), ==, 2);
	g_assert_false(web_conns_admit(cs, (struct sockaddr *)&c));
	g_assert_false(web_conns_admit(cs, (struct sockaddr *)&a));
	g_assert_true(web_conns_admit(cs, (struct sockaddr *)&other));
	/* IPv4 addresses are clients of their own, even neighbours. */
	sa_from("127.0.0.2", &v4a);
	sa_from("127.0.0.3", &v4b);
	c4[0] = web_conns_open(cs, (struct sockaddr *)&v4a, -1, 0);
	c4[1] = web_conns_open(cs, (struct sockaddr *)&v4a, -1, 0);
	g_assert_false(web_conns_admit(cs, (struct sockaddr *)&v4a));
	g_assert_true(web_conns_admit(cs, (struct sockaddr *)&v4b));
	/* Closing gives the slot back. */
	web_conns_close(cs, ca);
	g_assert_true(web_conns_admit(cs, (struct sockaddr *)&c));
	web_conns_close(cs, cb);
	g_assert_cmpuint(web_conns_count(cs, (struct sockaddr *)&a), ==, 0);
	web_conns_close(cs, c4[0]);
	web_conns_close(cs, c4[1]);
	g_assert_cmpuint(web_conns_count(cs, (struct sockaddr *)&v4a), ==, 0);
	web_conns_free(cs);
}

/* Is the far end of a socket pair at end of stream (the near end shut down)? */
static bool
peer_sees_eof(int fd)
{
	char ch;

	return recv(fd, &ch, 1, MSG_DONTWAIT) == 0;
}

static void
test_conn_deadline(void)
{
	struct web_conns *cs = web_conns_new(8, 15000);
	struct sockaddr_storage a;
	int slow[2], busy[2], kept[2];
	struct web_conn *cslow, *cbusy, *ckept;

	sa_from("198.51.100.1", &a);
	g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, slow), ==, 0);
	g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, busy), ==, 0);
	g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, kept), ==, 0);
	cslow = web_conns_open(cs, (struct sockaddr *)&a, slow[0], 1000);
	cbusy = web_conns_open(cs, (struct sockaddr *)&a, busy[0], 1000);
	ckept = web_conns_open(cs, (struct sockaddr *)&a, kept[0], 1000);
	/* cbusy's request is in: it is being answered, no deadline. */
	web_conns_answering(cs, cbusy);
	/* ckept answered one request at 10 s: its next one has until 25 s. */
	web_conns_answering(cs, ckept);
	web_conns_rearm(cs, ckept, 10000);
	g_assert_cmpuint(web_conns_reap(cs, 15999), ==, 0);
	g_assert_false(peer_sees_eof(slow[1]));
	g_assert_cmpuint(web_conns_reap(cs, 16000), ==, 1);
	g_assert_true(peer_sees_eof(slow[1]));
	g_assert_false(peer_sees_eof(busy[1]));
	g_assert_false(peer_sees_eof(kept[1]));
	g_assert_cmpuint(web_conns_reap(cs, 17000), ==, 0); /* once only */
	/* An authenticated upload may take longer. */
	web_conns_extend(cs, ckept, 60000);
	g_assert_cmpuint(web_conns_reap(cs, 59999), ==, 0);
	g_assert_cmpuint(web_conns_reap(cs, 60000), ==, 1);
	g_assert_true(peer_sees_eof(kept[1]));
	g_assert_false(peer_sees_eof(busy[1]));
	/* Still counted until libmicrohttpd closes them. */
	g_assert_cmpuint(web_conns_count(cs, (struct sockaddr *)&a), ==, 3);
	web_conns_close(cs, cslow);
	web_conns_close(cs, cbusy);
	web_conns_close(cs, ckept);
	g_assert_cmpuint(web_conns_reap(NULL, 0), ==, 0);
	web_conns_free(cs);
	close(slow[0]); close(slow[1]);
	close(busy[0]); close(busy[1]);
	close(kept[0]); close(kept[1]);
}

/* ---- request targets ---- */

static const struct {
	const char *uri;
	bool ok;
} uri_cases[] = {
	{ "/", true },
	{ "/s/AbC-_09xyz", true },
	{ "/outbox/0123abcd?done=revoked", true },
	{ "/x?a=%41%2f&b=c+d", true },
	{ "/outbox%00", false },
	{ "/outbox%2f", false },
	{ "/%6Futbox", false },
	{ "//outbox", false },
	{ "/outbox//x", false },
	{ "/outbox/.", false },
	{ "/outbox/./x", false },
	{ "/s/../outbox", false },
	{ "/..", false },
	{ "/outbox\\x", false },
	{ "/x?done=%00", false },
	{ "/x?done=%0", false },
	{ "/x?done=%zz", false },
	{ "/x?a=\x01", false },
	{ "/\xc3\xa9", false },
	{ "/x#frag", false },
	{ "", false },
	{ "outbox", false },
	{ "http://localhost/outbox", false },
	{ "*", false },
};

static void
test_uri_plain(void)
{
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(uri_cases); i++) {
		g_test_message("case %s", uri_cases[i].uri);
		g_assert_cmpint(web_uri_is_plain(uri_cases[i].uri), ==, uri_cases[i].ok);
	}
	g_assert_false(web_uri_is_plain(NULL));
}

static void
test_log_redact(void)
{
	static const struct { const char *in, *want; } cases[] = {
		{ "Failed to send data in response for /s/AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcdefg.",
		  "Failed to send data in response for /s/[redacted]." },
		{ "request for `/outbox/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef'",
		  "request for `/outbox/[redacted]'" },
		{ "Server reached connection limit. Closing inbound connection.",
		  "Server reached connection limit. Closing inbound connection." },
		{ "short-ids_like_this ok 1234567890123456789", "short-ids_like_this ok 1234567890123456789" },
		{ "", "" },
	};
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(cases); i++) {
		char line[256];
		sp_strlcpy(line, cases[i].in, sizeof line);
		web_log_redact(line);
		g_assert_cmpstr(line, ==, cases[i].want);
	}
}

/* ---- the outbox token ---- */

static void
test_outbox_token(void)
{
	char *dir = g_dir_make_tmp("sp-outbox-XXXXXX", NULL);
	char *state = g_build_filename(dir, "state", NULL);
	char *file = g_build_filename(state, WEB_OUTBOX_TOKEN_FILE, NULL);
	char t1[WEB_OUTBOX_TOKEN_HEXLEN + 1], t2[WEB_OUTBOX_TOKEN_HEXLEN + 1];
	char err[SP_ERRLEN], *url;
	struct sp_listen l;
	struct stat st;
	size_t i;

	/* Not there, not made: an error that says when it is made. */
	g_assert_cmpint(web_outbox_token(state, false, t1, err, sizeof err), ==, -1);
	g_assert_nonnull(strstr(err, "outbox = yes"));
	/* Made at the first start: 64 hex digits, 0600, the same ever after. */
	g_assert_cmpint(web_outbox_token(state, true, t1, err, sizeof err), ==, 0);
	g_assert_cmpuint(strlen(t1), ==, WEB_OUTBOX_TOKEN_HEXLEN);
	for (i = 0; i < strlen(t1); i++)
		g_assert_true(g_ascii_isxdigit(t1[i]) && !g_ascii_isupper(t1[i]));
	g_assert_cmpint(stat(file, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 0777, ==, 0600);
	g_assert_cmpint(web_outbox_token(state, true, t2, err, sizeof err), ==, 0);
	g_assert_cmpstr(t1, ==, t2);
	g_assert_cmpint(web_outbox_token(state, false, t2, err, sizeof err), ==, 0);
	g_assert_cmpstr(t1, ==, t2);
	/* Readable by others: refused, and the error does not show the token. */
	g_assert_cmpint(chmod(file, 0644), ==, 0);
	g_assert_cmpint(web_outbox_token(state, false, t2, err, sizeof err), ==, -1);
	g_assert_nonnull(strstr(err, "chmod 600"));
	g_assert_null(strstr(err, t1));
	g_assert_cmpint(chmod(file, 0600), ==, 0);
	/* Damaged: refused. */
	g_assert_true(g_file_set_contents(file, "short\n", -1, NULL));
	g_assert_cmpint(chmod(file, 0600), ==, 0);
	g_assert_cmpint(web_outbox_token(state, true, t2, err, sizeof err), ==, -1);
	/* The URL `sealpost outbox` prints. */
	g_assert_cmpint(sp_parse_listen("127.0.0.1:8026", &l, err, sizeof err), ==, 0);
	url = web_outbox_url(&l, t1);
	g_assert_true(g_str_has_prefix(url, "http://127.0.0.1:8026/outbox/"));
	g_assert_cmpstr(url + strlen("http://127.0.0.1:8026/outbox/"), ==, t1);
	free(url);
	g_assert_cmpint(sp_parse_listen("[::1]:8026", &l, err, sizeof err), ==, 0);
	url = web_outbox_url(&l, "ab");
	g_assert_cmpstr(url, ==, "http://[::1]:8026/outbox/ab");
	free(url);
	unlink(file);
	rmdir(state);
	rmdir(dir);
	g_free(file);
	g_free(state);
	g_free(dir);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	if (sodium_init() < 0)
		return 1;
	g_test_add_func("/web/escape", test_escape);
	g_test_add_func("/web/escape_nul", test_escape_nul);
	g_test_add_func("/web/filename", test_filename);
	g_test_add_func("/web/percent", test_percent);
	g_test_add_func("/web/addresses", test_addresses);
	g_test_add_func("/web/address_hops", test_address_hops);
	g_test_add_func("/web/address_other_family", test_address_other_family);
	g_test_add_func("/web/host_header", test_host_header);
	g_test_add_func("/web/tarpit_delays", test_tarpit_delays);
	g_test_add_func("/web/tarpit", test_tarpit);
	g_test_add_func("/web/tarpit_attempts", test_tarpit_attempts);
	g_test_add_func("/web/sessions", test_sessions);
	g_test_add_func("/web/sessions_per_link", test_sessions_per_link);
	g_test_add_func("/web/outbox", test_outbox);
	g_test_add_func("/web/outbox_token", test_outbox_token);
	g_test_add_func("/web/conn_keys", test_conn_keys);
	g_test_add_func("/web/conn_limit", test_conn_limit);
	g_test_add_func("/web/conn_deadline", test_conn_deadline);
	g_test_add_func("/web/uri_plain", test_uri_plain);
	g_test_add_func("/web/log_redact", test_log_redact);
	g_test_add_func("/web/record_roundtrip", test_record_roundtrip);
	g_test_add_func("/web/record_fields", test_record_fields);
	g_test_add_func("/web/link_path", test_link_path);
	g_test_add_func("/web/render", test_render);
	g_test_add_func("/web/render_odd", test_render_odd);
	g_test_add_func("/web/pages", test_pages);
	return g_test_run();
}

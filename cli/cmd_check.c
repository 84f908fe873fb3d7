/* cmd_check.c - `sealpost check`: config, upstream, and what each recipient gets.
 *
 * The checks fill one report; it is printed for people, or as JSON (--json)
 * for scripts.  Exit 1 on any problem, 2 on a config error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <glib.h>

#include "cli.h"
#include "link_copy.h"
#include "link_store.h"
#include "log.h"
#include "pgp.h"
#include "policy.h"
#include "relay.h"
#include "smtp_client.h"
#include "discovery.h"
#include "smtp_parse.h"
#include "sodium_keys.h"

struct rcpt_report {
	const char *addr;
	const char *status;           /* ok | refused | error */
	const char *form;
	char detail[160];
	char reason[768];
	char source[300];             /* a discovered key: where from, since when */
	struct sp_pgp_key_info key;   /* OpenPGP recipients */
};

struct report {
	const char *config;
	const char *keyring;          /* ok | none | error */
	char keyring_note[SP_ERRLEN]; /* the fault, or a warning */
	const char *discovery;        /* off | ok | error */
	char discovery_error[SP_ERRLEN];
	size_t n_keys;
	const char *sodium;           /* ok | none | error */
	char sodium_error[SP_ERRLEN];
	size_t n_sodium;
	const struct sp_config *cfg;
	bool upstream_ok;
	char upstream_error[SMTP_REPLY_TEXT_MAX + 32];
	char tls[96];
	char cert[512];
	const char *auth;             /* ok | not configured | failed */
	char extensions[128];
	struct rcpt_report *rcpts;
	size_t n_rcpts;
	int problems;
};

static const char usage[] =
	"usage: sealpost check [-c FILE] [--json] [--rcpt ADDR...]\n"
	"       sealpost check [-c FILE] --viewer [--ca-file FILE] [URL]\n\n"
	"Validates the config, the OpenPGP keyring and the sodium recipients file,\n"
	"connects to the upstream (TLS, certificate, AUTH) and reports each step;\n"
	"for each --rcpt address, prints the form it would get and\n"
	"why (key fingerprint and validity, sodium key, link, or the refusal reason).\n"
	"--json prints the same as one JSON object.  Exit status 1 on any problem, 2 on\n"
	"a config error.\n\n"
	"--viewer fetches the link page and its scripts from the viewer at URL (default:\n"
	"[link] base_url) and compares each with the SHA-256 this build was made with;\n"
	"TLS is verified against the system store, or --ca-file FILE (PEM).  Exit\n"
	"status 0 when every file matches, 1 otherwise.\n";

static void
check_upstream(struct report *r, struct relay *relay)
{
	struct smtp_client *client = NULL;
	struct smtp_reply fail = { 0 };

	if (relay_open(relay, NULL, &client, &fail) < 0) {
		snprintf(r->upstream_error, sizeof r->upstream_error, "%d %s %s", fail.code, fail.enh, fail.text);
		r->auth = r->cfg->upstream.username[0] ? "not tried" : "not configured";
		r->problems++;
		smtp_reply_clear(&fail);
		return;
	}
	r->upstream_ok = true;
	sp_strlcpy(r->tls, client->tls_info, sizeof r->tls);
	sp_strlcpy(r->cert, client->peer_cert, sizeof r->cert);
	r->auth = r->cfg->upstream.username[0] ? "ok" : "not configured";
	snprintf(r->extensions, sizeof r->extensions, "%s%s%s%s", client->cap_pipelining ? "PIPELINING " : "",
	         client->cap_8bitmime ? "8BITMIME " : "", client->cap_smtputf8 ? "SMTPUTF8 " : "",
	         client->cap_size ? "SIZE" : "");
	g_strchomp(r->extensions);
	smtp_client_close(client);
}

/* The keyring as lookups see it: a fault here is a 451 for every recipient
 * at RCPT, so it is a problem even without --rcpt. */
static void
check_keyring(struct report *r, struct sp_policy *policy)
{
	char err[SP_ERRLEN];
	struct sp_pgp *pgp = sp_policy_pgp(policy, err, sizeof err);

	if (pgp == NULL) {
		r->keyring = "error";
		sp_strlcpy(r->keyring_note, err, sizeof r->keyring_note);
		r->problems++;
		return;
	}
	switch (sp_pgp_keyring_verify(pgp, &r->n_keys, r->keyring_note, sizeof r->keyring_note)) {
	case SP_PGP_KEYRING_OK:
		r->keyring = "ok";
		break;
	case SP_PGP_KEYRING_ABSENT:
		r->keyring = "none";
		break;
	case SP_PGP_KEYRING_FAULT:
	default:
		r->keyring = "error";
		r->problems++;
		break;
	}
}

static void
check_rcpt(struct report *r, struct sp_policy *policy, struct rcpt_report *rr)
{
	struct sp_decision d;
	struct smtp_path path;
	const char *rest;
	char err[SP_ERRLEN], *bracketed = sp_xasprintf("<%s>", rr->addr);
	int bad = smtp_parse_path(bracketed, false, true, &path, &rest, err, sizeof err) < 0 || *rest;

	free(bracketed);
	if (bad) {
		rr->status = "error";
		rr->form = "none";
		snprintf(rr->reason, sizeof rr->reason, "not a mail address: %s", err);
		r->problems++;
		return;
	}
	switch (sp_policy_decide(policy, rr->addr, &d)) {
	case SP_POLICY_OK:
		rr->status = "ok";
		rr->form = sp_form_name(d.form);
		sp_strlcpy(rr->detail, d.detail, sizeof rr->detail);
		sp_strlcpy(rr->reason, d.reason, sizeof rr->reason);
		sp_strlcpy(rr->source, d.source, sizeof rr->source);
		if (d.form == SP_FORM_PGP && d.source[0] == '\0') {
			struct sp_pgp *pgp = sp_policy_pgp(policy, err, sizeof err);
			if (pgp)
				sp_pgp_find_key(pgp, rr->addr, &rr->key, err, sizeof err);
		}
		break;
	case SP_POLICY_REFUSE:
		rr->status = "refused";
		rr->form = "none";
		sp_strlcpy(rr->reason, d.reason, sizeof rr->reason);
		r->problems++;
		break;
	default:
		rr->status = "error";
		rr->form = "none";
		sp_strlcpy(rr->reason, d.reason, sizeof rr->reason);
		r->problems++;
		break;
	}
}

static void
print_text(const struct report *r)
{
	const struct sp_config *cfg = r->cfg;
	size_t i;

	printf("config      %s: ok\n", r->config);
	if (strcmp(r->keyring, "error") == 0)
		printf("keyring     %s: FAILED: %s\n", cfg->pgp.gnupg_home, r->keyring_note);
	else if (strcmp(r->keyring, "none") == 0)
		printf("keyring     none (%s does not exist: no OpenPGP keys)\n", cfg->pgp.gnupg_home);
	else
		printf("keyring     %s: %zu key(s)%s%s\n", cfg->pgp.gnupg_home, r->n_keys,
		       r->keyring_note[0] ? "; WARNING: " : "", r->keyring_note);
	if (strcmp(r->sodium, "error") == 0)
		printf("sodium      FAILED: %s\n", r->sodium_error);
	else if (r->n_sodium)
		printf("sodium      %zu recipient(s) in %s\n", r->n_sodium, cfg->sodium.recipients);
	if (strcmp(r->discovery, "error") == 0)
		printf("discovery   FAILED: %s\n", r->discovery_error);
	else if (strcmp(r->discovery, "ok") == 0)
		printf("discovery   %s%s%s\n", cfg->discovery.wkd ? "WKD" : "",
		       cfg->discovery.wkd && cfg->discovery.keyserver[0] ? ", keyserver " :
		       cfg->discovery.keyserver[0] ? "keyserver " : "", cfg->discovery.keyserver);
	for (i = 0; i < cfg->proxy.n_listen; i++)
		printf("listen      %s:%s (%s, auth %s)\n", cfg->proxy.listen[i].host, cfg->proxy.listen[i].port,
		       cfg->proxy.listen[i].implicit_tls ? "implicit TLS" : "STARTTLS offered",
		       sp_auth_mode_name(cfg->proxy.auth));
	if (cfg->link.base_url[0]) {
		char *store = link_store_label(cfg->link.store); /* no database password */
		/* The form of the links the proxy makes (docs/formats.md). */
		printf("link        %s%s (%s)\n", cfg->link.base_url,
		       sp_link_make_v1(cfg) ? "<token>" : "<link-id>#<link-secret>",
		       cfg->link.upload_url[0] ? cfg->link.upload_url : store);
		free(store);
	}
	printf("upstream    %s:%s, tls %s\n", cfg->upstream.host, cfg->upstream.port,
	       sp_upstream_tls_name(cfg->upstream.tls));
	if (!r->upstream_ok) {
		printf("upstream    FAILED: %s\n", r->upstream_error);
	} else {
		printf("connect     ok\n");
		if (r->tls[0]) {
			printf("tls         %s\n", r->tls);
			printf("certificate verified: %s\n", r->cert);
		} else {
			printf("tls         none (loopback upstream, [upstream] tls = none)\n");
		}
		if (cfg->upstream.username[0])
			printf("auth        ok as %s\n", cfg->upstream.username);
		else
			printf("auth        not configured ([upstream] username)\n");
		printf("extensions  %s\n", r->extensions);
	}
	for (i = 0; i < r->n_rcpts; i++) {
		const struct rcpt_report *rr = &r->rcpts[i];
		if (strcmp(rr->status, "ok") != 0) {
			printf("rcpt        %s: %s: %s\n", rr->addr, strcmp(rr->status, "refused") == 0 ? "REFUSED" : "FAILED",
			       rr->reason);
			continue;
		}
		printf("rcpt        %s: %s", rr->addr, rr->form);
		if (rr->key.fpr[0]) {
			char exp[64] = "never";
			if (rr->key.expires) {
				time_t t = (time_t)rr->key.expires;
				struct tm tm;
				gmtime_r(&t, &tm);
				strftime(exp, sizeof exp, "%Y-%m-%d", &tm);
			}
			printf(" key %s (%s, validity %s, expires %s)", rr->key.fpr, rr->key.uid, rr->key.validity, exp);
		} else if (rr->detail[0]) {
			printf(" %s", rr->detail);
		}
		if (rr->source[0])
			printf(" discovered: %s", rr->source);
		if (rr->reason[0])
			printf(" - %s", rr->reason);
		printf("\n");
		if (strcmp(rr->form, "plain") == 0)
			printf("            WARNING: this recipient would get the message unencrypted\n");
	}
	printf("%s\n", r->problems ? "check FAILED" : "check ok");
}

static void
json_str(const char *s)
{
	putchar('"');
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void
json_kv(const char *k, const char *v, bool comma)
{
	json_str(k);
	putchar(':');
	json_str(v);
	if (comma)
		putchar(',');
}

static void
print_json(const struct report *r)
{
	const struct sp_config *cfg = r->cfg;
	size_t i;

	printf("{");
	json_kv("config", r->config, true);
	printf("\"ok\":%s,\"sodium_recipients\":%zu,", r->problems ? "false" : "true", r->n_sodium);
	printf("\"keyring\":{");
	json_kv("path", cfg->pgp.gnupg_home, true);
	json_kv("status", r->keyring, true);
	printf("\"keys\":%zu,", r->n_keys);
	json_kv("note", r->keyring_note, false);
	printf("},\"sodium\":{");
	json_kv("path", cfg->sodium.recipients, true);
	json_kv("status", r->sodium, true);
	json_kv("error", r->sodium_error, false);
	printf("},\"discovery\":{");
	json_kv("status", r->discovery, true);
	json_kv("error", r->discovery_error, false);
	printf("},\"listen\":[");
	for (i = 0; i < cfg->proxy.n_listen; i++) {
		printf("%s{", i ? "," : "");
		json_kv("host", cfg->proxy.listen[i].host, true);
		json_kv("port", cfg->proxy.listen[i].port, true);
		json_kv("tls", cfg->proxy.listen[i].implicit_tls ? "implicit" : "starttls", true);
		json_kv("auth", sp_auth_mode_name(cfg->proxy.auth), false);
		printf("}");
	}
	printf("],\"upstream\":{");
	json_kv("host", cfg->upstream.host, true);
	json_kv("port", cfg->upstream.port, true);
	json_kv("tls_mode", sp_upstream_tls_name(cfg->upstream.tls), true);
	printf("\"ok\":%s,", r->upstream_ok ? "true" : "false");
	json_kv("error", r->upstream_error, true);
	json_kv("tls", r->tls, true);
	json_kv("certificate", r->cert, true);
	json_kv("auth", r->auth ? r->auth : "", true);
	json_kv("extensions", r->extensions, false);
	printf("},\"recipients\":[");
	for (i = 0; i < r->n_rcpts; i++) {
		const struct rcpt_report *rr = &r->rcpts[i];
		printf("%s{", i ? "," : "");
		json_kv("address", rr->addr, true);
		json_kv("status", rr->status, true);
		json_kv("form", rr->form, true);
		json_kv("detail", rr->detail, true);
		json_kv("source", rr->source, true);
		if (rr->key.fpr[0]) {
			printf("\"key\":{");
			json_kv("fingerprint", rr->key.fpr, true);
			json_kv("uid", rr->key.uid, true);
			json_kv("validity", rr->key.validity, true);
			printf("\"expires\":%lld},", rr->key.expires);
		}
		json_kv("reason", rr->reason, false);
		printf("}");
	}
	printf("]}\n");
}

/* `check --viewer [URL]`: only the viewer, nothing else of the config. */
static int
run_check_viewer(const struct cli_command *cmd, int argc, char **argv, int first, const char *cfgpath,
                 const char *ca_file, size_t n_addrs, bool json, const char **addrs)
{
	struct sp_config cfg;
	int rv;

	free(addrs);
	if (n_addrs || json || argc - first > 1)
		return cli_usage_error(cmd);
	if (argc - first == 1)
		return check_viewer(argv[first], ca_file);
	if ((rv = cli_load_config(cfgpath, false, &cfg)) != 0)
		return rv;
	if (cfg.link.base_url[0] == '\0') {
		fprintf(stderr, "sealpost: check --viewer: no [link] base_url in %s; give the viewer's URL\n",
		        cfg.path);
		sp_config_free(&cfg);
		return EXIT_USAGE;
	}
	rv = check_viewer(cfg.link.base_url, ca_file);
	sp_config_free(&cfg);
	return rv;
}

int
cmd_check(int argc, char **argv)
{
	const char **addrs = sp_xcalloc((size_t)argc + 1, sizeof *addrs);
	size_t n_addrs = 0, i;
	bool json = false, viewer = false;
	const char *ca_file = NULL;
	const struct cli_option opts[] = {
		{ .name = "viewer", .letter = 'V', .flag = &viewer },
		{ .name = "ca-file", .letter = 'C', .value = &ca_file },
		{ .name = "rcpt", .letter = 'r', .list = addrs, .n_list = &n_addrs },
		{ .name = "json", .letter = 'j', .flag = &json },
		{ 0 },
	};
	const struct cli_command cmd = { .usage = usage, .config = true, .options = opts,
	                                 .max_operands = CLI_ANY };
	struct report r = { 0 };
	struct sp_config cfg;
	struct relay *relay = NULL;
	struct sp_policy *policy = NULL;
	struct sp_discovery *disc = NULL;
	const char *cfgpath = NULL;
	char err[SP_ERRLEN];
	int first, rv;

	if ((rv = cli_parse_args(&cmd, argc, argv, &cfgpath, &first)) != CLI_CONTINUE) {
		free(addrs);
		return rv;
	}
	if (viewer)
		return run_check_viewer(&cmd, argc, argv, first, cfgpath, ca_file, n_addrs, json, addrs);
	if (ca_file) {
		free(addrs);
		return cli_usage_error(&cmd);
	}
	/* `--rcpt a@x b@y`: further addresses after the first. */
	for (; first < argc; first++)
		addrs[n_addrs++] = argv[first];
	if ((rv = cli_load_config(cfgpath, true, &cfg)) != 0) {
		free(addrs);
		return rv;
	}
	sp_log_init(SP_LOG_ERROR);
	r.cfg = &cfg;
	r.config = cfg.path;
	r.discovery = "off";
	{
		/* A recipients file that cannot be read or parsed is a 451 for
		 * every recipient at RCPT: a problem, reported with the rest. */
		struct sp_sodium_recipients *sr = NULL;
		if (sp_policy_load_sodium(&cfg, &sr, r.sodium_error, sizeof r.sodium_error) < 0) {
			r.sodium = "error";
			r.problems++;
		} else {
			r.sodium = sr ? "ok" : "none";
		}
		r.n_sodium = sr ? sp_sodium_recipients_count(sr) : 0;
		sp_sodium_recipients_free(sr);
	}
	relay = relay_new(&cfg, NULL, err, sizeof err);
	if (relay == NULL) {
		snprintf(r.upstream_error, sizeof r.upstream_error, "%s", err);
		r.problems++;
	} else {
		check_upstream(&r, relay);
	}
	r.rcpts = sp_xcalloc(n_addrs ? n_addrs : 1, sizeof *r.rcpts);
	r.n_rcpts = n_addrs;
	if (cfg.discovery.wkd || cfg.discovery.keyserver[0]) {
		/* Its keyring or database unusable: every recipient would get a 451. */
		if ((disc = sp_discovery_open(&cfg, r.discovery_error, sizeof r.discovery_error)) == NULL) {
			r.discovery = "error";
			r.problems++;
		} else {
			r.discovery = "ok";
			sp_policy_set_discovery(sp_discovery_hook(disc));
		}
	}
	policy = sp_policy_new(&cfg, err, sizeof err);
	check_keyring(&r, policy);
	for (i = 0; i < n_addrs; i++) {
		r.rcpts[i].addr = addrs[i];
		check_rcpt(&r, policy, &r.rcpts[i]);
	}
	if (json)
		print_json(&r);
	else
		print_text(&r);
	rv = r.problems ? EXIT_RUNTIME : EXIT_OK;
	sp_policy_free(policy);
	sp_pgp_pool_clear();
	sp_policy_set_discovery(NULL);
	sp_discovery_close(disc);
	relay_free(relay);
	free(r.rcpts);
	sp_config_free(&cfg);
	free(addrs);
	return rv;
}

/* config.c - sealpost.conf: one table of keys, GLib's key-file parser underneath. */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <pwd.h>
#include <unistd.h>

#include <glib.h>

#include "sealpost-config.h"
#include "net.h"
#include "util.h"

/* A config file larger than this is a mistake (or an attack on whoever parses it). */
#define SP_CONFIG_MAX_BYTES (1024 * 1024)

enum key_type {
	K_STRING,      /* free text, may be empty */
	K_PATH,        /* "~/" expanded; "$STATE/" and "$CONFDIR/" expanded in defaults */
	K_BOOL,
	K_UINT,
	K_SIZE,
	K_DURATION,
	K_ENUM,
	K_LISTEN_LIST,
	K_LISTEN,
	K_PORT,
	K_URL,         /* empty, or http(s)://... */
	K_NET_LIST,    /* comma-separated ADDR or ADDR/PREFIX, into a struct sp_net_list */
};

struct key_def {
	const char *section;
	const char *name;
	enum key_type type;
	size_t offset;
	const char *def;            /* default, in the same syntax as the file; NULL = unset */
	const char *const *names;   /* K_ENUM: value names, index = enum value */
	uint64_t min, max;          /* K_UINT / K_SIZE / K_DURATION bounds */
};

static const char *const auth_names[] = { "none", "users", "passthrough", NULL };
static const char *const upstream_tls_names[] = { "starttls", "tls", "none", NULL };
static const char *const trust_names[] = { "keyring", "always", NULL };
static const char *const mode_names[] = { "embedded", "off", NULL };
static const char *const nokey_names[] = { "link", "reject", "plain", NULL };
static const char *const bare_lf_names[] = { "accept-trusted", "reject", NULL };
static const char *const key_change_names[] = { "next-form", "accept", NULL };
static const char *const level_names[] = { "error", "warning", "info", "debug", NULL };

#define OFF(f) offsetof(struct sp_config, f)

/* Every key sealpost knows.  Bounds are the reason-carrying limits: see
 * docs/configuration.md for why each default is what it is. */
static const struct key_def keys[] = {
	{ "proxy", "listen", K_LISTEN_LIST, OFF(proxy.listen), "127.0.0.1:587", NULL, 0, 0 },
	{ "proxy", "tls_cert", K_PATH, OFF(proxy.tls_cert), NULL, NULL, 0, 0 },
	{ "proxy", "tls_key", K_PATH, OFF(proxy.tls_key), NULL, NULL, 0, 0 },
	{ "proxy", "auth", K_ENUM, OFF(proxy.auth), "none", auth_names, 0, 0 },
	{ "proxy", "users_file", K_PATH, OFF(proxy.users_file), "$CONFDIR/users", NULL, 0, 0 },
	/* 1 KiB .. 1 GiB: the whole message is held in memory while it is encrypted. */
	{ "proxy", "max_message_size", K_SIZE, OFF(proxy.max_message_size), "52428800", NULL,
	  1024, 1024ULL * 1024 * 1024 },
	/* RFC 5321 4.5.3.1.8: a server must accept at least 100 recipients. */
	{ "proxy", "max_recipients", K_UINT, OFF(proxy.max_recipients), "100", NULL, 1, 1000 },
	{ "proxy", "max_connections", K_UINT, OFF(proxy.max_connections), "256", NULL, 1, 10000 },
	/* One remote address cannot take every slot; loopback clients are exempt
	 * (all local mail clients share 127.0.0.1).  0 = no per-address limit. */
	{ "proxy", "max_connections_per_ip", K_UINT, OFF(proxy.max_connections_per_ip), "20", NULL, 0, 10000 },
	{ "proxy", "user", K_STRING, OFF(proxy.user), "", NULL, 0, 0 },
	/* RFC 5321 4.5.3.2.7: at least 5 minutes waiting for the next command. */
	{ "proxy", "timeout", K_DURATION, OFF(proxy.timeout), "5m", NULL, 1, 3600 },
	/* RFC 5321 4.5.3.2.5: 3 minutes per data block. */
	{ "proxy", "data_timeout", K_DURATION, OFF(proxy.data_timeout), "3m", NULL, 1, 3600 },
	/* Bare LF in DATA from a trusted client (loopback peer or authenticated) is
	 * taken as CRLF, the way curl without --crlf sends; the end of data stays
	 * CRLF.CRLF on the raw bytes.  Bare CR is always refused. */
	{ "proxy", "bare_lf", K_ENUM, OFF(proxy.bare_lf), "accept-trusted", bare_lf_names, 0, 0 },

	{ "upstream", "host", K_STRING, OFF(upstream.host), "", NULL, 0, 0 },
	{ "upstream", "port", K_PORT, OFF(upstream.port), NULL, NULL, 0, 0 },
	{ "upstream", "tls", K_ENUM, OFF(upstream.tls), "starttls", upstream_tls_names, 0, 0 },
	{ "upstream", "ca_file", K_PATH, OFF(upstream.ca_file), "", NULL, 0, 0 },
	{ "upstream", "username", K_STRING, OFF(upstream.username), "", NULL, 0, 0 },
	{ "upstream", "password_file", K_PATH, OFF(upstream.password_file), "", NULL, 0, 0 },
	{ "upstream", "password_command", K_STRING, OFF(upstream.password_command), "", NULL, 0, 0 },
	{ "upstream", "helo", K_STRING, OFF(upstream.helo), "localhost", NULL, 0, 0 },
	/* RFC 5321 4.5.3.2: the client waits 5 minutes for most replies, 10 after DATA. */
	{ "upstream", "timeout", K_DURATION, OFF(upstream.timeout), "5m", NULL, 1, 3600 },

	{ "pgp", "gnupg_home", K_PATH, OFF(pgp.gnupg_home), "$GNUPGHOME", NULL, 0, 0 },
	{ "pgp", "gpg_program", K_PATH, OFF(pgp.gpg_program), "", NULL, 0, 0 },
	{ "pgp", "trust", K_ENUM, OFF(pgp.trust), "keyring", trust_names, 0, 0 },
	{ "pgp", "hide_subject", K_BOOL, OFF(pgp.hide_subject), "yes", NULL, 0, 0 },
	{ "pgp", "encrypt_to_self", K_BOOL, OFF(pgp.encrypt_to_self), "yes", NULL, 0, 0 },
	{ "pgp", "sign", K_BOOL, OFF(pgp.sign), "no", NULL, 0, 0 },
	/* A hung gpg or agent must not hold a session (and the client) forever;
	 * 25 MB encrypts in about a second. */
	{ "pgp", "timeout", K_DURATION, OFF(pgp.timeout), "2m", NULL, 1, 3600 },

	{ "sodium", "recipients", K_PATH, OFF(sodium.recipients), "$CONFDIR/sodium-recipients", NULL, 0, 0 },

	{ "link", "store", K_PATH, OFF(link.store), "$STATE/links.sqlite", NULL, 0, 0 },
	{ "link", "base_url", K_URL, OFF(link.base_url), "", NULL, 0, 0 },
	{ "link", "expiry", K_DURATION, OFF(link.expiry), "14d", NULL, 60, 366 * 86400 },
	{ "link", "max_views", K_UINT, OFF(link.max_views), "0", NULL, 0, 1000000 },
	{ "link", "max_failed_attempts", K_UINT, OFF(link.max_failed_attempts), "10", NULL, 1, 1000 },
	{ "link", "version", K_UINT, OFF(link.version), "2", NULL, 1, 2 },
	{ "link", "upload_url", K_URL, OFF(link.upload_url), "", NULL, 0, 0 },
	{ "link", "upload_token_file", K_PATH, OFF(link.upload_token_file), "", NULL, 0, 0 },
	{ "link", "templates", K_PATH, OFF(link.templates), "", NULL, 0, 0 },

	{ "linkserver", "mode", K_ENUM, OFF(linkserver.mode), "embedded", mode_names, 0, 0 },
	{ "linkserver", "listen", K_LISTEN, OFF(linkserver.listen), "127.0.0.1:8025", NULL, 0, 0 },
	{ "linkserver", "tls_cert", K_PATH, OFF(linkserver.tls_cert), "", NULL, 0, 0 },
	{ "linkserver", "tls_key", K_PATH, OFF(linkserver.tls_key), "", NULL, 0, 0 },
	{ "linkserver", "outbox", K_BOOL, OFF(linkserver.outbox), "yes", NULL, 0, 0 },
	/* Peers whose X-Forwarded-For / Forwarded / X-Real-IP the viewer believes:
	 * by default a reverse proxy on this host, as the docs set it up. */
	{ "linkserver", "trusted_proxies", K_NET_LIST, OFF(linkserver.trusted_proxies),
	  "127.0.0.0/8, ::1", NULL, 0, 0 },
	/* The outbox's own listener: loopback only, next to the viewer's default. */
	/* Secure reply (docs/formats.md "Secure reply"): the largest reply the
	 * viewer stores (the OpenPGP message as posted), 1 KiB .. 64 MiB. */
	{ "linkserver", "reply_max_size", K_SIZE, OFF(linkserver.reply_max_size), "10485760", NULL,
	  1024, 64ULL * 1024 * 1024 },
	/* Replies per unlock (per reply capability); 0 turns replies off. */
	{ "linkserver", "reply_max_count", K_UINT, OFF(linkserver.reply_max_count), "3", NULL, 0,
	  100 },
	/* The least time between two replies of one unlock. */
	{ "linkserver", "reply_min_interval", K_DURATION, OFF(linkserver.reply_min_interval), "30s",
	  NULL, 0, 86400 },
	{ "linkserver", "outbox_listen", K_LISTEN, OFF(linkserver.outbox_listen), "127.0.0.1:8026",
	  NULL, 0, 0 },

	/* Key discovery (docs/discovery.md).  The keyserver is off by default: it
	 * tells a third party whom you write to.  The timeout is the whole budget
	 * of one recipient's lookups (RCPT waits for it). */
	{ "discovery", "wkd", K_BOOL, OFF(discovery.wkd), "yes", NULL, 0, 0 },
	{ "discovery", "keyserver", K_URL, OFF(discovery.keyserver), "", NULL, 0, 0 },
	{ "discovery", "timeout", K_DURATION, OFF(discovery.timeout), "3s", NULL, 1, 60 },
	{ "discovery", "ttl", K_DURATION, OFF(discovery.ttl), "7d", NULL, 60, 366 * 86400 },
	{ "discovery", "negative_ttl", K_DURATION, OFF(discovery.negative_ttl), "1h", NULL, 1, 30 * 86400 },
	{ "discovery", "on_key_change", K_ENUM, OFF(discovery.on_key_change), "next-form", key_change_names, 0, 0 },
	{ "discovery", "ca_file", K_PATH, OFF(discovery.ca_file), "", NULL, 0, 0 },
	{ "discovery", "connect_to", K_STRING, OFF(discovery.connect_to), "", NULL, 0, 0 },

	{ "policy", "no_key", K_ENUM, OFF(policy.no_key), "link", nokey_names, 0, 0 },

	{ "queue", "dir", K_PATH, OFF(queue.dir), "$STATE/queue", NULL, 0, 0 },
	{ "queue", "lifetime", K_DURATION, OFF(queue.lifetime), "3d", NULL, 60, 60 * 86400 },
	/* First retry after a minute, doubling up to an hour (Postfix: 300s/4000s;
	 * a laptop that is back online should not wait long). */
	{ "queue", "min_backoff", K_DURATION, OFF(queue.min_backoff), "1m", NULL, 1, 86400 },
	{ "queue", "max_backoff", K_DURATION, OFF(queue.max_backoff), "1h", NULL, 1, 86400 },

	{ "log", "level", K_ENUM, OFF(log.level), "info", level_names, 0, 0 },
};

const char *
sp_auth_mode_name(enum sp_auth_mode m)
{
	return auth_names[m];
}

const char *
sp_upstream_tls_name(enum sp_upstream_tls t)
{
	return upstream_tls_names[t];
}

const char *
sp_no_key_name(enum sp_no_key n)
{
	return nokey_names[n];
}

char *
sp_config_default_state_dir(void)
{
	const char *xdg = getenv("XDG_STATE_HOME");
	const char *home = getenv("HOME");

	if (geteuid() == 0 && getenv("SEALPOST_USER_STATE") == NULL)
		return sp_xstrdup("/var/lib/sealpost");
	if (xdg && *xdg == '/')
		return sp_xasprintf("%s/sealpost", xdg);
	if (home == NULL || *home != '/') {
		/* Never a guessable path in a world-writable directory. */
		struct passwd *pw = getpwuid(geteuid());
		home = pw && pw->pw_dir && pw->pw_dir[0] == '/' ? pw->pw_dir : "/nonexistent";
	}
	return sp_xasprintf("%s/.local/state/sealpost", home);
}

char *
sp_config_find(const char *explicit_path, char *err, size_t errsz)
{
	const char *xdg = getenv("XDG_CONFIG_HOME");
	const char *home = getenv("HOME");
	char *p;

	if (explicit_path)
		return sp_xstrdup(explicit_path);
	if (xdg && *xdg == '/')
		p = sp_xasprintf("%s/sealpost/sealpost.conf", xdg);
	else
		p = sp_xasprintf("%s/.config/sealpost/sealpost.conf", home && *home ? home : "/");
	if (access(p, F_OK) == 0)
		return p;
	free(p);
	p = sp_xstrdup(SEALPOST_SYSCONFDIR "/sealpost/sealpost.conf");
	if (strcmp(p, "/etc/sealpost/sealpost.conf") != 0 && access(p, F_OK) != 0) {
		free(p);
		p = sp_xstrdup("/etc/sealpost/sealpost.conf");
	}
	if (access(p, F_OK) == 0)
		return p;
	sp_seterr(err, errsz, "no config file: give -c FILE, or create "
	          "$XDG_CONFIG_HOME/sealpost/sealpost.conf or %s", p);
	free(p);
	return NULL;
}

bool
sp_addr_parse(const char *s, unsigned char out[16])
{
	struct in_addr a4;
	struct in6_addr a6;

	if (inet_pton(AF_INET, s, &a4) == 1) {
		memset(out, 0, 10);
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &a4, 4);
		return true;
	}
	if (inet_pton(AF_INET6, s, &a6) == 1) {
		memcpy(out, a6.s6_addr, 16);
		return true;
	}
	return false;
}

int
sp_parse_net(const char *s, struct sp_net *out, char *err, size_t errsz)
{
	char buf[INET6_ADDRSTRLEN + 8], *slash;
	unsigned max, i;
	uint64_t prefix;

	memset(out, 0, sizeof *out);
	if (strlen(s) >= sizeof buf) {
		sp_seterr(err, errsz, "'%s' is not an address or ADDR/PREFIX", s);
		return -1;
	}
	sp_strlcpy(buf, s, sizeof buf);
	if ((slash = strchr(buf, '/')) != NULL)
		*slash++ = '\0';
	if (!sp_addr_parse(buf, out->addr)) {
		sp_seterr(err, errsz, "'%s' is not an IPv4 or IPv6 address", buf);
		return -1;
	}
	/* A v4-mapped IPv6 written as such counts as IPv6 text: its prefix is 0..128. */
	max = strchr(buf, ':') == NULL ? 32 : 128;
	prefix = max;
	if (slash != NULL && sp_parse_uint(slash, 0, max, &prefix, err, errsz) < 0) {
		sp_seterr(err, errsz, "'%s': the prefix length must be 0..%u", s, max);
		return -1;
	}
	out->prefix = (unsigned)prefix + (max == 32 ? 96 : 0);
	for (i = out->prefix; i < 128; i++) {
		if (out->addr[i / 8] & (0x80u >> (i % 8))) {
			sp_seterr(err, errsz, "'%s' has bits set after the prefix (did you mean a "
			          "network address?)", s);
			return -1;
		}
	}
	return 0;
}

int
sp_parse_net_list(const char *s, struct sp_net_list *out, char *err, size_t errsz)
{
	char **items = g_strsplit(s, ",", -1);
	int rv = 0;
	size_t i;

	memset(out, 0, sizeof *out);
	for (i = 0; items[i]; i++) {
		char *item = sp_strstrip(items[i]);
		if (*item == '\0')
			continue;
		if (out->n == SP_MAX_NETS) {
			sp_seterr(err, errsz, "more than %d addresses or networks", SP_MAX_NETS);
			rv = -1;
			break;
		}
		if (sp_parse_net(item, &out->net[out->n], err, errsz) < 0) {
			rv = -1;
			break;
		}
		out->n++;
	}
	g_strfreev(items);
	return rv;
}

bool
sp_net_list_contains(const struct sp_net_list *l, const unsigned char addr[16])
{
	unsigned i;

	for (i = 0; l != NULL && i < l->n; i++) {
		const struct sp_net *n = &l->net[i];
		unsigned full = n->prefix / 8, rest = n->prefix % 8;
		if (memcmp(n->addr, addr, full) != 0)
			continue;
		if (rest == 0 || ((n->addr[full] ^ addr[full]) & (0xffu << (8 - rest)) & 0xffu) == 0)
			return true;
	}
	return false;
}

int
sp_parse_listen(const char *s, struct sp_listen *out, char *err, size_t errsz)
{
	char buf[300], *p, *port, *opt;
	uint64_t v;

	memset(out, 0, sizeof *out);
	if (strlen(s) >= sizeof buf) {
		sp_seterr(err, errsz, "listen address too long");
		return -1;
	}
	sp_strlcpy(buf, s, sizeof buf);
	sp_strstrip(buf);
	opt = buf + strcspn(buf, " \t");
	if (*opt) {
		*opt++ = '\0';
		opt += strspn(opt, " \t");
		if (strcmp(opt, "tls") != 0) {
			sp_seterr(err, errsz, "'%s': unknown listener option '%s' (only 'tls')", s, opt);
			return -1;
		}
		out->implicit_tls = true;
	}
	p = buf;
	if (*p == '[') {
		char *close = strchr(p, ']');
		if (close == NULL || close[1] != ':') {
			sp_seterr(err, errsz, "'%s': expected [IPv6]:PORT", s);
			return -1;
		}
		*close = '\0';
		port = close + 2;
		p++;
	} else {
		port = strrchr(p, ':');
		if (port == NULL || strchr(p, ':') != port) {
			sp_seterr(err, errsz, "'%s': expected ADDR:PORT (IPv6 in brackets)", s);
			return -1;
		}
		*port++ = '\0';
	}
	if (*p == '\0' || strlen(p) >= sizeof out->host) {
		sp_seterr(err, errsz, "'%s': missing address", s);
		return -1;
	}
	if (sp_parse_uint(port, 1, 65535, &v, err, errsz) < 0) {
		char why[SP_ERRLEN];
		sp_strlcpy(why, err, sizeof why);
		sp_seterr(err, errsz, "'%s': bad port: %s", s, why);
		return -1;
	}
	sp_strlcpy(out->host, p, sizeof out->host);
	snprintf(out->port, sizeof out->port, "%u", (unsigned)v);
	return 0;
}

/* Turn full-line ';' comments into '#' (GKeyFile only knows '#') and cut inline
 * comments: a ';' preceded by a blank starts a comment, as in most INI dialects.
 * Line numbers are preserved. */
static char *
preprocess(const char *data, size_t len)
{
	char *out = sp_xmalloc(len + 1), *line, *next;

	memcpy(out, data, len);
	out[len] = '\0';
	for (line = out; line && *line; line = next) {
		char *nl = strchr(line, '\n'), *p;
		next = nl ? nl + 1 : NULL;
		if (nl)
			*nl = '\0';
		p = line + strspn(line, " \t");
		if (*p == ';') {
			*p = '#';
		} else if (*p != '#') {
			char *c;
			for (c = p; *c; c++) {
				if (*c == ';' && c > p && (c[-1] == ' ' || c[-1] == '\t')) {
					memset(c, ' ', strlen(c));
					break;
				}
			}
		}
		if (nl)
			*nl = '\n';
	}
	return out;
}

/* Line number of [section] key in the (preprocessed) text, 0 when not found. */
static unsigned
find_line(const char *text, const char *section, const char *key)
{
	const char *line = text;
	unsigned n = 1;
	bool in_section = false;
	size_t sl = strlen(section), kl = key ? strlen(key) : 0;

	while (line && *line) {
		const char *p = line + strspn(line, " \t");
		if (*p == '[') {
			in_section = strncmp(p + 1, section, sl) == 0 && p[1 + sl] == ']';
			if (in_section && key == NULL)
				return n;
		} else if (in_section && key && strncmp(p, key, kl) == 0) {
			const char *q = p + kl;
			q += strspn(q, " \t");
			if (*q == '=')
				return n;
		}
		line = strchr(line, '\n');
		if (line)
			line++;
		n++;
	}
	return 0;
}

/* GLib names the offending line by its text ("... contains line “x” ...");
 * find its number so the error reads FILE:LINE like every other one. */
static unsigned
syntax_error_line(const char *text, const char *msg)
{
	const char *open = strstr(msg, "\xe2\x80\x9c"), *close;
	const char *line = text;
	unsigned n = 1;
	size_t len;

	if (open == NULL || (close = strstr(open + 3, "\xe2\x80\x9d")) == NULL)
		return 0;
	open += 3;
	len = (size_t)(close - open);
	while (line && *line) {
		const char *end = strchr(line, '\n');
		size_t l = end ? (size_t)(end - line) : strlen(line);
		if (l == len && strncmp(line, open, len) == 0)
			return n;
		line = end ? end + 1 : NULL;
		n++;
	}
	return 0;
}

struct load_ctx {
	const char *name;
	const char *text;
	const char *confdir;
	const char *state;
	char *err;
	size_t errsz;
};

static int
key_error(struct load_ctx *lc, const char *section, const char *key, const char *fmt, ...)
	SP_PRINTF(4, 5);

static int
key_error(struct load_ctx *lc, const char *section, const char *key, const char *fmt, ...)
{
	char why[SP_ERRLEN];
	unsigned line = lc->text ? find_line(lc->text, section, key) : 0;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	if (line)
		sp_seterr(lc->err, lc->errsz, "%s:%u: [%s]%s%s: %s", lc->name, line, section,
		          key ? " " : "", key ? key : "", why);
	else
		sp_seterr(lc->err, lc->errsz, "%s: [%s]%s%s: %s", lc->name, section,
		          key ? " " : "", key ? key : "", why);
	return -1;
}

static char *
expand_path(struct load_ctx *lc, const char *v)
{
	if (strncmp(v, "$STATE/", 7) == 0)
		return sp_xasprintf("%s/%s", lc->state, v + 7);
	if (strncmp(v, "$CONFDIR/", 9) == 0)
		return sp_xasprintf("%s/%s", lc->confdir, v + 9);
	if (strcmp(v, "$GNUPGHOME") == 0) {
		const char *g = getenv("GNUPGHOME");
		return g && *g ? sp_xstrdup(g) : sp_expand_home("~/.gnupg");
	}
	return sp_expand_home(v);
}

static int
set_value(struct load_ctx *lc, struct sp_config *cfg, const struct key_def *k, const char *v)
{
	char *field = (char *)cfg + k->offset;
	char why[SP_ERRLEN];
	uint64_t u;
	int64_t d;
	unsigned i;

	switch (k->type) {
	case K_STRING:
		free(*(char **)field);
		*(char **)field = sp_xstrdup(v);
		return 0;
	case K_PATH:
		free(*(char **)field);
		*(char **)field = *v ? expand_path(lc, v) : sp_xstrdup("");
		return 0;
	case K_URL:
		if (*v && strncmp(v, "https://", 8) != 0 && strncmp(v, "http://", 7) != 0)
			return key_error(lc, k->section, k->name, "'%s' is not an http(s):// URL", v);
		free(*(char **)field);
		*(char **)field = sp_xstrdup(v);
		return 0;
	case K_BOOL:
		if (strcmp(v, "yes") == 0 || strcmp(v, "true") == 0 || strcmp(v, "on") == 0 ||
		    strcmp(v, "1") == 0)
			*(bool *)field = true;
		else if (strcmp(v, "no") == 0 || strcmp(v, "false") == 0 || strcmp(v, "off") == 0 ||
		         strcmp(v, "0") == 0)
			*(bool *)field = false;
		else
			return key_error(lc, k->section, k->name, "'%s' is not yes or no", v);
		return 0;
	case K_UINT:
		if (sp_parse_uint(v, k->min, k->max, &u, why, sizeof why) < 0)
			return key_error(lc, k->section, k->name, "%s", why);
		*(uint64_t *)field = u;
		return 0;
	case K_SIZE:
		if (sp_parse_size(v, &u, why, sizeof why) < 0)
			return key_error(lc, k->section, k->name, "%s", why);
		if (u < k->min || u > k->max)
			return key_error(lc, k->section, k->name, "%s is out of range (%llu..%llu bytes)",
			                 v, (unsigned long long)k->min, (unsigned long long)k->max);
		*(uint64_t *)field = u;
		return 0;
	case K_DURATION:
		if (sp_parse_duration(v, &d, why, sizeof why) < 0)
			return key_error(lc, k->section, k->name, "%s", why);
		if ((uint64_t)d < k->min || (uint64_t)d > k->max)
			return key_error(lc, k->section, k->name, "%s is out of range (%llus..%llus)", v,
			                 (unsigned long long)k->min, (unsigned long long)k->max);
		*(int64_t *)field = d;
		return 0;
	case K_ENUM:
		for (i = 0; k->names[i]; i++) {
			if (strcmp(v, k->names[i]) == 0) {
				*(int *)field = (int)i;
				return 0;
			}
		}
		{
			char opts[200] = "";
			for (i = 0; k->names[i]; i++) {
				if (i)
					strncat(opts, " | ", sizeof opts - strlen(opts) - 1);
				strncat(opts, k->names[i], sizeof opts - strlen(opts) - 1);
			}
			return key_error(lc, k->section, k->name, "'%s' is not one of %s", v, opts);
		}
	case K_PORT:
		if (sp_parse_uint(v, 1, 65535, &u, why, sizeof why) < 0)
			return key_error(lc, k->section, k->name, "%s", why);
		snprintf(field, 8, "%u", (unsigned)u);
		return 0;
	case K_LISTEN:
		if (sp_parse_listen(v, (struct sp_listen *)field, why, sizeof why) < 0)
			return key_error(lc, k->section, k->name, "%s", why);
		return 0;
	case K_NET_LIST:
		if (sp_parse_net_list(v, (struct sp_net_list *)field, why, sizeof why) < 0)
			return key_error(lc, k->section, k->name, "%s", why);
		return 0;
	case K_LISTEN_LIST: {
		char **items = g_strsplit(v, ",", -1);
		unsigned n = 0;
		int rv = 0;
		for (i = 0; items[i]; i++) {
			char *item = sp_strstrip(items[i]);
			if (*item == '\0')
				continue;
			if (n == SP_MAX_LISTEN) {
				rv = key_error(lc, k->section, k->name, "more than %d listeners", SP_MAX_LISTEN);
				break;
			}
			if (sp_parse_listen(item, &cfg->proxy.listen[n], why, sizeof why) < 0) {
				rv = key_error(lc, k->section, k->name, "%s", why);
				break;
			}
			n++;
		}
		g_strfreev(items);
		if (rv == 0 && n == 0)
			rv = key_error(lc, k->section, k->name, "no listen address");
		cfg->proxy.n_listen = n;
		return rv;
	}
	}
	return -1;
}

static const struct key_def *
lookup_key(const char *section, const char *name)
{
	size_t i;

	for (i = 0; i < SP_ARRAY_LEN(keys); i++)
		if (strcmp(keys[i].section, section) == 0 && strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

static bool
known_section(const char *section)
{
	size_t i;

	for (i = 0; i < SP_ARRAY_LEN(keys); i++)
		if (strcmp(keys[i].section, section) == 0)
			return true;
	return false;
}

/* Cross-key rules: each names the key a user has to change. */
static int
check_consistency(struct load_ctx *lc, struct sp_config *cfg, GKeyFile *kf, bool need_upstream)
{
	unsigned i;

	if (need_upstream && cfg->upstream.host[0] == '\0')
		return key_error(lc, "upstream", "host", "required: the mail server to relay to");
	if (cfg->upstream.port[0] == '\0')
		sp_strlcpy(cfg->upstream.port, cfg->upstream.tls == SP_UPSTREAM_TLS ? "465" : "587",
		           sizeof cfg->upstream.port);
	if (cfg->upstream.tls == SP_UPSTREAM_NONE && cfg->upstream.host[0] &&
	    !sp_net_host_is_loopback(cfg->upstream.host))
		return key_error(lc, "upstream", "tls",
		                 "'none' is allowed only for a loopback host, not '%s'", cfg->upstream.host);
	if (cfg->upstream.password_file[0] && cfg->upstream.password_command[0])
		return key_error(lc, "upstream", "password_command",
		                 "set either password_file or password_command, not both");
	if (cfg->upstream.username[0] && !cfg->upstream.password_file[0] &&
	    !cfg->upstream.password_command[0])
		return key_error(lc, "upstream", "username",
		                 "needs password_file or password_command");
	if (strpbrk(cfg->upstream.helo, " \t<>\"\\") || cfg->upstream.helo[0] == '\0')
		return key_error(lc, "upstream", "helo", "'%s' is not a host name", cfg->upstream.helo);
	if (cfg->proxy.auth == SP_AUTH_NONE) {
		for (i = 0; i < cfg->proxy.n_listen; i++)
			if (!sp_net_host_is_loopback(cfg->proxy.listen[i].host))
				return key_error(lc, "proxy", "listen",
				                 "%s is not a loopback address and auth = none: anyone who "
				                 "can connect could send mail as you; set auth = users or "
				                 "passthrough", cfg->proxy.listen[i].host);
	}
	if ((cfg->proxy.tls_cert[0] == '\0') != (cfg->proxy.tls_key[0] == '\0'))
		return key_error(lc, "proxy", cfg->proxy.tls_cert[0] ? "tls_key" : "tls_cert",
		                 "tls_cert and tls_key go together");
	cfg->proxy.tls_generate = cfg->proxy.tls_cert[0] == '\0';
	if (cfg->proxy.tls_generate) {
		free(cfg->proxy.tls_cert);
		free(cfg->proxy.tls_key);
		cfg->proxy.tls_cert = sp_xasprintf("%s/local.crt", cfg->state_dir);
		cfg->proxy.tls_key = sp_xasprintf("%s/local.key", cfg->state_dir);
	}
	if ((cfg->linkserver.tls_cert[0] == '\0') != (cfg->linkserver.tls_key[0] == '\0'))
		return key_error(lc, "linkserver", cfg->linkserver.tls_cert[0] ? "tls_key" : "tls_cert",
		                 "tls_cert and tls_key go together");
	/* The outbox shows links and passwords: it never shares the public
	 * viewer's listener, and never listens beyond this machine. */
	if (!sp_net_host_is_loopback(cfg->linkserver.outbox_listen.host))
		return key_error(lc, "linkserver", "outbox_listen",
		                 "%s is not a loopback address: the outbox (links and passwords) is "
		                 "only for this machine", cfg->linkserver.outbox_listen.host);
	if (cfg->linkserver.outbox_listen.implicit_tls)
		return key_error(lc, "linkserver", "outbox_listen",
		                 "no 'tls' option: the outbox listener is plain HTTP on loopback");
	if (strcmp(cfg->linkserver.outbox_listen.port, cfg->linkserver.listen.port) == 0)
		return key_error(lc, "linkserver", "outbox_listen",
		                 "port %s is the viewer's ([linkserver] listen): the outbox needs a "
		                 "listener of its own", cfg->linkserver.outbox_listen.port);
	cfg->sodium.recipients_explicit = g_key_file_has_key(kf, "sodium", "recipients", NULL);
	{
		const char *g = getenv("GNUPGHOME");
		cfg->pgp.gnupg_home_required = g_key_file_has_key(kf, "pgp", "gnupg_home", NULL) || (g && *g);
	}
	if (cfg->link.base_url[0] && cfg->link.base_url[strlen(cfg->link.base_url) - 1] != '/')
		return key_error(lc, "link", "base_url", "must end with '/' (the link token is appended)");
	if (cfg->link.upload_url[0] && cfg->link.upload_token_file[0] == '\0')
		return key_error(lc, "link", "upload_token_file", "required with upload_url");
	if (cfg->discovery.keyserver[0] && strncmp(cfg->discovery.keyserver, "https://", 8) != 0)
		return key_error(lc, "discovery", "keyserver", "must be an https:// URL");
	{
		char **items = g_strsplit(cfg->discovery.connect_to, ";", -1);
		int bad = -1;
		for (i = 0; items[i] && bad < 0; i++) {
			char *item = sp_strstrip(items[i]), *c;
			unsigned colons = 0;
			if (*item == '\0')
				continue;
			for (c = item; *c; c++)
				colons += *c == ':';
			/* HOST:PORT:CONNECT-TO-HOST:CONNECT-TO-PORT; IPv6 in brackets adds colons. */
			if (colons < 3 || strpbrk(item, " \t\r\n"))
				bad = (int)i;
		}
		if (bad >= 0) {
			int r = key_error(lc, "discovery", "connect_to", "'%s' is not HOST:PORT:CONNECT-TO-HOST:"
			                  "CONNECT-TO-PORT", items[bad]);
			g_strfreev(items);
			return r;
		}
		g_strfreev(items);
	}
	if (cfg->queue.max_backoff < cfg->queue.min_backoff)
		return key_error(lc, "queue", "max_backoff", "smaller than min_backoff");
	return 0;
}

static int
load(struct sp_config *cfg, const char *name, const char *data, size_t len, bool need_upstream,
     char *err, size_t errsz)
{
	struct load_ctx lc = { .name = name, .err = err, .errsz = errsz };
	GKeyFile *kf = g_key_file_new();
	GError *gerr = NULL;
	gchar **groups = NULL, **names;
	char *text, *dir, *state;
	size_t i, j;
	int rv = -1;

	memset(cfg, 0, sizeof *cfg);
	cfg->path = sp_xstrdup(name);
	state = getenv("SEALPOST_STATE_DIR");
	cfg->state_dir = state && *state ? sp_xstrdup(state) : sp_config_default_state_dir();
	dir = g_path_get_dirname(name);
	lc.confdir = dir;
	lc.state = cfg->state_dir;
	text = preprocess(data, len);
	lc.text = text;
	if (memchr(data, '\0', len)) {
		sp_seterr(err, errsz, "%s: contains a NUL byte; not a text file", name);
		goto out;
	}
	if (!g_key_file_load_from_data(kf, text, strlen(text), G_KEY_FILE_NONE, &gerr)) {
		unsigned line = syntax_error_line(text, gerr->message);
		if (line)
			sp_seterr(err, errsz, "%s:%u: syntax error: %s", name, line, gerr->message);
		else
			sp_seterr(err, errsz, "%s: syntax error: %s", name, gerr->message);
		goto out;
	}
	groups = g_key_file_get_groups(kf, NULL);
	for (i = 0; groups[i]; i++) {
		if (!known_section(groups[i])) {
			key_error(&lc, groups[i], NULL, "unknown section");
			goto out;
		}
		names = g_key_file_get_keys(kf, groups[i], NULL, NULL);
		for (j = 0; names && names[j]; j++) {
			if (lookup_key(groups[i], names[j]) == NULL) {
				key_error(&lc, groups[i], names[j], "unknown key");
				g_strfreev(names);
				goto out;
			}
		}
		g_strfreev(names);
	}
	for (i = 0; i < SP_ARRAY_LEN(keys); i++) {
		const struct key_def *k = &keys[i];
		gchar *v = g_key_file_get_value(kf, k->section, k->name, NULL);
		int r = 0;

		if (v) {
			g_strstrip(v);
			r = set_value(&lc, cfg, k, v);
		} else if (k->def) {
			r = set_value(&lc, cfg, k, k->def);
		} else if (k->type == K_PATH || k->type == K_STRING) {
			r = set_value(&lc, cfg, k, "");
		}
		g_free(v);
		if (r < 0)
			goto out;
	}
	if (check_consistency(&lc, cfg, kf, need_upstream) < 0)
		goto out;
	rv = 0;
out:
	if (gerr)
		g_error_free(gerr);
	g_strfreev(groups);
	g_key_file_free(kf);
	g_free(dir);
	free(text);
	if (rv < 0)
		sp_config_free(cfg);
	return rv;
}

int
sp_config_load_data(struct sp_config *cfg, const char *name, const char *data, size_t len,
                    bool need_upstream, char *err, size_t errsz)
{
	return load(cfg, name, data, len, need_upstream, err, errsz);
}

int
sp_config_load(struct sp_config *cfg, const char *path, bool need_upstream, char *err, size_t errsz)
{
	char *data = NULL;
	size_t len = 0;
	int rv;

	memset(cfg, 0, sizeof *cfg);
	if (sp_read_file(path, SP_CONFIG_MAX_BYTES, &data, &len, err, errsz) < 0)
		return -1;
	rv = load(cfg, path, data, len, need_upstream, err, errsz);
	free(data);
	return rv;
}

void
sp_config_free(struct sp_config *cfg)
{
	size_t i;

	for (i = 0; i < SP_ARRAY_LEN(keys); i++) {
		enum key_type t = keys[i].type;
		if (t == K_STRING || t == K_PATH || t == K_URL) {
			char **f = (char **)((char *)cfg + keys[i].offset);
			free(*f);
			*f = NULL;
		}
	}
	free(cfg->path);
	free(cfg->state_dir);
	cfg->path = cfg->state_dir = NULL;
}

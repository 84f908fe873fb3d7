/* discovery.c - WKD and VKS key discovery, sealpost's own keyring and the
 * provenance of every key in it (see discovery.h, docs/discovery.md). */
#include "discovery.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/stat.h>

#include <curl/curl.h>
#include <glib.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sodium.h>
#include <sqlite3.h>

#include "address.h"
#include "log.h"
#include "pgp.h"

/* Another process (sealpost check, keys) may hold the provenance database's
 * write lock for a moment: wait this long for it, then fail (451). */
#define SP_DISCOVERY_BUSY_TIMEOUT_MS 5000
/* The slowest transfer allowed once connected, in bytes per second over
 * SP_DISCOVERY_LOW_SPEED_S: a trickling server is cut off before the budget. */
#define SP_DISCOVERY_LOW_SPEED_BPS 64L
#define SP_DISCOVERY_LOW_SPEED_S 2L

struct sp_discovery {
	const struct sp_config *cfg;
	struct sp_config own_cfg;      /* cfg, with pgp.gnupg_home = our keyring, trust = always */
	char *dir, *home, *keys_dir, *db_path;
	sqlite3 *db;
	sqlite3_stmt *get;             /* the lookup by address, prepared once (every RCPT runs it) */
	pthread_mutex_t lock;          /* the database connection and its statements */
	struct curl_slist *connect_to;
	struct sp_key_discovery hook;
	uint64_t lookups;
	/* the background refresh */
	pthread_t refresher;
	bool refresher_running, stopping;
	pthread_mutex_t stop_lock;
	pthread_cond_t stop_cond;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void
curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- WKD names ---- */

void
sp_wkd_hash(const char *local, size_t len, char out[33])
{
	static const char alphabet[] = "ybndrfg8ejkmcpqxot1uwisza345h769";
	unsigned char digest[20];
	GChecksum *ck = g_checksum_new(G_CHECKSUM_SHA1);
	gsize dlen = sizeof digest;
	size_t i, o = 0;
	unsigned bits = 0, acc = 0;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)local[i];
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		g_checksum_update(ck, &c, 1);
	}
	g_checksum_get_digest(ck, digest, &dlen);
	g_checksum_free(ck);
	/* 160 bits = 32 groups of 5, most significant first. */
	for (i = 0; i < sizeof digest; i++) {
		acc = (acc << 8) | digest[i];
		bits += 8;
		while (bits >= 5) {
			out[o++] = alphabet[(acc >> (bits - 5)) & 31];
			bits -= 5;
		}
	}
	out[o] = '\0';
}

/* ---- files ---- */

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP || flag == FTW_D)
		return rmdir(path) < 0 && errno != ENOENT ? -1 : 0;
	return unlink(path) < 0 && errno != ENOENT ? -1 : 0;
}

static void
rm_tree(const char *dir)
{
	if (nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS) < 0)
		sp_log_warn("discovery: cannot remove %s: %s", dir, strerror(errno));
}

/* Write data to path atomically (a temporary file, fsync, rename). */
static int
write_file_atomic(const char *path, const void *data, size_t len, char *err, size_t errsz)
{
	char *tmp = sp_xasprintf("%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), rv = -1;
	const char *p = data;

	if (fd < 0) {
		sp_seterr(err, errsz, "cannot write %s: %s", tmp, strerror(errno));
		goto out;
	}
	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			sp_seterr(err, errsz, "cannot write %s: %s", tmp, strerror(errno));
			goto out;
		}
		p += w;
		len -= (size_t)w;
	}
	if (fsync(fd) < 0 || close(fd) < 0) {
		fd = -1;
		sp_seterr(err, errsz, "cannot write %s: %s", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		sp_seterr(err, errsz, "cannot rename %s: %s", tmp, strerror(errno));
		goto out;
	}
	rv = 0;
out:
	if (fd >= 0)
		close(fd);
	if (rv < 0)
		unlink(tmp);
	free(tmp);
	return rv;
}

/* Keyrings of public keys only: gpg must not start a gpg-agent there (an
 * import asks the agent whether a secret key exists, and the agent would
 * outlive every lookup). */
static int
write_gpg_conf(const char *home, char *err, size_t errsz)
{
	static const char conf[] = "# written by sealpost: public keys only\nno-autostart\n";
	char *path = sp_xasprintf("%s/gpg.conf", home);
	int rv = 0;

	if (access(path, F_OK) != 0)
		rv = write_file_atomic(path, conf, sizeof conf - 1, err, errsz);
	free(path);
	return rv;
}

static void
format_time(int64_t t, char *out, size_t outsz)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (gmtime_r(&tt, &tm) == NULL || strftime(out, outsz, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, outsz, "%lld", (long long)t);
}

static const char *
source_label(const char *source)
{
	if (strcmp(source, "wkd-advanced") == 0)
		return "WKD (advanced)";
	if (strcmp(source, "wkd-direct") == 0)
		return "WKD (direct)";
	if (strcmp(source, "keyserver") == 0)
		return "keyserver";
	return source;
}

/* ---- the provenance table ---- */

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS discovered ("
	"  addr TEXT PRIMARY KEY,"          /* normal form (address.h) */
	"  fpr TEXT NOT NULL,"              /* '' = no key found (negative cache) */
	"  source TEXT NOT NULL,"
	"  url TEXT NOT NULL,"
	"  first_seen INTEGER NOT NULL,"    /* this fingerprint first accepted */
	"  fetched INTEGER NOT NULL,"       /* the last lookup */
	"  state TEXT NOT NULL,"            /* ok | none | changed */
	"  new_fpr TEXT NOT NULL DEFAULT ''"
	");";

static int
db_error(struct sp_discovery *d, const char *what, char *err, size_t errsz)
{
	sp_seterr(err, errsz, "discovered-keys database %s: %s: %s", d->db_path, what, sqlite3_errmsg(d->db));
	return -1;
}

/* 1 and *row, 0 when there is none, -1 with err.  Called with d->lock. */
static int
db_get_locked(struct sp_discovery *d, const char *addr, struct sp_discovered *row, char *err, size_t errsz)
{
	sqlite3_stmt *st = d->get;
	int r, rv = -1;

	memset(row, 0, sizeof *row);
	sqlite3_reset(st);
	sqlite3_bind_text(st, 1, addr, -1, SQLITE_STATIC);
	r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		sp_strlcpy(row->addr, (const char *)sqlite3_column_text(st, 0), sizeof row->addr);
		sp_strlcpy(row->fpr, (const char *)sqlite3_column_text(st, 1), sizeof row->fpr);
		sp_strlcpy(row->source, (const char *)sqlite3_column_text(st, 2), sizeof row->source);
		sp_strlcpy(row->url, (const char *)sqlite3_column_text(st, 3), sizeof row->url);
		row->first_seen = sqlite3_column_int64(st, 4);
		row->fetched = sqlite3_column_int64(st, 5);
		sp_strlcpy(row->state, (const char *)sqlite3_column_text(st, 6), sizeof row->state);
		sp_strlcpy(row->new_fpr, (const char *)sqlite3_column_text(st, 7), sizeof row->new_fpr);
		rv = 1;
	} else if (r == SQLITE_DONE) {
		rv = 0;
	} else {
		db_error(d, "read", err, errsz);
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rv;
}

static int
db_get(struct sp_discovery *d, const char *addr, struct sp_discovered *row, char *err, size_t errsz)
{
	int r;

	pthread_mutex_lock(&d->lock);
	r = db_get_locked(d, addr, row, err, errsz);
	pthread_mutex_unlock(&d->lock);
	return r;
}

static int
db_put(struct sp_discovery *d, const struct sp_discovered *row, char *err, size_t errsz)
{
	sqlite3_stmt *st = NULL;
	int rv = 0;

	pthread_mutex_lock(&d->lock);
	if (sqlite3_prepare_v2(d->db, "INSERT OR REPLACE INTO discovered (addr, fpr, source, url, first_seen, "
	                       "fetched, state, new_fpr) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", -1, &st, NULL) != SQLITE_OK) {
		rv = db_error(d, "write", err, errsz);
		goto out;
	}
	sqlite3_bind_text(st, 1, row->addr, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, row->fpr, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, row->source, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, row->url, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, row->first_seen);
	sqlite3_bind_int64(st, 6, row->fetched);
	sqlite3_bind_text(st, 7, row->state, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, row->new_fpr, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		rv = db_error(d, "write", err, errsz);
out:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&d->lock);
	return rv;
}

/* ---- fetching ---- */

struct fetch {
	struct sp_buf body;
	bool too_big;
};

static size_t
fetch_write(char *p, size_t size, size_t n, void *arg)
{
	struct fetch *f = arg;
	size_t len = size * n;

	if (f->body.len + len > SP_DISCOVERY_MAX_KEY_BYTES || sp_buf_append(&f->body, p, len) < 0) {
		f->too_big = true;
		return 0;      /* stops the transfer: CURLE_WRITE_ERROR */
	}
	return len;
}

/* [discovery] ca_file adds to the system's trust anchors (CURLOPT_CAINFO
 * would replace them). */
static CURLcode
add_ca_file(CURL *c, void *sslctx, void *arg)
{
	X509_STORE *store = SSL_CTX_get_cert_store(sslctx);

	(void)c;
	return X509_STORE_load_file(store, arg) == 1 ? CURLE_OK : CURLE_SSL_CACERT_BADFILE;
}

/* GET url within the deadline.  0 with *status and f->body; -1 with err
 * (transport: DNS, TCP, TLS, timeout, size; the caller names the URL). */
static int
fetch_url(struct sp_discovery *d, const char *url, int64_t deadline_ms, struct fetch *f, long *status,
          char *err, size_t errsz)
{
	char cerr[CURL_ERROR_SIZE] = "";
	int64_t left = deadline_ms - sp_now_ms();
	CURL *c;
	CURLcode rc;

	*status = 0;
	if (left <= 0) {
		sp_seterr(err, errsz, "no time left ([discovery] timeout)");
		return -1;
	}
	if ((c = curl_easy_init()) == NULL) {
		sp_seterr(err, errsz, "cannot start libcurl");
		return -1;
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)(left / SP_DISCOVERY_CONNECT_SHARE > 0 ?
	                                                       left / SP_DISCOVERY_CONNECT_SHARE : 1));
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)left);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, SP_DISCOVERY_LOW_SPEED_BPS);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, SP_DISCOVERY_LOW_SPEED_S);
	curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)SP_DISCOVERY_MAX_KEY_BYTES);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, fetch_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "sealpost");
	if (d->connect_to)
		curl_easy_setopt(c, CURLOPT_CONNECT_TO, d->connect_to);
	if (d->cfg->discovery.ca_file[0]) {
		curl_easy_setopt(c, CURLOPT_SSL_CTX_FUNCTION, add_ca_file);
		curl_easy_setopt(c, CURLOPT_SSL_CTX_DATA, d->cfg->discovery.ca_file);
	}
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
		curl_easy_cleanup(c);
		return 0;
	}
	if (f->too_big || rc == CURLE_FILESIZE_EXCEEDED)
		sp_seterr(err, errsz, "the answer is larger than %d bytes: refused", SP_DISCOVERY_MAX_KEY_BYTES);
	else if (rc == CURLE_OPERATION_TIMEDOUT)
		sp_seterr(err, errsz, "timed out ([discovery] timeout = %llds for all lookups of one recipient)",
		          (long long)d->cfg->discovery.timeout);
	else
		sp_seterr(err, errsz, "%s", cerr[0] ? cerr : curl_easy_strerror(rc));
	curl_easy_cleanup(c);
	return -1;
}

/* ---- judging a key with GnuPG ---- */

/* Import what was fetched into a scratch keyring and choose the key for
 * norm under the rules of a local key (pgp.c, trust = always: the lookup is
 * what vouches for the key, not certifications).  FOUND: info and the
 * minimal export of that key in *out; NONE: err says why. */
static enum sp_pgp_lookup
judge(struct sp_discovery *d, const char *norm, const struct sp_buf *body, struct sp_pgp_key_info *info,
      struct sp_buf *out, char *err, size_t errsz)
{
	char *tmpl = sp_xasprintf("%s/tmp-XXXXXX", d->dir), cause[SP_ERRLEN];
	struct sp_config scfg = d->own_cfg;
	enum sp_pgp_lookup r = SP_PGP_NONE;
	struct sp_pgp *p = NULL;
	size_t n = 0;

	if (mkdtemp(tmpl) == NULL) {
		sp_seterr(err, errsz, "cannot make a scratch keyring in %s: %s", d->dir, strerror(errno));
		free(tmpl);
		return SP_PGP_ERROR;
	}
	scfg.pgp.gnupg_home = tmpl;
	scfg.pgp.gnupg_home_required = true;
	if (write_gpg_conf(tmpl, cause, sizeof cause) < 0) {
		sp_seterr(err, errsz, "scratch keyring: %s", cause);
		rm_tree(tmpl);
		free(tmpl);
		return SP_PGP_ERROR;
	}
	p = sp_pgp_new(&scfg, cause, sizeof cause);
	if (p == NULL || sp_pgp_import(p, body->data, body->len, &n, cause, sizeof cause) < 0) {
		sp_seterr(err, errsz, "not OpenPGP key material (%s)", p ? cause : "GnuPG");
		goto out;
	}
	if (n == 0) {
		sp_seterr(err, errsz, "no OpenPGP key in the answer");
		goto out;
	}
	r = sp_pgp_find_key(p, norm, info, err, errsz);
	if (r == SP_PGP_NONE && strncmp(err, "no OpenPGP key", 14) == 0)
		/* gpg listed nothing for the address: the user IDs name others
		 * (or were stripped). */
		sp_seterr(err, errsz, "the key served has no user ID with exactly this address");
	if (r == SP_PGP_FOUND && sp_pgp_export_minimal(p, info->fpr, out, cause, sizeof cause) < 0) {
		sp_seterr(err, errsz, "%s", cause);
		r = SP_PGP_ERROR;
	}
	if (r == SP_PGP_ERROR) {
		/* The scratch keyring is ours and fresh: a failure there is about
		 * the material served, never about the user's keys. */
		r = SP_PGP_NONE;
	}
out:
	sp_pgp_free(p);
	rm_tree(tmpl);
	free(tmpl);
	return r;
}

/* ---- sealpost's own keyring ---- */

static char *
key_file(struct sp_discovery *d, const char *fpr)
{
	return sp_xasprintf("%s/%s.pgp", d->keys_dir, fpr);
}

static enum sp_pgp_lookup
own_recheck(struct sp_discovery *d, const char *norm, const char *fpr, struct sp_pgp_key_info *info,
            char *err, size_t errsz)
{
	char cause[SP_ERRLEN];
	struct sp_pgp *p = sp_pgp_acquire(&d->own_cfg, cause, sizeof cause);
	enum sp_pgp_lookup r;

	if (p == NULL) {
		sp_seterr(err, errsz, "sealpost's discovered-keys keyring: %s", cause);
		return SP_PGP_ERROR;
	}
	r = sp_pgp_recheck(p, norm, fpr, err, errsz);
	if (r == SP_PGP_FOUND) {
		/* recheck leaves info empty: the fingerprint is what it checked. */
		memset(info, 0, sizeof *info);
		sp_strlcpy(info->fpr, fpr, sizeof info->fpr);
	}
	sp_pgp_release(p);
	if (r == SP_PGP_ERROR) {
		char inner[SP_ERRLEN];
		sp_strlcpy(inner, err, sizeof inner);
		sp_seterr(err, errsz, "sealpost's discovered-keys keyring %s: %s", d->home, inner);
	}
	return r;
}

/* Put an accepted key into our keyring and its key file. */
static int
own_store(struct sp_discovery *d, const char *fpr, const struct sp_buf *key, char *err, size_t errsz)
{
	char cause[SP_ERRLEN], *path;
	struct sp_pgp *p = sp_pgp_acquire(&d->own_cfg, cause, sizeof cause);
	size_t n = 0;
	int rv;

	if (p == NULL || sp_pgp_import(p, key->data, key->len, &n, cause, sizeof cause) < 0 || n == 0) {
		sp_seterr(err, errsz, "sealpost's discovered-keys keyring %s: %s", d->home,
		          p == NULL || n == 0 ? (p ? "gpg took no key" : cause) : cause);
		sp_pgp_release(p);
		return -1;
	}
	sp_pgp_release(p);
	path = key_file(d, fpr);
	rv = write_file_atomic(path, key->data, key->len, err, errsz);
	free(path);
	return rv;
}

static void
describe(const struct sp_discovered *row, char *source, size_t sourcesz)
{
	char since[32];

	format_time(row->first_seen, since, sizeof since);
	snprintf(source, sourcesz, "%s %s, since %s", source_label(row->source), row->url, since);
}

/* ---- lookups ---- */

struct candidate {
	const char *source;
	char *url;
};

static size_t
candidates(struct sp_discovery *d, const char *addr, const char *norm, struct candidate *c)
{
	const char *at = strrchr(norm, '@'), *oat = strrchr(addr, '@');
	const char *domain = at + 1;
	char hash[33];
	char *local_l;
	size_t n = 0;
	CURL *curl;

	curl = curl_easy_init();
	/* ?l= carries the local part as the client wrote it. */
	local_l = curl ? curl_easy_escape(curl, addr, oat ? (int)(oat - addr) : (int)(at - norm)) : NULL;
	sp_wkd_hash(norm, (size_t)(at - norm), hash);
	/* An address literal (user@[192.0.2.1]) has no domain to ask. */
	if (d->cfg->discovery.wkd && local_l && domain[0] != '[') {
		c[n].source = "wkd-advanced";
		c[n++].url = sp_xasprintf("https://openpgpkey.%s/.well-known/openpgpkey/%s/hu/%s?l=%s", domain, domain,
		                          hash, local_l);
		c[n].source = "wkd-direct";
		c[n++].url = sp_xasprintf("https://%s/.well-known/openpgpkey/hu/%s?l=%s", domain, hash, local_l);
	}
	if (d->cfg->discovery.keyserver[0] && curl) {
		const char *base = d->cfg->discovery.keyserver;
		size_t bl = strlen(base);
		char *e = curl_easy_escape(curl, norm, 0);
		if (e) {
			c[n].source = "keyserver";
			c[n++].url = sp_xasprintf("%.*s/vks/v1/by-email/%s", (int)(bl && base[bl - 1] == '/' ? bl - 1 : bl),
			                          base, e);
			curl_free(e);
		}
	}
	curl_free(local_l);
	if (curl)
		curl_easy_cleanup(curl);
	return n;
}

static bool
is_armored(const struct sp_buf *b)
{
	size_t i = 0;

	while (i < b->len && (b->data[i] == ' ' || b->data[i] == '\t' || b->data[i] == '\r' || b->data[i] == '\n'))
		i++;
	return b->len - i >= 14 && memcmp(b->data + i, "-----BEGIN PGP", 14) == 0;
}

/* Ask the network now.  row: what the table held (or NULL). */
static enum sp_pgp_lookup
lookup_now(struct sp_discovery *d, const char *addr, const char *norm, const struct sp_discovered *row,
           struct sp_pgp_key_info *info, char *source, size_t sourcesz, char *err, size_t errsz)
{
	struct candidate c[3];
	size_t n, i;
	int64_t deadline = sp_now_ms() + d->cfg->discovery.timeout * 1000;
	struct sp_discovered nrow;
	enum sp_pgp_lookup r = SP_PGP_NONE;
	GString *reasons = g_string_new(NULL), *detail = g_string_new(NULL);
	struct sp_buf key;
	char cause[SP_ERRLEN];
	const char *changed_from = NULL;

	sp_buf_init(&key, SP_DISCOVERY_MAX_KEY_BYTES);
	memset(&nrow, 0, sizeof nrow);
	sp_strlcpy(nrow.addr, norm, sizeof nrow.addr);
	nrow.fetched = sp_time();
	__atomic_add_fetch(&d->lookups, 1, __ATOMIC_RELAXED);
	n = candidates(d, addr, norm, c);
	for (i = 0; i < n && r != SP_PGP_FOUND; i++) {
		struct fetch f;
		long status = 0;
		char one[SP_ERRLEN];

		memset(&f, 0, sizeof f);
		sp_buf_init(&f.body, SP_DISCOVERY_MAX_KEY_BYTES);
		one[0] = '\0';
		if (fetch_url(d, c[i].url, deadline, &f, &status, one, sizeof one) < 0) {
			/* one says why */
		} else if (status != 200) {
			snprintf(one, sizeof one, "HTTP %ld", status);
		} else {
			if (is_armored(&f.body))
				sp_log_warn("discovery: %s serves an ASCII-armored key where WKD/VKS require binary; "
				            "accepted as a deviation", c[i].url);
			sp_buf_reset(&key);
			r = judge(d, norm, &f.body, info, &key, one, sizeof one);
			if (r == SP_PGP_ERROR) {
				/* Our own scratch space failed: a fault, never "no key". */
				sp_strlcpy(err, one, errsz);
				sp_buf_free(&f.body);
				for (i = 0; i < n; i++)
					free(c[i].url);
				goto out;
			}
			if (r == SP_PGP_FOUND) {
				nrow.first_seen = nrow.fetched;
				sp_strlcpy(nrow.fpr, info->fpr, sizeof nrow.fpr);
				sp_strlcpy(nrow.source, c[i].source, sizeof nrow.source);
				sp_strlcpy(nrow.url, c[i].url, sizeof nrow.url);
				sp_strlcpy(nrow.state, "ok", sizeof nrow.state);
			} else {
				r = SP_PGP_NONE;
			}
		}
		if (r != SP_PGP_FOUND) {
			/* The reply to RCPT names the method; the log also the URL. */
			g_string_append_printf(reasons, "%s%s: %s", reasons->len ? "; " : "", source_label(c[i].source), one);
			g_string_append_printf(detail, "%s%s: %s", detail->len ? "; " : "", c[i].url, one);
		}
		sp_buf_free(&f.body);
	}
	for (i = 0; i < n; i++)
		free(c[i].url);

	if (r == SP_PGP_FOUND) {
		bool known = row && strcmp(row->state, "ok") == 0 && row->fpr[0];
		if (known && strcmp(row->fpr, nrow.fpr) == 0) {
			nrow.first_seen = row->first_seen;
		} else if (known && d->cfg->discovery.on_key_change == SP_KEY_CHANGE_NEXT_FORM) {
			/* A host that swaps keys must not read mail unnoticed. */
			struct sp_discovered ch = *row;
			ch.fetched = nrow.fetched;
			sp_strlcpy(ch.state, "changed", sizeof ch.state);
			sp_strlcpy(ch.new_fpr, nrow.fpr, sizeof ch.new_fpr);
			sp_log_warn("discovery: <%s>: KEY CHANGED: %s now serves %s, not %s as before; not used "
			            "([discovery] on_key_change = next-form; `sealpost keys forget %s` accepts it)",
			            norm, nrow.url, nrow.fpr, row->fpr, norm);
			sp_seterr(err, errsz, "the discovered key changed (%s, was %s): not used "
			          "([discovery] on_key_change = next-form)", nrow.fpr, row->fpr);
			snprintf(source, sourcesz, "KEY CHANGED: %s now serves %s, was %s; not used "
			         "([discovery] on_key_change = next-form)", source_label(nrow.source), nrow.fpr, row->fpr);
			r = db_put(d, &ch, cause, sizeof cause) < 0 ? SP_PGP_ERROR : SP_PGP_NONE;
			if (r == SP_PGP_ERROR)
				sp_seterr(err, errsz, "%s", cause);
			goto out;
		} else if (known) {
			changed_from = row->fpr;
			sp_log_warn("discovery: <%s>: key changed: %s now serves %s, not %s as before; accepted "
			            "([discovery] on_key_change = accept)", norm, nrow.url, nrow.fpr, row->fpr);
		}
		if (own_store(d, nrow.fpr, &key, err, errsz) < 0 || db_put(d, &nrow, err, errsz) < 0) {
			r = SP_PGP_ERROR;
			goto out;
		}
		describe(&nrow, source, sourcesz);
		if (changed_from) {
			size_t l = strlen(source);
			snprintf(source + l, sourcesz - l, "; KEY CHANGED from %s (accepted: [discovery] on_key_change "
			         "= accept)", changed_from);
		}
		sp_log_info("discovery: <%s>: key %s from %s", norm, nrow.fpr, source);
		goto out;
	}
	/* Nothing usable.  A key found before that is still usable stays in use
	 * (the refresh failed, not the key); else remember "no key". */
	if (row && strcmp(row->state, "ok") == 0 && row->fpr[0] &&
	    own_recheck(d, norm, row->fpr, info, cause, sizeof cause) == SP_PGP_FOUND) {
		struct sp_discovered keep = *row;
		keep.fetched = nrow.fetched;
		sp_log_warn("discovery: <%s>: refreshing found nothing usable (%s); keeping key %s", norm,
		            detail->len ? detail->str : "no lookup configured", row->fpr);
		if (db_put(d, &keep, err, errsz) < 0) {
			r = SP_PGP_ERROR;
			goto out;
		}
		describe(&keep, source, sourcesz);
		r = SP_PGP_FOUND;
		goto out;
	}
	sp_strlcpy(nrow.state, "none", sizeof nrow.state);
	if (db_put(d, &nrow, err, errsz) < 0) {
		r = SP_PGP_ERROR;
		goto out;
	}
	sp_log_info("discovery: <%s>: no usable key: %s", norm, detail->len ? detail->str : "no lookup configured");
	sp_seterr(err, errsz, "no discovered key (%s)", reasons->len ? reasons->str : "no lookup configured");
	r = SP_PGP_NONE;
out:
	sp_buf_free(&key);
	g_string_free(reasons, TRUE);
	g_string_free(detail, TRUE);
	return r;
}

static enum sp_pgp_lookup
find(struct sp_discovery *d, const char *addr, const char *norm, bool cached, struct sp_pgp_key_info *info,
     char *source, size_t sourcesz, char *err, size_t errsz)
{
	struct sp_discovered row;
	int64_t now = sp_time();
	int have;

	memset(info, 0, sizeof *info);
	source[0] = '\0';
	if ((have = db_get(d, norm, &row, err, errsz)) < 0)
		return SP_PGP_ERROR;
	if (have && strcmp(row.state, "changed") == 0) {
		snprintf(source, sourcesz, "KEY CHANGED: %s now serves %s, was %s; not used "
		         "([discovery] on_key_change = next-form)", source_label(row.source), row.new_fpr, row.fpr);
		sp_seterr(err, errsz, "the discovered key changed (%s, was %s): not used ([discovery] on_key_change = "
		          "next-form; `sealpost keys forget %s` accepts the new key)", row.new_fpr, row.fpr, norm);
		return SP_PGP_NONE;
	}
	if (cached && have && strcmp(row.state, "ok") == 0 && row.fetched + d->cfg->discovery.ttl > now) {
		enum sp_pgp_lookup r = own_recheck(d, norm, row.fpr, info, err, errsz);
		if (r != SP_PGP_NONE) {
			if (r == SP_PGP_FOUND)
				describe(&row, source, sourcesz);
			return r;
		}
		/* Expired or revoked since: ask again. */
	}
	if (cached && have && strcmp(row.state, "none") == 0 && row.fetched + d->cfg->discovery.negative_ttl > now) {
		char when[32];
		format_time(row.fetched, when, sizeof when);
		sp_seterr(err, errsz, "no discovered key (looked up %s)", when);
		return SP_PGP_NONE;
	}
	return lookup_now(d, addr, norm, have ? &row : NULL, info, source, sourcesz, err, errsz);
}

static enum sp_pgp_lookup
hook_find(void *ctx, const char *addr, const char *norm, struct sp_pgp_key_info *info, char *source,
          size_t sourcesz, char *err, size_t errsz)
{
	return find(ctx, addr, norm, true, info, source, sourcesz, err, errsz);
}

static enum sp_pgp_lookup
hook_recheck(void *ctx, const char *norm, const char *fpr, char *keyfile, size_t keyfilesz, char *err, size_t errsz)
{
	struct sp_discovery *d = ctx;
	struct sp_discovered row;
	struct sp_pgp_key_info info;
	enum sp_pgp_lookup r;
	char *path;
	int have;

	if ((have = db_get(d, norm, &row, err, errsz)) < 0)
		return SP_PGP_ERROR;
	if (!have || strcmp(row.state, "ok") != 0 || strcmp(row.fpr, fpr) != 0) {
		sp_seterr(err, errsz, "key %s is no longer the discovered key for this address", fpr);
		return SP_PGP_NONE;
	}
	if ((r = own_recheck(d, norm, fpr, &info, err, errsz)) != SP_PGP_FOUND)
		return r;
	path = key_file(d, fpr);
	if (access(path, R_OK) < 0 || strlen(path) >= keyfilesz) {
		sp_seterr(err, errsz, "discovered key file %s: %s", path, strerror(errno ? errno : ENAMETOOLONG));
		free(path);
		return SP_PGP_ERROR;
	}
	sp_strlcpy(keyfile, path, keyfilesz);
	free(path);
	return SP_PGP_FOUND;
}

/* ---- open, close, commands ---- */

struct sp_discovery *
sp_discovery_open(const struct sp_config *cfg, char *err, size_t errsz)
{
	struct sp_discovery *d = sp_xcalloc(1, sizeof *d);
	struct stat st;
	char **items;
	size_t i;

	pthread_once(&curl_once, curl_init_once);
	d->cfg = cfg;
	pthread_mutex_init(&d->lock, NULL);
	pthread_mutex_init(&d->stop_lock, NULL);
	pthread_cond_init(&d->stop_cond, NULL);
	d->dir = sp_xasprintf("%s/discovery", cfg->state_dir);
	d->home = sp_xasprintf("%s/gnupg", d->dir);
	d->keys_dir = sp_xasprintf("%s/keys", d->dir);
	d->db_path = sp_xasprintf("%s/discovery.sqlite", d->dir);
	if (strchr(d->dir, '\n')) {
		sp_seterr(err, errsz, "state directory %s: a newline in the path", cfg->state_dir);
		goto fail;
	}
	if (geteuid() == 0 && stat(cfg->state_dir, &st) == 0 && st.st_uid != 0) {
		/* Files made here would belong to root, and the service could no
		 * longer write its own keyring (a 451 for every discovered key). */
		sp_seterr(err, errsz, "the state directory %s belongs to uid %lu: run this as the user sealpost "
		          "runs as (e.g. sudo -u sealpost)", cfg->state_dir, (unsigned long)st.st_uid);
		goto fail;
	}
	if (sp_mkdir_p(d->home, 0700, err, errsz) < 0 || sp_mkdir_p(d->keys_dir, 0700, err, errsz) < 0 ||
	    write_gpg_conf(d->home, err, errsz) < 0)
		goto fail;
	d->own_cfg = *cfg;
	d->own_cfg.pgp.gnupg_home = d->home;
	d->own_cfg.pgp.gnupg_home_required = true;
	d->own_cfg.pgp.trust = SP_TRUST_ALWAYS;
	if (sqlite3_open_v2(d->db_path, &d->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
	                    NULL) != SQLITE_OK) {
		sp_seterr(err, errsz, "discovered-keys database %s: %s", d->db_path,
		          d->db ? sqlite3_errmsg(d->db) : "cannot open");
		goto fail;
	}
	sqlite3_busy_timeout(d->db, SP_DISCOVERY_BUSY_TIMEOUT_MS);
	if (sqlite3_exec(d->db, schema, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(d->db, "SELECT addr, fpr, source, url, first_seen, fetched, state, new_fpr "
	                       "FROM discovered WHERE addr = ?", -1, SQLITE_PREPARE_PERSISTENT, &d->get,
	                       NULL) != SQLITE_OK) {
		db_error(d, "schema", err, errsz);
		goto fail;
	}
	items = g_strsplit(cfg->discovery.connect_to, ";", -1);
	for (i = 0; items[i]; i++) {
		char *item = sp_strstrip(items[i]);
		struct curl_slist *t;
		if (*item == '\0')
			continue;
		if ((t = curl_slist_append(d->connect_to, item)) == NULL) {
			g_strfreev(items);
			sp_seterr(err, errsz, "out of memory");
			goto fail;
		}
		d->connect_to = t;
	}
	g_strfreev(items);
	d->hook.find = hook_find;
	d->hook.recheck = hook_recheck;
	d->hook.ctx = d;
	return d;
fail:
	sp_discovery_close(d);
	return NULL;
}

void
sp_discovery_close(struct sp_discovery *d)
{
	if (d == NULL)
		return;
	sqlite3_finalize(d->get);
	if (d->db)
		sqlite3_close(d->db);
	sp_discovery_stop_refresher(d);
	curl_slist_free_all(d->connect_to);
	pthread_mutex_destroy(&d->lock);
	pthread_mutex_destroy(&d->stop_lock);
	pthread_cond_destroy(&d->stop_cond);
	free(d->dir);
	free(d->home);
	free(d->keys_dir);
	free(d->db_path);
	free(d);
}

const struct sp_key_discovery *
sp_discovery_hook(struct sp_discovery *d)
{
	return &d->hook;
}

uint64_t
sp_discovery_lookups(const struct sp_discovery *d)
{
	return __atomic_load_n(&d->lookups, __ATOMIC_RELAXED);
}

int
sp_discovery_list(struct sp_discovery *d, int (*cb)(void *arg, const struct sp_discovered *row), void *arg,
                  char *err, size_t errsz)
{
	sqlite3_stmt *st = NULL;
	int r, rv = 0;
	size_t n = 0;

	pthread_mutex_lock(&d->lock);
	if (sqlite3_prepare_v2(d->db, "SELECT addr, fpr, source, url, first_seen, fetched, state, new_fpr "
	                       "FROM discovered ORDER BY addr", -1, &st, NULL) != SQLITE_OK) {
		rv = db_error(d, "read", err, errsz);
		goto out;
	}
	while ((r = sqlite3_step(st)) == SQLITE_ROW && n++ < SP_DISCOVERY_LIST_MAX) {
		struct sp_discovered row;
		memset(&row, 0, sizeof row);
		sp_strlcpy(row.addr, (const char *)sqlite3_column_text(st, 0), sizeof row.addr);
		sp_strlcpy(row.fpr, (const char *)sqlite3_column_text(st, 1), sizeof row.fpr);
		sp_strlcpy(row.source, (const char *)sqlite3_column_text(st, 2), sizeof row.source);
		sp_strlcpy(row.url, (const char *)sqlite3_column_text(st, 3), sizeof row.url);
		row.first_seen = sqlite3_column_int64(st, 4);
		row.fetched = sqlite3_column_int64(st, 5);
		sp_strlcpy(row.state, (const char *)sqlite3_column_text(st, 6), sizeof row.state);
		sp_strlcpy(row.new_fpr, (const char *)sqlite3_column_text(st, 7), sizeof row.new_fpr);
		if (cb(arg, &row))
			break;
	}
	if (r != SQLITE_ROW && r != SQLITE_DONE)
		rv = db_error(d, "read", err, errsz);
out:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&d->lock);
	return rv;
}

enum sp_pgp_lookup
sp_discovery_refresh(struct sp_discovery *d, const char *addr, struct sp_pgp_key_info *info, char *source,
                     size_t sourcesz, char *err, size_t errsz)
{
	char norm[SP_ADDR_MAX], cause[SP_ERRLEN];

	if (sp_addr_normalize(addr, norm, sizeof norm, cause, sizeof cause) < 0) {
		sp_seterr(err, errsz, "<%s>: %s", addr, cause);
		return SP_PGP_ERROR;
	}
	return find(d, addr, norm, false, info, source, sourcesz, err, errsz);
}

int
sp_discovery_forget(struct sp_discovery *d, const char *addr, char *err, size_t errsz)
{
	char norm[SP_ADDR_MAX], bad[SP_ERRLEN];
	struct sp_discovered row;
	sqlite3_stmt *st = NULL;
	int have, rv = 0;

	if (sp_addr_normalize(addr, norm, sizeof norm, bad, sizeof bad) < 0) {
		sp_seterr(err, errsz, "<%s>: %s", addr, bad);
		return -1;
	}
	if ((have = db_get(d, norm, &row, err, errsz)) < 0)
		return -1;
	if (!have)
		return 1;
	if (row.fpr[0]) {
		struct sp_pgp *p = sp_pgp_acquire(&d->own_cfg, err, errsz);
		char *path = key_file(d, row.fpr);
		if (p == NULL || sp_pgp_delete_key(p, row.fpr, err, errsz) < 0) {
			sp_pgp_release(p);
			free(path);
			return -1;
		}
		sp_pgp_release(p);
		if (unlink(path) < 0 && errno != ENOENT) {
			sp_seterr(err, errsz, "cannot remove %s: %s", path, strerror(errno));
			free(path);
			return -1;
		}
		free(path);
	}
	pthread_mutex_lock(&d->lock);
	if (sqlite3_prepare_v2(d->db, "DELETE FROM discovered WHERE addr = ?", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(st, 1, norm, -1, SQLITE_STATIC) != SQLITE_OK || sqlite3_step(st) != SQLITE_DONE)
		rv = db_error(d, "delete", err, errsz);
	sqlite3_finalize(st);
	pthread_mutex_unlock(&d->lock);
	return rv;
}

/* ---- the background refresh ---- */

/* The addresses due for a refresh, oldest first. */
static GPtrArray *
due_rows(struct sp_discovery *d, int64_t now)
{
	GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
	int64_t before = now - (int64_t)((double)d->cfg->discovery.ttl * SP_DISCOVERY_REFRESH_AT);
	sqlite3_stmt *st = NULL;

	pthread_mutex_lock(&d->lock);
	if (sqlite3_prepare_v2(d->db, "SELECT addr FROM discovered WHERE state = 'ok' AND fetched <= ? "
	                       "ORDER BY fetched LIMIT ?", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, before);
		sqlite3_bind_int(st, 2, SP_DISCOVERY_REFRESH_BATCH);
		while (sqlite3_step(st) == SQLITE_ROW)
			g_ptr_array_add(out, g_strdup((const char *)sqlite3_column_text(st, 0)));
	} else {
		sp_log_warn("discovery: background refresh: %s: %s", d->db_path, sqlite3_errmsg(d->db));
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&d->lock);
	return out;
}

static bool
should_stop(struct sp_discovery *d)
{
	bool s;

	pthread_mutex_lock(&d->stop_lock);
	s = d->stopping;
	pthread_mutex_unlock(&d->stop_lock);
	return s;
}

static void *
refresher_main(void *arg)
{
	struct sp_discovery *d = arg;

	while (!should_stop(d)) {
		GPtrArray *due = due_rows(d, sp_time());
		struct timespec ts;
		guint i;

		for (i = 0; i < due->len && !should_stop(d); i++) {
			const char *addr = g_ptr_array_index(due, i);
			struct sp_pgp_key_info info;
			char source[300], why[SP_ERRLEN];
			switch (find(d, addr, addr, false, &info, source, sizeof source, why, sizeof why)) {
			case SP_PGP_FOUND:
				sp_log_info("discovery: background refresh of <%s>: key %s from %s", addr, info.fpr, source);
				break;
			case SP_PGP_NONE:
				sp_log_warn("discovery: background refresh of <%s>: %s", addr, why);
				break;
			default:
				sp_log_error("discovery: background refresh of <%s>: %s", addr, why);
				break;
			}
		}
		g_ptr_array_free(due, TRUE);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += SP_DISCOVERY_REFRESH_CHECK_S;
		pthread_mutex_lock(&d->stop_lock);
		while (!d->stopping && pthread_cond_timedwait(&d->stop_cond, &d->stop_lock, &ts) != ETIMEDOUT)
			;
		pthread_mutex_unlock(&d->stop_lock);
	}
	return NULL;
}

int
sp_discovery_start_refresher(struct sp_discovery *d, char *err, size_t errsz)
{
	int e;

	if (d->refresher_running)
		return 0;
	d->stopping = false;
	if ((e = pthread_create(&d->refresher, NULL, refresher_main, d)) != 0) {
		sp_seterr(err, errsz, "cannot start the key refresh thread: %s", strerror(e));
		return -1;
	}
	d->refresher_running = true;
	return 0;
}

void
sp_discovery_stop_refresher(struct sp_discovery *d)
{
	if (d == NULL || !d->refresher_running)
		return;
	pthread_mutex_lock(&d->stop_lock);
	d->stopping = true;
	pthread_cond_signal(&d->stop_cond);
	pthread_mutex_unlock(&d->stop_lock);
	pthread_join(d->refresher, NULL);
	d->refresher_running = false;
}

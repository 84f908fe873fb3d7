/* pgp.c - OpenPGP through GPGME (see pgp.h). */
#include "pgp.h"

#include <errno.h>
#include <locale.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/stat.h>

#include <glib.h>
#include <gpgme.h>
#include <sodium.h>

#include "log.h"

struct sp_pgp {
	const struct sp_config *cfg;
	gpgme_ctx_t ctx;
	/* What gpg said during the current operation (status lines). */
	bool st_not_found;         /* ERROR keylist.getkey 9/17: no such key */
	bool st_error;             /* any other ERROR or FAILURE */
	char st_what[128];
	bool passphrase_asked;     /* a secret key wanted a passphrase */
};

/* gpg's status lines tell "no such key" (a fact) from a failure (a crash, a
 * corrupt keyring): only the first may move a recipient to another form. */
static gpgme_error_t
status_cb(void *hook, const char *keyword, const char *args)
{
	struct sp_pgp *p = hook;

	if (strcmp(keyword, "ERROR") == 0) {
		int code = 0;
		if (args && sscanf(args, "keylist.getkey %d", &code) == 1 &&
		    (code == GPG_ERR_NO_PUBKEY || code == GPG_ERR_NO_SECKEY)) {
			p->st_not_found = true;
		} else {
			p->st_error = true;
			snprintf(p->st_what, sizeof p->st_what, "gpg reported ERROR %s", args ? args : "");
		}
	} else if (strcmp(keyword, "FAILURE") == 0) {
		p->st_error = true;
		snprintf(p->st_what, sizeof p->st_what, "gpg reported FAILURE %s", args ? args : "");
	}
	return 0;
}

/* A daemon has nobody to type a passphrase: refuse, and say so. */
static gpgme_error_t
passphrase_cb(void *hook, const char *uid_hint, const char *info, int prev_bad, int fd)
{
	struct sp_pgp *p = hook;

	(void)uid_hint;
	(void)info;
	(void)prev_bad;
	(void)fd;
	p->passphrase_asked = true;
	return gpg_error(GPG_ERR_CANCELED);
}

static void
status_reset(struct sp_pgp *p)
{
	p->st_not_found = p->st_error = p->passphrase_asked = false;
	p->st_what[0] = '\0';
}

static const char *
validity_name(gpgme_validity_t v)
{
	switch (v) {
	case GPGME_VALIDITY_ULTIMATE: return "ultimate";
	case GPGME_VALIDITY_FULL: return "full";
	case GPGME_VALIDITY_MARGINAL: return "marginal";
	case GPGME_VALIDITY_NEVER: return "never";
	case GPGME_VALIDITY_UNDEFINED: return "undefined";
	case GPGME_VALIDITY_UNKNOWN:
	default: return "unknown";
	}
}

int
sp_pgp_global_init(char *err, size_t errsz)
{
	gpgme_error_t e;

	if (gpgme_check_version("1.18.0") == NULL) {
		sp_seterr(err, errsz, "GPGME is older than 1.18.0");
		return -1;
	}
	gpgme_set_locale(NULL, LC_CTYPE, setlocale(LC_CTYPE, NULL));
	e = gpgme_engine_check_version(GPGME_PROTOCOL_OpenPGP);
	if (e) {
		sp_seterr(err, errsz, "GnuPG engine not usable: %s", gpgme_strerror(e));
		return -1;
	}
	return 0;
}

/* gpg takes a lock file on the keyring for most operations and sleeps 250 ms
 * when it finds it taken: several gpg processes on one keyring at once are
 * much slower than one after the other (8 x 10 encryptions: 1.9 s in
 * parallel, 0.5 s serialised).  sealpost runs one at a time. */
static pthread_mutex_t gpg_lock = PTHREAD_MUTEX_INITIALIZER;

/* The process's GnuPG home and program, set once for every context: a
 * context with engine info of its own runs `gpg --version` first. */
static pthread_mutex_t engine_lock = PTHREAD_MUTEX_INITIALIZER;
static char *engine_home, *engine_program;

struct sp_pgp *
sp_pgp_new(const struct sp_config *cfg, char *err, size_t errsz)
{
	struct sp_pgp *p = sp_xcalloc(1, sizeof *p);

	(void)err;
	(void)errsz;
	/* The GPGME context is made when gpg must really run: a key lookup
	 * answered from the cache needs none. */
	p->cfg = cfg;
	return p;
}

static int
ensure_ctx(struct sp_pgp *p, char *err, size_t errsz)
{
	const struct sp_config *cfg = p->cfg;
	const char *program = cfg->pgp.gpg_program[0] ? cfg->pgp.gpg_program : "";
	bool global = false;
	gpgme_error_t e = 0;

	if (p->ctx)
		return 0;
	pthread_mutex_lock(&engine_lock);
	if (engine_home == NULL) {
		e = gpgme_set_engine_info(GPGME_PROTOCOL_OpenPGP, program[0] ? program : NULL,
		                          cfg->pgp.gnupg_home);
		if (!e) {
			engine_home = sp_xstrdup(cfg->pgp.gnupg_home);
			engine_program = sp_xstrdup(program);
		}
	}
	global = engine_home && strcmp(engine_home, cfg->pgp.gnupg_home) == 0 &&
	         strcmp(engine_program, program) == 0;
	pthread_mutex_unlock(&engine_lock);
	if (!e)
		e = gpgme_new(&p->ctx);
	if (!e)
		e = gpgme_set_protocol(p->ctx, GPGME_PROTOCOL_OpenPGP);
	if (!e && !global)
		e = gpgme_ctx_set_engine_info(p->ctx, GPGME_PROTOCOL_OpenPGP, program[0] ? program : NULL,
		                              cfg->pgp.gnupg_home);
	if (e) {
		sp_seterr(err, errsz, "GnuPG (%s): %s", cfg->pgp.gnupg_home, gpgme_strerror(e));
		if (p->ctx)
			gpgme_release(p->ctx);
		p->ctx = NULL;
		return -1;
	}
	gpgme_set_armor(p->ctx, 1);
	gpgme_set_offline(p->ctx, 1);
	gpgme_set_pinentry_mode(p->ctx, GPGME_PINENTRY_MODE_LOOPBACK);
	gpgme_set_passphrase_cb(p->ctx, passphrase_cb, p);
	gpgme_set_ctx_flag(p->ctx, "full-status", "1");
	gpgme_set_status_cb(p->ctx, status_cb, p);
	gpgme_set_keylist_mode(p->ctx, GPGME_KEYLIST_MODE_LOCAL);
	return 0;
}

void
sp_pgp_free(struct sp_pgp *p)
{
	if (p == NULL)
		return;
	if (p->ctx)
		gpgme_release(p->ctx);
	free(p);
}

/* Warm contexts: a new GPGME context with its own home runs `gpg --version`
 * (a process start) before its first operation; sessions hand theirs back. */
#define SP_PGP_POOL_MAX 16

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sp_pgp *pool[SP_PGP_POOL_MAX];
static size_t n_pool;

struct sp_pgp *
sp_pgp_acquire(const struct sp_config *cfg, char *err, size_t errsz)
{
	struct sp_pgp *p = NULL;
	size_t i;

	pthread_mutex_lock(&pool_lock);
	for (i = 0; i < n_pool; i++) {
		if (pool[i]->cfg == cfg) {
			p = pool[i];
			pool[i] = pool[--n_pool];
			break;
		}
	}
	pthread_mutex_unlock(&pool_lock);
	return p ? p : sp_pgp_new(cfg, err, errsz);
}

void
sp_pgp_release(struct sp_pgp *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&pool_lock);
	if (n_pool < SP_PGP_POOL_MAX) {
		pool[n_pool++] = p;
		p = NULL;
	}
	pthread_mutex_unlock(&pool_lock);
	sp_pgp_free(p);
}

void
sp_pgp_pool_clear(void)
{
	pthread_mutex_lock(&pool_lock);
	while (n_pool)
		sp_pgp_free(pool[--n_pool]);
	pthread_mutex_unlock(&pool_lock);
}

/* ---- watchdog: cancel an operation that takes longer than SP_PGP_TIMEOUT_S ---- */

struct watchdog {
	pthread_t tid;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	gpgme_ctx_t ctx;
	int64_t timeout_s;
	bool done;
	bool fired;
};

static void *
watchdog_main(void *arg)
{
	struct watchdog *w = arg;
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += w->timeout_s;
	pthread_mutex_lock(&w->lock);
	while (!w->done) {
		if (pthread_cond_timedwait(&w->cond, &w->lock, &ts) == ETIMEDOUT) {
			if (!w->done) {
				w->fired = true;
				gpgme_cancel_async(w->ctx);
			}
			break;
		}
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

static int
watchdog_start(struct watchdog *w, gpgme_ctx_t ctx, int64_t timeout_s)
{
	memset(w, 0, sizeof *w);
	w->ctx = ctx;
	w->timeout_s = timeout_s;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	return pthread_create(&w->tid, NULL, watchdog_main, w) == 0 ? 0 : -1;
}

static bool
watchdog_stop(struct watchdog *w)
{
	bool fired;

	pthread_mutex_lock(&w->lock);
	w->done = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->tid, NULL);
	fired = w->fired;
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	return fired;
}

/* ---- the key cache ----
 *
 * Every RCPT and every DATA would otherwise run gpg (a process start and a
 * keyring read, ~4 ms each).  Answers are kept per process for
 * SP_PGP_CACHE_TTL_S, and thrown away as soon as the keyring changes (the
 * files' size/mtime/inode), or the key expires: importing a revocation, a new
 * key or a certification is seen at once.  Failures are never cached. */

#define SP_PGP_CACHE_TTL_S 60
#define SP_PGP_CACHE_MAX 4096

struct cache_entry {
	enum sp_pgp_lookup r;
	struct sp_pgp_key_info info;
	char why[SP_ERRLEN];
	int64_t until;
	char sig[256];
};

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static GHashTable *cache;

/* What identifies the keyring's state. */
static void
keyring_signature(const char *home, char *out, size_t outsz)
{
	static const char *const files[] = { "pubring.kbx", "pubring.gpg", "trustdb.gpg", "private-keys-v1.d" };
	size_t i, o = 0;

	out[0] = '\0';
	for (i = 0; i < SP_ARRAY_LEN(files) && o < outsz; i++) {
		char *path = sp_xasprintf("%s/%s", home, files[i]);
		struct stat st;
		if (stat(path, &st) == 0)
			o += (size_t)snprintf(out + o, outsz - o, "%lu:%lld:%lld.%09ld;", (unsigned long)st.st_ino,
			                      (long long)st.st_size, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
		else
			o += (size_t)snprintf(out + o, outsz - o, "-;");
		free(path);
	}
}

static char *
cache_key(const struct sp_pgp *p, const char *addr, const char *only_fpr, bool secret)
{
	char *lower = g_ascii_strdown(addr, -1), *k;

	k = sp_xasprintf("%s|%s|%s|%d|%d", p->cfg->pgp.gnupg_home, lower, only_fpr ? only_fpr : "", secret,
	                 (int)p->cfg->pgp.trust);
	g_free(lower);
	return k;
}

static bool
cache_get(const char *key, const char *sig, enum sp_pgp_lookup *r, struct sp_pgp_key_info *info,
          char *why, size_t whysz)
{
	struct cache_entry *e;
	bool hit = false;
	int64_t now = sp_time();

	pthread_mutex_lock(&cache_lock);
	e = cache ? g_hash_table_lookup(cache, key) : NULL;
	if (e && e->until > now && strcmp(e->sig, sig) == 0 && (e->info.expires == 0 || e->info.expires > now)) {
		*r = e->r;
		*info = e->info;
		sp_strlcpy(why, e->why, whysz);
		hit = true;
	}
	pthread_mutex_unlock(&cache_lock);
	return hit;
}

static void
cache_put(const char *key, const char *sig, enum sp_pgp_lookup r, const struct sp_pgp_key_info *info,
          const char *why)
{
	struct cache_entry *e = g_new0(struct cache_entry, 1);

	e->r = r;
	e->info = *info;
	sp_strlcpy(e->why, why, sizeof e->why);
	sp_strlcpy(e->sig, sig, sizeof e->sig);
	e->until = sp_time() + SP_PGP_CACHE_TTL_S;
	pthread_mutex_lock(&cache_lock);
	if (cache == NULL)
		cache = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	if (g_hash_table_size(cache) >= SP_PGP_CACHE_MAX)
		g_hash_table_remove_all(cache);
	g_hash_table_replace(cache, g_strdup(key), e);
	pthread_mutex_unlock(&cache_lock);
}

/* ---- key selection ---- */

static bool
uid_matches(gpgme_user_id_t u, const char *addr)
{
	return u->address && sp_addr_equal(u->address, addr);
}

/* Rank of a user ID for choosing among several with the same address. */
static int
uid_rank(gpgme_user_id_t u)
{
	return (u->revoked || u->invalid) ? -1 : (int)u->validity;
}

/* Can k be used for addr?  If not, why says why.  *when gets the creation
 * time of its newest usable subkey for the purpose. */
static bool
key_usable(const struct sp_pgp *p, gpgme_key_t k, const char *addr, bool for_sign,
           gpgme_user_id_t *uid_out, long *when, long long *expires, char *why, size_t whysz)
{
	gpgme_user_id_t u, best_uid = NULL;
	gpgme_subkey_t sk;
	bool subkey_expired = false, subkey_revoked = false;

	*when = -1;
	for (u = k->uids; u; u = u->next)
		if (uid_matches(u, addr) && (best_uid == NULL || uid_rank(u) > uid_rank(best_uid)))
			best_uid = u;
	if (best_uid == NULL) {
		sp_seterr(why, whysz, "no user ID with exactly this address");
		return false;
	}
	*uid_out = best_uid;
	if (k->revoked) {
		sp_seterr(why, whysz, "key revoked");
		return false;
	}
	if (k->expired) {
		sp_seterr(why, whysz, "key expired");
		return false;
	}
	if (k->disabled) {
		sp_seterr(why, whysz, "key disabled");
		return false;
	}
	if (k->invalid) {
		sp_seterr(why, whysz, "key invalid");
		return false;
	}
	if (best_uid->revoked) {
		sp_seterr(why, whysz, "user ID <%s> revoked", addr);
		return false;
	}
	if (best_uid->invalid) {
		sp_seterr(why, whysz, "user ID <%s> invalid", addr);
		return false;
	}
	for (sk = k->subkeys; sk; sk = sk->next) {
		if (!(for_sign ? sk->can_sign : sk->can_encrypt))
			continue;
		if (sk->revoked) {
			subkey_revoked = true;
			continue;
		}
		if (sk->expired) {
			subkey_expired = true;
			continue;
		}
		if (sk->disabled || sk->invalid || (for_sign && !sk->secret))
			continue;
		if (sk->timestamp > *when) {
			/* The key expires with whichever of primary and subkey goes first. */
			long long pe = k->subkeys ? k->subkeys->expires : 0, se = sk->expires;
			*when = sk->timestamp;
			*expires = pe && se ? (pe < se ? pe : se) : (pe ? pe : se);
		}
	}
	if (*when < 0) {
		if (subkey_expired) {
			sp_seterr(why, whysz, "%s", for_sign ? "signing subkey expired" : "encryption subkey expired");
			return false;
		}
		if (subkey_revoked) {
			sp_seterr(why, whysz, "%s", for_sign ? "signing subkey revoked" : "encryption subkey revoked");
			return false;
		}
		sp_seterr(why, whysz, "%s", for_sign ? "no usable secret signing key" : "no encryption-capable subkey");
		return false;
	}
	if (!for_sign && p->cfg->pgp.trust == SP_TRUST_KEYRING &&
	    best_uid->validity < GPGME_VALIDITY_FULL) {
		sp_seterr(why, whysz, "key not valid in the keyring (validity %s; certify it, or "
		          "set [pgp] trust = always)", validity_name(best_uid->validity));
		return false;
	}
	return true;
}

static enum sp_pgp_lookup find_uncached(struct sp_pgp *p, const char *addr, const char *only_fpr, bool secret,
                                        struct sp_pgp_key_info *info, char *why, size_t whysz);
static enum sp_pgp_lookup find_locked(struct sp_pgp *p, const char *addr, const char *only_fpr, bool secret,
                                      struct sp_pgp_key_info *info, char *why, size_t whysz);

static enum sp_pgp_lookup
find(struct sp_pgp *p, const char *addr, const char *only_fpr, bool secret,
     struct sp_pgp_key_info *info, char *why, size_t whysz)
{
	char sig[256], *key = cache_key(p, addr, only_fpr, secret);
	enum sp_pgp_lookup r;

	keyring_signature(p->cfg->pgp.gnupg_home, sig, sizeof sig);
	if (!cache_get(key, sig, &r, info, why, whysz)) {
		r = find_uncached(p, addr, only_fpr, secret, info, why, whysz);
		if (r != SP_PGP_ERROR)
			cache_put(key, sig, r, info, r == SP_PGP_FOUND ? "" : why);
	}
	free(key);
	return r;
}

static enum sp_pgp_lookup
find_uncached(struct sp_pgp *p, const char *addr, const char *only_fpr, bool secret,
              struct sp_pgp_key_info *info, char *why, size_t whysz)
{
	enum sp_pgp_lookup r;

	if (ensure_ctx(p, why, whysz) < 0)
		return SP_PGP_ERROR;
	pthread_mutex_lock(&gpg_lock);
	r = find_locked(p, addr, only_fpr, secret, info, why, whysz);
	pthread_mutex_unlock(&gpg_lock);
	return r;
}

static enum sp_pgp_lookup
find_locked(struct sp_pgp *p, const char *addr, const char *only_fpr, bool secret,
            struct sp_pgp_key_info *info, char *why, size_t whysz)
{
	gpgme_key_t k, best = NULL;
	gpgme_user_id_t best_uid = NULL;
	gpgme_error_t e;
	char pattern[300], first_reason[300] = "";
	long best_when = -1;
	long long best_expires = 0;

	unsigned listed = 0;

	memset(info, 0, sizeof *info);
	status_reset(p);
	/* "<addr>": GnuPG's exact mailbox match; checked again below. */
	snprintf(pattern, sizeof pattern, "<%s>", addr);
	e = gpgme_op_keylist_start(p->ctx, only_fpr ? only_fpr : pattern, secret);
	if (e) {
		sp_seterr(why, whysz, "GnuPG key listing failed: %s", gpgme_strerror(e));
		return SP_PGP_ERROR;
	}
	while ((e = gpgme_op_keylist_next(p->ctx, &k)) == 0) {
		gpgme_user_id_t uid = NULL;
		long when;
		long long expires = 0;
		char bad[200];

		listed++;
		if (!key_usable(p, k, addr, secret, &uid, &when, &expires, bad, sizeof bad)) {
			if (uid && first_reason[0] == '\0')
				snprintf(first_reason, sizeof first_reason, "OpenPGP key %s: %s", k->fpr, bad);
			gpgme_key_unref(k);
			continue;
		}
		if (when > best_when) {
			if (best)
				gpgme_key_unref(best);
			best = k;
			best_uid = uid;
			best_when = when;
			best_expires = expires;
		} else {
			gpgme_key_unref(k);
		}
	}
	if (gpg_err_code(e) != GPG_ERR_EOF) {
		if (best)
			gpgme_key_unref(best);
		sp_seterr(why, whysz, "GnuPG key listing failed: %s", gpgme_strerror(e));
		gpgme_op_keylist_end(p->ctx);
		return SP_PGP_ERROR;
	}
	gpgme_op_keylist_end(p->ctx);
	if (best == NULL) {
		/* "No key" only when gpg said so; silence (a crash) or an error is
		 * a failure, and a failure never moves a recipient to a weaker form. */
		if (p->st_error || (listed == 0 && !p->st_not_found)) {
			sp_seterr(why, whysz, "GnuPG key lookup failed: %s",
			          p->st_what[0] ? p->st_what : "gpg ended without an answer");
			return SP_PGP_ERROR;
		}
		if (first_reason[0])
			sp_seterr(why, whysz, "%s", first_reason);
		else
			sp_seterr(why, whysz, "no OpenPGP %skey for this address", secret ? "secret " : "");
		return SP_PGP_NONE;
	}
	sp_strlcpy(info->fpr, best->fpr, sizeof info->fpr);
	sp_strlcpy(info->uid, best_uid->uid ? best_uid->uid : addr, sizeof info->uid);
	sp_strlcpy(info->validity, validity_name(best_uid->validity), sizeof info->validity);
	info->expires = best_expires;
	gpgme_key_unref(best);
	return SP_PGP_FOUND;
}

enum sp_pgp_lookup
sp_pgp_find_key(struct sp_pgp *p, const char *addr, struct sp_pgp_key_info *info, char *why, size_t whysz)
{
	return find(p, addr, NULL, false, info, why, whysz);
}

enum sp_pgp_lookup
sp_pgp_find_signer(struct sp_pgp *p, const char *addr, struct sp_pgp_key_info *info, char *why, size_t whysz)
{
	return find(p, addr, NULL, true, info, why, whysz);
}

enum sp_pgp_lookup
sp_pgp_recheck(struct sp_pgp *p, const char *addr, const char *fpr, char *why, size_t whysz)
{
	struct sp_pgp_key_info info;

	return find(p, addr, fpr, false, &info, why, whysz);
}

/* ---- encryption ---- */

static ssize_t
sink_write(void *handle, const void *buf, size_t size)
{
	if (sp_buf_append(handle, buf, size) < 0) {
		errno = ENOMEM;
		return -1;
	}
	return (ssize_t)size;
}

static struct gpgme_data_cbs sink_cbs = { .write = sink_write };

static int
get_key(struct sp_pgp *p, const char *fpr, bool secret, gpgme_key_t *k, char *err, size_t errsz)
{
	gpgme_error_t e = gpgme_get_key(p->ctx, fpr, k, secret);

	if (e) {
		sp_seterr(err, errsz, "OpenPGP key %s: %s", fpr, gpgme_strerror(e));
		return -1;
	}
	return 0;
}

/* GPGME reads the plaintext from a blob's pieces: no copy of it is made. */
struct blob_reader {
	const struct sp_blob *b;
	size_t off;
};

static ssize_t
blob_read_cb(void *handle, void *buf, size_t size)
{
	struct blob_reader *r = handle;
	ssize_t n = sp_blob_read(r->b, r->off, buf, size);

	if (n > 0)
		r->off += (size_t)n;
	return n;
}

static off_t
blob_seek_cb(void *handle, off_t offset, int whence)
{
	struct blob_reader *r = handle;
	off_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? (off_t)r->off : (off_t)r->b->len;

	if (base + offset < 0 || (size_t)(base + offset) > r->b->len) {
		errno = EINVAL;
		return -1;
	}
	r->off = (size_t)(base + offset);
	return (off_t)r->off;
}

static struct gpgme_data_cbs blob_cbs = { .read = blob_read_cb, .seek = blob_seek_cb };

int
sp_pgp_encrypt(struct sp_pgp *p, const char *const *fprs, size_t n, const char *sign_fpr,
               const char *in, size_t len, struct sp_buf *out, char *err, size_t errsz)
{
	struct sp_span span = { in, len };
	struct sp_blob blob = { .spans = &span, .n_spans = 1, .fd = -1, .len = len };

	return sp_pgp_encrypt_io(p, fprs, n, sign_fpr, &blob, out, -1, err, errsz);
}

static int encrypt_locked(struct sp_pgp *p, const char *const *fprs, size_t n, const char *sign_fpr,
                          const struct sp_blob *in, struct sp_buf *out, int out_fd, char *err, size_t errsz);

int
sp_pgp_encrypt_io(struct sp_pgp *p, const char *const *fprs, size_t n, const char *sign_fpr,
                  const struct sp_blob *in, struct sp_buf *out, int out_fd, char *err, size_t errsz)
{
	int rv;

	if (ensure_ctx(p, err, errsz) < 0)
		return -1;
	pthread_mutex_lock(&gpg_lock);
	rv = encrypt_locked(p, fprs, n, sign_fpr, in, out, out_fd, err, errsz);
	pthread_mutex_unlock(&gpg_lock);
	return rv;
}

static int
encrypt_locked(struct sp_pgp *p, const char *const *fprs, size_t n, const char *sign_fpr,
               const struct sp_blob *in, struct sp_buf *out, int out_fd, char *err, size_t errsz)
{
	struct blob_reader reader = { in, 0 };
	size_t len = in->len;
	gpgme_key_t signer = NULL;
	GString *recp = g_string_new(NULL);
	gpgme_encrypt_flags_t flags = GPGME_ENCRYPT_ALWAYS_TRUST | GPGME_ENCRYPT_NO_ENCRYPT_TO;
	gpgme_data_t plain = NULL, cipher = NULL;
	gpgme_encrypt_result_t er;
	struct watchdog wd;
	gpgme_error_t e;
	size_t i, start = out ? out->len : 0;
	int rv = -1;
	bool fired;

	status_reset(p);
	/* Recipients by fingerprint: no key lookup (and no gpg run) per key. */
	for (i = 0; i < n; i++)
		g_string_append_printf(recp, "%s\n", fprs[i]);
	/* Compression pays for text, not for what is already compressed or
	 * base64 of binary (most big mail): above the threshold it only costs
	 * time (25 MB: 980 ms with zlib, 290 ms without). */
	if (len > SP_PGP_COMPRESS_MAX)
		flags |= GPGME_ENCRYPT_NO_COMPRESS;
	gpgme_signers_clear(p->ctx);
	if (sign_fpr) {
		if (get_key(p, sign_fpr, true, &signer, err, errsz) < 0)
			goto out;
		if ((e = gpgme_signers_add(p->ctx, signer)) != 0) {
			sp_seterr(err, errsz, "signing key %s: %s", sign_fpr, gpgme_strerror(e));
			goto out;
		}
	}
	if ((e = gpgme_data_new_from_cbs(&plain, &blob_cbs, &reader)) != 0 ||
	    (e = out ? gpgme_data_new_from_cbs(&cipher, &sink_cbs, out) : gpgme_data_new_from_fd(&cipher, out_fd)) != 0) {
		sp_seterr(err, errsz, "GPGME data: %s", gpgme_strerror(e));
		goto out;
	}
	if (watchdog_start(&wd, p->ctx, p->cfg->pgp.timeout) < 0) {
		sp_seterr(err, errsz, "cannot start the gpg watchdog");
		goto out;
	}
	/* Validity was checked at selection (trust = keyring), so gpg need not
	 * re-ask; NO_ENCRYPT_TO keeps gpg.conf's encrypt-to out of our control. */
	if (sign_fpr)
		e = gpgme_op_encrypt_sign_ext(p->ctx, NULL, recp->str, flags, plain, cipher);
	else
		e = gpgme_op_encrypt_ext(p->ctx, NULL, recp->str, flags, plain, cipher);
	fired = watchdog_stop(&wd);
	if (fired) {
		sp_seterr(err, errsz, "gpg did not finish within %lld seconds ([pgp] timeout)",
		          (long long)p->cfg->pgp.timeout);
		goto out;
	}
	if (e) {
		if (p->passphrase_asked) {
			sp_seterr(err, errsz, "[pgp] sign = yes, but secret key %s needs a passphrase, and "
			          "nobody is there to type it; use a key without one or preset it in gpg-agent",
			          sign_fpr ? sign_fpr : "?");
			rv = -2;
		} else {
			sp_seterr(err, errsz, "gpg %s failed: %s%s%s%s", sign_fpr ? "sign+encrypt" : "encrypt",
			          gpgme_strerror(e), sign_fpr ? " (signing key " : "", sign_fpr ? sign_fpr : "",
			          sign_fpr ? ")" : "");
		}
		goto out;
	}
	er = gpgme_op_encrypt_result(p->ctx);
	if (er && er->invalid_recipients) {
		sp_seterr(err, errsz, "gpg refused key %s: %s", er->invalid_recipients->fpr,
		          gpgme_strerror(er->invalid_recipients->reason));
		goto out;
	}
	if (sign_fpr) {
		gpgme_sign_result_t sr = gpgme_op_sign_result(p->ctx);
		if (sr == NULL || sr->invalid_signers || sr->signatures == NULL) {
			sp_seterr(err, errsz, "gpg did not sign with %s%s%s", sign_fpr,
			          sr && sr->invalid_signers ? ": " : "",
			          sr && sr->invalid_signers ? gpgme_strerror(sr->invalid_signers->reason) : "");
			goto out;
		}
	}
	{
		char head[27] = "";
		if (out && out->len - start >= 30)
			memcpy(head, out->data + start, sizeof head);
		else if (!out && pread(out_fd, head, sizeof head, 0) != (ssize_t)sizeof head)
			head[0] = '\0';
		if (memcmp(head, "-----BEGIN PGP MESSAGE-----", sizeof head) != 0) {
			sp_seterr(err, errsz, "gpg produced no armored message");
			goto out;
		}
	}
	rv = 0;
out:
	if (rv != 0 && out) {
		/* Never leave a partial result behind. */
		out->len = start;
		if (out->data)
			out->data[start] = '\0';
	}
	gpgme_data_release(plain);
	gpgme_data_release(cipher);
	g_string_free(recp, TRUE);
	if (signer)
		gpgme_key_unref(signer);
	gpgme_signers_clear(p->ctx);
	return rv;
}

/* Exported keys, per fingerprint, valid while the keyring is unchanged. */
struct export_entry {
	char sig[256];
	int64_t until;
	GBytes *key;
};

static GHashTable *exports;

static void
export_entry_free(gpointer p)
{
	struct export_entry *e = p;

	g_bytes_unref(e->key);
	g_free(e);
}

int
sp_pgp_export_minimal(struct sp_pgp *p, const char *fpr, struct sp_buf *out, char *err, size_t errsz)
{
	gpgme_data_t d = NULL;
	gpgme_error_t e;
	char sig[256];
	size_t start = out->len;
	int rv = -1;

	keyring_signature(p->cfg->pgp.gnupg_home, sig, sizeof sig);
	pthread_mutex_lock(&cache_lock);
	if (exports) {
		struct export_entry *x = g_hash_table_lookup(exports, fpr);
		if (x && strcmp(x->sig, sig) == 0 && x->until > sp_time()) {
			gsize n;
			const void *data = g_bytes_get_data(x->key, &n);
			rv = sp_buf_append(out, data, n);
		}
	}
	pthread_mutex_unlock(&cache_lock);
	if (rv == 0)
		return 0;

	if (ensure_ctx(p, err, errsz) < 0)
		return -1;
	gpgme_set_armor(p->ctx, 0);
	pthread_mutex_lock(&gpg_lock);
	if ((e = gpgme_data_new_from_cbs(&d, &sink_cbs, out)) != 0 ||
	    (e = gpgme_op_export(p->ctx, fpr, GPGME_EXPORT_MODE_MINIMAL, d)) != 0) {
		pthread_mutex_unlock(&gpg_lock);
		sp_seterr(err, errsz, "exporting %s: %s", fpr, gpgme_strerror(e));
		goto out;
	}
	pthread_mutex_unlock(&gpg_lock);
	rv = 0;
	{
		struct export_entry *x = g_new0(struct export_entry, 1);
		sp_strlcpy(x->sig, sig, sizeof x->sig);
		x->until = sp_time() + SP_PGP_CACHE_TTL_S;
		x->key = g_bytes_new(out->data + start, out->len - start);
		pthread_mutex_lock(&cache_lock);
		if (exports == NULL)
			exports = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, export_entry_free);
		if (g_hash_table_size(exports) >= SP_PGP_CACHE_MAX)
			g_hash_table_remove_all(exports);
		g_hash_table_replace(exports, g_strdup(fpr), x);
		pthread_mutex_unlock(&cache_lock);
	}
out:
	gpgme_set_armor(p->ctx, 1);
	gpgme_data_release(d);
	return rv;
}

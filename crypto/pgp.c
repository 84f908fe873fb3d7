/* pgp.c - OpenPGP through GPGME (see pgp.h). */
#include "pgp.h"

#include <errno.h>
#include <fcntl.h>
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

#include "address.h"
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

/* ---- is the keyring usable at all? ----
 *
 * GnuPG answers "no such key" for some broken keyrings: a pubring.kbx of
 * zero bytes reads as an empty keybox, and without trustdb.gpg every key's
 * validity is "unknown" (gpg even makes a new, empty trustdb, after which
 * nothing is valid ever again).  Read as facts, those would move a recipient
 * whose key is certified to a weaker form.  So before gpg runs, the files are
 * looked at: a few stat() calls and one 32-byte read per lookup. */

/* A keybox starts with a header blob: 4-byte big-endian length (32), type 1,
 * version 1, 2 bytes of flags, "KBXf" (GnuPG's kbx/keybox-blob.c). */
#define SP_KBX_HEADER_LEN 32
/* A trustdb starts with a 40-byte version record: type 1, "gpg" (GnuPG's
 * g10/tdbio.c, TRUST_RECORD_LEN). */
#define SP_TRUSTDB_RECORD_LEN 40

/* The first n bytes of path (zero-padded when shorter) and its stat.  Returns
 * 0, 1 when path does not exist, or -1 with err set. */
static int
read_head(const char *path, unsigned char *buf, size_t n, struct stat *st, char *err, size_t errsz)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	ssize_t got;

	if (fd < 0 && errno == ELOOP)
		fd = open(path, O_RDONLY | O_CLOEXEC); /* a symlinked keyring is allowed */
	if (fd < 0) {
		if (errno == ENOENT)
			return 1;
		sp_seterr(err, errsz, "OpenPGP keyring: cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
		sp_seterr(err, errsz, "OpenPGP keyring: %s is not a regular file", path);
		close(fd);
		return -1;
	}
	got = pread(fd, buf, n, 0);
	close(fd);
	if (got < 0) {
		sp_seterr(err, errsz, "OpenPGP keyring: cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	if ((size_t)got < n)
		memset(buf + got, 0, n - (size_t)got);
	return 0;
}

/* Blob types in a keybox (GnuPG's kbx/keybox-defs.h). */
#define SP_KBX_BLOB_EMPTY 0      /* a deleted key's place */
#define SP_KBX_BLOB_HEADER 1
#define SP_KBX_BLOB_PGP 2
#define SP_KBX_BLOB_X509 3
/* Every blob starts with its 4-byte length and its type. */
#define SP_KBX_BLOB_MIN 5

/* A process reads several keyrings: the user's, sealpost's own of discovered
 * keys, and the scratch keyrings that judge a fetched key.  What is known
 * about a keyring's state (whole, proven) is kept for this many, the oldest
 * replaced first, so that alternating keyrings do not re-read each other. */
#define SP_PGP_KEYRINGS_REMEMBERED 4

/* The keyboxes last found whole, by their identity (inode, size, mtime). */
static pthread_mutex_t kbx_lock = PTHREAD_MUTEX_INITIALIZER;
static char kbx_whole[SP_PGP_KEYRINGS_REMEMBERED][128];
static unsigned kbx_next;

/* gpg stops at a blob cut short without a word on its status channel (it
 * prints "keydb_search_next failed" on stderr and lists the keys before it):
 * walk the blobs, which must fill the file exactly.  (A keybox cut exactly
 * between two blobs is a valid, smaller keybox: nothing can tell.) */
static int
kbx_walk(const char *path, int fd, const struct stat *st, char *err, size_t errsz)
{
	char id[128];
	unsigned char h[SP_KBX_BLOB_MIN];
	uint64_t off = 0, size = (uint64_t)st->st_size, len;
	bool known;

	snprintf(id, sizeof id, "%lu:%lu:%lld:%lld.%09ld", (unsigned long)st->st_dev, (unsigned long)st->st_ino,
	         (long long)st->st_size, (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec);
	pthread_mutex_lock(&kbx_lock);
	known = false;
	for (unsigned i = 0; i < SP_PGP_KEYRINGS_REMEMBERED && !known; i++)
		known = strcmp(kbx_whole[i], id) == 0;
	pthread_mutex_unlock(&kbx_lock);
	if (known)
		return 0;
	while (off < size) {
		if (size - off < SP_KBX_BLOB_MIN || pread(fd, h, sizeof h, (off_t)off) != (ssize_t)sizeof h) {
			sp_seterr(err, errsz, "OpenPGP keyring: %s is cut short (a key record at byte %llu is "
			          "incomplete): restore it from a backup", path, (unsigned long long)off);
			return -1;
		}
		len = (uint64_t)h[0] << 24 | (uint64_t)h[1] << 16 | (uint64_t)h[2] << 8 | h[3];
		if (len < SP_KBX_BLOB_MIN || (off == 0) != (h[4] == SP_KBX_BLOB_HEADER) ||
		    (h[4] != SP_KBX_BLOB_EMPTY && h[4] != SP_KBX_BLOB_HEADER && h[4] != SP_KBX_BLOB_PGP &&
		     h[4] != SP_KBX_BLOB_X509)) {
			sp_seterr(err, errsz, "OpenPGP keyring: %s is damaged (no valid key record at byte %llu): "
			          "restore it from a backup", path, (unsigned long long)off);
			return -1;
		}
		if (len > size - off) {
			sp_seterr(err, errsz, "OpenPGP keyring: %s is cut short (the key record at byte %llu needs "
			          "%llu bytes, %llu are left): restore it from a backup", path,
			          (unsigned long long)off, (unsigned long long)len, (unsigned long long)(size - off));
			return -1;
		}
		off += len;
	}
	pthread_mutex_lock(&kbx_lock);
	sp_strlcpy(kbx_whole[kbx_next], id, sizeof kbx_whole[kbx_next]);
	kbx_next = (kbx_next + 1) % SP_PGP_KEYRINGS_REMEMBERED;
	pthread_mutex_unlock(&kbx_lock);
	return 0;
}

enum sp_pgp_keyring
sp_pgp_keyring_check(const struct sp_config *cfg, char *err, size_t errsz)
{
	const char *home = cfg->pgp.gnupg_home;
	unsigned char head[SP_TRUSTDB_RECORD_LEN];
	struct stat st;
	char *path = NULL;
	bool has_kbx = false, has_gpg = false, has_keys = false;
	enum sp_pgp_keyring rv = SP_PGP_KEYRING_FAULT;
	int r;

	if (stat(home, &st) < 0) {
		if (errno == ENOENT && !cfg->pgp.gnupg_home_required) {
			sp_seterr(err, errsz, "no OpenPGP keyring (%s)", home);
			return SP_PGP_KEYRING_ABSENT;
		}
		sp_seterr(err, errsz, "OpenPGP keyring %s ([pgp] gnupg_home): %s", home, strerror(errno));
		return SP_PGP_KEYRING_FAULT;
	}
	if (!S_ISDIR(st.st_mode)) {
		sp_seterr(err, errsz, "OpenPGP keyring %s ([pgp] gnupg_home) is not a directory", home);
		return SP_PGP_KEYRING_FAULT;
	}
	if (access(home, R_OK | W_OK | X_OK) < 0) {
		sp_seterr(err, errsz, "OpenPGP keyring %s: %s (gpg must read and write there)", home, strerror(errno));
		return SP_PGP_KEYRING_FAULT;
	}

	path = sp_xasprintf("%s/pubring.kbx", home);
	if ((r = read_head(path, head, SP_KBX_HEADER_LEN, &st, err, errsz)) < 0)
		goto out;
	if (r == 0) {
		uint32_t len = (uint32_t)head[0] << 24 | (uint32_t)head[1] << 16 | (uint32_t)head[2] << 8 | head[3];
		has_kbx = true;
		if (st.st_size < SP_KBX_HEADER_LEN) {
			sp_seterr(err, errsz, "OpenPGP keyring: %s is %s (%lld bytes; GnuPG never writes a keybox "
			          "without its %d-byte header): restore it from a backup", path,
			          st.st_size ? "cut short" : "empty", (long long)st.st_size, SP_KBX_HEADER_LEN);
			goto out;
		}
		if (len < SP_KBX_HEADER_LEN || len > (uint64_t)st.st_size || head[4] != 1 || head[5] != 1 ||
		    memcmp(head + 8, "KBXf", 4) != 0) {
			sp_seterr(err, errsz, "OpenPGP keyring: %s is not a GnuPG keybox (bad header): restore it "
			          "from a backup", path);
			goto out;
		}
		has_keys = (uint64_t)st.st_size > len;
		{
			int fd = open(path, O_RDONLY | O_CLOEXEC);
			struct stat st2;
			if (fd < 0 || fstat(fd, &st2) < 0) {
				sp_seterr(err, errsz, "OpenPGP keyring: cannot read %s: %s", path, strerror(errno));
				if (fd >= 0)
					close(fd);
				goto out;
			}
			r = kbx_walk(path, fd, &st2, err, errsz);
			close(fd);
			if (r < 0)
				goto out;
		}
	}
	free(path);
	path = sp_xasprintf("%s/pubring.gpg", home);
	if (!has_kbx) {
		/* GnuPG 1's keyring: any readable file; empty is a valid empty keyring there. */
		if ((r = read_head(path, head, 1, &st, err, errsz)) < 0)
			goto out;
		has_gpg = r == 0;
		has_keys = has_gpg && st.st_size > 0;
	}
	free(path);
	path = sp_xasprintf("%s/trustdb.gpg", home);
	if ((r = read_head(path, head, SP_TRUSTDB_RECORD_LEN, &st, err, errsz)) < 0)
		goto out;
	if (r == 1) {
		if (has_keys && cfg->pgp.trust == SP_TRUST_KEYRING) {
			sp_seterr(err, errsz, "OpenPGP keyring: %s is missing, so GnuPG cannot tell which keys are "
			          "valid ([pgp] trust = keyring): restore it from a backup (or gpg "
			          "--import-ownertrust)", path);
			goto out;
		}
	} else {
		if (!has_kbx && !has_gpg) {
			sp_seterr(err, errsz, "OpenPGP keyring %s: trustdb.gpg but no public keyring "
			          "(pubring.kbx): restore it from a backup", home);
			goto out;
		}
		if (st.st_size < SP_TRUSTDB_RECORD_LEN || head[0] != 1 || memcmp(head + 1, "gpg", 3) != 0) {
			sp_seterr(err, errsz, "OpenPGP keyring: %s is %s: restore it from a backup (or gpg "
			          "--import-ownertrust)", path, st.st_size == 0 ? "empty" : "not a GnuPG trustdb");
			goto out;
		}
	}
	rv = SP_PGP_KEYRING_OK;
out:
	free(path);
	return rv;
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
	char err[SP_ERRLEN];
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

/* norm: the address in its normal form (address.h), so that every spelling
 * of one address shares an entry. */
static char *
cache_key(const struct sp_pgp *p, const char *norm, const char *only_fpr, bool secret)
{
	return sp_xasprintf("%s|%s|%s|%d|%d", p->cfg->pgp.gnupg_home, norm, only_fpr ? only_fpr : "", secret,
	                    (int)p->cfg->pgp.trust);
}

static bool
cache_get(const char *key, const char *sig, enum sp_pgp_lookup *r, struct sp_pgp_key_info *info,
          char *err, size_t errsz)
{
	struct cache_entry *e;
	bool hit = false;
	int64_t now = sp_time();

	pthread_mutex_lock(&cache_lock);
	e = cache ? g_hash_table_lookup(cache, key) : NULL;
	if (e && e->until > now && strcmp(e->sig, sig) == 0 && (e->info.expires == 0 || e->info.expires > now)) {
		*r = e->r;
		*info = e->info;
		sp_strlcpy(err, e->err, errsz);
		hit = true;
	}
	pthread_mutex_unlock(&cache_lock);
	return hit;
}

static void
cache_put(const char *key, const char *sig, enum sp_pgp_lookup r, const struct sp_pgp_key_info *info,
          const char *err)
{
	struct cache_entry *e = g_new0(struct cache_entry, 1);

	e->r = r;
	e->info = *info;
	sp_strlcpy(e->err, err, sizeof e->err);
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

/* Can k be used for addr?  If not, err says why.  *when gets the creation
 * time of its newest usable subkey for the purpose. */
static bool
key_usable(const struct sp_pgp *p, gpgme_key_t k, const char *addr, bool for_sign,
           gpgme_user_id_t *uid_out, long *when, long long *expires, bool *not_valid, char *err, size_t errsz)
{
	gpgme_user_id_t u, best_uid = NULL;
	gpgme_subkey_t sk;
	bool subkey_expired = false, subkey_revoked = false;

	*when = -1;
	for (u = k->uids; u; u = u->next)
		if (uid_matches(u, addr) && (best_uid == NULL || uid_rank(u) > uid_rank(best_uid)))
			best_uid = u;
	if (best_uid == NULL) {
		sp_seterr(err, errsz, "no user ID with exactly this address");
		return false;
	}
	*uid_out = best_uid;
	if (k->revoked) {
		sp_seterr(err, errsz, "key revoked");
		return false;
	}
	if (k->expired) {
		sp_seterr(err, errsz, "key expired");
		return false;
	}
	if (k->disabled) {
		sp_seterr(err, errsz, "key disabled");
		return false;
	}
	if (k->invalid) {
		sp_seterr(err, errsz, "key invalid");
		return false;
	}
	if (best_uid->revoked) {
		sp_seterr(err, errsz, "user ID <%s> revoked", addr);
		return false;
	}
	if (best_uid->invalid) {
		sp_seterr(err, errsz, "user ID <%s> invalid", addr);
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
			sp_seterr(err, errsz, "%s", for_sign ? "signing subkey expired" : "encryption subkey expired");
			return false;
		}
		if (subkey_revoked) {
			sp_seterr(err, errsz, "%s", for_sign ? "signing subkey revoked" : "encryption subkey revoked");
			return false;
		}
		sp_seterr(err, errsz, "%s", for_sign ? "no usable secret signing key" : "no encryption-capable subkey");
		return false;
	}
	if (!for_sign && p->cfg->pgp.trust == SP_TRUST_KEYRING &&
	    best_uid->validity < GPGME_VALIDITY_FULL) {
		*not_valid = true;
		sp_seterr(err, errsz, "key not valid in the keyring (validity %s; certify it, or "
		          "set [pgp] trust = always)", validity_name(best_uid->validity));
		return false;
	}
	return true;
}

static enum sp_pgp_lookup find_uncached(struct sp_pgp *p, const char *addr, const char *only_fpr, bool secret,
                                        const char *sig, struct sp_pgp_key_info *info, char *err, size_t errsz);
static enum sp_pgp_lookup find_locked(struct sp_pgp *p, const char *addr, const char *only_fpr, bool secret,
                                      const char *sig, struct sp_pgp_key_info *info, char *err, size_t errsz);

static enum sp_pgp_lookup
find(struct sp_pgp *p, const char *addr, const char *only_fpr, bool secret,
     struct sp_pgp_key_info *info, char *err, size_t errsz)
{
	char sig[256], after[256], norm[SP_ADDR_MAX], bad[SP_ERRLEN], *key;
	enum sp_pgp_lookup r = SP_PGP_ERROR;
	int attempt;

	memset(info, 0, sizeof *info);
	/* The policy refuses such an address before any lookup; here it can
	 * only be a sender's, which then has no key. */
	if (sp_addr_normalize(addr, norm, sizeof norm, bad, sizeof bad) < 0) {
		sp_seterr(err, errsz, "<%s>: %s", addr, bad);
		return SP_PGP_NONE;
	}
	key = cache_key(p, norm, only_fpr, secret);
	for (attempt = 0; attempt < 2; attempt++) {
		keyring_signature(p->cfg->pgp.gnupg_home, sig, sizeof sig);
		/* An unusable keyring is an error, never "no key" (see above). */
		switch (sp_pgp_keyring_check(p->cfg, err, errsz)) {
		case SP_PGP_KEYRING_OK:
			break;
		case SP_PGP_KEYRING_ABSENT:
			r = SP_PGP_NONE;
			goto out;
		case SP_PGP_KEYRING_FAULT:
		default:
			r = SP_PGP_ERROR;
			goto out;
		}
		if (cache_get(key, sig, &r, info, err, errsz))
			goto out;
		r = find_uncached(p, norm, only_fpr, secret, sig, info, err, errsz);
		/* "No key" is a fact only about the keyring that was checked: if it
		 * changed under the lookup (a trustdb.gpg removed, and gpg made a
		 * new one...), ask again; twice is a failure. */
		keyring_signature(p->cfg->pgp.gnupg_home, after, sizeof after);
		if (r == SP_PGP_NONE && strcmp(sig, after) != 0) {
			r = SP_PGP_ERROR;
			sp_seterr(err, errsz, "OpenPGP keyring %s changed during the key lookup", p->cfg->pgp.gnupg_home);
			continue;
		}
		if (r != SP_PGP_ERROR)
			cache_put(key, sig, r, info, r == SP_PGP_FOUND ? "" : err);
		break;
	}
out:
	free(key);
	return r;
}

static enum sp_pgp_lookup
find_uncached(struct sp_pgp *p, const char *addr, const char *only_fpr, bool secret,
              const char *sig, struct sp_pgp_key_info *info, char *err, size_t errsz)
{
	enum sp_pgp_lookup r;

	if (ensure_ctx(p, err, errsz) < 0)
		return SP_PGP_ERROR;
	pthread_mutex_lock(&gpg_lock);
	r = find_locked(p, addr, only_fpr, secret, sig, info, err, errsz);
	pthread_mutex_unlock(&gpg_lock);
	return r;
}

/* ---- does GnuPG read the whole keyring? ----
 *
 * A lookup by address reads only what it needs: a keybox cut short after the
 * key, or a damaged trustdb.gpg, can still answer "no such key" for another
 * address.  So, once per keyring state (its signature, as for the key cache),
 * every key is listed with its validity: any error, or a truncated listing,
 * makes the keyring unusable for every recipient until it is repaired.
 * Failures are not remembered: the next lookup tries again.
 *
 * The same listing tells whether any key is ultimately trusted.  Under trust
 * = keyring a key is valid only through a chain that starts at one (your own,
 * normally); a trustdb without one (gpg made a new one after trustdb.gpg was
 * lost, or it was replaced) makes every key "not valid": a broken keyring,
 * not a fact about a recipient. */

static struct {
	char sig[256];           /* "" = unused */
	bool anchor;
	size_t keys;
} proven[SP_PGP_KEYRINGS_REMEMBERED];
static unsigned proven_next;

/* 0 with *anchor (and *n_keys when not NULL), or -1 with err.  Called with
 * gpg_lock held. */
static int
keyring_prove_locked(struct sp_pgp *p, const char *sig, bool *anchor, size_t *n_keys, char *err, size_t errsz)
{
	size_t n = 0;
	gpgme_keylist_result_t res;
	gpgme_key_t k;
	gpgme_error_t e;
	bool known = false;

	*anchor = false;
	pthread_mutex_lock(&cache_lock);
	for (unsigned i = 0; i < SP_PGP_KEYRINGS_REMEMBERED && !known; i++) {
		if (proven[i].sig[0] && strcmp(proven[i].sig, sig) == 0) {
			known = true;
			*anchor = proven[i].anchor;
			n = proven[i].keys;
		}
	}
	pthread_mutex_unlock(&cache_lock);
	if (known) {
		if (n_keys)
			*n_keys = n;
		return 0;
	}
	status_reset(p);
	if ((e = gpgme_op_keylist_start(p->ctx, NULL, 0)) != 0) {
		sp_seterr(err, errsz, "OpenPGP keyring %s: GnuPG cannot list it: %s", p->cfg->pgp.gnupg_home,
		          gpgme_strerror(e));
		return -1;
	}
	while ((e = gpgme_op_keylist_next(p->ctx, &k)) == 0) {
		if (k->owner_trust == GPGME_VALIDITY_ULTIMATE)
			*anchor = true;
		n++;
		gpgme_key_unref(k);
	}
	res = gpgme_op_keylist_result(p->ctx);
	gpgme_op_keylist_end(p->ctx);
	if (gpg_err_code(e) != GPG_ERR_EOF || p->st_error || (res && res->truncated)) {
		sp_seterr(err, errsz, "OpenPGP keyring %s cannot be read in full (damaged pubring.kbx or "
		          "trustdb.gpg?): %s", p->cfg->pgp.gnupg_home,
		          gpg_err_code(e) != GPG_ERR_EOF ? gpgme_strerror(e) :
		          p->st_what[0] ? p->st_what : "the key listing was cut short");
		return -1;
	}
	pthread_mutex_lock(&cache_lock);
	sp_strlcpy(proven[proven_next].sig, sig, sizeof proven[proven_next].sig);
	proven[proven_next].anchor = *anchor;
	proven[proven_next].keys = n;
	proven_next = (proven_next + 1) % SP_PGP_KEYRINGS_REMEMBERED;
	pthread_mutex_unlock(&cache_lock);
	if (n_keys)
		*n_keys = n;
	return 0;
}

enum sp_pgp_keyring
sp_pgp_keyring_verify(struct sp_pgp *p, size_t *n_keys, char *err, size_t errsz)
{
	enum sp_pgp_keyring k = sp_pgp_keyring_check(p->cfg, err, errsz);
	char sig[256];
	bool anchor;
	int r;

	*n_keys = 0;
	if (k != SP_PGP_KEYRING_OK)
		return k;
	if (ensure_ctx(p, err, errsz) < 0)
		return SP_PGP_KEYRING_FAULT;
	keyring_signature(p->cfg->pgp.gnupg_home, sig, sizeof sig);
	pthread_mutex_lock(&gpg_lock);
	r = keyring_prove_locked(p, sig, &anchor, n_keys, err, errsz);
	pthread_mutex_unlock(&gpg_lock);
	if (r < 0)
		return SP_PGP_KEYRING_FAULT;
	if (!anchor && *n_keys && p->cfg->pgp.trust == SP_TRUST_KEYRING)
		sp_seterr(err, errsz, "no key is ultimately trusted: under [pgp] trust = keyring no key can be "
		          "valid (certify keys with a key of your own)");
	else
		err[0] = '\0';
	return SP_PGP_KEYRING_OK;
}

static enum sp_pgp_lookup
find_locked(struct sp_pgp *p, const char *addr, const char *only_fpr, bool secret,
            const char *sig, struct sp_pgp_key_info *info, char *err, size_t errsz)
{
	gpgme_key_t k, best = NULL;
	gpgme_user_id_t best_uid = NULL;
	gpgme_error_t e;
	char pattern[SP_ADDR_MAX + 4], first_reason[300] = "";
	long best_when = -1;
	long long best_expires = 0;

	unsigned listed = 0;
	bool not_valid = false, anchor;
	gpgme_keylist_result_t res;

	memset(info, 0, sizeof *info);
	if (keyring_prove_locked(p, sig, &anchor, NULL, err, errsz) < 0)
		return SP_PGP_ERROR;
	status_reset(p);
	if (sp_addr_is_idn(addr)) {
		/* A user ID may spell the domain as U-labels or A-labels, and GnuPG
		 * compares bytes: ask for every user ID with this local part
		 * ("*": substring), and compare the normal forms below. */
		const char *at = strrchr(addr, '@');
		snprintf(pattern, sizeof pattern, "*%.*s@", (int)(at - addr), addr);
	} else {
		/* "<addr>": GnuPG's exact mailbox match; checked again below. */
		snprintf(pattern, sizeof pattern, "<%s>", addr);
	}
	e = gpgme_op_keylist_start(p->ctx, only_fpr ? only_fpr : pattern, secret);
	if (e) {
		sp_seterr(err, errsz, "GnuPG key listing failed: %s", gpgme_strerror(e));
		return SP_PGP_ERROR;
	}
	while ((e = gpgme_op_keylist_next(p->ctx, &k)) == 0) {
		gpgme_user_id_t uid = NULL;
		long when;
		long long expires = 0;
		char bad[200];

		listed++;
		if (!key_usable(p, k, addr, secret, &uid, &when, &expires, &not_valid, bad, sizeof bad)) {
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
	res = gpgme_op_keylist_result(p->ctx);
	if (gpg_err_code(e) != GPG_ERR_EOF || (res && res->truncated)) {
		if (best)
			gpgme_key_unref(best);
		sp_seterr(err, errsz, "GnuPG key listing failed: %s",
		          gpg_err_code(e) != GPG_ERR_EOF ? gpgme_strerror(e) : "the listing was cut short");
		gpgme_op_keylist_end(p->ctx);
		return SP_PGP_ERROR;
	}
	gpgme_op_keylist_end(p->ctx);
	if (best == NULL) {
		/* "No key" only when gpg said so; silence (a crash) or an error is
		 * a failure, and a failure never moves a recipient to a weaker form. */
		if (p->st_error || (listed == 0 && !p->st_not_found)) {
			sp_seterr(err, errsz, "GnuPG key lookup failed: %s",
			          p->st_what[0] ? p->st_what : "gpg ended without an answer");
			return SP_PGP_ERROR;
		}
		if (not_valid && !anchor) {
			sp_seterr(err, errsz, "OpenPGP keyring %s: no key in it is ultimately trusted, so no key "
			          "can be valid ([pgp] trust = keyring); was trustdb.gpg lost or replaced?  "
			          "Restore it (or gpg --import-ownertrust)", p->cfg->pgp.gnupg_home);
			return SP_PGP_ERROR;
		}
		if (first_reason[0])
			sp_seterr(err, errsz, "%s", first_reason);
		else
			sp_seterr(err, errsz, "no OpenPGP %skey for this address", secret ? "secret " : "");
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
sp_pgp_find_key(struct sp_pgp *p, const char *addr, struct sp_pgp_key_info *info, char *err, size_t errsz)
{
	return find(p, addr, NULL, false, info, err, errsz);
}

enum sp_pgp_lookup
sp_pgp_find_signer(struct sp_pgp *p, const char *addr, struct sp_pgp_key_info *info, char *err, size_t errsz)
{
	return find(p, addr, NULL, true, info, err, errsz);
}

enum sp_pgp_lookup
sp_pgp_recheck(struct sp_pgp *p, const char *addr, const char *fpr, char *err, size_t errsz)
{
	struct sp_pgp_key_info info;

	return find(p, addr, fpr, false, &info, err, errsz);
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

enum sp_pgp_encrypt_result
sp_pgp_encrypt(struct sp_pgp *p, const char *const *fprs, size_t n, const char *sign_fpr,
               const char *in, size_t len, struct sp_buf *out, char *err, size_t errsz)
{
	struct sp_span span = { in, len };
	struct sp_blob blob = { .spans = &span, .n_spans = 1, .fd = -1, .len = len };

	return sp_pgp_encrypt_io(p, fprs, n, sign_fpr, &blob, out, -1, err, errsz);
}

static enum sp_pgp_encrypt_result encrypt_locked(struct sp_pgp *p, const char *const *fprs, size_t n,
                                                 const char *sign_fpr, const struct sp_blob *in,
                                                 struct sp_buf *out, int out_fd, char *err, size_t errsz);

enum sp_pgp_encrypt_result
sp_pgp_encrypt_io(struct sp_pgp *p, const char *const *fprs, size_t n, const char *sign_fpr,
                  const struct sp_blob *in, struct sp_buf *out, int out_fd, char *err, size_t errsz)
{
	enum sp_pgp_encrypt_result rv;

	if (ensure_ctx(p, err, errsz) < 0)
		return SP_PGP_ENCRYPT_TEMPFAIL;
	pthread_mutex_lock(&gpg_lock);
	rv = encrypt_locked(p, fprs, n, sign_fpr, in, out, out_fd, err, errsz);
	pthread_mutex_unlock(&gpg_lock);
	return rv;
}

static enum sp_pgp_encrypt_result
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
	enum sp_pgp_encrypt_result rv = SP_PGP_ENCRYPT_TEMPFAIL;
	bool fired;

	status_reset(p);
	/* Recipients by fingerprint: no key lookup (and no gpg run) per key. */
	for (i = 0; i < n; i++) {
		/* A key file (a discovered key, kept outside the user's keyring):
		 * gpg's --recipient-file, through GPGME's --file keyword. */
		if (fprs[i][0] == '/')
			g_string_append_printf(recp, "--file\n%s\n--no-file\n", fprs[i]);
		else
			g_string_append_printf(recp, "%s\n", fprs[i]);
	}
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
			rv = SP_PGP_ENCRYPT_PERMFAIL;
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
	rv = SP_PGP_ENCRYPTED;
out:
	if (rv != SP_PGP_ENCRYPTED && out) {
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

int
sp_pgp_export_minimal_armored(struct sp_pgp *p, const char *fpr, struct sp_buf *out, char *err, size_t errsz)
{
	gpgme_data_t d = NULL;
	gpgme_error_t e;
	size_t start = out->len;

	if (ensure_ctx(p, err, errsz) < 0)
		return -1;
	gpgme_set_armor(p->ctx, 1);
	pthread_mutex_lock(&gpg_lock);
	if ((e = gpgme_data_new_from_cbs(&d, &sink_cbs, out)) != 0 ||
	    (e = gpgme_op_export(p->ctx, fpr, GPGME_EXPORT_MODE_MINIMAL, d)) != 0) {
		pthread_mutex_unlock(&gpg_lock);
		sp_seterr(err, errsz, "exporting %s: %s", fpr, gpgme_strerror(e));
		gpgme_data_release(d);
		out->len = start;
		return -1;
	}
	pthread_mutex_unlock(&gpg_lock);
	gpgme_data_release(d);
	return 0;
}

/* ---- keyrings sealpost keeps itself (discovered keys) ---- */

int
sp_pgp_import(struct sp_pgp *p, const void *data, size_t len, size_t *n_imported, char *err, size_t errsz)
{
	gpgme_data_t d = NULL;
	gpgme_import_result_t res;
	gpgme_error_t e;
	int rv = -1;

	*n_imported = 0;
	if (ensure_ctx(p, err, errsz) < 0)
		return -1;
	if ((e = gpgme_data_new_from_mem(&d, data, len, 0)) != 0) {
		sp_seterr(err, errsz, "GPGME data: %s", gpgme_strerror(e));
		return -1;
	}
	pthread_mutex_lock(&gpg_lock);
	status_reset(p);
	e = gpgme_op_import(p->ctx, d);
	res = e ? NULL : gpgme_op_import_result(p->ctx);
	if (e) {
		sp_seterr(err, errsz, "gpg import into %s failed: %s", p->cfg->pgp.gnupg_home, gpgme_strerror(e));
	} else if (res == NULL) {
		sp_seterr(err, errsz, "gpg import into %s gave no result", p->cfg->pgp.gnupg_home);
	} else {
		*n_imported = (size_t)res->considered - (size_t)res->not_imported;
		rv = 0;
	}
	pthread_mutex_unlock(&gpg_lock);
	gpgme_data_release(d);
	return rv;
}

int
sp_pgp_delete_key(struct sp_pgp *p, const char *fpr, char *err, size_t errsz)
{
	gpgme_key_t k = NULL;
	gpgme_error_t e;

	if (ensure_ctx(p, err, errsz) < 0)
		return -1;
	pthread_mutex_lock(&gpg_lock);
	e = gpgme_get_key(p->ctx, fpr, &k, 0);
	if (gpg_err_code(e) == GPG_ERR_EOF) {
		e = 0;       /* not there: nothing to delete */
	} else if (!e) {
		e = gpgme_op_delete_ext(p->ctx, k, GPGME_DELETE_FORCE);
		gpgme_key_unref(k);
	}
	pthread_mutex_unlock(&gpg_lock);
	if (e) {
		sp_seterr(err, errsz, "deleting key %s from %s: %s", fpr, p->cfg->pgp.gnupg_home, gpgme_strerror(e));
		return -1;
	}
	return 0;
}

/* link_store.c - the SQLite link store, and the switch to the PostgreSQL one
 * (link_store_pg.c) for a URL (see link_store.h). */
#include "link_store.h"
#include "link_store_pg.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>
#include <glib.h>
#include <sqlite3.h>

#include "log.h"

struct link_store {
	struct link_store_pg *pg; /* PostgreSQL: every call goes there; the rest is unused */
	sqlite3 *db;
	pthread_mutex_t lock; /* one connection, one transaction at a time */
	char *path;
	/* Prepared statements, by their SQL text (the key points at the static
	 * literal; release() finds them by sqlite3_sql()): preparing on every
	 * request was a quarter of the viewer's CPU.  Used under `lock` only. */
	GHashTable *stmts;
	/* The connection commits with synchronous = NORMAL (relaxed) instead of
	 * FULL: set by the one kind of transaction that may (change_link's
	 * callers say which), put back by every other write before it begins
	 * (write_sync).  Under `lock`. */
	bool relaxed;
};

/* A link is live while this holds; everything else is swept.  `?1` is now. */
#define LIVE_SQL "revoked = 0 AND expires > ?1 AND (max_views = 0 OR views < max_views) " \
                 "AND failed < max_failed"

/* Schema migrations: entry i brings the file from user_version i to i + 1.
 * Append only; never edit a step that has shipped. */
static const char *const migrations[] = {
	/* 0 -> 1 */
	"CREATE TABLE messages ("
	"  id TEXT PRIMARY KEY NOT NULL,"        /* 128 random bits, hex */
	"  created INTEGER NOT NULL,"
	"  ciphertext BLOB NOT NULL"              /* sp_link_seal_message() output */
	") WITHOUT ROWID;"
	"CREATE TABLE links ("
	"  id TEXT PRIMARY KEY NOT NULL,"        /* link id, hex; the secret half is never here */
	"  message_id TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,"
	"  wrapped BLOB NOT NULL,"               /* sp_link_wrap_key() output */
	"  created INTEGER NOT NULL,"
	"  expires INTEGER NOT NULL,"
	"  max_views INTEGER NOT NULL CHECK (max_views >= 0),"
	"  views INTEGER NOT NULL DEFAULT 0,"
	"  max_failed INTEGER NOT NULL CHECK (max_failed >= 1),"
	"  failed INTEGER NOT NULL DEFAULT 0,"
	"  revoked INTEGER NOT NULL DEFAULT 0"
	");"
	"CREATE INDEX links_message ON links(message_id);"
	"CREATE INDEX links_expires ON links(expires);",
	/* 1 -> 2: link v2.  What the page shows before the password, and the
	 * attempts evaluated but not yet proven (link_store.h). */
	"ALTER TABLE links ADD COLUMN sender TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE links ADD COLUMN hint TEXT NOT NULL DEFAULT '';"
	"CREATE TABLE pending ("
	"  link_id TEXT NOT NULL REFERENCES links(id) ON DELETE CASCADE,"
	"  attempt BLOB NOT NULL,"               /* 16 random bytes the viewer drew */
	"  expires INTEGER NOT NULL,"
	"  PRIMARY KEY (link_id, attempt)"
	") WITHOUT ROWID;"
	"CREATE INDEX pending_expires ON pending(expires);",
	/* 2 -> 3: secure reply (docs/formats.md "Secure reply").  A reply
	 * capability per unlock (only its SHA-256; it outlives a burnt link until
	 * the link would have expired), and the replies, ciphertext only, until
	 * the proxy has delivered them. */
	"CREATE TABLE reply_caps ("
	"  cap BLOB PRIMARY KEY NOT NULL,"       /* SHA-256 of the 32-byte token */
	"  link_id TEXT NOT NULL,"
	"  sender TEXT NOT NULL,"                /* the link's sender: the reply's To */
	"  expires INTEGER NOT NULL,"
	"  replies INTEGER NOT NULL DEFAULT 0,"
	"  last INTEGER NOT NULL DEFAULT 0"      /* when the last reply came */
	") WITHOUT ROWID;"
	"CREATE INDEX reply_caps_expires ON reply_caps(expires);"
	"CREATE TABLE replies ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  link_id TEXT NOT NULL,"
	"  created INTEGER NOT NULL,"
	"  sender TEXT NOT NULL,"
	"  rcpt TEXT NOT NULL,"                  /* as the browser said: the reply's From */
	"  in_reply_to TEXT NOT NULL,"           /* as the browser said */
	"  body BLOB NOT NULL"                   /* the OpenPGP message, as posted */
	");",
};


_Static_assert(SP_ARRAY_LEN(migrations) == LINK_STORE_SCHEMA_VERSION,
               "one migration per schema version");

static void
db_err(struct link_store *s, char *err, size_t errsz, const char *what)
{
	sp_seterr(err, errsz, "link store %s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
}

static int
exec_sql(struct link_store *s, const char *sql, char *err, size_t errsz)
{
	char *msg = NULL;

	if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		sp_seterr(err, errsz, "link store %s: %s", s->path, msg ? msg : sqlite3_errmsg(s->db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static void
rollback(struct link_store *s)
{
	if (!sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

/* After a delete: move the WAL back into the database and truncate it, so the
 * deleted rows (zeroed in the database by secure_delete) do not live on in the
 * -wal file.  Best effort: a concurrent reader makes it a no-op until next time. */
static void
checkpoint(struct link_store *s)
{
	sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
}

/* Every write says, before it begins, how its commit is synced: durable
 * (synchronous = FULL: the WAL is fsynced before COMMIT returns) or relaxed
 * (NORMAL: durable with the next FULL commit or checkpoint, which fsync the
 * whole WAL before them; the durable state is always a prefix of the commit
 * order, so a power cut can drop a relaxed commit only together with every
 * commit after it, and a process crash drops nothing).  Only a wrong proof
 * is relaxed (link_store_prove).  Outside a transaction, under `lock`.
 * Returns 0, or -1 with err set and nothing written. */
static int
write_sync(struct link_store *s, bool durable, char *err, size_t errsz)
{
	if (s->relaxed == !durable)
		return 0;
	if (exec_sql(s, durable ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL",
	             err, errsz) < 0)
		return -1;
	s->relaxed = !durable;
	return 0;
}

/* write_sync, then BEGIN IMMEDIATE.  Returns 0, or -1 with err set. */
static int
begin_write(struct link_store *s, bool durable, char *err, size_t errsz)
{
	if (write_sync(s, durable, err, errsz) < 0)
		return -1;
	return exec_sql(s, "BEGIN IMMEDIATE", err, errsz);
}

static sqlite3_stmt *
prepare(struct link_store *s, const char *sql, char *err, size_t errsz)
{
	bool cache = strncmp(sql, "PRAGMA", 6) != 0;
	sqlite3_stmt *st = NULL;

	if (cache && s->stmts && (st = g_hash_table_lookup(s->stmts, sql)) != NULL)
		return st;
	if (sqlite3_prepare_v3(s->db, sql, -1, cache ? SQLITE_PREPARE_PERSISTENT : 0, &st, NULL) != SQLITE_OK) {
		db_err(s, err, errsz, "prepare");
		return NULL;
	}
	if (cache) {
		if (s->stmts == NULL)
			s->stmts = g_hash_table_new(g_str_hash, g_str_equal);
		g_hash_table_insert(s->stmts, (gpointer)sql, st);
	}
	return st;
}

/* Done with a statement: a cached one is reset for its next use. */
static void
release(struct link_store *s, sqlite3_stmt *st)
{
	if (st == NULL)
		return;
	if (s->stmts && g_hash_table_lookup(s->stmts, sqlite3_sql(st)) == st) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		return;
	}
	sqlite3_finalize(st);
}

static void
finalize_cached(struct link_store *s)
{
	GHashTableIter it;
	gpointer k, v;

	if (s->stmts == NULL)
		return;
	g_hash_table_iter_init(&it, s->stmts);
	while (g_hash_table_iter_next(&it, &k, &v))
		sqlite3_finalize(v);
	g_hash_table_destroy(s->stmts);
	s->stmts = NULL;
}

static int
migrate(struct link_store *s, char *err, size_t errsz)
{
	sqlite3_stmt *st = NULL;
	int version = 0, rv = -1;
	size_t i;

	for (i = 0; i < SP_ARRAY_LEN(migrations); i++) {
		/* Read the version inside the write transaction: another process may
		 * be migrating the same file right now. */
		if (exec_sql(s, "BEGIN IMMEDIATE", err, errsz) < 0)
			goto out;
		if ((st = prepare(s, "PRAGMA user_version", err, errsz)) == NULL)
			goto out;
		if (sqlite3_step(st) != SQLITE_ROW) {
			db_err(s, err, errsz, "reading the schema version");
			goto out;
		}
		version = sqlite3_column_int(st, 0);
		release(s, st);
		st = NULL;
		if (version > LINK_STORE_SCHEMA_VERSION) {
			sp_seterr(err, errsz, "link store %s: schema version %d is newer than this "
			          "sealpost understands (%d)", s->path, version, LINK_STORE_SCHEMA_VERSION);
			goto out;
		}
		if ((size_t)version > i) {
			rollback(s);
			continue;
		}
		if (exec_sql(s, migrations[i], err, errsz) < 0)
			goto out;
		char pragma[64];
		snprintf(pragma, sizeof pragma, "PRAGMA user_version = %zu", i + 1);
		if (exec_sql(s, pragma, err, errsz) < 0 || exec_sql(s, "COMMIT", err, errsz) < 0)
			goto out;
		sp_log_info("link store %s: schema migrated to version %zu", s->path, i + 1);
	}
	rv = 0;
out:
	release(s, st);
	if (rv < 0)
		rollback(s);
	return rv;
}

enum link_store_rc
link_store_open(const char *path, struct link_store **out, char *err, size_t errsz)
{
	struct link_store *s = NULL;
	char *dir = NULL, *slash;
	sqlite3_stmt *st = NULL;
	enum link_store_rc rv = LINK_STORE_ERROR;
	int fd;

	*out = NULL;
	if (path == NULL || *path == '\0') {
		sp_seterr(err, errsz, "link store: no path configured ([link] store)");
		return LINK_STORE_ERROR;
	}
	if (link_store_is_url(path)) {
		struct link_store_pg *pg;
		if ((rv = link_store_pg_open(path, &pg, err, errsz)) != LINK_STORE_OK)
			return rv;
		s = sp_xcalloc(1, sizeof *s);
		s->pg = pg;
		s->path = link_store_label(path);
		pthread_mutex_init(&s->lock, NULL);
		*out = s;
		return LINK_STORE_OK;
	}
	dir = sp_xstrdup(path);
	if ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
		*slash = '\0';
		char why[SP_ERRLEN];
		if (sp_mkdir_p(dir, 0700, why, sizeof why) < 0) {
			sp_seterr(err, errsz, "link store %s: %s", path, why);
			goto out;
		}
	}
	/* Create the file ourselves so that it is 0600 whatever the umask; SQLite
	 * gives the -wal and -shm files the same mode. */
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		sp_seterr(err, errsz, "link store %s: %s", path, strerror(errno));
		goto out;
	}
	{
		struct stat sb;
		if (fstat(fd, &sb) == 0 && (sb.st_mode & 077) != 0 && fchmod(fd, 0600) < 0)
			sp_log_warn("link store %s: cannot make it private (chmod 0600): %s", path,
			            strerror(errno));
	}
	close(fd);

	s = sp_xcalloc(1, sizeof *s);
	s->path = sp_xstrdup(path);
	pthread_mutex_init(&s->lock, NULL);
	if (sqlite3_open_v2(path, &s->db,
	                    SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX | SQLITE_OPEN_NOFOLLOW,
	                    NULL) != SQLITE_OK) {
		if (s->db)
			db_err(s, err, errsz, "open");
		else
			sp_seterr(err, errsz, "link store %s: cannot open", path);
		goto out;
	}
	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, LINK_STORE_BUSY_TIMEOUT_MS);
	/* WAL: readers never block the writer.  synchronous=FULL: a stored link
	 * survives a power cut once the proxy has said 250.  secure_delete: freed
	 * pages are zeroed, so deleted ciphertext and wrapped keys do not linger in
	 * the file.  trusted_schema=OFF: the file is data, never code. */
	if (exec_sql(s, "PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON; "
	             "PRAGMA synchronous = FULL; PRAGMA trusted_schema = OFF", err, errsz) < 0)
		goto out;
	if ((st = prepare(s, "PRAGMA journal_mode = WAL", err, errsz)) == NULL)
		goto out;
	if (sqlite3_step(st) != SQLITE_ROW ||
	    strcmp((const char *)sqlite3_column_text(st, 0), "wal") != 0) {
		db_err(s, err, errsz, "cannot switch to WAL mode");
		goto out;
	}
	release(s, st);
	st = NULL;
	if (migrate(s, err, errsz) < 0)
		goto out;
	*out = s;
	s = NULL;
	rv = LINK_STORE_OK;
out:
	release(s, st);
	link_store_close(s);
	free(dir);
	return rv;
}

void
link_store_close(struct link_store *s)
{
	if (s == NULL)
		return;
	link_store_pg_close(s->pg);
	if (s->db) {
		finalize_cached(s);
		checkpoint(s);
		sqlite3_close_v2(s->db);
	}
	pthread_mutex_destroy(&s->lock);
	free(s->path);
	free(s);
}

static int
validate_put(const struct link_store_new_msg *m, char *err, size_t errsz)
{
	size_t i;

	if (m->ciphertext == NULL || m->ciphertext_len == 0) {
		sp_seterr(err, errsz, "link store: empty message ciphertext");
		return -1;
	}
	if (m->n_links == 0 || m->n_links > LINK_STORE_LINKS_MAX) {
		sp_seterr(err, errsz, "link store: a message needs 1..%d links, not %zu",
		          LINK_STORE_LINKS_MAX, m->n_links);
		return -1;
	}
	if (m->expires <= m->created) {
		sp_seterr(err, errsz, "link store: expiry is not after creation");
		return -1;
	}
	if (m->max_failed == 0 || m->max_failed > INT64_MAX || m->max_views > INT64_MAX) {
		sp_seterr(err, errsz, "link store: max_failed_attempts must be at least 1");
		return -1;
	}
	if ((m->sender && strlen(m->sender) >= LINK_STORE_SENDER_MAX) ||
	    (m->hint && strlen(m->hint) >= LINK_STORE_HINT_MAX)) {
		sp_seterr(err, errsz, "link store: sender or hint too long");
		return -1;
	}
	for (i = 0; i < m->n_links; i++) {
		if (!link_store_id_valid(m->links[i].id)) {
			sp_seterr(err, errsz, "link store: link %zu: malformed id", i);
			return -1;
		}
		if (m->links[i].wrapped == NULL || m->links[i].wrapped_len == 0 ||
		    m->links[i].wrapped_len > LINK_STORE_WRAPPED_MAX) {
			sp_seterr(err, errsz, "link store: link %zu: wrapped key of %zu bytes", i,
			          m->links[i].wrapped_len);
			return -1;
		}
	}
	return 0;
}

enum link_store_rc
link_store_put(struct link_store *s, const struct link_store_new_msg *m,
               char msg_id[LINK_STORE_MSGID_HEXLEN + 1], char *err, size_t errsz)
{
	sqlite3_stmt *sm = NULL, *sl = NULL;
	enum link_store_rc rv = LINK_STORE_ERROR;
	char id[LINK_STORE_MSGID_HEXLEN + 1];
	size_t i;
	int rc;

	if (validate_put(m, err, errsz) < 0)
		return LINK_STORE_ERROR;
	if (s->pg)
		return link_store_pg_put(s->pg, m, msg_id, err, errsz);
	if (m->ciphertext_len > INT32_MAX) {
		sp_seterr(err, errsz, "link store: message ciphertext too large");
		return LINK_STORE_ERROR;
	}
	sp_random_id(id);
	pthread_mutex_lock(&s->lock);
	if ((sm = prepare(s, "INSERT INTO messages (id, created, ciphertext) VALUES (?, ?, ?)",
	                  err, errsz)) == NULL ||
	    (sl = prepare(s, "INSERT INTO links (id, message_id, wrapped, created, expires, "
	                  "max_views, max_failed, sender, hint) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
	                  err, errsz)) == NULL)
		goto out;
	if (begin_write(s, true, err, errsz) < 0)
		goto out;
	sqlite3_bind_text(sm, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(sm, 2, m->created);
	sqlite3_bind_blob(sm, 3, m->ciphertext, (int)m->ciphertext_len, SQLITE_STATIC);
	if (sqlite3_step(sm) != SQLITE_DONE) {
		db_err(s, err, errsz, "storing the message");
		goto out;
	}
	for (i = 0; i < m->n_links; i++) {
		sqlite3_reset(sl);
		sqlite3_bind_text(sl, 1, m->links[i].id, -1, SQLITE_STATIC);
		sqlite3_bind_text(sl, 2, id, -1, SQLITE_STATIC);
		sqlite3_bind_blob(sl, 3, m->links[i].wrapped, (int)m->links[i].wrapped_len,
		                  SQLITE_STATIC);
		sqlite3_bind_int64(sl, 4, m->created);
		sqlite3_bind_int64(sl, 5, m->expires);
		sqlite3_bind_int64(sl, 6, (sqlite3_int64)m->max_views);
		sqlite3_bind_int64(sl, 7, (sqlite3_int64)m->max_failed);
		sqlite3_bind_text(sl, 8, m->sender ? m->sender : "", -1, SQLITE_STATIC);
		sqlite3_bind_text(sl, 9, m->hint ? m->hint : "", -1, SQLITE_STATIC);
		rc = sqlite3_step(sl);
		if (rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
			sp_seterr(err, errsz, "link store: link id %s already exists", m->links[i].id);
			rv = LINK_STORE_EXISTS;
			goto out;
		}
		if (rc != SQLITE_DONE) {
			db_err(s, err, errsz, "storing a link");
			goto out;
		}
	}
	if (exec_sql(s, "COMMIT", err, errsz) < 0)
		goto out;
	if (msg_id)
		memcpy(msg_id, id, sizeof id);
	rv = LINK_STORE_OK;
out:
	if (rv != LINK_STORE_OK)
		rollback(s);
	release(s, sm);
	release(s, sl);
	pthread_mutex_unlock(&s->lock);
	return rv;
}

#define LINK_COLUMNS "id, message_id, created, expires, max_views, views, max_failed, " \
                     "failed, revoked, sender, hint"

static void
read_link_row(sqlite3_stmt *st, struct link_store_link *l)
{
	const unsigned char *t;

	memset(l, 0, sizeof *l);
	if ((t = sqlite3_column_text(st, 0)) != NULL)
		sp_strlcpy(l->id, (const char *)t, sizeof l->id);
	if ((t = sqlite3_column_text(st, 1)) != NULL)
		sp_strlcpy(l->message_id, (const char *)t, sizeof l->message_id);
	l->created = sqlite3_column_int64(st, 2);
	l->expires = sqlite3_column_int64(st, 3);
	l->max_views = (uint64_t)sqlite3_column_int64(st, 4);
	l->views = (uint64_t)sqlite3_column_int64(st, 5);
	l->max_failed = (uint64_t)sqlite3_column_int64(st, 6);
	l->failed = (uint64_t)sqlite3_column_int64(st, 7);
	l->revoked = sqlite3_column_int(st, 8) != 0;
	if ((t = sqlite3_column_text(st, 9)) != NULL)
		sp_strlcpy(l->sender, (const char *)t, sizeof l->sender);
	if ((t = sqlite3_column_text(st, 10)) != NULL)
		sp_strlcpy(l->hint, (const char *)t, sizeof l->hint);
}

/* Inside a write transaction: read one link's state.  1 found, 0 not, -1 error. */
static int
load_link(struct link_store *s, const char *id, struct link_store_link *l, char *err, size_t errsz)
{
	sqlite3_stmt *st;
	int rc, rv = -1;

	if ((st = prepare(s, "SELECT " LINK_COLUMNS " FROM links WHERE id = ?", err, errsz)) == NULL)
		return -1;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		read_link_row(st, l);
		rv = 1;
	} else if (rc == SQLITE_DONE) {
		rv = 0;
	} else {
		db_err(s, err, errsz, "reading a link");
	}
	release(s, st);
	return rv;
}

/* Inside a write transaction: delete links (one, or all of a message) and the
 * message when no link remains. */
static int
delete_links(struct link_store *s, const char *id, const char *message_id, bool whole_message,
             char *err, size_t errsz)
{
	sqlite3_stmt *st = NULL;
	int rv = -1;

	if (whole_message) {
		if ((st = prepare(s, "DELETE FROM links WHERE message_id = ?", err, errsz)) == NULL)
			goto out;
		sqlite3_bind_text(st, 1, message_id, -1, SQLITE_STATIC);
	} else {
		if ((st = prepare(s, "DELETE FROM links WHERE id = ?", err, errsz)) == NULL)
			goto out;
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	}
	if (sqlite3_step(st) != SQLITE_DONE) {
		db_err(s, err, errsz, "deleting a link");
		goto out;
	}
	release(s, st);
	if ((st = prepare(s, "DELETE FROM messages WHERE id = ?1 AND NOT EXISTS "
	                  "(SELECT 1 FROM links WHERE message_id = ?1)", err, errsz)) == NULL)
		goto out;
	sqlite3_bind_text(st, 1, message_id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		db_err(s, err, errsz, "deleting a message");
		goto out;
	}
	rv = 0;
out:
	release(s, st);
	return rv;
}

/* Start a write transaction and read link id in it.  IMMEDIATE takes the write
 * lock before reading, so that a check and the change that follows are one step
 * for every connection and process.  1 found, 0 not there (the transaction is
 * open either way), -1 error (the caller rolls back). */
static int
begin_with_link(struct link_store *s, const char *id, bool durable, struct link_store_link *l,
                char *err, size_t errsz)
{
	if (begin_write(s, durable, err, errsz) < 0)
		return -1;
	return load_link(s, id, l, err, errsz);
}

/* Run an UPDATE of one counter of link id ("... WHERE id = ?"). */
static int
bump_counter(struct link_store *s, const char *sql, const char *id, const char *what, char *err,
             size_t errsz)
{
	sqlite3_stmt *st;
	int rc;

	if ((st = prepare(s, sql, err, errsz)) == NULL)
		return -1;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	release(s, st);
	if (rc != SQLITE_DONE) {
		db_err(s, err, errsz, what);
		return -1;
	}
	return 0;
}

/* Delete a dead link found outside a transaction; returns GONE or ERROR. */
static enum link_store_rc
delete_dead(struct link_store *s, const char *id, int64_t now, char *err, size_t errsz)
{
	struct link_store_link l;
	int found;

	if ((found = begin_with_link(s, id, true, &l, err, errsz)) < 0)
		goto fail;
	/* Re-check inside the transaction: it may have been deleted meanwhile. */
	if (found == 1 && !link_store_link_live(&l, now) &&
	    delete_links(s, id, l.message_id, false, err, errsz) < 0)
		goto fail;
	if (exec_sql(s, "COMMIT", err, errsz) < 0)
		goto fail;
	if (found == 1)
		checkpoint(s);
	return LINK_STORE_GONE;
fail:
	rollback(s);
	return LINK_STORE_ERROR;
}

enum link_store_rc
link_store_get(struct link_store *s, const char *id, int64_t now, struct link_store_link *out,
               char *err, size_t errsz)
{
	sqlite3_stmt *st = NULL;
	enum link_store_rc rv = LINK_STORE_ERROR;
	int rc;

	memset(out, 0, sizeof *out);
	if (!link_store_id_valid(id))
		return LINK_STORE_GONE;
	if (s->pg)
		return link_store_pg_get(s->pg, id, now, out, err, errsz);
	pthread_mutex_lock(&s->lock);
	if ((st = prepare(s, "SELECT " LINK_COLUMNS ", wrapped FROM links WHERE id = ?",
	                  err, errsz)) == NULL)
		goto out;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		rv = LINK_STORE_GONE;
		goto out;
	}
	if (rc != SQLITE_ROW) {
		db_err(s, err, errsz, "reading a link");
		goto out;
	}
	read_link_row(st, out);
	if (!link_store_link_live(out, now)) {
		release(s, st);
		st = NULL;
		memset(out, 0, sizeof *out);
		rv = delete_dead(s, id, now, err, errsz);
		goto out;
	}
	out->wrapped_len = (size_t)sqlite3_column_bytes(st, 11);
	if (out->wrapped_len == 0 || out->wrapped_len > LINK_STORE_WRAPPED_MAX) {
		sp_seterr(err, errsz, "link store %s: link %s has a damaged key blob", s->path, id);
		memset(out, 0, sizeof *out);
		goto out;
	}
	out->wrapped = sp_xmalloc(out->wrapped_len);
	memcpy(out->wrapped, sqlite3_column_blob(st, 11), out->wrapped_len);
	rv = LINK_STORE_OK;
out:
	release(s, st);
	pthread_mutex_unlock(&s->lock);
	return rv;
}

/* How one change to one link is committed (change_link). */
struct change {
	bool durable; /* in: the commit is fsynced (write_sync); false only for a wrong proof */
	bool commit;  /* out: commit although the result is not LINK_STORE_OK */
	bool deleted; /* out: links or messages were deleted (commit, then checkpoint) */
};

/* One change to one link, inside change_link()'s transaction: l is the link as
 * read in it.  Returns LINK_STORE_OK (committed), another result (committed
 * when it set ch->commit or ch->deleted, else rolled back) or LINK_STORE_ERROR
 * (rolled back). */
typedef enum link_store_rc (*link_change_fn)(struct link_store *s, const char *id,
                                             struct link_store_link *l, void *arg,
                                             struct change *ch, char *err, size_t errsz);

/* Every change to one link has this shape: under the store's lock, in a write
 * transaction that read the link first (begin_with_link), fn decides and
 * writes; the transaction is committed or rolled back in one place, and a
 * committed delete moves the WAL back (checkpoint).  An unknown link is
 * LINK_STORE_GONE without calling fn.  On return ch->deleted says fn deleted
 * rows that are now committed. */
static enum link_store_rc
change_link(struct link_store *s, const char *id, link_change_fn fn, void *arg,
            struct change *ch, char *err, size_t errsz)
{
	struct link_store_link l;
	enum link_store_rc rv = LINK_STORE_ERROR;
	bool committed = false;
	int found;

	ch->commit = ch->deleted = false;
	if (!link_store_id_valid(id))
		return LINK_STORE_GONE;
	pthread_mutex_lock(&s->lock);
	if ((found = begin_with_link(s, id, ch->durable, &l, err, errsz)) < 0)
		goto out;
	if (found == 0) {
		rv = LINK_STORE_GONE;
		goto out;
	}
	rv = fn(s, id, &l, arg, ch, err, errsz);
	if (rv == LINK_STORE_OK || (rv != LINK_STORE_ERROR && (ch->commit || ch->deleted))) {
		if (exec_sql(s, "COMMIT", err, errsz) < 0)
			rv = LINK_STORE_ERROR;
		else
			committed = true;
	}
out:
	if (!committed) {
		rollback(s);
		ch->deleted = false;
	} else if (ch->deleted) {
		checkpoint(s);
	}
	pthread_mutex_unlock(&s->lock);
	return rv;
}

struct claim {
	int64_t now;
	struct sp_buf *ciphertext;
	uint64_t views;         /* out: the count with this view */
};

/* A live link: its message, one view counted, burnt at the last view.  A
 * dead one is deleted (GONE). */
static enum link_store_rc
claim_view(struct link_store *s, const char *id, struct link_store_link *l, void *arg,
           struct change *ch, char *err, size_t errsz)
{
	struct claim *c = arg;
	sqlite3_stmt *st;
	int rc;

	if (!link_store_link_live(l, c->now)) {
		if (delete_links(s, id, l->message_id, false, err, errsz) < 0)
			return LINK_STORE_ERROR;
		ch->deleted = true;
		return LINK_STORE_GONE;
	}
	if ((st = prepare(s, "SELECT ciphertext FROM messages WHERE id = ?", err, errsz)) == NULL)
		return LINK_STORE_ERROR;
	sqlite3_bind_text(st, 1, l->message_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		db_err(s, err, errsz, "reading a message");
		release(s, st);
		return LINK_STORE_ERROR;
	}
	if (sp_buf_append(c->ciphertext, sqlite3_column_blob(st, 0),
	                  (size_t)sqlite3_column_bytes(st, 0)) < 0) {
		sp_seterr(err, errsz, "link store: message too large for the buffer");
		release(s, st);
		return LINK_STORE_ERROR;
	}
	release(s, st);
	if (bump_counter(s, "UPDATE links SET views = views + 1 WHERE id = ?", id,
	                 "counting a view", err, errsz) < 0)
		return LINK_STORE_ERROR;
	l->views++;
	c->views = l->views;
	/* The last view: burn it now, in the same transaction. */
	if (l->max_views != 0 && l->views >= l->max_views) {
		if (delete_links(s, id, l->message_id, false, err, errsz) < 0)
			return LINK_STORE_ERROR;
		ch->deleted = true;
	}
	return LINK_STORE_OK;
}

enum link_store_rc
link_store_claim_view(struct link_store *s, const char *id, int64_t now, struct sp_buf *ciphertext,
                      uint64_t *views_out, char *err, size_t errsz)
{
	struct claim c = { .now = now, .ciphertext = ciphertext };
	enum link_store_rc rv;
	struct change ch = { .durable = true };

	if (s->pg)
		return link_store_id_valid(id) ? link_store_pg_claim_view(s->pg, id, now, ciphertext,
		                                                          views_out, err, errsz)
		                               : LINK_STORE_GONE;
	rv = change_link(s, id, claim_view, &c, &ch, err, errsz);
	if (rv == LINK_STORE_OK && views_out)
		*views_out = c.views;
	return rv;
}

/* One failed unlock counted while the link is live; a link that is (now)
 * dead is deleted. */
static enum link_store_rc
count_failure(struct link_store *s, const char *id, struct link_store_link *l, void *arg,
              struct change *ch, char *err, size_t errsz)
{
	const int64_t *now = arg;

	if (link_store_link_live(l, *now)) {
		if (bump_counter(s, "UPDATE links SET failed = failed + 1 WHERE id = ?", id,
		                 "counting a failed attempt", err, errsz) < 0)
			return LINK_STORE_ERROR;
		l->failed++;
	}
	if (!link_store_link_live(l, *now)) {
		if (delete_links(s, id, l->message_id, false, err, errsz) < 0)
			return LINK_STORE_ERROR;
		ch->deleted = true;
	}
	return LINK_STORE_OK;
}

enum link_store_rc
link_store_fail(struct link_store *s, const char *id, int64_t now, bool *destroyed,
                char *err, size_t errsz)
{
	enum link_store_rc rv;
	struct change ch = { .durable = true };

	if (destroyed)
		*destroyed = false;
	if (s->pg)
		return link_store_id_valid(id) ? link_store_pg_fail(s->pg, id, now, destroyed, err, errsz)
		                               : LINK_STORE_GONE;
	rv = change_link(s, id, count_failure, &now, &ch, err, errsz);
	if (rv == LINK_STORE_OK && destroyed)
		*destroyed = ch.deleted;
	return rv;
}

enum link_store_rc
link_store_attempt_begin(struct link_store *s, const char *id, int64_t now, uint64_t *others,
                         int64_t *ticket, char *err, size_t errsz)
{
	*others = 0;
	*ticket = 0;
	if (!link_store_id_valid(id))
		return LINK_STORE_GONE;
	if (s->pg)
		return link_store_pg_attempt_begin(s->pg, id, now, others, ticket, err, errsz);
	return LINK_STORE_OK;
}

void
link_store_attempt_end(struct link_store *s, int64_t ticket)
{
	if (s->pg && ticket > 0)
		link_store_pg_attempt_end(s->pg, ticket);
}

/* ---- link v2 ---- */

/* Pending attempts of link id: all, and (expired_before > 0) those expired. */
static int
count_pending(struct link_store *s, const char *id, int64_t now, int64_t *all, int64_t *expired,
              char *err, size_t errsz)
{
	sqlite3_stmt *st;
	int rc;

	if ((st = prepare(s, "SELECT count(*), coalesce(sum(expires <= ?2), 0) FROM pending "
	                  "WHERE link_id = ?1", err, errsz)) == NULL)
		return -1;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*all = sqlite3_column_int64(st, 0);
		*expired = sqlite3_column_int64(st, 1);
	}
	release(s, st);
	if (rc != SQLITE_ROW) {
		db_err(s, err, errsz, "counting pending attempts");
		return -1;
	}
	return 0;
}

struct evaluate {
	int64_t now;
	const unsigned char *attempt;
	struct link_store_link *out;
};

static enum link_store_rc
evaluate_attempt(struct link_store *s, const char *id, struct link_store_link *l, void *arg,
                 struct change *ch, char *err, size_t errsz)
{
	struct evaluate *e = arg;
	sqlite3_stmt *st;
	int64_t pending = 0, expired = 0;
	int rc;

	if (!link_store_link_live(l, e->now)) {
		if (delete_links(s, id, l->message_id, false, err, errsz) < 0)
			return LINK_STORE_ERROR;
		ch->deleted = true;
		return LINK_STORE_GONE;
	}
	if (count_pending(s, id, e->now, &pending, &expired, err, errsz) < 0)
		return LINK_STORE_ERROR;
	if (l->failed + (uint64_t)pending >= l->max_failed || pending >= LINK_STORE_PENDING_MAX)
		return LINK_STORE_BUSY;
	if ((st = prepare(s, "SELECT wrapped FROM links WHERE id = ?", err, errsz)) == NULL)
		return LINK_STORE_ERROR;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW || sqlite3_column_bytes(st, 0) <= 0 ||
	    sqlite3_column_bytes(st, 0) > LINK_STORE_WRAPPED_MAX) {
		sp_seterr(err, errsz, "link store %s: link %s has a damaged key blob", s->path, id);
		release(s, st);
		return LINK_STORE_ERROR;
	}
	if (e->out) {
		*e->out = *l;
		e->out->wrapped_len = (size_t)sqlite3_column_bytes(st, 0);
		e->out->wrapped = sp_xmalloc(e->out->wrapped_len);
		memcpy(e->out->wrapped, sqlite3_column_blob(st, 0), e->out->wrapped_len);
	}
	release(s, st);
	if ((st = prepare(s, "INSERT INTO pending (link_id, attempt, expires) VALUES (?, ?, ?)",
	                  err, errsz)) == NULL)
		return LINK_STORE_ERROR;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, e->attempt, LINK_STORE_ATTEMPT_BYTES, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, e->now + LINK_STORE_PENDING_TTL_S);
	rc = sqlite3_step(st);
	release(s, st);
	if (rc != SQLITE_DONE) {
		db_err(s, err, errsz, "recording an attempt");
		return LINK_STORE_ERROR;
	}
	return LINK_STORE_OK;
}

enum link_store_rc
link_store_evaluate(struct link_store *s, const char *id, int64_t now,
                    const unsigned char attempt[LINK_STORE_ATTEMPT_BYTES],
                    struct link_store_link *out, char *err, size_t errsz)
{
	struct evaluate e = { .now = now, .attempt = attempt, .out = out };
	enum link_store_rc rv;
	struct change ch = { .durable = true };

	if (out)
		memset(out, 0, sizeof *out);
	if (s->pg)
		return link_store_id_valid(id) ? link_store_pg_evaluate(s->pg, id, now, attempt, out,
		                                                        err, errsz)
		                               : LINK_STORE_GONE;
	rv = change_link(s, id, evaluate_attempt, &e, &ch, err, errsz);
	if (rv != LINK_STORE_OK && out)
		link_store_link_clear(out);
	return rv;
}

struct prove {
	int64_t now;
	const unsigned char *attempt;
	bool valid;
	struct claim claim;
	bool destroyed;         /* out: a counted failure destroyed the link */
};

static enum link_store_rc
prove_attempt(struct link_store *s, const char *id, struct link_store_link *l, void *arg,
              struct change *ch, char *err, size_t errsz)
{
	struct prove *p = arg;
	sqlite3_stmt *st;
	int64_t expires = 0;
	int rc;

	if ((st = prepare(s, "DELETE FROM pending WHERE link_id = ? AND attempt = ? "
	                  "RETURNING expires", err, errsz)) == NULL)
		return LINK_STORE_ERROR;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, p->attempt, LINK_STORE_ATTEMPT_BYTES, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		expires = sqlite3_column_int64(st, 0);
		rc = sqlite3_step(st);
	}
	release(s, st);
	if (rc != SQLITE_DONE) {
		db_err(s, err, errsz, "removing an attempt");
		return LINK_STORE_ERROR;
	}
	if (expires == 0)
		return LINK_STORE_STALE; /* rolled back: nothing changed */
	if (expires <= p->now || !p->valid) {
		/* The attempt stays counted: it moves into the settled failures. */
		if (count_failure(s, id, l, &p->now, ch, err, errsz) != LINK_STORE_OK)
			return LINK_STORE_ERROR;
		p->destroyed = ch->deleted;
		ch->commit = true; /* commit the removal whatever else happened */
		return expires <= p->now ? LINK_STORE_STALE : LINK_STORE_WRONG;
	}
	rc = claim_view(s, id, l, &p->claim, ch, err, errsz);
	if (rc == LINK_STORE_GONE)
		ch->commit = true; /* a dead link: the attempt's removal with it */
	return rc;
}

enum link_store_rc
link_store_prove(struct link_store *s, const char *id, int64_t now,
                 const unsigned char attempt[LINK_STORE_ATTEMPT_BYTES], bool valid,
                 struct sp_buf *ciphertext, uint64_t *views_out, bool *destroyed, char *err,
                 size_t errsz)
{
	struct prove p = { .now = now, .attempt = attempt, .valid = valid,
	                   .claim = { .now = now, .ciphertext = ciphertext } };
	/* A wrong proof's commit is relaxed (write_sync): the attempt it settles
	 * was counted durably when it was evaluated, and an evaluated attempt
	 * counts against max_failed_attempts until it is settled or, once
	 * expired, swept into the failures; so losing this commit to a power cut
	 * gives a guesser nothing back (docs/formats.md "Link v2"). */
	struct change ch = { .durable = valid };
	enum link_store_rc rv;

	if (destroyed)
		*destroyed = false;
	if (s->pg)
		return link_store_id_valid(id) ? link_store_pg_prove(s->pg, id, now, attempt, valid,
		                                                     ciphertext, views_out, destroyed,
		                                                     err, errsz)
		                               : LINK_STORE_GONE;
	rv = change_link(s, id, prove_attempt, &p, &ch, err, errsz);
	if (rv == LINK_STORE_OK && views_out)
		*views_out = p.claim.views;
	if (destroyed && rv != LINK_STORE_ERROR)
		*destroyed = p.destroyed;
	return rv;
}

enum link_store_rc
link_store_pending_count(struct link_store *s, const char *id, unsigned *n, char *err,
                         size_t errsz)
{
	int64_t all = 0, expired = 0;
	int rc;

	*n = 0;
	if (s->pg)
		return link_store_pg_pending_count(s->pg, id, n, err, errsz);
	pthread_mutex_lock(&s->lock);
	rc = count_pending(s, id, 0, &all, &expired, err, errsz);
	pthread_mutex_unlock(&s->lock);
	if (rc < 0)
		return LINK_STORE_ERROR;
	*n = (unsigned)all;
	return LINK_STORE_OK;
}

static enum link_store_rc
revoke_link(struct link_store *s, const char *id, struct link_store_link *l, void *arg,
            struct change *ch, char *err, size_t errsz)
{
	const bool *whole_message = arg;

	if (delete_links(s, id, l->message_id, *whole_message, err, errsz) < 0)
		return LINK_STORE_ERROR;
	ch->deleted = true;
	return LINK_STORE_OK;
}

enum link_store_rc
link_store_revoke(struct link_store *s, const char *id, bool whole_message, char *err, size_t errsz)
{
	struct change ch = { .durable = true };

	if (s->pg)
		return link_store_id_valid(id) ? link_store_pg_revoke(s->pg, id, whole_message, err,
		                                                      errsz)
		                               : LINK_STORE_GONE;
	return change_link(s, id, revoke_link, &whole_message, &ch, err, errsz);
}

enum link_store_rc
link_store_sweep(struct link_store *s, int64_t now, unsigned *n_links, unsigned *n_messages,
                 char *err, size_t errsz)
{
	sqlite3_stmt *st = NULL;
	enum link_store_rc rv = LINK_STORE_ERROR;
	int dl = 0, dm = 0;

	if (s->pg)
		return link_store_pg_sweep(s->pg, now, n_links, n_messages, err, errsz);
	pthread_mutex_lock(&s->lock);
	if (begin_write(s, true, err, errsz) < 0)
		goto out;
	if ((st = prepare(s, "DELETE FROM reply_caps WHERE expires <= ?1", err, errsz)) == NULL)
		goto out;
	sqlite3_bind_int64(st, 1, now);
	if (sqlite3_step(st) != SQLITE_DONE) {
		db_err(s, err, errsz, "sweeping reply capabilities");
		goto out;
	}
	release(s, st);
	/* v2 attempts never proven stay counted: they become settled failures. */
	if ((st = prepare(s, "UPDATE links SET failed = min(max_failed, failed + (SELECT count(*) "
	                  "FROM pending WHERE pending.link_id = links.id AND pending.expires <= ?1)) "
	                  "WHERE id IN (SELECT link_id FROM pending WHERE expires <= ?1)",
	                  err, errsz)) == NULL)
		goto out;
	sqlite3_bind_int64(st, 1, now);
	if (sqlite3_step(st) != SQLITE_DONE) {
		db_err(s, err, errsz, "counting expired attempts");
		goto out;
	}
	release(s, st);
	if ((st = prepare(s, "DELETE FROM pending WHERE expires <= ?1", err, errsz)) == NULL)
		goto out;
	sqlite3_bind_int64(st, 1, now);
	if (sqlite3_step(st) != SQLITE_DONE) {
		db_err(s, err, errsz, "sweeping attempts");
		goto out;
	}
	release(s, st);
	if ((st = prepare(s, "DELETE FROM links WHERE NOT (" LIVE_SQL ")", err, errsz)) == NULL)
		goto out;
	sqlite3_bind_int64(st, 1, now);
	if (sqlite3_step(st) != SQLITE_DONE) {
		db_err(s, err, errsz, "sweeping links");
		goto out;
	}
	dl = sqlite3_changes(s->db);
	release(s, st);
	if ((st = prepare(s, "DELETE FROM messages WHERE NOT EXISTS "
	                  "(SELECT 1 FROM links WHERE links.message_id = messages.id)",
	                  err, errsz)) == NULL)
		goto out;
	if (sqlite3_step(st) != SQLITE_DONE) {
		db_err(s, err, errsz, "sweeping messages");
		goto out;
	}
	dm = sqlite3_changes(s->db);
	if (exec_sql(s, "COMMIT", err, errsz) < 0)
		goto out;
	if (dl || dm)
		checkpoint(s);
	if (n_links)
		*n_links = (unsigned)dl;
	if (n_messages)
		*n_messages = (unsigned)dm;
	rv = LINK_STORE_OK;
out:
	release(s, st);
	if (rv != LINK_STORE_OK)
		rollback(s);
	pthread_mutex_unlock(&s->lock);
	return rv;
}

enum link_store_rc
link_store_list(struct link_store *s, struct link_store_link **out, size_t *n, char *err,
                size_t errsz)
{
	struct link_store_link *v = NULL;
	size_t len = 0, cap = 0;
	sqlite3_stmt *st = NULL;
	enum link_store_rc rv = LINK_STORE_ERROR;
	int rc;

	*out = NULL;
	*n = 0;
	if (s->pg)
		return link_store_pg_list(s->pg, out, n, err, errsz);
	pthread_mutex_lock(&s->lock);
	if ((st = prepare(s, "SELECT " LINK_COLUMNS " FROM links ORDER BY created DESC, id",
	                  err, errsz)) == NULL)
		goto out;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (len == cap) {
			cap = cap ? cap * 2 : 16;
			v = realloc(v, cap * sizeof *v);
			if (v == NULL)
				abort();
		}
		read_link_row(st, &v[len++]);
	}
	if (rc != SQLITE_DONE) {
		db_err(s, err, errsz, "listing links");
		goto out;
	}
	*out = v;
	*n = len;
	v = NULL;
	rv = LINK_STORE_OK;
out:
	free(v);
	release(s, st);
	pthread_mutex_unlock(&s->lock);
	return rv;
}

void
link_store_list_free(struct link_store_link *v, size_t n)
{
	(void)n;
	free(v);
}

enum link_store_rc
link_store_count(struct link_store *s, unsigned *n_links, unsigned *n_messages, char *err,
                 size_t errsz)
{
	sqlite3_stmt *st = NULL;
	enum link_store_rc rv = LINK_STORE_ERROR;

	if (s->pg)
		return link_store_pg_count(s->pg, n_links, n_messages, err, errsz);
	pthread_mutex_lock(&s->lock);
	if ((st = prepare(s, "SELECT (SELECT count(*) FROM links), (SELECT count(*) FROM messages)",
	                  err, errsz)) == NULL)
		goto out;
	if (sqlite3_step(st) != SQLITE_ROW) {
		db_err(s, err, errsz, "counting");
		goto out;
	}
	if (n_links)
		*n_links = (unsigned)sqlite3_column_int(st, 0);
	if (n_messages)
		*n_messages = (unsigned)sqlite3_column_int(st, 1);
	rv = LINK_STORE_OK;
out:
	release(s, st);
	pthread_mutex_unlock(&s->lock);
	return rv;
}

/* ---- secure reply (link_store.h) ---- */

enum link_store_rc
link_store_reply_cap_put(struct link_store *s, const char *link_id, const char *sender,
                         int64_t expires, const unsigned char cap[LINK_STORE_REPLY_CAP_BYTES],
                         char *err, size_t errsz)
{
	sqlite3_stmt *st;
	enum link_store_rc rv = LINK_STORE_ERROR;

	if (s->pg)
		return link_store_pg_reply_cap_put(s->pg, link_id, sender, expires, cap, err, errsz);
	pthread_mutex_lock(&s->lock);
	if (write_sync(s, true, err, errsz) < 0 ||
	    (st = prepare(s, "INSERT INTO reply_caps (cap, link_id, sender, expires) "
	                  "VALUES (?, ?, ?, ?)", err, errsz)) == NULL)
		goto out;
	sqlite3_bind_blob(st, 1, cap, LINK_STORE_REPLY_CAP_BYTES, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, link_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, sender, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, expires);
	if (sqlite3_step(st) != SQLITE_DONE)
		db_err(s, err, errsz, "storing a reply capability");
	else
		rv = LINK_STORE_OK;
	release(s, st);
out:
	pthread_mutex_unlock(&s->lock);
	return rv;
}

enum link_store_rc
link_store_reply_cap_check(struct link_store *s, const unsigned char cap[LINK_STORE_REPLY_CAP_BYTES],
                           const char *link_id, int64_t now, char *err, size_t errsz)
{
	sqlite3_stmt *st;
	enum link_store_rc rv = LINK_STORE_ERROR;
	int rc;

	if (s->pg)
		return link_store_pg_reply_cap_check(s->pg, cap, link_id, now, err, errsz);
	pthread_mutex_lock(&s->lock);
	if ((st = prepare(s, "SELECT 1 FROM reply_caps WHERE cap = ? AND link_id = ? AND expires > ?",
	                  err, errsz)) == NULL)
		goto out;
	sqlite3_bind_blob(st, 1, cap, LINK_STORE_REPLY_CAP_BYTES, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, link_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, now);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		rv = LINK_STORE_OK;
	else if (rc == SQLITE_DONE)
		rv = LINK_STORE_GONE;
	else
		db_err(s, err, errsz, "reading a reply capability");
	release(s, st);
out:
	pthread_mutex_unlock(&s->lock);
	return rv;
}

enum link_store_rc
link_store_reply_put(struct link_store *s, const unsigned char cap[LINK_STORE_REPLY_CAP_BYTES],
                     const char *link_id, int64_t now, const struct link_store_reply_limits *lim,
                     const char *rcpt, const char *in_reply_to, const void *body, size_t len,
                     char *err, size_t errsz)
{
	sqlite3_stmt *st = NULL;
	enum link_store_rc rv = LINK_STORE_ERROR;
	char sender[LINK_STORE_SENDER_MAX] = "";
	int64_t replies, last;
	int rc;

	if (s->pg)
		return link_store_pg_reply_put(s->pg, cap, link_id, now, lim, rcpt, in_reply_to, body,
		                               len, err, errsz);
	pthread_mutex_lock(&s->lock);
	if (begin_write(s, true, err, errsz) < 0)
		goto out;
	if ((st = prepare(s, "SELECT sender, replies, last FROM reply_caps "
	                  "WHERE cap = ? AND expires > ? AND link_id = ?", err, errsz)) == NULL)
		goto out;
	sqlite3_bind_blob(st, 1, cap, LINK_STORE_REPLY_CAP_BYTES, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now);
	sqlite3_bind_text(st, 3, link_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		rv = LINK_STORE_GONE;
		goto out;
	}
	if (rc != SQLITE_ROW) {
		db_err(s, err, errsz, "reading a reply capability");
		goto out;
	}
	sp_strlcpy(sender, (const char *)sqlite3_column_text(st, 0), sizeof sender);
	replies = sqlite3_column_int64(st, 1);
	last = sqlite3_column_int64(st, 2);
	release(s, st);
	st = NULL;
	if ((uint64_t)replies >= lim->max_count) {
		rv = LINK_STORE_FULL;
		goto out;
	}
	if (replies > 0 && now - last < lim->min_interval_s) {
		rv = LINK_STORE_BUSY;
		goto out;
	}
	if ((st = prepare(s, "UPDATE reply_caps SET replies = replies + 1, last = ? WHERE cap = ?",
	                  err, errsz)) == NULL)
		goto out;
	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_blob(st, 2, cap, LINK_STORE_REPLY_CAP_BYTES, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		db_err(s, err, errsz, "counting a reply");
		goto out;
	}
	release(s, st);
	if ((st = prepare(s, "INSERT INTO replies (link_id, created, sender, rcpt, in_reply_to, body) "
	                  "VALUES (?, ?, ?, ?, ?, ?)", err, errsz)) == NULL)
		goto out;
	sqlite3_bind_text(st, 1, link_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now);
	sqlite3_bind_text(st, 3, sender, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, rcpt, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, in_reply_to, -1, SQLITE_STATIC);
	sqlite3_bind_blob64(st, 6, body, len, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		db_err(s, err, errsz, "storing a reply");
		goto out;
	}
	release(s, st);
	st = NULL;
	if (exec_sql(s, "COMMIT", err, errsz) < 0)
		goto out;
	rv = LINK_STORE_OK;
out:
	release(s, st);
	if (rv != LINK_STORE_OK)
		rollback(s);
	pthread_mutex_unlock(&s->lock);
	return rv;
}

enum link_store_rc
link_store_reply_take(struct link_store *s, size_t max, struct link_store_reply **out, size_t *n,
                      char *err, size_t errsz)
{
	struct link_store_reply *v;
	sqlite3_stmt *st;
	enum link_store_rc rv = LINK_STORE_ERROR;
	size_t len = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if (s->pg)
		return link_store_pg_reply_take(s->pg, max, out, n, err, errsz);
	v = sp_xcalloc(max ? max : 1, sizeof *v);
	pthread_mutex_lock(&s->lock);
	if ((st = prepare(s, "SELECT id, link_id, created, sender, rcpt, in_reply_to, body "
	                  "FROM replies ORDER BY id LIMIT ?", err, errsz)) == NULL)
		goto out;
	sqlite3_bind_int64(st, 1, (int64_t)max);
	while (len < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct link_store_reply *r = &v[len++];
		r->id = sqlite3_column_int64(st, 0);
		sp_strlcpy(r->link_id, (const char *)sqlite3_column_text(st, 1), sizeof r->link_id);
		r->created = sqlite3_column_int64(st, 2);
		sp_strlcpy(r->sender, (const char *)sqlite3_column_text(st, 3), sizeof r->sender);
		sp_strlcpy(r->rcpt, (const char *)sqlite3_column_text(st, 4), sizeof r->rcpt);
		sp_strlcpy(r->in_reply_to, (const char *)sqlite3_column_text(st, 5),
		           sizeof r->in_reply_to);
		r->body_len = (size_t)sqlite3_column_bytes(st, 6);
		r->body = sp_xmalloc(r->body_len ? r->body_len : 1);
		memcpy(r->body, sqlite3_column_blob(st, 6), r->body_len);
	}
	release(s, st);
	*out = v;
	*n = len;
	v = NULL;
	rv = LINK_STORE_OK;
out:
	pthread_mutex_unlock(&s->lock);
	if (v)
		free(v);
	return rv;
}

enum link_store_rc
link_store_reply_delete(struct link_store *s, int64_t id, char *err, size_t errsz)
{
	sqlite3_stmt *st;
	enum link_store_rc rv = LINK_STORE_ERROR;

	if (s->pg)
		return link_store_pg_reply_delete(s->pg, id, err, errsz);
	pthread_mutex_lock(&s->lock);
	if (write_sync(s, true, err, errsz) < 0 ||
	    (st = prepare(s, "DELETE FROM replies WHERE id = ?", err, errsz)) == NULL)
		goto out;
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) != SQLITE_DONE)
		db_err(s, err, errsz, "deleting a reply");
	else
		rv = sqlite3_changes(s->db) > 0 ? LINK_STORE_OK : LINK_STORE_GONE;
	release(s, st);
	if (rv == LINK_STORE_OK)
		checkpoint(s);
out:
	pthread_mutex_unlock(&s->lock);
	return rv;
}

void
link_store_reply_free(struct link_store_reply *v, size_t n)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; i < n; i++)
		free(v[i].body);
	free(v);
}

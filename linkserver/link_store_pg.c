/* link_store_pg.c - the PostgreSQL link store (see link_store_pg.h). */
#include "link_store_pg.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>
#include <sodium.h>

#include "log.h"

/* Advisory lock keys ("sealpost" in ASCII, and the next one): the migration
 * and the sweep, each on one connection of one node at a time. */
#define LOCK_MIGRATE "8315159405380203380"
#define LOCK_SWEEP "8315159405380203381"

struct pg_slot {
	PGconn *conn; /* NULL until first needed */
	bool busy;
};

struct link_store_pg {
	char *url;   /* with its password: never logged */
	char *label; /* link_store_label(url) */
	pthread_mutex_t lock;
	pthread_cond_t freed;
	struct pg_slot slots[LINK_STORE_PG_POOL_MAX];
};

/* A live link: everything else is swept.  `$1` is now. */
#define LIVE_SQL "NOT revoked AND expires > $1 AND (max_views = 0 OR views < max_views) " \
                 "AND failed < max_failed"
#define LINK_COLUMNS "id, message_id, created, expires, max_views, views, max_failed, " \
                     "failed, revoked, sender, hint"

/* Schema migrations: entry i brings the database from version i to i + 1
 * (table sealpost_schema).  Append only; never edit a step that has shipped.
 * The same data as the SQLite schema (link_store.c). */
static const char *const migrations[] = {
	/* 0 -> 1 */
	"CREATE TABLE messages ("
	"  id text PRIMARY KEY,"               /* 128 random bits, hex */
	"  created bigint NOT NULL,"
	"  ciphertext bytea NOT NULL"          /* sp_link_seal_message() output */
	");"
	"ALTER TABLE messages ALTER COLUMN ciphertext SET STORAGE EXTERNAL;" /* incompressible */
	"CREATE TABLE links ("
	"  id text PRIMARY KEY,"               /* link id, hex; the secret half is never here */
	"  message_id text NOT NULL REFERENCES messages(id) ON DELETE CASCADE,"
	"  wrapped bytea NOT NULL,"            /* sp_link_wrap_key() output */
	"  created bigint NOT NULL,"
	"  expires bigint NOT NULL,"
	"  max_views bigint NOT NULL CHECK (max_views >= 0),"
	"  views bigint NOT NULL DEFAULT 0,"
	"  max_failed bigint NOT NULL CHECK (max_failed >= 1),"
	"  failed bigint NOT NULL DEFAULT 0,"
	"  revoked boolean NOT NULL DEFAULT false"
	");"
	"CREATE INDEX links_message ON links(message_id);"
	"CREATE INDEX links_expires ON links(expires);"
	/* Unlock attempts under way, on any node (link_store_attempt_begin). */
	"CREATE TABLE attempts ("
	"  ticket bigserial PRIMARY KEY,"
	"  link_id text NOT NULL REFERENCES links(id) ON DELETE CASCADE,"
	"  deadline bigint NOT NULL"           /* counts until then, unless ended */
	");"
	"CREATE INDEX attempts_link ON attempts(link_id);",
	/* 1 -> 2: link v2 (link_store.c has the same step). */
	"ALTER TABLE links ADD COLUMN sender text NOT NULL DEFAULT '';"
	"ALTER TABLE links ADD COLUMN hint text NOT NULL DEFAULT '';"
	"CREATE TABLE pending ("
	"  link_id text NOT NULL REFERENCES links(id) ON DELETE CASCADE,"
	"  attempt bytea NOT NULL,"            /* 16 random bytes the viewer drew */
	"  expires bigint NOT NULL,"
	"  PRIMARY KEY (link_id, attempt)"
	");"
	"CREATE INDEX pending_expires ON pending(expires);",
	/* 2 -> 3: secure reply (link_store.c has the same step). */
	"CREATE TABLE reply_caps ("
	"  cap bytea PRIMARY KEY,"             /* SHA-256 of the 32-byte token */
	"  link_id text NOT NULL,"
	"  sender text NOT NULL,"
	"  expires bigint NOT NULL,"
	"  replies bigint NOT NULL DEFAULT 0,"
	"  last bigint NOT NULL DEFAULT 0"
	");"
	"CREATE INDEX reply_caps_expires ON reply_caps(expires);"
	"CREATE TABLE replies ("
	"  id bigserial PRIMARY KEY,"
	"  link_id text NOT NULL,"
	"  created bigint NOT NULL,"
	"  sender text NOT NULL,"
	"  rcpt text NOT NULL,"
	"  in_reply_to text NOT NULL,"
	"  body bytea NOT NULL"
	");"
	"ALTER TABLE replies ALTER COLUMN body SET STORAGE EXTERNAL;",
};

_Static_assert(SP_ARRAY_LEN(migrations) == LINK_STORE_SCHEMA_VERSION,
               "one migration per schema version");

/* ---- errors ---- */

/* The first line of a libpq message, without its newline. */
static void
first_line(char *dst, size_t dstsz, const char *src)
{
	size_t n;

	sp_strlcpy(dst, src && *src ? src : "unknown error", dstsz);
	n = strcspn(dst, "\n");
	dst[n] = '\0';
}

static void
conn_err(struct link_store_pg *p, PGconn *c, char *err, size_t errsz, const char *what)
{
	char line[SP_ERRLEN];

	first_line(line, sizeof line, c ? PQerrorMessage(c) : "out of memory");
	sp_seterr(err, errsz, "link store %s: %s: %s", p->label, what, line);
}

/* A statement's error: the primary message only.  The DETAIL of a constraint
 * violation quotes the row, and a row holds ciphertext and wrapped keys. */
static void
res_err(struct link_store_pg *p, PGconn *c, PGresult *r, char *err, size_t errsz,
        const char *what)
{
	const char *primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	char line[SP_ERRLEN];

	if (primary == NULL) {
		conn_err(p, c, err, errsz, what);
		return;
	}
	first_line(line, sizeof line, primary);
	sp_seterr(err, errsz, "link store %s: %s: %s", p->label, what, line);
}

/* ---- connections ---- */

/* Per-session settings: every statement and every open transaction is bounded. */
static int
session_setup(struct link_store_pg *p, PGconn *c, char *err, size_t errsz)
{
	char sql[256];
	PGresult *r;
	int ok;

	snprintf(sql, sizeof sql,
	         "SET statement_timeout = %d; SET idle_in_transaction_session_timeout = %d; "
	         "SET client_min_messages = warning",
	         LINK_STORE_PG_STATEMENT_TIMEOUT_MS, LINK_STORE_PG_IDLE_TXN_TIMEOUT_MS);
	r = PQexec(c, sql);
	ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok)
		res_err(p, c, r, err, errsz, "session setup");
	PQclear(r);
	return ok ? 0 : -1;
}

static PGconn *
connect_one(struct link_store_pg *p, char *err, size_t errsz)
{
	char ct[16], tcp[16];
	/* Defaults first: the URL's own values (dbname, expanded) override them. */
	const char *keys[] = { "connect_timeout", "tcp_user_timeout", "application_name",
	                       "dbname", NULL };
	const char *vals[] = { ct, tcp, "sealpost", p->url, NULL };
	PGconn *c;

	snprintf(ct, sizeof ct, "%d", LINK_STORE_PG_CONNECT_TIMEOUT_S);
	snprintf(tcp, sizeof tcp, "%d", LINK_STORE_PG_TCP_TIMEOUT_MS);
	c = PQconnectdbParams(keys, vals, 1);
	if (c == NULL || PQstatus(c) != CONNECTION_OK) {
		conn_err(p, c, err, errsz, "cannot connect");
		PQfinish(c);
		return NULL;
	}
	if (session_setup(p, c, err, errsz) < 0) {
		PQfinish(c);
		return NULL;
	}
	return c;
}

/* Make slot's connection usable: open it, or reset a broken one. */
static int
revive(struct link_store_pg *p, struct pg_slot *sl, char *err, size_t errsz)
{
	if (sl->conn == NULL) {
		sl->conn = connect_one(p, err, errsz);
		return sl->conn ? 0 : -1;
	}
	if (PQstatus(sl->conn) == CONNECTION_OK)
		return 0;
	PQreset(sl->conn);
	if (PQstatus(sl->conn) != CONNECTION_OK) {
		conn_err(p, sl->conn, err, errsz, "cannot reconnect");
		return -1;
	}
	sp_log_info("link store %s: reconnected", p->label);
	return session_setup(p, sl->conn, err, errsz);
}

/* Take a pooled connection (waiting for one at most LINK_STORE_PG_POOL_WAIT_MS). */
static struct pg_slot *
acquire(struct link_store_pg *p, char *err, size_t errsz)
{
	struct pg_slot *sl = NULL;
	struct timespec until;
	size_t i;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += LINK_STORE_PG_POOL_WAIT_MS / 1000;
	until.tv_nsec += (long)(LINK_STORE_PG_POOL_WAIT_MS % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&p->lock);
	for (;;) {
		/* An open connection first, then a slot that has none yet. */
		for (i = 0; i < LINK_STORE_PG_POOL_MAX && sl == NULL; i++)
			if (!p->slots[i].busy && p->slots[i].conn)
				sl = &p->slots[i];
		for (i = 0; i < LINK_STORE_PG_POOL_MAX && sl == NULL; i++)
			if (!p->slots[i].busy)
				sl = &p->slots[i];
		if (sl)
			break;
		if (pthread_cond_timedwait(&p->freed, &p->lock, &until) == ETIMEDOUT) {
			pthread_mutex_unlock(&p->lock);
			sp_seterr(err, errsz, "link store %s: all %d connections busy for %d ms",
			          p->label, LINK_STORE_PG_POOL_MAX, LINK_STORE_PG_POOL_WAIT_MS);
			return NULL;
		}
	}
	sl->busy = true;
	pthread_mutex_unlock(&p->lock);
	if (revive(p, sl, err, errsz) < 0) {
		pthread_mutex_lock(&p->lock);
		sl->busy = false;
		pthread_cond_signal(&p->freed);
		pthread_mutex_unlock(&p->lock);
		return NULL;
	}
	return sl;
}

static void
release(struct link_store_pg *p, struct pg_slot *sl)
{
	if (sl == NULL)
		return;
	/* Never hand on a connection inside a transaction. */
	if (PQstatus(sl->conn) == CONNECTION_OK && PQtransactionStatus(sl->conn) != PQTRANS_IDLE)
		PQclear(PQexec(sl->conn, "ROLLBACK"));
	pthread_mutex_lock(&p->lock);
	sl->busy = false;
	pthread_cond_signal(&p->freed);
	pthread_mutex_unlock(&p->lock);
}

/* ---- statements ---- */

/* Run one statement with text parameters (a NULL `lens` entry set means all
 * text; binary[i] marks a bytea given as raw bytes).  Returns the result when
 * its status is `want`, else NULL with err set.  `retry`: the statement
 * changes nothing by itself (a read, or BEGIN), so when the connection turns
 * out to be broken it is reset and the statement run once more. */
static PGresult *
run(struct link_store_pg *p, struct pg_slot *sl, const char *sql, int n,
    const char *const *vals, const int *lens, const int *fmts, int result_binary,
    ExecStatusType want, bool retry, const char *what, char *err, size_t errsz)
{
	PGresult *r;
	int attempt;

	for (attempt = 0; attempt < 2; attempt++) {
		r = PQexecParams(sl->conn, sql, n, NULL, vals, lens, fmts, result_binary);
		if (PQresultStatus(r) == want)
			return r;
		res_err(p, sl->conn, r, err, errsz, what);
		PQclear(r);
		if (!retry || attempt > 0 || PQstatus(sl->conn) == CONNECTION_OK)
			break;
		sp_log_warn("%s: retrying on a new connection", err);
		if (revive(p, sl, err, errsz) < 0)
			break;
	}
	return NULL;
}

static int
run_cmd(struct link_store_pg *p, struct pg_slot *sl, const char *sql, int n,
        const char *const *vals, bool retry, const char *what, char *err, size_t errsz)
{
	PGresult *r = run(p, sl, sql, n, vals, NULL, NULL, 0, PGRES_COMMAND_OK, retry, what,
	                  err, errsz);

	PQclear(r);
	return r ? 0 : -1;
}

static int
begin(struct link_store_pg *p, struct pg_slot *sl, char *err, size_t errsz)
{
	return run_cmd(p, sl, "BEGIN", 0, NULL, true, "BEGIN", err, errsz);
}

static int
commit(struct link_store_pg *p, struct pg_slot *sl, char *err, size_t errsz)
{
	return run_cmd(p, sl, "COMMIT", 0, NULL, false, "COMMIT", err, errsz);
}

static int64_t
col_i64(PGresult *r, int row, int col)
{
	return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static void
read_link_row(PGresult *r, int row, struct link_store_link *l)
{
	memset(l, 0, sizeof *l);
	sp_strlcpy(l->id, PQgetvalue(r, row, 0), sizeof l->id);
	sp_strlcpy(l->message_id, PQgetvalue(r, row, 1), sizeof l->message_id);
	l->created = col_i64(r, row, 2);
	l->expires = col_i64(r, row, 3);
	l->max_views = (uint64_t)col_i64(r, row, 4);
	l->views = (uint64_t)col_i64(r, row, 5);
	l->max_failed = (uint64_t)col_i64(r, row, 6);
	l->failed = (uint64_t)col_i64(r, row, 7);
	l->revoked = PQgetvalue(r, row, 8)[0] == 't';
	sp_strlcpy(l->sender, PQgetvalue(r, row, 9), sizeof l->sender);
	sp_strlcpy(l->hint, PQgetvalue(r, row, 10), sizeof l->hint);
}

/* ---- open / close / migrate ---- */

static int
migrate(struct link_store_pg *p, struct pg_slot *sl, char *err, size_t errsz)
{
	PGresult *r = NULL;
	int version = 0, rv = -1;
	size_t i;

	/* One migrator at a time across every node (the lock ends with the
	 * transaction); the version is read under it. */
	if (begin(p, sl, err, errsz) < 0)
		return -1;
	if ((r = run(p, sl, "SELECT pg_advisory_xact_lock(" LOCK_MIGRATE ")", 0, NULL, NULL, NULL,
	             0, PGRES_TUPLES_OK, false, "locking for migration", err, errsz)) == NULL)
		goto out;
	PQclear(r);
	/* Only a new database needs CREATE: a user with no more than SELECT,
	 * INSERT, UPDATE and DELETE on the tables opens a migrated one. */
	if ((r = run(p, sl, "SELECT to_regclass('sealpost_schema') IS NULL", 0, NULL, NULL, NULL, 0,
	             PGRES_TUPLES_OK, false, "looking for the schema table", err, errsz)) == NULL)
		goto out;
	if (PQgetvalue(r, 0, 0)[0] == 't' &&
	    run_cmd(p, sl, "CREATE TABLE sealpost_schema (version integer NOT NULL)", 0, NULL, false,
	            "creating the schema table", err, errsz) < 0) {
		PQclear(r);
		goto out;
	}
	PQclear(r);
	if ((r = run(p, sl, "SELECT max(version) FROM sealpost_schema", 0, NULL, NULL, NULL, 0,
	             PGRES_TUPLES_OK, false, "reading the schema version", err, errsz)) == NULL)
		goto out;
	if (PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
		version = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	if (version > LINK_STORE_SCHEMA_VERSION) {
		sp_seterr(err, errsz, "link store %s: schema version %d is newer than this "
		          "sealpost understands (%d)", p->label, version, LINK_STORE_SCHEMA_VERSION);
		goto out;
	}
	for (i = (size_t)version; i < SP_ARRAY_LEN(migrations); i++) {
		/* Several statements: the simple protocol (no parameters). */
		PGresult *m = PQexec(sl->conn, migrations[i]);
		bool ok = PQresultStatus(m) == PGRES_COMMAND_OK;
		if (!ok)
			res_err(p, sl->conn, m, err, errsz, "migrating the schema");
		PQclear(m);
		if (!ok)
			goto out;
	}
	if ((size_t)version < SP_ARRAY_LEN(migrations)) {
		char v[16];
		const char *vals[] = { v };
		snprintf(v, sizeof v, "%d", LINK_STORE_SCHEMA_VERSION);
		if (run_cmd(p, sl, "DELETE FROM sealpost_schema", 0, NULL, false,
		            "writing the schema version", err, errsz) < 0 ||
		    run_cmd(p, sl, "INSERT INTO sealpost_schema (version) VALUES ($1)", 1, vals, false,
		            "writing the schema version", err, errsz) < 0)
			goto out;
	}
	if (commit(p, sl, err, errsz) < 0)
		goto out;
	if (version < LINK_STORE_SCHEMA_VERSION)
		sp_log_info("link store %s: schema migrated from version %d to %d", p->label, version,
		            LINK_STORE_SCHEMA_VERSION);
	rv = 0;
out:
	return rv; /* release() rolls back an open transaction */
}

enum link_store_rc
link_store_pg_open(const char *url, struct link_store_pg **out, char *err, size_t errsz)
{
	struct link_store_pg *p;
	struct pg_slot *sl;
	int rc;

	*out = NULL;
	p = sp_xcalloc(1, sizeof *p);
	p->url = sp_xstrdup(url);
	p->label = link_store_label(url);
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->freed, NULL);
	/* Connect now: a wrong URL or password is an error at start, not at the
	 * first unlock. */
	if ((sl = acquire(p, err, errsz)) == NULL) {
		link_store_pg_close(p);
		return LINK_STORE_ERROR;
	}
	rc = migrate(p, sl, err, errsz);
	release(p, sl);
	if (rc < 0) {
		link_store_pg_close(p);
		return LINK_STORE_ERROR;
	}
	*out = p;
	return LINK_STORE_OK;
}

void
link_store_pg_close(struct link_store_pg *p)
{
	size_t i;

	if (p == NULL)
		return;
	for (i = 0; i < LINK_STORE_PG_POOL_MAX; i++)
		if (p->slots[i].conn)
			PQfinish(p->slots[i].conn);
	pthread_cond_destroy(&p->freed);
	pthread_mutex_destroy(&p->lock);
	sp_free_secret(p->url);
	free(p->label);
	free(p);
}

/* ---- put ---- */

enum link_store_rc
link_store_pg_put(struct link_store_pg *p, const struct link_store_new_msg *m,
                  char msg_id[LINK_STORE_MSGID_HEXLEN + 1], char *err, size_t errsz)
{
	enum link_store_rc rv = LINK_STORE_ERROR;
	char id[LINK_STORE_MSGID_HEXLEN + 1], created[24], expires[24], mv[24], mf[24];
	struct pg_slot *sl;
	PGresult *r;
	size_t i;

	if (m->ciphertext_len > INT32_MAX) {
		sp_seterr(err, errsz, "link store: message ciphertext too large");
		return LINK_STORE_ERROR;
	}
	sp_random_id(id);
	snprintf(created, sizeof created, "%" PRId64, m->created);
	snprintf(expires, sizeof expires, "%" PRId64, m->expires);
	snprintf(mv, sizeof mv, "%" PRIu64, m->max_views);
	snprintf(mf, sizeof mf, "%" PRIu64, m->max_failed);
	if ((sl = acquire(p, err, errsz)) == NULL)
		return LINK_STORE_ERROR;
	if (begin(p, sl, err, errsz) < 0)
		goto out;
	{
		const char *vals[] = { id, created, m->ciphertext };
		const int lens[] = { 0, 0, (int)m->ciphertext_len };
		const int fmts[] = { 0, 0, 1 };
		r = run(p, sl, "INSERT INTO messages (id, created, ciphertext) VALUES ($1, $2, $3)",
		        3, vals, lens, fmts, 0, PGRES_COMMAND_OK, false, "storing the message", err,
		        errsz);
		if (r == NULL)
			goto out;
		PQclear(r);
	}
	for (i = 0; i < m->n_links; i++) {
		const char *vals[] = { m->links[i].id, id, m->links[i].wrapped, created, expires, mv, mf,
		                       m->sender ? m->sender : "", m->hint ? m->hint : "" };
		const int lens[] = { 0, 0, (int)m->links[i].wrapped_len, 0, 0, 0, 0, 0, 0 };
		const int fmts[] = { 0, 0, 1, 0, 0, 0, 0, 0, 0 };
		const char *state;

		r = PQexecParams(sl->conn, "INSERT INTO links (id, message_id, wrapped, created, "
		                 "expires, max_views, max_failed, sender, hint) "
		                 "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
		                 9, NULL, vals, lens, fmts, 0);
		if (PQresultStatus(r) == PGRES_COMMAND_OK) {
			PQclear(r);
			continue;
		}
		state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
		if (state && strcmp(state, "23505") == 0) { /* unique_violation */
			sp_seterr(err, errsz, "link store: link id %s already exists", m->links[i].id);
			rv = LINK_STORE_EXISTS;
		} else {
			res_err(p, sl->conn, r, err, errsz, "storing a link");
		}
		PQclear(r);
		goto out;
	}
	if (commit(p, sl, err, errsz) < 0)
		goto out;
	if (msg_id)
		memcpy(msg_id, id, sizeof id);
	rv = LINK_STORE_OK;
out:
	release(p, sl);
	return rv;
}

/* ---- changes to one link ---- */

/* Inside a transaction: delete links (one, or all of a message) and the
 * message when no link remains.  The caller holds the message's row lock. */
static int
delete_links(struct link_store_pg *p, struct pg_slot *sl, const char *id, const char *message_id,
             bool whole_message, char *err, size_t errsz)
{
	const char *one[] = { whole_message ? message_id : id };
	const char *mid[] = { message_id };

	if (run_cmd(p, sl, whole_message ? "DELETE FROM links WHERE message_id = $1"
	                                 : "DELETE FROM links WHERE id = $1",
	            1, one, false, "deleting a link", err, errsz) < 0)
		return -1;
	return run_cmd(p, sl, "DELETE FROM messages WHERE id = $1 AND NOT EXISTS "
	               "(SELECT 1 FROM links WHERE message_id = $1)", 1, mid, false,
	               "deleting a message", err, errsz);
}

typedef enum link_store_rc (*pg_change_fn)(struct link_store_pg *p, struct pg_slot *sl,
                                           const char *id, struct link_store_link *l, void *arg,
                                           bool *deleted, char *err, size_t errsz);

/* Every change to one link has this shape (the PostgreSQL form of
 * link_store.c's change_link): in one transaction, lock the link's message
 * row, then the link row, read the link under those locks, let fn decide and
 * write, and commit (OK, or GONE with *deleted) or roll back.  The message
 * lock comes first in every change, so changes to the links of one message -
 * from any connection of any node - run one after the other and never
 * deadlock; each sees the state the one before it committed. */
static enum link_store_rc
change_link(struct link_store_pg *p, const char *id, pg_change_fn fn, void *arg, bool *deleted,
            char *err, size_t errsz)
{
	const char *vid[] = { id };
	char mid[LINK_STORE_MSGID_HEXLEN + 1];
	struct link_store_link l;
	enum link_store_rc rv = LINK_STORE_ERROR;
	struct pg_slot *sl;
	PGresult *r;

	*deleted = false;
	if ((sl = acquire(p, err, errsz)) == NULL)
		return LINK_STORE_ERROR;
	if (begin(p, sl, err, errsz) < 0)
		goto out;
	if ((r = run(p, sl, "SELECT message_id FROM links WHERE id = $1", 1, vid, NULL, NULL, 0,
	             PGRES_TUPLES_OK, false, "reading a link", err, errsz)) == NULL)
		goto out;
	if (PQntuples(r) != 1) {
		PQclear(r);
		rv = LINK_STORE_GONE;
		goto out;
	}
	sp_strlcpy(mid, PQgetvalue(r, 0, 0), sizeof mid);
	PQclear(r);
	{
		const char *vm[] = { mid };
		if ((r = run(p, sl, "SELECT 1 FROM messages WHERE id = $1 FOR UPDATE", 1, vm, NULL,
		             NULL, 0, PGRES_TUPLES_OK, false, "locking a message", err, errsz)) == NULL)
			goto out;
	}
	if (PQntuples(r) != 1) {
		PQclear(r);
		rv = LINK_STORE_GONE;
		goto out;
	}
	PQclear(r);
	if ((r = run(p, sl, "SELECT " LINK_COLUMNS " FROM links WHERE id = $1 FOR UPDATE", 1, vid,
	             NULL, NULL, 0, PGRES_TUPLES_OK, false, "reading a link", err, errsz)) == NULL)
		goto out;
	if (PQntuples(r) != 1) {
		PQclear(r);
		rv = LINK_STORE_GONE;
		goto out;
	}
	read_link_row(r, 0, &l);
	PQclear(r);
	rv = fn(p, sl, id, &l, arg, deleted, err, errsz);
	if (rv == LINK_STORE_OK || (rv != LINK_STORE_ERROR && *deleted)) {
		if (commit(p, sl, err, errsz) < 0) {
			rv = LINK_STORE_ERROR;
			*deleted = false;
		}
	} else {
		*deleted = false;
	}
out:
	release(p, sl); /* rolls back what was not committed */
	return rv;
}

struct claim {
	int64_t now;
	struct sp_buf *ciphertext;
	uint64_t views;
};

static enum link_store_rc
claim_view(struct link_store_pg *p, struct pg_slot *sl, const char *id, struct link_store_link *l,
           void *arg, bool *deleted, char *err, size_t errsz)
{
	struct claim *c = arg;
	const char *vm[] = { l->message_id }, *vid[] = { id };
	PGresult *r;

	if (!link_store_link_live(l, c->now)) {
		if (delete_links(p, sl, id, l->message_id, false, err, errsz) < 0)
			return LINK_STORE_ERROR;
		*deleted = true;
		return LINK_STORE_GONE;
	}
	/* Binary result: the ciphertext as it is, not hex. */
	if ((r = run(p, sl, "SELECT ciphertext FROM messages WHERE id = $1", 1, vm, NULL, NULL, 1,
	             PGRES_TUPLES_OK, false, "reading a message", err, errsz)) == NULL)
		return LINK_STORE_ERROR;
	if (PQntuples(r) != 1) {
		sp_seterr(err, errsz, "link store %s: link %s has no message", p->label, id);
		PQclear(r);
		return LINK_STORE_ERROR;
	}
	if (sp_buf_append(c->ciphertext, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0)) < 0) {
		sp_seterr(err, errsz, "link store: message too large for the buffer");
		PQclear(r);
		return LINK_STORE_ERROR;
	}
	PQclear(r);
	if (run_cmd(p, sl, "UPDATE links SET views = views + 1 WHERE id = $1", 1, vid, false,
	            "counting a view", err, errsz) < 0)
		return LINK_STORE_ERROR;
	l->views++;
	c->views = l->views;
	if (l->max_views != 0 && l->views >= l->max_views) {
		if (delete_links(p, sl, id, l->message_id, false, err, errsz) < 0)
			return LINK_STORE_ERROR;
		*deleted = true;
	}
	return LINK_STORE_OK;
}

enum link_store_rc
link_store_pg_claim_view(struct link_store_pg *p, const char *id, int64_t now,
                         struct sp_buf *ciphertext, uint64_t *views_out, char *err, size_t errsz)
{
	struct claim c = { .now = now, .ciphertext = ciphertext };
	size_t before = ciphertext->len;
	enum link_store_rc rv;
	bool deleted;

	rv = change_link(p, id, claim_view, &c, &deleted, err, errsz);
	if (rv != LINK_STORE_OK) {
		/* Not counted (GONE, or a statement or the commit failed): nothing
		 * is returned. */
		sodium_memzero(ciphertext->data + before, ciphertext->len - before);
		ciphertext->len = before;
		if (ciphertext->data)
			ciphertext->data[before] = '\0';
	} else if (views_out) {
		*views_out = c.views;
	}
	return rv;
}

static enum link_store_rc
count_failure(struct link_store_pg *p, struct pg_slot *sl, const char *id,
              struct link_store_link *l, void *arg, bool *deleted, char *err, size_t errsz)
{
	const int64_t *now = arg;
	const char *vid[] = { id };

	if (link_store_link_live(l, *now)) {
		if (run_cmd(p, sl, "UPDATE links SET failed = failed + 1 WHERE id = $1", 1, vid, false,
		            "counting a failed attempt", err, errsz) < 0)
			return LINK_STORE_ERROR;
		l->failed++;
	}
	if (!link_store_link_live(l, *now)) {
		if (delete_links(p, sl, id, l->message_id, false, err, errsz) < 0)
			return LINK_STORE_ERROR;
		*deleted = true;
	}
	return LINK_STORE_OK;
}

enum link_store_rc
link_store_pg_fail(struct link_store_pg *p, const char *id, int64_t now, bool *destroyed,
                   char *err, size_t errsz)
{
	enum link_store_rc rv;
	bool deleted;

	rv = change_link(p, id, count_failure, &now, &deleted, err, errsz);
	if (rv == LINK_STORE_OK && destroyed)
		*destroyed = deleted;
	return rv;
}

/* ---- link v2 (the same steps as link_store.c's) ---- */

struct evaluate {
	int64_t now;
	const unsigned char *attempt;
	struct link_store_link *out;
};

static enum link_store_rc
evaluate_attempt(struct link_store_pg *p, struct pg_slot *sl, const char *id,
                 struct link_store_link *l, void *arg, bool *deleted, char *err, size_t errsz)
{
	struct evaluate *e = arg;
	char vexp[24];
	const char *vid[] = { id };
	int64_t pending;
	unsigned char *w = NULL;
	size_t wlen = 0;
	PGresult *r;

	if (!link_store_link_live(l, e->now)) {
		if (delete_links(p, sl, id, l->message_id, false, err, errsz) < 0)
			return LINK_STORE_ERROR;
		*deleted = true;
		return LINK_STORE_GONE;
	}
	if ((r = run(p, sl, "SELECT count(*) FROM pending WHERE link_id = $1", 1, vid, NULL, NULL,
	             0, PGRES_TUPLES_OK, false, "counting pending attempts", err, errsz)) == NULL)
		return LINK_STORE_ERROR;
	pending = col_i64(r, 0, 0);
	PQclear(r);
	if (l->failed + (uint64_t)pending >= l->max_failed || pending >= LINK_STORE_PENDING_MAX)
		return LINK_STORE_BUSY;
	if ((r = run(p, sl, "SELECT wrapped FROM links WHERE id = $1", 1, vid, NULL, NULL, 1,
	             PGRES_TUPLES_OK, false, "reading a link", err, errsz)) == NULL)
		return LINK_STORE_ERROR;
	wlen = PQntuples(r) == 1 ? (size_t)PQgetlength(r, 0, 0) : 0;
	if (wlen == 0 || wlen > LINK_STORE_WRAPPED_MAX) {
		sp_seterr(err, errsz, "link store %s: link %s has a damaged key blob", p->label, id);
		PQclear(r);
		return LINK_STORE_ERROR;
	}
	if (e->out) {
		*e->out = *l;
		w = sp_xmalloc(wlen);
		memcpy(w, PQgetvalue(r, 0, 0), wlen);
		e->out->wrapped = w;
		e->out->wrapped_len = wlen;
	}
	PQclear(r);
	snprintf(vexp, sizeof vexp, "%" PRId64, e->now + LINK_STORE_PENDING_TTL_S);
	{
		const char *vals[] = { id, (const char *)e->attempt, vexp };
		const int lens[] = { 0, LINK_STORE_ATTEMPT_BYTES, 0 };
		const int fmts[] = { 0, 1, 0 };
		r = run(p, sl, "INSERT INTO pending (link_id, attempt, expires) VALUES ($1, $2, $3)",
		        3, vals, lens, fmts, 0, PGRES_COMMAND_OK, false, "recording an attempt", err,
		        errsz);
		if (r == NULL)
			return LINK_STORE_ERROR;
		PQclear(r);
	}
	return LINK_STORE_OK;
}

enum link_store_rc
link_store_pg_evaluate(struct link_store_pg *p, const char *id, int64_t now,
                       const unsigned char *attempt, struct link_store_link *out, char *err,
                       size_t errsz)
{
	struct evaluate e = { .now = now, .attempt = attempt, .out = out };
	enum link_store_rc rv;
	bool deleted;

	rv = change_link(p, id, evaluate_attempt, &e, &deleted, err, errsz);
	if (rv != LINK_STORE_OK && out)
		link_store_link_clear(out);
	return rv;
}

struct prove {
	int64_t now;
	const unsigned char *attempt;
	bool valid;
	struct claim claim;
	bool destroyed;
};

static enum link_store_rc
prove_attempt(struct link_store_pg *p, struct pg_slot *sl, const char *id,
              struct link_store_link *l, void *arg, bool *deleted, char *err, size_t errsz)
{
	struct prove *pr = arg;
	const char *vals[] = { id, (const char *)pr->attempt };
	const int lens[] = { 0, LINK_STORE_ATTEMPT_BYTES };
	const int fmts[] = { 0, 1 };
	int64_t expires = 0;
	enum link_store_rc rc;
	PGresult *r;

	if ((r = run(p, sl, "DELETE FROM pending WHERE link_id = $1 AND attempt = $2 "
	             "RETURNING expires", 2, vals, lens, fmts, 0, PGRES_TUPLES_OK, false,
	             "removing an attempt", err, errsz)) == NULL)
		return LINK_STORE_ERROR;
	if (PQntuples(r) == 1)
		expires = col_i64(r, 0, 0);
	PQclear(r);
	if (expires == 0)
		return LINK_STORE_STALE;
	if (expires <= pr->now || !pr->valid) {
		bool gone = false;
		/* A wrong proof commits without waiting for the WAL flush, as the
		 * SQLite store's (link_store.c, link_store_prove): the attempt was
		 * counted durably when it was evaluated. */
		if (!pr->valid && run_cmd(p, sl, "SET LOCAL synchronous_commit = off", 0, NULL, false,
		                          "relaxing a wrong proof's commit", err, errsz) < 0)
			return LINK_STORE_ERROR;
		if (count_failure(p, sl, id, l, &pr->now, &gone, err, errsz) != LINK_STORE_OK)
			return LINK_STORE_ERROR;
		pr->destroyed = gone;
		*deleted = true; /* commit the removal and the count */
		return expires <= pr->now ? LINK_STORE_STALE : LINK_STORE_WRONG;
	}
	rc = claim_view(p, sl, id, l, &pr->claim, deleted, err, errsz);
	if (rc == LINK_STORE_GONE)
		*deleted = true;
	return rc;
}

enum link_store_rc
link_store_pg_prove(struct link_store_pg *p, const char *id, int64_t now,
                    const unsigned char *attempt, bool valid, struct sp_buf *ciphertext,
                    uint64_t *views_out, bool *destroyed, char *err, size_t errsz)
{
	struct prove pr = { .now = now, .attempt = attempt, .valid = valid,
	                    .claim = { .now = now, .ciphertext = ciphertext } };
	size_t before = ciphertext->len;
	enum link_store_rc rv;
	bool deleted;

	rv = change_link(p, id, prove_attempt, &pr, &deleted, err, errsz);
	if (rv != LINK_STORE_OK) {
		sodium_memzero(ciphertext->data + before, ciphertext->len - before);
		ciphertext->len = before;
		if (ciphertext->data)
			ciphertext->data[before] = '\0';
	} else if (views_out) {
		*views_out = pr.claim.views;
	}
	if (destroyed && rv != LINK_STORE_ERROR)
		*destroyed = pr.destroyed;
	return rv;
}

enum link_store_rc
link_store_pg_pending_count(struct link_store_pg *p, const char *id, unsigned *n, char *err,
                            size_t errsz)
{
	const char *vid[] = { id };
	struct pg_slot *sl;
	PGresult *r;

	if ((sl = acquire(p, err, errsz)) == NULL)
		return LINK_STORE_ERROR;
	r = run(p, sl, "SELECT count(*) FROM pending WHERE link_id = $1", 1, vid, NULL, NULL, 0,
	        PGRES_TUPLES_OK, true, "counting pending attempts", err, errsz);
	release(p, sl);
	if (r == NULL)
		return LINK_STORE_ERROR;
	*n = (unsigned)col_i64(r, 0, 0);
	PQclear(r);
	return LINK_STORE_OK;
}

static enum link_store_rc
revoke_link(struct link_store_pg *p, struct pg_slot *sl, const char *id, struct link_store_link *l,
            void *arg, bool *deleted, char *err, size_t errsz)
{
	const bool *whole_message = arg;

	if (delete_links(p, sl, id, l->message_id, *whole_message, err, errsz) < 0)
		return LINK_STORE_ERROR;
	*deleted = true;
	return LINK_STORE_OK;
}

enum link_store_rc
link_store_pg_revoke(struct link_store_pg *p, const char *id, bool whole_message, char *err,
                     size_t errsz)
{
	bool deleted;

	return change_link(p, id, revoke_link, &whole_message, &deleted, err, errsz);
}

struct attempt {
	int64_t now;
	uint64_t others;
	int64_t ticket;
};

/* Register one attempt, under the link's locks: two registrations, or one and
 * a failure, on any nodes, are ordered, so each sees the ones before it. */
static enum link_store_rc
register_attempt(struct link_store_pg *p, struct pg_slot *sl, const char *id,
                 struct link_store_link *l, void *arg, bool *deleted, char *err, size_t errsz)
{
	struct attempt *a = arg;
	char deadline[24], now[24], ticket[24];
	const char *ins[] = { id, deadline };
	const char *cnt[] = { id, now, ticket };
	PGresult *r;

	snprintf(now, sizeof now, "%" PRId64, a->now);
	snprintf(deadline, sizeof deadline, "%" PRId64, a->now + LINK_STORE_ATTEMPT_TTL_S);
	if ((r = run(p, sl, "INSERT INTO attempts (link_id, deadline) VALUES ($1, $2) "
	             "RETURNING ticket", 2, ins, NULL, NULL, 0, PGRES_TUPLES_OK, false,
	             "registering an attempt", err, errsz)) == NULL)
		return LINK_STORE_ERROR;
	a->ticket = col_i64(r, 0, 0);
	PQclear(r);
	snprintf(ticket, sizeof ticket, "%" PRId64, a->ticket);
	if ((r = run(p, sl, "SELECT count(*) FROM attempts WHERE link_id = $1 AND deadline > $2 "
	             "AND ticket <> $3", 3, cnt, NULL, NULL, 0, PGRES_TUPLES_OK, false,
	             "counting attempts", err, errsz)) == NULL)
		return LINK_STORE_ERROR;
	a->others = (uint64_t)col_i64(r, 0, 0);
	PQclear(r);
	return LINK_STORE_OK;
}

enum link_store_rc
link_store_pg_attempt_begin(struct link_store_pg *p, const char *id, int64_t now,
                            uint64_t *others, int64_t *ticket, char *err, size_t errsz)
{
	struct attempt a = { .now = now };
	enum link_store_rc rv;
	bool deleted;

	rv = change_link(p, id, register_attempt, &a, &deleted, err, errsz);
	if (rv == LINK_STORE_OK) {
		*others = a.others;
		*ticket = a.ticket;
	}
	return rv;
}

void
link_store_pg_attempt_end(struct link_store_pg *p, int64_t ticket)
{
	char err[SP_ERRLEN], t[24];
	const char *vals[] = { t };
	struct pg_slot *sl;

	snprintf(t, sizeof t, "%" PRId64, ticket);
	if ((sl = acquire(p, err, sizeof err)) == NULL ||
	    run_cmd(p, sl, "DELETE FROM attempts WHERE ticket = $1", 1, vals, true,
	            "ending an attempt", err, sizeof err) < 0)
		sp_log_warn("%s (it lapses in %d s)", err, LINK_STORE_ATTEMPT_TTL_S);
	release(p, sl);
}

/* A link found dead by get(): deleted under the same locks as any change. */
static enum link_store_rc
delete_if_dead(struct link_store_pg *p, struct pg_slot *sl, const char *id,
               struct link_store_link *l, void *arg, bool *deleted, char *err, size_t errsz)
{
	const int64_t *now = arg;

	if (link_store_link_live(l, *now))
		return LINK_STORE_GONE; /* revived? (a clock step): leave it, roll back */
	if (delete_links(p, sl, id, l->message_id, false, err, errsz) < 0)
		return LINK_STORE_ERROR;
	*deleted = true;
	return LINK_STORE_GONE;
}

/* ---- reads ---- */

enum link_store_rc
link_store_pg_get(struct link_store_pg *p, const char *id, int64_t now,
                  struct link_store_link *out, char *err, size_t errsz)
{
	const char *vid[] = { id };
	enum link_store_rc rv = LINK_STORE_ERROR;
	struct pg_slot *sl;
	unsigned char *w = NULL;
	size_t wlen = 0;
	PGresult *r;
	bool deleted;

	if ((sl = acquire(p, err, errsz)) == NULL)
		return LINK_STORE_ERROR;
	r = run(p, sl, "SELECT " LINK_COLUMNS ", wrapped FROM links WHERE id = $1", 1, vid, NULL,
	        NULL, 0, PGRES_TUPLES_OK, true, "reading a link", err, errsz);
	release(p, sl);
	if (r == NULL)
		return LINK_STORE_ERROR;
	if (PQntuples(r) != 1) {
		PQclear(r);
		return LINK_STORE_GONE;
	}
	read_link_row(r, 0, out);
	if (!link_store_link_live(out, now)) {
		PQclear(r);
		memset(out, 0, sizeof *out);
		rv = change_link(p, id, delete_if_dead, &now, &deleted, err, errsz);
		return rv == LINK_STORE_ERROR ? LINK_STORE_ERROR : LINK_STORE_GONE;
	}
	w = PQunescapeBytea((const unsigned char *)PQgetvalue(r, 0, 11), &wlen);
	PQclear(r);
	if (w == NULL || wlen == 0 || wlen > LINK_STORE_WRAPPED_MAX) {
		sp_seterr(err, errsz, "link store %s: link %s has a damaged key blob", p->label, id);
		memset(out, 0, sizeof *out);
		goto out;
	}
	out->wrapped = sp_xmalloc(wlen);
	memcpy(out->wrapped, w, wlen);
	out->wrapped_len = wlen;
	rv = LINK_STORE_OK;
out:
	if (w) {
		sodium_memzero(w, wlen);
		PQfreemem(w);
	}
	return rv;
}

enum link_store_rc
link_store_pg_list(struct link_store_pg *p, struct link_store_link **out, size_t *n, char *err,
                   size_t errsz)
{
	struct link_store_link *v;
	struct pg_slot *sl;
	PGresult *r;
	int i, rows;

	*out = NULL;
	*n = 0;
	if ((sl = acquire(p, err, errsz)) == NULL)
		return LINK_STORE_ERROR;
	r = run(p, sl, "SELECT " LINK_COLUMNS " FROM links ORDER BY created DESC, id", 0, NULL, NULL,
	        NULL, 0, PGRES_TUPLES_OK, true, "listing links", err, errsz);
	release(p, sl);
	if (r == NULL)
		return LINK_STORE_ERROR;
	rows = PQntuples(r);
	v = sp_xcalloc(rows ? (size_t)rows : 1, sizeof *v);
	for (i = 0; i < rows; i++)
		read_link_row(r, i, &v[i]);
	PQclear(r);
	*out = v;
	*n = (size_t)rows;
	return LINK_STORE_OK;
}

enum link_store_rc
link_store_pg_count(struct link_store_pg *p, unsigned *n_links, unsigned *n_messages, char *err,
                    size_t errsz)
{
	struct pg_slot *sl;
	PGresult *r;

	if ((sl = acquire(p, err, errsz)) == NULL)
		return LINK_STORE_ERROR;
	r = run(p, sl, "SELECT (SELECT count(*) FROM links), (SELECT count(*) FROM messages)", 0,
	        NULL, NULL, NULL, 0, PGRES_TUPLES_OK, true, "counting", err, errsz);
	release(p, sl);
	if (r == NULL)
		return LINK_STORE_ERROR;
	if (n_links)
		*n_links = (unsigned)col_i64(r, 0, 0);
	if (n_messages)
		*n_messages = (unsigned)col_i64(r, 0, 1);
	PQclear(r);
	return LINK_STORE_OK;
}

/* ---- sweep ---- */

/* Two transactions, so that none holds link locks while it waits for a
 * message lock (a change holds its message's lock and waits for its link's:
 * the other order would deadlock): first the dead links, then the messages
 * left without links.  Between them an orphan message is harmless: nothing
 * reaches it.  Under a session advisory lock: one sweeper across all nodes;
 * the others skip this round (0 rows).  The server drops the lock with the
 * connection if this process dies. */
enum link_store_rc
link_store_pg_sweep(struct link_store_pg *p, int64_t now, unsigned *n_links, unsigned *n_messages,
                    char *err, size_t errsz)
{
	enum link_store_rc rv = LINK_STORE_ERROR;
	char vnow[24], timeout[64];
	const char *vals[] = { vnow };
	bool locked = false;
	unsigned dl = 0, dm = 0;
	struct pg_slot *sl;
	PGresult *r;

	snprintf(vnow, sizeof vnow, "%" PRId64, now);
	snprintf(timeout, sizeof timeout, "SET LOCAL statement_timeout = %d",
	         LINK_STORE_PG_SWEEP_TIMEOUT_MS);
	if ((sl = acquire(p, err, errsz)) == NULL)
		return LINK_STORE_ERROR;
	if ((r = run(p, sl, "SELECT pg_try_advisory_lock(" LOCK_SWEEP ")", 0, NULL, NULL, NULL, 0,
	             PGRES_TUPLES_OK, true, "locking for the sweep", err, errsz)) == NULL)
		goto out;
	locked = PQgetvalue(r, 0, 0)[0] == 't';
	PQclear(r);
	if (!locked) {
		sp_log_debug("link store %s: another node is sweeping", p->label);
		rv = LINK_STORE_OK;
		goto out;
	}
	if (begin(p, sl, err, errsz) < 0 ||
	    run_cmd(p, sl, timeout, 0, NULL, false, "setting the sweep timeout", err, errsz) < 0)
		goto out;
	if (run_cmd(p, sl, "DELETE FROM reply_caps WHERE expires <= $1", 1, vals, false,
	            "sweeping reply capabilities", err, errsz) < 0)
		goto out;
	/* v2 attempts never proven stay counted: they become settled failures. */
	if (run_cmd(p, sl, "UPDATE links SET failed = least(max_failed, failed + (SELECT count(*) "
	            "FROM pending WHERE pending.link_id = links.id AND pending.expires <= $1)) "
	            "WHERE id IN (SELECT link_id FROM pending WHERE expires <= $1)", 1, vals, false,
	            "counting expired attempts", err, errsz) < 0 ||
	    run_cmd(p, sl, "DELETE FROM pending WHERE expires <= $1", 1, vals, false,
	            "sweeping pending attempts", err, errsz) < 0)
		goto out;
	if ((r = run(p, sl, "DELETE FROM links WHERE NOT (" LIVE_SQL ")", 1, vals, NULL, NULL, 0,
	             PGRES_COMMAND_OK, false, "sweeping links", err, errsz)) == NULL)
		goto out;
	dl = (unsigned)strtoul(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	/* Attempts whose process died without ending them. */
	if (run_cmd(p, sl, "DELETE FROM attempts WHERE deadline <= $1", 1, vals, false,
	            "sweeping attempts", err, errsz) < 0)
		goto out;
	if (commit(p, sl, err, errsz) < 0 || begin(p, sl, err, errsz) < 0 ||
	    run_cmd(p, sl, timeout, 0, NULL, false, "setting the sweep timeout", err, errsz) < 0)
		goto out;
	if ((r = run(p, sl, "DELETE FROM messages WHERE NOT EXISTS "
	             "(SELECT 1 FROM links WHERE links.message_id = messages.id)", 0, NULL, NULL,
	             NULL, 0, PGRES_COMMAND_OK, false, "sweeping messages", err, errsz)) == NULL)
		goto out;
	dm = (unsigned)strtoul(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	if (commit(p, sl, err, errsz) < 0)
		goto out;
	rv = LINK_STORE_OK;
out:
	if (locked && PQstatus(sl->conn) == CONNECTION_OK) {
		if (PQtransactionStatus(sl->conn) != PQTRANS_IDLE)
			PQclear(PQexec(sl->conn, "ROLLBACK"));
		PQclear(PQexec(sl->conn, "SELECT pg_advisory_unlock(" LOCK_SWEEP ")"));
	}
	release(p, sl);
	if (rv == LINK_STORE_OK) {
		if (n_links)
			*n_links = dl;
		if (n_messages)
			*n_messages = dm;
	}
	return rv;
}

/* ---- secure reply ---- */

enum link_store_rc
link_store_pg_reply_cap_put(struct link_store_pg *p, const char *link_id, const char *sender,
                            int64_t expires, const unsigned char *cap, char *err, size_t errsz)
{
	char vexp[24];
	const char *vals[] = { (const char *)cap, link_id, sender, vexp };
	const int lens[] = { LINK_STORE_REPLY_CAP_BYTES, 0, 0, 0 };
	const int fmts[] = { 1, 0, 0, 0 };
	struct pg_slot *sl;
	PGresult *r;

	snprintf(vexp, sizeof vexp, "%" PRId64, expires);
	if ((sl = acquire(p, err, errsz)) == NULL)
		return LINK_STORE_ERROR;
	r = run(p, sl, "INSERT INTO reply_caps (cap, link_id, sender, expires) VALUES ($1, $2, $3, $4)",
	        4, vals, lens, fmts, 0, PGRES_COMMAND_OK, false, "storing a reply capability", err,
	        errsz);
	release(p, sl);
	PQclear(r);
	return r ? LINK_STORE_OK : LINK_STORE_ERROR;
}

enum link_store_rc
link_store_pg_reply_cap_check(struct link_store_pg *p, const unsigned char *cap,
                              const char *link_id, int64_t now, char *err, size_t errsz)
{
	char vnow[24];
	const char *vals[] = { (const char *)cap, link_id, vnow };
	const int lens[] = { LINK_STORE_REPLY_CAP_BYTES, 0, 0 };
	const int fmts[] = { 1, 0, 0 };
	struct pg_slot *sl;
	PGresult *r;
	enum link_store_rc rv;

	snprintf(vnow, sizeof vnow, "%" PRId64, now);
	if ((sl = acquire(p, err, errsz)) == NULL)
		return LINK_STORE_ERROR;
	r = run(p, sl, "SELECT 1 FROM reply_caps WHERE cap = $1 AND link_id = $2 AND expires > $3",
	        3, vals, lens, fmts, 0, PGRES_TUPLES_OK, true, "reading a reply capability", err,
	        errsz);
	release(p, sl);
	if (r == NULL)
		return LINK_STORE_ERROR;
	rv = PQntuples(r) == 1 ? LINK_STORE_OK : LINK_STORE_GONE;
	PQclear(r);
	return rv;
}

enum link_store_rc
link_store_pg_reply_put(struct link_store_pg *p, const unsigned char *cap, const char *link_id,
                        int64_t now, const struct link_store_reply_limits *lim, const char *rcpt,
                        const char *in_reply_to, const void *body, size_t len, char *err,
                        size_t errsz)
{
	char vnow[24], sender[LINK_STORE_SENDER_MAX];
	const char *cvals[] = { (const char *)cap, vnow, link_id };
	const int clens[] = { LINK_STORE_REPLY_CAP_BYTES, 0, 0 };
	const int cfmts[] = { 1, 0, 0 };
	enum link_store_rc rv = LINK_STORE_ERROR;
	struct pg_slot *sl;
	PGresult *r;
	int64_t replies, last;

	if (len > INT32_MAX) {
		sp_seterr(err, errsz, "link store %s: reply too large", p->label);
		return LINK_STORE_ERROR;
	}
	snprintf(vnow, sizeof vnow, "%" PRId64, now);
	if ((sl = acquire(p, err, errsz)) == NULL)
		return LINK_STORE_ERROR;
	if (begin(p, sl, err, errsz) < 0)
		goto out;
	if ((r = run(p, sl, "SELECT link_id, sender, replies, last FROM reply_caps "
	             "WHERE cap = $1 AND expires > $2 AND link_id = $3 FOR UPDATE", 3, cvals, clens, cfmts, 0,
	             PGRES_TUPLES_OK, false, "reading a reply capability", err, errsz)) == NULL)
		goto out;
	if (PQntuples(r) != 1) {
		PQclear(r);
		rv = LINK_STORE_GONE;
		goto out;
	}
	sp_strlcpy(sender, PQgetvalue(r, 0, 1), sizeof sender);
	replies = col_i64(r, 0, 2);
	last = col_i64(r, 0, 3);
	PQclear(r);
	if ((uint64_t)replies >= lim->max_count) {
		rv = LINK_STORE_FULL;
		goto out;
	}
	if (replies > 0 && now - last < lim->min_interval_s) {
		rv = LINK_STORE_BUSY;
		goto out;
	}
	if ((r = run(p, sl, "UPDATE reply_caps SET replies = replies + 1, last = $2 WHERE cap = $1",
	             2, cvals, clens, cfmts, 0, PGRES_COMMAND_OK, false, "counting a reply", err,
	             errsz)) == NULL)
		goto out;
	PQclear(r);
	{
		const char *vals[] = { link_id, vnow, sender, rcpt, in_reply_to, body };
		const int lens[] = { 0, 0, 0, 0, 0, (int)len };
		const int fmts[] = { 0, 0, 0, 0, 0, 1 };
		if ((r = run(p, sl, "INSERT INTO replies (link_id, created, sender, rcpt, in_reply_to, "
		             "body) VALUES ($1, $2, $3, $4, $5, $6)", 6, vals, lens, fmts, 0,
		             PGRES_COMMAND_OK, false, "storing a reply", err, errsz)) == NULL)
			goto out;
		PQclear(r);
	}
	if (commit(p, sl, err, errsz) < 0)
		goto out;
	rv = LINK_STORE_OK;
out:
	release(p, sl);
	return rv;
}

enum link_store_rc
link_store_pg_reply_take(struct link_store_pg *p, size_t max, struct link_store_reply **out,
                         size_t *n, char *err, size_t errsz)
{
	char vmax[24];
	const char *vals[] = { vmax };
	struct link_store_reply *v;
	struct pg_slot *sl;
	PGresult *r;
	int i, rows;

	snprintf(vmax, sizeof vmax, "%zu", max);
	if ((sl = acquire(p, err, errsz)) == NULL)
		return LINK_STORE_ERROR;
	r = run(p, sl, "SELECT id, link_id, created, sender, rcpt, in_reply_to, body FROM replies "
	        "ORDER BY id LIMIT $1", 1, vals, NULL, NULL, 0, PGRES_TUPLES_OK, true,
	        "reading replies", err, errsz);
	release(p, sl);
	if (r == NULL)
		return LINK_STORE_ERROR;
	rows = PQntuples(r);
	v = sp_xcalloc(rows ? (size_t)rows : 1, sizeof *v);
	for (i = 0; i < rows; i++) {
		struct link_store_reply *e = &v[i];
		unsigned char *b;
		size_t blen = 0;
		e->id = col_i64(r, i, 0);
		sp_strlcpy(e->link_id, PQgetvalue(r, i, 1), sizeof e->link_id);
		e->created = col_i64(r, i, 2);
		sp_strlcpy(e->sender, PQgetvalue(r, i, 3), sizeof e->sender);
		sp_strlcpy(e->rcpt, PQgetvalue(r, i, 4), sizeof e->rcpt);
		sp_strlcpy(e->in_reply_to, PQgetvalue(r, i, 5), sizeof e->in_reply_to);
		b = PQunescapeBytea((const unsigned char *)PQgetvalue(r, i, 6), &blen);
		if (b == NULL)
			abort();
		e->body = sp_xmalloc(blen ? blen : 1);
		memcpy(e->body, b, blen);
		e->body_len = blen;
		PQfreemem(b);
	}
	PQclear(r);
	*out = v;
	*n = (size_t)rows;
	return LINK_STORE_OK;
}

enum link_store_rc
link_store_pg_reply_delete(struct link_store_pg *p, int64_t id, char *err, size_t errsz)
{
	char vid[24];
	const char *vals[] = { vid };
	struct pg_slot *sl;
	PGresult *r;
	enum link_store_rc rv;

	snprintf(vid, sizeof vid, "%" PRId64, id);
	if ((sl = acquire(p, err, errsz)) == NULL)
		return LINK_STORE_ERROR;
	r = run(p, sl, "DELETE FROM replies WHERE id = $1", 1, vals, NULL, NULL, 0,
	        PGRES_COMMAND_OK, false, "deleting a reply", err, errsz);
	release(p, sl);
	if (r == NULL)
		return LINK_STORE_ERROR;
	rv = strcmp(PQcmdTuples(r), "0") == 0 ? LINK_STORE_GONE : LINK_STORE_OK;
	PQclear(r);
	return rv;
}

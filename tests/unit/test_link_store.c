/* test_link_store.c - the link store: schema, transactions, counters,
 * deletion, and the burn-after-reading race (threads, connections, processes).
 *
 * On SQLite by default.  With SP_TEST_STORE_URL set to a postgresql:// URL
 * (tests/integration/test_store_postgres.py starts a server and runs this
 * program so), the same tests run against that database, which each test
 * empties first; the file-level ones (modes, WAL, bytes left in the file)
 * are SQLite's only, and PostgreSQL's own (schema table, reconnect) run. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "link_store.h"

/* A byte pattern that must vanish from the files once its message is deleted. */
#define MARKER "SEALPOST-CIPHERTEXT-MARKER-"

struct fixture {
	char *dir;
	char *path;
	struct link_store *s;
};

/* The PostgreSQL store under test, or NULL for SQLite. */
static const char *
pg_url(void)
{
	const char *u = getenv("SP_TEST_STORE_URL");

	return u && *u ? u : NULL;
}

/* Run SQL on the test database, on a connection of the test's own. */
static void
pg_exec(const char *sql)
{
	PGconn *c = PQconnectdb(pg_url());
	PGresult *r;

	if (PQstatus(c) != CONNECTION_OK)
		g_error("test database: %s", PQerrorMessage(c));
	r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		g_error("test database: %s: %s", sql, PQresultErrorMessage(r));
	PQclear(r);
	PQfinish(c);
}

static void
fx_setup(struct fixture *fx, gconstpointer data)
{
	char err[SP_ERRLEN];

	fx->dir = g_dir_make_tmp("sp-store-XXXXXX", NULL);
	g_assert_nonnull(fx->dir);
	if (pg_url()) {
		pg_exec("SET client_min_messages = warning; "
		        "DROP TABLE IF EXISTS replies, reply_caps, pending, attempts, links, messages, "
		        "sealpost_schema CASCADE");
		fx->path = g_strdup(pg_url());
	} else {
		fx->path = g_build_filename(fx->dir, "sub", "links.sqlite", NULL);
	}
	err[0] = '\0';
	if (link_store_open(fx->path, &fx->s, err, sizeof err) != LINK_STORE_OK)
		g_error("open: %s", err);
}

static void
rm_rf(const char *dir)
{
	char *cmd = g_strdup_printf("rm -rf '%s'", dir);
	g_assert_cmpint(system(cmd), ==, 0);
	g_free(cmd);
}

static void
fx_teardown(struct fixture *fx, gconstpointer data)
{
	link_store_close(fx->s);
	rm_rf(fx->dir);
	g_free(fx->dir);
	g_free(fx->path);
}

static void
make_id(char out[SP_LINK_ID_HEXLEN + 1], unsigned n)
{
	snprintf(out, SP_LINK_ID_HEXLEN + 1, "%032x", n);
}

/* Store one message with n links (ids base, base+1, ...). */
static enum link_store_rc
put_msg(struct link_store *s, unsigned base, size_t n, int64_t now, int64_t ttl,
        uint64_t max_views, uint64_t max_failed, char msg_id[LINK_STORE_MSGID_HEXLEN + 1])
{
	struct link_store_new_link links[8];
	struct link_store_new_msg m;
	char ct[64], err[SP_ERRLEN];
	size_t i;

	g_assert_cmpuint(n, <=, G_N_ELEMENTS(links));
	snprintf(ct, sizeof ct, MARKER "%08u", base);
	for (i = 0; i < n; i++) {
		make_id(links[i].id, base + (unsigned)i);
		links[i].wrapped = "WRAPPED-KEY-BLOB";
		links[i].wrapped_len = 16;
	}
	m = (struct link_store_new_msg){
		.ciphertext = ct, .ciphertext_len = strlen(ct),
		.created = now, .expires = now + ttl,
		.max_views = max_views, .max_failed = max_failed,
		.links = links, .n_links = n,
	};
	return link_store_put(s, &m, msg_id, err, sizeof err);
}

static void
assert_counts(struct link_store *s, unsigned want_links, unsigned want_msgs)
{
	unsigned nl = 99, nm = 99;
	char err[SP_ERRLEN];

	g_assert_cmpint(link_store_count(s, &nl, &nm, err, sizeof err), ==, LINK_STORE_OK);
	g_assert_cmpuint(nl, ==, want_links);
	g_assert_cmpuint(nm, ==, want_msgs);
}

/* ---- open, schema, file mode ---- */

static void
test_open(struct fixture *fx, gconstpointer data)
{
	struct link_store *s2 = NULL;
	char err[SP_ERRLEN], *dir;
	struct stat sb;
	sqlite3 *db;
	sqlite3_stmt *st;

	if (pg_url()) {
		g_test_skip("SQLite's file");
		return;
	}
	g_assert_cmpint(stat(fx->path, &sb), ==, 0);
	g_assert_cmpint(sb.st_mode & 0777, ==, 0600);
	dir = g_path_get_dirname(fx->path);
	g_assert_cmpint(stat(dir, &sb), ==, 0);
	g_assert_cmpint(sb.st_mode & 0777, ==, 0700);
	g_free(dir);

	/* Reopening an up-to-date store migrates nothing and works. */
	g_assert_cmpint(link_store_open(fx->path, &s2, err, sizeof err), ==, LINK_STORE_OK);
	link_store_close(s2);

	g_assert_cmpint(sqlite3_open(fx->path, &db), ==, SQLITE_OK);
	g_assert_cmpint(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), ==, SQLITE_OK);
	g_assert_cmpint(sqlite3_step(st), ==, SQLITE_ROW);
	g_assert_cmpint(sqlite3_column_int(st, 0), ==, LINK_STORE_SCHEMA_VERSION);
	sqlite3_finalize(st);
	g_assert_cmpint(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), ==, SQLITE_OK);
	g_assert_cmpint(sqlite3_step(st), ==, SQLITE_ROW);
	g_assert_cmpstr((const char *)sqlite3_column_text(st, 0), ==, "wal");
	sqlite3_finalize(st);
	/* A file from a newer sealpost is refused, not damaged. */
	g_assert_cmpint(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), ==, SQLITE_OK);
	sqlite3_close(db);
	g_assert_cmpint(link_store_open(fx->path, &s2, err, sizeof err), ==, LINK_STORE_ERROR);
	g_assert_nonnull(strstr(err, "newer"));
	g_assert_null(s2);
}

/* A version 2 file (link v2, before the secure reply) with a link in it is
 * migrated to 3 on open: the link stays, and a reply capability works. */
static void
test_migrate_2_to_3(struct fixture *fx, gconstpointer data)
{
	unsigned char cap[LINK_STORE_REPLY_CAP_BYTES];
	struct link_store_reply_limits lim = { .max_count = 1, .min_interval_s = 0 };
	struct link_store_link l;
	char id[SP_LINK_ID_HEXLEN + 1], err[SP_ERRLEN];
	int64_t now = 1700000000;
	sqlite3 *db;

	(void)data;
	if (pg_url()) {
		g_test_skip("SQLite's file");
		return;
	}
	make_id(id, 700);
	g_assert_cmpint(put_msg(fx->s, 700, 1, now, 100, 0, 3, NULL), ==, LINK_STORE_OK);
	link_store_close(fx->s);
	fx->s = NULL;
	/* Back to what schema 2 had. */
	g_assert_cmpint(sqlite3_open(fx->path, &db), ==, SQLITE_OK);
	g_assert_cmpint(sqlite3_exec(db, "DROP TABLE replies; DROP TABLE reply_caps; "
	                             "PRAGMA user_version = 2", NULL, NULL, NULL), ==, SQLITE_OK);
	sqlite3_close(db);
	g_assert_cmpint(link_store_open(fx->path, &fx->s, err, sizeof err), ==, LINK_STORE_OK);
	g_assert_cmpint(link_store_get(fx->s, id, now, &l, err, sizeof err), ==, LINK_STORE_OK);
	link_store_link_clear(&l);
	memset(cap, 7, sizeof cap);
	g_assert_cmpint(link_store_reply_cap_put(fx->s, id, "a@example.com", now + 100, cap, err,
	                                         sizeof err), ==, LINK_STORE_OK);
	g_assert_cmpint(link_store_reply_put(fx->s, cap, id, now, &lim, "", "", "C", 1, err,
	                                     sizeof err), ==, LINK_STORE_OK);
}

static void
test_open_errors(void)
{
	struct link_store *s = NULL;
	char err[SP_ERRLEN];

	g_assert_cmpint(link_store_open("", &s, err, sizeof err), ==, LINK_STORE_ERROR);
	g_assert_cmpint(link_store_open("/proc/no/such/dir/x.sqlite", &s, err, sizeof err), ==,
	                LINK_STORE_ERROR);
	g_assert_null(s);
}

/* The store's name in logs and errors never carries the database password. */
static void
test_label(void)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "/var/lib/sealpost/links.sqlite", "/var/lib/sealpost/links.sqlite" },
		{ "postgresql://sp:hunter2@db.example:5432/links?sslmode=verify-full&password=x",
		  "postgresql://sp@db.example:5432/links" },
		{ "postgres://sp@db/links", "postgres://sp@db/links" },
		{ "postgresql://a:b@c@h/d", "postgresql://a@h/d" },
		{ "postgresql:///links?host=/run/postgresql", "postgresql:///links" },
		{ "postgresql://h", "postgresql://h" },
	};
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(cases); i++) {
		char *got = link_store_label(cases[i].in);
		g_assert_cmpstr(got, ==, cases[i].want);
		free(got);
	}
	g_assert_true(link_store_is_url("postgresql://h/d"));
	g_assert_true(link_store_is_url("postgres://h/d"));
	g_assert_false(link_store_is_url("/srv/postgresql://x"));
	g_assert_false(link_store_is_url("links.sqlite"));
}

/* A database that does not answer is an error at open, quickly and without
 * the password in the message. */
static void
test_pg_unreachable(void)
{
	struct link_store *s = NULL;
	char err[SP_ERRLEN];

	/* Port 1 on loopback: refused at once. */
	g_assert_cmpint(link_store_open("postgresql://sp:hunter2@127.0.0.1:1/links", &s, err,
	                                sizeof err), ==, LINK_STORE_ERROR);
	g_assert_null(s);
	g_assert_nonnull(strstr(err, "postgresql://sp@127.0.0.1:1/links"));
	g_assert_null(strstr(err, "hunter2"));
}

/* PostgreSQL: the schema version is in its table; a newer one is refused. */
static void
test_pg_schema(struct fixture *fx, gconstpointer data)
{
	struct link_store *s2 = NULL;
	char err[SP_ERRLEN];
	PGconn *c;
	PGresult *r;

	if (!pg_url()) {
		g_test_skip("no PostgreSQL (SP_TEST_STORE_URL)");
		return;
	}
	c = PQconnectdb(pg_url());
	g_assert_cmpint(PQstatus(c), ==, CONNECTION_OK);
	r = PQexec(c, "SELECT version FROM sealpost_schema");
	g_assert_cmpint(PQresultStatus(r), ==, PGRES_TUPLES_OK);
	g_assert_cmpint(PQntuples(r), ==, 1);
	g_assert_cmpint(atoi(PQgetvalue(r, 0, 0)), ==, LINK_STORE_SCHEMA_VERSION);
	PQclear(r);
	PQfinish(c);
	/* Reopening an up-to-date store migrates nothing and works. */
	g_assert_cmpint(link_store_open(fx->path, &s2, err, sizeof err), ==, LINK_STORE_OK);
	link_store_close(s2);
	s2 = NULL;
	pg_exec("UPDATE sealpost_schema SET version = 99");
	g_assert_cmpint(link_store_open(fx->path, &s2, err, sizeof err), ==, LINK_STORE_ERROR);
	g_assert_nonnull(strstr(err, "newer"));
	g_assert_null(s2);
	{
		char sql[64];
		snprintf(sql, sizeof sql, "UPDATE sealpost_schema SET version = %d",
		         LINK_STORE_SCHEMA_VERSION);
		pg_exec(sql);
	}
}

/* PostgreSQL: connections the server dropped (a restart, a failover, an
 * administrator) are replaced without an error: a read and a change right
 * after work, and the change is counted once. */
static void
test_pg_reconnect(struct fixture *fx, gconstpointer data)
{
	char err[SP_ERRLEN], id[SP_LINK_ID_HEXLEN + 1];
	uint64_t views = 0;
	struct sp_buf ct;

	if (!pg_url()) {
		g_test_skip("no PostgreSQL (SP_TEST_STORE_URL)");
		return;
	}
	g_assert_cmpint(put_msg(fx->s, 700, 1, 1700000000, 100, 0, 3, NULL), ==, LINK_STORE_OK);
	make_id(id, 700);
	pg_exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
	        "WHERE application_name = 'sealpost' AND pid <> pg_backend_pid()");
	assert_counts(fx->s, 1, 1);
	pg_exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
	        "WHERE application_name = 'sealpost' AND pid <> pg_backend_pid()");
	sp_buf_init(&ct, 0);
	g_assert_cmpint(link_store_claim_view(fx->s, id, 1700000000, &ct, &views, err, sizeof err),
	                ==, LINK_STORE_OK);
	g_assert_cmpuint(views, ==, 1);
	g_assert_cmpmem(ct.data, 13, MARKER, 13);
	sp_buf_free(&ct);
}

/* PostgreSQL: one sweeper at a time across nodes.  While another session
 * holds the sweep's advisory lock, a sweep deletes nothing (and is not an
 * error); once it is free, the same sweep deletes the dead rows. */
static void
test_pg_sweep_lock(struct fixture *fx, gconstpointer data)
{
	char err[SP_ERRLEN];
	unsigned nl = 99, nm = 99;
	PGconn *c;
	PGresult *r;

	if (!pg_url()) {
		g_test_skip("no PostgreSQL (SP_TEST_STORE_URL)");
		return;
	}
	g_assert_cmpint(put_msg(fx->s, 800, 2, 1700000000, 10, 0, 3, NULL), ==, LINK_STORE_OK);
	c = PQconnectdb(pg_url());
	g_assert_cmpint(PQstatus(c), ==, CONNECTION_OK);
	/* The key is link_store_pg.c's LOCK_SWEEP ("sealpost" + 1). */
	r = PQexec(c, "SELECT pg_advisory_lock(8315159405380203381)");
	g_assert_cmpint(PQresultStatus(r), ==, PGRES_TUPLES_OK);
	PQclear(r);
	g_assert_cmpint(link_store_sweep(fx->s, 1700000100, &nl, &nm, err, sizeof err), ==,
	                LINK_STORE_OK);
	g_assert_cmpuint(nl, ==, 0);
	g_assert_cmpuint(nm, ==, 0);
	assert_counts(fx->s, 2, 1);
	r = PQexec(c, "SELECT pg_advisory_unlock(8315159405380203381)");
	g_assert_cmpint(PQresultStatus(r), ==, PGRES_TUPLES_OK);
	PQclear(r);
	PQfinish(c);
	g_assert_cmpint(link_store_sweep(fx->s, 1700000100, &nl, &nm, err, sizeof err), ==,
	                LINK_STORE_OK);
	g_assert_cmpuint(nl, ==, 2);
	g_assert_cmpuint(nm, ==, 1);
	assert_counts(fx->s, 0, 0);
}

/* One number from the test database. */
static long
pg_value(const char *sql)
{
	PGconn *c = PQconnectdb(pg_url());
	PGresult *r;
	long v;

	g_assert_cmpint(PQstatus(c), ==, CONNECTION_OK);
	r = PQexec(c, sql);
	g_assert_cmpint(PQresultStatus(r), ==, PGRES_TUPLES_OK);
	v = atol(PQgetvalue(r, 0, 0));
	PQclear(r);
	PQfinish(c);
	return v;
}

/* Attempts under way, shared by every handle (node) on a PostgreSQL store;
 * SQLite leaves the count to the viewer's process. */
static void
test_attempts(struct fixture *fx, gconstpointer data)
{
	struct link_store *s2 = NULL;
	char err[SP_ERRLEN], id[SP_LINK_ID_HEXLEN + 1];
	int64_t now = 1700000000, t1, t2, t3, t4, t5;
	uint64_t others = 99;
	bool destroyed = false;
	int i;

	g_assert_cmpint(put_msg(fx->s, 900, 1, now, 100, 0, 3, NULL), ==, LINK_STORE_OK);
	make_id(id, 900);
	g_assert_cmpint(link_store_attempt_begin(fx->s, "not an id", now, &others, &t1, err,
	                                         sizeof err), ==, LINK_STORE_GONE);
	if (!pg_url()) {
		g_assert_cmpint(link_store_attempt_begin(fx->s, id, now, &others, &t1, err, sizeof err),
		                ==, LINK_STORE_OK);
		g_assert_cmpuint(others, ==, 0);
		g_assert_cmpint(t1, ==, 0);
		link_store_attempt_end(fx->s, t1);
		return;
	}
	g_assert_cmpint(link_store_attempt_begin(fx->s, "0000000000000000000000000000000f", now,
	                                         &others, &t1, err, sizeof err), ==, LINK_STORE_GONE);
	g_assert_cmpint(link_store_open(fx->path, &s2, err, sizeof err), ==, LINK_STORE_OK);
	g_assert_cmpint(link_store_attempt_begin(fx->s, id, now, &others, &t1, err, sizeof err), ==,
	                LINK_STORE_OK);
	g_assert_cmpuint(others, ==, 0);
	g_assert_cmpint(link_store_attempt_begin(s2, id, now, &others, &t2, err, sizeof err), ==,
	                LINK_STORE_OK);
	g_assert_cmpuint(others, ==, 1);
	g_assert_cmpint(link_store_attempt_begin(fx->s, id, now, &others, &t3, err, sizeof err), ==,
	                LINK_STORE_OK);
	g_assert_cmpuint(others, ==, 2);
	g_assert_true(t1 > 0 && t2 > 0 && t3 > 0 && t1 != t2 && t2 != t3 && t1 != t3);
	link_store_attempt_end(s2, t2);
	g_assert_cmpint(link_store_attempt_begin(s2, id, now, &others, &t4, err, sizeof err), ==,
	                LINK_STORE_OK);
	g_assert_cmpuint(others, ==, 2);
	/* Attempts never ended (their node died) stop counting after the TTL, and
	 * the sweep removes them. */
	g_assert_cmpint(link_store_attempt_begin(fx->s, id, now + LINK_STORE_ATTEMPT_TTL_S, &others,
	                                         &t5, err, sizeof err), ==, LINK_STORE_OK);
	g_assert_cmpuint(others, ==, 0);
	g_assert_cmpint(pg_value("SELECT count(*) FROM attempts"), ==, 4);
	g_assert_cmpint(link_store_sweep(fx->s, now + LINK_STORE_ATTEMPT_TTL_S, NULL, NULL, err,
	                                 sizeof err), ==, LINK_STORE_OK);
	g_assert_cmpint(pg_value("SELECT count(*) FROM attempts"), ==, 1);
	/* The link's destruction takes its attempts with it. */
	for (i = 0; i < 3; i++)
		g_assert_cmpint(link_store_fail(s2, id, now, &destroyed, err, sizeof err), ==,
		                LINK_STORE_OK);
	g_assert_true(destroyed);
	g_assert_cmpint(pg_value("SELECT count(*) FROM attempts"), ==, 0);
	link_store_attempt_end(fx->s, t5); /* nothing left to end: no error */
	link_store_close(s2);
}

/* ---- put / get ---- */

static void
test_put_get(struct fixture *fx, gconstpointer data)
{
	struct link_store_link l;
	char err[SP_ERRLEN], msg_id[LINK_STORE_MSGID_HEXLEN + 1], id[SP_LINK_ID_HEXLEN + 1];
	struct sp_buf ct;
	int64_t now = 1700000000;

	g_assert_cmpint(put_msg(fx->s, 10, 3, now, 3600, 0, 5, msg_id), ==, LINK_STORE_OK);
	g_assert_true(link_store_id_valid(msg_id));
	assert_counts(fx->s, 3, 1);

	make_id(id, 11);
	g_assert_cmpint(link_store_get(fx->s, id, now, &l, err, sizeof err), ==, LINK_STORE_OK);
	g_assert_cmpstr(l.id, ==, id);
	g_assert_cmpstr(l.message_id, ==, msg_id);
	g_assert_cmpmem(l.wrapped, l.wrapped_len, "WRAPPED-KEY-BLOB", 16);
	g_assert_cmpint(l.created, ==, now);
	g_assert_cmpint(l.expires, ==, now + 3600);
	g_assert_cmpuint(l.max_failed, ==, 5);
	g_assert_cmpuint(l.views, ==, 0);
	link_store_link_clear(&l);

	/* All links share one ciphertext. */
	sp_buf_init(&ct, 0);
	g_assert_cmpint(link_store_claim_view(fx->s, id, now, &ct, NULL, err, sizeof err), ==,
	                LINK_STORE_OK);
	g_assert_cmpstr(ct.data, ==, MARKER "00000010");
	sp_buf_free(&ct);

	/* Unknown and malformed ids look the same: gone. */
	make_id(id, 99);
	g_assert_cmpint(link_store_get(fx->s, id, now, &l, err, sizeof err), ==, LINK_STORE_GONE);
	g_assert_cmpint(link_store_get(fx->s, "nothex", now, &l, err, sizeof err), ==,
	                LINK_STORE_GONE);
	g_assert_cmpint(link_store_get(fx->s, "0000000000000000000000000000000A", now, &l, err,
	                               sizeof err), ==, LINK_STORE_GONE);
}

static void
test_put_atomic(struct fixture *fx, gconstpointer data)
{
	int64_t now = 1700000000;

	g_assert_cmpint(put_msg(fx->s, 20, 1, now, 60, 0, 5, NULL), ==, LINK_STORE_OK);
	/* Links 18, 19, 20: 20 is taken, so neither 18 nor 19 nor the message is stored. */
	g_assert_cmpint(put_msg(fx->s, 18, 3, now, 60, 0, 5, NULL), ==, LINK_STORE_EXISTS);
	assert_counts(fx->s, 1, 1);
	/* The store still works after the rolled-back transaction. */
	g_assert_cmpint(put_msg(fx->s, 30, 2, now, 60, 0, 5, NULL), ==, LINK_STORE_OK);
	assert_counts(fx->s, 3, 2);
}

struct put_case {
	const char *label;
	const char *id;
	size_t wrapped_len;
	size_t n_links;
	int64_t ttl;
	uint64_t max_failed;
	size_t ct_len;
	enum link_store_rc want;
};

static const struct put_case put_cases[] = {
	{ "ok", "0123456789abcdef0123456789abcdef", 16, 1, 60, 1, 4, LINK_STORE_OK },
	{ "uppercase id", "0123456789ABCDEF0123456789ABCDEF", 16, 1, 60, 1, 4, LINK_STORE_ERROR },
	{ "short id", "0123", 16, 1, 60, 1, 4, LINK_STORE_ERROR },
	{ "empty wrapped", "0123456789abcdef0123456789abcdef", 0, 1, 60, 1, 4, LINK_STORE_ERROR },
	{ "huge wrapped", "0123456789abcdef0123456789abcdef", LINK_STORE_WRAPPED_MAX + 1, 1, 60, 1, 4,
	  LINK_STORE_ERROR },
	{ "no links", "0123456789abcdef0123456789abcdef", 16, 0, 60, 1, 4, LINK_STORE_ERROR },
	{ "already expired", "0123456789abcdef0123456789abcdef", 16, 1, 0, 1, 4, LINK_STORE_ERROR },
	{ "max_failed 0", "0123456789abcdef0123456789abcdef", 16, 1, 60, 0, 4, LINK_STORE_ERROR },
	{ "empty ciphertext", "0123456789abcdef0123456789abcdef", 16, 1, 60, 1, 0, LINK_STORE_ERROR },
};

static void
test_put_validation(struct fixture *fx, gconstpointer data)
{
	static unsigned char blob[LINK_STORE_WRAPPED_MAX + 1];
	char err[SP_ERRLEN];
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(put_cases); i++) {
		const struct put_case *c = &put_cases[i];
		struct link_store_new_link l = { .wrapped = blob, .wrapped_len = c->wrapped_len };
		struct link_store_new_msg m = {
			.ciphertext = "abcd", .ciphertext_len = c->ct_len,
			.created = 1000, .expires = 1000 + c->ttl,
			.max_failed = c->max_failed, .links = &l, .n_links = c->n_links,
		};
		sp_strlcpy(l.id, c->id, sizeof l.id);
		err[0] = '\0';
		g_test_message("case %s", c->label);
		g_assert_cmpint(link_store_put(fx->s, &m, NULL, err, sizeof err), ==, c->want);
		if (c->want != LINK_STORE_OK)
			g_assert_cmpstr(err, !=, "");
		else
			g_assert_cmpint(link_store_revoke(fx->s, c->id, true, err, sizeof err), ==,
			                LINK_STORE_OK);
	}
	assert_counts(fx->s, 0, 0);
}

/* ---- liveness: a table of states and what get() answers ---- */

struct live_case {
	const char *label;
	uint64_t max_views;
	unsigned views;        /* successful claims before the check */
	uint64_t max_failed;
	unsigned fails;        /* failed attempts before the check */
	int64_t age;           /* seconds after creation of the check */
	enum link_store_rc want;
};

static const struct live_case live_cases[] = {
	{ "fresh", 0, 0, 3, 0, 0, LINK_STORE_OK },
	{ "unlimited, viewed", 0, 5, 3, 0, 10, LINK_STORE_OK },
	{ "one view left", 2, 1, 3, 0, 10, LINK_STORE_OK },
	{ "used up", 2, 2, 3, 0, 10, LINK_STORE_GONE },
	{ "burned", 1, 1, 3, 0, 0, LINK_STORE_GONE },
	{ "failed below limit", 0, 0, 3, 2, 0, LINK_STORE_OK },
	{ "failed at limit", 0, 0, 3, 3, 0, LINK_STORE_GONE },
	{ "just before expiry", 0, 0, 3, 0, 99, LINK_STORE_OK },
	{ "at expiry", 0, 0, 3, 0, 100, LINK_STORE_GONE },
	{ "long expired", 0, 0, 3, 0, 100000, LINK_STORE_GONE },
};

static void
test_liveness(struct fixture *fx, gconstpointer data)
{
	int64_t now = 1700000000;
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(live_cases); i++) {
		const struct live_case *c = &live_cases[i];
		char err[SP_ERRLEN], id[SP_LINK_ID_HEXLEN + 1];
		struct link_store_link l;
		unsigned k, base = 100 + (unsigned)i * 2;
		bool destroyed = false;

		g_test_message("case %s", c->label);
		/* Two links per message: the sibling keeps the message alive. */
		g_assert_cmpint(put_msg(fx->s, base, 2, now, 100, c->max_views, c->max_failed, NULL),
		                ==, LINK_STORE_OK);
		make_id(id, base);
		for (k = 0; k < c->views; k++) {
			struct sp_buf ct;
			sp_buf_init(&ct, 0);
			g_assert_cmpint(link_store_claim_view(fx->s, id, now, &ct, NULL, err, sizeof err),
			                ==, LINK_STORE_OK);
			sp_buf_free(&ct);
		}
		for (k = 0; k < c->fails; k++)
			g_assert_cmpint(link_store_fail(fx->s, id, now, &destroyed, err, sizeof err), ==,
			                LINK_STORE_OK);
		g_assert_cmpint(link_store_get(fx->s, id, now + c->age, &l, err, sizeof err), ==,
		                c->want);
		if (c->want == LINK_STORE_OK) {
			g_assert_cmpuint(l.views, ==, c->views);
			g_assert_cmpuint(l.failed, ==, c->fails);
		} else {
			/* Gone means deleted: a second look finds no row at all. */
			struct link_store_link *v;
			size_t n, j;
			g_assert_cmpint(link_store_list(fx->s, &v, &n, err, sizeof err), ==, LINK_STORE_OK);
			for (j = 0; j < n; j++)
				g_assert_cmpstr(v[j].id, !=, id);
			link_store_list_free(v, n);
		}
		link_store_link_clear(&l);
	}
}

/* ---- views, failures, revoke, sweep ---- */

static void
test_claim_burns(struct fixture *fx, gconstpointer data)
{
	char err[SP_ERRLEN], a[SP_LINK_ID_HEXLEN + 1], b[SP_LINK_ID_HEXLEN + 1];
	int64_t now = 1700000000;
	uint64_t views = 0;
	struct sp_buf ct;

	g_assert_cmpint(put_msg(fx->s, 200, 2, now, 100, 2, 3, NULL), ==, LINK_STORE_OK);
	make_id(a, 200);
	make_id(b, 201);
	sp_buf_init(&ct, 0);
	g_assert_cmpint(link_store_claim_view(fx->s, a, now, &ct, &views, err, sizeof err), ==,
	                LINK_STORE_OK);
	g_assert_cmpuint(views, ==, 1);
	sp_buf_reset(&ct);
	g_assert_cmpint(link_store_claim_view(fx->s, a, now, &ct, &views, err, sizeof err), ==,
	                LINK_STORE_OK);
	g_assert_cmpuint(views, ==, 2);
	g_assert_cmpstr(ct.data, ==, MARKER "00000200");
	/* The last view deleted link a in the same transaction; b keeps the message. */
	assert_counts(fx->s, 1, 1);
	sp_buf_reset(&ct);
	g_assert_cmpint(link_store_claim_view(fx->s, a, now, &ct, &views, err, sizeof err), ==,
	                LINK_STORE_GONE);
	g_assert_cmpuint(ct.len, ==, 0);
	/* An expired link gives nothing and is deleted, with its now orphaned message. */
	g_assert_cmpint(link_store_claim_view(fx->s, b, now + 100, &ct, &views, err, sizeof err), ==,
	                LINK_STORE_GONE);
	g_assert_cmpuint(ct.len, ==, 0);
	assert_counts(fx->s, 0, 0);
	sp_buf_free(&ct);
}

static void
test_fail_destroys(struct fixture *fx, gconstpointer data)
{
	char err[SP_ERRLEN], a[SP_LINK_ID_HEXLEN + 1], b[SP_LINK_ID_HEXLEN + 1];
	int64_t now = 1700000000;
	bool destroyed = true;
	unsigned i;

	g_assert_cmpint(put_msg(fx->s, 300, 2, now, 100, 0, 3, NULL), ==, LINK_STORE_OK);
	make_id(a, 300);
	make_id(b, 301);
	for (i = 0; i < 2; i++) {
		g_assert_cmpint(link_store_fail(fx->s, a, now, &destroyed, err, sizeof err), ==,
		                LINK_STORE_OK);
		g_assert_false(destroyed);
	}
	g_assert_cmpint(link_store_fail(fx->s, a, now, &destroyed, err, sizeof err), ==,
	                LINK_STORE_OK);
	g_assert_true(destroyed);
	assert_counts(fx->s, 1, 1);
	g_assert_cmpint(link_store_fail(fx->s, a, now, &destroyed, err, sizeof err), ==,
	                LINK_STORE_GONE);
	/* Destroying the last link of a message destroys the message. */
	for (i = 0; i < 3; i++)
		g_assert_cmpint(link_store_fail(fx->s, b, now, &destroyed, err, sizeof err), ==,
		                LINK_STORE_OK);
	g_assert_true(destroyed);
	assert_counts(fx->s, 0, 0);
}

static void
test_revoke(struct fixture *fx, gconstpointer data)
{
	char err[SP_ERRLEN], id[SP_LINK_ID_HEXLEN + 1];
	int64_t now = 1700000000;

	g_assert_cmpint(put_msg(fx->s, 400, 3, now, 100, 0, 3, NULL), ==, LINK_STORE_OK);
	g_assert_cmpint(put_msg(fx->s, 410, 2, now, 100, 0, 3, NULL), ==, LINK_STORE_OK);
	make_id(id, 401);
	g_assert_cmpint(link_store_revoke(fx->s, id, false, err, sizeof err), ==, LINK_STORE_OK);
	assert_counts(fx->s, 4, 2);
	g_assert_cmpint(link_store_revoke(fx->s, id, false, err, sizeof err), ==, LINK_STORE_GONE);
	make_id(id, 400);
	g_assert_cmpint(link_store_revoke(fx->s, id, true, err, sizeof err), ==, LINK_STORE_OK);
	assert_counts(fx->s, 2, 1);
	make_id(id, 402);
	g_assert_cmpint(link_store_revoke(fx->s, id, true, err, sizeof err), ==, LINK_STORE_GONE);
}

static void
test_sweep_list(struct fixture *fx, gconstpointer data)
{
	char err[SP_ERRLEN], id[SP_LINK_ID_HEXLEN + 1];
	struct link_store_link *v;
	int64_t now = 1700000000;
	unsigned nl = 0, nm = 0;
	struct sp_buf ct;
	size_t n;

	g_assert_cmpint(put_msg(fx->s, 500, 2, now, 10, 0, 3, NULL), ==, LINK_STORE_OK);     /* expires */
	g_assert_cmpint(put_msg(fx->s, 510, 1, now + 1, 1000, 1, 3, NULL), ==, LINK_STORE_OK); /* burned */
	g_assert_cmpint(put_msg(fx->s, 520, 2, now + 2, 1000, 0, 3, NULL), ==, LINK_STORE_OK); /* stays */
	make_id(id, 510);
	sp_buf_init(&ct, 0);
	g_assert_cmpint(link_store_claim_view(fx->s, id, now, &ct, NULL, err, sizeof err), ==,
	                LINK_STORE_OK);
	sp_buf_free(&ct);

	g_assert_cmpint(link_store_list(fx->s, &v, &n, err, sizeof err), ==, LINK_STORE_OK);
	g_assert_cmpuint(n, ==, 4);
	make_id(id, 520);
	g_assert_cmpstr(v[0].id, ==, id); /* newest first */
	g_assert_null(v[0].wrapped);
	link_store_list_free(v, n);

	g_assert_cmpint(link_store_sweep(fx->s, now + 5, &nl, &nm, err, sizeof err), ==, LINK_STORE_OK);
	g_assert_cmpuint(nl, ==, 0);
	g_assert_cmpuint(nm, ==, 0);
	g_assert_cmpint(link_store_sweep(fx->s, now + 10, &nl, &nm, err, sizeof err), ==,
	                LINK_STORE_OK);
	g_assert_cmpuint(nl, ==, 2);
	g_assert_cmpuint(nm, ==, 1);
	assert_counts(fx->s, 2, 1);
}

/* Deleted ciphertext must not survive anywhere in the store's files. */
static bool
files_contain(const char *path, const char *needle)
{
	static const char *const suffixes[] = { "", "-wal", "-journal" };
	bool found = false;
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(suffixes); i++) {
		char *p = g_strconcat(path, suffixes[i], NULL), *data = NULL;
		gsize len = 0;
		if (g_file_get_contents(p, &data, &len, NULL) && len >= strlen(needle) &&
		    memmem(data, len, needle, strlen(needle)) != NULL)
			found = true;
		g_free(data);
		g_free(p);
	}
	return found;
}

static void
test_really_deleted(struct fixture *fx, gconstpointer data)
{
	char err[SP_ERRLEN], id[SP_LINK_ID_HEXLEN + 1];
	int64_t now = 1700000000;

	if (pg_url()) {
		g_test_skip("SQLite's files (PostgreSQL: docs/viewer.md, deletion)");
		return;
	}
	g_assert_cmpint(put_msg(fx->s, 600, 1, now, 100, 0, 3, NULL), ==, LINK_STORE_OK);
	g_assert_cmpint(put_msg(fx->s, 610, 1, now, 100, 0, 3, NULL), ==, LINK_STORE_OK);
	g_assert_true(files_contain(fx->path, MARKER "00000600"));
	make_id(id, 600);
	g_assert_cmpint(link_store_revoke(fx->s, id, true, err, sizeof err), ==, LINK_STORE_OK);
	g_assert_false(files_contain(fx->path, MARKER "00000600"));
	g_assert_true(files_contain(fx->path, MARKER "00000610"));
	g_assert_cmpint(link_store_sweep(fx->s, now + 100, NULL, NULL, err, sizeof err), ==,
	                LINK_STORE_OK);
	g_assert_false(files_contain(fx->path, MARKER "00000610"));
}

/* ---- the burn-after-reading race ---- */

#define RACE_THREADS 8
#define RACE_ROUNDS 20

struct racer {
	struct link_store *s;   /* shared handle, or NULL: open a connection of its own */
	const char *path;
	const char *id;
	pthread_barrier_t *barrier;
	enum link_store_rc rc;
};

static void *
race_thread(void *arg)
{
	struct racer *r = arg;
	struct link_store *s = r->s;
	char err[SP_ERRLEN];
	struct sp_buf ct;

	if (s == NULL)
		g_assert_cmpint(link_store_open(r->path, &s, err, sizeof err), ==, LINK_STORE_OK);
	sp_buf_init(&ct, 0);
	pthread_barrier_wait(r->barrier);
	r->rc = link_store_claim_view(s, r->id, 1700000000, &ct, NULL, err, sizeof err);
	if (r->rc == LINK_STORE_OK)
		g_assert_cmpmem(ct.data, 13, MARKER, 13);
	else
		g_assert_cmpuint(ct.len, ==, 0);
	sp_buf_free(&ct);
	if (r->s == NULL)
		link_store_close(s);
	return NULL;
}

static void
run_race(struct fixture *fx, bool shared_handle)
{
	int round;

	for (round = 0; round < RACE_ROUNDS; round++) {
		struct racer r[RACE_THREADS];
		pthread_t t[RACE_THREADS];
		pthread_barrier_t barrier;
		char id[SP_LINK_ID_HEXLEN + 1];
		unsigned winners = 0, base = 1000 + (unsigned)round + (shared_handle ? 500 : 0);
		int i;

		g_assert_cmpint(put_msg(fx->s, base, 1, 1700000000, 100, 1, 3, NULL), ==,
		                LINK_STORE_OK);
		make_id(id, base);
		pthread_barrier_init(&barrier, NULL, RACE_THREADS);
		for (i = 0; i < RACE_THREADS; i++) {
			r[i] = (struct racer){ .s = shared_handle ? fx->s : NULL, .path = fx->path,
			                       .id = id, .barrier = &barrier };
			g_assert_cmpint(pthread_create(&t[i], NULL, race_thread, &r[i]), ==, 0);
		}
		for (i = 0; i < RACE_THREADS; i++) {
			pthread_join(t[i], NULL);
			g_assert_cmpint(r[i].rc, !=, LINK_STORE_ERROR);
			winners += r[i].rc == LINK_STORE_OK;
		}
		pthread_barrier_destroy(&barrier);
		g_assert_cmpuint(winners, ==, 1);
	}
	assert_counts(fx->s, 0, 0);
}

static void
test_race_connections(struct fixture *fx, gconstpointer data)
{
	run_race(fx, false);
}

static void
test_race_shared(struct fixture *fx, gconstpointer data)
{
	run_race(fx, true);
}

/* Two processes, each with its own connection, released at once by a pipe. */
static void
test_race_processes(struct fixture *fx, gconstpointer data)
{
	int round;

	for (round = 0; round < 10; round++) {
		char id[SP_LINK_ID_HEXLEN + 1];
		int go[2], ready[2], i, winners = 0;
		pid_t pid[2];

		g_assert_cmpint(put_msg(fx->s, 2000 + (unsigned)round, 1, 1700000000, 100, 1, 3, NULL),
		                ==, LINK_STORE_OK);
		make_id(id, 2000 + (unsigned)round);
		g_assert_cmpint(pipe(go), ==, 0);
		g_assert_cmpint(pipe(ready), ==, 0);
		for (i = 0; i < 2; i++) {
			pid[i] = fork();
			g_assert_cmpint(pid[i], >=, 0);
			if (pid[i] == 0) {
				struct link_store *s;
				char err[SP_ERRLEN], c;
				struct sp_buf ct;
				enum link_store_rc rc;

				close(go[1]);
				close(ready[0]);
				if (link_store_open(fx->path, &s, err, sizeof err) != LINK_STORE_OK)
					_exit(3);
				if (write(ready[1], "r", 1) != 1 || read(go[0], &c, 1) != 1)
					_exit(4);
				sp_buf_init(&ct, 0);
				rc = link_store_claim_view(s, id, 1700000000, &ct, NULL, err, sizeof err);
				link_store_close(s);
				_exit(rc == LINK_STORE_OK ? 0 : rc == LINK_STORE_GONE ? 1 : 2);
			}
		}
		close(go[0]);
		close(ready[1]);
		for (i = 0; i < 2; i++) {
			char c;
			g_assert_cmpint(read(ready[0], &c, 1), ==, 1);
		}
		g_assert_cmpint(write(go[1], "gg", 2), ==, 2);
		close(go[1]);
		close(ready[0]);
		for (i = 0; i < 2; i++) {
			int status;
			g_assert_cmpint(waitpid(pid[i], &status, 0), ==, pid[i]);
			g_assert_true(WIFEXITED(status));
			g_assert_cmpint(WEXITSTATUS(status), <=, 1);
			winners += WEXITSTATUS(status) == 0;
		}
		g_assert_cmpint(winners, ==, 1);
	}
	assert_counts(fx->s, 0, 0);
}

/* ---- link v2: evaluate, prove, pending attempts ---- */

#define V2_NOW 1700000000

static void
attempt_id(unsigned char a[LINK_STORE_ATTEMPT_BYTES], unsigned n)
{
	memset(a, 0, LINK_STORE_ATTEMPT_BYTES);
	memcpy(a, &n, sizeof n);
}

static enum link_store_rc
v2_eval(struct link_store *s, const char *id, unsigned n, int64_t now)
{
	unsigned char a[LINK_STORE_ATTEMPT_BYTES];
	struct link_store_link l;
	char err[SP_ERRLEN];
	enum link_store_rc rc;

	attempt_id(a, n);
	rc = link_store_evaluate(s, id, now, a, &l, err, sizeof err);
	if (rc == LINK_STORE_OK) {
		/* The record comes back with the count: the viewer answers from it. */
		g_assert_cmpuint(l.wrapped_len, ==, 16);
		g_assert_cmpmem(l.wrapped, 16, "WRAPPED-KEY-BLOB", 16);
	} else {
		g_assert_null(l.wrapped);
	}
	link_store_link_clear(&l);
	return rc;
}

static enum link_store_rc
v2_prove(struct link_store *s, const char *id, unsigned n, bool valid, int64_t now,
         bool *destroyed)
{
	unsigned char a[LINK_STORE_ATTEMPT_BYTES];
	char err[SP_ERRLEN];
	struct sp_buf ct;
	enum link_store_rc rc;
	uint64_t views = 0;

	attempt_id(a, n);
	sp_buf_init(&ct, 0);
	rc = link_store_prove(s, id, now, a, valid, &ct, &views, destroyed, err, sizeof err);
	if (rc == LINK_STORE_OK) {
		g_assert_cmpmem(ct.data, 13, MARKER, 13);
		g_assert_cmpuint(views, >=, 1);
	} else {
		g_assert_cmpuint(ct.len, ==, 0);
	}
	sp_buf_free(&ct);
	return rc;
}

static uint64_t
v2_failed(struct link_store *s, const char *id)
{
	struct link_store_link l;
	char err[SP_ERRLEN];
	uint64_t f;

	g_assert_cmpint(link_store_get(s, id, V2_NOW, &l, err, sizeof err), ==, LINK_STORE_OK);
	f = l.failed;
	link_store_link_clear(&l);
	return f;
}

static unsigned
v2_pending(struct link_store *s, const char *id)
{
	char err[SP_ERRLEN];
	unsigned n = 99;

	g_assert_cmpint(link_store_pending_count(s, id, &n, err, sizeof err), ==, LINK_STORE_OK);
	return n;
}

/* Every evaluation counts before it is answered, a proof uncounts it, a wrong
 * proof settles it as a failure, an attempt is proven once, a right password
 * after wrong ones works, and the cap destroys the link only when nothing is
 * pending. */
static void
test_v2_protocol(struct fixture *fx, gconstpointer data)
{
	char id[SP_LINK_ID_HEXLEN + 1];
	bool destroyed = true;

	g_assert_cmpint(put_msg(fx->s, 4000, 1, V2_NOW, 100, 0, 3, NULL), ==, LINK_STORE_OK);
	make_id(id, 4000);
	/* Right password: counted while pending, uncounted by its proof. */
	g_assert_cmpint(v2_eval(fx->s, id, 1, V2_NOW), ==, LINK_STORE_OK);
	g_assert_cmpuint(v2_pending(fx->s, id), ==, 1);
	g_assert_cmpint(v2_prove(fx->s, id, 1, true, V2_NOW, &destroyed), ==, LINK_STORE_OK);
	g_assert_false(destroyed);
	g_assert_cmpuint(v2_pending(fx->s, id), ==, 0);
	g_assert_cmpuint(v2_failed(fx->s, id), ==, 0);
	/* Replayed: the attempt is gone, nothing is released or counted. */
	g_assert_cmpint(v2_prove(fx->s, id, 1, true, V2_NOW, NULL), ==, LINK_STORE_STALE);
	g_assert_cmpint(v2_prove(fx->s, id, 77, true, V2_NOW, NULL), ==, LINK_STORE_STALE);
	g_assert_cmpuint(v2_failed(fx->s, id), ==, 0);
	/* Wrong password: settled as a failure; its attempt cannot be retried. */
	g_assert_cmpint(v2_eval(fx->s, id, 2, V2_NOW), ==, LINK_STORE_OK);
	g_assert_cmpint(v2_prove(fx->s, id, 2, false, V2_NOW, &destroyed), ==, LINK_STORE_WRONG);
	g_assert_false(destroyed);
	g_assert_cmpuint(v2_failed(fx->s, id), ==, 1);
	g_assert_cmpint(v2_prove(fx->s, id, 2, true, V2_NOW, NULL), ==, LINK_STORE_STALE);
	/* failed 1 + 2 pending = max_failed: a fourth is refused, not counted. */
	g_assert_cmpint(v2_eval(fx->s, id, 3, V2_NOW), ==, LINK_STORE_OK);
	g_assert_cmpint(v2_eval(fx->s, id, 4, V2_NOW), ==, LINK_STORE_OK);
	g_assert_cmpint(v2_eval(fx->s, id, 5, V2_NOW), ==, LINK_STORE_BUSY);
	g_assert_cmpuint(v2_pending(fx->s, id), ==, 2);
	/* The right password after the wrong ones still opens. */
	g_assert_cmpint(v2_prove(fx->s, id, 3, true, V2_NOW, NULL), ==, LINK_STORE_OK);
	g_assert_cmpint(v2_prove(fx->s, id, 4, false, V2_NOW, &destroyed), ==, LINK_STORE_WRONG);
	g_assert_false(destroyed);
	g_assert_cmpuint(v2_failed(fx->s, id), ==, 2);
	/* The last attempt, wrong: the link and its message are destroyed. */
	g_assert_cmpint(v2_eval(fx->s, id, 6, V2_NOW), ==, LINK_STORE_OK);
	g_assert_cmpint(v2_prove(fx->s, id, 6, false, V2_NOW, &destroyed), ==, LINK_STORE_WRONG);
	g_assert_true(destroyed);
	assert_counts(fx->s, 0, 0);
	g_assert_cmpint(v2_eval(fx->s, id, 7, V2_NOW), ==, LINK_STORE_GONE);
}

/* Sender and hint are kept per link for the page before the password. */
static void
test_v2_sender_hint(struct fixture *fx, gconstpointer data)
{
	struct link_store_new_link link = { .wrapped = "WRAPPED-KEY-BLOB", .wrapped_len = 16 };
	struct link_store_new_msg m = {
		.ciphertext = MARKER "x", .ciphertext_len = 14, .created = V2_NOW,
		.expires = V2_NOW + 100, .max_failed = 3, .links = &link, .n_links = 1,
		.sender = "Ann \xc3\x84rzt <ann@example.org>", .hint = "the caf\xc3\xa9",
	};
	char err[SP_ERRLEN], big[LINK_STORE_HINT_MAX + 1];
	struct link_store_link l;

	make_id(link.id, 4100);
	g_assert_cmpint(link_store_put(fx->s, &m, NULL, err, sizeof err), ==, LINK_STORE_OK);
	g_assert_cmpint(link_store_get(fx->s, link.id, V2_NOW, &l, err, sizeof err), ==,
	                LINK_STORE_OK);
	g_assert_cmpstr(l.sender, ==, m.sender);
	g_assert_cmpstr(l.hint, ==, m.hint);
	link_store_link_clear(&l);
	memset(big, 'h', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	m.hint = big;
	make_id(link.id, 4101);
	g_assert_cmpint(link_store_put(fx->s, &m, NULL, err, sizeof err), ==, LINK_STORE_ERROR);
}

/* Pending attempts per link are bounded whatever max_failed is. */
static void
test_v2_pending_cap(struct fixture *fx, gconstpointer data)
{
	char id[SP_LINK_ID_HEXLEN + 1];
	unsigned i;

	g_assert_cmpint(put_msg(fx->s, 4200, 1, V2_NOW, 100, 0, 1000, NULL), ==, LINK_STORE_OK);
	make_id(id, 4200);
	for (i = 0; i < LINK_STORE_PENDING_MAX; i++)
		g_assert_cmpint(v2_eval(fx->s, id, i, V2_NOW), ==, LINK_STORE_OK);
	g_assert_cmpint(v2_eval(fx->s, id, i, V2_NOW), ==, LINK_STORE_BUSY);
	g_assert_cmpuint(v2_pending(fx->s, id), ==, LINK_STORE_PENDING_MAX);
	g_assert_cmpuint(v2_failed(fx->s, id), ==, 0);
}

/* Attempts never proven stay counted: the sweep settles them as failures, a
 * late proof is refused and counted, and at the cap the link goes. */
static void
test_v2_expiry(struct fixture *fx, gconstpointer data)
{
	char id[SP_LINK_ID_HEXLEN + 1], err[SP_ERRLEN];
	int64_t later = V2_NOW + LINK_STORE_PENDING_TTL_S;
	unsigned nl = 0, nm = 0;

	g_assert_cmpint(put_msg(fx->s, 4300, 1, V2_NOW, 100000, 0, 3, NULL), ==, LINK_STORE_OK);
	make_id(id, 4300);
	g_assert_cmpint(v2_eval(fx->s, id, 1, V2_NOW), ==, LINK_STORE_OK);
	g_assert_cmpint(v2_eval(fx->s, id, 2, V2_NOW), ==, LINK_STORE_OK);
	/* A proof after the attempt's expiry: refused even if right, counted. */
	g_assert_cmpint(v2_prove(fx->s, id, 1, true, later, NULL), ==, LINK_STORE_STALE);
	g_assert_cmpuint(v2_failed(fx->s, id), ==, 1);
	/* The sweep before the expiry leaves the other alone ... */
	g_assert_cmpint(link_store_sweep(fx->s, later - 1, &nl, &nm, err, sizeof err), ==,
	                LINK_STORE_OK);
	g_assert_cmpuint(v2_pending(fx->s, id), ==, 1);
	/* ... and at it settles it as a failure. */
	g_assert_cmpint(link_store_sweep(fx->s, later, &nl, &nm, err, sizeof err), ==,
	                LINK_STORE_OK);
	g_assert_cmpuint(v2_pending(fx->s, id), ==, 0);
	g_assert_cmpuint(v2_failed(fx->s, id), ==, 2);
	/* The third and last attempt expires too: the sweep destroys the link. */
	g_assert_cmpint(v2_eval(fx->s, id, 3, V2_NOW), ==, LINK_STORE_OK);
	g_assert_cmpint(link_store_sweep(fx->s, later, &nl, &nm, err, sizeof err), ==,
	                LINK_STORE_OK);
	g_assert_cmpuint(nl, ==, 1);
	g_assert_cmpuint(nm, ==, 1);
	assert_counts(fx->s, 0, 0);
}

struct prover {
	const char *path;
	const char *id;
	unsigned n;
	pthread_barrier_t *barrier;
	enum link_store_rc rc;
};

static void *
prove_thread(void *arg)
{
	struct prover *p = arg;
	struct link_store *s;
	char err[SP_ERRLEN];

	g_assert_cmpint(link_store_open(p->path, &s, err, sizeof err), ==, LINK_STORE_OK);
	pthread_barrier_wait(p->barrier);
	p->rc = v2_prove(s, p->id, p->n, true, V2_NOW, NULL);
	link_store_close(s);
	return NULL;
}

/* Concurrent right proofs of a max_views = 1 link: exactly one winner. */
static void
test_v2_race(struct fixture *fx, gconstpointer data)
{
	int round;

	for (round = 0; round < 10; round++) {
		struct prover p[RACE_THREADS];
		pthread_t t[RACE_THREADS];
		pthread_barrier_t barrier;
		char id[SP_LINK_ID_HEXLEN + 1];
		unsigned winners = 0, base = 4400 + (unsigned)round;
		int i;

		g_assert_cmpint(put_msg(fx->s, base, 1, V2_NOW, 100, 1, RACE_THREADS + 1, NULL), ==,
		                LINK_STORE_OK);
		make_id(id, base);
		for (i = 0; i < RACE_THREADS; i++)
			g_assert_cmpint(v2_eval(fx->s, id, (unsigned)i, V2_NOW), ==, LINK_STORE_OK);
		pthread_barrier_init(&barrier, NULL, RACE_THREADS);
		for (i = 0; i < RACE_THREADS; i++) {
			p[i] = (struct prover){ .path = fx->path, .id = id, .n = (unsigned)i,
			                        .barrier = &barrier };
			g_assert_cmpint(pthread_create(&t[i], NULL, prove_thread, &p[i]), ==, 0);
		}
		for (i = 0; i < RACE_THREADS; i++) {
			pthread_join(t[i], NULL);
			g_assert_cmpint(p[i].rc, !=, LINK_STORE_ERROR);
			winners += p[i].rc == LINK_STORE_OK;
		}
		pthread_barrier_destroy(&barrier);
		g_assert_cmpuint(winners, ==, 1);
	}
	assert_counts(fx->s, 0, 0);
}

/* Secure reply: a capability outlives its burnt link, takes replies only on
 * its own link and within the limits, keeps them in order until deleted, and
 * goes at the sweep once the link would have expired. */
static void
test_replies(struct fixture *fx, gconstpointer data)
{
	unsigned char cap[LINK_STORE_REPLY_CAP_BYTES], other[LINK_STORE_REPLY_CAP_BYTES];
	struct link_store_reply_limits lim = { .max_count = 2, .min_interval_s = 10 };
	struct link_store_reply *v = NULL;
	char id[SP_LINK_ID_HEXLEN + 1], id2[SP_LINK_ID_HEXLEN + 1], err[SP_ERRLEN];
	struct sp_buf ct;
	int64_t now = 1700000000;
	size_t n = 0;

	(void)data;
	make_id(id, 900);
	make_id(id2, 901);
	memset(cap, 0xA5, sizeof cap);
	memset(other, 0x5A, sizeof other);
	g_assert_cmpint(put_msg(fx->s, 900, 2, now, 100, 1, 3, NULL), ==, LINK_STORE_OK);
	g_assert_cmpint(link_store_reply_cap_put(fx->s, id, "Alice <alice@example.com>", now + 100,
	                                         cap, err, sizeof err), ==, LINK_STORE_OK);
	/* The link's last view burns it; the capability stays. */
	sp_buf_init(&ct, 0);
	g_assert_cmpint(link_store_claim_view(fx->s, id, now, &ct, NULL, err, sizeof err), ==,
	                LINK_STORE_OK);
	sp_buf_free(&ct);
	g_assert_cmpint(link_store_reply_cap_check(fx->s, cap, id, now, err, sizeof err), ==,
	                LINK_STORE_OK);
	g_assert_cmpint(link_store_reply_cap_check(fx->s, cap, id2, now, err, sizeof err), ==,
	                LINK_STORE_GONE);
	g_assert_cmpint(link_store_reply_cap_check(fx->s, other, id, now, err, sizeof err), ==,
	                LINK_STORE_GONE);
	g_assert_cmpint(link_store_reply_cap_check(fx->s, cap, id, now + 100, err, sizeof err), ==,
	                LINK_STORE_GONE);
	g_assert_cmpint(link_store_reply_put(fx->s, other, id, now, &lim, "", "", "x", 1, err,
	                                     sizeof err), ==, LINK_STORE_GONE);
	g_assert_cmpint(link_store_reply_put(fx->s, cap, id2, now, &lim, "", "", "x", 1, err,
	                                     sizeof err), ==, LINK_STORE_GONE);
	g_assert_cmpint(link_store_reply_put(fx->s, cap, id, now, &lim, "dave@example.org",
	                                     "<1@example.com>", "CIPHER-1", 8, err, sizeof err),
	                ==, LINK_STORE_OK);
	g_assert_cmpint(link_store_reply_put(fx->s, cap, id, now + 9, &lim, "", "", "CIPHER-X", 8,
	                                     err, sizeof err), ==, LINK_STORE_BUSY);
	g_assert_cmpint(link_store_reply_put(fx->s, cap, id, now + 10, &lim, "", "", "CIPHER-2", 8,
	                                     err, sizeof err), ==, LINK_STORE_OK);
	g_assert_cmpint(link_store_reply_put(fx->s, cap, id, now + 50, &lim, "", "", "CIPHER-3", 8,
	                                     err, sizeof err), ==, LINK_STORE_FULL);
	g_assert_cmpint(link_store_reply_take(fx->s, 16, &v, &n, err, sizeof err), ==, LINK_STORE_OK);
	g_assert_cmpuint(n, ==, 2);
	g_assert_cmpstr(v[0].link_id, ==, id);
	g_assert_cmpstr(v[0].sender, ==, "Alice <alice@example.com>");
	g_assert_cmpstr(v[0].rcpt, ==, "dave@example.org");
	g_assert_cmpstr(v[0].in_reply_to, ==, "<1@example.com>");
	g_assert_cmpuint(v[0].body_len, ==, 8);
	g_assert_cmpmem(v[0].body, 8, "CIPHER-1", 8);
	g_assert_cmpmem(v[1].body, v[1].body_len, "CIPHER-2", 8);
	g_assert_cmpint(link_store_reply_delete(fx->s, v[0].id, err, sizeof err), ==, LINK_STORE_OK);
	g_assert_cmpint(link_store_reply_delete(fx->s, v[0].id, err, sizeof err), ==,
	                LINK_STORE_GONE);
	link_store_reply_free(v, n);
	g_assert_cmpint(link_store_reply_take(fx->s, 16, &v, &n, err, sizeof err), ==, LINK_STORE_OK);
	g_assert_cmpuint(n, ==, 1);
	g_assert_cmpmem(v[0].body, v[0].body_len, "CIPHER-2", 8);
	link_store_reply_free(v, n);
	/* At the link's expiry the capability goes; stored replies stay. */
	lim.max_count = 100;
	g_assert_cmpint(link_store_sweep(fx->s, now + 100, NULL, NULL, err, sizeof err), ==,
	                LINK_STORE_OK);
	g_assert_cmpint(link_store_reply_put(fx->s, cap, id, now + 60, &lim, "", "", "CIPHER-4", 8,
	                                     err, sizeof err), ==, LINK_STORE_GONE);
	g_assert_cmpint(link_store_reply_take(fx->s, 16, &v, &n, err, sizeof err), ==, LINK_STORE_OK);
	g_assert_cmpuint(n, ==, 1);
	link_store_reply_free(v, n);
}

/* ---- durability: which commits fsync ----
 *
 * A VFS that forwards every call to the default one and counts the syncs of
 * "-wal" files: registered as the default before any store is opened (SQLite
 * runs only), it changes nothing but lets a test see which commits are
 * fsynced (docs/formats.md "Durability"). */

static sqlite3_vfs *real_vfs;
static sqlite3_vfs count_vfs;
static unsigned wal_syncs;

struct count_file {
	sqlite3_file base;
	bool wal;
	sqlite3_file *real; /* follows this struct, real_vfs->szOsFile bytes */
};

#define REAL(f) (((struct count_file *)(f))->real)

static int cf_close(sqlite3_file *f) { return REAL(f)->pMethods->xClose(REAL(f)); }
static int cf_read(sqlite3_file *f, void *b, int n, sqlite3_int64 o)
	{ return REAL(f)->pMethods->xRead(REAL(f), b, n, o); }
static int cf_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 o)
	{ return REAL(f)->pMethods->xWrite(REAL(f), b, n, o); }
static int cf_truncate(sqlite3_file *f, sqlite3_int64 n)
	{ return REAL(f)->pMethods->xTruncate(REAL(f), n); }
static int
cf_sync(sqlite3_file *f, int flags)
{
	if (((struct count_file *)f)->wal)
		__atomic_add_fetch(&wal_syncs, 1, __ATOMIC_SEQ_CST);
	return REAL(f)->pMethods->xSync(REAL(f), flags);
}
static int cf_size(sqlite3_file *f, sqlite3_int64 *n) { return REAL(f)->pMethods->xFileSize(REAL(f), n); }
static int cf_lock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xLock(REAL(f), l); }
static int cf_unlock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xUnlock(REAL(f), l); }
static int cf_reserved(sqlite3_file *f, int *r)
	{ return REAL(f)->pMethods->xCheckReservedLock(REAL(f), r); }
static int cf_fcntl(sqlite3_file *f, int op, void *a)
	{ return REAL(f)->pMethods->xFileControl(REAL(f), op, a); }
static int cf_sector(sqlite3_file *f) { return REAL(f)->pMethods->xSectorSize(REAL(f)); }
static int cf_devchar(sqlite3_file *f) { return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f)); }
static int cf_shm_map(sqlite3_file *f, int pg, int sz, int ext, void volatile **p)
	{ return REAL(f)->pMethods->xShmMap(REAL(f), pg, sz, ext, p); }
static int cf_shm_lock(sqlite3_file *f, int off, int n, int fl)
	{ return REAL(f)->pMethods->xShmLock(REAL(f), off, n, fl); }
static void cf_shm_barrier(sqlite3_file *f) { REAL(f)->pMethods->xShmBarrier(REAL(f)); }
static int cf_shm_unmap(sqlite3_file *f, int del) { return REAL(f)->pMethods->xShmUnmap(REAL(f), del); }
static int cf_fetch(sqlite3_file *f, sqlite3_int64 o, int n, void **p)
	{ return REAL(f)->pMethods->xFetch(REAL(f), o, n, p); }
static int cf_unfetch(sqlite3_file *f, sqlite3_int64 o, void *p)
	{ return REAL(f)->pMethods->xUnfetch(REAL(f), o, p); }

static const sqlite3_io_methods count_io = {
	3, cf_close, cf_read, cf_write, cf_truncate, cf_sync, cf_size, cf_lock, cf_unlock,
	cf_reserved, cf_fcntl, cf_sector, cf_devchar, cf_shm_map, cf_shm_lock, cf_shm_barrier,
	cf_shm_unmap, cf_fetch, cf_unfetch,
};

static int
cf_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
	struct count_file *c = (struct count_file *)f;
	int rc;

	c->real = (sqlite3_file *)(c + 1);
	c->wal = (flags & SQLITE_OPEN_WAL) != 0;
	rc = real_vfs->xOpen(real_vfs, name, c->real, flags, out_flags);
	/* SQLite calls xClose whenever pMethods is set, so set it only when the
	 * real file is open. */
	c->base.pMethods = c->real->pMethods ? &count_io : NULL;
	return rc;
}

static int cv_delete(sqlite3_vfs *v, const char *n, int sync) { return real_vfs->xDelete(real_vfs, n, sync); }
static int cv_access(sqlite3_vfs *v, const char *n, int fl, int *r) { return real_vfs->xAccess(real_vfs, n, fl, r); }
static int cv_full(sqlite3_vfs *v, const char *n, int sz, char *out)
	{ return real_vfs->xFullPathname(real_vfs, n, sz, out); }
static int cv_random(sqlite3_vfs *v, int n, char *out) { return real_vfs->xRandomness(real_vfs, n, out); }
static int cv_sleep(sqlite3_vfs *v, int us) { return real_vfs->xSleep(real_vfs, us); }
static int cv_time(sqlite3_vfs *v, sqlite3_int64 *t) { return real_vfs->xCurrentTimeInt64(real_vfs, t); }
static int cv_lasterr(sqlite3_vfs *v, int n, char *out) { return real_vfs->xGetLastError(real_vfs, n, out); }

static void
count_vfs_register(void)
{
	real_vfs = sqlite3_vfs_find(NULL);
	g_assert_nonnull(real_vfs);
	count_vfs = (sqlite3_vfs){
		.iVersion = 2, .szOsFile = (int)sizeof(struct count_file) + real_vfs->szOsFile,
		.mxPathname = real_vfs->mxPathname, .zName = "sp-count-syncs",
		.xOpen = cf_open, .xDelete = cv_delete, .xAccess = cv_access,
		.xFullPathname = cv_full, .xRandomness = cv_random, .xSleep = cv_sleep,
		.xGetLastError = cv_lasterr, .xCurrentTimeInt64 = cv_time,
	};
	g_assert_cmpint(sqlite3_vfs_register(&count_vfs, 1), ==, SQLITE_OK);
}

static unsigned
syncs_since(unsigned *mark)
{
	unsigned now = __atomic_load_n(&wal_syncs, __ATOMIC_SEQ_CST), d = now - *mark;

	*mark = now;
	return d;
}

/* Evaluate, a valid proof and every other write fsync the WAL before they
 * return; a wrong proof's commit does not (it only settles an attempt that
 * Evaluate counted durably), and the next durable write is durable again. */
static void
test_v2_sync(struct fixture *fx, gconstpointer data)
{
	char id[SP_LINK_ID_HEXLEN + 1], err[SP_ERRLEN];
	unsigned char cap[LINK_STORE_REPLY_CAP_BYTES];
	unsigned mark = 0;
	bool destroyed;

	if (pg_url())
		return;
	g_assert_cmpint(put_msg(fx->s, 4700, 1, V2_NOW, 100000, 0, 10, NULL), ==, LINK_STORE_OK);
	make_id(id, 4700);
	syncs_since(&mark);
	g_assert_cmpint(v2_eval(fx->s, id, 1, V2_NOW), ==, LINK_STORE_OK);
	g_assert_cmpuint(syncs_since(&mark), >=, 1);
	g_assert_cmpint(v2_prove(fx->s, id, 1, false, V2_NOW, &destroyed), ==, LINK_STORE_WRONG);
	g_assert_false(destroyed);
	g_assert_cmpuint(syncs_since(&mark), ==, 0);
	g_assert_cmpuint(v2_failed(fx->s, id), ==, 1);
	/* The writes after it, each durable again: an autocommit one ... */
	memset(cap, 7, sizeof cap);
	g_assert_cmpint(link_store_reply_cap_put(fx->s, id, "a@example.com", V2_NOW + 100, cap, err,
	                                         sizeof err), ==, LINK_STORE_OK);
	g_assert_cmpuint(syncs_since(&mark), >=, 1);
	/* ... a wrong proof again, then a valid one (its view counts). */
	g_assert_cmpint(v2_eval(fx->s, id, 2, V2_NOW), ==, LINK_STORE_OK);
	g_assert_cmpint(v2_eval(fx->s, id, 3, V2_NOW), ==, LINK_STORE_OK);
	syncs_since(&mark);
	g_assert_cmpint(v2_prove(fx->s, id, 2, false, V2_NOW, NULL), ==, LINK_STORE_WRONG);
	g_assert_cmpuint(syncs_since(&mark), ==, 0);
	g_assert_cmpint(v2_prove(fx->s, id, 3, true, V2_NOW, NULL), ==, LINK_STORE_OK);
	g_assert_cmpuint(syncs_since(&mark), >=, 1);
	g_assert_cmpuint(v2_failed(fx->s, id), ==, 2);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define FX(name, fn) g_test_add(name, struct fixture, NULL, fx_setup, fn, fx_teardown)
	FX("/link_store/open", test_open);
	g_test_add_func("/link_store/open_errors", test_open_errors);
	g_test_add_func("/link_store/label", test_label);
	g_test_add_func("/link_store/pg_unreachable", test_pg_unreachable);
	FX("/link_store/pg_schema", test_pg_schema);
	FX("/link_store/pg_reconnect", test_pg_reconnect);
	FX("/link_store/pg_sweep_lock", test_pg_sweep_lock);
	FX("/link_store/attempts", test_attempts);
	FX("/link_store/put_get", test_put_get);
	FX("/link_store/put_atomic", test_put_atomic);
	FX("/link_store/put_validation", test_put_validation);
	FX("/link_store/liveness", test_liveness);
	FX("/link_store/claim_burns", test_claim_burns);
	FX("/link_store/fail_destroys", test_fail_destroys);
	FX("/link_store/revoke", test_revoke);
	FX("/link_store/sweep_list", test_sweep_list);
	FX("/link_store/really_deleted", test_really_deleted);
	FX("/link_store/race_connections", test_race_connections);
	FX("/link_store/race_shared_handle", test_race_shared);
	FX("/link_store/race_processes", test_race_processes);
	FX("/link_store/v2_protocol", test_v2_protocol);
	FX("/link_store/v2_sender_hint", test_v2_sender_hint);
	FX("/link_store/v2_pending_cap", test_v2_pending_cap);
	FX("/link_store/v2_expiry", test_v2_expiry);
	FX("/link_store/v2_race", test_v2_race);
	FX("/link_store/replies", test_replies);
	FX("/link_store/migrate_2_to_3", test_migrate_2_to_3);
	FX("/link_store/v2_sync", test_v2_sync);
#undef FX
	if (!pg_url())
		count_vfs_register();
	return g_test_run();
}

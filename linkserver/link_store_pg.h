/* link_store_pg.h - the PostgreSQL backend of the link store (internal).
 *
 * Everything else uses link_store.h: link_store_open() picks this backend for
 * a postgresql:// or postgres:// URL and each link_store_* call comes here
 * after link_store.c has checked its arguments (ids, put's message).  The
 * semantics are those of link_store.h, across every process and node on the
 * database: each change to a link locks its message row and then the link row
 * (SELECT ... FOR UPDATE) and decides inside that transaction, so a
 * max_views = 1 link has one winner and failed attempts add up exactly; the
 * sweep runs under an advisory lock, on one node at a time.
 *
 * Connections: a pool of at most LINK_STORE_PG_POOL_MAX per handle, opened on
 * demand; a broken one is reset (PQreset) when it is next taken, and a
 * statement that finds its connection dropped before any change is retried
 * once on a fresh one.  A database that is down or slow gives LINK_STORE_ERROR
 * (the viewer's 503) within the timeouts below, never a hang.
 *
 * Each link_store_pg_* function returns exactly what its link_store_*
 * namesake in link_store.h says, with the same out-parameters, and sets err
 * in the same cases (LINK_STORE_ERROR; LINK_STORE_EXISTS).  link_store.c
 * resets the out-parameters first, and answers LINK_STORE_GONE itself for a
 * malformed id where a call looks a link up (get, claim_view, fail,
 * attempt_begin, evaluate, prove, revoke).
 */
#ifndef SP_LINK_STORE_PG_H
#define SP_LINK_STORE_PG_H

#include "link_store.h"

struct link_store_pg;

enum link_store_rc link_store_pg_open(const char *url, struct link_store_pg **out, char *err,
                                      size_t errsz);
void link_store_pg_close(struct link_store_pg *p);
enum link_store_rc link_store_pg_put(struct link_store_pg *p, const struct link_store_new_msg *m,
                                     char msg_id[LINK_STORE_MSGID_HEXLEN + 1], char *err,
                                     size_t errsz);
enum link_store_rc link_store_pg_get(struct link_store_pg *p, const char *id, int64_t now,
                                     struct link_store_link *out, char *err, size_t errsz);
enum link_store_rc link_store_pg_claim_view(struct link_store_pg *p, const char *id, int64_t now,
                                            struct sp_buf *ciphertext, uint64_t *views_out,
                                            char *err, size_t errsz);
enum link_store_rc link_store_pg_fail(struct link_store_pg *p, const char *id, int64_t now,
                                      bool *destroyed, char *err, size_t errsz);
enum link_store_rc link_store_pg_revoke(struct link_store_pg *p, const char *id,
                                        bool whole_message, char *err, size_t errsz);
enum link_store_rc link_store_pg_attempt_begin(struct link_store_pg *p, const char *id,
                                               int64_t now, uint64_t *others, int64_t *ticket,
                                               char *err, size_t errsz);
void link_store_pg_attempt_end(struct link_store_pg *p, int64_t ticket);
enum link_store_rc link_store_pg_evaluate(struct link_store_pg *p, const char *id, int64_t now,
                                          const unsigned char *attempt, struct link_store_link *out,
                                          char *err, size_t errsz);
enum link_store_rc link_store_pg_prove(struct link_store_pg *p, const char *id, int64_t now,
                                       const unsigned char *attempt, bool valid,
                                       struct sp_buf *ciphertext, uint64_t *views_out,
                                       bool *destroyed, char *err, size_t errsz);
enum link_store_rc link_store_pg_pending_count(struct link_store_pg *p, const char *id,
                                               unsigned *n, char *err, size_t errsz);
enum link_store_rc link_store_pg_sweep(struct link_store_pg *p, int64_t now, unsigned *n_links,
                                       unsigned *n_messages, char *err, size_t errsz);
enum link_store_rc link_store_pg_list(struct link_store_pg *p, struct link_store_link **out,
                                      size_t *n, char *err, size_t errsz);
enum link_store_rc link_store_pg_count(struct link_store_pg *p, unsigned *n_links,
                                       unsigned *n_messages, char *err, size_t errsz);

enum link_store_rc link_store_pg_reply_cap_put(struct link_store_pg *p, const char *link_id,
                                               const char *sender, int64_t expires,
                                               const unsigned char *cap, char *err, size_t errsz);
enum link_store_rc link_store_pg_reply_put(struct link_store_pg *p, const unsigned char *cap,
                                           const char *link_id, int64_t now,
                                           const struct link_store_reply_limits *lim,
                                           const char *rcpt, const char *in_reply_to,
                                           const void *body, size_t len, char *err,
                                           size_t errsz);
enum link_store_rc link_store_pg_reply_take(struct link_store_pg *p, size_t max,
                                            struct link_store_reply **out, size_t *n, char *err,
                                            size_t errsz);
enum link_store_rc link_store_pg_reply_delete(struct link_store_pg *p, int64_t id, char *err,
                                              size_t errsz);

enum link_store_rc link_store_pg_reply_cap_check(struct link_store_pg *p,
                                                 const unsigned char *cap, const char *link_id,
                                                 int64_t now, char *err, size_t errsz);

#endif

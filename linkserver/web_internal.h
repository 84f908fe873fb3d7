/* web_internal.h - what the viewer's own files share (not for callers: they
 * use web_server.h).
 *
 *   web_server.c       the daemons: start, stop, MHD callbacks, sweeper, reaper
 *   web_request.c      one request: routing table, guards, form fields, client
 *   web_response.c     every response: the headers all carry, the common pages
 *   web_view.c         the link page, unlock, the message (and /, /robots.txt)
 *   web_download.c     an attachment behind its download capability
 *   web_v2.c           link v2: params, evaluate, unlock (JSON; the browser decrypts)
 *   web_api.c          the upload API (bearer token)
 *   web_static.c       the v2 link page and its scripts (web_assets.h)
 *   web_outbox_page.c  the outbox listener's guard and pages (loopback browser only)
 */
#ifndef SP_WEB_INTERNAL_H
#define SP_WEB_INTERNAL_H

#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdint.h>

#include <microhttpd.h>
#include <sodium.h>

#include "link_store.h"
#include "net.h"
#include "util.h"
#include "web_client.h"
#include "web_outbox.h"
#include "web_pages.h"

/* Which listener a request came in on: the public viewer, or the outbox's own. */
enum web_side { SIDE_PUBLIC, SIDE_OUTBOX };

/* One libmicrohttpd daemon and what it needs to know. */
struct web_listener {
	struct web_server *ws;
	enum web_side side;
	struct MHD_Daemon *daemon;
	struct web_conns *conns;
	uint16_t port;
};

struct web_server {
	struct web_listener pub;     /* [linkserver] listen */
	struct web_listener obx;     /* [linkserver] outbox_listen, when outbox = yes */
	struct link_store *store;
	char *link_path;
	size_t link_path_len;
	bool outbox;
	bool hsts;
	size_t upload_max;
	size_t reply_max;            /* [linkserver] reply_max_size */
	uint64_t reply_max_count;    /* [linkserver] reply_max_count */
	int64_t reply_min_interval;  /* [linkserver] reply_min_interval, seconds */
	unsigned char api_token_hash[crypto_generichash_BYTES];
	bool api_enabled;
	char outbox_token[WEB_OUTBOX_TOKEN_HEXLEN + 1]; /* the outbox's capability */
	char *csp_page, *csp_message;
	sem_t kdf_slots;
	struct web_tarpit *tarpit;
	struct sp_net_list trusted_proxies; /* whose forwarding headers are believed */
	struct web_sessions *sessions;
	char *tls_cert, *tls_key;
	size_t tls_key_len;
	pthread_t sweeper;
	bool sweeper_running;
	pthread_mutex_t stop_lock;
	pthread_cond_t stop_cond;
	bool stopping;
};

/* Form fields we accept; anything else in a form is ignored. */
#define WEB_FIELD_MAX 80
struct web_route;
struct web_req {
	const struct web_route *route;
	struct web_listener *l;
	struct web_conn *wc;     /* the connection's deadline record */
	bool begun;              /* routed (first access handler call done) */
	bool bad_uri;            /* the raw request target is not one we serve */
	struct MHD_Connection *conn;
	char *url;
	char *method;
	char client[WEB_CLIENT_KEYLEN];
	bool loopback;
	struct MHD_PostProcessor *pp;
	struct sp_buf body;      /* a raw body (the upload API) */
	size_t body_len;         /* bytes received, any body kind */
	size_t body_max;
	bool bad_form;
	struct sp_buf password;  /* wiped */
	char dl[WEB_FIELD_MAX], part[WEB_FIELD_MAX], token[WEB_FIELD_MAX], link[WEB_FIELD_MAX],
	     scope[WEB_FIELD_MAX];
	bool has_dl;
};

/* ---- web_request.c ---- */

/* The request's state, made when its raw target is known (before decoding).
 * Never NULL. */
struct web_req *web_req_new(struct web_listener *l, struct MHD_Connection *c,
                            struct web_conn *wc, const char *uri);
void web_req_free(struct web_req *r);
/* First call for a request: route it, run the guard, prepare for its body.
 * Returns MHD_YES with *done false to go on reading; else *done is true and
 * the request has been answered (a refusal queued): MHD_YES, or MHD_NO when
 * the response could not be queued. */
enum MHD_Result web_req_begin(struct web_server *ws, struct web_req *r, const char *url,
                              const char *method, bool *done);
/* A piece of the body.  Returns MHD_YES, or MHD_NO to hang up (past the
 * route's limit, or a form the post processor refuses). */
enum MHD_Result web_req_body(struct web_req *r, const char *data, size_t n);
/* The whole request is in: its route's handler answers it. */
enum MHD_Result web_req_handle(struct web_server *ws, struct web_req *r);
/* A request header (the first line of it), or NULL.  Inline: the handlers
 * read headers and web_request.c calls the handlers, so a function here
 * would make a circle between the files (scripts/check-cycles.py). */
static inline const char *
web_header(struct web_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

/* ---- web_response.c ---- */

enum web_csp { WEB_CSP_PAGE, WEB_CSP_MESSAGE, WEB_CSP_NONE };
#define WEB_HTML "text/html; charset=utf-8"
#define WEB_TEXT "text/plain; charset=utf-8"

/* Queue a response: takes body (may be NULL), adds the headers every response
 * carries, plus up to two optional extra headers (h1/h2 NULL: none).  Each
 * web_respond* returns what MHD_queue_response() did: MHD_YES queued, or
 * MHD_NO (libmicrohttpd then closes the connection).  No err: a caller has
 * nothing to add to a failure to answer. */
enum MHD_Result web_respond(struct web_server *ws, struct web_req *r, unsigned status,
                            enum web_csp csp, const char *ctype, struct sp_buf *body,
                            const char *h1, const char *v1, const char *h2, const char *v2);
enum MHD_Result web_respond_page(struct web_server *ws, struct web_req *r, unsigned status,
                                 struct sp_buf *b);
enum MHD_Result web_respond_notice(struct web_server *ws, struct web_req *r, unsigned status,
                                   const char *title, const char *text);
enum MHD_Result web_respond_not_found(struct web_server *ws, struct web_req *r);
enum MHD_Result web_respond_gone(struct web_server *ws, struct web_req *r, enum web_gone why);
enum MHD_Result web_respond_text(struct web_server *ws, struct web_req *r, unsigned status,
                                 const char *text, const char *h1, const char *v1);
/* A compiled-in asset with its ETag (304 for a matching If-None-Match), the
 * given CSP and Cache-Control, and the other headers every response carries. */
struct web_asset;
enum MHD_Result web_respond_asset(struct web_server *ws, struct web_req *r,
                                  const struct web_asset *a, const char *csp,
                                  const char *cache);
/* The store failed: err is logged, the page is "try again later" (503). */
enum MHD_Result web_respond_store_error(struct web_server *ws, struct web_req *r,
                                        const char *err);
/* The store did not give the link: LINK_STORE_ERROR as above, else 410. */
enum MHD_Result web_respond_store_miss(struct web_server *ws, struct web_req *r,
                                       enum link_store_rc rc, const char *err);

/* ---- the handlers (web_view.c, web_download.c, web_api.c, web_outbox_page.c) ----
 *
 * Every handler answers the request itself, errors included (a page or a JSON
 * error with its status, the store's failures logged and a 503), and returns
 * as web_respond(). */

enum MHD_Result web_h_index(struct web_server *ws, struct web_req *r);
enum MHD_Result web_h_robots(struct web_server *ws, struct web_req *r);
enum MHD_Result web_h_link_get(struct web_server *ws, struct web_req *r);
enum MHD_Result web_h_link_post(struct web_server *ws, struct web_req *r);
enum MHD_Result web_h_outbox(struct web_server *ws, struct web_req *r);
enum MHD_Result web_h_outbox_revoke(struct web_server *ws, struct web_req *r);
enum MHD_Result web_h_api_upload(struct web_server *ws, struct web_req *r);
enum MHD_Result web_h_api_revoke(struct web_server *ws, struct web_req *r);
/* Link v2 (web_v2.c): GET /v2/<id>/params, POST /v2/<id>/evaluate and /unlock. */
enum MHD_Result web_h_v2_get(struct web_server *ws, struct web_req *r);
enum MHD_Result web_h_v2_post(struct web_server *ws, struct web_req *r);
/* Secure reply (docs/formats.md "Secure reply"): the unlock's reply token
 * (32 random bytes, base64url) comes in this response header; a reply carries
 * it as "Authorization: Bearer <token>", and the two optional header values
 * the browser gives for the delivered mail. */
#define WEB_REPLY_TOKEN_HEADER "Sealpost-Reply-Token"
#define WEB_REPLY_TOKEN_BYTES 32
#define WEB_REPLY_MAX_HEADER "Sealpost-Reply-Max-Size"
#define WEB_REPLY_FROM_HEADER "Sealpost-Reply-From"
#define WEB_REPLY_IRT_HEADER "Sealpost-In-Reply-To"
enum MHD_Result web_h_v2_reply(struct web_server *ws, struct web_req *r);
/* The guard of POST /v2/<id>/reply, before its body is read (a bearer token
 * of a live reply capability).  Returns false to go on, or true with the
 * refusal answered and its result in *ret. */
bool web_v2_reply_guard(struct web_server *ws, struct web_req *r, enum MHD_Result *ret);
enum MHD_Result web_h_api_replies(struct web_server *ws, struct web_req *r);
enum MHD_Result web_h_api_reply_delete(struct web_server *ws, struct web_req *r);
/* GET /static/<name>: the v2 page's scripts and style (web_static.c). */
enum MHD_Result web_h_static(struct web_server *ws, struct web_req *r);
/* The v2 link page, the same bytes for every link (web_static.c). */
enum MHD_Result web_v2_page(struct web_server *ws, struct web_req *r);

/* The attachment (form fields dl, part) of link `id` (web_download.c). */
enum MHD_Result web_download(struct web_server *ws, struct web_req *r, const char *id);
/* Is link `id` in the store now?  Returns LINK_STORE_OK, LINK_STORE_GONE, or
 * LINK_STORE_ERROR with err set (link_store_get()'s results). */
enum link_store_rc web_link_check(struct web_server *ws, const char *id, char *err,
                                  size_t errsz);
/* Link `id` is gone: the downloads it gave end now (their bytes are wiped). */
void web_downloads_end(struct web_server *ws, const char *id);

/* The outbox's guard: 0 to go on, else the status to refuse with. */
unsigned web_outbox_guard(struct web_server *ws, struct web_req *r);
/* Is the request's bearer token the upload API's? */
bool web_api_authorized(struct web_server *ws, struct web_req *r);
/* Read [link] upload_token_file (unset: the API stays off).  Returns 0 (also
 * for no path), or -1 with err set (unreadable, or not one line of at least
 * 22 characters without spaces). */
int web_api_load_token(struct web_server *ws, const char *path, char *err, size_t errsz);

#endif

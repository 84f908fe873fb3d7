/* web_server.c - the link viewer: routing, limits, headers, handlers. */
#include "web_server.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>
#include <microhttpd.h>
#include <sodium.h>

#include "link_envelope.h"
#include "link_record.h"
#include "log.h"
#include "net.h"
#include "web_client.h"
#include "web_conn.h"
#include "web_html.h"
#include "web_outbox.h"
#include "web_pages.h"
#include "web_render.h"
#include "web_session.h"

/* ---- limits (docs/viewer.md "Limits") ---- */

/* A client that sends nothing for this long is dropped: MHD's default is no
 * timeout at all, and every connection holds a thread. */
#define WEB_CONNECTION_TIMEOUT_S 30
/* A request must arrive whole (request line, headers, form body) within this
 * long of its connection's start, or of the end of the previous response on a
 * kept-alive connection; else its socket is shut down.  The inactivity timeout
 * alone lets a client that trickles a byte a second hold a thread forever.  A
 * browser sends a request in one or two packets; 15 s is ample on a bad link. */
#define WEB_REQUEST_DEADLINE_S 15
/* An upload through the API (bearer token checked) may take this long for its
 * body: 50 MiB at ~100 KB/s. */
#define WEB_UPLOAD_DEADLINE_S 600
/* How often connections are checked against their deadline. */
#define WEB_REAP_INTERVAL_MS 1000
/* At stop, how long connections that are closing get to finish before the
 * daemons are stopped under them (a busy viewer is not held up longer). */
#define WEB_STOP_DRAIN_MS 2000
/* Connections at once (each is a thread): enough for a busy personal viewer,
 * bounded so a flood cannot exhaust threads or memory. */
#define WEB_CONNECTION_LIMIT 256
/* Connections from one client: an IPv4 address or an IPv6 /64 (web_conn.h).
 * Behind a reverse proxy on the same host all come from it, so this is
 * generous; the proxy should limit per client. */
#define WEB_PER_IP_CONNECTION_LIMIT 32
/* Connections at once on the outbox listener: one person's browser. */
#define WEB_OUTBOX_CONNECTION_LIMIT 16
/* MHD's per-connection memory pool: request line, headers, small buffers.  A
 * request whose headers do not fit is refused by MHD (431). */
#define WEB_CONNECTION_MEMORY_LIMIT (64 * 1024)
/* A form POST (password, download, revoke) is a few hundred bytes. */
#define WEB_FORM_MAX 8192
/* The longest password accepted; generated ones are ~30 characters. */
#define WEB_PASSWORD_MAX 1024
/* Argon2id runs at once: each takes the KDF's memory (64 MiB by default), so
 * this caps the viewer's peak memory for unlocks at about 256 MiB. */
#define WEB_KDF_CONCURRENCY 4
/* Largest decrypted message shown: the proxy accepts at most
 * [proxy] max_message_size; this is the hard ceiling whatever it says. */
#define WEB_MESSAGE_MAX ((size_t)256 * 1024 * 1024)
/* Listen backlog. */
#define WEB_LISTEN_BACKLOG 128
/* TLS certificate and key files are small PEM files. */
#define WEB_PEM_MAX (1024 * 1024)
/* The upload API token file holds one token line. */
#define WEB_TOKEN_FILE_MAX 4096
/* Shortest upload token accepted: 128 bits in hex or base64 is 22+ chars. */
#define WEB_TOKEN_MIN 22
/* Uploaded links may not claim an expiry further away than [link] expiry allows
 * at most (366 days) plus a day of clock skew. */
#define WEB_UPLOAD_MAX_TTL ((int64_t)367 * 86400)

enum body_kind { BODY_NONE, BODY_FORM, BODY_RAW };
enum csp_kind { CSP_PAGE, CSP_MESSAGE, CSP_NONE };
enum guard { GUARD_NONE, GUARD_OUTBOX, GUARD_API };
/* Which listener a route is on: the public viewer, or the outbox's own. */
enum web_side { SIDE_PUBLIC, SIDE_OUTBOX };

struct web_server;

/* One libmicrohttpd daemon and what it needs to know. */
struct web_listener {
	struct web_server *ws;
	enum web_side side;
	struct MHD_Daemon *daemon;
	struct web_conns *conns;
	uint16_t port;
};

struct web_req;
typedef enum MHD_Result (*web_handler)(struct web_server *ws, struct web_req *r);

struct web_route {
	enum web_side side;
	const char *method;  /* "GET" also answers HEAD */
	const char *path;    /* NULL: the link path of [link] base_url */
	bool prefix;
	enum body_kind body;
	enum guard guard;    /* checked before any body is read */
	web_handler handler;
};

/* Form fields we accept; anything else in a form is ignored. */
#define FIELD_MAX 80
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
	struct sp_buf body;      /* BODY_RAW */
	size_t body_len;         /* bytes received, any body kind */
	size_t body_max;
	bool bad_form;
	struct sp_buf password;  /* wiped */
	char dl[FIELD_MAX], part[FIELD_MAX], token[FIELD_MAX], link[FIELD_MAX], scope[FIELD_MAX];
	bool has_dl;
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

static enum MHD_Result h_index(struct web_server *, struct web_req *);
static enum MHD_Result h_robots(struct web_server *, struct web_req *);
static enum MHD_Result h_link_get(struct web_server *, struct web_req *);
static enum MHD_Result h_link_post(struct web_server *, struct web_req *);
static enum MHD_Result h_outbox(struct web_server *, struct web_req *);
static enum MHD_Result h_outbox_revoke(struct web_server *, struct web_req *);
static enum MHD_Result h_api_upload(struct web_server *, struct web_req *);
static enum MHD_Result h_api_revoke(struct web_server *, struct web_req *);

/* Exact paths first: the link path may be "/", which matches everything.
 * The outbox is only on its own listener: nothing that forwards the public
 * viewer (a reverse proxy, ssh -R, socat) can reach it there. */
static const struct web_route routes[] = {
	{ SIDE_PUBLIC, "GET", "/", false, BODY_NONE, GUARD_NONE, h_index },
	{ SIDE_PUBLIC, "GET", "/robots.txt", false, BODY_NONE, GUARD_NONE, h_robots },
	{ SIDE_PUBLIC, "POST", "/api/v1/links", false, BODY_RAW, GUARD_API, h_api_upload },
	{ SIDE_PUBLIC, "DELETE", "/api/v1/links/", true, BODY_NONE, GUARD_API, h_api_revoke },
	{ SIDE_PUBLIC, "GET", NULL, true, BODY_NONE, GUARD_NONE, h_link_get },
	{ SIDE_PUBLIC, "POST", NULL, true, BODY_FORM, GUARD_NONE, h_link_post },
	{ SIDE_OUTBOX, "GET", "/robots.txt", false, BODY_NONE, GUARD_NONE, h_robots },
	{ SIDE_OUTBOX, "POST", "/outbox/revoke", false, BODY_FORM, GUARD_OUTBOX, h_outbox_revoke },
	{ SIDE_OUTBOX, "GET", "/outbox/", true, BODY_NONE, GUARD_OUTBOX, h_outbox },
};

/* ---- responses ---- */

struct wipe_body {
	char *data;
	size_t len;
};

/* Every response body may hold plaintext: wipe it when MHD is done with it. */
static void
wipe_body_free(void *cls)
{
	struct wipe_body *w = cls;

	if (w->data) {
		sodium_memzero(w->data, w->len);
		free(w->data);
	}
	free(w);
}

static const char *
csp_value(struct web_server *ws, enum csp_kind csp)
{
	switch (csp) {
	case CSP_PAGE: return ws->csp_page;
	case CSP_MESSAGE: return ws->csp_message;
	case CSP_NONE: break;
	}
	/* Downloads, API answers, plain text: nothing may load or run, ever. */
	return "default-src 'none'; frame-ancestors 'none'; form-action 'none'; base-uri 'none'; "
	       "sandbox";
}

/* Queue a response: takes body (may be NULL), adds the headers every response
 * carries, plus one optional extra header. */
static enum MHD_Result
respond(struct web_server *ws, struct web_req *r, unsigned status, enum csp_kind csp,
        const char *ctype, struct sp_buf *body, const char *h1, const char *v1,
        const char *h2, const char *v2)
{
	struct wipe_body *w = sp_xcalloc(1, sizeof *w);
	struct MHD_Response *resp;
	enum MHD_Result ret;

	/* The request is in: no deadline while it is answered. */
	web_conns_answering(r->l->conns, r->wc);
	if (body) {
		w->data = sp_buf_steal(body, &w->len);
	}
	resp = MHD_create_response_from_buffer_with_free_callback_cls(w->len, w->data,
	                                                              wipe_body_free, w);
	if (resp == NULL) {
		wipe_body_free(w);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	MHD_add_response_header(resp, "Pragma", "no-cache");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(resp, "Content-Security-Policy", csp_value(ws, csp));
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "X-Frame-Options", "DENY");
	MHD_add_response_header(resp, "Cross-Origin-Opener-Policy", "same-origin");
	MHD_add_response_header(resp, "Cross-Origin-Resource-Policy", "same-origin");
	MHD_add_response_header(resp, "X-Robots-Tag", "noindex, nofollow, noarchive");
	MHD_add_response_header(resp, "Permissions-Policy",
	                        "camera=(), microphone=(), geolocation=(), interest-cohort=()");
	if (ws->hsts)
		MHD_add_response_header(resp, "Strict-Transport-Security", "max-age=31536000");
	if (ctype)
		MHD_add_response_header(resp, "Content-Type", ctype);
	if (h1)
		MHD_add_response_header(resp, h1, v1);
	if (h2)
		MHD_add_response_header(resp, h2, v2);
	ret = MHD_queue_response(r->conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

#define HTML "text/html; charset=utf-8"
#define TEXT "text/plain; charset=utf-8"

static enum MHD_Result
respond_page(struct web_server *ws, struct web_req *r, unsigned status, struct sp_buf *b)
{
	return respond(ws, r, status, CSP_PAGE, HTML, b, NULL, NULL, NULL, NULL);
}

static enum MHD_Result
respond_notice(struct web_server *ws, struct web_req *r, unsigned status, const char *title,
               const char *text)
{
	struct sp_buf b;

	sp_buf_init(&b, 0);
	web_page_notice(&b, title, text);
	return respond_page(ws, r, status, &b);
}

static enum MHD_Result
respond_gone(struct web_server *ws, struct web_req *r, enum web_gone why)
{
	struct sp_buf b;

	sp_buf_init(&b, 0);
	web_page_gone(&b, why);
	return respond_page(ws, r, MHD_HTTP_GONE, &b);
}

static enum MHD_Result
respond_text(struct web_server *ws, struct web_req *r, unsigned status, const char *text,
             const char *h1, const char *v1)
{
	struct sp_buf b;

	sp_buf_init(&b, 0);
	sp_buf_printf(&b, "%s\n", text);
	return respond(ws, r, status, CSP_NONE, TEXT, &b, h1, v1, NULL, NULL);
}

static enum MHD_Result
respond_unavailable(struct web_server *ws, struct web_req *r)
{
	return respond_notice(ws, r, MHD_HTTP_SERVICE_UNAVAILABLE, "Temporarily unavailable",
	                      "The viewer cannot reach its store right now. Please try again in "
	                      "a few minutes.");
}

/* The store did not give the link: GONE is the page for a link that is not
 * (or no longer) there, ERROR is logged and is "try again later". */
static enum MHD_Result
respond_store_miss(struct web_server *ws, struct web_req *r, enum link_store_rc rc,
                   const char *err)
{
	if (rc == LINK_STORE_ERROR) {
		sp_log_error("viewer: %s", err);
		return respond_unavailable(ws, r);
	}
	return respond_gone(ws, r, WEB_GONE_LINK);
}

/* ---- small helpers ---- */

static int64_t
now_s(void)
{
	return sp_time();
}

static void
sleep_ms(int64_t ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* The link token after the link path: exactly SP_LINK_TOKEN_STRLEN chars. */
static bool
link_from_url(struct web_server *ws, const char *url, struct sp_link_token *t,
              char id[SP_LINK_ID_HEXLEN + 1])
{
	const char *tok = url + ws->link_path_len;

	if (strncmp(url, ws->link_path, ws->link_path_len) != 0 ||
	    strlen(tok) != SP_LINK_TOKEN_STRLEN ||
	    sp_link_token_decode(tok, SP_LINK_TOKEN_STRLEN, t) < 0)
		return false;
	sp_link_id_hex(t->id, id);
	return true;
}

static const char *
header(struct web_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

/* The outbox shows passwords.  What keeps them is the capability token in
 * its URL (checked by the handlers) on a listener of its own; these checks
 * only narrow it further to this machine's own browser: a forwarder adds
 * forwarding headers or a foreign Host, DNS rebinding a foreign Host, a
 * cross-site form a foreign Origin or Sec-Fetch-Site. */
static unsigned
outbox_guard(struct web_server *ws, struct web_req *r)
{
	static const char *const forwarded[] = { "Forwarded", "X-Forwarded-For", "X-Real-IP",
	                                         "X-Forwarded-Host", "Via" };
	const char *origin, *site;
	size_t i;

	if (!ws->outbox || r->l->side != SIDE_OUTBOX)
		return MHD_HTTP_NOT_FOUND;
	if (!r->loopback)
		return MHD_HTTP_FORBIDDEN;
	for (i = 0; i < SP_ARRAY_LEN(forwarded); i++)
		if (header(r, forwarded[i]) != NULL)
			return MHD_HTTP_FORBIDDEN;
	if (!web_host_is_loopback(header(r, "Host")))
		return MHD_HTTP_FORBIDDEN;
	origin = header(r, "Origin");
	if (origin != NULL) {
		const char *h = strstr(origin, "://");
		if (h == NULL || !web_host_is_loopback(h + 3))
			return MHD_HTTP_FORBIDDEN;
	}
	site = header(r, "Sec-Fetch-Site");
	if (strcmp(r->method, "POST") == 0 && site != NULL && strcmp(site, "same-origin") != 0 &&
	    strcmp(site, "none") != 0)
		return MHD_HTTP_FORBIDDEN;
	return 0;
}

/* The outbox token, compared in constant time (its length is public). */
static bool
outbox_token_ok(struct web_server *ws, const char *t)
{
	return t != NULL && strlen(t) == WEB_OUTBOX_TOKEN_HEXLEN &&
	       sodium_memcmp(t, ws->outbox_token, WEB_OUTBOX_TOKEN_HEXLEN) == 0;
}

static bool
api_authorized(struct web_server *ws, struct web_req *r)
{
	unsigned char h[crypto_generichash_BYTES];
	const char *a = header(r, "Authorization");
	bool ok;

	if (!ws->api_enabled || a == NULL || !sp_has_prefix_nocase(a, "Bearer "))
		return false;
	a += 7;
	while (*a == ' ')
		a++;
	/* Compare fixed-size hashes in constant time: neither the token's bytes nor
	 * its length leak through timing. */
	crypto_generichash(h, sizeof h, (const unsigned char *)a, strlen(a), NULL, 0);
	ok = sodium_memcmp(h, ws->api_token_hash, sizeof h) == 0;
	sodium_memzero(h, sizeof h);
	return ok;
}

/* ---- handlers ---- */

static enum MHD_Result
h_index(struct web_server *ws, struct web_req *r)
{
	struct sp_buf b;

	sp_buf_init(&b, 0);
	web_page_index(&b);
	return respond_page(ws, r, MHD_HTTP_OK, &b);
}

static enum MHD_Result
h_robots(struct web_server *ws, struct web_req *r)
{
	struct sp_buf b;

	sp_buf_init(&b, 0);
	sp_buf_puts(&b, "User-agent: *\nDisallow: /\n");
	return respond(ws, r, MHD_HTTP_OK, CSP_NONE, TEXT, &b, NULL, NULL, NULL, NULL);
}

static enum MHD_Result
h_link_get(struct web_server *ws, struct web_req *r)
{
	char id[SP_LINK_ID_HEXLEN + 1], err[SP_ERRLEN];
	struct link_store_link l;
	struct sp_link_token t;
	enum link_store_rc rc;
	struct sp_buf b;
	bool ok;

	ok = link_from_url(ws, r->url, &t, id);
	sodium_memzero(&t, sizeof t);
	if (!ok)
		return respond_gone(ws, r, WEB_GONE_LINK);
	/* Looking never counts: link scanners in mail filters burn nothing. */
	rc = link_store_get(ws->store, id, now_s(), &l, err, sizeof err);
	link_store_link_clear(&l);
	if (rc != LINK_STORE_OK)
		return respond_store_miss(ws, r, rc, err);
	sp_buf_init(&b, 0);
	web_page_form(&b, r->url, WEB_FORM_PLAIN, 0);
	return respond_page(ws, r, MHD_HTTP_OK, &b);
}

static enum MHD_Result
respond_form(struct web_server *ws, struct web_req *r, unsigned status, enum web_form_note note,
             int64_t wait_ms)
{
	int64_t wait_s = (wait_ms + 999) / 1000;
	char retry[32];
	struct sp_buf b;

	sp_buf_init(&b, 0);
	web_page_form(&b, r->url, note, wait_s);
	if (wait_ms > 0) {
		snprintf(retry, sizeof retry, "%" PRId64, wait_s);
		return respond(ws, r, status, CSP_PAGE, HTML, &b, "Retry-After", retry, NULL, NULL);
	}
	return respond_page(ws, r, status, &b);
}

static enum MHD_Result
download(struct web_server *ws, struct web_req *r, const char *id)
{
	char ascii[128], err[SP_ERRLEN];
	struct link_store_link l;
	struct web_attachment a;
	struct sp_buf body, disp;
	enum link_store_rc rc;
	enum MHD_Result ret;
	bool last_view = false;
	uint64_t part;

	if (sp_parse_uint(r->part, 0, WEB_RENDER_MAX_PARTS, &part, err, sizeof err) < 0 ||
	    web_sessions_get(ws->sessions, r->dl, id, (size_t)part, sp_now_ms(), &a, &last_view) < 0)
		return respond_gone(ws, r, WEB_GONE_DOWNLOAD);
	/* A capability lives no longer than its link.  The store is asked every
	 * time: `sealpost revoke` is another process and tells nobody, and expiry,
	 * a sibling's revoke or another viewer's destruction happen there too.  The
	 * view that used the link up deleted it itself; its capability stands alone
	 * (web_session.h). */
	if (!last_view) {
		rc = link_store_get(ws->store, id, now_s(), &l, err, sizeof err);
		link_store_link_clear(&l);
		if (rc != LINK_STORE_OK) {
			web_attachment_clear(&a);
			if (rc == LINK_STORE_ERROR) {
				sp_log_error("viewer: %s", err);
				return respond_unavailable(ws, r);
			}
			if (web_sessions_drop_link(ws->sessions, id) > 0)
				sp_log_info("viewer: link %s is gone: its downloads end", id);
			return respond_gone(ws, r, WEB_GONE_DOWNLOAD);
		}
	}
	/* Always a download, never rendered: an HTML or SVG attachment served
	 * inline from this origin would be a script on the viewer's own site. */
	web_ascii_filename(a.filename, "attachment", ascii, sizeof ascii);
	sp_buf_init(&disp, 0);
	sp_buf_printf(&disp, "attachment; filename=\"%s\"; filename*=UTF-8''", ascii);
	web_percent_encode(&disp, a.filename, strlen(a.filename));
	sp_buf_init(&body, 0);
	sp_buf_append(&body, a.data, a.len);
	ret = respond(ws, r, MHD_HTTP_OK, CSP_NONE, "application/octet-stream", &body,
	              "Content-Disposition", disp.data, NULL, NULL);
	sp_buf_free(&disp);
	web_attachment_clear(&a);
	return ret;
}

static enum MHD_Result
unlock(struct web_server *ws, struct web_req *r, const struct sp_link_token *t, const char *id)
{
	unsigned char key[SP_LINK_KEYBYTES];
	char err[SP_ERRLEN], cap[WEB_SESSION_CAPLEN + 1];
	struct sp_buf ct, plain, page;
	struct web_message m = { 0 };
	struct link_store_link l = { 0 };
	enum link_store_rc rc;
	enum MHD_Result ret;
	uint64_t views = 0, shared = 0;
	int64_t wait, ticket = 0;
	bool destroyed = false, last;
	int ok, others = -1;

	sp_buf_init(&ct, WEB_MESSAGE_MAX + 65536);
	sp_buf_init(&plain, WEB_MESSAGE_MAX);
	sp_buf_init(&page, 0);
	if (r->password.len == 0) {
		ret = respond_form(ws, r, MHD_HTTP_OK, WEB_FORM_EMPTY, 0);
		goto out;
	}
	/* Slow down a client that got passwords wrong, across all links.  Every
	 * attempt waits its turn, the right password too (the server cannot tell
	 * it before trying), and none is refused for earlier failures: the answer
	 * comes only after the wait, so waiting is what a guesser pays.  Refused
	 * (429) only: several attempts at once from a client that failed before. */
	wait = web_tarpit_enter(ws->tarpit, r->client, sp_now_ms());
	if (wait < 0) {
		sp_log_info("viewer: link %s: several attempts at once from one client that failed "
		            "before: refused for %" PRId64 " ms", id, -wait);
		sp_log_debug("viewer: link %s: refused client %s", id, r->client);
		ret = respond_form(ws, r, MHD_HTTP_TOO_MANY_REQUESTS, WEB_FORM_WAIT, -wait);
		goto out;
	}
	if (wait > 0) {
		sp_log_debug("viewer: link %s: attempt from %s held %" PRId64 " ms", id, r->client,
		             wait);
		sleep_ms(wait);
	}
	/* Attempts under way on this link count as failures until they are known:
	 * taken before the link's count is read, so that parallel wrong guesses can
	 * never overshoot max_failed (each would otherwise see the same count). */
	others = web_tarpit_attempt_begin(ws->tarpit, id);
	if (others < 0) {
		ret = respond_form(ws, r, MHD_HTTP_TOO_MANY_REQUESTS, WEB_FORM_BUSY, 1000);
		goto out;
	}
	/* ... and those under way on other nodes sharing the store (PostgreSQL). */
	rc = link_store_attempt_begin(ws->store, id, now_s(), &shared, &ticket, err, sizeof err);
	if (rc != LINK_STORE_OK) {
		ret = respond_store_miss(ws, r, rc, err);
		goto out;
	}
	if (shared > (uint64_t)others)
		others = shared > INT_MAX ? INT_MAX : (int)shared;
	rc = link_store_get(ws->store, id, now_s(), &l, err, sizeof err);
	if (rc != LINK_STORE_OK) {
		ret = respond_store_miss(ws, r, rc, err);
		goto out;
	}
	if (l.failed + (uint64_t)others >= l.max_failed) {
		sp_log_info("viewer: link %s: every attempt it has left is under way", id);
		ret = respond_form(ws, r, MHD_HTTP_TOO_MANY_REQUESTS, WEB_FORM_BUSY, 1000);
		goto out;
	}
	/* The expensive step (Argon2id), bounded in parallel. */
	while (sem_wait(&ws->kdf_slots) < 0 && errno == EINTR)
		;
	ok = sp_link_unwrap_key(l.wrapped, l.wrapped_len, r->password.data, t, key, err, sizeof err);
	sem_post(&ws->kdf_slots);
	if (ok < 0) {
		/* Wrong password and wrong link secret are one case: same page, same work. */
		wait = web_tarpit_failed(ws->tarpit, r->client, id, sp_now_ms());
		rc = link_store_fail(ws->store, id, now_s(), &destroyed, err, sizeof err);
		if (rc == LINK_STORE_ERROR) {
			sp_log_error("viewer: %s", err);
			ret = respond_unavailable(ws, r);
		} else if (destroyed) {
			web_sessions_drop_link(ws->sessions, id);
			sp_log_info("viewer: link %s destroyed after %" PRIu64 " wrong passwords", id,
			            l.max_failed);
			ret = respond_gone(ws, r, WEB_GONE_DESTROYED);
		} else if (rc == LINK_STORE_GONE) {
			web_sessions_drop_link(ws->sessions, id);
			ret = respond_gone(ws, r, WEB_GONE_LINK);
		} else {
			sp_log_info("viewer: link %s: wrong password", id);
			/* Retry-After: how long this client's next attempt will be held. */
			ret = respond_form(ws, r, MHD_HTTP_FORBIDDEN, WEB_FORM_WRONG, wait);
		}
		goto out;
	}
	/* The right password: the failures this client made on this link are
	 * forgiven (not those on other links: no laundering with a known link). */
	web_tarpit_succeeded(ws->tarpit, r->client, id, sp_now_ms());
	/* Count the view atomically (burn after reading has exactly one winner),
	 * and only then decrypt. */
	rc = link_store_claim_view(ws->store, id, now_s(), &ct, &views, err, sizeof err);
	if (rc != LINK_STORE_OK) {
		if (rc == LINK_STORE_GONE)
			web_sessions_drop_link(ws->sessions, id);
		ret = respond_store_miss(ws, r, rc, err);
		goto out;
	}
	if (sp_link_open_message(key, ct.data, ct.len, &plain, err, sizeof err) < 0 ||
	    web_render_parse(plain.data, plain.len, &m, err, sizeof err) < 0) {
		sp_log_error("viewer: link %s: cannot open the stored message: %s", id, err);
		ret = respond_notice(ws, r, MHD_HTTP_INTERNAL_SERVER_ERROR, "Cannot show this message",
		                     "The stored message is damaged and cannot be decrypted.");
		goto out;
	}
	/* The last view deleted the link: the capabilities of earlier views end
	 * now; this reader's own lives on alone (web_session.h). */
	last = l.max_views != 0 && views >= l.max_views;
	if (last)
		web_sessions_drop_link(ws->sessions, id);
	web_sessions_new_cap(cap);
	web_page_message(&page, r->url, &m, cap, views, l.max_views);
	if (web_sessions_add(ws->sessions, cap, id, &m, sp_now_ms(),
	                     l.expires > INT64_MAX / 1000 ? INT64_MAX : l.expires * 1000, last) < 0)
		sp_log_warn("viewer: link %s: attachments too large to offer for download", id);
	sp_log_info("viewer: link %s opened (view %" PRIu64 "%s)", id, views,
	            last ? ", last: deleted" : "");
	ret = respond(ws, r, MHD_HTTP_OK, CSP_MESSAGE, HTML, &page, NULL, NULL, NULL, NULL);
out:
	link_store_attempt_end(ws->store, ticket);
	if (others >= 0)
		web_tarpit_attempt_end(ws->tarpit, id);
	sodium_memzero(key, sizeof key);
	sodium_memzero(cap, sizeof cap);
	link_store_link_clear(&l);
	web_message_free(&m);
	sp_buf_wipe(&plain);
	sp_buf_free(&ct);
	sp_buf_wipe(&page);
	return ret;
}

static enum MHD_Result
h_link_post(struct web_server *ws, struct web_req *r)
{
	char id[SP_LINK_ID_HEXLEN + 1];
	struct sp_link_token t;
	enum MHD_Result ret;

	if (!link_from_url(ws, r->url, &t, id)) {
		ret = respond_gone(ws, r, WEB_GONE_LINK);
	} else if (r->bad_form) {
		ret = respond_notice(ws, r, MHD_HTTP_BAD_REQUEST, "Bad request",
		                     "The form could not be read.");
	} else if (r->has_dl) {
		ret = download(ws, r, id);
	} else {
		ret = unlock(ws, r, &t, id);
	}
	sodium_memzero(&t, sizeof t);
	return ret;
}

static enum MHD_Result
h_outbox(struct web_server *ws, struct web_req *r)
{
	const char *done = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "done");
	const char *notice = NULL;
	struct link_store_link *links = NULL;
	char err[SP_ERRLEN];
	struct sp_buf b;
	size_t n = 0;

	/* Without the token this address does not exist: the same page as for
	 * any other unknown path. */
	if (!outbox_token_ok(ws, r->url + strlen("/outbox/")))
		return respond_notice(ws, r, MHD_HTTP_NOT_FOUND, "Not found",
		                      "There is nothing at this address.");
	if (link_store_list(ws->store, &links, &n, err, sizeof err) != LINK_STORE_OK) {
		sp_log_error("viewer: %s", err);
		return respond_unavailable(ws, r);
	}
	if (done && strcmp(done, "revoked") == 0)
		notice = "Revoked: the link no longer opens and its data has been deleted.";
	else if (done && strcmp(done, "gone") == 0)
		notice = "That link was already gone.";
	sp_buf_init(&b, 0);
	web_page_outbox(&b, links, n, ws->outbox_token, now_s(), notice);
	link_store_list_free(links, n);
	return respond_page(ws, r, MHD_HTTP_OK, &b);
}

static enum MHD_Result
h_outbox_revoke(struct web_server *ws, struct web_req *r)
{
	char err[SP_ERRLEN], *where;
	enum link_store_rc rc;
	enum MHD_Result ret;

	/* The token in the body: a cross-site form cannot know it. */
	if (r->bad_form || !outbox_token_ok(ws, r->token))
		return respond_notice(ws, r, MHD_HTTP_FORBIDDEN, "Forbidden",
		                      "The form has expired; reload the outbox and try again.");
	rc = link_store_revoke(ws->store, r->link, strcmp(r->scope, "message") == 0, err, sizeof err);
	if (rc == LINK_STORE_ERROR) {
		sp_log_error("viewer: %s", err);
		return respond_unavailable(ws, r);
	}
	if (rc == LINK_STORE_OK)
		sp_log_info("viewer: link %s revoked from the outbox (%s)", r->link,
		            strcmp(r->scope, "message") == 0 ? "whole message" : "this link");
	where = sp_xasprintf("/outbox/%s?done=%s", ws->outbox_token,
	                     rc == LINK_STORE_OK ? "revoked" : "gone");
	ret = respond(ws, r, MHD_HTTP_SEE_OTHER, CSP_PAGE, HTML, NULL, "Location", where, NULL, NULL);
	sp_free_secret(where);
	return ret;
}

static enum MHD_Result
h_api_upload(struct web_server *ws, struct web_req *r)
{
	char err[SP_ERRLEN], msg_id[LINK_STORE_MSGID_HEXLEN + 1];
	struct link_store_new_msg m;
	enum link_store_rc rc;
	enum MHD_Result ret;
	int64_t now = now_s();

	if (link_record_decode(r->body.data, r->body.len, &m, err, sizeof err) < 0)
		return respond_text(ws, r, MHD_HTTP_BAD_REQUEST, err, NULL, NULL);
	m.created = now;
	if (m.expires <= now || m.expires > now + WEB_UPLOAD_MAX_TTL) {
		link_record_free(&m);
		return respond_text(ws, r, MHD_HTTP_BAD_REQUEST,
		                    "link record: expiry is in the past or too far away "
		                    "(check both clocks)", NULL, NULL);
	}
	rc = link_store_put(ws->store, &m, msg_id, err, sizeof err);
	switch (rc) {
	case LINK_STORE_OK:
		sp_log_info("viewer: stored an uploaded message %s with %zu link(s)", msg_id, m.n_links);
		ret = respond_text(ws, r, MHD_HTTP_CREATED, msg_id, NULL, NULL);
		break;
	case LINK_STORE_EXISTS:
		ret = respond_text(ws, r, MHD_HTTP_CONFLICT, err, NULL, NULL);
		break;
	default:
		sp_log_error("viewer: upload: %s", err);
		ret = respond_text(ws, r, MHD_HTTP_SERVICE_UNAVAILABLE, "the store is unavailable",
		                   NULL, NULL);
		break;
	}
	link_record_free(&m);
	return ret;
}

static enum MHD_Result
h_api_revoke(struct web_server *ws, struct web_req *r)
{
	const char *id = r->url + strlen("/api/v1/links/");
	char err[SP_ERRLEN];
	enum link_store_rc rc;

	rc = link_store_revoke(ws->store, id, true, err, sizeof err);
	if (rc == LINK_STORE_ERROR) {
		sp_log_error("viewer: %s", err);
		return respond_text(ws, r, MHD_HTTP_SERVICE_UNAVAILABLE, "the store is unavailable",
		                    NULL, NULL);
	}
	if (rc != LINK_STORE_OK)
		return respond_text(ws, r, MHD_HTTP_NOT_FOUND, "no such link", NULL, NULL);
	sp_log_info("viewer: link %s revoked through the API", id);
	return respond_text(ws, r, MHD_HTTP_OK, "revoked", NULL, NULL);
}

/* ---- MHD plumbing ---- */

static bool
method_matches(const char *want, const char *got)
{
	return strcmp(want, got) == 0 || (strcmp(want, "GET") == 0 && strcmp(got, "HEAD") == 0);
}

static bool
path_matches(struct web_server *ws, enum web_side side, const struct web_route *rt,
             const char *url)
{
	const char *p = rt->path ? rt->path : ws->link_path;

	if (rt->side != side)
		return false;
	return rt->prefix ? strncmp(url, p, strlen(p)) == 0 : strcmp(url, p) == 0;
}

/* The route for (method, url); *allow is set when only the method is wrong. */
static const struct web_route *
route_find(struct web_server *ws, enum web_side side, const char *method, const char *url,
           const char **allow)
{
	size_t i;

	*allow = NULL;
	for (i = 0; i < SP_ARRAY_LEN(routes); i++) {
		if (!path_matches(ws, side, &routes[i], url))
			continue;
		if (method_matches(routes[i].method, method))
			return &routes[i];
		if (*allow == NULL)
			*allow = strcmp(routes[i].method, "GET") == 0 ? "GET, HEAD" : routes[i].method;
	}
	return NULL;
}

static void
field_append(char *dst, const char *data, uint64_t off, size_t size, bool *bad)
{
	size_t have = strlen(dst);

	if (off != have || have + size >= FIELD_MAX) {
		*bad = true;
		return;
	}
	memcpy(dst + have, data, size);
	dst[have + size] = '\0';
}

static enum MHD_Result
post_field(void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
           const char *content_type, const char *transfer_encoding, const char *data,
           uint64_t off, size_t size)
{
	struct web_req *r = cls;

	/* A multipart/form-data part without a name: libmicrohttpd passes NULL. */
	if (key == NULL) {
		r->bad_form = true;
		return MHD_YES;
	}
	if (strcmp(key, "password") == 0) {
		if (size && sp_buf_append(&r->password, data, size) < 0)
			r->bad_form = true;
		else if (r->password.data == NULL)
			sp_buf_append(&r->password, "", 0);
		/* A NUL inside the password would cut it short: refuse instead. */
		if (size && memchr(data, '\0', size) != NULL)
			r->bad_form = true;
	} else if (strcmp(key, "dl") == 0) {
		r->has_dl = true;
		field_append(r->dl, data, off, size, &r->bad_form);
	} else if (strcmp(key, "part") == 0) {
		field_append(r->part, data, off, size, &r->bad_form);
	} else if (strcmp(key, "token") == 0) {
		field_append(r->token, data, off, size, &r->bad_form);
	} else if (strcmp(key, "link") == 0) {
		field_append(r->link, data, off, size, &r->bad_form);
	} else if (strcmp(key, "scope") == 0) {
		field_append(r->scope, data, off, size, &r->bad_form);
	}
	return MHD_YES;
}

static void
req_free(struct web_req *r)
{
	if (r == NULL)
		return;
	if (r->pp)
		MHD_destroy_post_processor(r->pp);
	sp_buf_wipe(&r->password);
	sp_buf_wipe(&r->body);
	free(r->url);
	free(r->method);
	sodium_memzero(r, sizeof *r);
	free(r);
}

static struct web_conn *
conn_record(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci ? ci->socket_context : NULL;
}

static void
on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
             enum MHD_RequestTerminationCode toe)
{
	struct web_listener *l = cls;

	req_free(*req_cls);
	*req_cls = NULL;
	/* The next request on a kept-alive connection starts its clock now. */
	if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
		web_conns_rearm(l->conns, conn_record(c), sp_now_ms());
}

/* Is the raw request target (before libmicrohttpd decodes it) one this server
 * could mean?  Our paths never need an escape: a '%' in the path, a NUL or
 * control byte anywhere, a bad or NUL escape in the query, a backslash, an
 * empty, "." or ".." segment are all someone probing for a second spelling
 * of a path ("/outbox%00", "//outbox", "/s/../outbox"). */
bool
web_uri_is_plain(const char *uri)
{
	const char *p;
	bool query = false;

	if (uri == NULL || uri[0] != '/')
		return false;
	for (p = uri; *p; p++) {
		unsigned char ch = (unsigned char)*p;
		if (ch <= 0x20 || ch >= 0x7f || ch == '\\' || ch == '#')
			return false;
		if (ch == '?') {
			query = true;
			continue;
		}
		if (!query && ch == '/') {
			const char *seg = p + 1;
			size_t n = strcspn(seg, "/?");
			if (n == 0 && seg[0] == '/')
				return false;
			if ((n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
				return false;
		}
		if (ch == '%') {
			if (!query || !g_ascii_isxdigit(p[1]) || !g_ascii_isxdigit(p[2]) ||
			    (p[1] == '0' && p[2] == '0'))
				return false;
			p += 2;
		}
	}
	return true;
}

/* MHD_OPTION_URI_LOG_CALLBACK: called once per request with the raw target,
 * before it is decoded; what it returns is the request's *req_cls.  Never
 * logs the target: the outbox's carries its token. */
static void *
on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
	struct web_listener *l = cls;
	struct web_req *r = sp_xcalloc(1, sizeof *r);

	r->l = l;
	r->conn = c;
	r->wc = conn_record(c);
	r->bad_uri = !web_uri_is_plain(uri);
	sp_buf_init(&r->body, 0);
	sp_buf_init(&r->password, WEB_PASSWORD_MAX);
	return r;
}

struct joined {
	const char *name;
	struct sp_buf b;
	bool any;
};

static enum MHD_Result
join_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct joined *j = cls;

	if (key == NULL || value == NULL || !sp_streq_nocase(key, j->name))
		return MHD_YES;
	if (j->any)
		sp_buf_puts(&j->b, ", ");
	sp_buf_puts(&j->b, value);
	j->any = true;
	return MHD_YES;
}

/* Every line of a header, joined with ", " in order (RFC 9110 5.3): a proxy
 * may add its own X-Forwarded-For line after the one a client sent, and the
 * first line alone would be the client's word.  NULL when absent. */
static char *
header_all(struct web_req *r, const char *name)
{
	struct joined j = { .name = name };
	size_t len;

	sp_buf_init(&j.b, 0);
	MHD_get_connection_values(r->conn, MHD_HEADER_KIND, join_header, &j);
	if (!j.any) {
		sp_buf_free(&j.b);
		return NULL;
	}
	return sp_buf_steal(&j.b, &len);
}

static void
client_of(struct web_server *ws, struct web_req *r)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;
	char *xff = header_all(r, "X-Forwarded-For"), *fwd = header_all(r, "Forwarded");
	struct web_forwarded fw = { xff, fwd, header(r, "X-Real-IP") };

	r->loopback = sp_net_addr_is_loopback(sa);
	if (!web_client_key(sa, &ws->trusted_proxies, &fw, r->client))
		sp_strlcpy(r->client, "unknown", sizeof r->client);
	free(xff);
	free(fwd);
}

static enum MHD_Result
count_host(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	unsigned *n = cls;

	if (g_ascii_strcasecmp(key, "Host") == 0)
		(*n)++;
	return MHD_YES;
}

/* First call for a request: route it, run the guard, prepare for its body.
 * Returns MHD_YES with *done false to go on reading. */
static enum MHD_Result
req_begin(struct web_server *ws, struct web_req *r, const char *url, const char *method,
          bool *done)
{
	const char *allow, *clen;
	unsigned status, hosts = 0;

	*done = true;
	r->begun = true;
	r->url = sp_xstrdup(url);
	r->method = sp_xstrdup(method);
	client_of(ws, r);
	/* Which Host a request is for must not depend on which copy a check
	 * reads: libmicrohttpd keeps both and returns the first. */
	MHD_get_connection_values(r->conn, MHD_HEADER_KIND, count_host, &hosts);
	if (r->bad_uri || hosts > 1)
		return respond_notice(ws, r, MHD_HTTP_BAD_REQUEST, "Bad request",
		                      "This request cannot be read.");
	r->route = route_find(ws, r->l->side, method, url, &allow);
	if (r->route == NULL && allow != NULL)
		return respond(ws, r, MHD_HTTP_METHOD_NOT_ALLOWED, CSP_PAGE, TEXT, NULL, "Allow", allow,
		               NULL, NULL);
	if (r->route == NULL)
		return respond_notice(ws, r, MHD_HTTP_NOT_FOUND, "Not found",
		                      "There is nothing at this address.");
	switch (r->route->guard) {
	case GUARD_OUTBOX:
		if ((status = outbox_guard(ws, r)) != 0)
			return status == MHD_HTTP_NOT_FOUND ?
			       respond_notice(ws, r, status, "Not found",
			                      "There is nothing at this address.") :
			       respond_notice(ws, r, status, "Forbidden",
			                      "The outbox is shown only to a browser on the computer "
			                      "that runs sealpost.");
		break;
	case GUARD_API:
		if (!ws->api_enabled)
			return respond_text(ws, r, MHD_HTTP_NOT_FOUND, "the upload API is turned off",
			                    NULL, NULL);
		if (!api_authorized(ws, r))
			return respond_text(ws, r, MHD_HTTP_UNAUTHORIZED, "bad or missing bearer token",
			                    "WWW-Authenticate", "Bearer realm=\"sealpost\"");
		/* A message may take a while to upload; the sender is known. */
		if (r->route->body == BODY_RAW)
			web_conns_extend(r->l->conns, r->wc,
			                 sp_now_ms() + (int64_t)WEB_UPLOAD_DEADLINE_S * 1000);
		break;
	case GUARD_NONE:
		break;
	}
	if (r->route->body == BODY_NONE) {
		*done = false;
		return MHD_YES;
	}
	r->body_max = r->route->body == BODY_RAW ? ws->upload_max : WEB_FORM_MAX;
	r->body.limit = r->body_max;
	clen = header(r, "Content-Length");
	if (clen != NULL) {
		uint64_t n;
		char err[SP_ERRLEN];
		if (sp_parse_uint(clen, 0, UINT64_MAX, &n, err, sizeof err) < 0 || n > r->body_max)
			return respond_text(ws, r, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large",
			                    NULL, NULL);
	}
	if (r->route->body == BODY_FORM) {
		r->pp = MHD_create_post_processor(r->conn, 1024, post_field, r);
		if (r->pp == NULL)
			return respond_notice(ws, r, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "Bad request",
			                      "Expected a form.");
	}
	*done = false;
	return MHD_YES;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
           const char *version, const char *upload_data, size_t *upload_data_size,
           void **req_cls)
{
	struct web_listener *l = cls;
	struct web_server *ws = l->ws;
	struct web_req *r = *req_cls;
	bool done;

	if (r == NULL) /* on_uri runs for every request; never without it */
		*req_cls = r = on_uri(l, "", c);
	if (!r->begun) {
		enum MHD_Result ret = req_begin(ws, r, url, method, &done);
		if (done || ret != MHD_YES)
			return ret;
		/* Answer from the next call, never the first: libmicrohttpd 0.9.75
		 * closes the connection (Connection: close) after a response queued
		 * in the first call, so every request would cost a TCP connection
		 * and a thread (5k instead of 79k requests/s).  For routes with a
		 * body, it comes in the next calls anyway. */
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		if (r->body_max == 0 || n > r->body_max - r->body_len)
			return MHD_NO; /* chunked body past the limit: hang up */
		r->body_len += n;
		if (r->pp != NULL)
			return MHD_post_process(r->pp, upload_data, n) == MHD_YES ? MHD_YES : MHD_NO;
		return sp_buf_append(&r->body, upload_data, n) == 0 ? MHD_YES : MHD_NO;
	}
	/* The whole request is in: answering it (a tarpit wait, the KDF) is not
	 * held to the deadline. */
	web_conns_answering(l->conns, r->wc);
	return r->route->handler(ws, r);
}

/* MHD_OPTION_NOTIFY_CONNECTION: count the connection under its client and
 * start its clock; forget it when it closes (before its socket is closed). */
static void
on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
              enum MHD_ConnectionNotificationCode toe)
{
	struct web_listener *l = cls;
	const union MHD_ConnectionInfo *fd, *addr;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		fd = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		addr = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		*socket_context = web_conns_open(l->conns, addr ? addr->client_addr : NULL,
		                                 fd ? fd->connect_fd : -1, sp_now_ms());
	} else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		web_conns_close(l->conns, *socket_context);
		*socket_context = NULL;
	}
}

/* The accept policy: at most WEB_PER_IP_CONNECTION_LIMIT per client, an IPv6
 * client being its /64.  Accepting and the STARTED notification both run in
 * the daemon's one listening thread, so the count cannot be overtaken. */
static enum MHD_Result
on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
	struct web_listener *l = cls;

	return web_conns_admit(l->conns, addr) ? MHD_YES : MHD_NO;
}

/* Tokens are at least this long: a link token is 43 characters, the outbox
 * token 64; words, numbers and addresses in libmicrohttpd's messages are
 * shorter. */
#define WEB_LOG_TOKEN_MIN 20

static bool
token_char(char c)
{
	return g_ascii_isalnum(c) || c == '-' || c == '_';
}

void
web_log_redact(char *line)
{
	static const char mark[] = "[redacted]";
	char *in = line, *out = line;

	while (*in) {
		size_t n = 0;
		while (token_char(in[n]))
			n++;
		if (n >= WEB_LOG_TOKEN_MIN) {
			memcpy(out, mark, sizeof mark - 1);
			out += sizeof mark - 1;
			in += n;
		} else if (n > 0) {
			memmove(out, in, n);
			out += n;
			in += n;
		} else {
			*out++ = *in++;
		}
	}
	*out = '\0';
}

SP_PRINTF(2, 0)
static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	size_t n;

	vsnprintf(line, sizeof line, fmt, ap);
	/* libmicrohttpd names the URL in some messages ("Failed to send data in
	 * response for %s"): a link token or the outbox token must not reach
	 * the log. */
	web_log_redact(line);
	n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	sp_log_warn("viewer: %s", line);
}

/* ---- sweeper ---- */

/* Downloads of links that left the store (revoked by another process,
 * expired, swept) end now, not at their next request: the bytes are wiped. */
static void
prune_sessions(struct web_server *ws)
{
	char (*ids)[SP_LINK_ID_HEXLEN + 1] = sp_xcalloc(WEB_SESSION_MAX, sizeof *ids);
	char err[SP_ERRLEN];
	struct link_store_link l;
	enum link_store_rc rc;
	size_t n, i;

	n = web_sessions_links(ws->sessions, ids, WEB_SESSION_MAX);
	for (i = 0; i < n; i++) {
		rc = link_store_get(ws->store, ids[i], now_s(), &l, err, sizeof err);
		link_store_link_clear(&l);
		if (rc == LINK_STORE_GONE && web_sessions_drop_link(ws->sessions, ids[i]) > 0)
			sp_log_info("viewer: link %s is gone: its downloads end", ids[i]);
	}
	free(ids);
}

void
web_server_sweep(struct web_server *ws)
{
	char err[SP_ERRLEN];
	unsigned nl = 0, nm = 0;

	if (link_store_sweep(ws->store, now_s(), &nl, &nm, err, sizeof err) != LINK_STORE_OK)
		sp_log_error("viewer: sweep: %s", err);
	else if (nl || nm)
		sp_log_info("viewer: swept %u expired link(s) and %u message(s)", nl, nm);
	web_sessions_expire(ws->sessions, sp_now_ms());
	prune_sessions(ws);
	web_tarpit_expire(ws->tarpit, sp_now_ms());
	web_outbox_expire(now_s());
}

static void *
sweeper_main(void *arg)
{
	struct web_server *ws = arg;
	struct timespec until;
	int64_t next_sweep = 0, now;

	pthread_mutex_lock(&ws->stop_lock);
	while (!ws->stopping) {
		pthread_mutex_unlock(&ws->stop_lock);
		now = sp_now_ms();
		/* Requests past their deadline: every tick. */
		if (web_conns_reap(ws->pub.conns, now) + web_conns_reap(ws->obx.conns, now) > 0)
			sp_log_debug("viewer: closed connection(s) whose request was not in after %d s",
			             WEB_REQUEST_DEADLINE_S);
		if (now >= next_sweep) {
			web_server_sweep(ws);
			next_sweep = now + (int64_t)WEB_SWEEP_INTERVAL_S * 1000;
		}
		pthread_mutex_lock(&ws->stop_lock);
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += (long)WEB_REAP_INTERVAL_MS * 1000000L;
		until.tv_sec += until.tv_nsec / 1000000000L;
		until.tv_nsec %= 1000000000L;
		while (!ws->stopping &&
		       pthread_cond_timedwait(&ws->stop_cond, &ws->stop_lock, &until) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&ws->stop_lock);
	return NULL;
}

/* ---- start / stop ---- */

char *
web_link_path(const char *base_url)
{
	const char *p;

	if (base_url == NULL || *base_url == '\0')
		return sp_xstrdup("/s/");
	if (sp_has_prefix_nocase(base_url, "https://"))
		p = base_url + 8;
	else if (sp_has_prefix_nocase(base_url, "http://"))
		p = base_url + 7;
	else
		return NULL;
	p = strchr(p, '/');
	if (p == NULL)
		return sp_xstrdup("/");
	if (strpbrk(p, "?#") != NULL)
		return NULL;
	return sp_xstrdup(p);
}

static int
listen_socket(const char *key, const struct sp_listen *l, char *err, size_t errsz)
{
	struct sp_net_failure why;
	int fd = sp_net_listen(l->host[0] ? l->host : NULL, l->port, false, WEB_LISTEN_BACKLOG, &why);
	const char *text = fd < 0 ? sp_net_failure_text(&why) : NULL;

	if (fd >= 0)
		return fd;
	if (why.step == SP_NET_RESOLVE)
		sp_seterr(err, errsz, "[linkserver] %s %s:%s: %s", key, l->host, l->port, text);
	else if (why.step == SP_NET_SOCKET)
		sp_seterr(err, errsz, "[linkserver] %s: socket: %s", key, text);
	else if (why.step == SP_NET_BIND)
		sp_seterr(err, errsz, "[linkserver] %s %s:%s: cannot bind: %s%s", key, l->host, l->port,
		          text, why.code == EACCES ?
		          " (ports below 1024 need privileges: use a higher port behind a reverse proxy)" :
		          "");
	else
		sp_seterr(err, errsz, "[linkserver] %s: %s", key, text);
	return -1;
}

static int
load_api_token(struct web_server *ws, const char *path, char *err, size_t errsz)
{
	char *tok = NULL;
	size_t len = 0;
	int rv = -1;

	if (path == NULL || *path == '\0')
		return 0;
	if (sp_read_file(path, WEB_TOKEN_FILE_MAX, &tok, &len, err, errsz) < 0)
		return -1;
	sp_strstrip(tok);
	if (strlen(tok) < WEB_TOKEN_MIN || strpbrk(tok, " \t\r\n") != NULL) {
		sp_seterr(err, errsz, "[link] upload_token_file %s: the token must be one line of at "
		          "least %d characters without spaces", path, WEB_TOKEN_MIN);
		goto out;
	}
	crypto_generichash(ws->api_token_hash, sizeof ws->api_token_hash, (unsigned char *)tok,
	                   strlen(tok), NULL, 0);
	ws->api_enabled = true;
	rv = 0;
out:
	sp_free_secret(tok);
	return rv;
}

static void
server_free(struct web_server *ws)
{
	if (ws == NULL)
		return;
	if (ws->sweeper_running) {
		pthread_mutex_lock(&ws->stop_lock);
		ws->stopping = true;
		pthread_cond_signal(&ws->stop_cond);
		pthread_mutex_unlock(&ws->stop_lock);
		pthread_join(ws->sweeper, NULL);
	}
	/* Let connections that are closing finish first (bounded): libmicrohttpd
	 * 0.9.75 can lose a connection whose thread is ending while the daemon
	 * stops (LeakSanitizer saw its MHD_Connection in fuzz_web_request). */
	{
		int64_t until = sp_now_ms() + WEB_STOP_DRAIN_MS;
		while ((!web_conns_idle(ws->pub.conns) || !web_conns_idle(ws->obx.conns)) &&
		       sp_now_ms() < until)
			usleep(10000);
	}
	/* The daemons after the sweeper: it reaps their connections. */
	if (ws->pub.daemon)
		MHD_stop_daemon(ws->pub.daemon);
	if (ws->obx.daemon)
		MHD_stop_daemon(ws->obx.daemon);
	web_conns_free(ws->pub.conns);
	web_conns_free(ws->obx.conns);
	pthread_cond_destroy(&ws->stop_cond);
	pthread_mutex_destroy(&ws->stop_lock);
	web_sessions_free(ws->sessions);
	web_tarpit_free(ws->tarpit);
	sem_destroy(&ws->kdf_slots);
	free(ws->link_path);
	free(ws->csp_page);
	free(ws->csp_message);
	free(ws->tls_cert);
	if (ws->tls_key) {
		sodium_memzero(ws->tls_key, ws->tls_key_len);
		free(ws->tls_key);
	}
	sodium_memzero(ws, sizeof *ws);
	free(ws);
}

/* Start one libmicrohttpd daemon on a bound socket (taken over, closed on
 * failure). */
static int
listener_start(struct web_listener *l, int fd, unsigned flags, unsigned conn_limit,
               struct MHD_OptionItem *tls_opts, char *err, size_t errsz)
{
	struct sockaddr_storage ss;

	l->conns = web_conns_new(WEB_PER_IP_CONNECTION_LIMIT,
	                         (int64_t)WEB_REQUEST_DEADLINE_S * 1000);
	if (sp_net_local_addr(fd, &ss)) {
		l->port = sp_net_addr_port((struct sockaddr *)&ss);
		if (ss.ss_family == AF_INET6)
			flags |= MHD_USE_IPv6;
	}
	/* Per-client limits are ours (on_accept: IPv6 by /64), not
	 * MHD_OPTION_PER_IP_CONNECTION_LIMIT (per exact address). */
	l->daemon = MHD_start_daemon(flags, 0, on_accept, l, on_request, l,
		MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
		MHD_OPTION_LISTEN_SOCKET, fd,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)WEB_CONNECTION_TIMEOUT_S,
		MHD_OPTION_CONNECTION_LIMIT, conn_limit,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)WEB_CONNECTION_MEMORY_LIMIT,
		MHD_OPTION_URI_LOG_CALLBACK, on_uri, l,
		MHD_OPTION_NOTIFY_CONNECTION, on_connection, l,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, l,
		MHD_OPTION_ARRAY, tls_opts,
		MHD_OPTION_END);
	if (l->daemon == NULL) {
		close(fd);
		sp_seterr(err, errsz, "libmicrohttpd did not start");
		return -1;
	}
	return 0;
}

int
web_server_start(const struct sp_config *cfg, struct link_store *store, struct web_server **out,
                 char *err, size_t errsz)
{
	struct web_server *ws = sp_xcalloc(1, sizeof *ws);
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
	                 MHD_USE_POLL | MHD_USE_ERROR_LOG;
	int fd = -1, rv = -1;
	size_t tls_cert_len = 0;
	pthread_condattr_t ca;
	struct MHD_OptionItem tls_opts[3], no_tls[1];
	const struct sp_listen *ol = &cfg->linkserver.outbox_listen;
	bool v6;

	*out = NULL;
	ws->store = store;
	ws->pub = (struct web_listener){ .ws = ws, .side = SIDE_PUBLIC };
	ws->obx = (struct web_listener){ .ws = ws, .side = SIDE_OUTBOX };
	pthread_mutex_init(&ws->stop_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&ws->stop_cond, &ca);
	pthread_condattr_destroy(&ca);
	sem_init(&ws->kdf_slots, 0, WEB_KDF_CONCURRENCY);
	ws->tarpit = web_tarpit_new(WEB_TARPIT_MAX_CLIENTS);
	ws->trusted_proxies = cfg->linkserver.trusted_proxies;
	ws->sessions = web_sessions_new(WEB_SESSION_MAX_BYTES, WEB_SESSION_MAX);
	ws->link_path = web_link_path(cfg->link.base_url);
	if (ws->link_path == NULL) {
		sp_seterr(err, errsz, "[link] base_url '%s' is not http(s)://host/path/",
		          cfg->link.base_url);
		goto out;
	}
	ws->link_path_len = strlen(ws->link_path);
	ws->outbox = cfg->linkserver.outbox;
	ws->hsts = cfg->link.base_url && sp_has_prefix_nocase(cfg->link.base_url, "https://");
	/* An upload carries a message of at most [proxy] max_message_size, its
	 * encryption overhead (well under 1/64) and the links' wrapped keys. */
	ws->upload_max = (size_t)cfg->proxy.max_message_size + (size_t)cfg->proxy.max_message_size / 64 +
	                 (size_t)LINK_STORE_LINKS_MAX * (LINK_STORE_WRAPPED_MAX + 32) + 4096;
	if (load_api_token(ws, cfg->link.upload_token_file, err, errsz) < 0)
		goto out;
	/* The outbox's capability: made at the first start, kept (0600) in the
	 * state directory, where `sealpost outbox` reads it. */
	if (ws->outbox &&
	    web_outbox_token(cfg->state_dir, true, ws->outbox_token, err, errsz) < 0)
		goto out;
	/* style-src: our one stylesheet by hash.  img-src data: on the message page
	 * only, for images embedded in the HTML part; never a remote URL. */
	ws->csp_page = sp_xasprintf("default-src 'none'; style-src %s; form-action 'self'; "
	                            "frame-ancestors 'none'; base-uri 'none'",
	                            web_pages_style_source());
	ws->csp_message = sp_xasprintf("default-src 'none'; style-src %s; img-src data:; "
	                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
	                               web_pages_style_source());

	if (cfg->linkserver.tls_cert && cfg->linkserver.tls_cert[0]) {
		if (!MHD_is_feature_supported(MHD_FEATURE_TLS)) {
			sp_seterr(err, errsz, "[linkserver] tls_cert: this libmicrohttpd has no TLS; use a "
			          "TLS reverse proxy instead");
			goto out;
		}
		if (sp_read_file(cfg->linkserver.tls_cert, WEB_PEM_MAX, &ws->tls_cert, &tls_cert_len,
		                 err, errsz) < 0 ||
		    sp_read_file(cfg->linkserver.tls_key, WEB_PEM_MAX, &ws->tls_key, &ws->tls_key_len,
		                 err, errsz) < 0)
			goto out;
	}
	tls_opts[0] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
	no_tls[0] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
	if (ws->tls_cert) {
		tls_opts[0] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0, ws->tls_cert };
		tls_opts[1] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0, ws->tls_key };
		tls_opts[2] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
	}
	if ((fd = listen_socket("listen", &cfg->linkserver.listen, err, errsz)) < 0)
		goto out;
	if (listener_start(&ws->pub, fd, flags | (ws->tls_cert ? MHD_USE_TLS : 0),
	                   WEB_CONNECTION_LIMIT, tls_opts, err, errsz) < 0) {
		sp_seterr(err, errsz, "[linkserver] listen %s:%s: libmicrohttpd did not start",
		          cfg->linkserver.listen.host, cfg->linkserver.listen.port);
		goto out;
	}
	/* The outbox: plain HTTP on loopback (config.c refuses anything else). */
	if (ws->outbox) {
		if ((fd = listen_socket("outbox_listen", ol, err, errsz)) < 0)
			goto out;
		if (listener_start(&ws->obx, fd, flags, WEB_OUTBOX_CONNECTION_LIMIT, no_tls, err,
		                   errsz) < 0) {
			sp_seterr(err, errsz, "[linkserver] outbox_listen %s:%s: libmicrohttpd did not "
			          "start", ol->host, ol->port);
			goto out;
		}
	}
	if (pthread_create(&ws->sweeper, NULL, sweeper_main, ws) != 0) {
		sp_seterr(err, errsz, "viewer: cannot start the sweeper thread");
		goto out;
	}
	ws->sweeper_running = true;
	/* Never the outbox token in a log line: `sealpost outbox` prints the URL. */
	if (ws->outbox) {
		v6 = strchr(ol->host, ':') != NULL;
		sp_log_info("viewer: outbox on http://%s%s%s:%u/outbox/ (its address, with its "
		            "token: sealpost outbox)", v6 ? "[" : "", ol->host, v6 ? "]" : "",
		            (unsigned)ws->obx.port);
	}
	v6 = strchr(cfg->linkserver.listen.host, ':') != NULL;
	sp_log_info("viewer: listening on %s%s%s%s:%u, links under %s%s",
	            ws->tls_cert ? "https://" : "http://", v6 ? "[" : "", cfg->linkserver.listen.host,
	            v6 ? "]" : "", (unsigned)ws->pub.port, ws->link_path,
	            ws->api_enabled ? ", upload API on" : "");
	*out = ws;
	ws = NULL;
	rv = 0;
out:
	server_free(ws);
	return rv;
}

void
web_server_stop(struct web_server *ws)
{
	server_free(ws);
}

uint16_t
web_server_port(const struct web_server *ws)
{
	return ws->pub.port;
}

uint16_t
web_server_outbox_port(const struct web_server *ws)
{
	return ws->outbox ? ws->obx.port : 0;
}

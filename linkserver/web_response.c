/* web_response.c - every response the viewer sends: the headers all of them
 * carry, a body wiped when libmicrohttpd is done with it, the common pages. */
#include "web_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "web_assets.h"
#include "web_conn.h"

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
csp_value(struct web_server *ws, enum web_csp csp)
{
	switch (csp) {
	case WEB_CSP_PAGE: return ws->csp_page;
	case WEB_CSP_MESSAGE: return ws->csp_message;
	case WEB_CSP_NONE: break;
	}
	/* Downloads, API answers, plain text: nothing may load or run, ever. */
	return "default-src 'none'; frame-ancestors 'none'; form-action 'none'; base-uri 'none'; "
	       "sandbox";
}

/* The headers every response carries. */
static void
add_headers(struct web_server *ws, struct MHD_Response *resp, const char *csp, const char *cache)
{
	MHD_add_response_header(resp, "Cache-Control", cache);
	MHD_add_response_header(resp, "Pragma", "no-cache");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(resp, "Content-Security-Policy", csp);
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "X-Frame-Options", "DENY");
	MHD_add_response_header(resp, "Cross-Origin-Opener-Policy", "same-origin");
	MHD_add_response_header(resp, "Cross-Origin-Resource-Policy", "same-origin");
	MHD_add_response_header(resp, "X-Robots-Tag", "noindex, nofollow, noarchive");
	MHD_add_response_header(resp, "Permissions-Policy",
	                        "camera=(), microphone=(), geolocation=(), interest-cohort=()");
	if (ws->hsts)
		MHD_add_response_header(resp, "Strict-Transport-Security", "max-age=31536000");
}

/* The request is in: answer it (web_internal.h). */
enum MHD_Result
web_respond(struct web_server *ws, struct web_req *r, unsigned status, enum web_csp csp,
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
	add_headers(ws, resp, csp_value(ws, csp), "no-store");
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

enum MHD_Result
web_respond_page(struct web_server *ws, struct web_req *r, unsigned status, struct sp_buf *b)
{
	return web_respond(ws, r, status, WEB_CSP_PAGE, WEB_HTML, b, NULL, NULL, NULL, NULL);
}

enum MHD_Result
web_respond_notice(struct web_server *ws, struct web_req *r, unsigned status, const char *title,
                   const char *text)
{
	struct sp_buf b;

	sp_buf_init(&b, 0);
	web_page_notice(&b, title, text);
	return web_respond_page(ws, r, status, &b);
}

/* Every address we do not serve, and the outbox without its token. */
enum MHD_Result
web_respond_not_found(struct web_server *ws, struct web_req *r)
{
	return web_respond_notice(ws, r, MHD_HTTP_NOT_FOUND, "Not found",
	                          "There is nothing at this address.");
}

enum MHD_Result
web_respond_gone(struct web_server *ws, struct web_req *r, enum web_gone why)
{
	struct sp_buf b;

	sp_buf_init(&b, 0);
	web_page_gone(&b, why);
	return web_respond_page(ws, r, MHD_HTTP_GONE, &b);
}

enum MHD_Result
web_respond_text(struct web_server *ws, struct web_req *r, unsigned status, const char *text,
                 const char *h1, const char *v1)
{
	struct sp_buf b;

	sp_buf_init(&b, 0);
	sp_buf_printf(&b, "%s\n", text);
	return web_respond(ws, r, status, WEB_CSP_NONE, WEB_TEXT, &b, h1, v1, NULL, NULL);
}

enum MHD_Result
web_respond_store_error(struct web_server *ws, struct web_req *r, const char *err)
{
	sp_log_error("viewer: %s", err);
	return web_respond_notice(ws, r, MHD_HTTP_SERVICE_UNAVAILABLE, "Temporarily unavailable",
	                          "The viewer cannot reach its store right now. Please try again in "
	                          "a few minutes.");
}

/* GONE is the page for a link that is not (or no longer) there, ERROR is
 * logged and is "try again later". */
enum MHD_Result
web_respond_store_miss(struct web_server *ws, struct web_req *r, enum link_store_rc rc,
                       const char *err)
{
	if (rc == LINK_STORE_ERROR)
		return web_respond_store_error(ws, r, err);
	return web_respond_gone(ws, r, WEB_GONE_LINK);
}

/* A compiled-in asset (web_assets.h): served from the table, never copied.
 * ETag is its SHA-256; a matching If-None-Match gets 304 and no body. */
enum MHD_Result
web_respond_asset(struct web_server *ws, struct web_req *r, const struct web_asset *a,
                  const char *csp, const char *cache)
{
	const char *inm = web_header(r, "If-None-Match");
	struct MHD_Response *resp;
	enum MHD_Result ret;
	char etag[2 + 64 + 1];
	bool fresh;

	snprintf(etag, sizeof etag, "\"%s\"", a->sha256_hex);
	fresh = inm != NULL && strcmp(inm, etag) == 0;
	web_conns_answering(r->l->conns, r->wc);
	resp = MHD_create_response_from_buffer(fresh ? 0 : a->len, (void *)a->data,
	                                       MHD_RESPMEM_PERSISTENT);
	if (resp == NULL)
		return MHD_NO;
	add_headers(ws, resp, csp, cache);
	MHD_add_response_header(resp, "Content-Type", a->content_type);
	MHD_add_response_header(resp, "ETag", etag);
	ret = MHD_queue_response(r->conn, fresh ? MHD_HTTP_NOT_MODIFIED : MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return ret;
}

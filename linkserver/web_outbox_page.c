/* web_outbox_page.c - the outbox listener's pages: the guard that keeps them
 * to this machine's own browser, the list with links and passwords, revoke.
 * The list itself is web_outbox.c; the HTML is web_pages.c. */
#include "web_internal.h"

#include <string.h>

#include "log.h"

/* The outbox shows passwords.  What keeps them is the capability token in
 * its URL (checked by the handlers) on a listener of its own; these checks
 * only narrow it further to this machine's own browser: a forwarder adds
 * forwarding headers or a foreign Host, DNS rebinding a foreign Host, a
 * cross-site form a foreign Origin or Sec-Fetch-Site. */
unsigned
web_outbox_guard(struct web_server *ws, struct web_req *r)
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
		if (web_header(r, forwarded[i]) != NULL)
			return MHD_HTTP_FORBIDDEN;
	if (!web_host_is_loopback(web_header(r, "Host")))
		return MHD_HTTP_FORBIDDEN;
	origin = web_header(r, "Origin");
	if (origin != NULL) {
		const char *h = strstr(origin, "://");
		if (h == NULL || !web_host_is_loopback(h + 3))
			return MHD_HTTP_FORBIDDEN;
	}
	site = web_header(r, "Sec-Fetch-Site");
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

enum MHD_Result
web_h_outbox(struct web_server *ws, struct web_req *r)
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
		return web_respond_not_found(ws, r);
	if (link_store_list(ws->store, &links, &n, err, sizeof err) != LINK_STORE_OK)
		return web_respond_store_error(ws, r, err);
	if (done && strcmp(done, "revoked") == 0)
		notice = "Revoked: the link no longer opens and its data has been deleted.";
	else if (done && strcmp(done, "gone") == 0)
		notice = "That link was already gone.";
	sp_buf_init(&b, 0);
	web_page_outbox(&b, links, n, ws->outbox_token, sp_time(), notice);
	link_store_list_free(links, n);
	return web_respond_page(ws, r, MHD_HTTP_OK, &b);
}

enum MHD_Result
web_h_outbox_revoke(struct web_server *ws, struct web_req *r)
{
	char err[SP_ERRLEN], *where;
	enum link_store_rc rc;
	enum MHD_Result ret;

	/* The token in the body: a cross-site form cannot know it. */
	if (r->bad_form || !outbox_token_ok(ws, r->token))
		return web_respond_notice(ws, r, MHD_HTTP_FORBIDDEN, "Forbidden",
		                          "The form has expired; reload the outbox and try again.");
	rc = link_store_revoke(ws->store, r->link, strcmp(r->scope, "message") == 0, err, sizeof err);
	if (rc == LINK_STORE_ERROR)
		return web_respond_store_error(ws, r, err);
	if (rc == LINK_STORE_OK)
		sp_log_info("viewer: link %s revoked from the outbox (%s)", r->link,
		            strcmp(r->scope, "message") == 0 ? "whole message" : "this link");
	where = sp_xasprintf("/outbox/%s?done=%s", ws->outbox_token,
	                     rc == LINK_STORE_OK ? "revoked" : "gone");
	ret = web_respond(ws, r, MHD_HTTP_SEE_OTHER, WEB_CSP_PAGE, WEB_HTML, NULL, "Location", where,
	                  NULL, NULL);
	sp_free_secret(where);
	return ret;
}

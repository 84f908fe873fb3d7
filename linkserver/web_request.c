/* web_request.c - one request: the routing table, the raw-target check, the
 * guard that runs before any body is read, the body within its route's
 * limit, the form fields, and who the client is. */
#include "web_internal.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "web_conn.h"
#include "web_server.h"

/* An upload through the API (bearer token checked) may take this long for its
 * body: 50 MiB at ~100 KB/s. */
#define WEB_UPLOAD_DEADLINE_S 600
/* A form POST (password, download, revoke) is a few hundred bytes. */
#define WEB_FORM_MAX 8192
/* A link v2 request body (docs/formats.md "Unlock protocol"): a JSON object
 * of one or two base64url strings, the largest ~130 bytes. */
#define WEB_V2_BODY_MAX 1024
/* The longest password accepted; generated ones are ~30 characters. */
#define WEB_PASSWORD_MAX 1024

enum body_kind { BODY_NONE, BODY_FORM, BODY_RAW, BODY_JSON, BODY_REPLY };
enum guard { GUARD_NONE, GUARD_OUTBOX, GUARD_API, GUARD_REPLY };

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

/* Exact paths first: the link path may be "/", which matches everything.
 * The outbox is only on its own listener: nothing that forwards the public
 * viewer (a reverse proxy, ssh -R, socat) can reach it there. */
static const struct web_route routes[] = {
	{ SIDE_PUBLIC, "GET", "/", false, BODY_NONE, GUARD_NONE, web_h_index },
	{ SIDE_PUBLIC, "GET", "/robots.txt", false, BODY_NONE, GUARD_NONE, web_h_robots },
	{ SIDE_PUBLIC, "GET", "/static/", true, BODY_NONE, GUARD_NONE, web_h_static },
	{ SIDE_PUBLIC, "POST", "/api/v1/links", false, BODY_RAW, GUARD_API, web_h_api_upload },
	{ SIDE_PUBLIC, "DELETE", "/api/v1/links/", true, BODY_NONE, GUARD_API, web_h_api_revoke },
	{ SIDE_PUBLIC, "GET", "/api/v1/replies", false, BODY_NONE, GUARD_API, web_h_api_replies },
	{ SIDE_PUBLIC, "DELETE", "/api/v1/replies/", true, BODY_NONE, GUARD_API,
	  web_h_api_reply_delete },
	{ SIDE_PUBLIC, "GET", "/v2/", true, BODY_NONE, GUARD_NONE, web_h_v2_get },
	{ SIDE_PUBLIC, "POST", "/v2/", true, BODY_REPLY, GUARD_REPLY, web_h_v2_reply },
	{ SIDE_PUBLIC, "POST", "/v2/", true, BODY_JSON, GUARD_NONE, web_h_v2_post },
	{ SIDE_PUBLIC, "GET", NULL, true, BODY_NONE, GUARD_NONE, web_h_link_get },
	{ SIDE_PUBLIC, "POST", NULL, true, BODY_FORM, GUARD_NONE, web_h_link_post },
	{ SIDE_OUTBOX, "GET", "/robots.txt", false, BODY_NONE, GUARD_NONE, web_h_robots },
	{ SIDE_OUTBOX, "POST", "/outbox/revoke", false, BODY_FORM, GUARD_OUTBOX,
	  web_h_outbox_revoke },
	{ SIDE_OUTBOX, "GET", "/outbox/", true, BODY_NONE, GUARD_OUTBOX, web_h_outbox },
};

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
	/* The reply route is the one "/v2/" path that ends in "/reply". */
	if (rt->body == BODY_REPLY &&
	    (strlen(url) < 6 || strcmp(url + strlen(url) - 6, "/reply") != 0))
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

	if (off != have || have + size >= WEB_FIELD_MAX) {
		*bad = true;
		return;
	}
	memcpy(dst + have, data, size);
	dst[have + size] = '\0';
}

/* The short fields of our forms (the password is kept apart: it is wiped). */
static const struct {
	const char *name;
	size_t offset;          /* of a char[WEB_FIELD_MAX] in struct web_req */
} form_fields[] = {
	{ "dl", offsetof(struct web_req, dl) },
	{ "part", offsetof(struct web_req, part) },
	{ "token", offsetof(struct web_req, token) },
	{ "link", offsetof(struct web_req, link) },
	{ "scope", offsetof(struct web_req, scope) },
};

static enum MHD_Result
post_field(void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
           const char *content_type, const char *transfer_encoding, const char *data,
           uint64_t off, size_t size)
{
	struct web_req *r = cls;
	size_t i;

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
		return MHD_YES;
	}
	if (strcmp(key, "dl") == 0)
		r->has_dl = true;
	for (i = 0; i < SP_ARRAY_LEN(form_fields); i++)
		if (strcmp(key, form_fields[i].name) == 0)
			field_append((char *)r + form_fields[i].offset, data, off, size, &r->bad_form);
	return MHD_YES;
}

void
web_req_free(struct web_req *r)
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

struct web_req *
web_req_new(struct web_listener *l, struct MHD_Connection *c, struct web_conn *wc,
            const char *uri)
{
	struct web_req *r = sp_xcalloc(1, sizeof *r);

	r->l = l;
	r->conn = c;
	r->wc = wc;
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
	struct web_forwarded fw = { xff, fwd, web_header(r, "X-Real-IP") };

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

/* The route's guard, run before any body is read.  true: refused, and *ret
 * is the answer. */
static bool
guard_refused(struct web_server *ws, struct web_req *r, enum MHD_Result *ret)
{
	unsigned status;

	switch (r->route->guard) {
	case GUARD_OUTBOX:
		if ((status = web_outbox_guard(ws, r)) == 0)
			return false;
		*ret = status == MHD_HTTP_NOT_FOUND ? web_respond_not_found(ws, r) :
		       web_respond_notice(ws, r, status, "Forbidden",
		                          "The outbox is shown only to a browser on the computer "
		                          "that runs sealpost.");
		return true;
	case GUARD_API:
		if (!ws->api_enabled) {
			*ret = web_respond_text(ws, r, MHD_HTTP_NOT_FOUND, "the upload API is turned off",
			                        NULL, NULL);
			return true;
		}
		if (!web_api_authorized(ws, r)) {
			*ret = web_respond_text(ws, r, MHD_HTTP_UNAUTHORIZED,
			                        "bad or missing bearer token", "WWW-Authenticate",
			                        "Bearer realm=\"sealpost\"");
			return true;
		}
		/* A message may take a while to upload; the sender is known. */
		if (r->route->body == BODY_RAW)
			web_conns_extend(r->l->conns, r->wc,
			                 sp_now_ms() + (int64_t)WEB_UPLOAD_DEADLINE_S * 1000);
		return false;
	case GUARD_REPLY:
		/* Before any body is read: a live reply token of this link. */
		return web_v2_reply_guard(ws, r, ret);
	case GUARD_NONE:
		break;
	}
	return false;
}

enum MHD_Result
web_req_begin(struct web_server *ws, struct web_req *r, const char *url, const char *method,
              bool *done)
{
	const char *allow, *clen;
	unsigned hosts = 0;
	enum MHD_Result ret;

	*done = true;
	r->begun = true;
	r->url = sp_xstrdup(url);
	r->method = sp_xstrdup(method);
	client_of(ws, r);
	/* Which Host a request is for must not depend on which copy a check
	 * reads: libmicrohttpd keeps both and returns the first. */
	MHD_get_connection_values(r->conn, MHD_HEADER_KIND, count_host, &hosts);
	if (r->bad_uri || hosts > 1)
		return web_respond_notice(ws, r, MHD_HTTP_BAD_REQUEST, "Bad request",
		                          "This request cannot be read.");
	r->route = route_find(ws, r->l->side, method, url, &allow);
	if (r->route == NULL && allow != NULL)
		return web_respond(ws, r, MHD_HTTP_METHOD_NOT_ALLOWED, WEB_CSP_PAGE, WEB_TEXT, NULL,
		                   "Allow", allow, NULL, NULL);
	if (r->route == NULL)
		return web_respond_not_found(ws, r);
	if (guard_refused(ws, r, &ret))
		return ret;
	if (r->route->body == BODY_NONE) {
		*done = false;
		return MHD_YES;
	}
	r->body_max = r->route->body == BODY_RAW ? ws->upload_max :
	              r->route->body == BODY_REPLY ? ws->reply_max :
	              r->route->body == BODY_JSON ? WEB_V2_BODY_MAX : WEB_FORM_MAX;
	r->body.limit = r->body_max;
	clen = web_header(r, "Content-Length");
	if (clen != NULL) {
		uint64_t n;
		char err[SP_ERRLEN];
		if (sp_parse_uint(clen, 0, UINT64_MAX, &n, err, sizeof err) < 0 || n > r->body_max)
			return web_respond_text(ws, r, MHD_HTTP_CONTENT_TOO_LARGE,
			                        "request body too large", NULL, NULL);
	}
	if (r->route->body == BODY_FORM) {
		r->pp = MHD_create_post_processor(r->conn, 1024, post_field, r);
		if (r->pp == NULL)
			return web_respond_notice(ws, r, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "Bad request",
			                          "Expected a form.");
	}
	*done = false;
	return MHD_YES;
}

enum MHD_Result
web_req_body(struct web_req *r, const char *data, size_t n)
{
	if (r->body_max == 0 || n > r->body_max - r->body_len)
		return MHD_NO; /* chunked body past the limit: hang up */
	r->body_len += n;
	if (r->pp != NULL)
		return MHD_post_process(r->pp, data, n) == MHD_YES ? MHD_YES : MHD_NO;
	return sp_buf_append(&r->body, data, n) == 0 ? MHD_YES : MHD_NO;
}

enum MHD_Result
web_req_handle(struct web_server *ws, struct web_req *r)
{
	return r->route->handler(ws, r);
}

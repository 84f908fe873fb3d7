/* link_upload.c - upload link records to a remote viewer (libcurl). */
#include "link_upload.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <json-glib/json-glib.h>
#include <sodium.h>

#include "config.h"
#include "link_record.h"
#include "net.h"

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void
curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t
collect(char *p, size_t size, size_t n, void *arg)
{
	struct sp_buf *b = arg;
	size_t len = size * n, room = b->limit - b->len;

	/* Keep the first LINK_UPLOAD_REPLY_MAX bytes, swallow the rest. */
	sp_buf_append(b, p, len < room ? len : room);
	return len;
}

/* https, or http to a loopback host; never anything else. */
static int
check_url(const char *url, char *err, size_t errsz)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL;
	int rv = -1;

	if (u == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		sp_seterr(err, errsz, "[link] upload_url: not a URL");
		goto out;
	}
	if (strcmp(scheme, "https") != 0) {
		char h[256];
		sp_strlcpy(h, host, sizeof h);
		if (h[0] == '[') {
			char *e = strchr(h, ']');
			if (e)
				*e = '\0';
			memmove(h, h + 1, strlen(h));
		}
		if (strcmp(scheme, "http") != 0 || !sp_net_host_is_loopback(h)) {
			sp_seterr(err, errsz, "[link] upload_url must be https:// (plain http only to a "
			          "loopback address)");
			goto out;
		}
	}
	rv = 0;
out:
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return rv;
}

static char *
auth_header(const char *token_file, char *err, size_t errsz)
{
	char *tok = NULL, *h;
	size_t len;

	if (token_file == NULL || *token_file == '\0') {
		sp_seterr(err, errsz, "[link] upload_url is set but upload_token_file is not");
		return NULL;
	}
	if (sp_read_file(token_file, 4096, &tok, &len, err, errsz) < 0)
		return NULL;
	sp_strstrip(tok);
	if (*tok == '\0' || strpbrk(tok, " \t\r\n") != NULL) {
		sp_seterr(err, errsz, "[link] upload_token_file %s: expected one token line", token_file);
		sp_free_secret(tok);
		return NULL;
	}
	h = sp_xasprintf("Authorization: Bearer %s", tok);
	sp_free_secret(tok);
	return h;
}

/* One request.  Returns the HTTP status, or -1 with err on a transport error. */
static long
request(const char *url, const char *method, const char *token_file, const void *body,
        size_t body_len, struct sp_buf *reply, char *err, size_t errsz)
{
	struct curl_slist *hdrs = NULL, *tmp;
	char *auth = NULL, cerr[CURL_ERROR_SIZE] = "";
	CURL *c = NULL;
	CURLcode rc;
	long status = -1;

	pthread_once(&curl_once, curl_init_once);
	if (check_url(url, err, errsz) < 0)
		return -1;
	if ((auth = auth_header(token_file, err, errsz)) == NULL)
		return -1;
	if ((c = curl_easy_init()) == NULL) {
		sp_seterr(err, errsz, "upload: cannot initialise libcurl");
		goto out;
	}
	hdrs = curl_slist_append(hdrs, auth);
	if (hdrs && (tmp = curl_slist_append(hdrs, "Content-Type: " LINK_RECORD_CONTENT_TYPE)))
		hdrs = tmp;
	if (hdrs && (tmp = curl_slist_append(hdrs, "Expect:")))
		hdrs = tmp;
	if (hdrs == NULL) {
		sp_seterr(err, errsz, "upload: out of memory");
		goto out;
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https,http");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)LINK_UPLOAD_CONNECT_TIMEOUT_S);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)LINK_UPLOAD_TIMEOUT_S);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, reply);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "sealpost");
	if (body != NULL) {
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
	} else {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	}
	rc = curl_easy_perform(c);
	if (rc != CURLE_OK) {
		sp_seterr(err, errsz, "upload to the viewer failed: %s", cerr[0] ? cerr :
		          curl_easy_strerror(rc));
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
out:
	curl_slist_free_all(hdrs);
	if (c)
		curl_easy_cleanup(c);
	sp_free_secret(auth);
	return status;
}

static void
reply_err(long status, const struct sp_buf *reply, char *err, size_t errsz)
{
	char clean[200];

	sp_sanitize(reply->data ? reply->data : "", reply->len, clean, sizeof clean);
	sp_strstrip(clean);
	sp_seterr(err, errsz, "the viewer answered HTTP %ld%s%s", status, clean[0] ? ": " : "",
	          clean);
}

/* DELETE full: 0 deleted (200), 1 not there (404), or -1 with err set. */
static int
delete_at(const char *full, const char *token_file, char *err, size_t errsz)
{
	struct sp_buf reply;
	long status;
	int rv = -1;

	sp_buf_init(&reply, LINK_UPLOAD_REPLY_MAX);
	status = request(full, "DELETE", token_file, NULL, 0, &reply, err, errsz);
	if (status == 200)
		rv = 0;
	else if (status == 404)
		rv = 1;
	else if (status >= 0)
		reply_err(status, &reply, err, errsz);
	sp_buf_free(&reply);
	return rv;
}

int
link_upload(const char *url, const char *token_file, const struct link_store_new_msg *m,
            char *err, size_t errsz)
{
	struct sp_buf rec, reply;
	long status;
	int rv = -1;

	sp_buf_init(&rec, 0);
	sp_buf_init(&reply, LINK_UPLOAD_REPLY_MAX);
	if (link_record_encode(m, &rec, err, errsz) < 0)
		goto out;
	status = request(url, "POST", token_file, rec.data, rec.len, &reply, err, errsz);
	if (status < 0)
		goto out;
	if (status != 201) {
		reply_err(status, &reply, err, errsz);
		goto out;
	}
	rv = 0;
out:
	sp_buf_free(&rec);
	sp_buf_free(&reply);
	return rv;
}

int
link_upload_revoke(const char *url, const char *token_file, const char *link_id, char *err,
                   size_t errsz)
{
	char *full;
	int rv;

	if (!link_store_id_valid(link_id)) {
		sp_seterr(err, errsz, "not a link id: expected 32 lowercase hex digits");
		return -1;
	}
	full = sp_xasprintf("%s%s%s", url, url[0] && url[strlen(url) - 1] == '/' ? "" : "/", link_id);
	rv = delete_at(full, token_file, err, errsz);
	free(full);
	return rv;
}

/* upload_url ".../api/v1/links" -> ".../api/v1/replies[/<id>]". */
static char *
replies_url(const char *url, int64_t id, char *err, size_t errsz)
{
	size_t n = strlen(url);
	const char *suffix = "/links";

	if (n > 0 && url[n - 1] == '/')
		n--;
	if (n < strlen(suffix) || strncmp(url + n - strlen(suffix), suffix, strlen(suffix)) != 0) {
		sp_seterr(err, errsz, "[link] upload_url %s does not end in /links: cannot find the "
		          "viewer's replies", url);
		return NULL;
	}
	n -= strlen(suffix);
	if (id > 0)
		return sp_xasprintf("%.*s/replies/%" PRId64, (int)n, url, id);
	return sp_xasprintf("%.*s/replies", (int)n, url);
}

static bool
json_str(JsonObject *o, const char *name, char *dst, size_t dstsz)
{
	JsonNode *m = json_object_get_member(o, name);
	const char *v;

	if (m == NULL || !JSON_NODE_HOLDS_VALUE(m) || json_node_get_value_type(m) != G_TYPE_STRING)
		return false;
	v = json_node_get_string(m);
	if (v == NULL || strlen(v) >= dstsz)
		return false;
	sp_strlcpy(dst, v, dstsz);
	return true;
}

int
link_upload_reply_next(const char *url, const char *token_file, struct link_store_reply **out,
                       char *err, size_t errsz)
{
	struct link_store_reply *r = NULL;
	struct sp_buf reply;
	JsonParser *p = NULL;
	JsonObject *o;
	JsonNode *root, *m;
	char *full, *b64 = NULL;
	long status;
	size_t blen, b64sz;
	int rv = -1;

	*out = NULL;
	if ((full = replies_url(url, 0, err, errsz)) == NULL)
		return -1;
	sp_buf_init(&reply, LINK_UPLOAD_REPLY_JSON_MAX);
	status = request(full, "GET", token_file, NULL, 0, &reply, err, errsz);
	if (status < 0)
		goto out;
	if (status == 204) {
		rv = 0;
		goto out;
	}
	if (status != 200) {
		reply_err(status, &reply, err, errsz);
		goto out;
	}
	p = json_parser_new();
	if (reply.len == 0 || !json_parser_load_from_data(p, reply.data, (gssize)reply.len, NULL) ||
	    (root = json_parser_get_root(p)) == NULL || !JSON_NODE_HOLDS_OBJECT(root))
		goto bad;
	o = json_node_get_object(root);
	r = sp_xcalloc(1, sizeof *r);
	m = json_object_get_member(o, "id");
	if (m == NULL || !JSON_NODE_HOLDS_VALUE(m) || json_node_get_value_type(m) != G_TYPE_INT64 ||
	    (r->id = json_node_get_int(m)) <= 0)
		goto bad;
	if (!json_str(o, "link_id", r->link_id, sizeof r->link_id) ||
	    !json_str(o, "sender", r->sender, sizeof r->sender) ||
	    !json_str(o, "rcpt", r->rcpt, sizeof r->rcpt) ||
	    !json_str(o, "in_reply_to", r->in_reply_to, sizeof r->in_reply_to))
		goto bad;
	m = json_object_get_member(o, "body");
	if (m == NULL || !JSON_NODE_HOLDS_VALUE(m) || json_node_get_value_type(m) != G_TYPE_STRING)
		goto bad;
	b64sz = strlen(json_node_get_string(m));
	b64 = sp_xstrdup(json_node_get_string(m));
	r->body = sp_xmalloc(b64sz / 4 * 3 + 3);
	if (sodium_base642bin(r->body, b64sz / 4 * 3 + 3, b64, b64sz, NULL, &blen, NULL,
	                      sodium_base64_VARIANT_ORIGINAL) != 0 || blen == 0)
		goto bad;
	r->body_len = blen;
	*out = r;
	r = NULL;
	rv = 1;
	goto out;
bad:
	sp_seterr(err, errsz, "the viewer's reply list is not what this sealpost understands");
out:
	if (r)
		link_store_reply_free(r, 1);
	free(b64);
	if (p)
		g_object_unref(p);
	free(full);
	sp_buf_free(&reply);
	return rv;
}

int
link_upload_reply_delete(const char *url, const char *token_file, int64_t id, char *err,
                         size_t errsz)
{
	char *full;
	int rv;

	if ((full = replies_url(url, id, err, errsz)) == NULL)
		return -1;
	rv = delete_at(full, token_file, err, errsz);
	free(full);
	return rv;
}

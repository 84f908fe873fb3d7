/* web_api.c - the upload API on the public listener: a proxy with [link]
 * upload_url stores encrypted link records here (link_record.h) and revokes
 * them, with the bearer token of [link] upload_token_file.  The client side
 * is link_upload.c.  The same token collects the secure replies the viewer
 * stored (GET /api/v1/replies, DELETE /api/v1/replies/<id>). */
#include "web_internal.h"

#include <inttypes.h>
#include <string.h>

#include <json-glib/json-glib.h>

#include "link_record.h"
#include "log.h"

/* The upload API token file holds one token line. */
#define WEB_TOKEN_FILE_MAX 4096
/* Shortest upload token accepted: 128 bits in hex or base64 is 22+ chars. */
#define WEB_TOKEN_MIN 22
/* Uploaded links may not claim an expiry further away than [link] expiry allows
 * at most (366 days) plus a day of clock skew. */
#define WEB_UPLOAD_MAX_TTL ((int64_t)367 * 86400)

/* The store failed: logged (what, then the store's error), a 503 in text. */
static enum MHD_Result
respond_store_error(struct web_server *ws, struct web_req *r, const char *what, const char *err)
{
	sp_log_error("viewer: %s%s", what, err);
	return web_respond_text(ws, r, MHD_HTTP_SERVICE_UNAVAILABLE, "the store is unavailable",
	                        NULL, NULL);
}

int
web_api_load_token(struct web_server *ws, const char *path, char *err, size_t errsz)
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

bool
web_api_authorized(struct web_server *ws, struct web_req *r)
{
	unsigned char h[crypto_generichash_BYTES];
	const char *a = web_header(r, "Authorization");
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

enum MHD_Result
web_h_api_upload(struct web_server *ws, struct web_req *r)
{
	char err[SP_ERRLEN], msg_id[LINK_STORE_MSGID_HEXLEN + 1];
	struct link_store_new_msg m;
	enum link_store_rc rc;
	enum MHD_Result ret;
	int64_t now = sp_time();

	if (link_record_decode(r->body.data, r->body.len, &m, err, sizeof err) < 0)
		return web_respond_text(ws, r, MHD_HTTP_BAD_REQUEST, err, NULL, NULL);
	m.created = now;
	if (m.expires <= now || m.expires > now + WEB_UPLOAD_MAX_TTL) {
		link_record_free(&m);
		return web_respond_text(ws, r, MHD_HTTP_BAD_REQUEST,
		                        "link record: expiry is in the past or too far away "
		                        "(check both clocks)", NULL, NULL);
	}
	rc = link_store_put(ws->store, &m, msg_id, err, sizeof err);
	switch (rc) {
	case LINK_STORE_OK:
		sp_log_info("viewer: stored an uploaded message %s with %zu link(s)", msg_id, m.n_links);
		ret = web_respond_text(ws, r, MHD_HTTP_CREATED, msg_id, NULL, NULL);
		break;
	case LINK_STORE_EXISTS:
		ret = web_respond_text(ws, r, MHD_HTTP_CONFLICT, err, NULL, NULL);
		break;
	default:
		ret = respond_store_error(ws, r, "upload: ", err);
		break;
	}
	link_record_free(&m);
	return ret;
}

enum MHD_Result
web_h_api_revoke(struct web_server *ws, struct web_req *r)
{
	const char *id = r->url + strlen("/api/v1/links/");
	char err[SP_ERRLEN];
	enum link_store_rc rc;

	rc = link_store_revoke(ws->store, id, true, err, sizeof err);
	if (rc == LINK_STORE_ERROR)
		return respond_store_error(ws, r, "", err);
	if (rc != LINK_STORE_OK)
		return web_respond_text(ws, r, MHD_HTTP_NOT_FOUND, "no such link", NULL, NULL);
	sp_log_info("viewer: link %s revoked through the API", id);
	return web_respond_text(ws, r, MHD_HTTP_OK, "revoked", NULL, NULL);
}


/* GET /api/v1/replies: the oldest stored secure reply as JSON
 * {"id", "link_id", "sender", "rcpt", "in_reply_to", "body" (base64)}, or
 * 204 when there is none.  The proxy deletes it once it is queued. */
enum MHD_Result
web_h_api_replies(struct web_server *ws, struct web_req *r)
{
	struct link_store_reply *v = NULL;
	char err[SP_ERRLEN], *b64;
	JsonBuilder *jb;
	JsonGenerator *gen;
	JsonNode *root;
	struct sp_buf out;
	gsize len = 0;
	gchar *text;
	size_t n = 0, b64len;

	if (link_store_reply_take(ws->store, 1, &v, &n, err, sizeof err) != LINK_STORE_OK)
		return respond_store_error(ws, r, "replies: ", err);
	if (n == 0) {
		link_store_reply_free(v, n);
		return web_respond(ws, r, MHD_HTTP_NO_CONTENT, WEB_CSP_NONE, "text/plain", NULL, NULL,
		                   NULL, NULL, NULL);
	}
	b64len = sodium_base64_ENCODED_LEN(v[0].body_len, sodium_base64_VARIANT_ORIGINAL);
	b64 = sp_xmalloc(b64len);
	sodium_bin2base64(b64, b64len, v[0].body, v[0].body_len, sodium_base64_VARIANT_ORIGINAL);
	jb = json_builder_new();
	json_builder_begin_object(jb);
	json_builder_set_member_name(jb, "id");
	json_builder_add_int_value(jb, v[0].id);
	json_builder_set_member_name(jb, "link_id");
	json_builder_add_string_value(jb, v[0].link_id);
	json_builder_set_member_name(jb, "sender");
	json_builder_add_string_value(jb, g_utf8_validate(v[0].sender, -1, NULL) ? v[0].sender : "");
	json_builder_set_member_name(jb, "rcpt");
	json_builder_add_string_value(jb, v[0].rcpt);
	json_builder_set_member_name(jb, "in_reply_to");
	json_builder_add_string_value(jb, v[0].in_reply_to);
	json_builder_set_member_name(jb, "body");
	json_builder_add_string_value(jb, b64);
	json_builder_end_object(jb);
	free(b64);
	link_store_reply_free(v, n);
	gen = json_generator_new();
	root = json_builder_get_root(jb);
	json_generator_set_root(gen, root);
	text = json_generator_to_data(gen, &len);
	sp_buf_init(&out, 0);
	sp_buf_append(&out, text, len);
	g_free(text);
	json_node_unref(root);
	g_object_unref(gen);
	g_object_unref(jb);
	return web_respond(ws, r, MHD_HTTP_OK, WEB_CSP_NONE, "application/json", &out, NULL, NULL,
	                   NULL, NULL);
}

/* DELETE /api/v1/replies/<id>: the proxy queued it. */
enum MHD_Result
web_h_api_reply_delete(struct web_server *ws, struct web_req *r)
{
	const char *s = r->url + strlen("/api/v1/replies/");
	char err[SP_ERRLEN];
	enum link_store_rc rc;
	uint64_t id;

	if (sp_parse_uint(s, 1, INT64_MAX, &id, err, sizeof err) < 0)
		return web_respond_text(ws, r, MHD_HTTP_NOT_FOUND, "no such reply", NULL, NULL);
	rc = link_store_reply_delete(ws->store, (int64_t)id, err, sizeof err);
	if (rc == LINK_STORE_ERROR)
		return respond_store_error(ws, r, "", err);
	if (rc != LINK_STORE_OK)
		return web_respond_text(ws, r, MHD_HTTP_NOT_FOUND, "no such reply", NULL, NULL);
	sp_log_info("viewer: reply %" PRIu64 " collected by the proxy", id);
	return web_respond_text(ws, r, MHD_HTTP_OK, "deleted", NULL, NULL);
}

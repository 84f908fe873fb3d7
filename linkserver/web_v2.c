/* web_v2.c - the viewer's half of link v2 (docs/formats.md "Unlock protocol"):
 * the browser does every secret step; the viewer serves the public params,
 * evaluates the OPRF once per counted attempt, and releases the sealed key and
 * the message blob against a proof.  Nothing secret reaches this file: no
 * password, no link secret, no key, no plaintext.
 *
 *   GET  /v2/<id_b64>/params    {"params", "sender", "hint"}        counts nothing
 *   POST /v2/<id_b64>/evaluate  {"blinded"} -> {"evaluated", "attempt"}   counts one attempt
 *   POST /v2/<id_b64>/unlock    {"attempt", "proof"} -> sealed key || message blob
 *                               (+ headers Sealpost-Reply-Token: a reply capability,
 *                               Sealpost-Reply-Max-Size: [linkserver] reply_max_size)
 *   POST /v2/<id_b64>/reply     Authorization: Bearer <reply token>; body: one
 *                               encrypted OpenPGP message -> 202 {"status": "stored"}
 *
 * Errors are JSON {"error": CODE, "message": TEXT} with CODE one of
 * bad-request, gone, destroyed, busy, wait, wrong-password, stale-attempt,
 * unavailable. */
#include "web_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <json-glib/json-glib.h>

#include "link_v2.h"
#include "pgp_packets.h"
#include "log.h"

/* Where the v2 routes live (web_request.c's table). */
#define WEB_V2_PREFIX "/v2/"
/* The largest message blob an unlock releases: a v1 view's 256 MiB message
 * (web_view.c WEB_MESSAGE_MAX) and its stream overhead. */
#define WEB_V2_BLOB_MAX ((size_t)256 * 1024 * 1024 + 65536)
/* base64url without padding of the longest binary field (the 64-byte proof). */
#define WEB_V2_B64_MAX 88

/* "/v2/<id_b64>/<action>": the link id (raw and hex) when action matches. */
static bool
v2_path(const char *url, const char *action, unsigned char raw[SP_LINK_IDBYTES],
        char id[SP_LINK_ID_HEXLEN + 1])
{
	size_t pre = strlen(WEB_V2_PREFIX);

	if (strncmp(url, WEB_V2_PREFIX, pre) != 0 || strlen(url) < pre + SP_LINK2_B64_STRLEN + 1)
		return false;
	url += pre;
	if (url[SP_LINK2_B64_STRLEN] != '/' || strcmp(url + SP_LINK2_B64_STRLEN + 1, action) != 0)
		return false;
	if (sp_link2_b64_decode(url, SP_LINK2_B64_STRLEN, raw) < 0)
		return false;
	sp_link_id_hex(raw, id);
	return true;
}

/* Strict base64url without padding into exactly want bytes: the encoding of
 * what it decodes to must be the input again (no stray bits, no padding). */
static bool
b64_exact(const char *s, unsigned char *out, size_t want)
{
	char again[WEB_V2_B64_MAX + 1];
	size_t n = 0, len = s ? strlen(s) : 0;

	if (len == 0 || len > WEB_V2_B64_MAX ||
	    sodium_base642bin(out, want, s, len, NULL, &n, NULL,
	                      sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    n != want)
		return false;
	sodium_bin2base64(again, sizeof again, out, want, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	return strcmp(again, s) == 0;
}

static void
b64_member(JsonBuilder *jb, const char *name, const unsigned char *v, size_t n)
{
	char s[WEB_V2_B64_MAX + 1];

	sodium_bin2base64(s, sizeof s, v, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	json_builder_set_member_name(jb, name);
	json_builder_add_string_value(jb, s);
}

/* Answer with the builder's object (it is consumed). */
static enum MHD_Result
respond_json(struct web_server *ws, struct web_req *r, unsigned status, JsonBuilder *jb,
             const char *h1, const char *v1)
{
	JsonGenerator *gen = json_generator_new();
	JsonNode *root = json_builder_get_root(jb);
	struct sp_buf b;
	gsize len = 0;
	gchar *text;

	json_generator_set_root(gen, root);
	text = json_generator_to_data(gen, &len);
	sp_buf_init(&b, 0);
	sp_buf_append(&b, text, len);
	g_free(text);
	json_node_unref(root);
	g_object_unref(gen);
	g_object_unref(jb);
	return web_respond(ws, r, status, WEB_CSP_NONE, "application/json", &b, h1, v1, NULL, NULL);
}

static enum MHD_Result
respond_error(struct web_server *ws, struct web_req *r, unsigned status, const char *code,
              const char *message, int64_t retry_ms)
{
	JsonBuilder *jb = json_builder_new();
	char retry[32];

	json_builder_begin_object(jb);
	json_builder_set_member_name(jb, "error");
	json_builder_add_string_value(jb, code);
	json_builder_set_member_name(jb, "message");
	json_builder_add_string_value(jb, message);
	json_builder_end_object(jb);
	if (retry_ms > 0) {
		snprintf(retry, sizeof retry, "%" PRId64, (retry_ms + 999) / 1000);
		return respond_json(ws, r, status, jb, "Retry-After", retry);
	}
	return respond_json(ws, r, status, jb, NULL, NULL);
}

static enum MHD_Result
respond_gone(struct web_server *ws, struct web_req *r)
{
	return respond_error(ws, r, MHD_HTTP_GONE, "gone",
	                     "This link has expired, was already used, or was withdrawn.", 0);
}

static enum MHD_Result
respond_store(struct web_server *ws, struct web_req *r, enum link_store_rc rc, const char *err)
{
	if (rc == LINK_STORE_ERROR) {
		sp_log_error("viewer: %s", err);
		return respond_error(ws, r, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable",
		                     "The viewer cannot answer right now; try again later.", 0);
	}
	return respond_gone(ws, r);
}

static enum MHD_Result
bad_request(struct web_server *ws, struct web_req *r, const char *why)
{
	return respond_error(ws, r, MHD_HTTP_BAD_REQUEST, "bad-request", why, 0);
}

/* The body as one JSON object whose members are exactly `names` (n of them),
 * each a string, copied into vals (each WEB_V2_B64_MAX + 1).  -1: anything
 * else (other members, other types, not JSON, a NUL in the body). */
static int
parse_body(struct web_req *r, const char *const *names, char (*vals)[WEB_V2_B64_MAX + 1], size_t n)
{
	JsonParser *p = json_parser_new();
	JsonObject *o;
	JsonNode *root;
	size_t i;
	int rv = -1;

	if (r->body.len == 0 || memchr(r->body.data, '\0', r->body.len) != NULL ||
	    !g_utf8_validate(r->body.data, (gssize)r->body.len, NULL) ||
	    !json_parser_load_from_data(p, r->body.data, (gssize)r->body.len, NULL))
		goto out;
	root = json_parser_get_root(p);
	if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root))
		goto out;
	o = json_node_get_object(root);
	if (json_object_get_size(o) != n)
		goto out;
	for (i = 0; i < n; i++) {
		JsonNode *m = json_object_get_member(o, names[i]);
		const char *s;
		if (m == NULL || !JSON_NODE_HOLDS_VALUE(m) || json_node_get_value_type(m) != G_TYPE_STRING)
			goto out;
		s = json_node_get_string(m);
		if (s == NULL || strlen(s) > WEB_V2_B64_MAX)
			goto out;
		sp_strlcpy(vals[i], s, WEB_V2_B64_MAX + 1);
	}
	rv = 0;
out:
	g_object_unref(p);
	return rv;
}

/* RFC 9497 / docs/formats.md: a canonical, non-identity ristretto255 encoding. */
static bool
element_valid(const unsigned char e[SP_OPRF_ELEMENTBYTES])
{
	return (e[SP_OPRF_ELEMENTBYTES - 1] & 0x80) == 0 && !sodium_is_zero(e, SP_OPRF_ELEMENTBYTES) &&
	       crypto_core_ristretto255_is_valid_point(e) == 1;
}

/* The live link's v2 record (LINK_STORE_GONE for a v1 link: its own path
 * opens it). */
static enum link_store_rc
load_record(struct web_server *ws, const char *id, struct link_store_link *l, char *err,
            size_t errsz)
{
	enum link_store_rc rc = link_store_get(ws->store, id, sp_time(), l, err, errsz);
	char why[SP_ERRLEN];

	if (rc != LINK_STORE_OK)
		return rc;
	if (sp_link2_record_check(l->wrapped, l->wrapped_len, why, sizeof why) < 0) {
		sp_log_debug("viewer: link %s: not a v2 record: %s", id, why);
		link_store_link_clear(l);
		return LINK_STORE_GONE;
	}
	return LINK_STORE_OK;
}

/* GET /v2/<id>/params: public, counts nothing. */
enum MHD_Result
web_h_v2_get(struct web_server *ws, struct web_req *r)
{
	unsigned char raw[SP_LINK_IDBYTES], params[SP_LINK2_PARAMS_BYTES];
	char id[SP_LINK_ID_HEXLEN + 1], err[SP_ERRLEN];
	struct link_store_link l;
	enum link_store_rc rc;
	JsonBuilder *jb;

	if (!v2_path(r->url, "params", raw, id))
		return web_respond_not_found(ws, r);
	if ((rc = load_record(ws, id, &l, err, sizeof err)) != LINK_STORE_OK)
		return respond_store(ws, r, rc, err);
	sp_link2_params(l.wrapped, params);
	jb = json_builder_new();
	json_builder_begin_object(jb);
	b64_member(jb, "params", params, sizeof params);
	json_builder_set_member_name(jb, "sender");
	json_builder_add_string_value(jb, g_utf8_validate(l.sender, -1, NULL) ? l.sender : "");
	json_builder_set_member_name(jb, "hint");
	json_builder_add_string_value(jb, g_utf8_validate(l.hint, -1, NULL) ? l.hint : "");
	json_builder_end_object(jb);
	link_store_link_clear(&l);
	return respond_json(ws, r, MHD_HTTP_OK, jb, NULL, NULL);
}

static void
sleep_ms(int64_t ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0)
		;
}

/* POST /v2/<id>/evaluate: one counted attempt. */
static enum MHD_Result
evaluate(struct web_server *ws, struct web_req *r, const char *id)
{
	static const char *const names[] = { "blinded" };
	unsigned char blinded[SP_OPRF_ELEMENTBYTES], evaluated[SP_OPRF_ELEMENTBYTES];
	unsigned char attempt[SP_LINK2_ATTEMPT_BYTES];
	char vals[1][WEB_V2_B64_MAX + 1], err[SP_ERRLEN];
	struct link_store_link l = { 0 };
	enum link_store_rc rc;
	enum MHD_Result ret;
	JsonBuilder *jb;
	int64_t wait;

	/* A malformed request is refused before anything counts. */
	if (parse_body(r, names, vals, 1) < 0 || !b64_exact(vals[0], blinded, sizeof blinded))
		return bad_request(ws, r, "Expected {\"blinded\": base64url of 32 bytes}.");
	if (!element_valid(blinded))
		return bad_request(ws, r, "The blinded element is not a valid group element.");
	/* The client's backoff, as for a v1 password: a client that failed before
	 * waits its turn; several attempts of it at once are refused. */
	wait = web_tarpit_enter(ws->tarpit, r->client, sp_now_ms());
	if (wait < 0) {
		sp_log_info("viewer: link %s: several attempts at once from one client that failed "
		            "before: refused for %" PRId64 " ms", id, -wait);
		return respond_error(ws, r, MHD_HTTP_TOO_MANY_REQUESTS, "wait",
		                     "Too many attempts at once; wait and try again.", -wait);
	}
	if (wait > 0) {
		sp_log_debug("viewer: link %s: attempt from %s held %" PRId64 " ms", id, r->client,
		             wait);
		sleep_ms(wait);
	}
	/* Count first (one transaction), answer after. */
	sp_link2_attempt_new(attempt);
	rc = link_store_evaluate(ws->store, id, sp_time(), attempt, &l, err, sizeof err);
	if (rc == LINK_STORE_BUSY) {
		sp_log_info("viewer: link %s: every attempt it has left is under way", id);
		ret = respond_error(ws, r, MHD_HTTP_TOO_MANY_REQUESTS, "busy",
		                    "Other attempts on this link are under way; try again shortly.",
		                    1000);
		goto out;
	}
	if (rc != LINK_STORE_OK) {
		ret = respond_store(ws, r, rc, err);
		goto out;
	}
	if (sp_link2_record_check(l.wrapped, l.wrapped_len, err, sizeof err) < 0 ||
	    sp_link2_evaluate(l.wrapped, blinded, evaluated, err, sizeof err) < 0) {
		/* A v1 link asked on the v2 path (it stays counted: the attempt
		 * lapses), or a damaged record. */
		sp_log_info("viewer: link %s: no v2 record: %s", id, err);
		ret = respond_gone(ws, r);
		goto out;
	}
	sp_log_info("viewer: link %s: attempt counted (%" PRIu64 " failed before)", id, l.failed);
	jb = json_builder_new();
	json_builder_begin_object(jb);
	b64_member(jb, "evaluated", evaluated, sizeof evaluated);
	b64_member(jb, "attempt", attempt, sizeof attempt);
	json_builder_end_object(jb);
	ret = respond_json(ws, r, MHD_HTTP_OK, jb, NULL, NULL);
out:
	link_store_link_clear(&l);
	sodium_memzero(attempt, sizeof attempt);
	return ret;
}

/* A reply capability for the link just opened: a random token for the
 * browser, its SHA-256 in the store until the link would have expired.  No
 * token (token[0] == '\0') when replies are off or the store fails: the
 * message is released all the same, only the reply form is lost. */
static void
reply_token(struct web_server *ws, const struct link_store_link *l,
            char token[WEB_V2_B64_MAX + 1])
{
	unsigned char raw[WEB_REPLY_TOKEN_BYTES], cap[LINK_STORE_REPLY_CAP_BYTES];
	char err[SP_ERRLEN];

	token[0] = '\0';
	if (ws->reply_max_count == 0)
		return;
	randombytes_buf(raw, sizeof raw);
	crypto_hash_sha256(cap, raw, sizeof raw);
	if (link_store_reply_cap_put(ws->store, l->id, l->sender, l->expires, cap, err,
	                             sizeof err) != LINK_STORE_OK) {
		sp_log_error("viewer: link %s: no reply capability: %s", l->id, err);
	} else {
		sodium_bin2base64(token, WEB_V2_B64_MAX + 1, raw, sizeof raw,
		                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	}
	sodium_memzero(raw, sizeof raw);
}

/* POST /v2/<id>/unlock: the proof; the sealed key and the blob, or 403. */
static enum MHD_Result
unlock(struct web_server *ws, struct web_req *r, const unsigned char raw[SP_LINK_IDBYTES],
       const char *id)
{
	static const char *const names[] = { "attempt", "proof" };
	unsigned char attempt[SP_LINK2_ATTEMPT_BYTES], proof[SP_LINK2_PROOF_BYTES];
	unsigned char sealed[SP_LINK2_SEALED_KEY_BYTES];
	char vals[2][WEB_V2_B64_MAX + 1], err[SP_ERRLEN], token[WEB_V2_B64_MAX + 1] = "";
	char maxsz[24];
	struct link_store_link l = { 0 };
	struct sp_buf out;
	enum link_store_rc rc;
	enum MHD_Result ret;
	uint64_t views = 0;
	bool valid, destroyed = false;
	int64_t wait;

	sp_buf_init(&out, SP_LINK2_SEALED_KEY_BYTES + WEB_V2_BLOB_MAX);
	if (parse_body(r, names, vals, 2) < 0 || !b64_exact(vals[0], attempt, sizeof attempt) ||
	    !b64_exact(vals[1], proof, sizeof proof)) {
		ret = bad_request(ws, r, "Expected {\"attempt\": base64url of 16 bytes, "
		                         "\"proof\": base64url of 64 bytes}.");
		goto out;
	}
	if ((rc = load_record(ws, id, &l, err, sizeof err)) != LINK_STORE_OK) {
		ret = respond_store(ws, r, rc, err);
		goto out;
	}
	valid = sp_link2_verify_unlock(l.wrapped, raw, attempt, proof) == 0;
	sp_link2_sealed_key(l.wrapped, sealed);
	sp_buf_append(&out, sealed, sizeof sealed);
	/* Removes the attempt whatever the outcome; a valid proof claims the view
	 * in the same transaction (one winner for max_views = 1). */
	rc = link_store_prove(ws->store, id, sp_time(), attempt, valid, &out, &views, &destroyed,
	                      err, sizeof err);
	switch (rc) {
	case LINK_STORE_OK:
		web_tarpit_succeeded(ws->tarpit, r->client, id, sp_now_ms());
		sp_log_info("viewer: link %s opened (view %" PRIu64 "%s)", id, views,
		            l.max_views != 0 && views >= l.max_views ? ", last: deleted" : "");
		reply_token(ws, &l, token);
		snprintf(maxsz, sizeof maxsz, "%zu", ws->reply_max);
		ret = web_respond(ws, r, MHD_HTTP_OK, WEB_CSP_NONE, "application/octet-stream", &out,
		                  token[0] ? WEB_REPLY_TOKEN_HEADER : NULL, token[0] ? token : NULL,
		                  token[0] ? WEB_REPLY_MAX_HEADER : NULL, token[0] ? maxsz : NULL);
		sodium_memzero(token, sizeof token);
		break;
	case LINK_STORE_WRONG:
		wait = web_tarpit_failed(ws->tarpit, r->client, id, sp_now_ms());
		if (destroyed) {
			sp_log_info("viewer: link %s destroyed after %" PRIu64 " wrong passwords", id,
			            l.max_failed);
			ret = respond_error(ws, r, MHD_HTTP_GONE, "destroyed",
			                    "Too many wrong passwords: this link has been destroyed.", 0);
			break;
		}
		sp_log_info("viewer: link %s: wrong password", id);
		ret = respond_error(ws, r, MHD_HTTP_FORBIDDEN, "wrong-password",
		                    "Wrong password.", wait);
		break;
	case LINK_STORE_STALE:
		sp_log_info("viewer: link %s: proof for an unknown or expired attempt", id);
		ret = respond_error(ws, r, MHD_HTTP_FORBIDDEN, "stale-attempt",
		                    "This attempt is no longer valid; start again.", 0);
		break;
	default:
		ret = respond_store(ws, r, rc, err);
		break;
	}
out:
	link_store_link_clear(&l);
	sodium_memzero(sealed, sizeof sealed);
	sodium_memzero(proof, sizeof proof);
	sodium_memzero(attempt, sizeof attempt);
	sp_buf_wipe(&out);
	return ret;
}

/* A header value the browser gives for the reply's From or In-Reply-To:
 * printable ASCII, no CR/LF, one header line long.  Untrusted: it only fills
 * headers of the mail delivered to the link's sender, never its routing. */
static bool
reply_meta_ok(const char *v)
{
	size_t i, n = v ? strlen(v) : 0;

	if (n >= LINK_STORE_REPLY_META_MAX)
		return false;
	for (i = 0; i < n; i++)
		if (v[i] < 0x20 || v[i] > 0x7e)
			return false;
	return true;
}

/* Before a reply's body is read: replies are on, and the Authorization
 * header holds a live reply token of this link.  true: refused, *ret is the
 * answer. */
bool
web_v2_reply_guard(struct web_server *ws, struct web_req *r, enum MHD_Result *ret)
{
	unsigned char raw[SP_LINK_IDBYTES], tok[WEB_REPLY_TOKEN_BYTES];
	unsigned char cap[LINK_STORE_REPLY_CAP_BYTES];
	char id[SP_LINK_ID_HEXLEN + 1], err[SP_ERRLEN];
	const char *auth = web_header(r, "Authorization");
	enum link_store_rc rc;

	if (ws->reply_max_count == 0 || !v2_path(r->url, "reply", raw, id)) {
		*ret = web_respond_not_found(ws, r);
		return true;
	}
	if (auth == NULL || g_ascii_strncasecmp(auth, "Bearer ", 7) != 0 ||
	    !b64_exact(auth + 7, tok, sizeof tok)) {
		*ret = respond_error(ws, r, MHD_HTTP_UNAUTHORIZED, "unauthorized",
		                     "Only someone who opened this message can reply.", 0);
		return true;
	}
	crypto_hash_sha256(cap, tok, sizeof tok);
	sodium_memzero(tok, sizeof tok);
	rc = link_store_reply_cap_check(ws->store, cap, id, sp_time(), err, sizeof err);
	if (rc == LINK_STORE_OK)
		return false;
	if (rc == LINK_STORE_ERROR)
		*ret = respond_store(ws, r, rc, err);
	else
		*ret = respond_error(ws, r, MHD_HTTP_FORBIDDEN, "forbidden",
		                     "This reply token is not valid (any more).", 0);
	return true;
}

/* POST /v2/<id>/reply: one encrypted OpenPGP message under a reply token
 * (docs/formats.md "Secure reply"). */
enum MHD_Result
web_h_v2_reply(struct web_server *ws, struct web_req *r)
{
	unsigned char raw[SP_LINK_IDBYTES], tok[WEB_REPLY_TOKEN_BYTES];
	unsigned char cap[LINK_STORE_REPLY_CAP_BYTES];
	char id[SP_LINK_ID_HEXLEN + 1], err[SP_ERRLEN];
	const char *auth = web_header(r, "Authorization");
	const char *ct = web_header(r, "Content-Type");
	const char *from = web_header(r, WEB_REPLY_FROM_HEADER);
	const char *irt = web_header(r, WEB_REPLY_IRT_HEADER);
	struct link_store_reply_limits lim = { ws->reply_max_count, ws->reply_min_interval };
	struct sp_buf packets;
	enum link_store_rc rc;
	enum MHD_Result ret;
	bool armored;

	if (!v2_path(r->url, "reply", raw, id))
		return web_respond_not_found(ws, r);
	if (auth == NULL || g_ascii_strncasecmp(auth, "Bearer ", 7) != 0 ||
	    !b64_exact(auth + 7, tok, sizeof tok))
		return respond_error(ws, r, MHD_HTTP_UNAUTHORIZED, "unauthorized",
		                     "Only someone who opened this message can reply.", 0);
	crypto_hash_sha256(cap, tok, sizeof tok);
	sodium_memzero(tok, sizeof tok);
	if (ct == NULL || (g_ascii_strncasecmp(ct, "application/pgp-encrypted", 25) != 0 &&
	                   g_ascii_strncasecmp(ct, "application/octet-stream", 24) != 0))
		return respond_error(ws, r, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "bad-request",
		                     "Expected an OpenPGP message (application/pgp-encrypted).", 0);
	if (!reply_meta_ok(from) || !reply_meta_ok(irt))
		return bad_request(ws, r, "Bad Sealpost-Reply-From or Sealpost-In-Reply-To.");
	/* Stored as binary packets: armor is decoded (and its checksum checked). */
	sp_buf_init(&packets, ws->reply_max + 1);
	{
		size_t lead = 0;
		while (lead < r->body.len && g_ascii_isspace(r->body.data[lead]))
			lead++;
		armored = r->body.len - lead >= 22 &&
		          memcmp(r->body.data + lead, "-----BEGIN PGP MESSAGE", 22) == 0;
	}
	if (armored ? sp_pgp_armor_decode(r->body.data, r->body.len, &packets, err, sizeof err) < 0
	            : sp_buf_append(&packets, r->body.data, r->body.len) < 0) {
		ret = respond_error(ws, r, 422, "not-encrypted",
		                    "The reply is not an encrypted OpenPGP message.", 0);
		goto out;
	}
	if (sp_pgp_packets_check((const unsigned char *)packets.data, packets.len, err,
	                         sizeof err) < 0) {
		sp_log_info("viewer: link %s: reply refused: %s", id, err);
		ret = respond_error(ws, r, 422, "not-encrypted",
		                    "The reply is not an encrypted OpenPGP message.", 0);
		goto out;
	}
	/* The token answers only on its own link's path. */
	rc = link_store_reply_put(ws->store, cap, id, sp_time(), &lim, from ? from : "",
	                          irt ? irt : "", packets.data, packets.len, err, sizeof err);
	switch (rc) {
	case LINK_STORE_OK: {
		JsonBuilder *jb = json_builder_new();
		sp_log_info("viewer: link %s: reply stored (%zu bytes of ciphertext)", id, packets.len);
		json_builder_begin_object(jb);
		json_builder_set_member_name(jb, "status");
		json_builder_add_string_value(jb, "stored");
		json_builder_end_object(jb);
		ret = respond_json(ws, r, MHD_HTTP_ACCEPTED, jb, NULL, NULL);
		break;
	}
	case LINK_STORE_GONE:
		ret = respond_error(ws, r, MHD_HTTP_FORBIDDEN, "forbidden",
		                    "This reply token is not valid (any more).", 0);
		break;
	case LINK_STORE_FULL:
		ret = respond_error(ws, r, MHD_HTTP_TOO_MANY_REQUESTS, "too-many",
		                    "No more replies can be sent from this message.", 0);
		break;
	case LINK_STORE_BUSY:
		ret = respond_error(ws, r, MHD_HTTP_TOO_MANY_REQUESTS, "wait",
		                    "Please wait a little before sending another reply.",
		                    ws->reply_min_interval * 1000);
		break;
	default:
		ret = respond_store(ws, r, rc, err);
		break;
	}
out:
	sp_buf_free(&packets);
	return ret;
}

/* POST /v2/<id>/evaluate and /v2/<id>/unlock. */
enum MHD_Result
web_h_v2_post(struct web_server *ws, struct web_req *r)
{
	unsigned char raw[SP_LINK_IDBYTES];
	char id[SP_LINK_ID_HEXLEN + 1];
	const char *ct = web_header(r, "Content-Type");
	size_t n = strlen("application/json");

	/* JSON only: a cross-site form (text/plain, form-urlencoded) cannot post
	 * here without a CORS preflight, which this viewer never grants. */
	if (ct == NULL || g_ascii_strncasecmp(ct, "application/json", n) != 0 ||
	    (ct[n] != '\0' && ct[n] != ';' && ct[n] != ' '))
		return respond_error(ws, r, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "bad-request",
		                     "Expected Content-Type: application/json.", 0);
	if (v2_path(r->url, "evaluate", raw, id))
		return evaluate(ws, r, id);
	if (v2_path(r->url, "unlock", raw, id))
		return unlock(ws, r, raw, id);
	return web_respond_not_found(ws, r);
}

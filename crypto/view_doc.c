/* view_doc.c - the view document (see view_doc.h, docs/formats.md). */
#include "view_doc.h"

#include <stdlib.h>
#include <string.h>

#include <json-glib/json-glib.h>
#include <sodium.h>

/* The header's string members, in the order they are written; "sender_key"
 * is last (it is written after the attachments and the flags). */
static const char *const doc_strings[] = {
	"from", "to", "cc", "date", "subject", "message_id", "text", "html", "sender_key",
};

/* The field of v named doc_strings[i]. */
static char **
view_slot(struct sp_view *v, size_t i)
{
	char **fields[] = {
		&v->from, &v->to, &v->cc, &v->date, &v->subject, &v->message_id, &v->text, &v->html,
		&v->sender_key,
	};

	return fields[i];
}

static const char *
view_field(const struct sp_view *v, size_t i)
{
	const char *fields[] = {
		v->from, v->to, v->cc, v->date, v->subject, v->message_id, v->text, v->html, v->sender_key,
	};

	return fields[i];
}

size_t
sp_view_doc_max_size(uint64_t max_message_size)
{
	uint64_t att = max_message_size + max_message_size / 64;
	uint64_t fixed = SP_VIEW_DOC_PREFIX + SP_VIEW_DOC_MAX_HEADER;

	if (att < max_message_size || att > SIZE_MAX - fixed)
		return SIZE_MAX;
	return (size_t)(att + fixed);
}

/* Zero every string json-glib holds in the tree under node (its values are
 * message plaintext; json-glib frees them without wiping). */
static void
wipe_node(JsonNode *node)
{
	if (node == NULL)
		return;
	switch (json_node_get_node_type(node)) {
	case JSON_NODE_OBJECT: {
		JsonObjectIter it;
		JsonNode *m;
		json_object_iter_init(&it, json_node_get_object(node));
		while (json_object_iter_next(&it, NULL, &m))
			wipe_node(m);
		break;
	}
	case JSON_NODE_ARRAY: {
		JsonArray *a = json_node_get_array(node);
		guint i, n = json_array_get_length(a);
		for (i = 0; i < n; i++)
			wipe_node(json_array_get_element(a, i));
		break;
	}
	case JSON_NODE_VALUE:
		if (json_node_get_value_type(node) == G_TYPE_STRING) {
			char *s = (char *)json_node_get_string(node);
			if (s != NULL)
				sodium_memzero(s, strlen(s));
		}
		break;
	case JSON_NODE_NULL:
		break;
	}
}

static void
add_string(JsonBuilder *b, const char *name, const char *value)
{
	json_builder_set_member_name(b, name);
	if (value != NULL)
		json_builder_add_string_value(b, value);
	else
		json_builder_add_null_value(b);
}

static void
add_bool(JsonBuilder *b, const char *name, bool value)
{
	json_builder_set_member_name(b, name);
	json_builder_add_boolean_value(b, value);
}

/* v as a JSON header, checked against the format's rules; NULL with err. */
static JsonNode *
header_node(const struct sp_view *v, char *err, size_t errsz)
{
	JsonBuilder *b = NULL;
	JsonNode *root = NULL;
	size_t i;

	if (v->n_att > SP_VIEW_DOC_MAX_ATTACHMENTS) {
		sp_seterr(err, errsz, "view document: %zu attachments, at most %u", v->n_att,
		          (unsigned)SP_VIEW_DOC_MAX_ATTACHMENTS);
		return NULL;
	}
	if (v->sender_key != NULL && strlen(v->sender_key) > SP_VIEW_DOC_MAX_SENDER_KEY) {
		sp_seterr(err, errsz, "view document: the sender key is over %zu bytes",
		          SP_VIEW_DOC_MAX_SENDER_KEY);
		return NULL;
	}
	for (i = 0; i < SP_ARRAY_LEN(doc_strings); i++) {
		const char *s = view_field(v, i);
		if (s != NULL && !g_utf8_validate(s, -1, NULL)) {
			sp_seterr(err, errsz, "view document: \"%s\" is not UTF-8", doc_strings[i]);
			return NULL;
		}
	}
	for (i = 0; i < v->n_att; i++) {
		const struct sp_view_attachment *a = &v->att[i];
		if (a->filename == NULL || *a->filename == '\0' || a->content_type == NULL ||
		    !g_utf8_validate(a->filename, -1, NULL) || !g_utf8_validate(a->content_type, -1, NULL) ||
		    (a->data == NULL && a->len != 0)) {
			sp_seterr(err, errsz, "view document: attachment %zu has no name, type or bytes", i);
			return NULL;
		}
	}

	b = json_builder_new();
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "v");
	json_builder_add_int_value(b, SP_VIEW_DOC_VERSION);
	for (i = 0; i < SP_ARRAY_LEN(doc_strings) - 1; i++)
		add_string(b, doc_strings[i], view_field(v, i));
	add_bool(b, "html_refused", v->html_refused);
	json_builder_set_member_name(b, "attachments");
	json_builder_begin_array(b);
	for (i = 0; i < v->n_att; i++) {
		json_builder_begin_object(b);
		add_string(b, "name", v->att[i].filename);
		add_string(b, "type", v->att[i].content_type);
		json_builder_set_member_name(b, "size");
		json_builder_add_int_value(b, (gint64)v->att[i].len);
		json_builder_end_object(b);
	}
	json_builder_end_array(b);
	add_bool(b, "truncated", v->truncated);
	add_string(b, "sender_key", v->sender_key);
	json_builder_end_object(b);
	root = json_builder_get_root(b);
	g_object_unref(b);
	return root;
}

int
sp_view_doc_write(const struct sp_view *v, struct sp_buf *out, char *err, size_t errsz)
{
	size_t start = out->len, i;
	JsonNode *root = NULL;
	JsonGenerator *gen = NULL;
	GString *json = NULL;
	unsigned char be[4];
	int rv = -1;

	if ((root = header_node(v, err, errsz)) == NULL)
		goto out;
	gen = json_generator_new();
	json_generator_set_root(gen, root);
	json = g_string_new(NULL);
	json_generator_to_gstring(gen, json);
	if (json->len > SP_VIEW_DOC_MAX_HEADER) {
		sp_seterr(err, errsz, "view document: the text and HTML take %zu bytes, at most %zu",
		          (size_t)json->len, SP_VIEW_DOC_MAX_HEADER);
		goto out;
	}
	sp_put_be32(be, (uint32_t)json->len);
	if (sp_buf_append(out, SP_VIEW_DOC_MAGIC, SP_VIEW_DOC_MAGIC_LEN) < 0 ||
	    sp_buf_append(out, be, sizeof be) < 0 || sp_buf_append(out, json->str, json->len) < 0)
		goto toolarge;
	for (i = 0; i < v->n_att; i++)
		if (sp_buf_append(out, v->att[i].data, v->att[i].len) < 0)
			goto toolarge;
	rv = 0;
	goto out;
toolarge:
	sp_seterr(err, errsz, "view document: larger than its limit of %zu bytes", out->limit);
out:
	if (json != NULL) {
		sodium_memzero(json->str, json->allocated_len);
		g_string_free(json, TRUE);
	}
	if (gen != NULL)
		g_object_unref(gen);
	if (root != NULL) {
		wipe_node(root);
		json_node_unref(root);
	}
	if (rv < 0 && out->data != NULL) {
		sodium_memzero(out->data + start, out->len - start);
		out->len = start;
		out->data[start] = '\0';
	}
	return rv;
}

/* ---- reading ---- */

/* Does the JSON text hold the escape \u0000?  json-glib accepts it and cuts
 * the string there; a C string cannot carry it, so the reader refuses it. */
static bool
has_escaped_nul(const char *p, size_t len)
{
	size_t i, slashes = 0;

	for (i = 0; i < len; i++) {
		if (p[i] == '\\') {
			slashes++;
			continue;
		}
		if (slashes % 2 == 1 && p[i] == 'u' && len - i >= 5 && memcmp(p + i + 1, "0000", 4) == 0)
			return true;
		slashes = 0;
	}
	return false;
}

static void
count_member(JsonParser *p, JsonObject *o, const char *name, gpointer arg)
{
	(void)p;
	(void)o;
	(void)name;
	(*(size_t *)arg)++;
}

/* A string-or-null member into *dst (malloc'd copy). */
static int
read_string(JsonObject *o, const char *name, bool nullable, char **dst, char *err, size_t errsz)
{
	JsonNode *n = json_object_get_member(o, name);

	if (n == NULL) {
		sp_seterr(err, errsz, "view document: no \"%s\"", name);
		return -1;
	}
	if (nullable && JSON_NODE_HOLDS_NULL(n))
		return 0;
	if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING) {
		sp_seterr(err, errsz, "view document: \"%s\" is not a string%s", name, nullable ? " or null" : "");
		return -1;
	}
	*dst = sp_xstrdup(json_node_get_string(n));
	return 0;
}

static int
read_bool(JsonObject *o, const char *name, bool *dst, char *err, size_t errsz)
{
	JsonNode *n = json_object_get_member(o, name);

	if (n == NULL || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_BOOLEAN) {
		sp_seterr(err, errsz, "view document: \"%s\" is missing or not true/false", name);
		return -1;
	}
	*dst = json_node_get_boolean(n);
	return 0;
}

static int
read_int(JsonObject *o, const char *name, gint64 *dst, char *err, size_t errsz)
{
	JsonNode *n = json_object_get_member(o, name);

	if (n == NULL || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_INT64) {
		sp_seterr(err, errsz, "view document: \"%s\" is missing or not an integer", name);
		return -1;
	}
	*dst = json_node_get_int(n);
	return 0;
}

/* The attachments array: names, types and sizes, the sizes adding up to
 * exactly body_len; the bytes are taken from body in order. */
static int
read_attachments(JsonObject *o, const unsigned char *body, size_t body_len, struct sp_view *out,
                 size_t *members, char *err, size_t errsz)
{
	JsonNode *n = json_object_get_member(o, "attachments");
	JsonArray *arr;
	size_t i, count, off = 0;

	if (n == NULL || !JSON_NODE_HOLDS_ARRAY(n)) {
		sp_seterr(err, errsz, "view document: \"attachments\" is missing or not an array");
		return -1;
	}
	arr = json_node_get_array(n);
	count = json_array_get_length(arr);
	if (count > SP_VIEW_DOC_MAX_ATTACHMENTS) {
		sp_seterr(err, errsz, "view document: %zu attachments, at most %u", count,
		          (unsigned)SP_VIEW_DOC_MAX_ATTACHMENTS);
		return -1;
	}
	out->att = sp_xcalloc(count ? count : 1, sizeof *out->att);
	for (i = 0; i < count; i++) {
		JsonNode *e = json_array_get_element(arr, i);
		struct sp_view_attachment *a = &out->att[i];
		JsonObject *eo;
		gint64 size;

		if (!JSON_NODE_HOLDS_OBJECT(e)) {
			sp_seterr(err, errsz, "view document: attachment %zu is not an object", i);
			return -1;
		}
		eo = json_node_get_object(e);
		*members += json_object_get_size(eo);
		out->n_att = i + 1;
		if (json_object_get_size(eo) != 3 || read_string(eo, "name", false, &a->filename, err, errsz) < 0 ||
		    read_string(eo, "type", false, &a->content_type, err, errsz) < 0 ||
		    read_int(eo, "size", &size, err, errsz) < 0) {
			if (json_object_get_size(eo) != 3)
				sp_seterr(err, errsz, "view document: attachment %zu has other members than "
				          "name, type, size", i);
			return -1;
		}
		if (*a->filename == '\0') {
			sp_seterr(err, errsz, "view document: attachment %zu has an empty name", i);
			return -1;
		}
		if (size < 0 || (uint64_t)size > body_len - off) {
			sp_seterr(err, errsz, "view document: attachment %zu's size %" G_GINT64_FORMAT
			          " runs past the end", i, size);
			return -1;
		}
		a->len = (size_t)size;
		a->data = sp_xmalloc(a->len ? a->len : 1);
		memcpy(a->data, body + off, a->len);
		off += a->len;
	}
	if (off != body_len) {
		sp_seterr(err, errsz, "view document: %zu bytes after the attachments", body_len - off);
		return -1;
	}
	return 0;
}

int
sp_view_doc_read(const void *doc, size_t len, size_t max_size, struct sp_view *out, char *err,
                 size_t errsz)
{
	/* Members of the header object: "v", the strings, the two flags, the list. */
	const size_t n_members = 1 + SP_ARRAY_LEN(doc_strings) + 2 + 1;
	const unsigned char *d = doc;
	JsonParser *parser = NULL;
	GError *gerr = NULL;
	JsonObject *o;
	JsonObjectIter it;
	const char *name;
	size_t hlen, i, parsed = 0, members;
	gint64 version;
	int rv = -1;

	memset(out, 0, sizeof *out);
	if (max_size != 0 && len > max_size) {
		sp_seterr(err, errsz, "view document: %zu bytes, at most %zu", len, max_size);
		goto out;
	}
	if (len < SP_VIEW_DOC_PREFIX || memcmp(d, SP_VIEW_DOC_MAGIC, SP_VIEW_DOC_MAGIC_LEN) != 0) {
		sp_seterr(err, errsz, "view document: no %s magic", SP_VIEW_DOC_MAGIC);
		goto out;
	}
	hlen = sp_get_be32(d + 8);
	if (hlen > SP_VIEW_DOC_MAX_HEADER || hlen > len - SP_VIEW_DOC_PREFIX) {
		sp_seterr(err, errsz, "view document: a header of %zu bytes in a document of %zu", hlen, len);
		goto out;
	}
	if (!g_utf8_validate((const char *)d + SP_VIEW_DOC_PREFIX, (gssize)hlen, NULL) ||
	    has_escaped_nul((const char *)d + SP_VIEW_DOC_PREFIX, hlen)) {
		sp_seterr(err, errsz, "view document: the header is not UTF-8 text");
		goto out;
	}
	parser = json_parser_new();
	g_signal_connect(parser, "object-member", G_CALLBACK(count_member), &parsed);
	if (!json_parser_load_from_data(parser, (const char *)d + SP_VIEW_DOC_PREFIX, (gssize)hlen, &gerr)) {
		/* Not json-glib's message: it quotes the input, which is plaintext. */
		sp_seterr(err, errsz, "view document: the header is not JSON");
		goto out;
	}
	if (json_parser_get_root(parser) == NULL || !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser))) {
		sp_seterr(err, errsz, "view document: the header is not a JSON object");
		goto out;
	}
	o = json_node_get_object(json_parser_get_root(parser));
	if (read_int(o, "v", &version, err, errsz) < 0)
		goto out;
	if (version != SP_VIEW_DOC_VERSION) {
		sp_seterr(err, errsz, "view document: version %" G_GINT64_FORMAT ", this reader knows %d",
		          version, SP_VIEW_DOC_VERSION);
		goto out;
	}
	json_object_iter_init(&it, o);
	while (json_object_iter_next(&it, &name, NULL)) {
		bool known = strcmp(name, "v") == 0 || strcmp(name, "html_refused") == 0 ||
		             strcmp(name, "truncated") == 0 || strcmp(name, "attachments") == 0;
		for (i = 0; !known && i < SP_ARRAY_LEN(doc_strings); i++)
			known = strcmp(name, doc_strings[i]) == 0;
		if (!known) {
			sp_seterr(err, errsz, "view document: unknown member in the header");
			goto out;
		}
	}
	members = json_object_get_size(o);
	if (members != n_members) {
		sp_seterr(err, errsz, "view document: %zu members in the header, version %d has %zu",
		          members, SP_VIEW_DOC_VERSION, n_members);
		goto out;
	}
	for (i = 0; i < SP_ARRAY_LEN(doc_strings); i++)
		if (read_string(o, doc_strings[i], true, view_slot(out, i), err, errsz) < 0)
			goto out;
	if (out->sender_key != NULL && strlen(out->sender_key) > SP_VIEW_DOC_MAX_SENDER_KEY) {
		sp_seterr(err, errsz, "view document: the sender key is over %zu bytes",
		          SP_VIEW_DOC_MAX_SENDER_KEY);
		goto out;
	}
	if (read_bool(o, "html_refused", &out->html_refused, err, errsz) < 0 ||
	    read_bool(o, "truncated", &out->truncated, err, errsz) < 0 ||
	    read_attachments(o, d + SP_VIEW_DOC_PREFIX + hlen, len - SP_VIEW_DOC_PREFIX - hlen, out,
	                     &members, err, errsz) < 0)
		goto out;
	/* json-glib keeps the last of two members with one name: every member
	 * parsed must be one that is there. */
	if (parsed != members) {
		sp_seterr(err, errsz, "view document: a member appears twice in the header");
		goto out;
	}
	rv = 0;
out:
	if (gerr != NULL)
		g_error_free(gerr);
	if (parser != NULL) {
		wipe_node(json_parser_get_root(parser));
		g_object_unref(parser);
	}
	if (rv < 0)
		sp_view_free(out);
	return rv;
}

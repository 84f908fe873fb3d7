/* pgp_mime.c - RFC 3156 PGP/MIME copies, built with GMime. */
#include "pgp_mime.h"

#include <string.h>

#include <sodium.h>

int
sp_mime_append_object(GMimeObject *obj, struct sp_buf *out)
{
	GMimeFormatOptions *fo = g_mime_format_options_new();
	GMimeStream *s = g_mime_stream_mem_new();
	GByteArray *ba;
	int rv = -1;

	g_mime_format_options_set_newline_format(fo, GMIME_NEWLINE_FORMAT_DOS);
	if (g_mime_object_write_to_stream(obj, fo, s) < 0)
		goto out;
	ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(s));
	if (sp_buf_append(out, ba->data, ba->len) < 0)
		goto out;
	rv = 0;
out:
	g_object_unref(s);
	g_mime_format_options_free(fo);
	return rv;
}

static GMimePart *
part_7bit(const char *type, const char *subtype, const char *content, size_t len)
{
	GMimePart *p = g_mime_part_new_with_type(type, subtype);
	GMimeStream *s = g_mime_stream_mem_new_with_buffer(content, len);
	GMimeDataWrapper *w = g_mime_data_wrapper_new_with_stream(s, GMIME_CONTENT_ENCODING_7BIT);

	g_mime_part_set_content(p, w);
	g_mime_part_set_content_encoding(p, GMIME_CONTENT_ENCODING_7BIT);
	g_object_unref(w);
	g_object_unref(s);
	return p;
}

int
sp_pgp_mime_encrypted_entity(struct sp_pgp *pgp, const char *inner, size_t len, const char *const *fprs,
                             size_t n, const char *sign_fpr, struct sp_buf *out, char *err, size_t errsz)
{
	struct sp_buf armor;
	GMimeMultipart *mp = NULL;
	GMimePart *version = NULL, *payload = NULL;
	size_t start = out->len;
	int rv = -1, r;

	sp_buf_init(&armor, 0);
	if ((r = sp_pgp_encrypt(pgp, fprs, n, sign_fpr, inner, len, &armor, err, errsz)) != 0) {
		rv = r;
		goto out;
	}
	mp = g_mime_multipart_new_with_subtype("encrypted");
	g_mime_content_type_set_parameter(g_mime_object_get_content_type(GMIME_OBJECT(mp)), "protocol",
	                                  "application/pgp-encrypted");
	g_mime_multipart_set_prologue(mp, "This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)");
	version = part_7bit("application", "pgp-encrypted", "Version: 1\n", 11);
	g_mime_object_set_header(GMIME_OBJECT(version), "Content-Description",
	                         "PGP/MIME version identification", NULL);
	payload = part_7bit("application", "octet-stream", armor.data, armor.len);
	g_mime_object_set_header(GMIME_OBJECT(payload), "Content-Description", "OpenPGP encrypted message", NULL);
	g_mime_object_set_disposition(GMIME_OBJECT(payload), "inline");
	g_mime_part_set_filename(payload, "encrypted.asc");
	g_mime_multipart_add(mp, GMIME_OBJECT(version));
	g_mime_multipart_add(mp, GMIME_OBJECT(payload));
	if (sp_mime_append_object(GMIME_OBJECT(mp), out) < 0) {
		sp_seterr(err, errsz, "out of memory building the OpenPGP copy");
		goto out;
	}
	rv = 0;
out:
	if (rv != 0)
		out->len = start;
	if (version)
		g_object_unref(version);
	if (payload)
		g_object_unref(payload);
	if (mp)
		g_object_unref(mp);
	sp_buf_free(&armor);
	return rv;
}

int
sp_pgp_mime_build(struct sp_pgp *pgp, const struct sp_mime *m, bool hide_subject,
                  const char *const *fprs, size_t n, const char *sign_fpr, struct sp_buf *out,
                  char *err, size_t errsz)
{
	const char *subject = hide_subject ? "..." : NULL;
	struct sp_buf inner;
	size_t start = out->len;
	int rv = -1;

	sp_buf_init(&inner, 0);
	if (sp_mime_write_protected_entity(m, subject, &inner, err, errsz) < 0)
		goto out;
	if (sp_mime_write_outer_headers(m, subject, out) < 0 || sp_buf_puts(out, "MIME-Version: 1.0\r\n") < 0) {
		sp_seterr(err, errsz, "out of memory building the OpenPGP copy");
		goto out;
	}
	rv = sp_pgp_mime_encrypted_entity(pgp, inner.data, inner.len, fprs, n, sign_fpr, out, err, errsz);
out:
	if (rv != 0)
		out->len = start;
	/* The protected entity is plaintext. */
	sp_buf_wipe(&inner);
	return rv;
}

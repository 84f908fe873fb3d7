/* pgp_mime.c - RFC 3156 PGP/MIME copies, built with GMime. */
#include "pgp_mime.h"

#include <string.h>
#include <unistd.h>

#include <sodium.h>

static GMimePart *
part_7bit(const char *type, const char *subtype, GMimeStream *content)
{
	GMimePart *p = g_mime_part_new_with_type(type, subtype);
	GMimeDataWrapper *w = g_mime_data_wrapper_new_with_stream(content, GMIME_CONTENT_ENCODING_7BIT);

	g_mime_part_set_content(p, w);
	g_mime_part_set_content_encoding(p, GMIME_CONTENT_ENCODING_7BIT);
	g_object_unref(w);
	return p;
}

/* The multipart/encrypted entity around armored ciphertext (in a buffer, or
 * in armor_fd from offset 0 when armor is NULL), written into out. */
static int
wrap_armor(const struct sp_buf *armor, int armor_fd, struct sp_sink *out, char *err, size_t errsz)
{
	GMimeMultipart *mp = g_mime_multipart_new_with_subtype("encrypted");
	GMimeStream *vs = g_mime_stream_mem_new_with_buffer("Version: 1\n", 11), *as;
	GMimePart *version = part_7bit("application", "pgp-encrypted", vs), *payload;
	int rv = -1;

	if (armor)
		as = g_mime_stream_mem_new_with_buffer(armor->data, armor->len);
	else {
		GMimeStream *fs = g_mime_stream_fs_new_with_bounds(dup(armor_fd), 0, -1);
		as = g_mime_stream_buffer_new(fs, GMIME_STREAM_BUFFER_BLOCK_READ);
		g_object_unref(fs);
	}
	payload = part_7bit("application", "octet-stream", as);
	g_mime_content_type_set_parameter(g_mime_object_get_content_type(GMIME_OBJECT(mp)), "protocol",
	                                  "application/pgp-encrypted");
	g_mime_multipart_set_prologue(mp, "This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)");
	g_mime_object_set_header(GMIME_OBJECT(version), "Content-Description",
	                         "PGP/MIME version identification", NULL);
	g_mime_object_set_header(GMIME_OBJECT(payload), "Content-Description", "OpenPGP encrypted message", NULL);
	g_mime_object_set_disposition(GMIME_OBJECT(payload), "inline");
	g_mime_part_set_filename(payload, "encrypted.asc");
	g_mime_multipart_add(mp, GMIME_OBJECT(version));
	g_mime_multipart_add(mp, GMIME_OBJECT(payload));
	if (sp_sink_object(out, GMIME_OBJECT(mp)) < 0)
		sp_seterr(err, errsz, "cannot write the OpenPGP copy");
	else
		rv = 0;
	g_object_unref(version);
	g_object_unref(payload);
	g_object_unref(vs);
	g_object_unref(as);
	g_object_unref(mp);
	return rv;
}

/* Encrypt in and append the multipart/encrypted entity to out: through a
 * buffer for small copies, through an anonymous spool file for big ones. */
static enum sp_pgp_encrypt_result
encrypt_and_wrap(struct sp_pgp *pgp, const struct sp_blob *in, const char *const *fprs, size_t n,
                 const char *sign_fpr, struct sp_sink *out, char *err, size_t errsz)
{
	struct sp_buf armor;
	int fd = -1;
	enum sp_pgp_encrypt_result rv = SP_PGP_ENCRYPT_TEMPFAIL;

	sp_buf_init(&armor, 0);
	if (out->buf) {
		if ((rv = sp_pgp_encrypt_io(pgp, fprs, n, sign_fpr, in, &armor, -1, err, errsz)) != SP_PGP_ENCRYPTED)
			goto out;
		rv = wrap_armor(&armor, -1, out, err, errsz) < 0 ? SP_PGP_ENCRYPT_TEMPFAIL : SP_PGP_ENCRYPTED;
		goto out;
	}
	if ((fd = sp_tmpfile(err, errsz)) < 0)
		goto out;
	if ((rv = sp_pgp_encrypt_io(pgp, fprs, n, sign_fpr, in, NULL, fd, err, errsz)) != SP_PGP_ENCRYPTED)
		goto out;
	rv = wrap_armor(NULL, fd, out, err, errsz) < 0 ? SP_PGP_ENCRYPT_TEMPFAIL : SP_PGP_ENCRYPTED;
out:
	if (fd >= 0)
		close(fd);
	sp_buf_free(&armor);
	return rv;
}

enum sp_pgp_encrypt_result
sp_pgp_mime_encrypted_entity(struct sp_pgp *pgp, const char *inner, size_t len, const char *const *fprs,
                             size_t n, const char *sign_fpr, struct sp_buf *out, char *err, size_t errsz)
{
	struct sp_span span = { inner, len };
	struct sp_blob in = { .spans = &span, .n_spans = 1, .fd = -1, .len = len };
	struct sp_sink sink = { out, -1 };
	size_t start = out->len;
	enum sp_pgp_encrypt_result rv = encrypt_and_wrap(pgp, &in, fprs, n, sign_fpr, &sink, err, errsz);

	if (rv != SP_PGP_ENCRYPTED)
		out->len = start;
	return rv;
}

enum sp_pgp_encrypt_result
sp_pgp_mime_build(struct sp_pgp *pgp, const struct sp_mime *m, bool hide_subject, const char *const *fprs,
                  size_t n, const char *sign_fpr, struct sp_sink *out, char *err, size_t errsz)
{
	const char *subject = hide_subject ? "..." : NULL;
	struct sp_mime_protected pe;
	struct sp_buf outer;
	struct sp_span spans[SP_MIME_PROTECTED_MAX_SPANS];
	struct sp_blob in = { .spans = spans, .fd = -1 };
	size_t i;
	enum sp_pgp_encrypt_result rv = SP_PGP_ENCRYPT_TEMPFAIL;

	sp_buf_init(&outer, 0);
	memset(&pe, 0, sizeof pe);
	/* The protected entity = its header (built here) + the client's body,
	 * read in place (the plaintext is never copied), with the legacy
	 * display insertions, when there are any, where they go. */
	if (sp_mime_protected_build(m, subject, &pe, err, errsz) < 0)
		goto out;
	in.n_spans = sp_mime_protected_spans(m, &pe, spans);
	for (i = 0, in.len = 0; i < in.n_spans; i++)
		in.len += spans[i].n;
	if (sp_mime_write_outer_headers(m, subject, &outer) < 0 || sp_buf_puts(&outer, "MIME-Version: 1.0\r\n") < 0 ||
	    sp_sink_write(out, outer.data, outer.len) < 0) {
		sp_seterr(err, errsz, "cannot write the OpenPGP copy");
		goto out;
	}
	rv = encrypt_and_wrap(pgp, &in, fprs, n, sign_fpr, out, err, errsz);
out:
	/* The protected header names the message's subject: plaintext. */
	sp_mime_protected_wipe(&pe);
	sp_buf_free(&outer);
	return rv;
}

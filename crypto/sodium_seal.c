/* sodium_seal.c - the sodium copy: sealing to X25519 keys, the MIME copy, and
 * `sealpost open`.  Byte layout: docs/formats.md, "sodium copy (v1)". */
#include "sodium_seal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

static const unsigned char sodium_magic[8] = { 'S', 'P', 'S', 'O', 'D', 'I', 'U', 'M' };

_Static_assert(SP_SODIUM_SLOTBYTES == crypto_box_SEALBYTES + SP_SECRETSTREAM_KEYBYTES, "slot size");
_Static_assert(SP_SODIUM_MAX_SLOTS <= 0xffff, "slot count field");

const char sp_sodium_copy_help[] =
	"This message is end-to-end encrypted with sealpost (sodium form).\n"
	"\n"
	"The attachment message.sealpost holds the whole original message, text\n"
	"and attachments included, sealed to your sealpost key.  To read it, save\n"
	"this message (or just the attachment) and run:\n"
	"\n"
	"    sealpost open -k KEYFILE message.eml > original.eml\n"
	"\n"
	"where KEYFILE is the secret key file that 'sealpost keygen' made for you,\n"
	"then open original.eml with your mail program.\n"
	"\n"
	"The format is documented in sealpost's docs/formats.md (\"sodium copy\n"
	"(v1)\"), so any implementation of it can open the attachment.\n";

size_t
sp_sodium_sealed_size(size_t npk, size_t len)
{
	return SP_SODIUM_PREFIXBYTES + npk * SP_SODIUM_SLOTBYTES + sp_secretstream_size(len);
}

/* ---- sealing ---- */

/* crypto_box_seal(key, pk) with the ephemeral secret key esk given:
 * epk || crypto_box(key, nonce = BLAKE2b-192(epk || pk), pk, esk).
 * Byte-for-byte what libsodium's crypto_box_seal() makes with a random esk,
 * and opened by crypto_box_seal_open(). */
static int
seal_slot(unsigned char out[SP_SODIUM_SLOTBYTES], const unsigned char key[SP_SECRETSTREAM_KEYBYTES],
          const unsigned char pk[SP_SODIUM_PKBYTES], const unsigned char esk[SP_SODIUM_SKBYTES])
{
	unsigned char epk[crypto_box_PUBLICKEYBYTES], nonce[crypto_box_NONCEBYTES];
	crypto_generichash_state st;
	int rv;

	crypto_scalarmult_base(epk, esk);
	crypto_generichash_init(&st, NULL, 0, sizeof nonce);
	crypto_generichash_update(&st, epk, sizeof epk);
	crypto_generichash_update(&st, pk, SP_SODIUM_PKBYTES);
	crypto_generichash_final(&st, nonce, sizeof nonce);
	memcpy(out, epk, sizeof epk);
	rv = crypto_box_easy(out + sizeof epk, key, SP_SECRETSTREAM_KEYBYTES, nonce, pk, esk);
	sodium_memzero(&st, sizeof st);
	return rv;
}

struct sp_sodium_sealer {
	struct sp_secretstream_push *push;
};

struct sp_sodium_sealer *
sp_sodium_sealer_new_det(const unsigned char *const *pks, size_t npk, const unsigned char key[SP_SECRETSTREAM_KEYBYTES],
                         const unsigned char header[SP_SECRETSTREAM_HEADERBYTES],
                         const unsigned char *const *ephemeral_sks, sp_write_fn w, void *wctx,
                         char *err, size_t errsz)
{
	struct sp_sodium_sealer *s = NULL;
	unsigned char *hdr = NULL;
	size_t hdrlen, i;

	if (npk == 0 || npk > SP_SODIUM_MAX_SLOTS) {
		sp_seterr(err, errsz, "sodium: %zu recipients for one copy (must be 1..%d)", npk, SP_SODIUM_MAX_SLOTS);
		return NULL;
	}
	hdrlen = SP_SODIUM_PREFIXBYTES + npk * SP_SODIUM_SLOTBYTES;
	hdr = sp_xmalloc(hdrlen);
	memcpy(hdr, sodium_magic, sizeof sodium_magic);
	hdr[8] = SP_SODIUM_VERSION;
	hdr[9] = (unsigned char)(npk >> 8);
	hdr[10] = (unsigned char)npk;
	for (i = 0; i < npk; i++) {
		if (pks[i] == NULL) {
			sp_seterr(err, errsz, "sodium: recipient %zu has no public key", i + 1);
			goto out;
		}
		if (seal_slot(hdr + SP_SODIUM_PREFIXBYTES + i * SP_SODIUM_SLOTBYTES, key, pks[i], ephemeral_sks[i]) != 0) {
			sp_seterr(err, errsz, "sodium: recipient %zu has an unusable public key", i + 1);
			goto out;
		}
	}
	if (w(wctx, hdr, hdrlen, err, errsz) < 0)
		goto out;
	s = sp_xcalloc(1, sizeof *s);
	s->push = sp_secretstream_push_new_det(key, header, hdr, hdrlen, w, wctx, err, errsz);
	if (s->push == NULL) {
		free(s);
		s = NULL;
	}
out:
	free(hdr);
	return s;
}

struct sp_sodium_sealer *
sp_sodium_sealer_new(const unsigned char *const *pks, size_t npk, sp_write_fn w, void *wctx,
                     char *err, size_t errsz)
{
	unsigned char key[SP_SECRETSTREAM_KEYBYTES], header[SP_SECRETSTREAM_HEADERBYTES];
	unsigned char (*esk)[SP_SODIUM_SKBYTES] = NULL;
	const unsigned char **eskp = NULL;
	struct sp_sodium_sealer *s = NULL;
	size_t i;

	if (npk == 0 || npk > SP_SODIUM_MAX_SLOTS) {
		sp_seterr(err, errsz, "sodium: %zu recipients for one copy (must be 1..%d)", npk, SP_SODIUM_MAX_SLOTS);
		return NULL;
	}
	/* The same inputs the KAT variant takes, from the CSPRNG: a random
	 * header is all crypto_secretstream's init_push() adds, and a random
	 * ephemeral key is all crypto_box_seal() adds. */
	esk = sp_xcalloc(npk, sizeof *esk);
	eskp = sp_xcalloc(npk, sizeof *eskp);
	crypto_secretstream_xchacha20poly1305_keygen(key);
	randombytes_buf(header, sizeof header);
	for (i = 0; i < npk; i++) {
		randombytes_buf(esk[i], sizeof esk[i]);
		eskp[i] = esk[i];
	}
	s = sp_sodium_sealer_new_det(pks, npk, key, header, eskp, w, wctx, err, errsz);
	sodium_memzero(key, sizeof key);
	sodium_memzero(esk, npk * sizeof *esk);
	free(esk);
	free(eskp);
	return s;
}

int
sp_sodium_sealer_update(struct sp_sodium_sealer *s, const void *p, size_t n, char *err, size_t errsz)
{
	return sp_secretstream_push_update(s->push, p, n, err, errsz);
}

int
sp_sodium_sealer_finish(struct sp_sodium_sealer *s, char *err, size_t errsz)
{
	return sp_secretstream_push_finish(s->push, err, errsz);
}

void
sp_sodium_sealer_free(struct sp_sodium_sealer *s)
{
	if (s == NULL)
		return;
	sp_secretstream_push_free(s->push);
	free(s);
}

/* ---- the MIME copy ---- */

int
sp_write_gmime(void *stream, const void *p, size_t n, char *err, size_t errsz)
{
	const char *c = p;
	ssize_t w;

	while (n > 0) {
		w = g_mime_stream_write(stream, c, n);
		if (w <= 0) {
			sp_seterr(err, errsz, "cannot write the sealed copy: %s", strerror(errno ? errno : EIO));
			return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

static GMimeObject *
build_copy(GMimeStream *spool, gint64 start, gint64 end)
{
	GMimeMultipart *mp = g_mime_multipart_new_with_subtype("mixed");
	GMimeTextPart *text = g_mime_text_part_new_with_subtype("plain");
	GMimePart *att = g_mime_part_new_with_type("application", "x-sealpost");
	GMimeStream *sub = g_mime_stream_substream(spool, start, end);
	GMimeDataWrapper *dw = g_mime_data_wrapper_new_with_stream(sub, GMIME_CONTENT_ENCODING_DEFAULT);

	g_mime_text_part_set_charset(text, "us-ascii");
	g_mime_text_part_set_text(text, sp_sodium_copy_help);
	g_mime_part_set_content_encoding(GMIME_PART(text), GMIME_CONTENT_ENCODING_7BIT);
	g_mime_multipart_add(mp, GMIME_OBJECT(text));

	g_mime_part_set_content(att, dw);
	g_mime_part_set_content_encoding(att, GMIME_CONTENT_ENCODING_BASE64);
	g_mime_object_set_disposition(GMIME_OBJECT(att), GMIME_DISPOSITION_ATTACHMENT);
	g_mime_part_set_filename(att, SP_SODIUM_FILENAME);
	g_mime_part_set_content_description(att, "sealpost sealed message");
	g_mime_multipart_add(mp, GMIME_OBJECT(att));

	g_object_unref(dw);
	g_object_unref(sub);
	g_object_unref(att);
	g_object_unref(text);
	return GMIME_OBJECT(mp);
}

/* Reads the message from msgstream (if not NULL) or from (msg, len). */
static GMimeObject *
make_copy(const unsigned char *const *pks, size_t npk, const void *msg, size_t len, GMimeStream *msgstream,
          GMimeStream *spool, char *err, size_t errsz)
{
	struct sp_sodium_sealer *s = NULL;
	GMimeObject *copy = NULL;
	gint64 start, end;
	char *buf = NULL;
	ssize_t n;

	if (spool == NULL)
		spool = g_mime_stream_mem_new();
	else
		g_object_ref(spool);
	start = g_mime_stream_tell(spool);
	s = sp_sodium_sealer_new(pks, npk, sp_write_gmime, spool, err, errsz);
	if (s == NULL)
		goto out;
	if (msgstream == NULL) {
		if (sp_sodium_sealer_update(s, msg, len, err, errsz) < 0)
			goto out;
	} else {
		buf = sp_xmalloc(SP_SECRETSTREAM_CHUNK);
		while ((n = g_mime_stream_read(msgstream, buf, SP_SECRETSTREAM_CHUNK)) > 0)
			if (sp_sodium_sealer_update(s, buf, (size_t)n, err, errsz) < 0)
				goto out;
		if (n < 0) {
			sp_seterr(err, errsz, "cannot read the message: %s", strerror(errno ? errno : EIO));
			goto out;
		}
	}
	/* No flush: the attachment reads back through the same stream object
	 * (and flushing a GMimeStreamFs would fsync a throwaway spool). */
	if (sp_sodium_sealer_finish(s, err, errsz) < 0)
		goto out;
	end = g_mime_stream_tell(spool);
	copy = build_copy(spool, start, end);
out:
	sp_sodium_sealer_free(s);
	if (buf != NULL) {
		sodium_memzero(buf, SP_SECRETSTREAM_CHUNK);
		free(buf);
	}
	g_object_unref(spool);
	return copy;
}

GMimeObject *
sp_sodium_make_copy(const unsigned char *const *pks, size_t npk, const void *msg, size_t len,
                    GMimeStream *spool, char *err, size_t errsz)
{
	return make_copy(pks, npk, msg, len, NULL, spool, err, errsz);
}

GMimeObject *
sp_sodium_make_copy_stream(const unsigned char *const *pks, size_t npk, GMimeStream *msg,
                           GMimeStream *spool, char *err, size_t errsz)
{
	return make_copy(pks, npk, NULL, 0, msg, spool, err, errsz);
}

/* ---- opening ---- */

/* An unlinked temporary file in $TMPDIR for ciphertext (never plaintext). */
static FILE *
spool_open(char *err, size_t errsz)
{
	const char *dir = g_get_tmp_dir();
	char *tmpl;
	FILE *fp;
	int fd;

	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0) {
		/* Filesystems without O_TMPFILE: create and unlink at once. */
		tmpl = g_build_filename(dir, "sealpost-spool-XXXXXX", NULL);
		fd = g_mkstemp_full(tmpl, O_RDWR | O_CLOEXEC, 0600);
		if (fd >= 0)
			unlink(tmpl);
		g_free(tmpl);
	}
	if (fd < 0) {
		sp_seterr(err, errsz, "cannot create a temporary file in %s: %s", dir, strerror(errno));
		return NULL;
	}
	fp = fdopen(fd, "w+b");
	if (fp == NULL) {
		sp_seterr(err, errsz, "cannot create a temporary file in %s: %s", dir, strerror(errno));
		close(fd);
	}
	return fp;
}

static int
copy_stdio(FILE *in, FILE *out, char *err, size_t errsz)
{
	char buf[65536];
	size_t n;

	while ((n = fread(buf, 1, sizeof buf, in)) > 0)
		if (fwrite(buf, 1, n, out) != n) {
			sp_seterr(err, errsz, "cannot spool the input: %s", strerror(errno ? errno : EIO));
			return -1;
		}
	if (ferror(in)) {
		sp_seterr(err, errsz, "cannot read the input: %s", strerror(errno ? errno : EIO));
		return -1;
	}
	if (fflush(out) != 0) {
		sp_seterr(err, errsz, "cannot spool the input: %s", strerror(errno ? errno : EIO));
		return -1;
	}
	return 0;
}

/* How deep open looks into attached messages (message/rfc822): a forwarded
 * copy is one level, a forward of a forward two; the cap stops a crafted
 * input from recursing without end. */
#define SP_SODIUM_OPEN_MAX_NESTING 8

struct find_part {
	GMimePart *part;
	unsigned count;
	unsigned depth;
};

static void
find_sealed_part(GMimeObject *parent, GMimeObject *obj, gpointer data)
{
	struct find_part *fp = data;
	GMimeMessage *inner;
	const char *fn;

	/* A copy forwarded as an attachment (message/rfc822): look inside. */
	if (GMIME_IS_MESSAGE_PART(obj)) {
		inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
		if (inner != NULL && fp->depth < SP_SODIUM_OPEN_MAX_NESTING) {
			fp->depth++;
			g_mime_message_foreach(inner, find_sealed_part, fp);
			fp->depth--;
		}
		return;
	}
	if (!GMIME_IS_PART(obj))
		return;
	fn = g_mime_part_get_filename(GMIME_PART(obj));
	/* By type, or by name if a client relabelled it application/octet-stream. */
	if (g_mime_content_type_is_type(g_mime_object_get_content_type(obj), "application", "x-sealpost") ||
	    (fn != NULL && g_str_has_suffix(fn, ".sealpost"))) {
		if (fp->count++ == 0)
			fp->part = GMIME_PART(obj);
	}
}

/* Find the sealed attachment in the message held by raw and decode it into ct. */
static int
extract_attachment(FILE *raw, FILE *ct, char *err, size_t errsz)
{
	GMimeStream *in = NULL, *out = NULL;
	GMimeParser *parser = NULL;
	GMimeMessage *msg = NULL;
	struct find_part fp = { NULL, 0, 0 };
	int rv = -1;

	rewind(raw);
	in = g_mime_stream_file_new(raw);
	g_mime_stream_file_set_owner(GMIME_STREAM_FILE(in), FALSE);
	parser = g_mime_parser_new_with_stream(in);
	/* Persist: part contents stay substreams of the file, not copies in memory. */
	g_mime_parser_set_persist_stream(parser, TRUE);
	msg = g_mime_parser_construct_message(parser, NULL);
	if (msg != NULL)
		g_mime_message_foreach(msg, find_sealed_part, &fp);
	if (fp.count == 0) {
		sp_seterr(err, errsz, "no sealpost attachment (%s) in the input, and the input is not a bare "
		          "sealed file either", SP_SODIUM_CONTENT_TYPE);
		goto out;
	}
	if (fp.count > 1) {
		sp_seterr(err, errsz, "the message holds %u sealpost attachments; save the one to open and "
		          "pass that file", fp.count);
		goto out;
	}
	out = g_mime_stream_file_new(ct);
	g_mime_stream_file_set_owner(GMIME_STREAM_FILE(out), FALSE);
	if (g_mime_part_get_content(fp.part) == NULL ||
	    g_mime_data_wrapper_write_to_stream(g_mime_part_get_content(fp.part), out) < 0 ||
	    g_mime_stream_flush(out) < 0) {
		sp_seterr(err, errsz, "cannot decode the sealpost attachment: %s", strerror(errno ? errno : EIO));
		goto out;
	}
	rv = 0;
out:
	if (out)
		g_object_unref(out);
	if (msg)
		g_object_unref(msg);
	if (parser)
		g_object_unref(parser);
	if (in)
		g_object_unref(in);
	return rv;
}

/* Read the header (magic, version, slots) and find the slot kp opens. */
static int
read_header(FILE *ct, const struct sp_sodium_keypair *kp, struct sp_buf *hdr,
            unsigned char key[SP_SECRETSTREAM_KEYBYTES], char *err, size_t errsz)
{
	unsigned char prefix[SP_SODIUM_PREFIXBYTES];
	char pub[SP_SODIUM_PUBLINE_LEN + 1];
	size_t nslots, i;
	ssize_t n;

	n = sp_read_full(sp_read_stdio, ct, prefix, sizeof prefix, err, errsz);
	if (n < 0)
		return -1;
	if ((size_t)n < sizeof sodium_magic || memcmp(prefix, sodium_magic, sizeof sodium_magic) != 0) {
		sp_seterr(err, errsz, "the attachment is not a sealpost sealed file (bad magic)");
		return -1;
	}
	if (n < 9) {
		sp_seterr(err, errsz, "the sealed file is truncated (it ends in its header)");
		return -1;
	}
	if (prefix[8] != SP_SODIUM_VERSION) {
		sp_seterr(err, errsz, "the message was sealed with format version %u; this sealpost reads "
		          "version %d (a newer sealpost may open it)", (unsigned)prefix[8], SP_SODIUM_VERSION);
		return -1;
	}
	if ((size_t)n < sizeof prefix) {
		sp_seterr(err, errsz, "the sealed file is truncated (it ends in its header)");
		return -1;
	}
	nslots = (size_t)prefix[9] << 8 | prefix[10];
	if (nslots == 0 || nslots > SP_SODIUM_MAX_SLOTS) {
		sp_seterr(err, errsz, "the sealed file claims %zu key slots (this sealpost accepts 1..%d)",
		          nslots, SP_SODIUM_MAX_SLOTS);
		return -1;
	}
	if (sp_buf_append(hdr, prefix, sizeof prefix) < 0 || sp_buf_reserve(hdr, nslots * SP_SODIUM_SLOTBYTES) < 0) {
		sp_seterr(err, errsz, "out of memory");
		return -1;
	}
	n = sp_read_full(sp_read_stdio, ct, hdr->data + hdr->len, nslots * SP_SODIUM_SLOTBYTES, err, errsz);
	if (n < 0)
		return -1;
	if ((size_t)n < nslots * SP_SODIUM_SLOTBYTES) {
		sp_seterr(err, errsz, "the sealed file is truncated (it ends in its key slots)");
		return -1;
	}
	hdr->len += (size_t)n;
	for (i = 0; i < nslots; i++) {
		const unsigned char *slot = (const unsigned char *)hdr->data + SP_SODIUM_PREFIXBYTES + i * SP_SODIUM_SLOTBYTES;

		if (crypto_box_seal_open(key, slot, SP_SODIUM_SLOTBYTES, kp->pk, kp->sk) == 0)
			return 0;
	}
	sp_sodium_format_public(kp->pk, pub);
	sp_seterr(err, errsz, "wrong key: none of the %zu key slot%s opens with the key %s "
	          "(the message was not sealed to it, or its key slots are damaged)",
	          nslots, nslots == 1 ? "" : "s", pub);
	return -1;
}

int
sp_sodium_open(FILE *in, FILE *out, const struct sp_sodium_keypair *kp, char *err, size_t errsz)
{
	unsigned char key[SP_SECRETSTREAM_KEYBYTES];
	unsigned char head[sizeof sodium_magic];
	FILE *raw = NULL, *ctfp = NULL, *ct;
	char why[SP_ERRLEN];
	struct sp_buf hdr;
	size_t n;
	int rv = -1;

	sp_buf_init(&hdr, 0);
	/* Spool the input: it may be a pipe, GMime needs to seek, and the
	 * ciphertext is read twice.  None of it is secret. */
	raw = spool_open(err, errsz);
	if (raw == NULL || copy_stdio(in, raw, err, errsz) < 0)
		goto out;
	rewind(raw);
	n = fread(head, 1, sizeof head, raw);
	if (n == sizeof head && memcmp(head, sodium_magic, sizeof head) == 0) {
		ct = raw;                       /* a bare sealed file */
	} else {
		ctfp = spool_open(err, errsz);
		if (ctfp == NULL || extract_attachment(raw, ctfp, err, errsz) < 0)
			goto out;
		ct = ctfp;
	}

	/* Pass 1: find our key slot and authenticate every chunk, writing
	 * nothing.  Only a stream that verified to its FINAL chunk and the end
	 * of the file is decrypted again, in pass 2, onto out. */
	rewind(ct);
	if (read_header(ct, kp, &hdr, key, err, errsz) < 0)
		goto out;
	if (sp_secretstream_pull(key, hdr.data, hdr.len, sp_read_stdio, ct, NULL, NULL, why, sizeof why) < 0) {
		sp_seterr(err, errsz, "the sealed message is damaged, nothing was written: %s", why);
		goto out;
	}
	if (fseek(ct, (long)hdr.len, SEEK_SET) != 0) {
		sp_seterr(err, errsz, "cannot rewind the temporary file: %s", strerror(errno));
		goto out;
	}
	/* The spool is our own unlinked file; if it changed between the passes
	 * anyway, pass 2 fails authentication just the same. */
	if (sp_secretstream_pull(key, hdr.data, hdr.len, sp_read_stdio, ct, sp_write_stdio, out, why, sizeof why) < 0) {
		sp_seterr(err, errsz, "opening failed in the second pass: %s", why);
		goto out;
	}
	if (fflush(out) != 0 || ferror(out)) {
		sp_seterr(err, errsz, "cannot write the output: %s", strerror(errno ? errno : EIO));
		goto out;
	}
	rv = 0;
out:
	sodium_memzero(key, sizeof key);
	sp_buf_free(&hdr);
	if (ctfp)
		fclose(ctfp);
	if (raw)
		fclose(raw);
	return rv;
}

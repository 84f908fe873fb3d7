/* fuzz_sodium_open.c - `sealpost open` on arbitrary input (crypto/sodium_seal.h).
 *
 * The fixed test key pair is recipient 0 of [copy-1-recipient] in
 * tests/vectors/sodium-v1.txt, so the committed seeds (a bare sealed file and
 * an .eml holding one) open, and mutations of them reach every check of the
 * header, the key slots, the stream and the MIME wrapping.
 *   1. sp_sodium_open() on the input (bare sealed file or a saved message):
 *      when it fails, nothing may have been written.
 *   2. The input as a plaintext: sealed to the test key as a bare file, and
 *      wrapped in the MIME copy the proxy sends (sp_sodium_make_copy), each
 *      must open to exactly the input.
 */
#include "fuzz_common.h"

#include <gmime/gmime.h>
#include <sodium.h>

#include "log.h"
#include "sodium_keys.h"
#include "sodium_seal.h"

static const char test_secret_line[] =
	"sealpost-secret1:g5fxmlws1fWBbBTBfd3BmqRXaOQUj0vpqPqd6Eetol/hSGQzmDGsWlDbWlOn4xi+kzifFVaH1W2eGVl5ROX4bQ==\n";

/* Plaintexts larger than this are only opened, not sealed as well: two
 * secretstream chunks (128 KiB) already cover the chunking. */
#define FUZZ_SEAL_MAX 200000

static struct sp_sodium_keypair kp;

/* Open in[0..len) into a memory buffer.  Returns 0 / -1 like sp_sodium_open;
 * *out / *outlen receive what was written (free it). */
static int
open_mem(const void *in, size_t len, char **out, size_t *outlen, char *err, size_t errsz)
{
	FILE *fin, *fout;
	int rv;

	/* fmemopen does not take an empty buffer: an empty input is /dev/null. */
	fin = len ? fmemopen((void *)in, len, "rb") : fopen("/dev/null", "rb");
	FUZZ_SETUP(fin != NULL, "fmemopen");
	*out = NULL;
	*outlen = 0;
	fout = open_memstream(out, outlen);
	FUZZ_SETUP(fout != NULL, "open_memstream");
	rv = sp_sodium_open(fin, fout, &kp, err, errsz);
	fclose(fin);
	fclose(fout);
	return rv;
}

static void
check_open(const uint8_t *data, size_t size)
{
	char err[SP_ERRLEN], *out;
	size_t outlen;

	err[0] = '\0';
	if (open_mem(data, size, &out, &outlen, err, sizeof err) < 0) {
		FUZZ_CHECK(err[0] != '\0', "open failed without a reason");
		FUZZ_CHECK(outlen == 0, "open failed but wrote %zu bytes", outlen);
	}
	sodium_memzero(out, outlen);
	free(out);
}

static int
sink_buf(void *ctx, const void *p, size_t n, char *err, size_t errsz)
{
	return sp_write_buf(ctx, p, n, err, errsz);
}

static void
check_roundtrip(const uint8_t *data, size_t size)
{
	const unsigned char *pks[1] = { kp.pk };
	struct sp_sodium_sealer *s;
	struct sp_buf sealed;
	char err[SP_ERRLEN], *out;
	size_t outlen;
	GMimeObject *copy;

	/* The bare sealed file. */
	sp_buf_init(&sealed, 0);
	s = sp_sodium_sealer_new(pks, 1, sink_buf, &sealed, err, sizeof err);
	FUZZ_CHECK(s != NULL, "sealer: %s", err);
	FUZZ_CHECK(sp_sodium_sealer_update(s, data, size, err, sizeof err) == 0, "seal: %s", err);
	FUZZ_CHECK(sp_sodium_sealer_finish(s, err, sizeof err) == 0, "seal: %s", err);
	sp_sodium_sealer_free(s);
	FUZZ_CHECK(sealed.len == sp_sodium_sealed_size(1, size), "sealed size %zu, announced %zu", sealed.len,
	           sp_sodium_sealed_size(1, size));
	FUZZ_CHECK(open_mem(sealed.data, sealed.len, &out, &outlen, err, sizeof err) == 0,
	           "a freshly sealed file does not open: %s", err);
	FUZZ_CHECK(outlen == size && memcmp(out, data, size) == 0, "open(seal(x)) != x");
	sodium_memzero(out, outlen);
	free(out);
	sp_buf_free(&sealed);

	/* The MIME copy, as a client saves it. */
	copy = sp_sodium_make_copy(pks, 1, data, size, NULL, err, sizeof err);
	FUZZ_CHECK(copy != NULL, "make_copy: %s", err);
	{
		GMimeMessage *msg = g_mime_message_new(TRUE);
		GMimeStream *mem = g_mime_stream_mem_new();
		GByteArray *arr = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));

		g_mime_message_set_subject(msg, "sealed", NULL);
		g_mime_message_set_mime_part(msg, copy);
		FUZZ_CHECK(g_mime_object_write_to_stream(GMIME_OBJECT(msg), NULL, mem) >= 0, "write copy");
		FUZZ_CHECK(open_mem(arr->data, arr->len, &out, &outlen, err, sizeof err) == 0,
		           "the MIME copy does not open: %s", err);
		FUZZ_CHECK(outlen == size && memcmp(out, data, size) == 0, "open(copy(x)) != x");
		sodium_memzero(out, outlen);
		free(out);
		g_object_unref(mem);
		g_object_unref(msg);
	}
	g_object_unref(copy);
}

/* FUZZ_MAKE_SEEDS=DIR: write the seed corpus (a bare sealed file and a saved
 * copy, both sealed to the test key) and exit. */
static void
make_seeds(const char *dir)
{
	static const char msg[] = "From: Alice <alice@example.org>\r\nTo: bob@example.net\r\n"
	                          "Subject: lunch\r\n\r\nSee you at noon.\r\n";
	const unsigned char *pks[1] = { kp.pk };
	struct sp_buf sealed;
	char err[SP_ERRLEN];
	struct sp_sodium_sealer *s;
	GMimeObject *copy;
	GMimeMessage *m = g_mime_message_new(TRUE);
	GMimeStream *mem = g_mime_stream_mem_new();
	GByteArray *arr = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));

	sp_buf_init(&sealed, 0);
	s = sp_sodium_sealer_new(pks, 1, sink_buf, &sealed, err, sizeof err);
	FUZZ_SETUP(s && sp_sodium_sealer_update(s, msg, strlen(msg), err, sizeof err) == 0 &&
	           sp_sodium_sealer_finish(s, err, sizeof err) == 0, "seal");
	sp_sodium_sealer_free(s);
	fuzz_write_seed(dir, "bare.sealpost", sealed.data, sealed.len);
	copy = sp_sodium_make_copy(pks, 1, msg, strlen(msg), NULL, err, sizeof err);
	FUZZ_SETUP(copy != NULL, "make_copy");
	g_mime_message_set_subject(m, "sealed", NULL);
	g_mime_message_set_mime_part(m, copy);
	g_mime_object_write_to_stream(GMIME_OBJECT(m), NULL, mem);
	fuzz_write_seed(dir, "copy.eml", arr->data, arr->len);
	g_object_unref(mem);
	g_object_unref(m);
	g_object_unref(copy);
	sp_buf_free(&sealed);
	exit(0);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[SP_ERRLEN];

	(void)argc;
	(void)argv;
	/* The ciphertext spools go to $TMPDIR. */
	setenv("TMPDIR", fuzz_tmpdir(), 1);
	sp_log_init(SP_LOG_ERROR);
	FUZZ_SETUP(sodium_init() >= 0, "sodium_init");
	g_mime_init();
	if (sp_sodium_parse_secret("test key", test_secret_line, strlen(test_secret_line), &kp, err,
	                           sizeof err) < 0) {
		fprintf(stderr, "fuzz setup: %s\n", err);
		exit(2);
	}
	if (getenv("FUZZ_MAKE_SEEDS"))
		make_seeds(getenv("FUZZ_MAKE_SEEDS"));
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_open(data, size);
	if (size <= FUZZ_SEAL_MAX)
		check_roundtrip(data, size);
	return 0;
}

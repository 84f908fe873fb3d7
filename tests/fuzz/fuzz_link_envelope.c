/* fuzz_link_envelope.c - the link-mode formats (crypto/link_envelope.h).
 *
 * The input is, at once:
 *   - a link token from a URL: sp_link_token_decode(); a token that decodes
 *     must encode back to the same 43 characters (one spelling per token);
 *   - a wrapped-key blob from the store: sp_link_unwrap_key() with the fixed
 *     test password and token, and, past its first 105 bytes, with the rest
 *     of the input as the password;
 *   - a sealed link message: sp_link_open_message() with the fixed test key
 *     (a failure leaves the output empty);
 *   - a plaintext: sealed with the test key and opened again, it must come
 *     back unchanged.
 *
 * Argon2id: crypto_pwhash is linked through the hook in fuzz_hook_pwhash.c
 * (-Wl,--wrap): it checks that the cost a blob asks for is within the bounds,
 * then runs Argon2id at its smallest cost.  The seeds are wrapped with that
 * smallest cost, so they unwrap.
 */
#include "fuzz_common.h"

#include <sodium.h>

#include "link_envelope.h"
#include "util.h"

/* The fixed test secrets of the seeds. */
static const char test_password[] = "bakit-monel-sutar-figon";
static const struct sp_link_token test_token = {
	.id = { 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f },
	.secret = { 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f },
};
static const unsigned char test_key[SP_LINK_KEYBYTES] = {
	0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f,
	0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x4b, 0x4c, 0x4d, 0x4e, 0x4f,
};

/* Plaintexts sealed per input: two 64 KiB chunks are enough. */
#define FUZZ_SEAL_MAX 200000

static void
check_token(const uint8_t *data, size_t size)
{
	struct sp_link_token t;
	char enc[SP_LINK_TOKEN_STRLEN + 1], hex[SP_LINK_ID_HEXLEN + 1];
	unsigned char id[SP_LINK_IDBYTES];

	if (sp_link_token_decode((const char *)data, size, &t) < 0)
		return;
	FUZZ_CHECK(size == SP_LINK_TOKEN_STRLEN, "a %zu-byte token decoded", size);
	sp_link_token_encode(&t, enc);
	FUZZ_CHECK(memcmp(enc, data, size) == 0, "token %.43s re-encodes as %s", (const char *)data, enc);
	sp_link_id_hex(t.id, hex);
	FUZZ_CHECK(sp_link_id_from_hex(hex, id) == 0 && memcmp(id, t.id, sizeof id) == 0, "id hex roundtrip");
}

static void
check_unwrap(const uint8_t *data, size_t size)
{
	unsigned char key[SP_LINK_KEYBYTES];
	char err[SP_ERRLEN];

	err[0] = '\0';
	if (sp_link_unwrap_key(data, size, test_password, &test_token, key, err, sizeof err) == 0)
		FUZZ_CHECK(size == SP_LINK_WRAPPED_BYTES, "a %zu-byte blob unwrapped", size);
	else
		FUZZ_CHECK(err[0] != '\0', "unwrap failed without a reason");
	if (size > SP_LINK_WRAPPED_BYTES) {
		char *pw = fuzz_strndup(data + SP_LINK_WRAPPED_BYTES, size - SP_LINK_WRAPPED_BYTES);
		err[0] = '\0';
		if (sp_link_unwrap_key(data, SP_LINK_WRAPPED_BYTES, pw, &test_token, key, err, sizeof err) < 0)
			FUZZ_CHECK(err[0] != '\0', "unwrap failed without a reason");
		free(pw);
	}
	sodium_memzero(key, sizeof key);
}

static void
check_open(const uint8_t *data, size_t size)
{
	struct sp_buf out;
	char err[SP_ERRLEN];

	sp_buf_init(&out, 0);
	err[0] = '\0';
	if (sp_link_open_message(test_key, data, size, &out, err, sizeof err) < 0) {
		FUZZ_CHECK(err[0] != '\0', "open failed without a reason");
		FUZZ_CHECK(out.len == 0, "open failed but left %zu bytes", out.len);
	} else {
		FUZZ_CHECK(size >= sp_link_message_sealed_size(out.len), "%zu bytes opened to %zu", size, out.len);
	}
	sp_buf_wipe(&out);
}

static void
check_roundtrip(const uint8_t *data, size_t size)
{
	struct sp_buf sealed, out;
	char err[SP_ERRLEN];

	sp_buf_init(&sealed, 0);
	sp_buf_init(&out, 0);
	FUZZ_CHECK(sp_link_seal_message(test_key, data, size, &sealed, err, sizeof err) == 0, "seal: %s", err);
	FUZZ_CHECK(sealed.len == sp_link_message_sealed_size(size), "sealed size %zu, announced %zu", sealed.len,
	           sp_link_message_sealed_size(size));
	FUZZ_CHECK(sp_link_open_message(test_key, sealed.data, sealed.len, &out, err, sizeof err) == 0,
	           "a freshly sealed message does not open: %s", err);
	FUZZ_CHECK(out.len == size && (size == 0 || memcmp(out.data, data, size) == 0), "open(seal(x)) != x");
	sp_buf_free(&sealed);
	sp_buf_wipe(&out);
}

/* FUZZ_MAKE_SEEDS=DIR: write the seed corpus (the test token, a blob wrapped
 * for it at the smallest Argon2id cost, a sealed message) and exit. */
static void
make_seeds(const char *dir)
{
	static const unsigned char salt[SP_LINK_SALTBYTES] = { 1, 2, 3 };
	static const unsigned char nonce[SP_LINK_NONCEBYTES] = { 4, 5, 6 };
	static const unsigned char header[24] = { 7, 8, 9 };
	static const char msg[] = "Subject: link\r\n\r\nhello\r\n";
	char tok[SP_LINK_TOKEN_STRLEN + 1], err[SP_ERRLEN];
	struct sp_buf b;

	sp_link_token_encode(&test_token, tok);
	fuzz_write_seed(dir, "token", tok, strlen(tok));
	sp_buf_init(&b, 0);
	FUZZ_SETUP(sp_link_wrap_key_det(test_key, test_password, &test_token, crypto_pwhash_argon2id_OPSLIMIT_MIN,
	                                crypto_pwhash_argon2id_MEMLIMIT_MIN / 1024, salt, nonce, &b, err,
	                                sizeof err) == 0, "wrap");
	fuzz_write_seed(dir, "wrapped-key", b.data, b.len);
	sp_buf_append(&b, test_password, strlen(test_password));
	fuzz_write_seed(dir, "wrapped-key-password", b.data, b.len);
	sp_buf_reset(&b);
	FUZZ_SETUP(sp_link_seal_message_det(test_key, header, msg, strlen(msg), &b, err, sizeof err) == 0, "seal");
	fuzz_write_seed(dir, "message", b.data, b.len);
	sp_buf_free(&b);
	exit(0);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	FUZZ_SETUP(sodium_init() >= 0, "sodium_init");
	if (getenv("FUZZ_MAKE_SEEDS"))
		make_seeds(getenv("FUZZ_MAKE_SEEDS"));
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_token(data, size);
	check_unwrap(data, size);
	check_open(data, size);
	if (size <= FUZZ_SEAL_MAX)
		check_roundtrip(data, size);
	return 0;
}

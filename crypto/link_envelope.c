/* link_envelope.c - the cryptography of link mode: message stream, key wrap,
 * tokens and generated passwords.  Byte layouts: docs/formats.md. */
#include "link_envelope.h"

#include "message.h"

#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "secretstream.h"

static const unsigned char msg_magic[8] = { 'S', 'P', 'L', 'N', 'K', 'M', 'S', 'G' };
static const unsigned char key_magic[8] = { 'S', 'P', 'L', 'N', 'K', 'K', 'E', 'Y' };
#define LINK_VERSION 1

/* Domain separation for the KEK: BLAKE2b-256 keyed with the Argon2id output,
 * over this label, the link id and the link secret. */
static const char kek_label[] = "sealpost link kek v1";

/* Offsets inside the v1 wrapped-key blob. */
#define WK_OPS 9
#define WK_MEM 13
#define WK_SALT 17
#define WK_NONCE (WK_SALT + SP_LINK_SALTBYTES)          /* 33 */
#define WK_CT (WK_NONCE + SP_LINK_NONCEBYTES)           /* 57 */
#define WK_CTBYTES (SP_LINK_KEYBYTES + crypto_aead_xchacha20poly1305_ietf_ABYTES)

_Static_assert(WK_CT + WK_CTBYTES == SP_LINK_WRAPPED_BYTES, "wrapped key layout");
_Static_assert(SP_LINK_NONCEBYTES == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, "nonce size");
_Static_assert(SP_LINK_SALTBYTES == crypto_pwhash_argon2id_SALTBYTES, "salt size");
_Static_assert(SP_LINK_KEYBYTES == SP_SECRETSTREAM_KEYBYTES, "key size");
_Static_assert(SP_LINK_TOKEN_STRLEN + 1 ==
               sodium_base64_ENCODED_LEN(SP_LINK_IDBYTES + SP_LINK_SECRETBYTES,
                                         sodium_base64_VARIANT_URLSAFE_NO_PADDING), "token length");

/* ---- tokens ---- */

void
sp_link_token_new(struct sp_link_token *t)
{
	randombytes_buf(t->id, sizeof t->id);
	randombytes_buf(t->secret, sizeof t->secret);
}

void
sp_link_token_encode(const struct sp_link_token *t, char out[SP_LINK_TOKEN_STRLEN + 1])
{
	unsigned char raw[SP_LINK_IDBYTES + SP_LINK_SECRETBYTES];

	memcpy(raw, t->id, SP_LINK_IDBYTES);
	memcpy(raw + SP_LINK_IDBYTES, t->secret, SP_LINK_SECRETBYTES);
	sodium_bin2base64(out, SP_LINK_TOKEN_STRLEN + 1, raw, sizeof raw,
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(raw, sizeof raw);
}

int
sp_link_token_decode(const char *s, size_t len, struct sp_link_token *t)
{
	unsigned char raw[SP_LINK_IDBYTES + SP_LINK_SECRETBYTES];
	const char *end = NULL;
	size_t rawlen = 0;
	int rv = -1;

	/* Strict: exactly 43 URL-safe characters, no padding, no whitespace, and
	 * the two unused low bits of the last character zero (libsodium rejects
	 * non-canonical trailing bits), so each token has one spelling. */
	if (s == NULL || len != SP_LINK_TOKEN_STRLEN || !sp_b64_alphabet_ok(s, len, true, false))
		goto out;
	if (sodium_base642bin(raw, sizeof raw, s, len, NULL, &rawlen, &end,
	                      sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
		goto out;
	if (rawlen != sizeof raw || end != s + len)
		goto out;
	memcpy(t->id, raw, SP_LINK_IDBYTES);
	memcpy(t->secret, raw + SP_LINK_IDBYTES, SP_LINK_SECRETBYTES);
	rv = 0;
out:
	sodium_memzero(raw, sizeof raw);
	return rv;
}

void
sp_link_id_hex(const unsigned char id[SP_LINK_IDBYTES], char out[SP_LINK_ID_HEXLEN + 1])
{
	sodium_bin2hex(out, SP_LINK_ID_HEXLEN + 1, id, SP_LINK_IDBYTES);
}

int
sp_link_id_from_hex(const char *hex, unsigned char id[SP_LINK_IDBYTES])
{
	const char *end = NULL;
	size_t n = 0;

	if (hex == NULL || strlen(hex) != SP_LINK_ID_HEXLEN)
		return -1;
	if (sodium_hex2bin(id, SP_LINK_IDBYTES, hex, SP_LINK_ID_HEXLEN, NULL, &n, &end) != 0 ||
	    n != SP_LINK_IDBYTES || end != hex + SP_LINK_ID_HEXLEN)
		return -1;
	return 0;
}

/* ---- message ---- */

void
sp_link_key_new(unsigned char key[SP_LINK_KEYBYTES])
{
	crypto_secretstream_xchacha20poly1305_keygen(key);
}

size_t
sp_link_message_sealed_size(size_t len)
{
	return SP_LINK_MESSAGE_PREFIXBYTES + sp_secretstream_size(len);
}

static int
seal_pieces(const unsigned char key[SP_LINK_KEYBYTES], const unsigned char *header,
            const struct sp_span *pieces, size_t n_pieces, size_t len, struct sp_buf *out,
            char *err, size_t errsz);

static int
seal_message(const unsigned char key[SP_LINK_KEYBYTES], const unsigned char *header,
             const void *msg, size_t len, struct sp_buf *out, char *err, size_t errsz)
{
	struct sp_span one = { msg, len };

	return seal_pieces(key, header, &one, 1, len, out, err, errsz);
}

int
sp_link_seal_blob(const unsigned char key[SP_LINK_KEYBYTES], const struct sp_blob *msg, struct sp_buf *out,
                  char *err, size_t errsz)
{
	if (msg->fd >= 0) {
		sp_seterr(err, errsz, "link message: sealing from a file is not supported");
		return -1;
	}
	return seal_pieces(key, NULL, msg->spans, msg->n_spans, msg->len, out, err, errsz);
}

static int
seal_pieces(const unsigned char key[SP_LINK_KEYBYTES], const unsigned char *header,
            const struct sp_span *pieces, size_t n_pieces, size_t len, struct sp_buf *out,
            char *err, size_t errsz)
{
	size_t i;
	unsigned char prefix[SP_LINK_MESSAGE_PREFIXBYTES];
	struct sp_secretstream_push *s = NULL;
	size_t start = out->len;
	int rv = -1;

	memcpy(prefix, msg_magic, sizeof msg_magic);
	prefix[8] = LINK_VERSION;
	if (sp_buf_reserve(out, sp_link_message_sealed_size(len)) < 0) {
		sp_seterr(err, errsz, "link message: sealed message too large");
		return -1;
	}
	if (sp_buf_append(out, prefix, sizeof prefix) < 0) {
		sp_seterr(err, errsz, "link message: out of memory");
		goto out;
	}
	if (header != NULL)
		s = sp_secretstream_push_new_det(key, header, prefix, sizeof prefix, sp_write_buf, out, err, errsz);
	else
		s = sp_secretstream_push_new(key, prefix, sizeof prefix, sp_write_buf, out, err, errsz);
	if (s == NULL)
		goto out;
	for (i = 0; i < n_pieces; i++)
		if (pieces[i].n && sp_secretstream_push_update(s, pieces[i].p, pieces[i].n, err, errsz) < 0)
			goto out;
	if (sp_secretstream_push_finish(s, err, errsz) < 0)
		goto out;
	rv = 0;
out:
	sp_secretstream_push_free(s);
	if (rv < 0 && out->data != NULL) {
		out->len = start;
		out->data[start] = '\0';
	}
	return rv;
}

int
sp_link_seal_message(const unsigned char key[SP_LINK_KEYBYTES], const void *msg, size_t len,
                     struct sp_buf *out, char *err, size_t errsz)
{
	return seal_message(key, NULL, msg, len, out, err, errsz);
}

int
sp_link_seal_message_det(const unsigned char key[SP_LINK_KEYBYTES], const unsigned char header[24],
                         const void *msg, size_t len, struct sp_buf *out, char *err, size_t errsz)
{
	return seal_message(key, header, msg, len, out, err, errsz);
}

/* Plaintext size of a well-formed stream of n bytes (an upper bound for any
 * other: each chunk of up to CT_CHUNK bytes carries 17 bytes of overhead). */
static size_t
plaintext_size(size_t n)
{
	size_t full, rem;

	if (n < SP_SECRETSTREAM_HEADERBYTES)
		return 0;
	n -= SP_SECRETSTREAM_HEADERBYTES;
	full = n / SP_SECRETSTREAM_CT_CHUNK;
	rem = n % SP_SECRETSTREAM_CT_CHUNK;
	return full * SP_SECRETSTREAM_CHUNK + (rem > SP_SECRETSTREAM_ABYTES ? rem - SP_SECRETSTREAM_ABYTES : 0);
}

int
sp_link_open_message(const unsigned char key[SP_LINK_KEYBYTES], const void *blob, size_t len,
                     struct sp_buf *out, char *err, size_t errsz)
{
	const unsigned char *b = blob;
	struct sp_memreader mr;
	size_t start = out->len;
	char why[SP_ERRLEN];
	int rv = -1;

	if (len < sizeof msg_magic || memcmp(b, msg_magic, sizeof msg_magic) != 0) {
		sp_seterr(err, errsz, "link message: not a sealpost link message (bad magic)");
		return -1;
	}
	if (len < SP_LINK_MESSAGE_PREFIXBYTES) {
		sp_seterr(err, errsz, "link message: truncated before the version byte");
		return -1;
	}
	if (b[8] != LINK_VERSION) {
		sp_seterr(err, errsz, "link message: unsupported version %u (this sealpost reads version %u)",
		          (unsigned)b[8], (unsigned)LINK_VERSION);
		return -1;
	}
	/* Reserve room for the whole plaintext up front so the buffer never
	 * moves: realloc would leave plaintext behind in freed memory. */
	if (sp_buf_reserve(out, plaintext_size(len - SP_LINK_MESSAGE_PREFIXBYTES)) < 0) {
		sp_seterr(err, errsz, "link message: message too large for the output buffer");
		return -1;
	}
	mr.p = b + SP_LINK_MESSAGE_PREFIXBYTES;
	mr.len = len - SP_LINK_MESSAGE_PREFIXBYTES;
	mr.off = 0;
	if (sp_secretstream_pull(key, b, SP_LINK_MESSAGE_PREFIXBYTES, sp_read_mem, &mr,
	                         sp_write_buf, out, why, sizeof why) < 0) {
		sp_seterr(err, errsz, "link message: %s", why);
		goto out;
	}
	rv = 0;
out:
	if (rv < 0) {
		sodium_memzero(out->data + start, out->cap - start);
		out->len = start;
	}
	return rv;
}

/* ---- key wrap ---- */

/* kek = BLAKE2b-256(key = Argon2id(password, salt, ops, mem),
 *                   "sealpost link kek v1" || link id || link secret) */
static int
derive_kek(const char *password, const struct sp_link_token *t, uint32_t ops, uint32_t mem_kib,
           const unsigned char salt[SP_LINK_SALTBYTES], unsigned char kek[32], char *err, size_t errsz)
{
	unsigned char pwkey[32];
	crypto_generichash_state st;
	int rv = -1;

	if (crypto_pwhash(pwkey, sizeof pwkey, password, strlen(password), salt, ops,
	                  (size_t)mem_kib * 1024U, crypto_pwhash_ALG_ARGON2ID13) != 0) {
		sp_seterr(err, errsz, "Argon2id failed (out of memory?)");
		goto out;
	}
	crypto_generichash_init(&st, pwkey, sizeof pwkey, 32);
	crypto_generichash_update(&st, (const unsigned char *)kek_label, sizeof kek_label - 1);
	crypto_generichash_update(&st, t->id, SP_LINK_IDBYTES);
	crypto_generichash_update(&st, t->secret, SP_LINK_SECRETBYTES);
	crypto_generichash_final(&st, kek, 32);
	rv = 0;
out:
	sodium_memzero(pwkey, sizeof pwkey);
	sodium_memzero(&st, sizeof st);
	return rv;
}

/* Associated data of the key wrap: the blob's header (magic, version, KDF
 * parameters, salt, nonce) followed by the link id. */
static void
wrap_ad(const unsigned char *hdr, const struct sp_link_token *t, unsigned char ad[WK_CT + SP_LINK_IDBYTES])
{
	memcpy(ad, hdr, WK_CT);
	memcpy(ad + WK_CT, t->id, SP_LINK_IDBYTES);
}

static int
check_password(const char *password, char *err, size_t errsz)
{
	size_t n = password ? strlen(password) : 0;

	if (n == 0) {
		sp_seterr(err, errsz, "empty password");
		return -1;
	}
	if (n > SP_LINK_PASSWORD_INPUT_MAX) {
		sp_seterr(err, errsz, "password longer than %d bytes", SP_LINK_PASSWORD_INPUT_MAX);
		return -1;
	}
	return 0;
}

int
sp_link_wrap_key_det(const unsigned char key[SP_LINK_KEYBYTES], const char *password,
                     const struct sp_link_token *t, uint32_t opslimit, uint32_t memlimit_kib,
                     const unsigned char salt[SP_LINK_SALTBYTES], const unsigned char nonce[SP_LINK_NONCEBYTES],
                     struct sp_buf *wrapped, char *err, size_t errsz)
{
	unsigned char blob[SP_LINK_WRAPPED_BYTES];
	unsigned char ad[WK_CT + SP_LINK_IDBYTES];
	unsigned char kek[32];
	int rv = -1;

	if (check_password(password, err, errsz) < 0)
		return -1;
	if (opslimit < crypto_pwhash_argon2id_OPSLIMIT_MIN || opslimit > SP_LINK_ARGON2_OPSLIMIT_MAX ||
	    (size_t)memlimit_kib * 1024U < crypto_pwhash_argon2id_MEMLIMIT_MIN ||
	    memlimit_kib > SP_LINK_ARGON2_MEMLIMIT_KIB_MAX) {
		sp_seterr(err, errsz, "Argon2id parameters out of range (t=%u, m=%u KiB)", opslimit, memlimit_kib);
		return -1;
	}
	memcpy(blob, key_magic, sizeof key_magic);
	blob[8] = LINK_VERSION;
	sp_put_be32(blob + WK_OPS, opslimit);
	sp_put_be32(blob + WK_MEM, memlimit_kib);
	memcpy(blob + WK_SALT, salt, SP_LINK_SALTBYTES);
	memcpy(blob + WK_NONCE, nonce, SP_LINK_NONCEBYTES);
	if (derive_kek(password, t, opslimit, memlimit_kib, salt, kek, err, errsz) < 0)
		goto out;
	wrap_ad(blob, t, ad);
	crypto_aead_xchacha20poly1305_ietf_encrypt(blob + WK_CT, NULL, key, SP_LINK_KEYBYTES, ad, sizeof ad,
	                                           NULL, nonce, kek);
	if (sp_buf_append(wrapped, blob, sizeof blob) < 0) {
		sp_seterr(err, errsz, "out of memory");
		goto out;
	}
	rv = 0;
out:
	sodium_memzero(kek, sizeof kek);
	return rv;
}

int
sp_link_wrap_key(const unsigned char key[SP_LINK_KEYBYTES], const char *password,
                 const struct sp_link_token *t, struct sp_buf *wrapped, char *err, size_t errsz)
{
	unsigned char salt[SP_LINK_SALTBYTES], nonce[SP_LINK_NONCEBYTES];

	randombytes_buf(salt, sizeof salt);
	randombytes_buf(nonce, sizeof nonce);
	return sp_link_wrap_key_det(key, password, t, SP_LINK_ARGON2_OPSLIMIT, SP_LINK_ARGON2_MEMLIMIT_KIB,
	                            salt, nonce, wrapped, err, errsz);
}

int
sp_link_unwrap_key(const void *wrapped, size_t len, const char *password,
                   const struct sp_link_token *t, unsigned char key[SP_LINK_KEYBYTES],
                   char *err, size_t errsz)
{
	const unsigned char *b = wrapped;
	unsigned char ad[WK_CT + SP_LINK_IDBYTES];
	unsigned char kek[32];
	unsigned char out[SP_LINK_KEYBYTES];
	uint32_t ops, mem_kib;
	int rv = -1;

	if (len < sizeof key_magic || memcmp(b, key_magic, sizeof key_magic) != 0) {
		sp_seterr(err, errsz, "link key: not a sealpost wrapped key (bad magic)");
		return -1;
	}
	if (len < 9) {
		sp_seterr(err, errsz, "link key: truncated before the version byte");
		return -1;
	}
	if (b[8] != LINK_VERSION) {
		sp_seterr(err, errsz, "link key: unsupported version %u (this sealpost reads version %u)",
		          (unsigned)b[8], (unsigned)LINK_VERSION);
		return -1;
	}
	if (len != SP_LINK_WRAPPED_BYTES) {
		sp_seterr(err, errsz, "link key: %zu bytes, a version 1 wrapped key has %d", len,
		          SP_LINK_WRAPPED_BYTES);
		return -1;
	}
	ops = sp_get_be32(b + WK_OPS);
	mem_kib = sp_get_be32(b + WK_MEM);
	/* Bound what a hostile or corrupted blob can make us spend. */
	if (ops < crypto_pwhash_argon2id_OPSLIMIT_MIN || ops > SP_LINK_ARGON2_OPSLIMIT_MAX) {
		sp_seterr(err, errsz, "link key: Argon2id passes %u outside 1..%u", ops, SP_LINK_ARGON2_OPSLIMIT_MAX);
		return -1;
	}
	if ((size_t)mem_kib * 1024U < crypto_pwhash_argon2id_MEMLIMIT_MIN ||
	    mem_kib > SP_LINK_ARGON2_MEMLIMIT_KIB_MAX) {
		sp_seterr(err, errsz, "link key: Argon2id memory %u KiB outside %u..%u KiB", mem_kib,
		          (unsigned)(crypto_pwhash_argon2id_MEMLIMIT_MIN / 1024U), SP_LINK_ARGON2_MEMLIMIT_KIB_MAX);
		return -1;
	}
	if (password == NULL || *password == '\0' || strlen(password) > SP_LINK_PASSWORD_INPUT_MAX) {
		sp_seterr(err, errsz, "wrong password");
		return -1;
	}
	if (derive_kek(password, t, ops, mem_kib, b + WK_SALT, kek, err, errsz) < 0)
		goto out;
	wrap_ad(b, t, ad);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, NULL, NULL, b + WK_CT, WK_CTBYTES, ad, sizeof ad,
	                                               b + WK_NONCE, kek) != 0) {
		/* Wrong password, wrong link secret, wrong link id, or a modified
		 * blob: indistinguishable on purpose. */
		sp_seterr(err, errsz, "wrong password");
		goto out;
	}
	memcpy(key, out, SP_LINK_KEYBYTES);
	rv = 0;
out:
	sodium_memzero(kek, sizeof kek);
	sodium_memzero(out, sizeof out);
	return rv;
}

/* ---- generated passwords ---- */

/* 15 consonants and 5 vowels.  Left out: c (k or s?), q, x (spelled out),
 * j, w, y (said differently across languages).  Lowercase only, so no
 * shift key and no l/I or 0/O confusion. */
static const char pw_consonants[] = "bdfghklmnprstvz";
static const char pw_vowels[] = "aeiou";

void
sp_link_password_generate(char out[SP_LINK_PASSWORD_MAX])
{
	static const char shape[] = "cvcvc";
	size_t o = 0;
	int w, i;

	_Static_assert(SP_LINK_PASSWORD_WORDS * (sizeof shape) <= SP_LINK_PASSWORD_MAX, "password length");
	for (w = 0; w < SP_LINK_PASSWORD_WORDS; w++) {
		if (w > 0)
			out[o++] = '-';
		for (i = 0; shape[i] != '\0'; i++) {
			if (shape[i] == 'c')
				out[o++] = pw_consonants[randombytes_uniform(sizeof pw_consonants - 1)];
			else
				out[o++] = pw_vowels[randombytes_uniform(sizeof pw_vowels - 1)];
		}
	}
	out[o] = '\0';
}

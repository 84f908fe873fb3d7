/* link_v2.c - link envelope version 2 (docs/formats.md, "Link envelope (v2)"). */
#include "link_v2.h"

#include <string.h>

#include <sodium.h>

#include "util.h"

static const unsigned char key_magic[8] = { 'S', 'P', 'L', 'N', 'K', 'K', 'E', 'Y' };

/* Domain-separation labels: the ASCII bytes, no terminator. */
static const char l_input[] = "sealpost link v2 oprf input";
static const char l_root[] = "sealpost link v2 root";
static const char l_kwk[] = "sealpost link v2 kwk";
static const char l_auth[] = "sealpost link v2 auth";
static const char l_unlock[] = "sealpost link v2 unlock";

/* Offsets inside the record. */
#define R_OPS 9
#define R_MEM 13
#define R_SALT 17
#define R_NONCE (R_SALT + SP_LINK_SALTBYTES)                 /* 33 */
#define R_CT (R_NONCE + SP_LINK_NONCEBYTES)                  /* 57 */
#define R_CTBYTES (SP_LINK_KEYBYTES + crypto_aead_xchacha20poly1305_ietf_ABYTES)
#define R_OPRF (R_CT + R_CTBYTES)                            /* 105 */
#define R_AUTH (R_OPRF + SP_OPRF_SCALARBYTES)                /* 137 */
#define AD_BYTES (R_CT + SP_LINK_IDBYTES)                    /* 73 */
#define PWBYTES 32

_Static_assert(R_AUTH + crypto_sign_PUBLICKEYBYTES == SP_LINK2_RECORD_BYTES, "record layout");
_Static_assert(R_NONCE == SP_LINK2_PARAMS_BYTES, "params slice");
_Static_assert(R_OPRF - R_NONCE == SP_LINK2_SEALED_KEY_BYTES, "sealed key slice");
_Static_assert(sizeof l_input - 1 + SP_LINK_IDBYTES + PWBYTES == SP_LINK2_INPUT_BYTES, "OPRF input");
_Static_assert(SP_LINK2_INPUT_BYTES <= SP_OPRF_INPUT_MAX, "OPRF input bound");
_Static_assert(crypto_sign_SEEDBYTES == 32 && crypto_sign_BYTES == SP_LINK2_PROOF_BYTES, "Ed25519 sizes");
_Static_assert(SP_OPRF_OUTPUTBYTES <= crypto_generichash_KEYBYTES_MAX, "y keys BLAKE2b");
_Static_assert(SP_LINK_IDBYTES == 16 && SP_LINK_SECRETBYTES == 16, "16-byte link id and secret");
_Static_assert(SP_LINK2_B64_STRLEN + 1 == sodium_base64_ENCODED_LEN(16, sodium_base64_VARIANT_URLSAFE_NO_PADDING),
               "base64url length");

/* ---- the link ---- */

void
sp_link2_b64_encode(const unsigned char in[16], char out[SP_LINK2_B64_STRLEN + 1])
{
	sodium_bin2base64(out, SP_LINK2_B64_STRLEN + 1, in, 16, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

int
sp_link2_b64_decode(const char *s, size_t len, unsigned char out[16])
{
	unsigned char raw[16];
	const char *end = NULL;
	size_t n = 0;
	int rv = -1;

	/* As for v1 tokens: one spelling per value (libsodium refuses non-zero
	 * unused bits in the last character). */
	if (s == NULL || len != SP_LINK2_B64_STRLEN || !sp_b64_alphabet_ok(s, len, true, false))
		goto out;
	if (sodium_base642bin(raw, sizeof raw, s, len, NULL, &n, &end, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    n != sizeof raw || end != s + len)
		goto out;
	memcpy(out, raw, sizeof raw);
	rv = 0;
out:
	sodium_memzero(raw, sizeof raw);
	return rv;
}

/* ---- derivation ---- */

void
sp_link2_oprf_input(const unsigned char link_id[SP_LINK_IDBYTES], const unsigned char pw[32],
                    unsigned char input[SP_LINK2_INPUT_BYTES])
{
	memcpy(input, l_input, sizeof l_input - 1);
	memcpy(input + sizeof l_input - 1, link_id, SP_LINK_IDBYTES);
	memcpy(input + sizeof l_input - 1 + SP_LINK_IDBYTES, pw, PWBYTES);
}

void
sp_link2_derive(const unsigned char y[SP_OPRF_OUTPUTBYTES], const struct sp_link_token *t,
                unsigned char root[32], unsigned char kwk[32], unsigned char auth_seed[32])
{
	crypto_generichash_state st;

	/* root = BLAKE2b-256(key = y, L_root || link_id || link_secret) */
	crypto_generichash_init(&st, y, SP_OPRF_OUTPUTBYTES, 32);
	crypto_generichash_update(&st, (const unsigned char *)l_root, sizeof l_root - 1);
	crypto_generichash_update(&st, t->id, SP_LINK_IDBYTES);
	crypto_generichash_update(&st, t->secret, SP_LINK_SECRETBYTES);
	crypto_generichash_final(&st, root, 32);
	/* kwk = BLAKE2b-256(key = root, L_kwk); seed = BLAKE2b-256(key = root, L_auth) */
	crypto_generichash(kwk, 32, (const unsigned char *)l_kwk, sizeof l_kwk - 1, root, 32);
	crypto_generichash(auth_seed, 32, (const unsigned char *)l_auth, sizeof l_auth - 1, root, 32);
	sodium_memzero(&st, sizeof st);
}

/* The Argon2id bounds of v1 (link_envelope.h), for writers and readers alike. */
static int
kdf_params_ok(uint32_t ops, uint32_t mem_kib, char *err, size_t errsz)
{
	if (ops < crypto_pwhash_argon2id_OPSLIMIT_MIN || ops > SP_LINK_ARGON2_OPSLIMIT_MAX) {
		sp_seterr(err, errsz, "link v2: Argon2id passes %u outside 1..%u", ops, SP_LINK_ARGON2_OPSLIMIT_MAX);
		return 0;
	}
	if ((size_t)mem_kib * 1024U < crypto_pwhash_argon2id_MEMLIMIT_MIN || mem_kib > SP_LINK_ARGON2_MEMLIMIT_KIB_MAX) {
		sp_seterr(err, errsz, "link v2: Argon2id memory %u KiB outside %u..%u KiB", mem_kib,
		          (unsigned)(crypto_pwhash_argon2id_MEMLIMIT_MIN / 1024U), SP_LINK_ARGON2_MEMLIMIT_KIB_MAX);
		return 0;
	}
	return 1;
}

static int
password_ok(const char *password, char *err, size_t errsz)
{
	size_t n = password ? strlen(password) : 0;

	if (n == 0 || n > SP_LINK_PASSWORD_INPUT_MAX) {
		sp_seterr(err, errsz, "link v2: the password must be 1..%d bytes", SP_LINK_PASSWORD_INPUT_MAX);
		return 0;
	}
	return 1;
}

/* Magic, version, Argon2id bounds of a params slice (or a record's start). */
static int
params_ok(const unsigned char *p, size_t len, char *err, size_t errsz)
{
	if (len < sizeof key_magic || memcmp(p, key_magic, sizeof key_magic) != 0) {
		sp_seterr(err, errsz, "link v2: not a sealpost link key (bad magic)");
		return 0;
	}
	if (len < SP_LINK2_PARAMS_BYTES) {
		sp_seterr(err, errsz, "link v2: truncated parameters");
		return 0;
	}
	if (p[8] != SP_LINK2_VERSION) {
		sp_seterr(err, errsz, "link v2: version %u, not %u", (unsigned)p[8], (unsigned)SP_LINK2_VERSION);
		return 0;
	}
	return kdf_params_ok(sp_get_be32(p + R_OPS), sp_get_be32(p + R_MEM), err, errsz);
}

/* pw = Argon2id(password, salt, ops, mem) with the parameters of params. */
static int
password_hash(const unsigned char *params, const char *password, unsigned char pw[PWBYTES], char *err,
              size_t errsz)
{
	if (crypto_pwhash(pw, PWBYTES, password, strlen(password), params + R_SALT, sp_get_be32(params + R_OPS),
	                  (size_t)sp_get_be32(params + R_MEM) * 1024U, crypto_pwhash_ALG_ARGON2ID13) != 0) {
		sp_seterr(err, errsz, "link v2: Argon2id failed (out of memory?)");
		return -1;
	}
	return 0;
}

/* ---- proxy ---- */

int
sp_link2_record_new_det(const unsigned char key[SP_LINK_KEYBYTES], const char *password,
                        const struct sp_link_token *t, uint32_t opslimit, uint32_t memlimit_kib,
                        const unsigned char salt[SP_LINK_SALTBYTES], const unsigned char nonce[SP_LINK_NONCEBYTES],
                        const unsigned char oprf_key[SP_OPRF_SCALARBYTES],
                        unsigned char record[SP_LINK2_RECORD_BYTES], char *err, size_t errsz)
{
	unsigned char rec[SP_LINK2_RECORD_BYTES];
	unsigned char pw[PWBYTES], input[SP_LINK2_INPUT_BYTES], y[SP_OPRF_OUTPUTBYTES];
	unsigned char root[32], kwk[32], seed[32], auth_sk[crypto_sign_SECRETKEYBYTES];
	unsigned char ad[AD_BYTES];
	int rv = -1;

	if (!password_ok(password, err, errsz) || !kdf_params_ok(opslimit, memlimit_kib, err, errsz))
		return -1;
	if (!sp_oprf_key_valid(oprf_key)) {
		sp_seterr(err, errsz, "link v2: the OPRF key is not a valid scalar");
		return -1;
	}
	memcpy(rec, key_magic, sizeof key_magic);
	rec[8] = SP_LINK2_VERSION;
	sp_put_be32(rec + R_OPS, opslimit);
	sp_put_be32(rec + R_MEM, memlimit_kib);
	memcpy(rec + R_SALT, salt, SP_LINK_SALTBYTES);
	memcpy(rec + R_NONCE, nonce, SP_LINK_NONCEBYTES);
	memcpy(rec + R_OPRF, oprf_key, SP_OPRF_SCALARBYTES);

	if (password_hash(rec, password, pw, err, errsz) < 0)
		goto out;
	sp_link2_oprf_input(t->id, pw, input);
	/* The proxy holds k: the OPRF output without the blinding round trip. */
	if (sp_oprf_evaluate(oprf_key, input, sizeof input, y, err, errsz) < 0)
		goto out;
	sp_link2_derive(y, t, root, kwk, seed);
	crypto_sign_seed_keypair(rec + R_AUTH, auth_sk, seed);
	memcpy(ad, rec, R_CT);
	memcpy(ad + R_CT, t->id, SP_LINK_IDBYTES);
	crypto_aead_xchacha20poly1305_ietf_encrypt(rec + R_CT, NULL, key, SP_LINK_KEYBYTES, ad, sizeof ad, NULL,
	                                           nonce, kwk);
	memcpy(record, rec, sizeof rec);
	rv = 0;
out:
	sodium_memzero(rec, sizeof rec);
	sodium_memzero(pw, sizeof pw);
	sodium_memzero(input, sizeof input);
	sodium_memzero(y, sizeof y);
	sodium_memzero(root, sizeof root);
	sodium_memzero(kwk, sizeof kwk);
	sodium_memzero(seed, sizeof seed);
	sodium_memzero(auth_sk, sizeof auth_sk);
	return rv;
}

int
sp_link2_record_new(const unsigned char key[SP_LINK_KEYBYTES], const char *password,
                    const struct sp_link_token *t, unsigned char record[SP_LINK2_RECORD_BYTES],
                    char *err, size_t errsz)
{
	unsigned char salt[SP_LINK_SALTBYTES], nonce[SP_LINK_NONCEBYTES], k[SP_OPRF_SCALARBYTES];
	int rv;

	randombytes_buf(salt, sizeof salt);
	randombytes_buf(nonce, sizeof nonce);
	sp_oprf_keygen(k);
	rv = sp_link2_record_new_det(key, password, t, SP_LINK_ARGON2_OPSLIMIT, SP_LINK_ARGON2_MEMLIMIT_KIB, salt,
	                             nonce, k, record, err, errsz);
	sodium_memzero(k, sizeof k);
	return rv;
}

/* ---- viewer ---- */

int
sp_link2_record_check(const void *record, size_t len, char *err, size_t errsz)
{
	const unsigned char *r = record;

	if (r == NULL || !params_ok(r, len, err, errsz))
		return -1;
	if (len != SP_LINK2_RECORD_BYTES) {
		sp_seterr(err, errsz, "link v2: record of %zu bytes, not %d", len, SP_LINK2_RECORD_BYTES);
		return -1;
	}
	if (!sp_oprf_key_valid(r + R_OPRF)) {
		sp_seterr(err, errsz, "link v2: the record's OPRF key is not a valid scalar");
		return -1;
	}
	/* An Ed25519 public key made from a seed is the canonical encoding of a
	 * point of the prime-order subgroup: refuse anything else (small order,
	 * non-canonical, off the curve). */
	if (!crypto_core_ed25519_is_valid_point(r + R_AUTH)) {
		sp_seterr(err, errsz, "link v2: the record's auth key is not a valid public key");
		return -1;
	}
	return 0;
}

void
sp_link2_params(const unsigned char record[SP_LINK2_RECORD_BYTES], unsigned char params[SP_LINK2_PARAMS_BYTES])
{
	memcpy(params, record, SP_LINK2_PARAMS_BYTES);
}

void
sp_link2_sealed_key(const unsigned char record[SP_LINK2_RECORD_BYTES],
                    unsigned char sealed[SP_LINK2_SEALED_KEY_BYTES])
{
	memcpy(sealed, record + R_NONCE, SP_LINK2_SEALED_KEY_BYTES);
}

void
sp_link2_attempt_new(unsigned char attempt[SP_LINK2_ATTEMPT_BYTES])
{
	randombytes_buf(attempt, SP_LINK2_ATTEMPT_BYTES);
}

int
sp_link2_evaluate(const unsigned char record[SP_LINK2_RECORD_BYTES],
                  const unsigned char blinded[SP_OPRF_ELEMENTBYTES],
                  unsigned char evaluated[SP_OPRF_ELEMENTBYTES], char *err, size_t errsz)
{
	return sp_oprf_blind_evaluate(record + R_OPRF, blinded, evaluated, err, errsz);
}

/* L_unlock || link_id || attempt_id: what the proof signs. */
static void
unlock_message(const unsigned char link_id[SP_LINK_IDBYTES], const unsigned char attempt[SP_LINK2_ATTEMPT_BYTES],
               unsigned char m[sizeof l_unlock - 1 + SP_LINK_IDBYTES + SP_LINK2_ATTEMPT_BYTES])
{
	memcpy(m, l_unlock, sizeof l_unlock - 1);
	memcpy(m + sizeof l_unlock - 1, link_id, SP_LINK_IDBYTES);
	memcpy(m + sizeof l_unlock - 1 + SP_LINK_IDBYTES, attempt, SP_LINK2_ATTEMPT_BYTES);
}

int
sp_link2_verify_unlock(const unsigned char record[SP_LINK2_RECORD_BYTES],
                       const unsigned char link_id[SP_LINK_IDBYTES],
                       const unsigned char attempt[SP_LINK2_ATTEMPT_BYTES],
                       const unsigned char proof[SP_LINK2_PROOF_BYTES])
{
	unsigned char m[sizeof l_unlock - 1 + SP_LINK_IDBYTES + SP_LINK2_ATTEMPT_BYTES];

	unlock_message(link_id, attempt, m);
	return crypto_sign_verify_detached(proof, m, sizeof m, record + R_AUTH) == 0 ? 0 : -1;
}

/* ---- browser side, in C ---- */

int
sp_link2_client_start_det(struct sp_link2_client *c, const void *params, size_t params_len,
                          const char *password, const struct sp_link_token *t,
                          const unsigned char blind[SP_OPRF_SCALARBYTES],
                          unsigned char blinded[SP_OPRF_ELEMENTBYTES], char *err, size_t errsz)
{
	unsigned char pw[PWBYTES];
	int rv = -1;

	memset(c, 0, sizeof *c);
	if (params == NULL || params_len != SP_LINK2_PARAMS_BYTES) {
		sp_seterr(err, errsz, "link v2: parameters of %zu bytes, not %d", params_len, SP_LINK2_PARAMS_BYTES);
		return -1;
	}
	if (!params_ok(params, params_len, err, errsz) || !password_ok(password, err, errsz))
		return -1;
	memcpy(c->params, params, SP_LINK2_PARAMS_BYTES);
	c->token = *t;
	if (password_hash(c->params, password, pw, err, errsz) < 0)
		goto out;
	sp_link2_oprf_input(t->id, pw, c->input);
	if (blind != NULL) {
		memcpy(c->blind, blind, sizeof c->blind);
		if (sp_oprf_blind_det(c->input, sizeof c->input, c->blind, blinded, err, errsz) < 0)
			goto out;
	} else if (sp_oprf_blind(c->input, sizeof c->input, c->blind, blinded, err, errsz) < 0) {
		goto out;
	}
	rv = 0;
out:
	sodium_memzero(pw, sizeof pw);
	if (rv < 0)
		sp_link2_client_wipe(c);
	return rv;
}

int
sp_link2_client_start(struct sp_link2_client *c, const void *params, size_t params_len,
                      const char *password, const struct sp_link_token *t,
                      unsigned char blinded[SP_OPRF_ELEMENTBYTES], char *err, size_t errsz)
{
	return sp_link2_client_start_det(c, params, params_len, password, t, NULL, blinded, err, errsz);
}

int
sp_link2_client_finish(struct sp_link2_client *c, const unsigned char evaluated[SP_OPRF_ELEMENTBYTES],
                       const unsigned char attempt[SP_LINK2_ATTEMPT_BYTES],
                       unsigned char proof[SP_LINK2_PROOF_BYTES], unsigned char kwk[32], char *err, size_t errsz)
{
	unsigned char y[SP_OPRF_OUTPUTBYTES], root[32], seed[32];
	unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
	unsigned char m[sizeof l_unlock - 1 + SP_LINK_IDBYTES + SP_LINK2_ATTEMPT_BYTES];
	int rv = -1;

	if (sp_oprf_finalize(c->input, sizeof c->input, c->blind, evaluated, y, err, errsz) < 0)
		goto out;
	sp_link2_derive(y, &c->token, root, kwk, seed);
	crypto_sign_seed_keypair(pk, sk, seed);
	unlock_message(c->token.id, attempt, m);
	crypto_sign_detached(proof, NULL, m, sizeof m, sk);
	rv = 0;
out:
	sodium_memzero(y, sizeof y);
	sodium_memzero(root, sizeof root);
	sodium_memzero(seed, sizeof seed);
	sodium_memzero(sk, sizeof sk);
	/* One blind per attempt: a new attempt starts again. */
	sodium_memzero(c->blind, sizeof c->blind);
	return rv;
}

int
sp_link2_client_open_key(const struct sp_link2_client *c, const unsigned char kwk[32], const void *sealed,
                         size_t sealed_len, unsigned char key[SP_LINK_KEYBYTES], char *err, size_t errsz)
{
	const unsigned char *s = sealed;
	unsigned char ad[AD_BYTES], out[SP_LINK_KEYBYTES];
	int rv = -1;

	if (s == NULL || sealed_len != SP_LINK2_SEALED_KEY_BYTES) {
		sp_seterr(err, errsz, "link v2: sealed key of %zu bytes, not %d", sealed_len, SP_LINK2_SEALED_KEY_BYTES);
		return -1;
	}
	/* ad = params || nonce || link_id = record bytes 0..56 || link_id */
	memcpy(ad, c->params, SP_LINK2_PARAMS_BYTES);
	memcpy(ad + R_NONCE, s, SP_LINK_NONCEBYTES);
	memcpy(ad + R_CT, c->token.id, SP_LINK_IDBYTES);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, NULL, NULL, s + SP_LINK_NONCEBYTES, R_CTBYTES, ad,
	                                               sizeof ad, s, kwk) != 0) {
		sp_seterr(err, errsz, "wrong password");
		goto out;
	}
	memcpy(key, out, SP_LINK_KEYBYTES);
	rv = 0;
out:
	sodium_memzero(out, sizeof out);
	return rv;
}

void
sp_link2_client_wipe(struct sp_link2_client *c)
{
	sodium_memzero(c, sizeof *c);
}

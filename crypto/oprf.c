/* oprf.c - RFC 9497 OPRF (mode 0x00, ristretto255-SHA512) on libsodium. */
#include "oprf.h"

#include <string.h>

#include <sodium.h>

#include "util.h"

_Static_assert(SP_OPRF_SCALARBYTES == crypto_core_ristretto255_SCALARBYTES, "scalar size");
_Static_assert(SP_OPRF_ELEMENTBYTES == crypto_core_ristretto255_BYTES, "element size");
_Static_assert(SP_OPRF_OUTPUTBYTES == crypto_hash_sha512_BYTES, "output size");
_Static_assert(crypto_core_ristretto255_HASHBYTES == 64, "from_hash input size");
_Static_assert(crypto_core_ristretto255_NONREDUCEDSCALARBYTES == 64, "reduce input size");
_Static_assert(SP_OPRF_INPUT_MAX <= 0xffff && SP_OPRF_INFO_MAX <= 0xffff, "2-byte length prefixes");
_Static_assert(SP_OPRF_SEEDBYTES + 2 + SP_OPRF_INFO_MAX + 1 <= SP_XMD_MSG_MAX, "DeriveKeyPair input");
_Static_assert(SP_OPRF_INPUT_MAX <= SP_XMD_MSG_MAX, "HashToGroup input");

/* contextString = "OPRFV1-" || I2OSP(mode = 0x00, 1) || "-" || "ristretto255-SHA512"
 * (RFC 9497, section 3.1).  The "\x00" escape ends at the '-'. */
#define CONTEXT "OPRFV1-\x00-ristretto255-SHA512"
static const char dst_group[] = "HashToGroup-" CONTEXT;
static const char dst_scalar[] = "HashToScalar-" CONTEXT;
static const char dst_derive[] = "DeriveKeyPair" CONTEXT;
static const char finalize_label[] = "Finalize";

_Static_assert(sizeof CONTEXT - 1 == 28, "context string length");

/* SHA-512 block size: the Z_pad of expand_message_xmd. */
#define SHA512_BLOCKBYTES 128

/* ---- expand_message_xmd (RFC 9380, 5.3.1) ---- */

int
sp_expand_message_xmd_sha512(const void *msg, size_t len, const void *dst, size_t dstlen,
                             unsigned char *out, size_t outlen)
{
	static const unsigned char z_pad[SHA512_BLOCKBYTES];
	crypto_hash_sha512_state st;
	unsigned char b0[crypto_hash_sha512_BYTES], bi[crypto_hash_sha512_BYTES], x[crypto_hash_sha512_BYTES];
	unsigned char lib[2], zero = 0, dlen, ctr;
	size_t ell, i, j, off = 0;

	if (dst == NULL || dstlen == 0 || dstlen > SP_XMD_DST_MAX || outlen == 0 || outlen > SP_XMD_OUT_MAX ||
	    len > SP_XMD_MSG_MAX || (msg == NULL && len != 0))
		return -1;
	ell = (outlen + crypto_hash_sha512_BYTES - 1) / crypto_hash_sha512_BYTES;
	dlen = (unsigned char)dstlen;
	lib[0] = (unsigned char)(outlen >> 8);
	lib[1] = (unsigned char)outlen;

	/* b_0 = H(Z_pad || msg || I2OSP(len_in_bytes, 2) || I2OSP(0, 1) || DST_prime),
	 * DST_prime = DST || I2OSP(len(DST), 1) */
	crypto_hash_sha512_init(&st);
	crypto_hash_sha512_update(&st, z_pad, sizeof z_pad);
	if (len)
		crypto_hash_sha512_update(&st, msg, len);
	crypto_hash_sha512_update(&st, lib, sizeof lib);
	crypto_hash_sha512_update(&st, &zero, 1);
	crypto_hash_sha512_update(&st, dst, dstlen);
	crypto_hash_sha512_update(&st, &dlen, 1);
	crypto_hash_sha512_final(&st, b0);

	/* b_1 = H(b_0 || I2OSP(1, 1) || DST_prime),
	 * b_i = H(strxor(b_0, b_(i-1)) || I2OSP(i, 1) || DST_prime) */
	for (i = 1; i <= ell; i++) {
		for (j = 0; j < sizeof x; j++)
			x[j] = (unsigned char)(i == 1 ? b0[j] : b0[j] ^ bi[j]);
		ctr = (unsigned char)i;
		crypto_hash_sha512_init(&st);
		crypto_hash_sha512_update(&st, x, sizeof x);
		crypto_hash_sha512_update(&st, &ctr, 1);
		crypto_hash_sha512_update(&st, dst, dstlen);
		crypto_hash_sha512_update(&st, &dlen, 1);
		crypto_hash_sha512_final(&st, bi);
		j = outlen - off < sizeof bi ? outlen - off : sizeof bi;
		memcpy(out + off, bi, j);
		off += j;
	}
	sodium_memzero(&st, sizeof st);
	sodium_memzero(b0, sizeof b0);
	sodium_memzero(bi, sizeof bi);
	sodium_memzero(x, sizeof x);
	return 0;
}

/* ---- group helpers ---- */

/* A canonical (< group order) non-zero scalar?  libsodium 1.0.18 has no
 * public canonical check, so reduce a zero-extended copy and compare. */
static int
scalar_ok(const unsigned char s[SP_OPRF_SCALARBYTES])
{
	unsigned char wide[crypto_core_ristretto255_NONREDUCEDSCALARBYTES] = { 0 };
	unsigned char red[SP_OPRF_SCALARBYTES];
	int ok;

	memcpy(wide, s, SP_OPRF_SCALARBYTES);
	crypto_core_ristretto255_scalar_reduce(red, wide);
	ok = sodium_memcmp(red, s, SP_OPRF_SCALARBYTES) == 0 && !sodium_is_zero(s, SP_OPRF_SCALARBYTES);
	sodium_memzero(wide, sizeof wide);
	sodium_memzero(red, sizeof red);
	return ok;
}

/* DeserializeElement + the identity check of RFC 9497, 4.1: the canonical
 * encoding of an element, and not the identity (whose only canonical encoding
 * is 32 zero bytes).  RFC 9496 4.3.1 refuses any encoding >= p, so also one
 * with the top bit set; libsodium 1.0.18 ignores that bit (it decodes the
 * value with the bit cleared), so it is checked here. */
static int
element_ok(const unsigned char e[SP_OPRF_ELEMENTBYTES])
{
	return (e[SP_OPRF_ELEMENTBYTES - 1] & 0x80) == 0 && crypto_core_ristretto255_is_valid_point(e) == 1 &&
	       !sodium_is_zero(e, SP_OPRF_ELEMENTBYTES);
}

int
sp_oprf_key_valid(const unsigned char sk[SP_OPRF_SCALARBYTES])
{
	return scalar_ok(sk);
}

int
sp_oprf_hash_to_group(const void *input, size_t len, unsigned char el[SP_OPRF_ELEMENTBYTES])
{
	unsigned char u[crypto_core_ristretto255_HASHBYTES];
	int rv = -1;

	if (sp_expand_message_xmd_sha512(input, len, dst_group, sizeof dst_group - 1, u, sizeof u) < 0)
		goto out;
	/* hash_to_ristretto255 (RFC 9380, appendix B): the one-way map of RFC
	 * 9496, 4.3.4, on 64 uniform bytes, which is crypto_core_ristretto255_from_hash. */
	if (crypto_core_ristretto255_from_hash(el, u) != 0)
		goto out;
	rv = 0;
out:
	sodium_memzero(u, sizeof u);
	return rv;
}

int
sp_oprf_hash_to_scalar(const void *input, size_t len, const void *dst, size_t dstlen,
                       unsigned char s[SP_OPRF_SCALARBYTES])
{
	unsigned char u[crypto_core_ristretto255_NONREDUCEDSCALARBYTES];
	int rv = -1;

	if (dst == NULL) {
		dst = dst_scalar;
		dstlen = sizeof dst_scalar - 1;
	}
	/* 64 uniform bytes, read as a little-endian 512-bit integer, mod the order. */
	if (sp_expand_message_xmd_sha512(input, len, dst, dstlen, u, sizeof u) < 0)
		goto out;
	crypto_core_ristretto255_scalar_reduce(s, u);
	rv = 0;
out:
	sodium_memzero(u, sizeof u);
	return rv;
}

/* Hash(I2OSP(len(input), 2) || input || I2OSP(Ne, 2) || element || "Finalize") */
static void
finalize_hash(const void *input, size_t len, const unsigned char el[SP_OPRF_ELEMENTBYTES],
              unsigned char out[SP_OPRF_OUTPUTBYTES])
{
	crypto_hash_sha512_state st;
	unsigned char l[2];

	crypto_hash_sha512_init(&st);
	l[0] = (unsigned char)(len >> 8);
	l[1] = (unsigned char)len;
	crypto_hash_sha512_update(&st, l, 2);
	if (len)
		crypto_hash_sha512_update(&st, input, len);
	l[0] = 0;
	l[1] = SP_OPRF_ELEMENTBYTES;
	crypto_hash_sha512_update(&st, l, 2);
	crypto_hash_sha512_update(&st, el, SP_OPRF_ELEMENTBYTES);
	crypto_hash_sha512_update(&st, (const unsigned char *)finalize_label, sizeof finalize_label - 1);
	crypto_hash_sha512_final(&st, out);
	sodium_memzero(&st, sizeof st);
}

static int
input_ok(const void *input, size_t len, char *err, size_t errsz)
{
	if (input == NULL && len != 0) {
		sp_seterr(err, errsz, "OPRF: no input");
		return 0;
	}
	if (len > SP_OPRF_INPUT_MAX) {
		sp_seterr(err, errsz, "OPRF: input of %zu bytes (at most %d)", len, SP_OPRF_INPUT_MAX);
		return 0;
	}
	return 1;
}

/* HashToGroup(input), with the InvalidInputError of RFC 9497 for the identity. */
static int
input_element(const void *input, size_t len, unsigned char el[SP_OPRF_ELEMENTBYTES], char *err, size_t errsz)
{
	if (!input_ok(input, len, err, errsz))
		return -1;
	if (sp_oprf_hash_to_group(input, len, el) < 0 || sodium_is_zero(el, SP_OPRF_ELEMENTBYTES)) {
		sodium_memzero(el, SP_OPRF_ELEMENTBYTES);
		sp_seterr(err, errsz, "OPRF: input maps to the identity element");
		return -1;
	}
	return 0;
}

/* out = s * HashToGroup(input): Blind's and Evaluate's common step.  what
 * names the scalar in the error ("the blind", "the key"). */
static int
scalar_times_input(const unsigned char s[SP_OPRF_SCALARBYTES], const char *what, const void *input,
                   size_t len, unsigned char out[SP_OPRF_ELEMENTBYTES], char *err, size_t errsz)
{
	unsigned char p[SP_OPRF_ELEMENTBYTES];
	int rv = -1;

	if (!scalar_ok(s)) {
		sp_seterr(err, errsz, "OPRF: %s is not a valid scalar", what);
		return -1;
	}
	if (input_element(input, len, p, err, errsz) < 0)
		goto out;
	if (crypto_scalarmult_ristretto255(out, s, p) != 0) {
		sodium_memzero(out, SP_OPRF_ELEMENTBYTES);
		sp_seterr(err, errsz, "OPRF: multiplying by %s failed", what);
		goto out;
	}
	rv = 0;
out:
	sodium_memzero(p, sizeof p);
	return rv;
}


/* ---- server ---- */

void
sp_oprf_keygen(unsigned char sk[SP_OPRF_SCALARBYTES])
{
	/* Uniform in [1, order - 1]: libsodium redraws zero and non-canonical values. */
	crypto_core_ristretto255_scalar_random(sk);
}

int
sp_oprf_derive_keypair(const unsigned char seed[SP_OPRF_SEEDBYTES], const void *info, size_t info_len,
                       unsigned char sk[SP_OPRF_SCALARBYTES], unsigned char pk[SP_OPRF_ELEMENTBYTES],
                       char *err, size_t errsz)
{
	/* deriveInput || I2OSP(counter, 1), deriveInput = seed || I2OSP(len(info), 2) || info */
	unsigned char in[SP_OPRF_SEEDBYTES + 2 + SP_OPRF_INFO_MAX + 1];
	size_t n = 0;
	unsigned counter;
	int rv = -1;

	if (info_len > SP_OPRF_INFO_MAX || (info == NULL && info_len != 0)) {
		sp_seterr(err, errsz, "OPRF: key info of %zu bytes (at most %d)", info_len, SP_OPRF_INFO_MAX);
		return -1;
	}
	memcpy(in, seed, SP_OPRF_SEEDBYTES);
	n = SP_OPRF_SEEDBYTES;
	in[n++] = (unsigned char)(info_len >> 8);
	in[n++] = (unsigned char)info_len;
	if (info_len)
		memcpy(in + n, info, info_len);
	n += info_len;
	for (counter = 0; counter <= 255; counter++) {
		in[n] = (unsigned char)counter;
		if (sp_oprf_hash_to_scalar(in, n + 1, dst_derive, sizeof dst_derive - 1, sk) < 0)
			break;
		if (!sodium_is_zero(sk, SP_OPRF_SCALARBYTES)) {
			rv = 0;
			break;
		}
	}
	if (rv == 0 && pk != NULL && crypto_scalarmult_ristretto255_base(pk, sk) != 0)
		rv = -1;
	if (rv < 0) {
		sodium_memzero(sk, SP_OPRF_SCALARBYTES);
		sp_seterr(err, errsz, "OPRF: DeriveKeyPair failed");
	}
	sodium_memzero(in, sizeof in);
	return rv;
}

int
sp_oprf_blind_evaluate(const unsigned char sk[SP_OPRF_SCALARBYTES],
                       const unsigned char blinded[SP_OPRF_ELEMENTBYTES],
                       unsigned char evaluated[SP_OPRF_ELEMENTBYTES], char *err, size_t errsz)
{
	if (!scalar_ok(sk)) {
		sp_seterr(err, errsz, "OPRF: the key is not a valid scalar");
		return -1;
	}
	if (!element_ok(blinded)) {
		sp_seterr(err, errsz, "OPRF: the blinded element is not a valid group element");
		return -1;
	}
	/* Non-zero scalar times a non-identity element of a prime-order group is
	 * never the identity; libsodium's -1 for it stays a failure anyway. */
	if (crypto_scalarmult_ristretto255(evaluated, sk, blinded) != 0) {
		sodium_memzero(evaluated, SP_OPRF_ELEMENTBYTES);
		sp_seterr(err, errsz, "OPRF: evaluation failed");
		return -1;
	}
	return 0;
}

/* ---- client ---- */

int
sp_oprf_blind_det(const void *input, size_t len, const unsigned char blind[SP_OPRF_SCALARBYTES],
                  unsigned char blinded[SP_OPRF_ELEMENTBYTES], char *err, size_t errsz)
{
	return scalar_times_input(blind, "the blind", input, len, blinded, err, errsz);
}

int
sp_oprf_blind(const void *input, size_t len, unsigned char blind[SP_OPRF_SCALARBYTES],
              unsigned char blinded[SP_OPRF_ELEMENTBYTES], char *err, size_t errsz)
{
	crypto_core_ristretto255_scalar_random(blind);
	if (sp_oprf_blind_det(input, len, blind, blinded, err, errsz) < 0) {
		sodium_memzero(blind, SP_OPRF_SCALARBYTES);
		return -1;
	}
	return 0;
}

int
sp_oprf_finalize(const void *input, size_t len, const unsigned char blind[SP_OPRF_SCALARBYTES],
                 const unsigned char evaluated[SP_OPRF_ELEMENTBYTES],
                 unsigned char out[SP_OPRF_OUTPUTBYTES], char *err, size_t errsz)
{
	unsigned char inv[SP_OPRF_SCALARBYTES], n[SP_OPRF_ELEMENTBYTES];
	int rv = -1;

	if (!input_ok(input, len, err, errsz))
		return -1;
	if (!scalar_ok(blind)) {
		sp_seterr(err, errsz, "OPRF: the blind is not a valid scalar");
		return -1;
	}
	if (!element_ok(evaluated)) {
		sp_seterr(err, errsz, "OPRF: the evaluated element is not a valid group element");
		return -1;
	}
	/* N = ScalarInverse(blind) * evaluatedElement */
	if (crypto_core_ristretto255_scalar_invert(inv, blind) != 0 ||
	    crypto_scalarmult_ristretto255(n, inv, evaluated) != 0) {
		sp_seterr(err, errsz, "OPRF: unblinding failed");
		goto out;
	}
	finalize_hash(input, len, n, out);
	rv = 0;
out:
	sodium_memzero(inv, sizeof inv);
	sodium_memzero(n, sizeof n);
	return rv;
}

/* ---- both ---- */

int
sp_oprf_evaluate(const unsigned char sk[SP_OPRF_SCALARBYTES], const void *input, size_t len,
                 unsigned char out[SP_OPRF_OUTPUTBYTES], char *err, size_t errsz)
{
	unsigned char z[SP_OPRF_ELEMENTBYTES];

	if (scalar_times_input(sk, "the key", input, len, z, err, errsz) < 0)
		return -1;
	finalize_hash(input, len, z, out);
	sodium_memzero(z, sizeof z);
	return 0;
}

/* oprf.h - RFC 9497 OPRF, base mode (0x00), suite ristretto255-SHA512.
 *
 * An oblivious pseudorandom function: the client learns
 * F(k, input) = SHA-512(len || input || len || k * HashToGroup(input) || "Finalize")
 * for the server's key k without the server learning input or output, and
 * without the client learning k.  Link v2 (docs/formats.md, "Link envelope
 * (v2)") keys one of these per link on the viewer, so that every password
 * guess needs the viewer's help and is counted there.
 *
 *   client                                   server (key sk)
 *   sp_oprf_blind(input) -> blind, blinded   ----blinded---->
 *                                            sp_oprf_blind_evaluate(sk, blinded)
 *                        <----evaluated----
 *   sp_oprf_finalize(input, blind, evaluated) -> output (64 bytes)
 *
 * Whoever holds both sk and input (the proxy at send time) gets the same
 * output directly with sp_oprf_evaluate().
 *
 * Group operations are libsodium's (crypto_core_ristretto255_*,
 * crypto_scalarmult_ristretto255); HashToGroup and HashToScalar use
 * expand_message_xmd with SHA-512 (RFC 9380, section 5.3.1).  Checked against
 * the test vectors of RFC 9497, appendix A.1.1 (tests/unit/test_oprf.c).
 *
 * Errors: 0 / -1 with one line in err (never containing a secret).  Every
 * secret intermediate is wiped with sodium_memzero before return; outputs are
 * wiped on failure.
 */
#ifndef SP_OPRF_H
#define SP_OPRF_H

#include <stddef.h>

#define SP_OPRF_SCALARBYTES 32   /* Ns: a serialized scalar (little-endian, < group order) */
#define SP_OPRF_ELEMENTBYTES 32  /* Ne: a serialized ristretto255 element */
#define SP_OPRF_OUTPUTBYTES 64   /* Nh: SHA-512 */
#define SP_OPRF_SEEDBYTES 32     /* DeriveKeyPair seed (Ns bytes) */

/* Longest private input accepted by blind/finalize/evaluate.  RFC 9497 allows
 * up to 65535 bytes (a 2-byte length prefix); sealpost's only input is the
 * 69-byte link v2 OPRF input, so 1 KiB leaves room without letting a caller
 * hash megabytes. */
#define SP_OPRF_INPUT_MAX 1024
/* Longest DeriveKeyPair info string (public): the same reasoning. */
#define SP_OPRF_INFO_MAX 1024
/* expand_message_xmd limits: RFC 9380, 5.3.1 allows a DST of at most 255
 * bytes and at most 255 SHA-512 blocks of output; the message is hashed as a
 * stream, and 2 KiB covers the longest one sealpost makes (a DeriveKeyPair
 * input: seed, 2-byte length, info, counter = 1059 bytes at most). */
#define SP_XMD_DST_MAX 255
#define SP_XMD_OUT_MAX (255 * 64)
#define SP_XMD_MSG_MAX 2048

/* ---- server ---- */

/* A fresh per-link key: a uniformly random non-zero scalar (GenerateKeyPair). */
void sp_oprf_keygen(unsigned char sk[SP_OPRF_SCALARBYTES]);
/* DeriveKeyPair(seed, info) of RFC 9497, section 3.2.1; pk may be NULL.
 * Returns 0 with sk (and pk), or -1 with err set (info longer than
 * SP_OPRF_INFO_MAX, or no non-zero scalar in 256 tries); sk is then zero. */
int sp_oprf_derive_keypair(const unsigned char seed[SP_OPRF_SEEDBYTES], const void *info, size_t info_len,
                           unsigned char sk[SP_OPRF_SCALARBYTES], unsigned char pk[SP_OPRF_ELEMENTBYTES],
                           char *err, size_t errsz);
/* BlindEvaluate: evaluated = sk * blinded.  blinded comes off the wire: it is
 * rejected unless it is the canonical encoding of a ristretto255 element
 * other than the identity.  sk must be a valid non-zero scalar.  Returns 0
 * with evaluated, or -1 with err set (a bad sk or blinded). */
int sp_oprf_blind_evaluate(const unsigned char sk[SP_OPRF_SCALARBYTES],
                           const unsigned char blinded[SP_OPRF_ELEMENTBYTES],
                           unsigned char evaluated[SP_OPRF_ELEMENTBYTES], char *err, size_t errsz);
/* Is sk a canonical, non-zero scalar (a key read back from a store)?
 * Returns 1 or 0. */
int sp_oprf_key_valid(const unsigned char sk[SP_OPRF_SCALARBYTES]);

/* ---- client ---- */

/* Blind(input): a fresh random blind; blinded = blind * HashToGroup(input).
 * Returns 0 with blind and blinded, or -1 with err set (input too long, or
 * hashing to the identity); blind is then zero. */
int sp_oprf_blind(const void *input, size_t len, unsigned char blind[SP_OPRF_SCALARBYTES],
                  unsigned char blinded[SP_OPRF_ELEMENTBYTES], char *err, size_t errsz);
/* The same with the blind given (known-answer tests); blind must be a
 * canonical non-zero scalar.  Returns 0 with blinded, or -1 with err set. */
int sp_oprf_blind_det(const void *input, size_t len, const unsigned char blind[SP_OPRF_SCALARBYTES],
                      unsigned char blinded[SP_OPRF_ELEMENTBYTES], char *err, size_t errsz);
/* Finalize(input, blind, evaluated): evaluated comes off the wire and gets the
 * same checks as in sp_oprf_blind_evaluate().  Returns 0 with out, or -1 with
 * err set (out not written). */
int sp_oprf_finalize(const void *input, size_t len, const unsigned char blind[SP_OPRF_SCALARBYTES],
                     const unsigned char evaluated[SP_OPRF_ELEMENTBYTES],
                     unsigned char out[SP_OPRF_OUTPUTBYTES], char *err, size_t errsz);

/* ---- both ---- */

/* Evaluate(sk, input): the output without blinding, for whoever holds sk and
 * input (the proxy writing a link v2 record).  Equal to blind + blind_evaluate
 * + finalize.  Returns 0 with out, or -1 with err set (out not written). */
int sp_oprf_evaluate(const unsigned char sk[SP_OPRF_SCALARBYTES], const void *input, size_t len,
                     unsigned char out[SP_OPRF_OUTPUTBYTES], char *err, size_t errsz);

/* ---- building blocks (exposed for tests) ----
 * These take no err: each returns 0, or -1 (no err) only for arguments out of
 * the bounds above, which the callers above check first. */

/* expand_message_xmd(msg, DST, outlen) with SHA-512 (RFC 9380, 5.3.1).
 * Returns 0, or -1 (no err) if dst, outlen or len is outside the SP_XMD_*
 * bounds. */
int sp_expand_message_xmd_sha512(const void *msg, size_t len, const void *dst, size_t dstlen,
                                 unsigned char *out, size_t outlen);
/* HashToGroup(input): hash_to_ristretto255 with DST "HashToGroup-" || contextString. */
int sp_oprf_hash_to_group(const void *input, size_t len, unsigned char el[SP_OPRF_ELEMENTBYTES]);
/* HashToScalar(input) with DST "HashToScalar-" || contextString (dst == NULL)
 * or the DST given (DeriveKeyPair uses its own). */
int sp_oprf_hash_to_scalar(const void *input, size_t len, const void *dst, size_t dstlen,
                           unsigned char s[SP_OPRF_SCALARBYTES]);

#endif

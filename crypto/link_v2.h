/* link_v2.h - link envelope version 2: the secret steps run in the browser,
 * every password guess is an OPRF evaluation counted by the viewer.
 *
 * docs/formats.md, "Link envelope (v2)", defines every byte; in short:
 *
 *   pw    = Argon2id(password, salt)
 *   y     = OPRF(k, "sealpost link v2 oprf input" || link_id || pw)   (k: per link, on the viewer)
 *   root  = BLAKE2b-256(key = y, "sealpost link v2 root" || link_id || link_secret)
 *   kwk   = BLAKE2b-256(key = root, "sealpost link v2 kwk")           wraps the message key
 *   auth  = Ed25519 keypair from BLAKE2b-256(key = root, "sealpost link v2 auth")
 *
 * The store keeps a 169-byte record per link (the v1 wrapped-key blob with
 * version 2, plus k and auth's public key).  Three parties use this module:
 *
 *   proxy, at send time   sp_link2_record_new(): it knows the password, draws k,
 *                         runs the client side itself (OPRF Evaluate) and writes
 *                         the record.
 *   viewer                sp_link2_record_check() on what it reads back;
 *                         sp_link2_params() before an unlock (public);
 *                         sp_link2_evaluate() per attempt (count it first!);
 *                         sp_link2_verify_unlock() on the proof, then
 *                         sp_link2_sealed_key() and the message blob.
 *   browser               the same steps in JavaScript; the C version below
 *                         (sp_link2_client_*) is for tests and tools.
 *
 * Errors: 0 / -1 with one line in err (never containing a secret).
 */
#ifndef SP_LINK_V2_H
#define SP_LINK_V2_H

#include <stddef.h>
#include <stdint.h>

#include "link_envelope.h"
#include "oprf.h"

#define SP_LINK2_VERSION 2
/* The record: magic (8), version (1), passes (4), memory KiB (4), salt (16),
 * nonce (24), wrapped key (48), OPRF key (32), auth public key (32). */
#define SP_LINK2_RECORD_BYTES 169
/* Public slice served before an unlock: magic .. salt. */
#define SP_LINK2_PARAMS_BYTES 33
/* Slice released after a valid proof: nonce || wrapped key. */
#define SP_LINK2_SEALED_KEY_BYTES 72
/* The viewer's id for one counted attempt (random), and the proof over it. */
#define SP_LINK2_ATTEMPT_BYTES 16
#define SP_LINK2_PROOF_BYTES 64
/* L_input || link_id || pw */
#define SP_LINK2_INPUT_BYTES 75
/* base64url without padding of the 16-byte link id or link secret. */
#define SP_LINK2_B64_STRLEN 22

/* ---- the link: base_url || id_b64 || "#" || secret_b64 ---- */

void sp_link2_b64_encode(const unsigned char in[16], char out[SP_LINK2_B64_STRLEN + 1]);
/* Strict: exactly 22 URL-safe characters, the 4 unused bits zero.  Returns 0
 * with out, or -1 (no err: the caller names the part of the link). */
int sp_link2_b64_decode(const char *s, size_t len, unsigned char out[16]);

/* ---- proxy: the record ---- */

/* A record for (message key, password, token) with a fresh salt, nonce and
 * OPRF key and the default Argon2id cost (SP_LINK_ARGON2_*).  Costs one
 * Argon2id run.  Returns 0 with record, or -1 with err set (a password of 0
 * or more than SP_LINK_PASSWORD_INPUT_MAX bytes, Argon2id out of memory);
 * record is written only on success. */
int sp_link2_record_new(const unsigned char key[SP_LINK_KEYBYTES], const char *password,
                        const struct sp_link_token *t, unsigned char record[SP_LINK2_RECORD_BYTES],
                        char *err, size_t errsz);
/* The same with every random input given (known-answer tests); also -1 with
 * err set for Argon2id costs out of bounds or an invalid oprf_key. */
int sp_link2_record_new_det(const unsigned char key[SP_LINK_KEYBYTES], const char *password,
                            const struct sp_link_token *t, uint32_t opslimit, uint32_t memlimit_kib,
                            const unsigned char salt[SP_LINK_SALTBYTES],
                            const unsigned char nonce[SP_LINK_NONCEBYTES],
                            const unsigned char oprf_key[SP_OPRF_SCALARBYTES],
                            unsigned char record[SP_LINK2_RECORD_BYTES], char *err, size_t errsz);

/* ---- viewer ---- */

/* Is this a well-formed v2 record (length, magic, version, Argon2id bounds, a
 * valid OPRF key and auth key)?  Call on every record read from a store or
 * received over the upload API before using it.  Returns 0, or -1 with err
 * set (but record == NULL gives -1 without err). */
int sp_link2_record_check(const void *record, size_t len, char *err, size_t errsz);
/* The public parameters (bytes 0..32), for the browser before an unlock. */
void sp_link2_params(const unsigned char record[SP_LINK2_RECORD_BYTES],
                     unsigned char params[SP_LINK2_PARAMS_BYTES]);
/* The sealed message key (bytes 33..104): only after sp_link2_verify_unlock(). */
void sp_link2_sealed_key(const unsigned char record[SP_LINK2_RECORD_BYTES],
                         unsigned char sealed[SP_LINK2_SEALED_KEY_BYTES]);
/* A fresh attempt id. */
void sp_link2_attempt_new(unsigned char attempt[SP_LINK2_ATTEMPT_BYTES]);
/* One password attempt: OPRF BlindEvaluate with the link's key.  The caller
 * counts the attempt in the store BEFORE sending evaluated back; a blinded
 * value that is not a valid group element is refused and need not count.
 * Returns 0 with evaluated, or -1 with err set. */
int sp_link2_evaluate(const unsigned char record[SP_LINK2_RECORD_BYTES],
                      const unsigned char blinded[SP_OPRF_ELEMENTBYTES],
                      unsigned char evaluated[SP_OPRF_ELEMENTBYTES], char *err, size_t errsz);
/* Does proof show that the attempt attempt_id derived the right key?
 * Returns 0 yes, or -1 no (wrong password, or anything else; no err: the
 * viewer answers every -1 the same way). */
int sp_link2_verify_unlock(const unsigned char record[SP_LINK2_RECORD_BYTES],
                           const unsigned char link_id[SP_LINK_IDBYTES],
                           const unsigned char attempt[SP_LINK2_ATTEMPT_BYTES],
                           const unsigned char proof[SP_LINK2_PROOF_BYTES]);

/* ---- browser side, in C ---- */

struct sp_link2_client {
	unsigned char params[SP_LINK2_PARAMS_BYTES];
	struct sp_link_token token;
	unsigned char input[SP_LINK2_INPUT_BYTES];
	unsigned char blind[SP_OPRF_SCALARBYTES];
};

/* Check params, run Argon2id, blind the OPRF input: blinded goes to the viewer.
 * Returns 0 with c filled and blinded, or -1 with err set (bad params or
 * password, Argon2id out of memory); c is then wiped. */
int sp_link2_client_start(struct sp_link2_client *c, const void *params, size_t params_len,
                          const char *password, const struct sp_link_token *t,
                          unsigned char blinded[SP_OPRF_ELEMENTBYTES], char *err, size_t errsz);
/* The same with the blind given (known-answer tests); returns as
 * sp_link2_client_start(). */
int sp_link2_client_start_det(struct sp_link2_client *c, const void *params, size_t params_len,
                              const char *password, const struct sp_link_token *t,
                              const unsigned char blind[SP_OPRF_SCALARBYTES],
                              unsigned char blinded[SP_OPRF_ELEMENTBYTES], char *err, size_t errsz);
/* Unblind the viewer's answer, derive kwk and the proof for attempt.  Returns
 * 0 with proof and kwk, or -1 with err set (evaluated not a valid element).
 * Either way c's blind is wiped: a new attempt starts again. */
int sp_link2_client_finish(struct sp_link2_client *c, const unsigned char evaluated[SP_OPRF_ELEMENTBYTES],
                           const unsigned char attempt[SP_LINK2_ATTEMPT_BYTES],
                           unsigned char proof[SP_LINK2_PROOF_BYTES], unsigned char kwk[32],
                           char *err, size_t errsz);
/* Unwrap the message key from the sealed key the viewer released.  Returns 0
 * with key, or -1 with err set ("wrong password" when it does not open, or
 * sealed of the wrong length); key is written only on success. */
int sp_link2_client_open_key(const struct sp_link2_client *c, const unsigned char kwk[32],
                             const void *sealed, size_t sealed_len, unsigned char key[SP_LINK_KEYBYTES],
                             char *err, size_t errsz);
void sp_link2_client_wipe(struct sp_link2_client *c);

/* ---- the derivation steps (exposed for the known-answer tests) ---- */

void sp_link2_oprf_input(const unsigned char link_id[SP_LINK_IDBYTES], const unsigned char pw[32],
                         unsigned char input[SP_LINK2_INPUT_BYTES]);
/* root, kwk and the auth seed from the OPRF output and the token. */
void sp_link2_derive(const unsigned char y[SP_OPRF_OUTPUTBYTES], const struct sp_link_token *t,
                     unsigned char root[32], unsigned char kwk[32], unsigned char auth_seed[32]);

#endif

/* link_envelope.h - the cryptography of link mode (libsodium).
 *
 * A link message is encrypted once with a random 32-byte message key (chunked
 * AEAD, crypto_secretstream_xchacha20poly1305).  Each link recipient gets a
 * token (link id + link secret, >= 128 bits each, CSPRNG) and a password; the
 * message key is wrapped under a key derived from BOTH Argon2id(password, salt)
 * AND the link secret, so neither the store alone, nor the store plus a guessed
 * password, nor the link alone opens anything.  The store keeps the message
 * ciphertext and, per link, the wrapped key blob (salt, KDF parameters, nonce,
 * ciphertext) - never the password, the link secret or plaintext.
 *
 * The byte formats are versioned and documented in docs/formats.md.
 * Errors: 0 / -1 with one line in err (never containing a secret).
 */
#ifndef SP_LINK_ENVELOPE_H
#define SP_LINK_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define SP_LINK_KEYBYTES 32
#define SP_LINK_IDBYTES 16        /* 128-bit link id: the store's lookup key */
#define SP_LINK_SECRETBYTES 16    /* 128-bit link secret: only in the link */
/* base64url (no padding) of id || secret */
#define SP_LINK_TOKEN_STRLEN 43
#define SP_LINK_ID_HEXLEN (SP_LINK_IDBYTES * 2)

struct sp_link_token {
	unsigned char id[SP_LINK_IDBYTES];
	unsigned char secret[SP_LINK_SECRETBYTES];
};

/* A fresh token from the CSPRNG. */
void sp_link_token_new(struct sp_link_token *t);
/* The string that goes into the URL after [link] base_url. */
void sp_link_token_encode(const struct sp_link_token *t, char out[SP_LINK_TOKEN_STRLEN + 1]);
/* Parse a token from a URL path component.  Returns 0, or -1 if malformed. */
int sp_link_token_decode(const char *s, size_t len, struct sp_link_token *t);
/* Lowercase hex of the id: the public link id (`sealpost revoke LINK-ID`, store key). */
void sp_link_id_hex(const unsigned char id[SP_LINK_IDBYTES], char out[SP_LINK_ID_HEXLEN + 1]);
/* The reverse; -1 if hex is not SP_LINK_ID_HEXLEN lowercase hex digits, else 0. */
int sp_link_id_from_hex(const char *hex, unsigned char id[SP_LINK_IDBYTES]);

/* A fresh random message key. */
void sp_link_key_new(unsigned char key[SP_LINK_KEYBYTES]);

/* Encrypt a whole message under key: out receives the versioned ciphertext blob.
 * These functions return 0, or -1 with err set. */
int sp_link_seal_message(const unsigned char key[SP_LINK_KEYBYTES], const void *msg, size_t len,
                         struct sp_buf *out, char *err, size_t errsz);
/* The same from pieces in memory (the message without its private headers,
 * read in place: no copy of the plaintext). */
struct sp_blob;
int sp_link_seal_blob(const unsigned char key[SP_LINK_KEYBYTES], const struct sp_blob *msg, struct sp_buf *out,
                      char *err, size_t errsz);

/* Decrypt and authenticate the whole blob; on any failure (tampered, truncated,
 * wrong key, unknown version) out is left empty and -1 returned. */
int sp_link_open_message(const unsigned char key[SP_LINK_KEYBYTES], const void *blob, size_t len,
                         struct sp_buf *out, char *err, size_t errsz);

/* Wrap key for one recipient under (password, token).  Costs one Argon2id run.
 * Returns 0, or -1 with err set. */
int sp_link_wrap_key(const unsigned char key[SP_LINK_KEYBYTES], const char *password,
                     const struct sp_link_token *t, struct sp_buf *wrapped, char *err, size_t errsz);
/* Recover key.  A wrong password and a wrong link secret are indistinguishable
 * (-1, err "wrong password"). */
int sp_link_unwrap_key(const void *wrapped, size_t len, const char *password,
                       const struct sp_link_token *t, unsigned char key[SP_LINK_KEYBYTES],
                       char *err, size_t errsz);

/* A random password with >= 64 bits of entropy that is easy to read aloud
 * (see docs/formats.md for the alphabet and the exact entropy). */
#define SP_LINK_PASSWORD_MAX 96
void sp_link_password_generate(char out[SP_LINK_PASSWORD_MAX]);

/* ---- additions (format constants, sizes, deterministic variants) ---- */

/* Generated passwords: four five-letter words consonant-vowel-consonant-vowel-
 * consonant from 15 consonants and 5 vowels, joined by '-', e.g.
 * "bakit-monel-sutar-figon": 4 * log2(15^3 * 5^2) = 65.46 bits. */
#define SP_LINK_PASSWORD_WORDS 4
#define SP_LINK_PASSWORD_ENTROPY_BITS 65   /* floor of 65.46 */
/* Longest password accepted for wrap/unwrap: far above any sane passphrase,
 * small enough that a hostile form field cannot feed Argon2id megabytes. */
#define SP_LINK_PASSWORD_INPUT_MAX 1024

/* Argon2id cost of one wrap or unlock (RFC 9106 second recommended option, with
 * the single lane libsodium implements): t = 3 passes over m = 64 MiB, about
 * 0.12 s of one core here.  The link secret already makes a stolen store
 * useless on its own, so Argon2id only protects a sender-chosen password
 * against someone holding both the store and the link; the viewer pays this
 * once per POST, and wrong guesses are capped by [link] max_failed_attempts. */
#define SP_LINK_ARGON2_OPSLIMIT 3U
#define SP_LINK_ARGON2_MEMLIMIT_KIB (64U * 1024U)
/* Bounds accepted on unwrap: a hostile blob must not make the viewer allocate
 * gigabytes or burn seconds of CPU per POST.  4x the default memory, 8 passes
 * (about 1 s here) leaves room to raise the defaults later. */
#define SP_LINK_ARGON2_OPSLIMIT_MAX 8U
#define SP_LINK_ARGON2_MEMLIMIT_KIB_MAX (256U * 1024U)

#define SP_LINK_SALTBYTES 16
#define SP_LINK_NONCEBYTES 24
/* Size of a v1 wrapped-key blob (docs/formats.md, "Link envelope (v1)"). */
#define SP_LINK_WRAPPED_BYTES 105
/* magic (8) + version (1) in front of the message stream. */
#define SP_LINK_MESSAGE_PREFIXBYTES 9

/* Returns the exact size of the blob sp_link_seal_message() makes for a
 * len-byte message (lets a store pre-size an incremental BLOB). */
size_t sp_link_message_sealed_size(size_t len);

/* Deterministic variants for known-answer tests (tests/vectors/): every random
 * input is a parameter.  Production code uses the functions above, which draw
 * the same inputs from the CSPRNG and call these.  Return as those. */
int sp_link_seal_message_det(const unsigned char key[SP_LINK_KEYBYTES], const unsigned char header[24],
                             const void *msg, size_t len, struct sp_buf *out, char *err, size_t errsz);
int sp_link_wrap_key_det(const unsigned char key[SP_LINK_KEYBYTES], const char *password,
                         const struct sp_link_token *t, uint32_t opslimit, uint32_t memlimit_kib,
                         const unsigned char salt[SP_LINK_SALTBYTES],
                         const unsigned char nonce[SP_LINK_NONCEBYTES],
                         struct sp_buf *wrapped, char *err, size_t errsz);

#endif

/* sodium_keys.h - sealpost's X25519 keys: key files, public lines, and the
 * [sodium] recipients file.  Text formats: docs/formats.md ("sodium keys").
 *
 *   public line:  sealpost1:<base64 of the 32-byte X25519 public key>
 *   secret file:  '#' comment lines, and one line
 *                 sealpost-secret1:<base64 of secret key (32) || public key (32)>
 *   recipients:   one "ADDRESS sealpost1:<base64>" per line; blank lines and
 *                 '#' comments (whole-line or after the key) allowed.
 *
 * base64 is the standard alphabet with padding, decoded strictly.  Functions
 * are prefixed sp_sodium_ (libsodium owns sodium_).  Errors: 0 / -1 with one
 * line in err, which never contains secret key material.
 * sodium_init() must have been called.
 */
#ifndef SP_SODIUM_KEYS_H
#define SP_SODIUM_KEYS_H

#include <stddef.h>

#include "util.h"

#define SP_SODIUM_PKBYTES 32
#define SP_SODIUM_SKBYTES 32
#define SP_SODIUM_PUBLIC_PREFIX "sealpost1:"
#define SP_SODIUM_SECRET_PREFIX "sealpost-secret1:"
/* "sealpost1:" + 44 base64 characters */
#define SP_SODIUM_PUBLINE_LEN 54
/* A secret key file is a few hundred bytes; refuse to read anything bigger. */
#define SP_SODIUM_KEYFILE_MAX 4096
/* The recipients file: ~100 bytes a line, so 4 MiB is ~40000 recipients; past
 * that the file is not a recipients file. */
#define SP_SODIUM_RECIPIENTS_FILE_MAX (4u * 1024u * 1024u)
/* RFC 5321 4.5.3.1.3: a path is at most 256 octets including the brackets. */
#define SP_SODIUM_ADDRESS_MAX 254

struct sp_sodium_keypair {
	unsigned char pk[SP_SODIUM_PKBYTES];
	unsigned char sk[SP_SODIUM_SKBYTES];
};

/* Make a key pair and write the secret file at path: created with
 * O_CREAT|O_EXCL (an existing file is never overwritten), mode 0600, fsync'd.
 * publine receives "sealpost1:..." for the recipients file of the senders.
 * Like every function here that takes err: returns 0, or -1 with err set. */
int sp_sodium_keygen(const char *path, char publine[SP_SODIUM_PUBLINE_LEN + 1], char *err, size_t errsz);
/* Read a secret key file.  Refused if group or others may read or write it,
 * or if its public half does not match its secret half. */
int sp_sodium_load_secret(const char *path, struct sp_sodium_keypair *kp, char *err, size_t errsz);
/* Parse the contents of a secret key file (name is used in error messages). */
int sp_sodium_parse_secret(const char *name, const char *text, size_t len, struct sp_sodium_keypair *kp,
                           char *err, size_t errsz);
void sp_sodium_keypair_wipe(struct sp_sodium_keypair *kp);

void sp_sodium_format_public(const unsigned char pk[SP_SODIUM_PKBYTES], char out[SP_SODIUM_PUBLINE_LEN + 1]);
/* Strict: exactly "sealpost1:" + 44 base64 characters of a usable X25519
 * public key (low-order points are refused). */
int sp_sodium_parse_public(const char *s, unsigned char pk[SP_SODIUM_PKBYTES], char *err, size_t errsz);

/* The [sodium] recipients file.  Returns 0 with *out, or -1 with err set. */
struct sp_sodium_recipients;
int sp_sodium_recipients_load(const char *path, struct sp_sodium_recipients **out, char *err, size_t errsz);
/* Same from memory; name is the FILE of the "FILE:LINE: reason" errors. */
int sp_sodium_recipients_parse(const char *name, const char *text, size_t len,
                               struct sp_sodium_recipients **out, char *err, size_t errsz);
/* The public key registered for addr (whole address, compared in its normal
 * form: ASCII case ignored, the domain as IDNA A-labels, see address.h; never
 * a substring), or NULL.  Valid until sp_sodium_recipients_free(). */
const unsigned char *sp_sodium_recipients_lookup(const struct sp_sodium_recipients *r, const char *addr);
/* How many addresses the file lists. */
size_t sp_sodium_recipients_count(const struct sp_sodium_recipients *r);
void sp_sodium_recipients_free(struct sp_sodium_recipients *r);

#endif

/* sodium_seal.h - the sodium copy: a message sealed to sealpost X25519 keys.
 *
 * Sealed file (docs/formats.md, "sodium copy (v1)"):
 *
 *   "SPSODIUM" | version 0x01 | slot count (u16 BE) | slots (80 bytes each) |
 *   secretstream (secretstream.h) of the whole original message
 *
 * A fresh random message key encrypts the message; each slot is that key
 * sealed to one recipient with crypto_box_seal (an anonymous ephemeral key, so
 * a slot does not say whose it is); the whole header is the associated data of
 * the stream's first chunk.  The copy sent upstream is a multipart/mixed entity
 * with a short text/plain explanation and the sealed file as the attachment
 * message.sealpost (application/x-sealpost, base64).
 *
 * Memory: sealing and opening hold one 64 KiB chunk in each direction plus the
 * header (<= 80 KiB), whatever the message size.
 *
 * Needs sodium_init() and g_mime_init().  Errors: 0 / -1 (or NULL) with one line
 * in err, never containing plaintext or key material.
 */
#ifndef SP_SODIUM_SEAL_H
#define SP_SODIUM_SEAL_H

#include <stddef.h>
#include <stdio.h>

#include <gmime/gmime.h>

#include "secretstream.h"
#include "sodium_keys.h"
#include "util.h"

#define SP_SODIUM_VERSION 1
#define SP_SODIUM_SLOTBYTES 80        /* crypto_box_SEALBYTES (48) + 32-byte key */
#define SP_SODIUM_PREFIXBYTES 11      /* magic (8) + version (1) + slot count (2) */
/* Key slots per sealed file.  An opener tries its key on every slot (one
 * X25519 each, ~35 us here), so this bounds the work and the header memory (80 KiB)
 * a hostile file can demand; it is far above [proxy] max_recipients (100). */
#define SP_SODIUM_MAX_SLOTS 1024
#define SP_SODIUM_CONTENT_TYPE "application/x-sealpost"
#define SP_SODIUM_FILENAME "message.sealpost"

/* Returns the size of the sealed file for npk recipients and a len-byte message. */
size_t sp_sodium_sealed_size(size_t npk, size_t len);

/* Streaming sealer: new() writes the header to w; update() takes the message in
 * pieces of any size; finish() writes the final chunk.  pks: npk pointers to
 * 32-byte public keys (as returned by sp_sodium_recipients_lookup), 1..1024.
 * new() returns the sealer, or NULL with err set; update() and finish()
 * return 0, or -1 with err set. */
struct sp_sodium_sealer;
struct sp_sodium_sealer *sp_sodium_sealer_new(const unsigned char *const *pks, size_t npk,
                                              sp_write_fn w, void *wctx, char *err, size_t errsz);
int sp_sodium_sealer_update(struct sp_sodium_sealer *s, const void *p, size_t n, char *err, size_t errsz);
int sp_sodium_sealer_finish(struct sp_sodium_sealer *s, char *err, size_t errsz);
void sp_sodium_sealer_free(struct sp_sodium_sealer *s);

/* Deterministic variant for known-answer tests (tests/vectors/sodium-v1.txt):
 * the message key, the stream header and one ephemeral secret key per
 * recipient are given.  Production code uses sp_sodium_sealer_new().  Returns
 * as it. */
struct sp_sodium_sealer *sp_sodium_sealer_new_det(const unsigned char *const *pks, size_t npk,
                                                  const unsigned char key[SP_SECRETSTREAM_KEYBYTES],
                                                  const unsigned char header[SP_SECRETSTREAM_HEADERBYTES],
                                                  const unsigned char *const *ephemeral_sks,
                                                  sp_write_fn w, void *wctx, char *err, size_t errsz);

/* Stock sink writing into a GMimeStream; returns as sp_write_fn. */
int sp_write_gmime(void *stream /* GMimeStream * */, const void *p, size_t n, char *err, size_t errsz);

/* The copy for the upstream: a multipart/mixed entity (Content-Type header and
 * body, no From/To/Subject: the caller wraps it in a message) holding the
 * text/plain explanation and the sealed message as message.sealpost.  The
 * sealed bytes are written to spool (not secret: e.g. a GMimeStreamFs on an
 * unlinked temporary file, to keep a large copy out of memory); spool NULL
 * means an in-memory stream.  The returned object references spool; the caller
 * g_object_unref()s it.  Returns NULL with err set on failure. */
GMimeObject *sp_sodium_make_copy(const unsigned char *const *pks, size_t npk, const void *msg, size_t len,
                                 GMimeStream *spool, char *err, size_t errsz);
/* Same, reading the original message from a stream until its end. */
GMimeObject *sp_sodium_make_copy_stream(const unsigned char *const *pks, size_t npk, GMimeStream *msg,
                                        GMimeStream *spool, char *err, size_t errsz);
/* The text of the explanation part. */
extern const char sp_sodium_copy_help[];

/* `sealpost open`: in is a received message as saved by a mail client (.eml,
 * CRLF or LF) or a bare sealed file; out receives the original message,
 * byte-identical.  The ciphertext is spooled to an unlinked temporary file
 * ($TMPDIR) and verified completely before the first plaintext byte is
 * written, so a wrong key, a tampered, truncated or extended file or an
 * unknown version writes nothing to out.  Plaintext never touches a
 * temporary file.  Returns 0, or -1 with err set. */
int sp_sodium_open(FILE *in, FILE *out, const struct sp_sodium_keypair *kp, char *err, size_t errsz);

#endif

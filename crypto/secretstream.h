/* secretstream.h - the one chunked AEAD of sealpost (link messages and sodium copies).
 *
 * A thin, strict framing over libsodium's crypto_secretstream_xchacha20poly1305:
 *
 *   header (24 bytes) || chunk_0 || chunk_1 || ... || chunk_n
 *
 * Every chunk holds SP_SECRETSTREAM_CHUNK plaintext bytes and carries the tag
 * MESSAGE, except the last one, which holds 0..SP_SECRETSTREAM_CHUNK bytes and
 * carries the tag FINAL.  Each chunk costs SP_SECRETSTREAM_ABYTES (17) bytes, so
 * chunk boundaries are implied by the fixed size and no length fields exist.
 * The first chunk carries caller-chosen associated data (the container's own
 * header: magic, version, key slots), later chunks none.  Because the stream
 * state chains every chunk, a reader detects a flipped byte, a reordered, dropped
 * or duplicated chunk, a stream cut short (no FINAL), and bytes after FINAL.
 *
 * Writers never emit an empty FINAL chunk unless the whole plaintext is empty;
 * readers accept one anyway.  See docs/formats.md.
 *
 * Errors: 0 / -1 with one line in err (never containing plaintext or keys).
 */
#ifndef SP_SECRETSTREAM_H
#define SP_SECRETSTREAM_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "util.h"

/* Plaintext bytes per chunk: 64 KiB.  The tag+MAC overhead is 17 bytes per chunk
 * (0.03%), a streaming reader or writer holds two 64 KiB buffers whatever the
 * message size, and the per-call cost of libsodium is negligible at this size.
 * Part of the v1 formats: changing it is a new format version. */
#define SP_SECRETSTREAM_CHUNK 65536
#define SP_SECRETSTREAM_KEYBYTES 32
#define SP_SECRETSTREAM_HEADERBYTES 24
#define SP_SECRETSTREAM_ABYTES 17
#define SP_SECRETSTREAM_CT_CHUNK (SP_SECRETSTREAM_CHUNK + SP_SECRETSTREAM_ABYTES)

/* Output sink: write all n bytes or fail (0 / -1, with a line in err). */
typedef int (*sp_write_fn)(void *ctx, const void *p, size_t n, char *err, size_t errsz);
/* Input source: read up to n bytes; returns the count, 0 at end of input, -1 on
 * error (with a line in err). */
typedef ssize_t (*sp_read_fn)(void *ctx, void *p, size_t n, char *err, size_t errsz);

/* Stock sinks and sources; they return as sp_write_fn / sp_read_fn. */
int sp_write_buf(void *buf /* struct sp_buf * */, const void *p, size_t n, char *err, size_t errsz);
int sp_write_stdio(void *fp /* FILE * */, const void *p, size_t n, char *err, size_t errsz);
ssize_t sp_read_stdio(void *fp /* FILE * */, void *p, size_t n, char *err, size_t errsz);
/* Reads from a struct sp_memreader. */
struct sp_memreader {
	const unsigned char *p;
	size_t len;
	size_t off;
};
ssize_t sp_read_mem(void *mr /* struct sp_memreader * */, void *p, size_t n, char *err, size_t errsz);
/* Read exactly n bytes unless the input ends first: returns the count read
 * (< n only at end of input), or -1 with err set. */
ssize_t sp_read_full(sp_read_fn rd, void *ctx, void *p, size_t n, char *err, size_t errsz);

/* Returns the size of the stream (header + chunks) for a plaintext of len bytes. */
size_t sp_secretstream_size(size_t len);

/* Encrypting side.  new() writes the 24-byte header to w at once; update() may be
 * called any number of times with any sizes; finish() writes the FINAL chunk.
 * free() wipes the state and the buffered plaintext.  ad (may be NULL if adlen
 * is 0) is copied and bound to the first chunk.  new() returns the state, or
 * NULL with err set; update() and finish() return 0, or -1 with err set. */
struct sp_secretstream_push;
struct sp_secretstream_push *sp_secretstream_push_new(const unsigned char key[SP_SECRETSTREAM_KEYBYTES],
                                                      const void *ad, size_t adlen,
                                                      sp_write_fn w, void *wctx,
                                                      char *err, size_t errsz);
int sp_secretstream_push_update(struct sp_secretstream_push *s, const void *p, size_t n,
                                char *err, size_t errsz);
int sp_secretstream_push_finish(struct sp_secretstream_push *s, char *err, size_t errsz);
void sp_secretstream_push_free(struct sp_secretstream_push *s);

/* Deterministic variant for known-answer tests: the 24-byte stream header (the
 * only randomness of secretstream) is given instead of drawn from the CSPRNG.
 * Production code uses sp_secretstream_push_new().  Returns as it. */
struct sp_secretstream_push *sp_secretstream_push_new_det(const unsigned char key[SP_SECRETSTREAM_KEYBYTES],
                                                          const unsigned char header[SP_SECRETSTREAM_HEADERBYTES],
                                                          const void *ad, size_t adlen,
                                                          sp_write_fn w, void *wctx,
                                                          char *err, size_t errsz);

/* Decrypting side: reads the header and every chunk from rd until FINAL, checks
 * that the input ends right there, and hands each authenticated plaintext chunk
 * to w (w may be NULL: verify only).  On failure, chunks before the bad one have
 * already reached w: callers that must not release unverified plaintext run a
 * verify-only pass first (see sp_sodium_open) or write into a buffer they wipe.
 * Returns 0, or -1 with err saying what is wrong (authentication failure at chunk
 * N, truncated, trailing data, I/O). */
int sp_secretstream_pull(const unsigned char key[SP_SECRETSTREAM_KEYBYTES],
                         const void *ad, size_t adlen,
                         sp_read_fn rd, void *rctx, sp_write_fn w, void *wctx,
                         char *err, size_t errsz);

#endif

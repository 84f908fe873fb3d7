/* util.h - small helpers shared by every module: errors, buffers, numbers, time.
 *
 * Error convention (used across sealpost, docs/architecture.md "Conventions"):
 * a function that can fail returns 0 on success and -1 on failure (or a result
 * enum when callers must tell outcomes apart), and on failure writes one
 * human-readable line into a caller-owned buffer `char *err` of `errsz` bytes
 * (sp_seterr).  Its prototype's comment says which results it returns.  The
 * message never contains a secret (password, key, message body).
 */
#ifndef SP_UTIL_H
#define SP_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* sp_addr_equal() and the normal form of addresses. */
#include "address.h"

/* Size of the error buffers passed around: one log line, never truncated in practice. */
#define SP_ERRLEN 512

#define SP_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Big-endian 32-bit integers, as the file formats (docs/formats.md), the
 * keybox and OpenPGP packet lengths write them. */
static inline void
sp_put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static inline uint32_t
sp_get_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}
#define SP_PRINTF(f, a) __attribute__((format(printf, f, a)))

void sp_seterr(char *err, size_t errsz, const char *fmt, ...) SP_PRINTF(3, 4);

/* Growable byte buffer with a hard cap: appending past `limit` fails instead of
 * eating memory.  limit == 0 means SIZE_MAX. data is always NUL-terminated. */
struct sp_buf {
	char *data;
	size_t len;
	size_t cap;
	size_t limit;
	size_t hwm;    /* bytes ever written (wiping needs no more than these) */
};

void sp_buf_init(struct sp_buf *b, size_t limit);
/* The appenders return 0, or -1 (nothing appended) when the limit would be
 * passed or memory runs out; no err: the caller names what did not fit. */
int sp_buf_reserve(struct sp_buf *b, size_t extra);
int sp_buf_append(struct sp_buf *b, const void *p, size_t n);
int sp_buf_puts(struct sp_buf *b, const char *s);
int sp_buf_printf(struct sp_buf *b, const char *fmt, ...) SP_PRINTF(2, 3);
/* Detach the data (caller frees; "" when it had none); the buffer becomes empty. */
char *sp_buf_steal(struct sp_buf *b, size_t *len);
void sp_buf_reset(struct sp_buf *b);
void sp_buf_free(struct sp_buf *b);
/* Zero the contents before freeing: for anything that held plaintext or secrets. */
void sp_buf_wipe(struct sp_buf *b);

/* Does p[0..n) have a byte >= 0x80?  Word at a time. */
bool sp_has_8bit(const void *p, size_t n);

/* Abort on allocation failure: only for small, bounded allocations.  Never
 * return NULL. */
void *sp_xmalloc(size_t n);
void *sp_xcalloc(size_t n, size_t m);
char *sp_xstrdup(const char *s);
char *sp_xstrndup(const char *s, size_t n);
char *sp_xasprintf(const char *fmt, ...) SP_PRINTF(1, 2);

/* Free a string that held a secret, wiping it first. */
void sp_free_secret(char *s);
/* Copy p[0..n) into guarded memory (sodium_malloc: locked, canaried, never
 * swapped), NUL-terminated; release with sodium_free.  Aborts when out of
 * memory: only for short secrets (passwords, tokens). */
char *sp_secret_dup(const char *p, size_t n);

/* The parsers return 0, or -1 with err set. */
/* "30", "30s", "5m", "2h", "14d", "1w" -> seconds. */
int sp_parse_duration(const char *s, int64_t *out, char *err, size_t errsz);
/* "52428800", "50M", "64k", "1G" (binary multiples) -> bytes. */
int sp_parse_size(const char *s, uint64_t *out, char *err, size_t errsz);
/* Decimal unsigned integer within [min, max]. */
int sp_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out, char *err, size_t errsz);
/* Format seconds as "3d", "2h", "90s" (exact, largest unit that divides). */
void sp_format_duration(int64_t secs, char *out, size_t outsz);

/* Monotonic clock in milliseconds. */
int64_t sp_now_ms(void);
/* Wall clock, seconds. */
int64_t sp_time(void);

/* ASCII case-insensitive equality / prefix test. */
bool sp_streq_nocase(const char *a, const char *b);
bool sp_has_prefix_nocase(const char *s, const char *prefix);
/* Strip leading/trailing ASCII whitespace in place, returns s. */
char *sp_strstrip(char *s);
/* Copy with truncation, always NUL-terminates.  Returns strlen(src). */
size_t sp_strlcpy(char *dst, const char *src, size_t dstsz);

/* Make the printable-ASCII form of untrusted text for a log line: control and
 * non-ASCII bytes become '?', at most maxlen bytes (then "..."). */
void sp_sanitize(const char *in, size_t inlen, char *out, size_t outsz);

/* Is every byte of s[0..n) in the base64 alphabet (standard or URL-safe,
 * '=' allowed only when padded)?  libsodium 1.0.18 accepts bytes >= 0x80 as
 * digits, which would give one value several spellings. */
bool sp_b64_alphabet_ok(const char *s, size_t n, bool urlsafe, bool padded);

/* 128 random bits as 32 lowercase hex chars (CSPRNG); used for queue/session ids. */
void sp_random_id(char out[33]);

/* Expand a leading "~/" with $HOME. Returns a newly allocated string. */
char *sp_expand_home(const char *path);

/* mkdir -p with the given mode for created components.  Returns 0, or -1 with
 * err set. */
int sp_mkdir_p(const char *path, unsigned mode, char *err, size_t errsz);

/* An anonymous temporary file for ciphertext spools: O_TMPFILE in $TMPDIR (or
 * /tmp), never linked into the file system.  Plaintext never goes here.
 * Returns the descriptor, or -1 with err set. */
int sp_tmpfile(char *err, size_t errsz);

/* Read a whole small file (config-type data) with a size cap.  Returns 0 with
 * *out (caller frees), or -1 with err set. */
int sp_read_file(const char *path, size_t limit, char **out, size_t *outlen, char *err, size_t errsz);

#endif

/* util.c - small helpers shared by every module. */
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

void
sp_seterr(char *err, size_t errsz, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errsz == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errsz, fmt, ap);
	va_end(ap);
}

void
sp_buf_init(struct sp_buf *b, size_t limit)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->hwm = 0;
	b->limit = limit ? limit : SIZE_MAX - 1;
}

int
sp_buf_reserve(struct sp_buf *b, size_t extra)
{
	size_t need, ncap;
	char *p;

	if (extra > b->limit || b->len > b->limit - extra) {
		errno = EFBIG;
		return -1;
	}
	need = b->len + extra + 1;
	/* Whoever reserves writes up to here (some write directly). */
	if (need > b->hwm)
		b->hwm = need;
	if (need <= b->cap)
		return 0;
	ncap = b->cap ? b->cap : 256;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2) {
			ncap = need;
			break;
		}
		ncap *= 2;
	}
	p = realloc(b->data, ncap);
	if (p == NULL)
		return -1;
	b->data = p;
	b->cap = ncap;
	return 0;
}

int
sp_buf_append(struct sp_buf *b, const void *p, size_t n)
{
	if (sp_buf_reserve(b, n) < 0)
		return -1;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int
sp_buf_puts(struct sp_buf *b, const char *s)
{
	return sp_buf_append(b, s, strlen(s));
}

int
sp_buf_printf(struct sp_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || sp_buf_reserve(b, (size_t)n) < 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

char *
sp_buf_steal(struct sp_buf *b, size_t *len)
{
	char *p = b->data;

	if (p == NULL)
		p = sp_xstrdup("");
	if (len)
		*len = b->len;
	b->data = NULL;
	b->len = b->cap = b->hwm = 0;
	return p;
}

void
sp_buf_reset(struct sp_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void
sp_buf_free(struct sp_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = b->hwm = 0;
}

void
sp_buf_wipe(struct sp_buf *b)
{
	/* What was written, not the whole capacity: zeroing untouched pages would
	 * only fault them in. */
	if (b->data)
		sodium_memzero(b->data, b->hwm < b->cap ? b->hwm : b->cap);
	sp_buf_free(b);
}

bool
sp_has_8bit(const void *p, size_t n)
{
	const unsigned char *c = p;
	uint64_t acc = 0, w;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		memcpy(&w, c + i, 8);
		acc |= w;
		if (acc & 0x8080808080808080ULL)
			return true;
	}
	for (; i < n; i++)
		if (c[i] & 0x80)
			return true;
	return false;
}

void *
sp_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		abort();
	return p;
}

void *
sp_xcalloc(size_t n, size_t m)
{
	void *p = calloc(n ? n : 1, m ? m : 1);

	if (p == NULL)
		abort();
	return p;
}

char *
sp_xstrdup(const char *s)
{
	char *p = strdup(s ? s : "");

	if (p == NULL)
		abort();
	return p;
}

char *
sp_xstrndup(const char *s, size_t n)
{
	char *p = strndup(s, n);

	if (p == NULL)
		abort();
	return p;
}

char *
sp_xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *p;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&p, fmt, ap);
	va_end(ap);
	if (n < 0)
		abort();
	return p;
}

void
sp_free_secret(char *s)
{
	if (s == NULL)
		return;
	sodium_memzero(s, strlen(s));
	free(s);
}

char *
sp_secret_dup(const char *p, size_t n)
{
	char *s = sodium_malloc(n + 1);

	if (s == NULL)
		abort();
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

int
sp_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out, char *err, size_t errsz)
{
	unsigned long long v;
	char *end;

	if (s == NULL || *s == '\0' || !isdigit((unsigned char)*s)) {
		sp_seterr(err, errsz, "not a number: '%s'", s ? s : "");
		return -1;
	}
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno == ERANGE || *end != '\0') {
		sp_seterr(err, errsz, "not a number: '%s'", s);
		return -1;
	}
	if (v < min || v > max) {
		sp_seterr(err, errsz, "%llu is out of range (%" PRIu64 "..%" PRIu64 ")", v, min, max);
		return -1;
	}
	*out = v;
	return 0;
}

static int
parse_scaled(const char *s, const char *units, const uint64_t *mult, uint64_t *out,
             const char *what, char *err, size_t errsz)
{
	unsigned long long v;
	char *end;
	const char *u;
	uint64_t m = 1;

	if (s == NULL || !isdigit((unsigned char)*s)) {
		sp_seterr(err, errsz, "not a %s: '%s'", what, s ? s : "");
		return -1;
	}
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno == ERANGE) {
		sp_seterr(err, errsz, "%s too large: '%s'", what, s);
		return -1;
	}
	if (*end != '\0') {
		if (end[1] != '\0' || (u = strchr(units, *end)) == NULL) {
			sp_seterr(err, errsz, "not a %s: '%s' (units: %s)", what, s, units);
			return -1;
		}
		m = mult[u - units];
	}
	if (v > UINT64_MAX / m) {
		sp_seterr(err, errsz, "%s too large: '%s'", what, s);
		return -1;
	}
	*out = v * m;
	return 0;
}

int
sp_parse_duration(const char *s, int64_t *out, char *err, size_t errsz)
{
	static const uint64_t mult[] = { 1, 60, 3600, 86400, 604800 };
	uint64_t v;

	if (parse_scaled(s, "smhdw", mult, &v, "duration", err, errsz) < 0)
		return -1;
	if (v > (uint64_t)INT32_MAX * 10) {
		sp_seterr(err, errsz, "duration too large: '%s'", s);
		return -1;
	}
	*out = (int64_t)v;
	return 0;
}

int
sp_parse_size(const char *s, uint64_t *out, char *err, size_t errsz)
{
	static const uint64_t mult[] = { 1024, 1024, 1048576, 1048576, 1073741824, 1073741824 };

	return parse_scaled(s, "kKmMgG", mult, out, "size", err, errsz);
}

void
sp_format_duration(int64_t secs, char *out, size_t outsz)
{
	if (secs != 0 && secs % 86400 == 0)
		snprintf(out, outsz, "%" PRId64 "d", secs / 86400);
	else if (secs != 0 && secs % 3600 == 0)
		snprintf(out, outsz, "%" PRId64 "h", secs / 3600);
	else if (secs != 0 && secs % 60 == 0)
		snprintf(out, outsz, "%" PRId64 "m", secs / 60);
	else
		snprintf(out, outsz, "%" PRId64 "s", secs);
}

int64_t
sp_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
sp_time(void)
{
	return (int64_t)time(NULL);
}

bool
sp_streq_nocase(const char *a, const char *b)
{
	for (; *a && *b; a++, b++)
		if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
			return false;
	return *a == *b;
}

bool
sp_has_prefix_nocase(const char *s, const char *prefix)
{
	for (; *prefix; s++, prefix++)
		if (tolower((unsigned char)*s) != tolower((unsigned char)*prefix))
			return false;
	return true;
}

char *
sp_strstrip(char *s)
{
	char *p = s, *e;

	while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
		p++;
	if (p != s)
		memmove(s, p, strlen(p) + 1);
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
		*--e = '\0';
	return s;
}

size_t
sp_strlcpy(char *dst, const char *src, size_t dstsz)
{
	size_t n = strlen(src);

	if (dstsz) {
		size_t c = n < dstsz - 1 ? n : dstsz - 1;
		memcpy(dst, src, c);
		dst[c] = '\0';
	}
	return n;
}

void
sp_sanitize(const char *in, size_t inlen, char *out, size_t outsz)
{
	size_t i, o = 0;

	if (outsz == 0)
		return;
	for (i = 0; i < inlen && o + 1 < outsz; i++) {
		unsigned char c = (unsigned char)in[i];
		out[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	if (i < inlen && outsz > 4) {
		o = o > outsz - 4 ? outsz - 4 : o;
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
}

bool
sp_b64_alphabet_ok(const char *s, size_t n, bool urlsafe, bool padded)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (isalnum(c) && c < 0x80)
			continue;
		if (urlsafe ? (c == '-' || c == '_') : (c == '+' || c == '/'))
			continue;
		if (padded && c == '=')
			continue;
		return false;
	}
	return true;
}

void
sp_random_id(char out[33])
{
	unsigned char raw[16];

	randombytes_buf(raw, sizeof raw);
	sodium_bin2hex(out, 33, raw, sizeof raw);
}

char *
sp_expand_home(const char *path)
{
	const char *home;

	if (path[0] == '~' && (path[1] == '/' || path[1] == '\0')) {
		home = getenv("HOME");
		if (home == NULL || *home == '\0')
			home = "/";
		return sp_xasprintf("%s%s", home, path + 1);
	}
	return sp_xstrdup(path);
}

int
sp_mkdir_p(const char *path, unsigned mode, char *err, size_t errsz)
{
	char *p = sp_xstrdup(path), *s;
	int rv = -1;

	for (s = p + 1; ; s++) {
		if (*s == '/' || *s == '\0') {
			char c = *s;
			*s = '\0';
			if (mkdir(p, mode) < 0 && errno != EEXIST) {
				sp_seterr(err, errsz, "%s: cannot create directory: %s", p, strerror(errno));
				goto out;
			}
			*s = c;
			if (c == '\0')
				break;
		}
	}
	rv = 0;
out:
	free(p);
	return rv;
}

int
sp_read_file(const char *path, size_t limit, char **out, size_t *outlen, char *err, size_t errsz)
{
	struct sp_buf b;
	char chunk[4096];
	ssize_t n;
	int fd, rv = -1;

	sp_buf_init(&b, limit);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		sp_seterr(err, errsz, "%s: %s", path, strerror(errno));
		return -1;
	}
	for (;;) {
		n = read(fd, chunk, sizeof chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			sp_seterr(err, errsz, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		if (sp_buf_append(&b, chunk, (size_t)n) < 0) {
			sp_seterr(err, errsz, "%s: larger than %zu bytes", path, limit);
			goto out;
		}
	}
	if (b.data == NULL)
		sp_buf_append(&b, "", 0);
	*out = sp_buf_steal(&b, outlen);
	rv = 0;
out:
	sodium_memzero(chunk, sizeof chunk);
	if (rv < 0)
		sp_buf_wipe(&b);
	close(fd);
	return rv;
}

int
sp_tmpfile(char *err, size_t errsz)
{
	const char *dir = getenv("TMPDIR");
	char *tmpl;
	int fd;

	if (dir == NULL || *dir != '/')
		dir = "/tmp";
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	/* File systems without O_TMPFILE: create, then unlink at once. */
	tmpl = sp_xasprintf("%s/sealpost-XXXXXX", dir);
	fd = mkostemp(tmpl, O_CLOEXEC);
	if (fd >= 0)
		unlink(tmpl);
	else
		sp_seterr(err, errsz, "cannot create a temporary file in %s: %s", dir, strerror(errno));
	free(tmpl);
	return fd;
}

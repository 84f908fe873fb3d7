/* sodium_keys.c - X25519 key files, public lines and the [sodium] recipients file. */
#include "sodium_keys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>
#include <sodium.h>

#define PUB_B64LEN 44   /* base64 of 32 bytes, padded */
#define SEC_B64LEN 88   /* base64 of 64 bytes, padded */

_Static_assert(SP_SODIUM_PUBLINE_LEN == sizeof SP_SODIUM_PUBLIC_PREFIX - 1 + PUB_B64LEN, "public line length");
_Static_assert(PUB_B64LEN + 1 == sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL), "b64 32");
_Static_assert(SEC_B64LEN + 1 == sodium_base64_ENCODED_LEN(64, sodium_base64_VARIANT_ORIGINAL), "b64 64");
_Static_assert(SP_SODIUM_PKBYTES == crypto_box_PUBLICKEYBYTES, "pk size");
_Static_assert(SP_SODIUM_SKBYTES == crypto_box_SECRETKEYBYTES, "sk size");

/* One line of a text buffer, without its "\n" and a trailing "\r". */
struct line_iter {
	const char *p, *end;
	unsigned lineno;
};

static bool
next_line(struct line_iter *it, const char **line, size_t *len)
{
	const char *nl;

	if (it->p >= it->end)
		return false;
	nl = memchr(it->p, '\n', (size_t)(it->end - it->p));
	*line = it->p;
	*len = (size_t)((nl ? nl : it->end) - it->p);
	it->p = nl ? nl + 1 : it->end;
	it->lineno++;
	if (*len > 0 && (*line)[*len - 1] == '\r')
		(*len)--;
	return true;
}

static bool
is_space(char c)
{
	return c == ' ' || c == '\t';
}

static bool
has_prefix_n(const char *s, size_t n, const char *prefix)
{
	size_t pl = strlen(prefix);

	return n >= pl && memcmp(s, prefix, pl) == 0;
}

/* Trim blanks on both sides. */
static void
trim(const char **s, size_t *n)
{
	while (*n > 0 && is_space(**s))
		(*s)++, (*n)--;
	while (*n > 0 && is_space((*s)[*n - 1]))
		(*n)--;
}

/* ---- public keys ---- */

void
sp_sodium_format_public(const unsigned char pk[SP_SODIUM_PKBYTES], char out[SP_SODIUM_PUBLINE_LEN + 1])
{
	size_t plen = sizeof SP_SODIUM_PUBLIC_PREFIX - 1;

	memcpy(out, SP_SODIUM_PUBLIC_PREFIX, plen);
	sodium_bin2base64(out + plen, PUB_B64LEN + 1, pk, SP_SODIUM_PKBYTES, sodium_base64_VARIANT_ORIGINAL);
}

/* A public key of small order makes every shared secret zero: refuse it.
 * libsodium's crypto_scalarmult() fails exactly for those points. */
static bool
usable_public(const unsigned char pk[SP_SODIUM_PKBYTES])
{
	static const unsigned char scalar[crypto_scalarmult_SCALARBYTES] = { 9, 8, 7, 6, 5, 4, 3, 2, 1 };
	unsigned char q[crypto_scalarmult_BYTES];
	int rv = crypto_scalarmult(q, scalar, pk);

	sodium_memzero(q, sizeof q);
	return rv == 0;
}

static int
parse_public_n(const char *s, size_t n, unsigned char pk[SP_SODIUM_PKBYTES], char *err, size_t errsz)
{
	size_t plen = sizeof SP_SODIUM_PUBLIC_PREFIX - 1, binlen = 0;
	const char *end = NULL;

	if (n < plen || memcmp(s, SP_SODIUM_PUBLIC_PREFIX, plen) != 0) {
		sp_seterr(err, errsz, "a public key starts with '%s'", SP_SODIUM_PUBLIC_PREFIX);
		return -1;
	}
	if (n - plen != PUB_B64LEN) {
		sp_seterr(err, errsz, "a public key has %d base64 characters after '%s', this one %zu",
		          PUB_B64LEN, SP_SODIUM_PUBLIC_PREFIX, n - plen);
		return -1;
	}
	if (!sp_b64_alphabet_ok(s + plen, PUB_B64LEN, false, true) ||
	    sodium_base642bin(pk, SP_SODIUM_PKBYTES, s + plen, PUB_B64LEN, NULL, &binlen, &end,
	                      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    binlen != SP_SODIUM_PKBYTES || end != s + n) {
		sp_seterr(err, errsz, "the public key is not valid base64");
		return -1;
	}
	if (!usable_public(pk)) {
		sp_seterr(err, errsz, "not a usable X25519 public key (small-order point)");
		return -1;
	}
	return 0;
}

int
sp_sodium_parse_public(const char *s, unsigned char pk[SP_SODIUM_PKBYTES], char *err, size_t errsz)
{
	return parse_public_n(s, strlen(s), pk, err, errsz);
}

/* ---- secret key files ---- */

void
sp_sodium_keypair_wipe(struct sp_sodium_keypair *kp)
{
	sodium_memzero(kp, sizeof *kp);
}

int
sp_sodium_parse_secret(const char *name, const char *text, size_t len, struct sp_sodium_keypair *kp,
                       char *err, size_t errsz)
{
	struct line_iter it = { text, text + len, 0 };
	size_t plen = sizeof SP_SODIUM_SECRET_PREFIX - 1, n, binlen;
	unsigned char raw[SP_SODIUM_SKBYTES + SP_SODIUM_PKBYTES];
	unsigned char derived[SP_SODIUM_PKBYTES];
	const char *line, *end;
	unsigned found = 0;
	int rv = -1;

	if (memchr(text, '\0', len) != NULL) {
		sp_seterr(err, errsz, "%s: not a text file (NUL byte)", name);
		goto out;
	}
	while (next_line(&it, &line, &n)) {
		trim(&line, &n);
		if (n == 0 || line[0] == '#')
			continue;
		if (has_prefix_n(line, n, SP_SODIUM_PUBLIC_PREFIX)) {
			sp_seterr(err, errsz, "%s:%u: this is a public key; opening needs the secret key file "
			          "made by 'sealpost keygen'", name, it.lineno);
			goto out;
		}
		/* Never quote the line: it may hold key material. */
		if (!has_prefix_n(line, n, SP_SODIUM_SECRET_PREFIX)) {
			sp_seterr(err, errsz, "%s:%u: unexpected line (a key file holds comments and one '%s' line)",
			          name, it.lineno, SP_SODIUM_SECRET_PREFIX);
			goto out;
		}
		if (found) {
			sp_seterr(err, errsz, "%s:%u: a second secret key (the first is on line %u)", name,
			          it.lineno, found);
			goto out;
		}
		found = it.lineno;
		binlen = 0;
		end = NULL;
		if (n - plen != SEC_B64LEN || !sp_b64_alphabet_ok(line + plen, n - plen, false, true) ||
		    sodium_base642bin(raw, sizeof raw, line + plen, n - plen, NULL, &binlen, &end,
		                      sodium_base64_VARIANT_ORIGINAL) != 0 ||
		    binlen != sizeof raw || end != line + n) {
			sp_seterr(err, errsz, "%s:%u: damaged secret key (expected %d base64 characters after '%s')",
			          name, it.lineno, SEC_B64LEN, SP_SODIUM_SECRET_PREFIX);
			goto out;
		}
	}
	if (!found) {
		sp_seterr(err, errsz, "%s: no '%s' line: not a sealpost secret key file", name, SP_SODIUM_SECRET_PREFIX);
		goto out;
	}
	crypto_scalarmult_base(derived, raw);
	if (sodium_memcmp(derived, raw + SP_SODIUM_SKBYTES, SP_SODIUM_PKBYTES) != 0) {
		sp_seterr(err, errsz, "%s:%u: damaged key: the public half does not belong to the secret half",
		          name, found);
		goto out;
	}
	memcpy(kp->sk, raw, SP_SODIUM_SKBYTES);
	memcpy(kp->pk, raw + SP_SODIUM_SKBYTES, SP_SODIUM_PKBYTES);
	rv = 0;
out:
	sodium_memzero(raw, sizeof raw);
	return rv;
}

int
sp_sodium_load_secret(const char *path, struct sp_sodium_keypair *kp, char *err, size_t errsz)
{
	struct stat st;
	char *text = NULL;
	size_t len = 0;
	int rv = -1;

	if (stat(path, &st) < 0) {
		sp_seterr(err, errsz, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		sp_seterr(err, errsz, "%s: not a regular file", path);
		return -1;
	}
	/* Like ssh: a secret key others can read is no longer secret, and one
	 * others can write may have been swapped. */
	if (st.st_mode & 077) {
		sp_seterr(err, errsz, "%s: group or others may access this secret key (mode %04o); run: chmod 600 %s",
		          path, (unsigned)(st.st_mode & 07777), path);
		return -1;
	}
	if (sp_read_file(path, SP_SODIUM_KEYFILE_MAX, &text, &len, err, errsz) < 0)
		return -1;
	rv = sp_sodium_parse_secret(path, text, len, kp, err, errsz);
	sodium_memzero(text, len);
	free(text);
	return rv;
}

static int
write_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int
sp_sodium_keygen(const char *path, char publine[SP_SODIUM_PUBLINE_LEN + 1], char *err, size_t errsz)
{
	struct sp_sodium_keypair kp;
	unsigned char raw[SP_SODIUM_SKBYTES + SP_SODIUM_PKBYTES];
	char b64[SEC_B64LEN + 1];
	char pub[SP_SODIUM_PUBLINE_LEN + 1];
	struct sp_buf text;
	bool created = false;
	int fd = -1, rv = -1;

	sp_buf_init(&text, 0);
	crypto_box_keypair(kp.pk, kp.sk);
	memcpy(raw, kp.sk, SP_SODIUM_SKBYTES);
	memcpy(raw + SP_SODIUM_SKBYTES, kp.pk, SP_SODIUM_PKBYTES);
	sodium_bin2base64(b64, sizeof b64, raw, sizeof raw, sodium_base64_VARIANT_ORIGINAL);
	sp_sodium_format_public(kp.pk, pub);
	/* Reserve first so the buffer never moves while it holds the key. */
	if (sp_buf_reserve(&text, 1024) < 0 ||
	    sp_buf_printf(&text,
	                  "# sealpost secret key: it opens every message sealed to the public key\n"
	                  "# below.  Keep it private (mode 0600) and keep a backup.\n"
	                  "# public: %s\n"
	                  "%s%s\n", pub, SP_SODIUM_SECRET_PREFIX, b64) < 0) {
		sp_seterr(err, errsz, "out of memory");
		goto out;
	}
	/* O_EXCL: never overwrite (nor follow a symlink planted at path). */
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		if (errno == EEXIST)
			sp_seterr(err, errsz, "%s: already exists; refusing to overwrite it", path);
		else
			sp_seterr(err, errsz, "%s: %s", path, strerror(errno));
		goto out;
	}
	created = true;
	/* The umask can only have removed bits; make it exactly 0600. */
	if (fchmod(fd, 0600) < 0 || write_all(fd, text.data, text.len) < 0 || fsync(fd) < 0) {
		sp_seterr(err, errsz, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (close(fd) < 0) {
		fd = -1;
		sp_seterr(err, errsz, "%s: %s", path, strerror(errno));
		goto out;
	}
	fd = -1;
	memcpy(publine, pub, sizeof pub);
	rv = 0;
out:
	if (fd >= 0)
		close(fd);
	if (rv < 0 && created)
		unlink(path); /* a half-written key file is worse than none */
	sodium_memzero(&kp, sizeof kp);
	sodium_memzero(raw, sizeof raw);
	sodium_memzero(b64, sizeof b64);
	sp_buf_wipe(&text);
	return rv;
}

/* ---- recipients file ---- */

struct rcpt {
	unsigned char pk[SP_SODIUM_PKBYTES];
	unsigned lineno;
};

struct sp_sodium_recipients {
	GHashTable *by_addr; /* address in its normal form (address.h) -> struct rcpt */
};

/* A bare addr-spec as it appears in RCPT TO: local@domain, no brackets,
 * blanks, quotes or list separators.  Non-ASCII bytes pass (SMTPUTF8). */
static int
check_address(const char *a, size_t n, char *err, size_t errsz)
{
	const char *at = NULL;
	size_t i;

	if (n > SP_SODIUM_ADDRESS_MAX) {
		sp_seterr(err, errsz, "address longer than %d characters", SP_SODIUM_ADDRESS_MAX);
		return -1;
	}
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)a[i];

		if (c == '@') {
			if (at != NULL) {
				sp_seterr(err, errsz, "more than one '@' in the address");
				return -1;
			}
			at = a + i;
		} else if (c < 0x21 || c == 0x7f || strchr("<>()[]\\,;:\"", c) != NULL) {
			sp_seterr(err, errsz, "character '%c' not allowed in a bare address", (c < 0x21 || c == 0x7f) ? '?' : c);
			return -1;
		}
	}
	if (at == NULL || at == a || at == a + n - 1) {
		sp_seterr(err, errsz, "not an address (expected local@domain)");
		return -1;
	}
	return 0;
}

static void
rcpt_free(gpointer p)
{
	g_free(p);
}

int
sp_sodium_recipients_parse(const char *name, const char *text, size_t len,
                           struct sp_sodium_recipients **out, char *err, size_t errsz)
{
	struct sp_sodium_recipients *r = g_new0(struct sp_sodium_recipients, 1);
	struct line_iter it = { text, text + len, 0 };
	const char *line, *addr, *key, *p, *e;
	size_t n, alen, klen;
	char why[SP_ERRLEN], shown[96];
	int rv = -1;

	r->by_addr = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, rcpt_free);
	while (next_line(&it, &line, &n)) {
		struct rcpt *rc, *prev;
		char *lower;

		if (memchr(line, '\0', n) != NULL) {
			sp_seterr(err, errsz, "%s:%u: NUL byte", name, it.lineno);
			goto out;
		}
		trim(&line, &n);
		if (n == 0 || line[0] == '#')
			continue;
		e = line + n;
		for (p = addr = line; p < e && !is_space(*p); p++)
			;
		alen = (size_t)(p - addr);
		while (p < e && is_space(*p))
			p++;
		for (key = p; p < e && !is_space(*p); p++)
			;
		klen = (size_t)(p - key);
		while (p < e && is_space(*p))
			p++;
		sp_sanitize(addr, alen, shown, sizeof shown);
		if (has_prefix_n(addr, alen, SP_SODIUM_PUBLIC_PREFIX) ||
		    has_prefix_n(addr, alen, SP_SODIUM_SECRET_PREFIX)) {
			sp_seterr(err, errsz, "%s:%u: the line starts with a key; expected 'ADDRESS %s...'",
			          name, it.lineno, SP_SODIUM_PUBLIC_PREFIX);
			goto out;
		}
		if (check_address(addr, alen, why, sizeof why) < 0) {
			sp_seterr(err, errsz, "%s:%u: '%s': %s", name, it.lineno, shown, why);
			goto out;
		}
		if (klen == 0) {
			sp_seterr(err, errsz, "%s:%u: no public key after '%s' (expected 'ADDRESS %s...')",
			          name, it.lineno, shown, SP_SODIUM_PUBLIC_PREFIX);
			goto out;
		}
		if (p < e && *p != '#') {
			sp_seterr(err, errsz, "%s:%u: unexpected text after the key (comments start with '#')",
			          name, it.lineno);
			goto out;
		}
		if (has_prefix_n(key, klen, SP_SODIUM_SECRET_PREFIX)) {
			sp_seterr(err, errsz, "%s:%u: this is a SECRET key; remove it from this file at once and use the "
			          "public line ('%s...') that 'sealpost keygen' printed", name, it.lineno,
			          SP_SODIUM_PUBLIC_PREFIX);
			goto out;
		}
		rc = g_new0(struct rcpt, 1);
		rc->lineno = it.lineno;
		if (parse_public_n(key, klen, rc->pk, why, sizeof why) < 0) {
			g_free(rc);
			sp_seterr(err, errsz, "%s:%u: bad public key for '%s': %s", name, it.lineno, shown, why);
			goto out;
		}
		{
			/* The key is the normal form (address.h): zoë@exämple.net
			 * and zoë@xn--exmple-cua.net are one recipient. */
			char *given = g_strndup(addr, alen), norm[SP_ADDR_MAX];
			int bad = sp_addr_normalize(given, norm, sizeof norm, why, sizeof why);
			g_free(given);
			if (bad < 0) {
				g_free(rc);
				sp_seterr(err, errsz, "%s:%u: '%s': %s", name, it.lineno, shown, why);
				goto out;
			}
			lower = g_strdup(norm);
		}
		prev = g_hash_table_lookup(r->by_addr, lower);
		if (prev != NULL) {
			sp_seterr(err, errsz, "%s:%u: '%s' is listed twice (first on line %u)", name, it.lineno,
			          shown, prev->lineno);
			g_free(lower);
			g_free(rc);
			goto out;
		}
		g_hash_table_insert(r->by_addr, lower, rc);
	}
	*out = r;
	r = NULL;
	rv = 0;
out:
	sp_sodium_recipients_free(r);
	return rv;
}

int
sp_sodium_recipients_load(const char *path, struct sp_sodium_recipients **out, char *err, size_t errsz)
{
	char *text = NULL;
	size_t len = 0;
	int rv;

	if (sp_read_file(path, SP_SODIUM_RECIPIENTS_FILE_MAX, &text, &len, err, errsz) < 0)
		return -1;
	rv = sp_sodium_recipients_parse(path, text, len, out, err, errsz);
	free(text);
	return rv;
}

const unsigned char *
sp_sodium_recipients_lookup(const struct sp_sodium_recipients *r, const char *addr)
{
	struct rcpt *rc;
	char norm[SP_ADDR_MAX], why[SP_ERRLEN];

	if (r == NULL || addr == NULL)
		return NULL;
	if (sp_addr_normalize(addr, norm, sizeof norm, why, sizeof why) < 0)
		return NULL;
	rc = g_hash_table_lookup(r->by_addr, norm);
	return rc ? rc->pk : NULL;
}

size_t
sp_sodium_recipients_count(const struct sp_sodium_recipients *r)
{
	return r ? g_hash_table_size(r->by_addr) : 0;
}

void
sp_sodium_recipients_free(struct sp_sodium_recipients *r)
{
	if (r == NULL)
		return;
	g_hash_table_destroy(r->by_addr);
	g_free(r);
}

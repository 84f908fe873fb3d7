/* pgp_packets.c - the OpenPGP packet walker, armor decoder and encoder (see pgp_packets.h). */
#include "pgp_packets.h"

#include <string.h>

#include <glib.h>
#include <sodium.h>

enum {
	TAG_PKESK = 1,
	TAG_SKESK = 3,
	TAG_SED = 9,
	TAG_SEIPD = 18,
	TAG_OCB = 20,   /* LibrePGP's OCB encrypted data (GnuPG 2.3+) */
};

/* One packet header: tag, body length, and whether the body continues in
 * partial chunks (new format only). */
struct pkt_hdr {
	unsigned tag;
	size_t hdrlen;   /* bytes of the header */
	size_t len;      /* body bytes (of the first chunk when partial) */
	bool partial;
	bool to_end;     /* old format, indeterminate length */
};

/* A new-format body length at p (RFC 9580 4.2.1): 0 ok, -1 truncated. */
static int
new_length(const unsigned char *p, size_t n, size_t *used, size_t *len, bool *partial)
{
	if (n < 1)
		return -1;
	*partial = false;
	if (p[0] < 192) {
		*used = 1;
		*len = p[0];
	} else if (p[0] < 224) {
		if (n < 2)
			return -1;
		*used = 2;
		*len = ((size_t)(p[0] - 192) << 8) + p[1] + 192;
	} else if (p[0] < 255) {
		*used = 1;
		*len = (size_t)1 << (p[0] & 0x1f);
		*partial = true;
	} else {
		if (n < 5)
			return -1;
		*used = 5;
		*len = sp_get_be32(p + 1);
	}
	return 0;
}

static int
read_header(const unsigned char *p, size_t n, struct pkt_hdr *h, char *err, size_t errsz)
{
	size_t used;

	memset(h, 0, sizeof *h);
	if ((p[0] & 0x80) == 0) {
		sp_seterr(err, errsz, "not an OpenPGP packet (byte 0x%02x)", p[0]);
		return -1;
	}
	if (p[0] & 0x40) {
		h->tag = p[0] & 0x3f;
		if (new_length(p + 1, n - 1, &used, &h->len, &h->partial) < 0)
			goto truncated;
		h->hdrlen = 1 + used;
		return 0;
	}
	h->tag = (p[0] >> 2) & 0x0f;
	switch (p[0] & 3) {
	case 0:
		if (n < 2)
			goto truncated;
		h->len = p[1];
		h->hdrlen = 2;
		break;
	case 1:
		if (n < 3)
			goto truncated;
		h->len = ((size_t)p[1] << 8) | p[2];
		h->hdrlen = 3;
		break;
	case 2:
		if (n < 5)
			goto truncated;
		h->len = sp_get_be32(p + 1);
		h->hdrlen = 5;
		break;
	default:
		h->to_end = true;
		h->hdrlen = 1;
		h->len = n - 1;
		break;
	}
	return 0;
truncated:
	sp_seterr(err, errsz, "truncated packet header");
	return -1;
}

/* Skip the body of a data packet that may come in partial chunks; *end is
 * where the packet ends.  0 ok; -1 with err. */
static int
skip_body(const unsigned char *p, size_t n, const struct pkt_hdr *h, size_t *end, char *err, size_t errsz)
{
	size_t off = h->hdrlen, len = h->len, used;
	bool partial = h->partial;

	/* RFC 9580 4.2.1.4: the first partial length is at least 512 octets. */
	if (partial && len < 512) {
		sp_seterr(err, errsz, "first partial body length %zu is below 512", len);
		return -1;
	}
	for (;;) {
		if (len > n - off) {
			sp_seterr(err, errsz, "truncated packet (tag %u)", h->tag);
			return -1;
		}
		off += len;
		if (!partial)
			break;
		/* Each chunk is at least one byte plus its length octet, so the
		 * loop ends within n steps. */
		if (new_length(p + off, n - off, &used, &len, &partial) < 0) {
			sp_seterr(err, errsz, "truncated partial body (tag %u)", h->tag);
			return -1;
		}
		off += used;
	}
	*end = off;
	return 0;
}

int
sp_pgp_packets_check(const unsigned char *p, size_t n, char *err, size_t errsz)
{
	size_t off = 0, esk = 0, end;
	struct pkt_hdr h;

	if (n == 0) {
		sp_seterr(err, errsz, "no OpenPGP packets");
		return -1;
	}
	while (off < n) {
		const unsigned char *q = p + off;
		size_t rest = n - off;

		if (read_header(q, rest, &h, err, errsz) < 0)
			return -1;
		switch (h.tag) {
		case TAG_PKESK:
		case TAG_SKESK:
			if (h.partial || h.to_end) {
				sp_seterr(err, errsz, "session-key packet with %s length",
				          h.partial ? "a partial" : "an indeterminate");
				return -1;
			}
			if (h.len < 1 || h.len > rest - h.hdrlen) {
				sp_seterr(err, errsz, "%s session-key packet", h.len < 1 ? "empty" : "truncated");
				return -1;
			}
			/* Versions: PKESK 3 (RFC 4880) or 6 (RFC 9580); SKESK 4, 5
			 * (LibrePGP) or 6. */
			if (h.tag == TAG_PKESK ? (q[h.hdrlen] != 3 && q[h.hdrlen] != 6)
			                       : (q[h.hdrlen] < 4 || q[h.hdrlen] > 6)) {
				sp_seterr(err, errsz, "%s version %u", h.tag == TAG_PKESK ? "PKESK" : "SKESK",
				          q[h.hdrlen]);
				return -1;
			}
			if (++esk > SP_PGP_MAX_ESK) {
				sp_seterr(err, errsz, "more than %d session-key packets", SP_PGP_MAX_ESK);
				return -1;
			}
			off += h.hdrlen + h.len;
			break;
		case TAG_SEIPD:
		case TAG_OCB:
			if (esk == 0) {
				sp_seterr(err, errsz, "encrypted data without a session-key packet");
				return -1;
			}
			if (skip_body(q, rest, &h, &end, err, errsz) < 0)
				return -1;
			if (h.len < 2 || (h.tag == TAG_SEIPD ? (q[h.hdrlen] != 1 && q[h.hdrlen] != 2)
			                                      : q[h.hdrlen] != 1)) {
				sp_seterr(err, errsz, h.len < 2 ? "empty encrypted data packet"
				                                : "encrypted data packet of an unknown version");
				return -1;
			}
			if (end != rest) {
				sp_seterr(err, errsz, "%zu bytes after the encrypted data packet", rest - end);
				return -1;
			}
			return 0;
		case TAG_SED:
			sp_seterr(err, errsz, "encrypted data without integrity protection (SED, tag 9)");
			return -1;
		default:
			sp_seterr(err, errsz, "OpenPGP packet tag %u where an encrypted message has none", h.tag);
			return -1;
		}
	}
	sp_seterr(err, errsz, "session-key packets without encrypted data");
	return -1;
}

/* RFC 4880 6.1. */
static uint32_t
crc24(uint32_t crc, const unsigned char *p, size_t n)
{
	size_t i;
	int b;

	for (i = 0; i < n; i++) {
		crc ^= (uint32_t)p[i] << 16;
		for (b = 0; b < 8; b++) {
			crc <<= 1;
			if (crc & 0x1000000)
				crc ^= 0x1864cfb;
		}
	}
	return crc & 0xffffff;
}

void
sp_pgp_armor_encode(const unsigned char *p, size_t n, struct sp_buf *out)
{
	const size_t chunk = SP_PGP_ARMOR_LINE / 4 * 3;
	char line[SP_PGP_ARMOR_LINE + 1];
	unsigned char c[3];
	char cs[8];
	uint32_t crc = crc24(0xb704ce, p, n);

	sp_buf_printf(out, "-----BEGIN PGP MESSAGE-----\r\n\r\n");
	for (size_t off = 0; off < n; off += chunk) {
		size_t k = n - off < chunk ? n - off : chunk;
		sodium_bin2base64(line, sizeof line, p + off, k, sodium_base64_VARIANT_ORIGINAL);
		sp_buf_printf(out, "%s\r\n", line);
	}
	c[0] = (unsigned char)(crc >> 16);
	c[1] = (unsigned char)(crc >> 8);
	c[2] = (unsigned char)crc;
	sodium_bin2base64(cs, sizeof cs, c, 3, sodium_base64_VARIANT_ORIGINAL);
	sp_buf_printf(out, "=%s\r\n-----END PGP MESSAGE-----\r\n", cs);
}

/* The next line of [*p, end) without its line break and trailing blanks. */
static bool
next_line(const char **p, const char *end, const char **line, size_t *len)
{
	const char *s = *p, *nl;

	if (s >= end)
		return false;
	nl = memchr(s, '\n', (size_t)(end - s));
	*p = nl ? nl + 1 : end;
	if (nl == NULL)
		nl = end;
	while (nl > s && (nl[-1] == '\r' || nl[-1] == ' ' || nl[-1] == '\t'))
		nl--;
	*line = s;
	*len = (size_t)(nl - s);
	return true;
}

static bool
line_is(const char *line, size_t len, const char *s)
{
	return len == strlen(s) && memcmp(line, s, len) == 0;
}

static bool
is_b64(char c)
{
	return g_ascii_isalnum(c) || c == '+' || c == '/';
}

/* Armor header keys a producer of PGP MESSAGE blocks writes (RFC 4880 6.2,
 * RFC 9580 6.2). */
static bool
armor_header_ok(const char *line, size_t len)
{
	static const char *const keys[] = { "Version", "Comment", "Charset", "MessageID" };
	size_t i, k;

	for (i = 0; i < G_N_ELEMENTS(keys); i++) {
		k = strlen(keys[i]);
		if (len >= k + 2 && memcmp(line, keys[i], k) == 0 && line[k] == ':' && line[k + 1] == ' ')
			return true;
	}
	return false;
}

int
sp_pgp_armor_decode(const char *p, size_t n, struct sp_buf *out, char *err, size_t errsz)
{
	const char *end = p + n, *line;
	size_t len, i, headers = 0, b64 = 0, start = out->len;
	unsigned char chunk[3 * (SP_PGP_ARMOR_MAX_LINE / 4) + 3];
	int state = 0;
	guint save = 0;
	bool padded = false, have_crc = false;
	uint32_t want_crc = 0;

	while (p < end && g_ascii_isspace(*p))
		p++;
	while (end > p && g_ascii_isspace(end[-1]))
		end--;
	if (!next_line(&p, end, &line, &len) || !line_is(line, len, "-----BEGIN PGP MESSAGE-----")) {
		sp_seterr(err, errsz, "does not start with -----BEGIN PGP MESSAGE-----");
		return -1;
	}
	/* Armor headers up to the empty line. */
	for (;;) {
		if (!next_line(&p, end, &line, &len)) {
			sp_seterr(err, errsz, "armor ends in its headers");
			return -1;
		}
		if (len == 0)
			break;
		if (len > SP_PGP_ARMOR_MAX_LINE || !armor_header_ok(line, len) ||
		    ++headers > SP_PGP_ARMOR_MAX_HEADERS) {
			sp_seterr(err, errsz, "not an armor header line (or more than %d)", SP_PGP_ARMOR_MAX_HEADERS);
			return -1;
		}
	}
	/* base64 lines, the optional checksum, the END line, nothing after. */
	for (;;) {
		if (!next_line(&p, end, &line, &len)) {
			sp_seterr(err, errsz, "no -----END PGP MESSAGE----- line");
			goto fail;
		}
		if (line_is(line, len, "-----END PGP MESSAGE-----"))
			break;
		if (have_crc) {
			sp_seterr(err, errsz, "text after the armor checksum");
			goto fail;
		}
		if (len == 5 && line[0] == '=') {
			unsigned char c[3];
			gint st = 0;
			guint sv = 0;
			for (i = 1; i < 5 && is_b64(line[i]); i++)
				;
			if (i < 5 || g_base64_decode_step(line + 1, 4, c, &st, &sv) != 3) {
				sp_seterr(err, errsz, "malformed armor checksum");
				goto fail;
			}
			want_crc = (uint32_t)c[0] << 16 | (uint32_t)c[1] << 8 | c[2];
			have_crc = true;
			continue;
		}
		if (len == 0 || len > SP_PGP_ARMOR_MAX_LINE || padded) {
			sp_seterr(err, errsz, padded ? "armor data after the padding" : "empty or over-long armor line");
			goto fail;
		}
		for (i = 0; i < len; i++) {
			if (is_b64(line[i]))
				continue;
			/* '=' only as the last one or two characters of the data. */
			if (line[i] == '=' && (i + 1 == len || (i + 2 == len && line[i + 1] == '='))) {
				padded = true;
				break;
			}
			sp_seterr(err, errsz, "not a base64 character in the armor");
			goto fail;
		}
		b64 += len;
		{
			gsize k = g_base64_decode_step(line, len, chunk, &state, &save);
			if (sp_buf_append(out, chunk, k) < 0) {
				sp_seterr(err, errsz, "armored message too large");
				goto fail;
			}
		}
	}
	if (p != end) {
		sp_seterr(err, errsz, "text after -----END PGP MESSAGE-----");
		goto fail;
	}
	if (b64 == 0 || b64 % 4 != 0 || state != 0) {
		sp_seterr(err, errsz, "armor data is not whole base64 quads");
		goto fail;
	}
	if (have_crc && crc24(0xb704ce, (const unsigned char *)out->data + start, out->len - start) != want_crc) {
		sp_seterr(err, errsz, "armor checksum mismatch");
		goto fail;
	}
	return 0;
fail:
	out->len = start;
	return -1;
}

bool
sp_pgp_armored_is_encrypted(const char *p, size_t n, char *err, size_t errsz)
{
	struct sp_buf b;
	bool ok;

	/* The decoded packets are at most 3/4 of the armor. */
	sp_buf_init(&b, n);
	ok = sp_pgp_armor_decode(p, n, &b, err, errsz) == 0 &&
	     sp_pgp_packets_check((const unsigned char *)b.data, b.len, err, errsz) == 0;
	sp_buf_free(&b);
	return ok;
}

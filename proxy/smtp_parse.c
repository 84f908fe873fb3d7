/* smtp_parse.c - pure parsers for SMTP paths, parameters and dot-stuffing. */
#include "smtp_parse.h"

#include <ctype.h>
#include <string.h>

static bool
is_atext(unsigned char c, bool utf8)
{
	if (c >= 0x80)
		return utf8;
	/* c != 0: strchr would find the string's own terminator. */
	return c != '\0' && (isalnum(c) || strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

static bool
is_ldh(unsigned char c, bool utf8)
{
	if (c >= 0x80)
		return utf8;
	return isalnum(c) || c == '-';
}

/* Domain = sub-domain *("." sub-domain), or an address literal [..]. */
static size_t
scan_domain(const char *p, bool utf8)
{
	size_t i = 0, label;

	if (p[0] == '[') {
		for (i = 1; p[i] && p[i] != ']'; i++) {
			unsigned char c = (unsigned char)p[i];
			if (c < 33 || c > 126 || c == '[' || c == '\\')
				return 0;
		}
		return p[i] == ']' && i > 1 ? i + 1 : 0;
	}
	for (;;) {
		label = 0;
		while (is_ldh((unsigned char)p[i + label], utf8))
			label++;
		if (label == 0 || p[i] == '-' || p[i + label - 1] == '-')
			return 0;
		i += label;
		if (p[i] != '.')
			return i;
		i++;
	}
}

/* Local-part = Dot-string / Quoted-string */
static size_t
scan_local(const char *p, bool utf8)
{
	size_t i = 0;

	if (p[0] == '"') {
		for (i = 1; p[i] && p[i] != '"'; i++) {
			unsigned char c = (unsigned char)p[i];
			if (c == '\\') {
				i++;
				if ((unsigned char)p[i] < 32 || (unsigned char)p[i] > 126)
					return 0;
				continue;
			}
			if ((c < 32 || c == 127) || (c >= 0x80 && !utf8))
				return 0;
		}
		return p[i] == '"' ? i + 1 : 0;
	}
	for (;;) {
		size_t atom = 0;
		while (is_atext((unsigned char)p[i + atom], utf8))
			atom++;
		if (atom == 0)
			return 0;
		i += atom;
		if (p[i] != '.')
			return i;
		i++;
	}
}

int
smtp_parse_path(const char *s, bool allow_null, bool allow_utf8, struct smtp_path *out,
                const char **rest, char *err, size_t errsz)
{
	const char *p = s, *start;
	size_t n, local, domain, i;

	memset(out, 0, sizeof *out);
	/* RFC 5321 has no blank after the colon; many clients send one anyway. */
	while (*p == ' ')
		p++;
	if (*p != '<') {
		sp_seterr(err, errsz, "address must be enclosed in <>");
		return -1;
	}
	p++;
	if (*p == '>') {
		if (!allow_null) {
			sp_seterr(err, errsz, "empty address");
			return -1;
		}
		out->null = true;
		p++;
		goto params;
	}
	/* Obsolete source route "@a,@b:" is accepted and ignored (RFC 5321 4.1.2). */
	if (*p == '@') {
		const char *colon = strchr(p, ':');
		const char *gt = strchr(p, '>');
		if (colon == NULL || (gt && gt < colon)) {
			sp_seterr(err, errsz, "bad source route");
			return -1;
		}
		p = colon + 1;
	}
	start = p;
	local = scan_local(p, allow_utf8);
	if (local == 0 || p[local] != '@') {
		sp_seterr(err, errsz, "bad local part (need local@domain)");
		return -1;
	}
	if (local > SMTP_LOCAL_MAX) {
		sp_seterr(err, errsz, "local part longer than %d octets", SMTP_LOCAL_MAX);
		return -1;
	}
	p += local + 1;
	domain = scan_domain(p, allow_utf8);
	if (domain == 0 || p[domain] != '>') {
		sp_seterr(err, errsz, "bad domain");
		return -1;
	}
	if (domain > SMTP_DOMAIN_MAX) {
		sp_seterr(err, errsz, "domain longer than %d octets", SMTP_DOMAIN_MAX);
		return -1;
	}
	n = local + 1 + domain;
	if (n > SMTP_PATH_MAX) {
		sp_seterr(err, errsz, "address longer than %d octets", SMTP_PATH_MAX);
		return -1;
	}
	memcpy(out->addr, start, n);
	out->addr[n] = '\0';
	for (i = 0; i < n; i++)
		if ((unsigned char)out->addr[i] >= 0x80)
			out->utf8 = true;
	p += domain + 1;
params:
	if (*p != '\0' && *p != ' ') {
		sp_seterr(err, errsz, "junk after address");
		return -1;
	}
	while (*p == ' ')
		p++;
	*rest = p;
	return 0;
}

int
smtp_parse_params(const char *s, struct smtp_param *params, size_t *n, char *err, size_t errsz)
{
	const char *p = s;

	*n = 0;
	while (*p) {
		struct smtp_param *pp;
		size_t kl, vl = 0;
		const char *eq, *end;

		end = p + strcspn(p, " ");
		if (*n == SMTP_PARAMS_MAX) {
			sp_seterr(err, errsz, "too many parameters");
			return -1;
		}
		pp = &params[(*n)++];
		memset(pp, 0, sizeof *pp);
		eq = memchr(p, '=', (size_t)(end - p));
		kl = (size_t)((eq ? eq : end) - p);
		if (kl == 0 || kl >= sizeof pp->key || !isalnum((unsigned char)*p)) {
			sp_seterr(err, errsz, "bad parameter");
			return -1;
		}
		for (size_t i = 0; i < kl; i++) {
			if (!isalnum((unsigned char)p[i]) && p[i] != '-') {
				sp_seterr(err, errsz, "bad parameter name");
				return -1;
			}
			pp->key[i] = (char)toupper((unsigned char)p[i]);
		}
		if (eq) {
			vl = (size_t)(end - eq - 1);
			if (vl == 0 || vl >= sizeof pp->value) {
				sp_seterr(err, errsz, "bad value for %s", pp->key);
				return -1;
			}
			for (size_t i = 0; i < vl; i++) {
				unsigned char c = (unsigned char)eq[1 + i];
				if (c < 33 || c > 126 || c == '=') {
					sp_seterr(err, errsz, "bad value for %s", pp->key);
					return -1;
				}
			}
			memcpy(pp->value, eq + 1, vl);
			pp->has_value = true;
		}
		p = end;
		while (*p == ' ')
			p++;
	}
	return 0;
}

const char *
smtp_addr_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at ? at + 1 : "";
}

void
smtp_dotstuff_init(struct smtp_dotstuff *d)
{
	d->at_line_start = true;
	d->pending_cr = false;
}

int
smtp_dotstuff_feed(struct smtp_dotstuff *d, const char *in, size_t len, struct sp_buf *out)
{
	size_t i = 0;

	/* Worst case every byte becomes two ("\n" -> "\r\n", "." -> ".."). */
	if (sp_buf_reserve(out, len * 2 + 2) < 0)
		return -1;
	while (i < len) {
		char ch = in[i];
		if (d->pending_cr) {
			d->pending_cr = false;
			out->data[out->len++] = '\r';
			out->data[out->len++] = '\n';
			d->at_line_start = true;
			if (ch == '\n') {
				i++;
				continue;
			}
		}
		if (d->at_line_start && ch == '.')
			out->data[out->len++] = '.';
		/* Fast path: a whole CRLF line (what every copy is made of) is
		 * one memcpy; anything else goes byte by byte below. */
		{
			const char *lf = memchr(in + i, '\n', len - i);
			size_t run = lf ? (size_t)(lf - (in + i)) : 0;
			if (lf && run >= 1 && in[i + run - 1] == '\r' && memchr(in + i, '\r', run - 1) == NULL) {
				memcpy(out->data + out->len, in + i, run + 1);
				out->len += run + 1;
				i += run + 1;
				d->at_line_start = true;
				continue;
			}
		}
		i++;
		if (ch == '\r') {
			d->pending_cr = true;
			d->at_line_start = false;
			continue;
		}
		if (ch == '\n') {
			out->data[out->len++] = '\r';
			out->data[out->len++] = '\n';
			d->at_line_start = true;
			continue;
		}
		d->at_line_start = false;
		out->data[out->len++] = ch;
	}
	out->data[out->len] = '\0';
	return 0;
}

int
smtp_dotstuff_end(struct smtp_dotstuff *d, struct sp_buf *out)
{
	if (d->pending_cr || !d->at_line_start) {
		d->pending_cr = false;
		if (sp_buf_append(out, "\r\n", 2) < 0)
			return -1;
	}
	d->at_line_start = true;
	return sp_buf_append(out, ".\r\n", 3);
}

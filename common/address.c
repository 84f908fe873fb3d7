/* address.c - the normal form of mail addresses (see address.h). */
#include "address.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <idn2.h>

#include "util.h"

/* IDNA2008 with the UTS #46 mapping (upper case to lower case, full-width
 * to ASCII...) and without the transitional mappings of IDNA2003 (ß stays
 * ß): what curl and the browsers do.  NFC_INPUT: a domain typed in NFD
 * (a + U+0308) is the same domain as one in NFC (ä). */
#define SP_IDN2_FLAGS (IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL)

static bool
label_is_alabel(const char *s, size_t n)
{
	return n >= 4 && (s[0] == 'x' || s[0] == 'X') && (s[1] == 'n' || s[1] == 'N') && s[2] == '-' && s[3] == '-';
}

static bool
domain_is_idn(const char *d)
{
	const char *p, *label = d;

	if (d[0] == '[')
		return false;
	for (p = d;; p++) {
		if ((unsigned char)*p >= 0x80)
			return true;
		if (*p == '.' || *p == '\0') {
			if (label_is_alabel(label, (size_t)(p - label)))
				return true;
			if (*p == '\0')
				return false;
			label = p + 1;
		}
	}
}

bool
sp_addr_is_idn(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at && domain_is_idn(at + 1);
}

static void
ascii_lower(char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] >= 'A' && s[i] <= 'Z')
			s[i] = (char)(s[i] - 'A' + 'a');
}

/* local@domain -> the local part (ASCII-lowercased) and the domain, in the
 * form conv gives it; unicode selects U-labels instead of A-labels. */
static int
normalize(const char *addr, bool unicode, char *out, size_t outsz, char *err, size_t errsz)
{
	const char *at = strrchr(addr, '@');
	size_t llen;
	char *conv = NULL, *ace = NULL;
	const char *domain;
	int rc, rv = -1;

	if (at == NULL || at == addr || at[1] == '\0') {
		sp_seterr(err, errsz, "not an address (expected local@domain)");
		return -1;
	}
	llen = (size_t)(at - addr);
	domain = at + 1;
	if (domain_is_idn(domain)) {
		/* Always through the A-label, which libidn2 checks (punycode that
		 * decodes, code points IDNA2008 allows, hyphens, label lengths):
		 * "xn--zz" is refused here, not compared as text. */
		rc = idn2_to_ascii_8z(domain, &ace, SP_IDN2_FLAGS);
		if (rc != IDN2_OK) {
			sp_seterr(err, errsz, "the domain is not a valid internationalised domain name (IDNA2008): %s",
			          idn2_strerror(rc));
			goto out;
		}
		if (unicode) {
			rc = idn2_to_unicode_8z8z(ace, &conv, 0);
			if (rc != IDN2_OK) {
				sp_seterr(err, errsz, "the domain is not a valid internationalised domain name (IDNA2008): %s",
				          idn2_strerror(rc));
				goto out;
			}
		} else {
			conv = ace;
			ace = NULL;
		}
		domain = conv;
	}
	if (llen + 1 + strlen(domain) + 1 > outsz || llen + 1 + strlen(domain) + 1 > SP_ADDR_MAX) {
		sp_seterr(err, errsz, "address longer than %d octets", SP_ADDR_MAX - 1);
		goto out;
	}
	memcpy(out, addr, llen);
	ascii_lower(out, llen);
	out[llen] = '@';
	strcpy(out + llen + 1, domain);
	if (conv == NULL)
		ascii_lower(out + llen + 1, strlen(domain));
	rv = 0;
out:
	/* libidn2 allocates with malloc. */
	free(ace);
	free(conv);
	return rv;
}

int
sp_addr_normalize(const char *addr, char *out, size_t outsz, char *err, size_t errsz)
{
	return normalize(addr, false, out, outsz, err, errsz);
}

int
sp_addr_unicode(const char *addr, char *out, size_t outsz, char *err, size_t errsz)
{
	return normalize(addr, true, out, outsz, err, errsz);
}

bool
sp_addr_equal(const char *a, const char *b)
{
	char na[SP_ADDR_MAX], nb[SP_ADDR_MAX], err[SP_ERRLEN];

	if (sp_addr_normalize(a, na, sizeof na, err, sizeof err) < 0 ||
	    sp_addr_normalize(b, nb, sizeof nb, err, sizeof err) < 0)
		return sp_streq_nocase(a, b);
	return strcmp(na, nb) == 0;
}

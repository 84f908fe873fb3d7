/* address.h - the one form in which mail addresses are compared.
 *
 * Two spellings of one address must find the same key: RCPT TO may carry the
 * domain as an A-label (zoë@xn--exmple-cua.net: curl, mutt and neomutt
 * convert it), a user ID or the sodium recipients file as a U-label
 * (zoë@exämple.net), or the other way round.  The normal form is
 *
 *   local part: as given, with ASCII letters lowercased (the rule sealpost
 *               has always had: Bob@X and bob@X are one address; no other
 *               folding, no Unicode normalisation of the local part);
 *   domain:     an address literal ([192.0.2.1]) or an all-ASCII domain
 *               without an "xn--" label: ASCII-lowercased, nothing else;
 *               any other domain: its IDNA2008 A-label form (libidn2, UTS #46
 *               non-transitional mapping, NFC input), lowercase ASCII.  A
 *               domain that is not a valid IDN (bad punycode, a disallowed
 *               code point) is an error, never compared as bytes.
 */
#ifndef SP_ADDRESS_H
#define SP_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>

/* RFC 5321 4.5.3.1.3: a path is at most 256 octets with its brackets; a
 * domain in U-label form can be longer than its A-label form, so the normal
 * form gets room for both. */
#define SP_ADDR_MAX 512

/* The normal form of addr (see above) into out (SP_ADDR_MAX bytes).  Returns 0,
 * or -1 with err set: no '@', too long, or an invalid internationalised domain. */
int sp_addr_normalize(const char *addr, char *out, size_t outsz, char *err, size_t errsz);
/* The same address with its domain as U-labels (for GnuPG's search: a user ID
 * spells its domain in Unicode or in ASCII).  Equal to the normal form for
 * ASCII domains.  Returns 0, or -1 with err set. */
int sp_addr_unicode(const char *addr, char *out, size_t outsz, char *err, size_t errsz);
/* Does the domain of addr need IDNA (non-ASCII, or an "xn--" label)? */
bool sp_addr_is_idn(const char *addr);
/* Equality of the normal forms; when either address cannot be normalised,
 * plain comparison ignoring ASCII case (never a substring match). */
bool sp_addr_equal(const char *a, const char *b);

#endif

/* pgp_packets.h - is this really an encrypted OpenPGP message?
 *
 * A message the client already encrypted is relayed as it is.  Whether it is
 * one is judged here, by its bytes, never by its look: the ASCII armor is
 * decoded (checksum included) and the OpenPGP packet framing (RFC 4880 4.2,
 * RFC 9580 4.2) is walked.  An encrypted message is one or more session-key
 * packets (PKESK, tag 1; SKESK, tag 3), then exactly one integrity-protected
 * data packet (SEIPD, tag 18, version 1 or 2; or the LibrePGP OCB packet,
 * tag 20, version 1) that ends exactly where the data ends.  Anything else
 * (literal data in clear, compressed or signed data, the SED packet without
 * integrity, tag 9, a second data packet, trailing bytes, a truncated packet)
 * is not, and the message is encrypted like any other.
 *
 * Pure functions: bytes in, a verdict out, no GPGME, no allocation beyond the
 * decoded armor.  GPGME's gpgme_data_identify() is not used: it looks at a
 * 2048-byte sample and the first packets, so "encrypted" there says nothing
 * about what follows the first packet.
 */
#ifndef SP_PGP_PACKETS_H
#define SP_PGP_PACKETS_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

/* Session-key packets before the data packet: one per recipient key (and per
 * passphrase).  sealpost itself never encrypts to more than 1001 keys (1000
 * recipients and the sender); more is junk or an attack on the walker. */
#define SP_PGP_MAX_ESK 4096
/* Armor header lines ("Version: ...", "Comment: ...") in one block: producers
 * write none to three. */
#define SP_PGP_ARMOR_MAX_HEADERS 16
/* One armor line: RFC 4880 6.3 asks for at most 76 base64 characters; header
 * lines have no limit there, 1 KiB is far more than any producer writes. */
#define SP_PGP_ARMOR_MAX_LINE 1024

/* Is p[0..n) one encrypted, integrity-protected OpenPGP message and nothing
 * else?  Returns 0 yes; -1 no, with err saying what it is instead. */
int sp_pgp_packets_check(const unsigned char *p, size_t n, char *err, size_t errsz);

/* Decode p[0..n) as exactly one "BEGIN PGP MESSAGE" armor block, with only
 * whitespace around it: the BEGIN line, armor headers (Version, Comment,
 * Charset, MessageID), an empty line, base64 lines, an optional CRC-24
 * checksum line that must match, the END line.  The packets are appended to
 * out.  Returns 0, or -1 with err set. */
int sp_pgp_armor_decode(const char *p, size_t n, struct sp_buf *out, char *err, size_t errsz);

/* Armored output: base64 characters per line (RFC 4880 6.3: at most 76). */
#define SP_PGP_ARMOR_LINE 64

/* Append the ASCII armor (RFC 4880 6.2) of the packets p[0..n) to out as a
 * "PGP MESSAGE" block with CRLF lines and the CRC-24 checksum: what
 * sp_pgp_armor_decode() reads back. */
void sp_pgp_armor_encode(const unsigned char *p, size_t n, struct sp_buf *out);

/* Both: is the text one armored, encrypted OpenPGP message, nothing else?
 * true yes; false no, and err says what it is instead. */
bool sp_pgp_armored_is_encrypted(const char *p, size_t n, char *err, size_t errsz);

#endif

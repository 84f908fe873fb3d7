/* link_record.h - the upload format of one already-encrypted link message.
 *
 * The proxy POSTs this to a remote viewer's /api/v1/links (docs/viewer.md).
 * It carries exactly what the store keeps: the message ciphertext, and per
 * link the id and the wrapped-key blob, plus expiry and the two limits; never
 * a password, a link secret or plaintext.  All integers are big-endian:
 *
 *   magic       8   "SPLINKR" 0x02 (format version 2; version 1 is read too)
 *   expires     8   unix seconds, signed
 *   max_views   4   0 = unlimited
 *   max_failed  4   >= 1
 *   n_links     2   1..LINK_STORE_LINKS_MAX
 *   slen        2   version 2 only: 0..LINK_STORE_SENDER_MAX-1
 *   sender      slen  UTF-8, no NUL (shown before the password, link v2)
 *   hlen        2   version 2 only: 0..LINK_STORE_HINT_MAX-1
 *   hint        hlen  UTF-8, no NUL
 *   n_links times:
 *     id        16  the link id (raw; hex in the store)
 *     wlen      2   1..LINK_STORE_WRAPPED_MAX
 *     wrapped   wlen
 *   ct_len      8   must equal the bytes that follow
 *   ciphertext  ct_len
 */
#ifndef SP_LINK_RECORD_H
#define SP_LINK_RECORD_H

#include <stddef.h>

#include "link_store.h"
#include "util.h"

#define LINK_RECORD_MAGIC "SPLINKR\x02"
#define LINK_RECORD_MAGIC_V1 "SPLINKR\x01"
#define LINK_RECORD_MAGIC_LEN 8
#define LINK_RECORD_CONTENT_TYPE "application/vnd.sealpost.link-record.v1"

/* Serialise m, appended to out (created is not sent: the viewer stamps its own
 * clock): a version 2 record, or version 1 (what a sealpost 0.1 viewer reads)
 * when m->sender and m->hint are both NULL, as for [link] version = 1.
 * Returns 0, or -1 with err set (m out of the format's bounds, or out's
 * limit; out may then hold part of the record). */
int link_record_encode(const struct link_store_new_msg *m, struct sp_buf *out, char *err, size_t errsz);
/* Parse data into m: m->ciphertext and the wrapped blobs point into data;
 * m->links, m->sender and m->hint are allocated (link_record_free).  created
 * is left 0.  Returns 0, or -1 with err set (*m then empty, nothing to free). */
int link_record_decode(const void *data, size_t len, struct link_store_new_msg *m, char *err, size_t errsz);
void link_record_free(struct link_store_new_msg *m);

#endif

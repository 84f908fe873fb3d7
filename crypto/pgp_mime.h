/* pgp_mime.h - the OpenPGP copy: RFC 3156 multipart/encrypted around the
 * protected entity (see sp_mime_write_protected_entity). */
#ifndef SP_PGP_MIME_H
#define SP_PGP_MIME_H

#include "mime_message.h"
#include "pgp.h"

/* Encrypt inner (a MIME entity, CRLF) and append the multipart/encrypted
 * entity (its Content-Type header and body) to out.  Returns SP_PGP_ENCRYPTED,
 * SP_PGP_ENCRYPT_TEMPFAIL (retry later) or SP_PGP_ENCRYPT_PERMFAIL, with err
 * set; on failure out is as it was. */
enum sp_pgp_encrypt_result sp_pgp_mime_encrypted_entity(struct sp_pgp *pgp, const char *inner, size_t len,
                                                        const char *const *fprs, size_t n, const char *sign_fpr,
                                                        struct sp_buf *out, char *err, size_t errsz);

/* Encrypt the client's message to fprs (and sign with sign_fpr when set) and
 * append the whole copy (outer headers + multipart/encrypted) to out.
 * Returns as above. */
enum sp_pgp_encrypt_result sp_pgp_mime_build(struct sp_pgp *pgp, const struct sp_mime *m, bool hide_subject,
                                             const char *const *fprs, size_t n, const char *sign_fpr,
                                             struct sp_sink *out, char *err, size_t errsz);

#endif

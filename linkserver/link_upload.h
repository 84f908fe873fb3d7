/* link_upload.h - the proxy's side of a remote viewer ([link] upload_url).
 *
 * The record is already encrypted (link_record.h); the transfer adds a bearer
 * token from [link] upload_token_file and HTTPS with the certificate chain and
 * host name verified (plain http only to a loopback host, for tests and an
 * SSH tunnel).  Anything but "201 Created" is a failure: the caller fails
 * closed and sends no weaker form.
 */
#ifndef SP_LINK_UPLOAD_H
#define SP_LINK_UPLOAD_H

#include <stddef.h>

#include "link_store.h"
#include "util.h"

/* Seconds to set up TCP+TLS: a viewer that does not answer this fast is down. */
#define LINK_UPLOAD_CONNECT_TIMEOUT_S 10
/* Seconds for the whole transfer: a 50 MB message over a slow uplink. */
#define LINK_UPLOAD_TIMEOUT_S 300
/* The viewer's answer is one line; more is not read. */
#define LINK_UPLOAD_REPLY_MAX 4096

/* POST the message with its links to url (the viewer's /api/v1/links).
 * Returns 0 when the viewer stored it (201), or -1 with err set otherwise
 * (the transport's error, or the viewer's status and answer). */
int link_upload(const char *url, const char *token_file, const struct link_store_new_msg *m,
                char *err, size_t errsz);

/* DELETE url/<link_id>: revoke the whole message on the remote viewer.
 * Returns 0 done (200), 1 no such link there (404), or -1 with err set. */
int link_upload_revoke(const char *url, const char *token_file, const char *link_id,
                       char *err, size_t errsz);

/* Secure replies on the remote viewer (docs/formats.md "Secure reply"): the
 * viewer's JSON answer for one reply is its ciphertext in base64 and a few
 * header lines; 64 MiB (the largest reply_max_size) and then some. */
#define LINK_UPLOAD_REPLY_JSON_MAX ((size_t)64 * 1024 * 1024 / 3 * 4 + 65536)

/* GET <upload_url's /api/v1/replies>: the oldest reply waiting there.
 * Returns 1 with *out (free with link_store_reply_free(*out, 1)), 0 none
 * (204), or -1 with err set; *out is NULL but on 1. */
int link_upload_reply_next(const char *url, const char *token_file,
                           struct link_store_reply **out, char *err, size_t errsz);
/* DELETE it there once it is queued.  Returns 0 done (200), 1 already gone
 * (404), or -1 with err set. */
int link_upload_reply_delete(const char *url, const char *token_file, int64_t id, char *err,
                             size_t errsz);

#endif

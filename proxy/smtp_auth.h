/* smtp_auth.h - SMTP AUTH for clients of the proxy: SASL PLAIN/LOGIN decoding
 * and the users file (user:$argon2id$... lines, verified with libsodium).
 */
#ifndef SP_SMTP_AUTH_H
#define SP_SMTP_AUTH_H

#include <stdbool.h>
#include <stddef.h>

/* RFC 4954 4: AUTH lines may be up to 12288 octets. */
#define SMTP_AUTH_LINE_MAX 12288
/* A users file larger than this is not a users file. */
#define SMTP_USERS_FILE_MAX (4 * 1024 * 1024)
/* Argon2id verifications running at once: each needs the hash's memory
 * (64 MiB with `sealpost passwd`), so a burst of AUTH attempts must not
 * multiply that by max_connections. */
#define SMTP_AUTH_MAX_CONCURRENT 4

struct sp_users;

/* Returns 0 with *out, or -1 with err set (naming FILE:LINE). */
int sp_users_load(const char *path, struct sp_users **out, char *err, size_t errsz);
void sp_users_free(struct sp_users *u);
/* true: user exists and pass is theirs.  Constant work whether or not the
 * user exists. */
bool sp_users_verify(struct sp_users *u, const char *user, const char *pass);
/* The $argon2id$ string `sealpost passwd` prints.  Returns 0, or -1 with err
 * set. */
int sp_users_hash(const char *pass, char *out, size_t outsz, char *err, size_t errsz);

/* Decode base64; out is sodium_malloc'd and NUL-terminated (free with
 * sodium_free).  "=" decodes to the empty string (RFC 4954 initial response).
 * Returns 0, or -1 when it is not base64 (no err: the reply says it). */
int sasl_b64_decode(const char *in, char **out, size_t *outlen);
/* RFC 4616 PLAIN: [authzid] NUL authcid NUL passwd.  user/pass are
 * sodium_malloc'd copies; an authzid different from authcid is refused.
 * Returns 0, or -1 when msg is not that (no err: the reply says it). */
int sasl_plain_split(const char *msg, size_t len, char **user, char **pass);

#endif

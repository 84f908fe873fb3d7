/* link_copy.h - link mode on the sending side (pure: no store, no network).
 *
 * For a message with link recipients: the message (minus Bcc/X-Sealpost-*)
 * is sealed once under a random key; each link recipient gets a grant - a
 * token (link id + secret), a password (X-Sealpost-Password, or generated),
 * and the message key wrapped under both - and a notification mail with the
 * link.  The bundle is what the proxy publishes (local store or upload) before
 * any notification leaves.  Passwords and link secrets live only in memory
 * (sodium_malloc) and reach the sender only in the receipt encrypted to the
 * sender's own OpenPGP key and on the loopback outbox page.
 */
#ifndef SP_LINK_COPY_H
#define SP_LINK_COPY_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "link_envelope.h"
#include "message.h"
#include "mime_message.h"

/* A hint is a short reminder, not a letter. */
#define SP_LINK_HINT_MAX 200
/* The sender as the v2 page names it: a display name and an address. */
#define SP_LINK_SENDER_MAX 520
/* Template files bigger than this are a mistake. */
#define SP_LINK_TEMPLATE_MAX (64 * 1024)

/* The per-message settings: config, overridden by X-Sealpost-* headers. */
struct sp_link_settings {
	char *password;               /* X-Sealpost-Password (sodium_malloc'd), or NULL */
	char hint[SP_LINK_HINT_MAX];  /* X-Sealpost-Hint */
	int64_t expiry;               /* seconds; X-Sealpost-Expiry */
	uint64_t max_views;           /* X-Sealpost-Max-Views */
	char sender[SP_LINK_SENDER_MAX]; /* "Name <addr>" from From:, shown before the password */
};

/* The settings for message m: cfg's defaults, then its X-Sealpost-* headers.
 * Returns 0 with *s filled (clear it with sp_link_settings_clear()), or -1
 * with err set for a bad header value, the sender's mistake (554 5.6.0); *s
 * then holds nothing to free. */
int sp_link_settings_read(const struct sp_mime *m, const struct sp_config *cfg, struct sp_link_settings *s,
                          char *err, size_t errsz);
void sp_link_settings_clear(struct sp_link_settings *s);

struct sp_link_grant {
	size_t rcpt;                         /* index into the envelope */
	char id[SP_LINK_ID_HEXLEN + 1];
	char *url;                           /* base_url + id#secret (v2) or token (v1): secret (sodium_malloc'd) */
	char *password;                      /* sodium_malloc'd */
	bool generated;                      /* we made the password (the sender must learn it) */
	struct sp_buf wrapped;               /* sp_link2_record_new output (v1: sp_link_wrap_key) */
};

struct sp_link_bundle {
	struct sp_buf ciphertext;            /* sp_link_seal_message output */
	int64_t created;
	int64_t expires;
	uint64_t max_views;
	uint64_t max_failed;
	char hint[SP_LINK_HINT_MAX];
	char sender[SP_LINK_SENDER_MAX];
	struct sp_link_grant *v;
	size_t n;
};

/* Seal the message (as-is bytes: private headers already removed) and make a
 * grant for each recipient index in rcpts.  v1 links seal those MIME bytes;
 * v2 links (the default) seal the message rendered now as a view document
 * (crypto/view_doc.h), with sender_key (the sender's armored OpenPGP public
 * key, or NULL) as its "sender_key".  A message that cannot be rendered is
 * an error, never sealed in another form.  Returns 0 with *out (free it with
 * sp_link_bundle_free()), or -1 with err set and *out untouched. */
int sp_link_bundle_make(const struct sp_config *cfg, const struct sp_envelope *env, const struct sp_blob *msg,
                        const char *sender_key, const size_t *rcpts, size_t n, const struct sp_link_settings *s,
                        struct sp_link_bundle **out, char *err, size_t errsz);
void sp_link_bundle_free(struct sp_link_bundle *b);
/* Does cfg make v1 links ([link] version = 1: 43-character token, unlocked
 * by the viewer, for a remote viewer not yet upgraded; docs/configuration.md)? */
bool sp_link_make_v1(const struct sp_config *cfg);

/* The notification for one grant: the client's outer headers (Subject from
 * the template), multipart/alternative text + HTML from the templates,
 * appended to out.  Returns 0, or -1 with err set (a template that cannot be
 * read, out's limit); out's length is then as on entry. */
int sp_link_notification(const struct sp_config *cfg, const struct sp_mime *m, const struct sp_link_bundle *b,
                         const struct sp_link_grant *g, struct sp_buf *out, char *err, size_t errsz);

/* "Tuesday 8 December 2026, 10:00 CET" */
void sp_link_format_time(int64_t t, char *out, size_t outsz);

#endif

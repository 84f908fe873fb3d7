/* web_session.h - what one successful unlock leaves behind: the attachments of
 * the message, in memory, for a short while, behind a download capability.
 *
 * The capability is 256 bits from the CSPRNG, shown to the browser only inside
 * the message page, as a hidden field of the per-attachment download forms
 * (POST to the link URL itself).  It never appears in a URL (so not in access
 * logs, browser history or a Referer), a download needs both it and the link
 * token it was issued for, and it dies after WEB_SESSION_TTL_MS, at the link's
 * own expiry, or when the memory bound evicts it; the attachment bytes are
 * wiped then.  The password is never needed again, so it is never kept.
 *
 * A capability lives no longer than its link: the viewer checks the store
 * before every download (so a revoke by `sealpost revoke`, another process,
 * counts at once), and drops every capability of a link that is gone
 * (web_sessions_drop_link()).  The one exception is the capability issued by
 * the view that used the link up (max_views): the link is deleted in that very
 * transaction, and the reader of the last view may still save its attachments
 * until WEB_SESSION_TTL_MS or the link's expiry, whichever comes first.
 */
#ifndef SP_WEB_SESSION_H
#define SP_WEB_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "link_envelope.h"
#include "view_render.h"

/* How long the attachments of an unlocked message stay downloadable: enough to
 * read the message and click, short enough that a forgotten tab holds nothing. */
#define WEB_SESSION_TTL_MS (10 * 60 * 1000)
/* Unlocked messages held at once, and their total attachment bytes: the oldest
 * is dropped first.  Bounds the viewer's memory whatever the traffic. */
#define WEB_SESSION_MAX 256
#define WEB_SESSION_MAX_BYTES ((size_t)512 * 1024 * 1024)
#define WEB_SESSION_CAPLEN 64 /* hex of 32 random bytes */

struct web_sessions;

/* Never NULL. */
struct web_sessions *web_sessions_new(size_t max_bytes, unsigned max_sessions);
void web_sessions_free(struct web_sessions *ss);

/* A fresh capability (the page that offers the downloads is built with it
 * before the attachments move into the session). */
void web_sessions_new_cap(char cap[WEB_SESSION_CAPLEN + 1]);
/* Keep the attachments of m (moved out of m: m->att becomes empty) for link_id
 * under cap, until now_ms + WEB_SESSION_TTL_MS or link_expires_ms, whichever is
 * first.  last_view: issued by the view that used the link up (the link is no
 * longer in the store).  With no attachments nothing is kept.  Returns 0, or
 * -1 when they are larger than the whole bound or cap is malformed (no err:
 * the caller logs it, and the downloads answer as expired); m keeps its
 * attachments then. */
int web_sessions_add(struct web_sessions *ss, const char *cap, const char *link_id,
                     struct sp_view *m, int64_t now_ms, int64_t link_expires_ms,
                     bool last_view);

/* A copy of attachment `part` for (cap, link_id).  Returns 0 with *copy (free
 * it with sp_view_attachment_clear()), or -1 (no err, *copy empty: unknown,
 * expired, another link's capability, no such part; the caller answers 410
 * for all alike).  *last_view (optional) says whether the capability came
 * from the view that used the link up (false on -1). */
int web_sessions_get(struct web_sessions *ss, const char *cap, const char *link_id, size_t part,
                     int64_t now_ms, struct sp_view_attachment *copy, bool *last_view);

/* End every capability of link_id at once (wiping the bytes); returns how many
 * there were. */
unsigned web_sessions_drop_link(struct web_sessions *ss, const char *link_id);

/* The distinct link ids with capabilities that depend on their link still being
 * in the store (not last_view), at most `max`; returns how many. */
size_t web_sessions_links(struct web_sessions *ss, char (*ids)[SP_LINK_ID_HEXLEN + 1], size_t max);

/* Drop expired sessions (wiping them). */
void web_sessions_expire(struct web_sessions *ss, int64_t now_ms);

#endif

/* web_pages.h - every page the viewer serves, built into an sp_buf.
 *
 * Markup comes from string literals here; every other byte goes through
 * sp_html_escape() (common/html.h).  One stylesheet, inline, allowed by its
 * SHA-256 hash in the Content-Security-Policy (no external assets, no
 * JavaScript anywhere).  Pages work on a phone (viewport, fluid layout) and
 * follow the system's dark mode.
 */
#ifndef SP_WEB_PAGES_H
#define SP_WEB_PAGES_H

#include <stddef.h>
#include <stdint.h>

#include "link_store.h"
#include "util.h"
#include "view_render.h"

/* "'sha256-...'" of the stylesheet, for style-src.
 *
 * The web_page_* builders append a whole page to b and return 0, or -1 (no
 * err) only when b's limit is reached (b then holds part of the page); the
 * viewer's page buffers have no limit. */
const char *web_pages_style_source(void);

enum web_form_note {
	WEB_FORM_PLAIN,      /* first visit */
	WEB_FORM_EMPTY,      /* submitted without a password */
	WEB_FORM_WRONG,      /* wrong password (or wrong link: indistinguishable) */
	WEB_FORM_WAIT,       /* this client, which failed before, sent several attempts at once */
	WEB_FORM_BUSY,       /* the link's remaining attempts are all under way */
};

/* The password form; POSTs to `action` (the link's own path). */
int web_page_form(struct sp_buf *b, const char *action, enum web_form_note note, int64_t wait_s);

enum web_gone {
	WEB_GONE_LINK,       /* unknown, expired, revoked or used up: one text for all */
	WEB_GONE_DESTROYED,  /* destroyed by this wrong password */
	WEB_GONE_DOWNLOAD,   /* a download capability that is no longer valid */
};
int web_page_gone(struct sp_buf *b, enum web_gone why);

/* A short page for errors and other answers: title and one paragraph. */
int web_page_notice(struct sp_buf *b, const char *title, const char *text);

/* The sandbox of the frame that shows a message's HTML part: popups only (the
 * sanitised links open in a new tab, outside the sandbox).  Never
 * allow-scripts, never allow-same-origin: together they would undo it. */
#define WEB_MESSAGE_SANDBOX "allow-popups allow-popups-to-escape-sandbox"

/* The decrypted message.  cap: the download capability (attachments post it
 * back to `action` with the part number).  views / max_views: after this view. */
int web_page_message(struct sp_buf *b, const char *action, const struct sp_view *m,
                     const char *cap, uint64_t views, uint64_t max_views);

/* The outbox: entries from web_outbox.h, view counts from `links` (the
 * store's list), revoke forms carrying the outbox token. */
int web_page_outbox(struct sp_buf *b, const struct link_store_link *links, size_t n_links,
                    const char *token, int64_t now, const char *notice);

int web_page_index(struct sp_buf *b);

/* "1.2 MB" style sizes for people. */
void web_format_size(uint64_t n, char *out, size_t outsz);

#endif

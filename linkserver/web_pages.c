/* web_pages.c - the viewer's pages (see web_pages.h). */
#include "web_pages.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "web_html.h"
#include "web_outbox.h"

/* The only stylesheet.  Its hash is computed once and put in the CSP, so it
 * must be emitted byte for byte as written here. */
static const char style[] =
	":root{color-scheme:light dark;--fg:#1d1d1f;--muted:#5f6368;--bg:#f4f5f7;--card:#fff;"
	"--line:#d9dce1;--accent:#1a56db;--on-accent:#fff;--bad:#b42318}"
	"@media (prefers-color-scheme:dark){:root{--fg:#e8eaed;--muted:#9aa0a6;--bg:#121316;"
	"--card:#1c1d21;--line:#34363c;--accent:#8ab4f8;--on-accent:#111;--bad:#f28b82}}"
	"*{box-sizing:border-box}"
	"body{margin:0;background:var(--bg);color:var(--fg);"
	"font:16px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif}"
	"main{max-width:50rem;margin:0 auto;padding:.75rem}"
	".card{background:var(--card);border:1px solid var(--line);border-radius:12px;"
	"padding:1.1rem 1.25rem;margin:.75rem 0}"
	"h1{font-size:1.3rem;margin:0 0 .6rem}h2{font-size:1.05rem;margin:0 0 .5rem}"
	"p{margin:.5rem 0}.muted{color:var(--muted);font-size:.9rem}"
	".err{color:var(--bad);font-weight:600}"
	"label{display:block;font-weight:600;margin-bottom:.35rem}"
	"input[type=password]{width:100%;font:inherit;padding:.65rem .75rem;border:1px solid var(--line);"
	"border-radius:8px;background:var(--bg);color:var(--fg)}"
	"button{font:inherit;padding:.6rem 1.1rem;border:0;border-radius:8px;background:var(--accent);"
	"color:var(--on-accent);cursor:pointer;margin-top:.75rem}"
	"dl.hdrs{display:grid;grid-template-columns:max-content 1fr;gap:.2rem .9rem;margin:0}"
	"dl.hdrs dt{color:var(--muted)}dl.hdrs dd{margin:0;overflow-wrap:anywhere}"
	"pre.body{white-space:pre-wrap;overflow-wrap:anywhere;margin:0;"
	"font:15px/1.5 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}"
	"iframe{width:100%;height:70vh;border:1px solid var(--line);border-radius:8px;background:#fff}"
	"details{margin-top:.75rem}summary{cursor:pointer;color:var(--muted)}"
	"ul.att{list-style:none;padding:0;margin:0}"
	"ul.att li{display:flex;flex-wrap:wrap;align-items:center;justify-content:space-between;"
	"gap:.5rem;padding:.5rem 0;border-top:1px solid var(--line)}"
	"ul.att li:first-child{border-top:0}ul.att form{margin:0}"
	"ul.att button,td button{margin:0;padding:.3rem .8rem}"
	".name{overflow-wrap:anywhere}"
	"table{width:100%;border-collapse:collapse;font-size:.92rem}"
	"th,td{text-align:left;padding:.35rem .4rem;border-top:1px solid var(--line);"
	"vertical-align:top;overflow-wrap:anywhere}"
	"code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}"
	"form.inline{display:inline;margin:0}.danger{background:var(--bad)}";

static pthread_once_t style_once = PTHREAD_ONCE_INIT;
static char style_source[64];

static void
style_hash(void)
{
	unsigned char h[crypto_hash_sha256_BYTES];
	char b64[sodium_base64_ENCODED_LEN(crypto_hash_sha256_BYTES, sodium_base64_VARIANT_ORIGINAL)];

	crypto_hash_sha256(h, (const unsigned char *)style, sizeof style - 1);
	sodium_bin2base64(b64, sizeof b64, h, sizeof h, sodium_base64_VARIANT_ORIGINAL);
	snprintf(style_source, sizeof style_source, "'sha256-%s'", b64);
}

const char *
web_pages_style_source(void)
{
	pthread_once(&style_once, style_hash);
	return style_source;
}

void
web_format_size(uint64_t n, char *out, size_t outsz)
{
	if (n < 1000)
		snprintf(out, outsz, "%" PRIu64 " bytes", n);
	else if (n < 1000 * 1000)
		snprintf(out, outsz, "%.1f kB", (double)n / 1e3);
	else if (n < (uint64_t)1000 * 1000 * 1000)
		snprintf(out, outsz, "%.1f MB", (double)n / 1e6);
	else
		snprintf(out, outsz, "%.1f GB", (double)n / 1e9);
}

static void
format_time(int64_t t, char *out, size_t outsz)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(out, outsz, "%Y-%m-%d %H:%M UTC", &tm);
}

/* An sp_buf failing means its limit was hit; pages have no limit, so a page
 * function just reports -1 if anything failed. */
#define P(s) (rv |= sp_buf_puts(b, (s)))
#define E(s) (rv |= sp_html_puts(b, (s)))

static int
page_begin(struct sp_buf *b, const char *title)
{
	int rv = 0;

	P("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	  "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
	  "<meta name=\"referrer\" content=\"no-referrer\">"
	  "<meta name=\"robots\" content=\"noindex, nofollow\"><title>");
	E(title);
	P("</title><style>");
	P(style);
	P("</style></head><body><main>\n");
	return rv;
}

static int
page_end(struct sp_buf *b)
{
	int rv = 0;

	P("<p class=\"muted\">sealpost &middot; end-to-end encrypted mail</p></main></body></html>\n");
	return rv;
}

int
web_page_form(struct sp_buf *b, const char *action, enum web_form_note note, int64_t wait_s)
{
	int rv = page_begin(b, "Encrypted message");

	P("<div class=\"card\"><h1>Encrypted message</h1>"
	  "<p>Someone sent you an end-to-end encrypted message. Enter the password they gave you "
	  "to read it.</p>");
	switch (note) {
	case WEB_FORM_EMPTY:
		P("<p class=\"err\" role=\"alert\">Please enter the password.</p>");
		break;
	case WEB_FORM_WRONG:
		P("<p class=\"err\" role=\"alert\">That password does not open this message. "
		  "Check it and try again: after too many wrong passwords the message is destroyed.</p>");
		break;
	case WEB_FORM_WAIT: {
		char s[32];
		snprintf(s, sizeof s, "%" PRId64, wait_s);
		P("<p class=\"err\" role=\"alert\">Too many wrong passwords from your network. "
		  "Wait ");
		E(s);
		P(" seconds, then try again.</p>");
		break;
	}
	case WEB_FORM_BUSY:
		P("<p class=\"err\" role=\"alert\">Another attempt to open this message is under "
		  "way. Try again in a moment.</p>");
		break;
	case WEB_FORM_PLAIN:
		break;
	}
	P("<form method=\"post\" action=\"");
	E(action);
	P("\" autocomplete=\"off\"><label for=\"pw\">Password</label>"
	  "<input type=\"password\" id=\"pw\" name=\"password\" required autofocus "
	  "autocomplete=\"off\" maxlength=\"1024\">"
	  "<button type=\"submit\">Open message</button></form>"
	  "<p class=\"muted\">The message is decrypted only after the right password. "
	  "Opening it may count as a view; the sender may have limited the number of views.</p>"
	  "</div>");
	rv |= page_end(b);
	return rv;
}

int
web_page_gone(struct sp_buf *b, enum web_gone why)
{
	int rv = page_begin(b, "Message not available");

	P("<div class=\"card\"><h1>This message is not available</h1>");
	switch (why) {
	case WEB_GONE_DESTROYED:
		P("<p class=\"err\">Too many wrong passwords were entered, so the message has been "
		  "destroyed.</p><p>Ask the sender to send it again.</p>");
		break;
	case WEB_GONE_DOWNLOAD:
		P("<p>This download is no longer available: it has expired, or the message was "
		  "revoked or deleted. Open the link from the e-mail again to download "
		  "the attachment (if the message can still be viewed).</p>");
		break;
	case WEB_GONE_LINK:
		P("<p>The link has expired, was opened as many times as the sender allowed, was "
		  "revoked by the sender, or is not complete. Encrypted messages are deleted from "
		  "the server at that point and cannot be recovered.</p>"
		  "<p>If you still need it, ask the sender to send it again.</p>");
		break;
	}
	P("</div>");
	rv |= page_end(b);
	return rv;
}

int
web_page_notice(struct sp_buf *b, const char *title, const char *text)
{
	int rv = page_begin(b, title);

	P("<div class=\"card\"><h1>");
	E(title);
	P("</h1><p>");
	E(text);
	P("</p></div>");
	rv |= page_end(b);
	return rv;
}

int
web_page_index(struct sp_buf *b)
{
	return web_page_notice(b, "sealpost viewer",
	                       "This server shows end-to-end encrypted messages. Open the link "
	                       "from the e-mail you received to read yours.");
}

static int
header_row(struct sp_buf *b, const char *name, const char *value)
{
	int rv = 0;

	if (value == NULL)
		return 0;
	P("<dt>");
	E(name);
	P("</dt><dd>");
	E(value);
	P("</dd>");
	return rv;
}

/* Defense in depth for the HTML part: the iframe document inherits the page's
 * CSP (srcdoc), and this meta policy applies on top of it in any browser that
 * would not inherit: nothing remote, no scripts, no styles (the sanitiser
 * drops them), no forms, no <base>; images only as data: URLs. */
#define HTML_PART_META "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; " \
                       "img-src data:; form-action 'none'; base-uri 'none'\">"

int
web_page_message(struct sp_buf *b, const char *action, const struct sp_view *m,
                 const char *cap, uint64_t views, uint64_t max_views)
{
	int rv = page_begin(b, m->subject ? m->subject : "Encrypted message");
	size_t i;

	P("<div class=\"card\"><h1>");
	E(m->subject ? m->subject : "(no subject)");
	P("</h1><dl class=\"hdrs\">");
	rv |= header_row(b, "From", m->from);
	rv |= header_row(b, "To", m->to);
	rv |= header_row(b, "Cc", m->cc);
	rv |= header_row(b, "Date", m->date);
	P("</dl></div>\n<div class=\"card\">");
	if (m->html) {
		/* The sandbox allows only popups, for the sanitiser's target="_blank"
		 * rel="noopener noreferrer" links, and lets them escape it (so the
		 * linked site works normally in its own tab): no scripts, no same
		 * origin, no forms, no top navigation.  m->html is sanitised
		 * (crypto/html_sanitize.h); it goes in srcdoc, escaped. */
		P("<iframe sandbox=\"" WEB_MESSAGE_SANDBOX "\" referrerpolicy=\"no-referrer\" "
		  "loading=\"eager\" title=\"HTML version of the message\" srcdoc=\"");
		E(HTML_PART_META);
		E(m->html);
		P("\"></iframe>");
		if (m->text) {
			P("<details><summary>Plain-text version</summary><pre class=\"body\">");
			E(m->text);
			P("</pre></details>");
		}
		P("<p class=\"muted\">Remote images and scripts in this message are blocked. "
		  "Links open in a new tab.</p>");
	} else {
		if (m->html_refused)
			P("<p class=\"muted\">The HTML version of this message is too large or too "
			  "complex to show safely.</p>");
		if (m->text) {
			P("<pre class=\"body\">");
			E(m->text);
			P("</pre>");
		} else {
			P("<p class=\"muted\">(This message has no text.)</p>");
		}
	}
	P("</div>\n");
	if (m->n_att > 0) {
		P("<div class=\"card\"><h2>Attachments</h2><ul class=\"att\">");
		for (i = 0; i < m->n_att; i++) {
			char size[32], part[24];
			web_format_size(m->att[i].len, size, sizeof size);
			snprintf(part, sizeof part, "%zu", i);
			P("<li><span><span class=\"name\">");
			E(m->att[i].filename);
			P("</span> <span class=\"muted\">");
			E(size);
			P("</span></span><form method=\"post\" action=\"");
			E(action);
			P("\"><input type=\"hidden\" name=\"dl\" value=\"");
			E(cap);
			P("\"><input type=\"hidden\" name=\"part\" value=\"");
			E(part);
			P("\"><button type=\"submit\">Download</button></form></li>");
		}
		P("</ul><p class=\"muted\">Downloads stay available for 10 minutes after opening.</p>");
		if (m->truncated)
			P("<p class=\"err\">This message has more parts than the viewer shows.</p>");
		P("</div>\n");
	}
	P("<div class=\"card\"><p class=\"muted\">");
	if (max_views != 0 && views >= max_views) {
		P("This was the last allowed view: the encrypted message has now been deleted "
		  "from the server. Save what you need before closing this page.");
	} else if (max_views != 0) {
		char s[64];
		snprintf(s, sizeof s, "%" PRIu64 " of %" PRIu64, views, max_views);
		P("View ");
		E(s);
		P(". ");
	}
	P("This page is not stored by your browser's cache.</p></div>");
	rv |= page_end(b);
	return rv;
}

struct outbox_ctx {
	struct sp_buf *b;
	const struct link_store_link *links;
	size_t n_links;
	const char *token;
	int64_t now;
	int rv;
};

static const struct link_store_link *
find_link(const struct outbox_ctx *c, const char *id)
{
	size_t i;

	for (i = 0; id && i < c->n_links; i++)
		if (strcmp(c->links[i].id, id) == 0)
			return &c->links[i];
	return NULL;
}

static void
revoke_form(struct sp_buf *b, int *rvp, const char *token, const char *id, bool whole,
            const char *label)
{
	int rv = 0;

	P("<form class=\"inline\" method=\"post\" action=\"/outbox/revoke\">"
	  "<input type=\"hidden\" name=\"token\" value=\"");
	E(token);
	P("\"><input type=\"hidden\" name=\"link\" value=\"");
	E(id);
	P("\"><input type=\"hidden\" name=\"scope\" value=\"");
	P(whole ? "message" : "link");
	P("\"><button type=\"submit\" class=\"danger\">");
	E(label);
	P("</button></form>");
	*rvp |= rv;
}

static void
outbox_entry(const struct web_outbox_entry *e, void *arg)
{
	struct outbox_ctx *c = arg;
	struct sp_buf *b = c->b;
	const char *any_live = NULL;
	char when[64], exp[64];
	int rv = 0;
	size_t i;

	format_time(e->sent, when, sizeof when);
	format_time(e->expires, exp, sizeof exp);
	P("<div class=\"card\"><h2>");
	E(e->subject ? e->subject : "(subject not recorded)");
	P("</h2><p class=\"muted\">From ");
	E(e->from);
	P(" &middot; sent ");
	E(when);
	P(" &middot; links expire ");
	E(exp);
	P("</p><table><tr><th>Recipient</th><th>Form</th><th>Link and password</th>"
	  "<th>Views</th><th></th></tr>");
	for (i = 0; i < e->n_rcpts; i++) {
		const struct web_outbox_rcpt *r = &e->rcpts[i];
		const struct link_store_link *l = find_link(c, r->link_id);
		bool live = l && link_store_link_live(l, c->now);

		P("<tr><td>");
		E(r->address);
		P("</td><td>");
		E(r->form);
		if (r->detail) {
			P("<br><code>");
			E(r->detail);
			P("</code>");
		}
		P("</td><td>");
		if (r->url) {
			P("<code>");
			E(r->url);
			P("</code><br>password: <code>");
			E(r->password ? r->password : "");
			P("</code>");
		}
		P("</td><td>");
		if (r->link_id && l) {
			char v[64];
			if (l->max_views)
				snprintf(v, sizeof v, "%" PRIu64 " / %" PRIu64, l->views, l->max_views);
			else
				snprintf(v, sizeof v, "%" PRIu64, l->views);
			E(v);
			if (l->failed) {
				snprintf(v, sizeof v, "%" PRIu64, l->failed);
				P("<br><span class=\"muted\">");
				E(v);
				P(" wrong password(s)</span>");
			}
		} else if (r->link_id) {
			P("<span class=\"muted\">gone</span>");
		}
		P("</td><td>");
		if (live) {
			revoke_form(b, &rv, c->token, r->link_id, false, "Revoke");
			any_live = r->link_id;
		}
		P("</td></tr>");
	}
	P("</table>");
	if (e->n_dropped) {
		char s[32];
		snprintf(s, sizeof s, "%zu", e->n_dropped);
		P("<p class=\"muted\">");
		E(s);
		P(" more recipients not shown.</p>");
	}
	if (any_live) {
		P("<p>");
		revoke_form(b, &rv, c->token, any_live, true, "Revoke the whole message");
		P("</p>");
	}
	P("</div>\n");
	c->rv |= rv;
}

int
web_page_outbox(struct sp_buf *b, const struct link_store_link *links, size_t n_links,
                const char *token, int64_t now, const char *notice)
{
	struct outbox_ctx c = { .b = b, .links = links, .n_links = n_links, .token = token,
	                        .now = now };
	int rv = page_begin(b, "sealpost outbox");

	P("<div class=\"card\"><h1>Outbox</h1><p>Recent messages with link recipients, kept in "
	  "memory only (they are gone after a restart). This page is served to this computer "
	  "only, at an address with a secret in it: do not share it. Give each password to its recipient by another channel than e-mail.</p>");
	if (notice) {
		P("<p class=\"err\" role=\"status\">");
		E(notice);
		P("</p>");
	}
	if (web_outbox_count() == 0)
		P("<p class=\"muted\">No link messages sent since sealpost started.</p>");
	P("</div>\n");
	web_outbox_foreach(outbox_entry, &c);
	rv |= c.rv;
	rv |= page_end(b);
	return rv;
}

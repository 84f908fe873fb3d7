/* web_download.c - an attachment of an unlocked message, behind its download
 * capability (web_session.h), which lives no longer than its link. */
#include "web_internal.h"

#include <string.h>

#include "log.h"
#include "web_html.h"
#include "view_render.h"
#include "web_session.h"

enum link_store_rc
web_link_check(struct web_server *ws, const char *id, char *err, size_t errsz)
{
	struct link_store_link l;
	enum link_store_rc rc;

	rc = link_store_get(ws->store, id, sp_time(), &l, err, errsz);
	link_store_link_clear(&l);
	return rc;
}

void
web_downloads_end(struct web_server *ws, const char *id)
{
	if (web_sessions_drop_link(ws->sessions, id) > 0)
		sp_log_info("viewer: link %s is gone: its downloads end", id);
}

enum MHD_Result
web_download(struct web_server *ws, struct web_req *r, const char *id)
{
	char ascii[128], err[SP_ERRLEN];
	struct sp_view_attachment a;
	struct sp_buf body, disp;
	enum link_store_rc rc;
	enum MHD_Result ret;
	bool last_view = false;
	uint64_t part;

	if (sp_parse_uint(r->part, 0, SP_VIEW_MAX_PARTS, &part, err, sizeof err) < 0 ||
	    web_sessions_get(ws->sessions, r->dl, id, (size_t)part, sp_now_ms(), &a, &last_view) < 0)
		return web_respond_gone(ws, r, WEB_GONE_DOWNLOAD);
	/* A capability lives no longer than its link.  The store is asked every
	 * time: `sealpost revoke` is another process and tells nobody, and expiry,
	 * a sibling's revoke or another viewer's destruction happen there too.  The
	 * view that used the link up deleted it itself; its capability stands alone
	 * (web_session.h). */
	if (!last_view) {
		rc = web_link_check(ws, id, err, sizeof err);
		if (rc != LINK_STORE_OK) {
			sp_view_attachment_clear(&a);
			if (rc == LINK_STORE_ERROR)
				return web_respond_store_error(ws, r, err);
			web_downloads_end(ws, id);
			return web_respond_gone(ws, r, WEB_GONE_DOWNLOAD);
		}
	}
	/* Always a download, never rendered: an HTML or SVG attachment served
	 * inline from this origin would be a script on the viewer's own site. */
	web_ascii_filename(a.filename, "attachment", ascii, sizeof ascii);
	sp_buf_init(&disp, 0);
	sp_buf_printf(&disp, "attachment; filename=\"%s\"; filename*=UTF-8''", ascii);
	web_percent_encode(&disp, a.filename, strlen(a.filename));
	sp_buf_init(&body, 0);
	sp_buf_append(&body, a.data, a.len);
	ret = web_respond(ws, r, MHD_HTTP_OK, WEB_CSP_NONE, "application/octet-stream", &body,
	                  "Content-Disposition", disp.data, NULL, NULL);
	sp_buf_free(&disp);
	sp_view_attachment_clear(&a);
	return ret;
}

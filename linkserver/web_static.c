/* web_static.c - the v2 link page and its scripts: compiled-in bytes
 * (web_assets.h), the same for every link, so that nothing about a link is
 * in them and a sender can check that the host serves the code they built. */
#include "web_internal.h"

#include <string.h>

#include "web_assets.h"

/* The v2 page: scripts only from this origin (plus WebAssembly compilation,
 * which libsodium needs); its requests only back to this viewer; the message's
 * HTML only in a frame from srcdoc or a blob: URL, images in it only data:.
 * Documented in docs/viewer.md ("The v2 page"). */
#define WEB_CSP_V2_PAGE                                                                         \
	"default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; "         \
	"connect-src 'self'; img-src 'self' data:; frame-src 'self' blob:; base-uri 'none'; " \
	"form-action 'self'; frame-ancestors 'none'"
/* Scripts and the style sheet: nothing to run or load inside them as documents. */
#define WEB_CSP_ASSET "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; sandbox"
/* The page is tiny and stays out of every cache (like every page of ours).
 * The assets may be kept but are checked again on every use (ETag, 304):
 * their names are fixed, and an upgraded viewer must never run an old
 * app.js against new routes. */
#define WEB_CACHE_PAGE "no-store"
#define WEB_CACHE_ASSET "no-cache"
#define WEB_STATIC_PREFIX "/static/"

enum MHD_Result
web_v2_page(struct web_server *ws, struct web_req *r)
{
	const struct web_asset *a = web_asset_find(WEB_ASSET_PAGE);

	if (a == NULL)
		return web_respond_not_found(ws, r);
	return web_respond_asset(ws, r, a, WEB_CSP_V2_PAGE, WEB_CACHE_PAGE);
}

enum MHD_Result
web_h_static(struct web_server *ws, struct web_req *r)
{
	const char *name = r->url + strlen(WEB_STATIC_PREFIX);
	const struct web_asset *a;

	/* The page itself is served at the links, not here. */
	if (strncmp(r->url, WEB_STATIC_PREFIX, strlen(WEB_STATIC_PREFIX)) != 0 ||
	    strcmp(name, WEB_ASSET_PAGE) == 0 || (a = web_asset_find(name)) == NULL)
		return web_respond_not_found(ws, r);
	return web_respond_asset(ws, r, a, WEB_CSP_ASSET, WEB_CACHE_ASSET);
}

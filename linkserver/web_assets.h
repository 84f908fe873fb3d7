/* web_assets.h - the browser page of link v2 and its scripts, compiled in.
 *
 * viewer/build.py writes the table (web_assets_data.c) at build time from
 * viewer/ and the npm packages package-lock.json pins; the bytes and their
 * SHA-256 are what `GET /static/<path>` serves and what a sender can compare
 * against (docs/viewer.md, "The v2 page"). */
#ifndef SP_WEB_ASSETS_H
#define SP_WEB_ASSETS_H

#include <stddef.h>

struct web_asset {
	const char *path;          /* "app.js": the name under /static/ */
	const char *content_type;
	const unsigned char *data;
	size_t len;
	const char *sha256_hex;    /* of data: the ETag, and for checks */
};

extern const struct web_asset web_assets[];
extern const size_t web_assets_count;

/* The page every v2 link serves (same bytes for every link). */
#define WEB_ASSET_PAGE "page.html"

/* The asset named `path` (no leading slash), or NULL. */
const struct web_asset *web_asset_find(const char *path);

#endif

/* web_assets.c - look up the compiled-in browser assets (web_assets.h). */
#include "web_assets.h"

#include <string.h>

const struct web_asset *
web_asset_find(const char *path)
{
	size_t i;

	if (path == NULL)
		return NULL;
	for (i = 0; i < web_assets_count; i++)
		if (strcmp(web_assets[i].path, path) == 0)
			return &web_assets[i];
	return NULL;
}

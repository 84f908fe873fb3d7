/* check_viewer.c - `sealpost check --viewer [URL]`: does a viewer serve
 * exactly this build's page and scripts?
 *
 * Fetches the v2 page at URL + a well-formed (never issued) link id, and every
 * asset of the compiled-in table (web_assets.h) at the URL's origin
 * /static/<name>, and compares the SHA-256 of each body with the hash this
 * build was made with (docs/viewer.md, "Checking a viewer"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <sodium.h>

#include "cli.h"
#include "web_assets.h"

/* Largest body read for one asset: the biggest script (libsodium) is about
 * 400 KB; anything past this is not ours and is not read further. */
#define CHECK_VIEWER_MAX_BODY (4u * 1024 * 1024)
/* Seconds to connect, and for a whole request (connect, TLS, body). */
#define CHECK_VIEWER_CONNECT_TIMEOUT_S 10L
#define CHECK_VIEWER_TIMEOUT_S 30L
/* A link id of the v2 form (22 base64url characters, 16 bytes) that no
 * viewer issues by chance: the page is the same for every id. */
#define CHECK_VIEWER_DUMMY_ID "AAAAAAAAAAAAAAAAAAAAAA"

struct fetch {
	crypto_hash_sha256_state sha;
	size_t len;
	bool too_big;
};

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
	struct fetch *f = arg;
	size_t len = size * n;

	if (len > CHECK_VIEWER_MAX_BODY - f->len) {
		f->too_big = true;
		return 0; /* ends the transfer (CURLE_WRITE_ERROR) */
	}
	f->len += len;
	crypto_hash_sha256_update(&f->sha, (const unsigned char *)p, len);
	return len;
}

/* GET url; *status the HTTP status, hex the body's SHA-256 on 200.
 * Returns 0, or -1 with a transport error in err. */
static int
fetch(const char *url, const char *ca_file, long *status, char hex[65], char *err, size_t errsz)
{
	char cerr[CURL_ERROR_SIZE] = "";
	unsigned char md[crypto_hash_sha256_BYTES];
	struct fetch f = { .len = 0 };
	CURLcode rc;
	CURL *c = curl_easy_init();

	*status = 0;
	hex[0] = '\0';
	if (c == NULL) {
		sp_seterr(err, errsz, "cannot start an HTTP client");
		return -1;
	}
	crypto_hash_sha256_init(&f.sha);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https,http");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (ca_file && ca_file[0])
		curl_easy_setopt(c, CURLOPT_CAINFO, ca_file);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, CHECK_VIEWER_CONNECT_TIMEOUT_S);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, CHECK_VIEWER_TIMEOUT_S);
	curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)CHECK_VIEWER_MAX_BODY);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	/* The bytes as served, not decoded from a transfer encoding we did not ask for. */
	curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, NULL);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &f);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "sealpost check");
	rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	curl_easy_cleanup(c);
	if (f.too_big || rc == CURLE_FILESIZE_EXCEEDED) {
		sp_seterr(err, errsz, "response larger than %u bytes", CHECK_VIEWER_MAX_BODY);
		return -1;
	}
	if (rc != CURLE_OK) {
		sp_seterr(err, errsz, "%s", cerr[0] ? cerr : curl_easy_strerror(rc));
		return -1;
	}
	crypto_hash_sha256_final(&f.sha, md);
	sodium_bin2hex(hex, 65, md, sizeof md);
	return 0;
}

/* The page's URL and origin + "/static/" from base.  Returns 0, or -1 with
 * the reason in err. */
static int
viewer_urls(const char *base, char **page, char **static_prefix, char *err, size_t errsz)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *origin = NULL;
	size_t n = strlen(base);
	int rv = -1;

	*page = *static_prefix = NULL;
	if (u == NULL || curl_url_set(u, CURLUPART_URL, base, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    (strcmp(scheme, "https") != 0 && strcmp(scheme, "http") != 0)) {
		sp_seterr(err, errsz, "not an http(s) URL: %s", base);
		goto out;
	}
	if (strchr(base, '?') || strchr(base, '#')) {
		sp_seterr(err, errsz, "the viewer URL is the links' base, without query or fragment: %s", base);
		goto out;
	}
	if (curl_url_set(u, CURLUPART_PATH, "/", 0) != CURLUE_OK ||
	    curl_url_set(u, CURLUPART_USER, NULL, 0) != CURLUE_OK ||
	    curl_url_set(u, CURLUPART_PASSWORD, NULL, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_URL, &origin, 0) != CURLUE_OK) {
		sp_seterr(err, errsz, "not an http(s) URL: %s", base);
		goto out;
	}
	*page = sp_xasprintf("%s%s%s", base, n && base[n - 1] == '/' ? "" : "/", CHECK_VIEWER_DUMMY_ID);
	*static_prefix = sp_xasprintf("%sstatic/", origin);  /* origin ends in "/" */
	rv = 0;
out:
	curl_free(scheme);
	curl_free(origin);
	curl_url_cleanup(u);
	return rv;
}

int
check_viewer(const char *base, const char *ca_file)
{
	char *page = NULL, *prefix = NULL, err[CURL_ERROR_SIZE + 64], hex[65];
	size_t i, bad = 0;
	long status;

	if (viewer_urls(base, &page, &prefix, err, sizeof err) < 0) {
		fprintf(stderr, "sealpost: check --viewer: %s\n", err);
		return EXIT_USAGE;
	}
	if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "sealpost: check --viewer: cannot initialise the crypto or HTTP library\n");
		free(page);
		free(prefix);
		return EXIT_RUNTIME;
	}
	printf("viewer      %s (page at %s, scripts at %s)\n", base, page, prefix);
	for (i = 0; i < web_assets_count; i++) {
		const struct web_asset *a = &web_assets[i];
		bool is_page = strcmp(a->path, WEB_ASSET_PAGE) == 0;
		char *url = is_page ? sp_xasprintf("%s", page) : sp_xasprintf("%s%s", prefix, a->path);
		int rc = fetch(url, ca_file, &status, hex, err, sizeof err);

		if (rc < 0 && i == 0 && status == 0) {
			/* Nothing answered at all: say so once, not per asset. */
			printf("viewer      FAILED: cannot fetch %s: %s\n", url, err);
			printf("check FAILED: the viewer is unreachable\n");
			free(url);
			free(page);
			free(prefix);
			curl_global_cleanup();
			return EXIT_RUNTIME;
		}
		if (rc < 0) {
			printf("%-20s missing: %s (expected %s)\n", a->path, err, a->sha256_hex);
			bad++;
		} else if (status != 200) {
			printf("%-20s missing: HTTP %ld at %s (expected %s)\n", a->path, status, url, a->sha256_hex);
			bad++;
		} else if (strcmp(hex, a->sha256_hex) != 0) {
			printf("%-20s DIFFERS: expected %s, served %s\n", a->path, a->sha256_hex, hex);
			bad++;
		} else {
			printf("%-20s match %s\n", a->path, hex);
		}
		free(url);
	}
	if (bad)
		printf("check FAILED: %zu of %zu files differ from this build or are missing\n", bad, web_assets_count);
	else
		printf("check ok: the viewer serves this build's page and scripts (%zu files)\n", web_assets_count);
	free(page);
	free(prefix);
	curl_global_cleanup();
	return bad ? EXIT_RUNTIME : EXIT_OK;
}

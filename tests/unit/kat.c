/* kat.c - loading the known-answer vectors under tests/vectors/. */
#include "kat.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

GKeyFile *
kat_load(const char *name)
{
	GKeyFile *kf = g_key_file_new();
	GError *error = NULL;
	const char *env = g_getenv("SEALPOST_VECTORS_DIR");
	char *dir, *srcdir, *path, *exe, *tmp;

	/* __FILE__ is this source file as the compiler saw it: absolute, or
	 * relative to the top build directory, where meson runs the tests. */
	srcdir = g_path_get_dirname(__FILE__);
	dir = env ? g_strdup(env) : g_build_filename(srcdir, "..", "vectors", NULL);
	path = g_build_filename(dir, name, NULL);
	if (env == NULL && !g_path_is_absolute(path) && !g_file_test(path, G_FILE_TEST_EXISTS)) {
		/* Run from elsewhere: resolve against the build directory, the
		 * parent of the tests/ directory holding this program. */
		exe = g_file_read_link("/proc/self/exe", NULL);
		if (exe != NULL) {
			char *tests = g_path_get_dirname(exe);
			char *top = g_path_get_dirname(tests);

			tmp = g_build_filename(top, path, NULL);
			g_free(path);
			path = tmp;
			g_free(top);
			g_free(tests);
			g_free(exe);
		}
	}
	if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &error))
		g_error("cannot load vectors %s: %s (set SEALPOST_VECTORS_DIR)", path, error->message);
	g_free(path);
	g_free(dir);
	g_free(srcdir);
	return kf;
}

unsigned char *
kat_hex(GKeyFile *kf, const char *group, const char *key, size_t want, size_t *len)
{
	char *hex = g_key_file_get_string(kf, group, key, NULL);
	unsigned char *bin;
	size_t n = 0;

	if (hex == NULL)
		g_error("vector [%s] has no %s", group, key);
	bin = g_malloc(strlen(hex) / 2 + 1);
	if (sodium_hex2bin(bin, strlen(hex) / 2 + 1, hex, strlen(hex), NULL, &n, NULL) != 0 ||
	    (want != 0 && n != want))
		g_error("vector [%s] %s: bad hex or length", group, key);
	g_free(hex);
	if (len)
		*len = n;
	return bin;
}

unsigned char *
kat_pattern(size_t len)
{
	unsigned char *p = g_malloc(len ? len : 1);
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = (unsigned char)(i % 251);
	return p;
}

unsigned char *
kat_plaintext(GKeyFile *kf, const char *group, size_t *len)
{
	if (g_key_file_has_key(kf, group, "plaintext", NULL))
		return kat_hex(kf, group, "plaintext", 0, len);
	*len = (size_t)g_key_file_get_uint64(kf, group, "plaintext_mod251_length", NULL);
	return kat_pattern(*len);
}

void
kat_check_sealed(GKeyFile *kf, const char *group, const void *p, size_t len)
{
	unsigned char digest[crypto_hash_sha256_BYTES];
	char hex[crypto_hash_sha256_BYTES * 2 + 1];
	char *want;

	if (g_key_file_has_key(kf, group, "sealed", NULL)) {
		size_t n;
		unsigned char *bin = kat_hex(kf, group, "sealed", 0, &n);

		g_assert_cmpmem(p, len, bin, n);
		g_free(bin);
		return;
	}
	g_assert_cmpuint(len, ==, g_key_file_get_uint64(kf, group, "sealed_length", NULL));
	crypto_hash_sha256(digest, p, len);
	sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
	want = g_key_file_get_string(kf, group, "sealed_sha256", NULL);
	g_assert_nonnull(want);
	g_assert_cmpstr(hex, ==, want);
	g_free(want);
}

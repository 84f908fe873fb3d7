/* test_pgp_packets.c - "is this really an encrypted OpenPGP message?": the
 * armor decoder and the packet walker, on messages made by gpg
 * (tests/vectors/pgp/README.md) and hostile ones derived from them. */
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "pgp_packets.h"

/* tests/vectors/pgp/NAME ($SEALPOST_VECTORS_DIR, else next to this source
 * file, which meson compiles relative to the build directory it runs in). */
static char *
load(const char *name, size_t *len)
{
	const char *env = g_getenv("SEALPOST_VECTORS_DIR");
	char *srcdir = g_path_get_dirname(__FILE__), *path, *data = NULL;
	GError *error = NULL;
	gsize n;

	path = env ? g_build_filename(env, "pgp", name, NULL) : g_build_filename(srcdir, "..", "vectors", "pgp", name, NULL);
	if (!g_file_get_contents(path, &data, &n, &error))
		g_error("cannot load %s: %s (set SEALPOST_VECTORS_DIR)", path, error->message);
	g_free(path);
	g_free(srcdir);
	*len = n;
	return data;
}

/* The packets of an armored vector file. */
static GByteArray *
packets_of(const char *name)
{
	struct sp_buf b;
	char why[SP_ERRLEN];
	size_t n;
	char *text = load(name, &n);
	GByteArray *a;

	sp_buf_init(&b, 0);
	if (sp_pgp_armor_decode(text, n, &b, why, sizeof why) < 0)
		g_error("%s: %s", name, why);
	a = g_byte_array_new();
	g_byte_array_append(a, (const guint8 *)b.data, (guint)b.len);
	sp_buf_free(&b);
	g_free(text);
	return a;
}

static int
check(const GByteArray *a, char *err, size_t errsz)
{
	err[0] = '\0';
	return sp_pgp_packets_check(a->data, a->len, err, errsz);
}

/* ---- real messages, as gpg made them ---- */

static const struct {
	const char *file;
	int want;
	const char *why;     /* a word of the reason for -1 */
} files[] = {
	{ "pkesk-seipd.asc", 0, NULL },
	{ "two-pkesk-seipd.asc", 0, NULL },
	{ "skesk-seipd.asc", 0, NULL },
	{ "partial-seipd.asc", 0, NULL },
	{ "signed.asc", -1, "tag 8" },
	{ "literal.asc", -1, "tag 11" },
	{ "sed.asc", -1, "SED" },
};

static void
test_files(void)
{
	char why[SP_ERRLEN];
	size_t i, n;

	for (i = 0; i < G_N_ELEMENTS(files); i++) {
		GByteArray *a = packets_of(files[i].file);
		char *text = load(files[i].file, &n);
		g_test_message("%s", files[i].file);
		g_assert_cmpint(check(a, why, sizeof why), ==, files[i].want);
		if (files[i].why)
			g_assert_nonnull(strstr(why, files[i].why));
		g_assert_cmpint(sp_pgp_armored_is_encrypted(text, n, why, sizeof why), ==, files[i].want == 0);
		g_free(text);
		g_byte_array_unref(a);
	}
	{
		/* Binary (not armored): PKESK, SKESK, SEIPD. */
		char *bin = load("pkesk-skesk-seipd.gpg", &n);
		g_assert_cmpint(sp_pgp_packets_check((const unsigned char *)bin, n, why, sizeof why), ==, 0);
		g_free(bin);
	}
}

/* ---- hostile packet sequences, derived from pkesk-seipd.asc ---- */

/* pkesk-seipd.asc: PKESK at 0 (old format, 3-byte header, 268 bytes), SEIPD
 * from 271 to the end. */
#define PKESK_END 271

static GByteArray *
cat(const guint8 *a, size_t an, const guint8 *b, size_t bn)
{
	GByteArray *r = g_byte_array_new();

	g_byte_array_append(r, a, (guint)an);
	g_byte_array_append(r, b, (guint)bn);
	return r;
}

/* A synthetic data packet of tag `tag`, version byte `ver`, body length
 * `len`, framed in partial chunks of the given exponents first (0 = none),
 * then a final two-octet length for the rest. */
static GByteArray *
data_packet(unsigned tag, unsigned ver, size_t len, const unsigned *exps, size_t nexp, bool final)
{
	GByteArray *r = g_byte_array_new();
	guint8 *body = g_malloc0(len), b;
	size_t off = 0, i;

	body[0] = (guint8)ver;
	b = (guint8)(0xc0 | tag);
	g_byte_array_append(r, &b, 1);
	for (i = 0; i < nexp; i++) {
		size_t k = (size_t)1 << exps[i];
		b = (guint8)(0xe0 | exps[i]);
		g_byte_array_append(r, &b, 1);
		g_byte_array_append(r, body + off, (guint)k);
		off += k;
	}
	if (final) {
		size_t rest = len - off;
		guint8 l[2] = { (guint8)(((rest - 192) >> 8) + 192), (guint8)((rest - 192) & 0xff) };
		g_assert_cmpuint(rest, >=, 192);
		g_assert_cmpuint(rest, <, 8384);
		g_byte_array_append(r, l, 2);
		g_byte_array_append(r, body + off, (guint)rest);
	}
	g_free(body);
	return r;
}

static void
test_hostile(void)
{
	GByteArray *good = packets_of("pkesk-seipd.asc"), *a;
	const guint8 *g = good->data;
	size_t n = good->len;
	char why[SP_ERRLEN];
	static const guint8 literal[] = { 0xcb, 0x08, 'b', 0, 0, 0, 0, 0, 'h', 'i' };
	static const guint8 marker[] = { 0xca, 0x03, 'P', 'G', 'P' };
	static const guint8 zero[] = { 0 };

	g_assert_cmpuint(n, >, PKESK_END);
	g_assert_cmpuint(g[0], ==, 0x85);
	g_assert_cmpuint(g[PKESK_END], ==, 0xd2);
	g_assert_cmpint(check(good, why, sizeof why), ==, 0);

	/* Truncated: by one byte, inside the PKESK, inside a header. */
	a = cat(g, n - 1, NULL, 0);
	g_assert_cmpint(check(a, why, sizeof why), ==, -1);
	g_assert_nonnull(strstr(why, "truncated"));
	g_byte_array_unref(a);
	a = cat(g, 100, NULL, 0);
	g_assert_cmpint(check(a, why, sizeof why), ==, -1);
	g_byte_array_unref(a);
	a = cat(g, 2, NULL, 0);
	g_assert_cmpint(check(a, why, sizeof why), ==, -1);
	g_byte_array_unref(a);
	/* Session keys and nothing to open with them. */
	a = cat(g, PKESK_END, NULL, 0);
	g_assert_cmpint(check(a, why, sizeof why), ==, -1);
	g_assert_nonnull(strstr(why, "without encrypted data"));
	g_byte_array_unref(a);
	/* Encrypted data nobody holds a session key for. */
	a = cat(g + PKESK_END, n - PKESK_END, NULL, 0);
	g_assert_cmpint(check(a, why, sizeof why), ==, -1);
	g_byte_array_unref(a);
	/* A literal packet in clear after the encrypted one, and before it. */
	a = cat(g, n, literal, sizeof literal);
	g_assert_cmpint(check(a, why, sizeof why), ==, -1);
	g_assert_nonnull(strstr(why, "after the encrypted data"));
	g_byte_array_unref(a);
	a = cat(literal, sizeof literal, g, n);
	g_assert_cmpint(check(a, why, sizeof why), ==, -1);
	g_assert_nonnull(strstr(why, "tag 11"));
	g_byte_array_unref(a);
	/* One stray byte after, two encrypted packets, a marker packet. */
	a = cat(g, n, zero, 1);
	g_assert_cmpint(check(a, why, sizeof why), ==, -1);
	g_byte_array_unref(a);
	a = cat(g, n, g + PKESK_END, n - PKESK_END);
	g_assert_cmpint(check(a, why, sizeof why), ==, -1);
	g_byte_array_unref(a);
	a = cat(marker, sizeof marker, g, n);
	g_assert_cmpint(check(a, why, sizeof why), ==, -1);
	g_byte_array_unref(a);
	/* Unknown versions of the PKESK and of the SEIPD. */
	a = cat(g, n, NULL, 0);
	a->data[3] = 4;
	g_assert_cmpint(check(a, why, sizeof why), ==, -1);
	g_assert_nonnull(strstr(why, "PKESK version 4"));
	a->data[3] = 3;
	a->data[PKESK_END + 2] = 3;
	g_assert_cmpint(check(a, why, sizeof why), ==, -1);
	g_assert_nonnull(strstr(why, "unknown version"));
	/* SEIPD v2 (RFC 9580) is accepted. */
	a->data[PKESK_END + 2] = 2;
	g_assert_cmpint(check(a, why, sizeof why), ==, 0);
	/* The PKESK with an old-format indeterminate length. */
	a->data[0] = 0x87;
	g_assert_cmpint(check(a, why, sizeof why), ==, -1);
	g_assert_nonnull(strstr(why, "indeterminate"));
	/* A five-octet length far past the end. */
	{
		static const guint8 huge[] = { 0xc1, 0xff, 0x7f, 0xff, 0xff, 0xff, 3 };
		GByteArray *h = cat(huge, sizeof huge, g + PKESK_END, n - PKESK_END);
		g_assert_cmpint(check(h, why, sizeof why), ==, -1);
		g_assert_nonnull(strstr(why, "truncated"));
		g_byte_array_unref(h);
	}
	g_byte_array_unref(a);
	g_assert_cmpint(sp_pgp_packets_check(NULL, 0, why, sizeof why), ==, -1);
	g_byte_array_unref(good);
}

/* Partial body lengths: the PKESK of the real vector + synthetic data packets. */
static void
test_partial(void)
{
	GByteArray *good = packets_of("pkesk-seipd.asc"), *d, *a;
	char why[SP_ERRLEN];
	static const unsigned ok_chain[] = { 9, 0, 0, 3 };     /* 512, 1, 1, 8 */
	static const unsigned small_first[] = { 8 };           /* 256 */
	static const struct {
		const char *label;
		unsigned tag, ver;
		const unsigned *exps;
		size_t nexp;
		bool final;
		int want;
	} cases[] = {
		{ "SEIPD v1 partial chain", 18, 1, ok_chain, G_N_ELEMENTS(ok_chain), true, 0 },
		{ "SEIPD v2 one length", 18, 2, NULL, 0, true, 0 },
		{ "OCB (tag 20) v1", 20, 1, ok_chain, G_N_ELEMENTS(ok_chain), true, 0 },
		{ "OCB (tag 20) v2", 20, 2, NULL, 0, true, -1 },
		{ "first partial below 512", 18, 1, small_first, 1, true, -1 },
		{ "chain that never ends", 18, 1, ok_chain, G_N_ELEMENTS(ok_chain), false, -1 },
		{ "SED (tag 9)", 9, 1, NULL, 0, true, -1 },
		{ "literal data (tag 11)", 11, 'b', ok_chain, G_N_ELEMENTS(ok_chain), true, -1 },
	};
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_test_message("%s", cases[i].label);
		d = data_packet(cases[i].tag, cases[i].ver, 1000, cases[i].exps, cases[i].nexp, cases[i].final);
		a = cat(good->data, PKESK_END, d->data, d->len);
		g_assert_cmpint(check(a, why, sizeof why), ==, cases[i].want);
		if (cases[i].want == 0) {
			/* The same, cut anywhere, is never whole. */
			size_t cut;
			for (cut = PKESK_END + 1; cut < a->len; cut += 37) {
				GByteArray *t = cat(a->data, cut, NULL, 0);
				g_assert_cmpint(check(t, why, sizeof why), ==, -1);
				g_byte_array_unref(t);
			}
		}
		g_byte_array_unref(a);
		g_byte_array_unref(d);
	}
	g_byte_array_unref(good);
}

/* More session-key packets than SP_PGP_MAX_ESK. */
static void
test_esk_limit(void)
{
	GByteArray *d = data_packet(18, 1, 300, NULL, 0, true), *a = g_byte_array_new();
	static const guint8 skesk[] = { 0xc3, 0x01, 0x04 };
	char why[SP_ERRLEN];
	size_t i;

	for (i = 0; i < SP_PGP_MAX_ESK; i++)
		g_byte_array_append(a, skesk, sizeof skesk);
	g_byte_array_append(a, d->data, d->len);
	g_assert_cmpint(check(a, why, sizeof why), ==, 0);
	g_byte_array_prepend(a, skesk, sizeof skesk);
	g_assert_cmpint(check(a, why, sizeof why), ==, -1);
	g_assert_nonnull(strstr(why, "more than"));
	g_byte_array_unref(a);
	g_byte_array_unref(d);
}

/* ---- the armor ---- */

static char *
replace(const char *s, const char *from, const char *to)
{
	const char *at = strstr(s, from);

	g_assert_nonnull(at);
	return g_strdup_printf("%.*s%s%s", (int)(at - s), s, to, at + strlen(from));
}

/* The encoder: gpg's packets armored again carry gpg's own checksum, decode
 * to the same bytes, and keep every line within SP_PGP_ARMOR_LINE. */
static void
test_armor_encode(void)
{
	GByteArray *a = packets_of("pkesk-seipd.asc");
	struct sp_buf out, back;
	char why[SP_ERRLEN];
	char **lines;

	sp_buf_init(&out, 0);
	sp_buf_init(&back, 0);
	sp_pgp_armor_encode(a->data, a->len, &out);
	g_assert_true(g_str_has_prefix(out.data, "-----BEGIN PGP MESSAGE-----\r\n\r\n"));
	g_assert_true(g_str_has_suffix(out.data, "\r\n=QFqB\r\n-----END PGP MESSAGE-----\r\n"));
	lines = g_strsplit(out.data, "\r\n", -1);
	for (char **l = lines; *l; l++) {
		g_assert_cmpuint(strlen(*l), <=, SP_PGP_ARMOR_LINE);
		g_assert_null(strchr(*l, '\n'));
	}
	g_strfreev(lines);
	if (sp_pgp_armor_decode(out.data, out.len, &back, why, sizeof why) < 0)
		g_error("decoding our own armor: %s", why);
	g_assert_cmpmem(back.data, back.len, a->data, a->len);
	sp_buf_free(&out);
	sp_buf_free(&back);
	g_byte_array_unref(a);
}

static void
test_armor(void)
{
	size_t n;
	char *text = load("pkesk-seipd.asc", &n), *crc, *v, *last;
	char why[SP_ERRLEN];
	GString *s;
	size_t i;
	struct {
		const char *label;
		char *text;
		bool want;
	} cases[24];
	size_t nc = 0;

	g_assert_cmpuint(strlen(text), ==, n);
	crc = strstr(text, "\n=QFqB\n");
	g_assert_nonnull(crc);
	last = g_strndup(crc + 1, 5);
#define CASE(l, t, w) (cases[nc].label = (l), cases[nc].text = (t), cases[nc].want = (w), nc++)
	CASE("as gpg wrote it", g_strdup(text), true);
	s = g_string_new(NULL);
	for (i = 0; i < n; i++) {
		if (text[i] == '\n')
			g_string_append_c(s, '\r');
		g_string_append_c(s, text[i]);
	}
	CASE("CRLF line ends", g_string_free(s, FALSE), true);
	CASE("whitespace around", g_strdup_printf(" \r\n\t\n%s\n\n  \n", text), true);
	CASE("trailing blanks on lines", replace(text, "\n\n", " \t\n\n"), true);
	CASE("armor headers", replace(text, "-----\n\n", "-----\nVersion: GnuPG v2\nComment: https://example.org\n\n"), true);
	CASE("no checksum line", replace(text, "\n=QFqB", ""), true);
	CASE("text before", g_strdup_printf("Hi Bob, the contract:\n%s", text), false);
	CASE("text after", g_strdup_printf("%s\nregards, Alice\n", text), false);
	CASE("two blocks", g_strdup_printf("%s\n%s", text, text), false);
	CASE("bad checksum", replace(text, last, "=QFqC"), false);
	CASE("a data line changed", replace(text, "hQEMAx4X", "hQEMAx4Y"), false);
	CASE("a data line dropped",
	     replace(text, "eUuwDiy0VMfiWX5dMqpMQ1tyAuvKTotv6PLHrHb3ClGLInahqnF8u6xWoZ2YXl86\n", ""), false);
	CASE("a free-text armor header", replace(text, "-----\n\n", "-----\nSubject: the Jones contract\n\n"), false);
	CASE("no empty line after BEGIN", replace(text, "-----\n\n", "-----\n"), false);
	CASE("a non-base64 character", replace(text, "hQEMAx4X", "hQEMAx4*"), false);
	CASE("an empty line in the data", replace(text, "iXCm", "\niXCm"), false);
	CASE("no END line", replace(text, "-----END PGP MESSAGE-----", ""), false);
	v = replace(text, "BEGIN PGP MESSAGE", "BEGIN PGP SIGNED MESSAGE");
	CASE("signed-message armor", replace(v, "END PGP MESSAGE", "END PGP SIGNED MESSAGE"), false);
	g_free(v);
	CASE("padding mid-data", replace(text, "hQEMAx4X", "hQEMAx4="), false);
	CASE("checksum then data", replace(text, "=QFqB\n", "=QFqB\nAAAA\n"), false);
	CASE("empty", g_strdup(""), false);
#undef CASE
	g_assert_cmpuint(nc, <=, G_N_ELEMENTS(cases));
	for (i = 0; i < nc; i++) {
		bool got = sp_pgp_armored_is_encrypted(cases[i].text, strlen(cases[i].text), why, sizeof why);
		if (got != cases[i].want)
			g_error("%s: got %d, want %d (%s)", cases[i].label, got, cases[i].want, why);
		g_free(cases[i].text);
	}
	g_free(last);
	g_free(text);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/pgp_packets/files", test_files);
	g_test_add_func("/pgp_packets/hostile", test_hostile);
	g_test_add_func("/pgp_packets/partial", test_partial);
	g_test_add_func("/pgp_packets/esk_limit", test_esk_limit);
	g_test_add_func("/pgp_packets/armor", test_armor);
	g_test_add_func("/pgp_packets/armor_encode", test_armor_encode);
	return g_test_run();
}

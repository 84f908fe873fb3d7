/* test_sodium.c - the sodium form: keys, the recipients file, the sealed format,
 * the MIME copy, `open`, and the known-answer vectors in tests/vectors/sodium-v1.txt. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <gmime/gmime.h>
#include <sodium.h>

#include "kat.h"
#include "secretstream.h"
#include "sodium_keys.h"
#include "sodium_seal.h"

#define CHUNK SP_SECRETSTREAM_CHUNK
#define CT_CHUNK SP_SECRETSTREAM_CT_CHUNK

static char *tmpdir;

static struct sp_sodium_keypair alice, bob, carol; /* carol is never a recipient */

static void
make_keypair(struct sp_sodium_keypair *kp)
{
	crypto_box_keypair(kp->pk, kp->sk);
}

/* ---- helpers: run open on bytes, build .eml files ---- */

struct opened {
	int rv;
	char err[SP_ERRLEN];
	char *out;
	size_t outlen;
};

static void
opened_free(struct opened *o)
{
	free(o->out);
}

static struct opened
open_bytes(const void *in, size_t inlen, const struct sp_sodium_keypair *kp)
{
	struct opened o = { 0 };
	FILE *fin = tmpfile(), *fout = open_memstream(&o.out, &o.outlen);

	g_assert_nonnull(fin);
	g_assert_nonnull(fout);
	if (inlen)
		g_assert_cmpuint(fwrite(in, 1, inlen, fin), ==, inlen);
	rewind(fin);
	o.rv = sp_sodium_open(fin, fout, kp, o.err, sizeof o.err);
	fclose(fout);
	fclose(fin);
	return o;
}

/* Open must fail, write nothing, and say want. */
static void
expect_open_fails(const char *label, const void *in, size_t inlen, const struct sp_sodium_keypair *kp,
                  const char *want)
{
	struct opened o = open_bytes(in, inlen, kp);

	if (o.rv == 0)
		g_error("%s: opened", label);
	if (o.outlen != 0)
		g_error("%s: %zu bytes of output despite the failure", label, o.outlen);
	if (want != NULL && strstr(o.err, want) == NULL)
		g_error("%s: error '%s' does not say '%s'", label, o.err, want);
	g_assert_cmpuint(strlen(o.err), >, 0);
	opened_free(&o);
}

static GByteArray *
seal_bare(const unsigned char *const *pks, size_t npk, const void *msg, size_t len)
{
	struct sp_buf b;
	struct sp_sodium_sealer *s;
	char err[SP_ERRLEN];
	GByteArray *ga;
	char *data;
	size_t n;

	sp_buf_init(&b, 0);
	s = sp_sodium_sealer_new(pks, npk, sp_write_buf, &b, err, sizeof err);
	if (s == NULL || sp_sodium_sealer_update(s, msg, len, err, sizeof err) < 0 ||
	    sp_sodium_sealer_finish(s, err, sizeof err) < 0)
		g_error("seal: %s", err);
	sp_sodium_sealer_free(s);
	g_assert_cmpuint(b.len, ==, sp_sodium_sealed_size(npk, len));
	data = sp_buf_steal(&b, &n);
	ga = g_byte_array_new_take((guint8 *)data, n);
	return ga;
}

/* Serialise a copy entity inside a message, as the upstream would carry it. */
static GByteArray *
copy_to_eml(GMimeObject *copy, gboolean crlf)
{
	GMimeMessage *m = g_mime_message_new(TRUE);
	GMimeFormatOptions *fo = g_mime_format_options_new();
	GMimeStream *ms = g_mime_stream_mem_new();
	GByteArray *ga = g_byte_array_new();

	g_mime_message_add_mailbox(m, GMIME_ADDRESS_TYPE_FROM, "Alice", "alice@example.org");
	g_mime_message_add_mailbox(m, GMIME_ADDRESS_TYPE_TO, "Bob", "bob@example.net");
	g_mime_message_set_subject(m, "...", NULL);
	g_mime_message_set_mime_part(m, copy);
	g_mime_format_options_set_newline_format(fo, crlf ? GMIME_NEWLINE_FORMAT_DOS : GMIME_NEWLINE_FORMAT_UNIX);
	g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(ms), FALSE);
	g_mime_stream_mem_set_byte_array(GMIME_STREAM_MEM(ms), ga);
	g_assert_cmpint(g_mime_object_write_to_stream(GMIME_OBJECT(m), fo, ms), >, 0);
	g_object_unref(ms);
	g_mime_format_options_free(fo);
	g_object_unref(m);
	return ga;
}

/* An .eml with arbitrary bytes as the sealpost attachment (for damaged files). */
static GByteArray *
bytes_to_eml(const void *p, size_t len, const char *type, const char *filename, int copies, gboolean crlf)
{
	GMimeMultipart *mp = g_mime_multipart_new_with_subtype("mixed");
	GMimeTextPart *t = g_mime_text_part_new_with_subtype("plain");
	GByteArray *ga;
	int i;

	g_mime_text_part_set_text(t, "hello\n");
	g_mime_multipart_add(mp, GMIME_OBJECT(t));
	g_object_unref(t);
	for (i = 0; i < copies; i++) {
		char **tt = g_strsplit(type, "/", 2);
		GMimePart *att = g_mime_part_new_with_type(tt[0], tt[1]);
		GMimeStream *s = g_mime_stream_mem_new_with_buffer(p, len);
		GMimeDataWrapper *dw = g_mime_data_wrapper_new_with_stream(s, GMIME_CONTENT_ENCODING_DEFAULT);

		g_mime_part_set_content(att, dw);
		g_mime_part_set_content_encoding(att, GMIME_CONTENT_ENCODING_BASE64);
		if (filename)
			g_mime_part_set_filename(att, filename);
		g_mime_multipart_add(mp, GMIME_OBJECT(att));
		g_object_unref(dw);
		g_object_unref(s);
		g_object_unref(att);
		g_strfreev(tt);
	}
	ga = copy_to_eml(GMIME_OBJECT(mp), crlf);
	g_object_unref(mp);
	return ga;
}

/* ---- keys ---- */

static void
test_keygen(void)
{
	char *path = g_build_filename(tmpdir, "key1", NULL);
	char *link = g_build_filename(tmpdir, "key-link", NULL);
	char publine[SP_SODIUM_PUBLINE_LEN + 1], publine2[SP_SODIUM_PUBLINE_LEN + 1];
	char err[SP_ERRLEN], *before, *after;
	unsigned char pk[SP_SODIUM_PKBYTES];
	struct sp_sodium_keypair kp;
	struct stat st;
	mode_t old = umask(0);

	/* A permissive umask does not loosen the mode. */
	g_assert_cmpint(sp_sodium_keygen(path, publine, err, sizeof err), ==, 0);
	umask(old);
	g_assert_cmpint(stat(path, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 07777, ==, 0600);
	g_assert_true(g_str_has_prefix(publine, "sealpost1:"));
	g_assert_cmpuint(strlen(publine), ==, SP_SODIUM_PUBLINE_LEN);
	g_assert_cmpint(sp_sodium_parse_public(publine, pk, err, sizeof err), ==, 0);
	g_assert_cmpint(sp_sodium_load_secret(path, &kp, err, sizeof err), ==, 0);
	g_assert_cmpmem(kp.pk, sizeof kp.pk, pk, sizeof pk);
	g_assert_true(g_file_get_contents(path, &before, NULL, NULL));
	g_assert_nonnull(strstr(before, publine));
	/* The secret key never shows up in clear base64 of the sk alone. */

	/* Refuses to overwrite, and leaves the file alone. */
	g_assert_cmpint(sp_sodium_keygen(path, publine2, err, sizeof err), ==, -1);
	g_assert_nonnull(strstr(err, "already exists"));
	g_assert_true(g_file_get_contents(path, &after, NULL, NULL));
	g_assert_cmpstr(before, ==, after);

	/* Nor writes through a symlink planted at the path. */
	g_assert_cmpint(symlink(path, link), ==, 0);
	g_assert_cmpint(sp_sodium_keygen(link, publine2, err, sizeof err), ==, -1);
	g_free(after);
	g_assert_true(g_file_get_contents(path, &after, NULL, NULL));
	g_assert_cmpstr(before, ==, after);

	/* A strict umask does not tighten it to 0400 either: exactly 0600. */
	g_free(after);
	after = g_build_filename(tmpdir, "key-umask", NULL);
	old = umask(0277);
	g_assert_cmpint(sp_sodium_keygen(after, publine2, err, sizeof err), ==, 0);
	umask(old);
	g_assert_cmpint(stat(after, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 07777, ==, 0600);

	/* Missing directory. */
	g_assert_cmpint(sp_sodium_keygen("/nonexistent-dir/key", publine2, err, sizeof err), ==, -1);
	g_assert_nonnull(strstr(err, "/nonexistent-dir/key"));

	/* Two keygens give two different keys. */
	g_free(after);
	after = g_build_filename(tmpdir, "key2", NULL);
	g_assert_cmpint(sp_sodium_keygen(after, publine2, err, sizeof err), ==, 0);
	g_assert_cmpstr(publine, !=, publine2);

	sp_sodium_keypair_wipe(&kp);
	g_free(before);
	g_free(after);
	g_free(path);
	g_free(link);
}

static const struct {
	mode_t mode;
	int want;
} keymode_cases[] = {
	{ 0600, 0 }, { 0400, 0 }, { 0644, -1 }, { 0640, -1 }, { 0604, -1 }, { 0660, -1 }, { 0602, -1 },
};

static void
test_keyfile_modes(void)
{
	char *path = g_build_filename(tmpdir, "key-modes", NULL);
	char publine[SP_SODIUM_PUBLINE_LEN + 1], err[SP_ERRLEN];
	struct sp_sodium_keypair kp;
	size_t i;

	g_assert_cmpint(sp_sodium_keygen(path, publine, err, sizeof err), ==, 0);
	for (i = 0; i < G_N_ELEMENTS(keymode_cases); i++) {
		g_assert_cmpint(chmod(path, keymode_cases[i].mode), ==, 0);
		if (sp_sodium_load_secret(path, &kp, err, sizeof err) != keymode_cases[i].want)
			g_error("mode %04o: want %d (%s)", (unsigned)keymode_cases[i].mode, keymode_cases[i].want, err);
		if (keymode_cases[i].want < 0)
			g_assert_nonnull(strstr(err, "chmod 600"));
	}
	g_assert_cmpint(sp_sodium_load_secret(tmpdir, &kp, err, sizeof err), ==, -1);
	g_assert_nonnull(strstr(err, "not a regular file"));
	g_assert_cmpint(sp_sodium_load_secret("/nonexistent", &kp, err, sizeof err), ==, -1);
	g_free(path);
}

/* Secret key file texts.  VALID is replaced by a real "sealpost-secret1:..." line. */
static const struct {
	const char *label;
	const char *text;
	const char *want; /* NULL: parses */
} secret_cases[] = {
	{ "bare line", "VALID\n", NULL },
	{ "comments, blanks, CRLF, no final newline", "# c\r\n\r\n  VALID  \r\n# end", NULL },
	{ "empty", "", "k: no 'sealpost-secret1:' line" },
	{ "comments only", "# a\n# b\n", "k: no 'sealpost-secret1:' line" },
	{ "twice", "VALID\nVALID\n", "k:2: a second secret key (the first is on line 1)" },
	{ "stray line", "# c\nhello\nVALID\n", "k:2: unexpected line" },
	{ "public line", "sealpost1:AAAA\n", "k:1: this is a public key" },
	{ "short", "sealpost-secret1:AAAA\n", "k:1: damaged secret key" },
	{ "bad char", "CORRUPT\n", "k:1: damaged secret key" },
	{ "halves swapped", "SWAPPED\n", "k:1: damaged key: the public half does not belong" },
	{ "NUL", "VALID\n\0\n", "not a text file" },
};

static void
test_secret_parse(void)
{
	struct sp_sodium_keypair kp = alice, got;
	unsigned char raw[64], swapped[64];
	char b64[89], b64s[89], err[SP_ERRLEN];
	char *valid, *swap, *corrupt;
	size_t i;

	memcpy(raw, kp.sk, 32);
	memcpy(raw + 32, kp.pk, 32);
	memcpy(swapped, kp.pk, 32);
	memcpy(swapped + 32, kp.sk, 32);
	sodium_bin2base64(b64, sizeof b64, raw, sizeof raw, sodium_base64_VARIANT_ORIGINAL);
	sodium_bin2base64(b64s, sizeof b64s, swapped, sizeof swapped, sodium_base64_VARIANT_ORIGINAL);
	valid = g_strconcat("sealpost-secret1:", b64, NULL);
	swap = g_strconcat("sealpost-secret1:", b64s, NULL);
	corrupt = g_strdup(valid);
	corrupt[30] = '!';

	for (i = 0; i < G_N_ELEMENTS(secret_cases); i++) {
		GString *t = g_string_new(NULL);
		const char *p = secret_cases[i].text;
		/* The NUL case: the text goes on after its embedded NUL. */
		size_t len = strlen(p) + (strstr(secret_cases[i].label, "NUL") ? 2 : 0);
		int rv;

		for (size_t k = 0; k < len;) {
			if (strncmp(p + k, "VALID", 5) == 0)
				g_string_append(t, valid), k += 5;
			else if (strncmp(p + k, "SWAPPED", 7) == 0)
				g_string_append(t, swap), k += 7;
			else if (strncmp(p + k, "CORRUPT", 7) == 0)
				g_string_append(t, corrupt), k += 7;
			else
				g_string_append_c(t, p[k++]);
		}
		memset(&got, 0, sizeof got);
		rv = sp_sodium_parse_secret("k", t->str, t->len, &got, err, sizeof err);
		if (secret_cases[i].want == NULL) {
			if (rv != 0)
				g_error("%s: %s", secret_cases[i].label, err);
			g_assert_cmpmem(got.sk, 32, kp.sk, 32);
			g_assert_cmpmem(got.pk, 32, kp.pk, 32);
		} else {
			if (rv == 0 || strstr(err, secret_cases[i].want) == NULL)
				g_error("%s: rv %d, error '%s', want '%s'", secret_cases[i].label, rv, err,
				        secret_cases[i].want);
			/* Errors never quote key material. */
			g_assert_null(strstr(err, b64 + 4));
			g_assert_null(strstr(err, b64s + 4));
		}
		g_string_free(t, TRUE);
	}
	g_free(valid);
	g_free(swap);
	g_free(corrupt);
}

static const struct {
	const char *s;
	const char *want; /* NULL: parses */
} public_cases[] = {
	{ "sealpost1:LW1mM3lqh+8bIy0Xi3mkLoRNy0C7q/MAj3ZxVDlkGVU=", NULL },
	{ "sealpost2:LW1mM3lqh+8bIy0Xi3mkLoRNy0C7q/MAj3ZxVDlkGVU=", "starts with 'sealpost1:'" },
	{ "SEALPOST1:LW1mM3lqh+8bIy0Xi3mkLoRNy0C7q/MAj3ZxVDlkGVU=", "starts with 'sealpost1:'" },
	{ "LW1mM3lqh+8bIy0Xi3mkLoRNy0C7q/MAj3ZxVDlkGVU=", "starts with 'sealpost1:'" },
	{ "sealpost1:LW1mM3lqh+8bIy0Xi3mkLoRNy0C7q/MAj3ZxVDlkGVU", "this one 43" },
	{ "sealpost1:LW1mM3lqh+8bIy0Xi3mkLoRNy0C7q/MAj3ZxVDlkGVU= ", "this one 45" },
	{ "sealpost1:LW1mM3lqh-8bIy0Xi3mkLoRNy0C7q_MAj3ZxVDlkGVU=", "not valid base64" },
	{ "sealpost1:LW1mM3lqh+8bIy0Xi3mkLoRNy0C7q/MAj3ZxVDlkGVV=", "not valid base64" }, /* non-canonical */
	{ "sealpost1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "small-order" },
	{ "sealpost1:AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "small-order" },
	{ "sealpost1:7P///////////////////////////////////////38=", "small-order" },
	{ "", "starts with" },
};

static void
test_public_parse(void)
{
	unsigned char pk[SP_SODIUM_PKBYTES];
	char err[SP_ERRLEN], line[SP_SODIUM_PUBLINE_LEN + 1];
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(public_cases); i++) {
		int rv = sp_sodium_parse_public(public_cases[i].s, pk, err, sizeof err);

		if (public_cases[i].want == NULL ? rv != 0 : (rv == 0 || strstr(err, public_cases[i].want) == NULL))
			g_error("'%s': rv %d err '%s' want '%s'", public_cases[i].s, rv, err,
			        public_cases[i].want ? public_cases[i].want : "success");
	}
	sp_sodium_format_public(alice.pk, line);
	g_assert_cmpint(sp_sodium_parse_public(line, pk, err, sizeof err), ==, 0);
	g_assert_cmpmem(pk, sizeof pk, alice.pk, sizeof alice.pk);
}

/* ---- the recipients file ---- */

#define PK_A "sealpost1:LW1mM3lqh+8bIy0Xi3mkLoRNy0C7q/MAj3ZxVDlkGVU="

static const struct {
	const char *label;
	const char *text;
	const char *want; /* "rcpts:LINE: ..." or NULL */
} rcpt_cases[] = {
	{ "empty file", "", NULL },
	{ "comments and blanks", "# a\n\n   \n\t# b\n", NULL },
	{ "one, CRLF, tabs, trailing comment", "bob@example.net\t" PK_A "\t# bob's laptop\r\n", NULL },
	{ "no key", "# x\nbob@example.net\n", "rcpts:2: no public key after 'bob@example.net'" },
	{ "key first", PK_A " bob@example.net\n", "rcpts:1: the line starts with a key" },
	{ "wrong prefix", "bob@example.net pgp1:AAAA\n", "rcpts:1: bad public key for 'bob@example.net': a public key starts with" },
	{ "bad base64", "\n\nbob@example.net sealpost1:LW1mM3lqh+8bIy0Xi3mkLoRNy0C7q/MAj3ZxVDlkGV!=\n",
	  "rcpts:3: bad public key" },
	{ "short key", "bob@example.net sealpost1:LW1m\n", "rcpts:1: bad public key" },
	{ "low-order key", "bob@example.net sealpost1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
	  "rcpts:1: bad public key for 'bob@example.net': not a usable X25519" },
	{ "secret key pasted", "bob@example.net sealpost-secret1:AAAA\n", "rcpts:1: this is a SECRET key" },
	{ "no at", "bob.example.net " PK_A "\n", "rcpts:1: 'bob.example.net': not an address" },
	{ "empty local part", "@example.net " PK_A "\n", "rcpts:1: '@example.net': not an address" },
	{ "empty domain", "bob@ " PK_A "\n", "rcpts:1: 'bob@': not an address" },
	{ "two at", "bob@x@example.net " PK_A "\n", "rcpts:1: 'bob@x@example.net': more than one '@'" },
	{ "angle brackets", "<bob@example.net> " PK_A "\n", "rcpts:1: '<bob@example.net>': character '<'" },
	{ "list", "bob@example.net,eve@example.org " PK_A "\n", "rcpts:1: 'bob@example.net,eve@example.org': character ','" },
	{ "trailing junk", "bob@example.net " PK_A " extra\n", "rcpts:1: unexpected text after the key" },
	{ "duplicate, other case", "bob@example.net " PK_A "\n# x\nBOB@Example.NET " PK_A "\n",
	  "rcpts:3: 'BOB@Example.NET' is listed twice (first on line 1)" },
	{ "NUL byte", "bob@example.net " PK_A "\n\0\n", "rcpts:2: NUL byte" },
};

static void
test_recipients_table(void)
{
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(rcpt_cases); i++) {
		struct sp_sodium_recipients *r = NULL;
		char err[SP_ERRLEN] = "";
		size_t len = strlen(rcpt_cases[i].text) + (strstr(rcpt_cases[i].label, "NUL") ? 2 : 0);
		int rv = sp_sodium_recipients_parse("rcpts", rcpt_cases[i].text, len, &r, err, sizeof err);

		if (rcpt_cases[i].want == NULL) {
			if (rv != 0)
				g_error("%s: %s", rcpt_cases[i].label, err);
			sp_sodium_recipients_free(r);
		} else if (rv == 0 || !g_str_has_prefix(err, rcpt_cases[i].want)) {
			g_error("%s: rv %d, error '%s', want it to start with '%s'", rcpt_cases[i].label, rv, err,
			        rcpt_cases[i].want);
		}
	}
}

static void
test_recipients_lookup(void)
{
	char la[SP_SODIUM_PUBLINE_LEN + 1], lb[SP_SODIUM_PUBLINE_LEN + 1], err[SP_ERRLEN];
	struct sp_sodium_recipients *r = NULL;
	char *text, *path;
	static const char *misses[] = {
		"ob@example.net", "bob@example.ne", "bob@example.net.evil", " bob@example.net", "bob@example.net ",
		"bob", "example.net", "@example.net", "bob@", "", "alice@example.org.", "xalice@example.org",
	};
	size_t i;

	sp_sodium_format_public(alice.pk, la);
	sp_sodium_format_public(bob.pk, lb);
	text = g_strdup_printf("# senders' list\nAlice@Example.ORG %s\n\nbob@example.net\t%s # work\n", la, lb);
	g_assert_cmpint(sp_sodium_recipients_parse("r", text, strlen(text), &r, err, sizeof err), ==, 0);
	g_assert_cmpuint(sp_sodium_recipients_count(r), ==, 2);
	g_assert_cmpmem(sp_sodium_recipients_lookup(r, "alice@example.org"), 32, alice.pk, 32);
	g_assert_cmpmem(sp_sodium_recipients_lookup(r, "ALICE@EXAMPLE.ORG"), 32, alice.pk, 32);
	g_assert_cmpmem(sp_sodium_recipients_lookup(r, "Bob@Example.Net"), 32, bob.pk, 32);
	for (i = 0; i < G_N_ELEMENTS(misses); i++)
		if (sp_sodium_recipients_lookup(r, misses[i]) != NULL)
			g_error("lookup '%s' matched", misses[i]);
	g_assert_null(sp_sodium_recipients_lookup(r, NULL));
	sp_sodium_recipients_free(r);

	/* From a file: errors name the file and line. */
	path = g_build_filename(tmpdir, "recipients", NULL);
	g_free(text);
	text = g_strdup_printf("alice@example.org %s\nbob@example.net\n", la);
	g_assert_true(g_file_set_contents(path, text, -1, NULL));
	g_assert_cmpint(sp_sodium_recipients_load(path, &r, err, sizeof err), ==, -1);
	{
		char *want = g_strdup_printf("%s:2: ", path);

		g_assert_true(g_str_has_prefix(err, want));
		g_free(want);
	}
	g_free(text);
	text = g_strdup_printf("alice@example.org %s\n", la);
	g_assert_true(g_file_set_contents(path, text, -1, NULL));
	g_assert_cmpint(sp_sodium_recipients_load(path, &r, err, sizeof err), ==, 0);
	g_assert_cmpuint(sp_sodium_recipients_count(r), ==, 1);
	sp_sodium_recipients_free(r);
	g_assert_cmpint(sp_sodium_recipients_load("/nonexistent/recipients", &r, err, sizeof err), ==, -1);
	g_assert_nonnull(strstr(err, "/nonexistent/recipients"));
	g_free(text);
	g_free(path);
}

/* ---- sealing and opening ---- */

enum form { BARE, EML_LF, EML_CRLF };
static const char *form_names[] = { "bare", "eml-lf", "eml-crlf" };

struct rt_case {
	size_t len;
	enum form form;
	char name[64];
};

static GByteArray *
make_input(const unsigned char *const *pks, size_t npk, const void *msg, size_t len, enum form form)
{
	GMimeObject *copy;
	GByteArray *ga;
	char err[SP_ERRLEN];

	if (form == BARE)
		return seal_bare(pks, npk, msg, len);
	copy = sp_sodium_make_copy(pks, npk, msg, len, NULL, err, sizeof err);
	if (copy == NULL)
		g_error("make_copy: %s", err);
	ga = copy_to_eml(copy, form == EML_CRLF);
	g_object_unref(copy);
	return ga;
}

static void
test_roundtrip(gconstpointer data)
{
	const struct rt_case *c = data;
	const unsigned char *pks[] = { alice.pk, bob.pk };
	unsigned char *msg = g_malloc(c->len + 1);
	GByteArray *in;
	struct opened o;

	/* A message with CRLF, LF, NUL and 8-bit bytes: they must all survive. */
	randombytes_buf(msg, c->len);
	in = make_input(pks, 2, msg, c->len, c->form);
	if (c->len >= 32)
		g_assert_null(memmem(in->data, in->len, msg, 32));
	for (int who = 0; who < 2; who++) {
		o = open_bytes(in->data, in->len, who == 0 ? &alice : &bob);
		if (o.rv != 0)
			g_error("open: %s", o.err);
		g_assert_cmpmem(o.out, o.outlen, msg, c->len);
		opened_free(&o);
	}
	expect_open_fails("carol", in->data, in->len, &carol, "wrong key: none of the 2 key slots");
	g_byte_array_free(in, TRUE);
	g_free(msg);
}

static struct rt_case rt_cases[3 * 7];
static const size_t rt_sizes[] = { 0, 1, 100, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 5 };

/* 25 MB, as a mail client would save it (CRLF), through a file spool. */
static void
test_roundtrip_25mb(void)
{
	const size_t len = 25 * 1000 * 1000;
	const unsigned char *pks[] = { bob.pk };
	unsigned char *msg = kat_pattern(len);
	char err[SP_ERRLEN];
	char *path = g_build_filename(tmpdir, "spool-25mb", NULL);
	GMimeStream *spool, *msgstream;
	GMimeObject *copy;
	GByteArray *eml;
	struct opened o;
	int64_t t0;
	int fd;

	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	g_assert_cmpint(fd, >=, 0);
	unlink(path);
	spool = g_mime_stream_fs_new(fd);
	msgstream = g_mime_stream_mem_new_with_buffer((const char *)msg, len);
	t0 = sp_now_ms();
	copy = sp_sodium_make_copy_stream(pks, 1, msgstream, spool, err, sizeof err);
	if (copy == NULL)
		g_error("make_copy_stream: %s", err);
	g_test_message("seal 25 MB: %" G_GINT64_FORMAT " ms", sp_now_ms() - t0);
	g_assert_cmpint(g_mime_stream_length(spool), ==, (gint64)sp_sodium_sealed_size(1, len));
	eml = copy_to_eml(copy, TRUE);
	g_object_unref(copy);
	g_object_unref(spool);
	g_object_unref(msgstream);
	t0 = sp_now_ms();
	o = open_bytes(eml->data, eml->len, &bob);
	g_test_message("open 25 MB .eml (%u bytes): %" G_GINT64_FORMAT " ms", eml->len, sp_now_ms() - t0);
	if (o.rv != 0)
		g_error("open: %s", o.err);
	g_assert_cmpuint(o.outlen, ==, len);
	g_assert_true(memcmp(o.out, msg, len) == 0);
	opened_free(&o);
	g_byte_array_free(eml, TRUE);
	g_free(msg);
	g_free(path);
}

/* Feeding the sealer in odd pieces gives the same plaintext back. */
static void
test_streaming_pieces(void)
{
	static const size_t pieces[] = { 1, 7, CHUNK - 1, 2, CHUNK, CHUNK + 3, 0, 100 };
	const unsigned char *pks[] = { alice.pk };
	size_t total = 0, i, off = 0;
	unsigned char *msg;
	struct sp_buf b;
	struct sp_sodium_sealer *s;
	char err[SP_ERRLEN];
	struct opened o;

	for (i = 0; i < G_N_ELEMENTS(pieces); i++)
		total += pieces[i];
	msg = kat_pattern(total);
	sp_buf_init(&b, 0);
	s = sp_sodium_sealer_new(pks, 1, sp_write_buf, &b, err, sizeof err);
	g_assert_nonnull(s);
	for (i = 0; i < G_N_ELEMENTS(pieces); i++) {
		g_assert_cmpint(sp_sodium_sealer_update(s, msg + off, pieces[i], err, sizeof err), ==, 0);
		off += pieces[i];
	}
	g_assert_cmpint(sp_sodium_sealer_finish(s, err, sizeof err), ==, 0);
	g_assert_cmpint(sp_sodium_sealer_update(s, "x", 1, err, sizeof err), ==, -1);
	sp_sodium_sealer_free(s);
	g_assert_cmpuint(b.len, ==, sp_sodium_sealed_size(1, total));
	o = open_bytes(b.data, b.len, &alice);
	g_assert_cmpint(o.rv, ==, 0);
	g_assert_cmpmem(o.out, o.outlen, msg, total);
	opened_free(&o);
	sp_buf_free(&b);
	g_free(msg);
}

/* A message that fills its last chunk exactly: bytes after it are refused as
 * such (with a short final chunk they would join it and break its tag). */
static void
test_extension_full_final(void)
{
	const unsigned char *pks[] = { alice.pk };
	unsigned char *msg = kat_pattern(2 * CHUNK);
	GByteArray *b = seal_bare(pks, 1, msg, 2 * CHUNK);
	struct opened o = open_bytes(b->data, b->len, &alice);

	g_assert_cmpint(o.rv, ==, 0);
	g_assert_cmpmem(o.out, o.outlen, msg, 2 * CHUNK);
	opened_free(&o);
	g_byte_array_append(b, (const guint8 *)"\n", 1);
	expect_open_fails("a newline after the final chunk", b->data, b->len, &alice,
	                  "unexpected data after the final chunk (chunk 1)");
	g_byte_array_free(b, TRUE);
	g_free(msg);
}

static void
test_sealer_bounds(void)
{
	static unsigned char zero[32];
	const unsigned char *bad[] = { alice.pk, zero };
	const unsigned char **many = g_new(const unsigned char *, SP_SODIUM_MAX_SLOTS + 1);
	struct sp_buf b;
	char err[SP_ERRLEN];
	struct sp_sodium_sealer *s;
	struct opened o;
	size_t i;

	sp_buf_init(&b, 0);
	g_assert_null(sp_sodium_sealer_new(bad, 0, sp_write_buf, &b, err, sizeof err));
	g_assert_nonnull(strstr(err, "0 recipients"));
	for (i = 0; i <= SP_SODIUM_MAX_SLOTS; i++)
		many[i] = (i == SP_SODIUM_MAX_SLOTS - 1) ? bob.pk : alice.pk;
	g_assert_null(sp_sodium_sealer_new(many, SP_SODIUM_MAX_SLOTS + 1, sp_write_buf, &b, err, sizeof err));
	g_assert_nonnull(strstr(err, "1025 recipients"));
	g_assert_null(sp_sodium_sealer_new(bad, 2, sp_write_buf, &b, err, sizeof err));
	g_assert_nonnull(strstr(err, "recipient 2 has an unusable public key"));
	bad[1] = NULL;
	g_assert_null(sp_sodium_sealer_new(bad, 2, sp_write_buf, &b, err, sizeof err));
	g_assert_nonnull(strstr(err, "recipient 2 has no public key"));
	g_assert_cmpuint(b.len, ==, 0); /* nothing written for a refused copy */
	/* The maximum works, and the last slot is found. */
	sp_buf_reset(&b);
	s = sp_sodium_sealer_new(many, SP_SODIUM_MAX_SLOTS, sp_write_buf, &b, err, sizeof err);
	g_assert_nonnull(s);
	g_assert_cmpint(sp_sodium_sealer_update(s, "hi", 2, err, sizeof err), ==, 0);
	g_assert_cmpint(sp_sodium_sealer_finish(s, err, sizeof err), ==, 0);
	sp_sodium_sealer_free(s);
	o = open_bytes(b.data, b.len, &bob);
	g_assert_cmpint(o.rv, ==, 0);
	g_assert_cmpmem(o.out, o.outlen, "hi", 2);
	opened_free(&o);
	sp_buf_free(&b);
	g_free(many);
}

/* ---- failures: nothing written, a clear error ---- */

static GByteArray *fx_bare;    /* 3 chunks + 100 bytes, sealed to alice and bob */
static unsigned char *fx_msg;
static const size_t fx_len = 3 * CHUNK + 100;
#define FX_HDR (SP_SODIUM_PREFIXBYTES + 2 * SP_SODIUM_SLOTBYTES)
#define FX_CHUNK(i) (FX_HDR + SP_SECRETSTREAM_HEADERBYTES + (size_t)(i) * CT_CHUNK)

static void
test_tamper_bare(void)
{
	unsigned char *copy = g_malloc(fx_bare->len);
	GArray *pos = g_array_new(FALSE, FALSE, sizeof(size_t));
	size_t i, p, b;

	for (i = 0; i < FX_HDR + 64; i++)
		g_array_append_val(pos, i);
	for (b = 1; b <= 3; b++)
		for (p = FX_CHUNK(b) - 10; p < FX_CHUNK(b) + 10; p++)
			g_array_append_val(pos, p);
	for (p = fx_bare->len - 30; p < fx_bare->len; p++)
		g_array_append_val(pos, p);
	for (i = 0; i < 100; i++) {
		p = randombytes_uniform(fx_bare->len);
		g_array_append_val(pos, p);
	}
	for (i = 0; i < pos->len; i++) {
		char label[64];

		p = g_array_index(pos, size_t, i);
		memcpy(copy, fx_bare->data, fx_bare->len);
		copy[p] ^= (unsigned char)(1u << (i % 8));
		snprintf(label, sizeof label, "bit flip at byte %zu", p);
		/* Alice's slot is the first: damage there reads as a wrong key;
		 * anywhere else it is damage to the stream or its header. */
		expect_open_fails(label, copy, fx_bare->len, &alice, NULL);
	}
	g_array_free(pos, TRUE);
	g_free(copy);
}

enum mutation { M_TRUNCATE, M_SET_BYTE, M_SWAP, M_APPEND, M_DROP };

static const struct {
	const char *label;
	enum mutation m;
	size_t a, b;
	const char *want;
} bare_cases[] = {
	{ "empty input", M_TRUNCATE, 0, 0, "no sealpost attachment" },
	{ "magic only", M_TRUNCATE, 8, 0, "truncated (it ends in its header)" },
	{ "no slot count", M_TRUNCATE, 10, 0, "truncated (it ends in its header)" },
	{ "half a slot", M_TRUNCATE, SP_SODIUM_PREFIXBYTES + 40, 0, "ends in its key slots" },
	{ "no stream header", M_TRUNCATE, FX_HDR, 0, "stream header is incomplete" },
	{ "no chunks", M_TRUNCATE, FX_CHUNK(0), 0, "after 0 chunks" },
	{ "cut after chunk 2", M_TRUNCATE, FX_CHUNK(3), 0, "after 3 chunks without its final chunk" },
	{ "cut inside chunk 1", M_TRUNCATE, FX_CHUNK(1) + 500, 0, "chunk 1 (the last one) failed" },
	{ "last byte missing", M_TRUNCATE, (size_t)-1, 0, "chunk 3 (the last one) failed" },
	{ "version 2", M_SET_BYTE, 8, 2, "format version 2; this sealpost reads version 1" },
	{ "version 0", M_SET_BYTE, 8, 0, "format version 0" },
	{ "0 slots", M_SET_BYTE, 10, 0, "claims 0 key slots" },
	{ "65282 slots", M_SET_BYTE, 9, 0xff, "claims 65282 key slots" },
	{ "1026 slots", M_SET_BYTE, 9, 4, "claims 1026 key slots" },
	{ "slot count 1: bob's slot is now stream", M_SET_BYTE, 10, 1, "chunk 0 failed authentication" },
	{ "slot count 3", M_SET_BYTE, 10, 3, NULL },
	{ "bob's slot damaged", M_SET_BYTE, SP_SODIUM_PREFIXBYTES + SP_SODIUM_SLOTBYTES + 40, 0x55,
	  "chunk 0 failed authentication" },
	{ "chunks 1 and 2 swapped", M_SWAP, 1, 2, "chunk 1 failed authentication" },
	{ "chunk 0 dropped", M_DROP, 0, 0, "chunk 0 failed authentication" },
	{ "one byte appended", M_APPEND, 1, 0, "chunk 3 (the last one) failed" },
	{ "a chunk appended", M_APPEND, CT_CHUNK, 0, "chunk 3 failed" },
};

static void
test_bare_structural(void)
{
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(bare_cases); i++) {
		const unsigned char *ct = fx_bare->data;
		size_t len = fx_bare->len, a = bare_cases[i].a, c = bare_cases[i].b;
		GByteArray *b = g_byte_array_new();

		switch (bare_cases[i].m) {
		case M_TRUNCATE:
			g_byte_array_append(b, ct, a == (size_t)-1 ? len - 1 : a);
			break;
		case M_SET_BYTE:
			g_byte_array_append(b, ct, len);
			if (bare_cases[i].b == 0x55)
				b->data[a] ^= 0x55;
			else
				b->data[a] = (unsigned char)c;
			break;
		case M_SWAP:
			g_byte_array_append(b, ct, FX_CHUNK(a));
			g_byte_array_append(b, ct + FX_CHUNK(c), CT_CHUNK);
			g_byte_array_append(b, ct + FX_CHUNK(a), CT_CHUNK);
			g_byte_array_append(b, ct + FX_CHUNK(c + 1), len - FX_CHUNK(c + 1));
			break;
		case M_DROP:
			g_byte_array_append(b, ct, FX_CHUNK(a));
			g_byte_array_append(b, ct + FX_CHUNK(a + 1), len - FX_CHUNK(a + 1));
			break;
		case M_APPEND: {
			unsigned char *z = g_malloc0(a);

			g_byte_array_append(b, ct, len);
			g_byte_array_append(b, z, a);
			g_free(z);
			break;
		}
		}
		expect_open_fails(bare_cases[i].label, b->data, b->len, &alice, bare_cases[i].want);
		g_byte_array_free(b, TRUE);
	}
}

/* The same failures inside a received .eml, plus MIME-level ones. */
static void
test_eml_failures(void)
{
	GByteArray *ok, *e;
	struct opened o;
	unsigned char *v2 = g_memdup2(fx_bare->data, fx_bare->len);
	gboolean crlf;

	for (crlf = FALSE; crlf <= TRUE; crlf++) {
		/* Sanity: the untouched file opens from an .eml made by hand. */
		ok = bytes_to_eml(fx_bare->data, fx_bare->len, SP_SODIUM_CONTENT_TYPE, SP_SODIUM_FILENAME, 1, crlf);
		o = open_bytes(ok->data, ok->len, &bob);
		g_assert_cmpint(o.rv, ==, 0);
		g_assert_cmpmem(o.out, o.outlen, fx_msg, fx_len);
		opened_free(&o);

		expect_open_fails("wrong key", ok->data, ok->len, &carol, "wrong key");

		/* Cut in the middle of the base64 (boundary lost too). */
		expect_open_fails("truncated .eml", ok->data, ok->len / 2, &alice, "the sealed message is damaged");

		/* One base64 character changed, far into the attachment. */
		e = g_byte_array_new();
		g_byte_array_append(e, ok->data, ok->len);
		{
			size_t p = e->len * 2 / 3;

			while (!g_ascii_isalnum(e->data[p]))
				p++;
			e->data[p] = e->data[p] == 'A' ? 'B' : 'A';
		}
		expect_open_fails("one base64 char changed", e->data, e->len, &alice, "the sealed message is damaged");
		g_byte_array_free(e, TRUE);
		g_byte_array_free(ok, TRUE);

		v2[8] = 2;
		e = bytes_to_eml(v2, fx_bare->len, SP_SODIUM_CONTENT_TYPE, SP_SODIUM_FILENAME, 1, crlf);
		expect_open_fails("version 2 .eml", e->data, e->len, &alice, "format version 2");
		g_byte_array_free(e, TRUE);
		v2[8] = 1;

		e = bytes_to_eml(fx_bare->data, fx_bare->len, SP_SODIUM_CONTENT_TYPE, SP_SODIUM_FILENAME, 2, crlf);
		expect_open_fails("two attachments", e->data, e->len, &alice, "holds 2 sealpost attachments");
		g_byte_array_free(e, TRUE);

		e = bytes_to_eml(fx_bare->data, fx_bare->len, "application/octet-stream", NULL, 1, crlf);
		expect_open_fails("unlabelled attachment", e->data, e->len, &alice, "no sealpost attachment");
		g_byte_array_free(e, TRUE);

		e = bytes_to_eml("hello", 5, SP_SODIUM_CONTENT_TYPE, SP_SODIUM_FILENAME, 1, crlf);
		expect_open_fails("not sealed data", e->data, e->len, &alice, "bad magic");
		g_byte_array_free(e, TRUE);

		/* A client that relabelled the type but kept the name still works. */
		e = bytes_to_eml(fx_bare->data, fx_bare->len, "application/octet-stream", SP_SODIUM_FILENAME, 1, crlf);
		o = open_bytes(e->data, e->len, &alice);
		g_assert_cmpint(o.rv, ==, 0);
		g_assert_cmpmem(o.out, o.outlen, fx_msg, fx_len);
		opened_free(&o);
		g_byte_array_free(e, TRUE);
	}
	/* Forwarded as an attachment (message/rfc822), two levels deep. */
	{
		GByteArray *inner = bytes_to_eml(fx_bare->data, fx_bare->len, SP_SODIUM_CONTENT_TYPE,
		                                  SP_SODIUM_FILENAME, 1, TRUE);
		for (int level = 0; level < 2; level++) {
			GMimeStream *ms = g_mime_stream_mem_new_with_buffer((const char *)inner->data, inner->len);
			GMimeParser *pr = g_mime_parser_new_with_stream(ms);
			GMimeMessage *im = g_mime_parser_construct_message(pr, NULL);
			GMimeMessagePart *mp = g_mime_message_part_new_with_message("rfc822", im);
			GMimeMultipart *outer = g_mime_multipart_new_with_subtype("mixed");
			GMimeTextPart *t = g_mime_text_part_new_with_subtype("plain");

			g_mime_text_part_set_text(t, "FYI\n");
			g_mime_multipart_add(outer, GMIME_OBJECT(t));
			g_mime_multipart_add(outer, GMIME_OBJECT(mp));
			g_byte_array_free(inner, TRUE);
			inner = copy_to_eml(GMIME_OBJECT(outer), level == 0);
			g_object_unref(t);
			g_object_unref(outer);
			g_object_unref(mp);
			g_object_unref(im);
			g_object_unref(pr);
			g_object_unref(ms);
		}
		o = open_bytes(inner->data, inner->len, &bob);
		if (o.rv != 0)
			g_error("forwarded: %s", o.err);
		g_assert_cmpmem(o.out, o.outlen, fx_msg, fx_len);
		opened_free(&o);
		g_byte_array_free(inner, TRUE);
	}
	{
		const char *plain = "From: a@example.org\r\nSubject: hi\r\n\r\nplain text\r\n";

		expect_open_fails("plain message", plain, strlen(plain), &alice, "no sealpost attachment");
		expect_open_fails("garbage", "\x01\x02\x03", 3, &alice, "no sealpost attachment");
	}
	g_free(v2);
}

/* ---- the MIME copy ---- */

static void
test_copy_structure(void)
{
	const char *secret_text = "Subject: quarterly numbers\r\n\r\nThe merger is on.\r\n";
	const unsigned char *pks[] = { alice.pk };
	GMimeObject *copy, *p0, *p1;
	GMimeParser *parser;
	GMimeStream *s;
	GMimeMessage *m;
	GByteArray *eml;
	char err[SP_ERRLEN];
	char *ser;

	copy = sp_sodium_make_copy(pks, 1, secret_text, strlen(secret_text), NULL, err, sizeof err);
	g_assert_nonnull(copy);
	/* An entity, not a message: Content-Type but no From/To/Subject. */
	ser = g_mime_object_to_string(copy, NULL);
	g_assert_true(g_str_has_prefix(ser, "Content-Type: multipart/mixed"));
	g_assert_null(strstr(ser, "From:"));
	g_assert_null(strstr(ser, "Subject:"));
	g_assert_null(strstr(ser, "merger"));
	g_assert_null(strstr(ser, "quarterly"));
	g_free(ser);

	eml = copy_to_eml(copy, TRUE);
	g_object_unref(copy);
	s = g_mime_stream_mem_new_with_buffer((const char *)eml->data, eml->len);
	parser = g_mime_parser_new_with_stream(s);
	m = g_mime_parser_construct_message(parser, NULL);
	g_assert_nonnull(m);
	g_assert_true(GMIME_IS_MULTIPART(m->mime_part));
	g_assert_cmpint(g_mime_multipart_get_count(GMIME_MULTIPART(m->mime_part)), ==, 2);
	p0 = g_mime_multipart_get_part(GMIME_MULTIPART(m->mime_part), 0);
	p1 = g_mime_multipart_get_part(GMIME_MULTIPART(m->mime_part), 1);
	g_assert_true(g_mime_content_type_is_type(g_mime_object_get_content_type(p0), "text", "plain"));
	ser = g_mime_text_part_get_text(GMIME_TEXT_PART(p0));
	g_assert_nonnull(strstr(ser, "sealpost open -k KEYFILE message.eml"));
	g_assert_nonnull(strstr(ser, "docs/formats.md"));
	g_free(ser);
	g_assert_true(g_mime_content_type_is_type(g_mime_object_get_content_type(p1), "application", "x-sealpost"));
	g_assert_cmpstr(g_mime_part_get_filename(GMIME_PART(p1)), ==, "message.sealpost");
	g_assert_cmpstr(g_mime_object_get_disposition(p1), ==, "attachment");
	g_assert_cmpint(g_mime_part_get_content_encoding(GMIME_PART(p1)), ==, GMIME_CONTENT_ENCODING_BASE64);
	/* Every line of the wire form fits SMTP's 1000-octet limit. */
	{
		char *wire = g_strndup((const char *)eml->data, eml->len);
		char **lines = g_strsplit(wire, "\n", -1);

		for (char **l = lines; *l; l++)
			g_assert_cmpuint(strlen(*l), <=, 998);
		g_strfreev(lines);
		g_free(wire);
	}
	g_object_unref(m);
	g_object_unref(parser);
	g_object_unref(s);
	g_byte_array_free(eml, TRUE);
}

/* ---- known answers (tests/vectors/sodium-v1.txt) ---- */

static void
test_kat(void)
{
	GKeyFile *kf = kat_load("sodium-v1.txt");
	char **groups = g_key_file_get_groups(kf, NULL);
	int nvec = 0;

	for (char **g = groups; *g; g++) {
		unsigned n = (unsigned)g_key_file_get_uint64(kf, *g, "recipients", NULL);
		unsigned char *key = kat_hex(kf, *g, "key", 32, NULL);
		unsigned char *hdr = kat_hex(kf, *g, "stream_header", 24, NULL);
		unsigned char **pk = g_new0(unsigned char *, n), **esk = g_new0(unsigned char *, n);
		struct sp_sodium_keypair *kps = g_new0(struct sp_sodium_keypair, n);
		unsigned char *msg;
		size_t len;
		struct sp_buf b;
		struct sp_sodium_sealer *s;
		char err[SP_ERRLEN], name[64], line[SP_SODIUM_PUBLINE_LEN + 1];
		unsigned i;

		g_assert_cmpuint(n, >=, 1);
		for (i = 0; i < n; i++) {
			unsigned char *sk;
			char *sline, *pline;

			snprintf(name, sizeof name, "recipient%u_pk", i);
			pk[i] = kat_hex(kf, *g, name, 32, NULL);
			snprintf(name, sizeof name, "recipient%u_sk", i);
			sk = kat_hex(kf, *g, name, 32, NULL);
			snprintf(name, sizeof name, "ephemeral%u_sk", i);
			esk[i] = kat_hex(kf, *g, name, 32, NULL);
			/* The text forms of the keys. */
			snprintf(name, sizeof name, "recipient%u_secret_line", i);
			sline = g_key_file_get_string(kf, *g, name, NULL);
			g_assert_cmpint(sp_sodium_parse_secret("vector", sline, strlen(sline), &kps[i], err, sizeof err), ==, 0);
			g_assert_cmpmem(kps[i].sk, 32, sk, 32);
			g_assert_cmpmem(kps[i].pk, 32, pk[i], 32);
			snprintf(name, sizeof name, "recipient%u_public_line", i);
			pline = g_key_file_get_string(kf, *g, name, NULL);
			sp_sodium_format_public(pk[i], line);
			g_assert_cmpstr(line, ==, pline);
			g_free(sline);
			g_free(pline);
			g_free(sk);
		}
		msg = kat_plaintext(kf, *g, &len);
		sp_buf_init(&b, 0);
		s = sp_sodium_sealer_new_det((const unsigned char *const *)pk, n, key, hdr,
		                             (const unsigned char *const *)esk, sp_write_buf, &b, err, sizeof err);
		g_assert_nonnull(s);
		g_assert_cmpint(sp_sodium_sealer_update(s, msg, len, err, sizeof err), ==, 0);
		g_assert_cmpint(sp_sodium_sealer_finish(s, err, sizeof err), ==, 0);
		sp_sodium_sealer_free(s);
		kat_check_sealed(kf, *g, b.data, b.len);
		for (i = 0; i < n; i++) {
			struct opened o = open_bytes(b.data, b.len, &kps[i]);

			g_assert_cmpint(o.rv, ==, 0);
			g_assert_cmpmem(o.out, o.outlen, msg, len);
			opened_free(&o);
			/* Each slot is a standard crypto_box_seal box. */
			{
				unsigned char k[32];

				g_assert_cmpint(crypto_box_seal_open(k, (unsigned char *)b.data + SP_SODIUM_PREFIXBYTES +
				                                     i * SP_SODIUM_SLOTBYTES, SP_SODIUM_SLOTBYTES,
				                                     kps[i].pk, kps[i].sk), ==, 0);
				g_assert_cmpmem(k, 32, key, 32);
			}
			g_free(pk[i]);
			g_free(esk[i]);
		}
		sp_buf_free(&b);
		g_free(pk);
		g_free(esk);
		g_free(kps);
		g_free(msg);
		g_free(key);
		g_free(hdr);
		nvec++;
	}
	g_assert_cmpint(nvec, ==, 3);
	g_strfreev(groups);
	g_key_file_free(kf);
}

int
main(int argc, char **argv)
{
	const unsigned char *pks[] = { alice.pk, bob.pk };
	size_t i, k = 0;
	int rv;

	g_test_init(&argc, &argv, NULL);
	if (sodium_init() < 0)
		g_error("sodium_init failed");
	g_mime_init();
	tmpdir = g_dir_make_tmp("test_sodium-XXXXXX", NULL);
	g_assert_nonnull(tmpdir);
	make_keypair(&alice);
	make_keypair(&bob);
	make_keypair(&carol);
	fx_msg = kat_pattern(fx_len);
	fx_bare = seal_bare(pks, 2, fx_msg, fx_len);

	g_test_add_func("/sodium/keys/keygen", test_keygen);
	g_test_add_func("/sodium/keys/file-modes", test_keyfile_modes);
	g_test_add_func("/sodium/keys/secret-parse", test_secret_parse);
	g_test_add_func("/sodium/keys/public-parse", test_public_parse);
	g_test_add_func("/sodium/recipients/table", test_recipients_table);
	g_test_add_func("/sodium/recipients/lookup", test_recipients_lookup);
	for (int f = BARE; f <= EML_CRLF; f++)
		for (i = 0; i < G_N_ELEMENTS(rt_sizes); i++, k++) {
			rt_cases[k].len = rt_sizes[i];
			rt_cases[k].form = (enum form)f;
			snprintf(rt_cases[k].name, sizeof rt_cases[k].name, "/sodium/roundtrip/%s/%zu",
			         form_names[f], rt_sizes[i]);
			g_test_add_data_func(rt_cases[k].name, &rt_cases[k], test_roundtrip);
		}
	g_test_add_func("/sodium/roundtrip/25mb", test_roundtrip_25mb);
	g_test_add_func("/sodium/streaming-pieces", test_streaming_pieces);
	g_test_add_func("/sodium/sealer-bounds", test_sealer_bounds);
	g_test_add_func("/sodium/fail/extension", test_extension_full_final);
	g_test_add_func("/sodium/fail/tamper-bare", test_tamper_bare);
	g_test_add_func("/sodium/fail/bare-structural", test_bare_structural);
	g_test_add_func("/sodium/fail/eml", test_eml_failures);
	g_test_add_func("/sodium/copy-structure", test_copy_structure);
	g_test_add_func("/sodium/kat", test_kat);

	rv = g_test_run();

	g_byte_array_free(fx_bare, TRUE);
	g_free(fx_msg);
	{
		char *cmd[] = { "rm", "-rf", tmpdir, NULL };

		g_spawn_sync(NULL, cmd, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL);
	}
	g_free(tmpdir);
	g_mime_shutdown();
	return rv;
}

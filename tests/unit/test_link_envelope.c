/* test_link_envelope.c - link mode cryptography: tokens, passwords, the message
 * stream, the key wrap, and the known-answer vectors in tests/vectors/link-v1.txt. */
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <sodium.h>

#include "kat.h"
#include "link_envelope.h"
#include "secretstream.h"

#define CHUNK SP_SECRETSTREAM_CHUNK
#define CT_CHUNK SP_SECRETSTREAM_CT_CHUNK
/* Offset of chunk i inside a link message blob. */
#define CHUNK_OFF(i) (SP_LINK_MESSAGE_PREFIXBYTES + SP_SECRETSTREAM_HEADERBYTES + (size_t)(i) * CT_CHUNK)

/* ---- tokens ---- */

static void
test_token_roundtrip(void)
{
	struct sp_link_token t, u;
	char s[SP_LINK_TOKEN_STRLEN + 1];
	int i;

	for (i = 0; i < 200; i++) {
		sp_link_token_new(&t);
		sp_link_token_encode(&t, s);
		g_assert_cmpuint(strlen(s), ==, SP_LINK_TOKEN_STRLEN);
		g_assert_cmpuint(strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), ==,
		                 SP_LINK_TOKEN_STRLEN);
		g_assert_cmpint(sp_link_token_decode(s, strlen(s), &u), ==, 0);
		g_assert_cmpmem(t.id, sizeof t.id, u.id, sizeof u.id);
		g_assert_cmpmem(t.secret, sizeof t.secret, u.secret, sizeof u.secret);
	}
	/* Two fresh tokens never collide (256 random bits). */
	sp_link_token_new(&u);
	g_assert_true(memcmp(&t, &u, sizeof t) != 0);
}

static const struct {
	const char *label;
	const char *s;
	int want;
} token_cases[] = {
	{ "all zero", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 0 },
	{ "url-safe chars", "A-_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 0 },
	{ "canonical last char", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE", 0 },
	{ "empty", "", -1 },
	{ "42 chars", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", -1 },
	{ "44 chars", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", -1 },
	{ "padding", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", -1 },
	{ "non-canonical trailing bits", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB", -1 },
	{ "standard alphabet +", "A+AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", -1 },
	{ "standard alphabet /", "A/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", -1 },
	{ "space", "AAAAAAAAAAAAAAAAAAAA AAAAAAAAAAAAAAAAAAAAAA", -1 },
	{ "dot", "AAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA", -1 },
	{ "percent-encoded", "AAAAAAAAAAAAAAAAAAAA%41AAAAAAAAAAAAAAAAAAAA", -1 },
};

static void
test_token_decode_table(void)
{
	struct sp_link_token t;
	char back[SP_LINK_TOKEN_STRLEN + 1];
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(token_cases); i++) {
		int rv = sp_link_token_decode(token_cases[i].s, strlen(token_cases[i].s), &t);

		if (rv != token_cases[i].want)
			g_error("token case '%s': got %d, want %d", token_cases[i].label, rv, token_cases[i].want);
		if (rv == 0) {
			/* Strict decoding means one spelling per token. */
			sp_link_token_encode(&t, back);
			g_assert_cmpstr(back, ==, token_cases[i].s);
		}
	}
	/* The length argument is honoured: a valid token followed by more text. */
	g_assert_cmpint(sp_link_token_decode(token_cases[0].s, 42, &t), ==, -1);
	g_assert_cmpint(sp_link_token_decode(NULL, 43, &t), ==, -1);
}

static const struct {
	const char *hex;
	int want;
} id_cases[] = {
	{ "00112233445566778899aabbccddeeff", 0 },
	{ "00112233445566778899AABBCCDDEEFF", 0 },
	{ "00112233445566778899aabbccddeef", -1 },
	{ "00112233445566778899aabbccddeeff0", -1 },
	{ "00112233445566778899aabbccddeefg", -1 },
	{ "00112233-445566778899aabbccddeef", -1 },
	{ "", -1 },
};

static void
test_id_hex(void)
{
	unsigned char id[SP_LINK_IDBYTES], back[SP_LINK_IDBYTES];
	char hex[SP_LINK_ID_HEXLEN + 1];
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(id_cases); i++)
		if (sp_link_id_from_hex(id_cases[i].hex, id) != id_cases[i].want)
			g_error("id case '%s': want %d", id_cases[i].hex, id_cases[i].want);
	randombytes_buf(id, sizeof id);
	sp_link_id_hex(id, hex);
	g_assert_cmpuint(strlen(hex), ==, SP_LINK_ID_HEXLEN);
	g_assert_cmpuint(strspn(hex, "0123456789abcdef"), ==, SP_LINK_ID_HEXLEN);
	g_assert_cmpint(sp_link_id_from_hex(hex, back), ==, 0);
	g_assert_cmpmem(id, sizeof id, back, sizeof back);
	g_assert_cmpint(sp_link_id_from_hex(NULL, back), ==, -1);
}

/* ---- generated passwords ---- */

static void
test_password(void)
{
	const char *cons = "bdfghklmnprstvz", *vow = "aeiou";
	GHashTable *seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	int used[256] = { 0 };
	double space;
	int i, w, k;

	/* The claimed entropy: 4 words of (15^3 * 5^2) choices each is >= 2^64. */
	space = 15.0 * 15 * 15 * 5 * 5;
	g_assert_cmpfloat(space * space * space * space, >=, 18446744073709551616.0);
	g_assert_cmpint(SP_LINK_PASSWORD_ENTROPY_BITS, >=, 64);

	for (i = 0; i < 5000; i++) {
		char pw[SP_LINK_PASSWORD_MAX];
		const char *p = pw;

		memset(pw, 'X', sizeof pw);
		sp_link_password_generate(pw);
		g_assert_cmpuint(strlen(pw), ==, 23);
		for (w = 0; w < SP_LINK_PASSWORD_WORDS; w++) {
			for (k = 0; k < 5; k++, p++) {
				g_assert_true(*p != '\0');
				g_assert_nonnull(strchr((k % 2 == 0) ? cons : vow, *p));
				used[(unsigned char)*p]++;
			}
			g_assert_true(*p == (w == SP_LINK_PASSWORD_WORDS - 1 ? '\0' : '-'));
			p++;
		}
		g_assert_false(g_hash_table_contains(seen, pw));
		g_hash_table_add(seen, g_strdup(pw));
	}
	/* Every letter of both alphabets shows up (each is drawn ~1000+ times). */
	for (const char *c = cons; *c; c++)
		g_assert_cmpint(used[(unsigned char)*c], >, 1000);
	for (const char *c = vow; *c; c++)
		g_assert_cmpint(used[(unsigned char)*c], >, 2000);
	g_hash_table_destroy(seen);
}

/* ---- message stream ---- */

static const size_t msg_sizes[] = {
	0, 1, 100, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK + 7, 5 * 1024 * 1024 + 3,
};

static void
test_message_roundtrip(gconstpointer data)
{
	size_t len = *(const size_t *)data;
	unsigned char key[SP_LINK_KEYBYTES];
	unsigned char *msg = g_malloc(len + 1);
	struct sp_buf ct, pt;
	char err[SP_ERRLEN];

	randombytes_buf(msg, len);
	sp_link_key_new(key);
	sp_buf_init(&ct, 0);
	/* An output buffer capped at exactly the message size is enough. */
	sp_buf_init(&pt, len);
	g_assert_cmpint(sp_link_seal_message(key, msg, len, &ct, err, sizeof err), ==, 0);
	g_assert_cmpuint(ct.len, ==, sp_link_message_sealed_size(len));
	g_assert_cmpmem(ct.data, 8, "SPLNKMSG", 8);
	g_assert_cmpint(ct.data[8], ==, 1);
	if (sp_link_open_message(key, ct.data, ct.len, &pt, err, sizeof err) != 0)
		g_error("open: %s", err);
	g_assert_cmpmem(pt.data, pt.len, msg, len);
	/* The plaintext does not appear in the ciphertext. */
	if (len >= 16)
		g_assert_null(memmem(ct.data, ct.len, msg, 16));
	sp_buf_wipe(&pt);
	sp_buf_free(&ct);
	g_free(msg);
}

/* A 3-chunk sealed message shared by the failure tests. */
static unsigned char fx_key[SP_LINK_KEYBYTES];
static unsigned char *fx_msg;
static size_t fx_msglen = 2 * CHUNK + 100;
static struct sp_buf fx_ct;

static void
fixture_init(void)
{
	char err[SP_ERRLEN];

	fx_msg = kat_pattern(fx_msglen);
	sp_link_key_new(fx_key);
	sp_buf_init(&fx_ct, 0);
	if (sp_link_seal_message(fx_key, fx_msg, fx_msglen, &fx_ct, err, sizeof err) != 0)
		g_error("seal: %s", err);
	g_assert_cmpuint(fx_ct.len, ==, CHUNK_OFF(2) + 100 + SP_SECRETSTREAM_ABYTES);
}

/* Opening must fail, leave out empty, and (when want is set) say want. */
static void
expect_open_fails(const char *label, const unsigned char *key, const void *blob, size_t len, const char *want)
{
	struct sp_buf pt;
	char err[SP_ERRLEN] = "";

	sp_buf_init(&pt, 0);
	if (sp_link_open_message(key, blob, len, &pt, err, sizeof err) == 0)
		g_error("%s: opened", label);
	g_assert_cmpuint(pt.len, ==, 0);
	if (want != NULL && strstr(err, want) == NULL)
		g_error("%s: error '%s' does not say '%s'", label, err, want);
	g_assert_cmpuint(strlen(err), >, 0);
	sp_buf_wipe(&pt);
}

static void
test_message_tamper_every_region(void)
{
	unsigned char *copy = g_malloc(fx_ct.len);
	GArray *pos = g_array_new(FALSE, FALSE, sizeof(size_t));
	size_t i, p, b;

	/* Every byte of the prefix, the stream header and the start of chunk 0,
	 * bytes around each chunk boundary, the tail, and random spots. */
	for (i = 0; i < 120; i++)
		g_array_append_val(pos, i);
	for (b = 1; b <= 2; b++)
		for (p = CHUNK_OFF(b) - 20; p < CHUNK_OFF(b) + 20; p++)
			g_array_append_val(pos, p);
	for (p = fx_ct.len - 40; p < fx_ct.len; p++)
		g_array_append_val(pos, p);
	for (i = 0; i < 200; i++) {
		p = randombytes_uniform((uint32_t)fx_ct.len);
		g_array_append_val(pos, p);
	}
	for (i = 0; i < pos->len; i++) {
		char label[64];

		p = g_array_index(pos, size_t, i);
		memcpy(copy, fx_ct.data, fx_ct.len);
		copy[p] ^= (unsigned char)(1u << (i % 8));
		snprintf(label, sizeof label, "bit flip at byte %zu", p);
		expect_open_fails(label, fx_key, copy, fx_ct.len, NULL);
	}
	g_array_free(pos, TRUE);
	g_free(copy);
}

enum mutation {
	M_TRUNCATE,   /* keep the first a bytes */
	M_SWAP,       /* swap full chunks a and b */
	M_DROP,       /* remove full chunk a */
	M_DUP,        /* repeat full chunk a right after itself */
	M_APPEND,     /* append a bytes of zeros */
	M_APPEND_LAST,/* append a copy of the final chunk */
	M_SET_BYTE,   /* byte a = b */
	M_WRONG_KEY,
};

static const struct {
	const char *label;
	enum mutation m;
	size_t a, b;
	const char *want;
} structural_cases[] = {
	{ "empty input", M_TRUNCATE, 0, 0, "bad magic" },
	{ "magic only", M_TRUNCATE, 8, 0, "truncated before the version" },
	{ "prefix only", M_TRUNCATE, 9, 0, "header is incomplete" },
	{ "half the stream header", M_TRUNCATE, 20, 0, "header is incomplete" },
	{ "no chunks", M_TRUNCATE, CHUNK_OFF(0), 0, "after 0 chunks" },
	{ "cut after chunk 0", M_TRUNCATE, CHUNK_OFF(1), 0, "after 1 chunk without" },
	{ "cut after chunk 1", M_TRUNCATE, CHUNK_OFF(2), 0, "after 2 chunks without" },
	{ "cut inside chunk 1", M_TRUNCATE, CHUNK_OFF(1) + 1000, 0, "chunk 1 (the last one)" },
	{ "last byte missing", M_TRUNCATE, (size_t)-1, 0, "chunk 2 (the last one)" },
	{ "chunks 0 and 1 swapped", M_SWAP, 0, 1, "chunk 0 failed authentication" },
	{ "chunk 0 dropped", M_DROP, 0, 0, "chunk 0 failed authentication" },
	{ "chunk 1 dropped", M_DROP, 1, 0, "chunk 1 (the last one) failed" },
	{ "chunk 0 duplicated", M_DUP, 0, 0, "chunk 1 failed authentication" },
	/* The final chunk here is short, so appended bytes join it and break its
	 * tag; test_message_extension covers a full-size final chunk. */
	{ "one byte appended", M_APPEND, 1, 0, "chunk 2 (the last one) failed" },
	{ "a chunk's worth appended", M_APPEND, CT_CHUNK, 0, "chunk 2 failed authentication" },
	{ "final chunk repeated", M_APPEND_LAST, 0, 0, "chunk 2 (the last one) failed" },
	{ "version 2", M_SET_BYTE, 8, 2, "unsupported version 2" },
	{ "version 0", M_SET_BYTE, 8, 0, "unsupported version 0" },
	{ "magic changed", M_SET_BYTE, 3, 'X', "bad magic" },
	{ "wrong key", M_WRONG_KEY, 0, 0, "chunk 0 failed authentication" },
};

static void
test_message_structural(void)
{
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(structural_cases); i++) {
		unsigned char key[SP_LINK_KEYBYTES];
		const unsigned char *ct = (const unsigned char *)fx_ct.data;
		GByteArray *b = g_byte_array_new();
		size_t a = structural_cases[i].a, c = structural_cases[i].b;
		size_t last = CHUNK_OFF(2);

		memcpy(key, fx_key, sizeof key);
		switch (structural_cases[i].m) {
		case M_TRUNCATE:
			g_byte_array_append(b, ct, a == (size_t)-1 ? fx_ct.len - 1 : a);
			break;
		case M_SWAP:
			g_byte_array_append(b, ct, CHUNK_OFF(0));
			g_byte_array_append(b, ct + CHUNK_OFF(c), CT_CHUNK);
			g_byte_array_append(b, ct + CHUNK_OFF(a), CT_CHUNK);
			g_byte_array_append(b, ct + CHUNK_OFF(2), fx_ct.len - CHUNK_OFF(2));
			break;
		case M_DROP:
			g_byte_array_append(b, ct, CHUNK_OFF(a));
			g_byte_array_append(b, ct + CHUNK_OFF(a + 1), fx_ct.len - CHUNK_OFF(a + 1));
			break;
		case M_DUP:
			g_byte_array_append(b, ct, CHUNK_OFF(a + 1));
			g_byte_array_append(b, ct + CHUNK_OFF(a), fx_ct.len - CHUNK_OFF(a));
			break;
		case M_APPEND: {
			unsigned char *z = g_malloc0(a);

			g_byte_array_append(b, ct, fx_ct.len);
			g_byte_array_append(b, z, a);
			g_free(z);
			break;
		}
		case M_APPEND_LAST:
			g_byte_array_append(b, ct, fx_ct.len);
			g_byte_array_append(b, ct + last, fx_ct.len - last);
			break;
		case M_SET_BYTE:
			g_byte_array_append(b, ct, fx_ct.len);
			b->data[a] = (unsigned char)c;
			break;
		case M_WRONG_KEY:
			g_byte_array_append(b, ct, fx_ct.len);
			key[0] ^= 1;
			break;
		}
		expect_open_fails(structural_cases[i].label, key, b->data, b->len, structural_cases[i].want);
		g_byte_array_free(b, TRUE);
	}
}

/* A message that fills its final chunk exactly: anything after it is refused
 * as such, even a valid-looking chunk. */
static void
test_message_extension(void)
{
	unsigned char key[SP_LINK_KEYBYTES];
	unsigned char *msg = kat_pattern(2 * CHUNK);
	struct sp_buf ct, pt;
	char err[SP_ERRLEN];

	sp_link_key_new(key);
	sp_buf_init(&ct, 0);
	sp_buf_init(&pt, 0);
	g_assert_cmpint(sp_link_seal_message(key, msg, 2 * CHUNK, &ct, err, sizeof err), ==, 0);
	g_assert_cmpuint(ct.len, ==, CHUNK_OFF(2));
	g_assert_cmpint(sp_link_open_message(key, ct.data, ct.len, &pt, err, sizeof err), ==, 0);
	g_assert_cmpmem(pt.data, pt.len, msg, 2 * CHUNK);
	sp_buf_append(&ct, "x", 1);
	expect_open_fails("one byte after a full final chunk", key, ct.data, ct.len, "after the final chunk (chunk 1)");
	ct.len = CHUNK_OFF(2);
	sp_buf_append(&ct, ct.data + CHUNK_OFF(1), CT_CHUNK);
	expect_open_fails("final chunk repeated", key, ct.data, ct.len, "after the final chunk (chunk 1)");
	/* Cut at the boundary before the final chunk: no FINAL seen. */
	expect_open_fails("final chunk cut off", key, ct.data, CHUNK_OFF(1), "after 1 chunk without its final");
	sp_buf_wipe(&pt);
	sp_buf_free(&ct);
	g_free(msg);
}

/* What only a non-conforming writer makes: a stream whose last chunk is short
 * and tagged MESSAGE, and one that goes on after a FINAL chunk. */
static void
test_message_nonconforming(void)
{
	crypto_secretstream_xchacha20poly1305_state st;
	unsigned char key[SP_LINK_KEYBYTES], c[64];
	unsigned long long clen;
	GByteArray *b = g_byte_array_new();
	const guint8 prefix[9] = { 'S', 'P', 'L', 'N', 'K', 'M', 'S', 'G', 1 };
	unsigned char hdr[SP_SECRETSTREAM_HEADERBYTES];

	sp_link_key_new(key);
	g_byte_array_append(b, prefix, sizeof prefix);
	crypto_secretstream_xchacha20poly1305_init_push(&st, hdr, key);
	g_byte_array_append(b, hdr, sizeof hdr);
	crypto_secretstream_xchacha20poly1305_push(&st, c, &clen, (const unsigned char *)"short", 5, prefix,
	                                           sizeof prefix, crypto_secretstream_xchacha20poly1305_TAG_MESSAGE);
	g_byte_array_append(b, c, (guint)clen);
	expect_open_fails("short MESSAGE chunk at the end", key, b->data, b->len, "chunk 0 is short and not final");

	/* Rebuild: one empty FINAL chunk, then another chunk pushed after it. */
	g_byte_array_set_size(b, sizeof prefix);
	crypto_secretstream_xchacha20poly1305_init_push(&st, hdr, key);
	g_byte_array_append(b, hdr, sizeof hdr);
	crypto_secretstream_xchacha20poly1305_push(&st, c, &clen, NULL, 0, prefix, sizeof prefix,
	                                           crypto_secretstream_xchacha20poly1305_TAG_FINAL);
	g_byte_array_append(b, c, (guint)clen);
	{
		struct sp_buf pt;
		char err[SP_ERRLEN];

		/* An empty FINAL chunk alone is a valid empty message. */
		sp_buf_init(&pt, 0);
		g_assert_cmpint(sp_link_open_message(key, b->data, b->len, &pt, err, sizeof err), ==, 0);
		g_assert_cmpuint(pt.len, ==, 0);
		sp_buf_free(&pt);
	}
	crypto_secretstream_xchacha20poly1305_push(&st, c, &clen, (const unsigned char *)"more", 4, NULL, 0,
	                                           crypto_secretstream_xchacha20poly1305_TAG_FINAL);
	g_byte_array_append(b, c, (guint)clen);
	expect_open_fails("chunk after FINAL", key, b->data, b->len, "chunk 0 (the last one) failed");
	g_byte_array_free(b, TRUE);
}

/* A wrapped-key blob is not a message, and the other way round. */
static void
test_blob_confusion(void)
{
	struct sp_link_token t;
	unsigned char key[SP_LINK_KEYBYTES];
	char err[SP_ERRLEN];

	sp_link_token_new(&t);
	g_assert_cmpint(sp_link_unwrap_key(fx_ct.data, fx_ct.len, "x", &t, key, err, sizeof err), ==, -1);
	g_assert_nonnull(strstr(err, "bad magic"));
}

/* ---- key wrap ---- */

/* Cheap Argon2id parameters for the many-case tests (the format carries them). */
#define FAST_OPS 1U
#define FAST_MEM_KIB 8U

struct wrap_fx {
	unsigned char key[SP_LINK_KEYBYTES];
	struct sp_link_token t;
	struct sp_buf blob;
};

static void
wrap_fx_make(struct wrap_fx *w, const char *password)
{
	unsigned char salt[SP_LINK_SALTBYTES], nonce[SP_LINK_NONCEBYTES];
	char err[SP_ERRLEN];

	sp_link_key_new(w->key);
	sp_link_token_new(&w->t);
	randombytes_buf(salt, sizeof salt);
	randombytes_buf(nonce, sizeof nonce);
	sp_buf_init(&w->blob, 0);
	if (sp_link_wrap_key_det(w->key, password, &w->t, FAST_OPS, FAST_MEM_KIB, salt, nonce, &w->blob,
	                         err, sizeof err) != 0)
		g_error("wrap: %s", err);
	g_assert_cmpuint(w->blob.len, ==, SP_LINK_WRAPPED_BYTES);
}

static void
test_wrap_production(void)
{
	struct sp_link_token t, t2;
	unsigned char key[SP_LINK_KEYBYTES], got[SP_LINK_KEYBYTES];
	char pw[SP_LINK_PASSWORD_MAX], err[SP_ERRLEN];
	struct sp_buf w1, w2;
	const unsigned char *b;
	int64_t t0, ms;

	sp_link_key_new(key);
	sp_link_token_new(&t);
	sp_link_password_generate(pw);
	sp_buf_init(&w1, 0);
	sp_buf_init(&w2, 0);
	g_assert_cmpint(sp_link_wrap_key(key, pw, &t, &w1, err, sizeof err), ==, 0);
	g_assert_cmpuint(w1.len, ==, SP_LINK_WRAPPED_BYTES);
	b = (const unsigned char *)w1.data;
	g_assert_cmpmem(b, 8, "SPLNKKEY", 8);
	g_assert_cmpint(b[8], ==, 1);
	g_assert_cmpuint((uint32_t)b[9] << 24 | (uint32_t)b[10] << 16 | (uint32_t)b[11] << 8 | b[12], ==,
	                 SP_LINK_ARGON2_OPSLIMIT);
	g_assert_cmpuint((uint32_t)b[13] << 24 | (uint32_t)b[14] << 16 | (uint32_t)b[15] << 8 | b[16], ==,
	                 SP_LINK_ARGON2_MEMLIMIT_KIB);
	/* Neither the key, the password nor the link secret is in the blob. */
	g_assert_null(memmem(w1.data, w1.len, key, 8));
	g_assert_null(memmem(w1.data, w1.len, pw, 8));
	g_assert_null(memmem(w1.data, w1.len, t.secret, 8));

	t0 = sp_now_ms();
	g_assert_cmpint(sp_link_unwrap_key(w1.data, w1.len, pw, &t, got, err, sizeof err), ==, 0);
	ms = sp_now_ms() - t0;
	g_test_message("one unlock with t=%u m=%u KiB: %" G_GINT64_FORMAT " ms", SP_LINK_ARGON2_OPSLIMIT,
	               SP_LINK_ARGON2_MEMLIMIT_KIB, ms);
	g_assert_cmpmem(got, sizeof got, key, sizeof key);

	/* Same key, password and token again: fresh salt and nonce, new bytes. */
	g_assert_cmpint(sp_link_wrap_key(key, pw, &t, &w2, err, sizeof err), ==, 0);
	g_assert_true(memcmp(w1.data, w2.data, w1.len) != 0);

	/* The production parameters: the link secret is needed as well. */
	t2 = t;
	t2.secret[15] ^= 0x80;
	g_assert_cmpint(sp_link_unwrap_key(w1.data, w1.len, pw, &t2, got, err, sizeof err), ==, -1);
	g_assert_cmpstr(err, ==, "wrong password");
	sp_buf_free(&w1);
	sp_buf_free(&w2);
}

static void
test_wrap_rejects(void)
{
	struct wrap_fx w;
	struct sp_link_token t;
	unsigned char got[SP_LINK_KEYBYTES];
	char err[SP_ERRLEN];
	const char *pw = "correct horse";
	char *longpw;

	wrap_fx_make(&w, pw);
	g_assert_cmpint(sp_link_unwrap_key(w.blob.data, w.blob.len, pw, &w.t, got, err, sizeof err), ==, 0);
	g_assert_cmpmem(got, sizeof got, w.key, sizeof w.key);

	static const char *wrong_pw[] = { "correct hors", "correct horse ", "Correct horse", "", "correct horsf" };
	for (size_t i = 0; i < G_N_ELEMENTS(wrong_pw); i++) {
		g_assert_cmpint(sp_link_unwrap_key(w.blob.data, w.blob.len, wrong_pw[i], &w.t, got, err, sizeof err),
		                ==, -1);
		g_assert_cmpstr(err, ==, "wrong password");
	}
	g_assert_cmpint(sp_link_unwrap_key(w.blob.data, w.blob.len, NULL, &w.t, got, err, sizeof err), ==, -1);

	/* Every single bit of the link id and the link secret matters. */
	for (size_t bit = 0; bit < 8 * (SP_LINK_IDBYTES + SP_LINK_SECRETBYTES); bit += 7) {
		t = w.t;
		if (bit < 8 * SP_LINK_IDBYTES)
			t.id[bit / 8] ^= (unsigned char)(1u << (bit % 8));
		else
			t.secret[bit / 8 - SP_LINK_IDBYTES] ^= (unsigned char)(1u << (bit % 8));
		g_assert_cmpint(sp_link_unwrap_key(w.blob.data, w.blob.len, pw, &t, got, err, sizeof err), ==, -1);
		g_assert_cmpstr(err, ==, "wrong password");
	}

	/* Every byte of the blob matters. */
	for (size_t p = 0; p < w.blob.len; p++) {
		unsigned char copy[SP_LINK_WRAPPED_BYTES];

		memcpy(copy, w.blob.data, sizeof copy);
		copy[p] ^= 0x01;
		if (sp_link_unwrap_key(copy, sizeof copy, pw, &w.t, got, err, sizeof err) != -1)
			g_error("unwrap with byte %zu flipped succeeded", p);
	}

	/* Lengths, and the password bounds on both sides. */
	g_assert_cmpint(sp_link_unwrap_key(w.blob.data, w.blob.len - 1, pw, &w.t, got, err, sizeof err), ==, -1);
	g_assert_nonnull(strstr(err, "104 bytes"));
	{
		unsigned char big[SP_LINK_WRAPPED_BYTES + 1] = { 0 };

		memcpy(big, w.blob.data, w.blob.len);
		g_assert_cmpint(sp_link_unwrap_key(big, sizeof big, pw, &w.t, got, err, sizeof err), ==, -1);
		g_assert_nonnull(strstr(err, "106 bytes"));
	}
	longpw = g_strnfill(SP_LINK_PASSWORD_INPUT_MAX + 1, 'a');
	g_assert_cmpint(sp_link_wrap_key_det(w.key, longpw, &w.t, FAST_OPS, FAST_MEM_KIB, got, got, &w.blob,
	                                     err, sizeof err), ==, -1);
	g_assert_nonnull(strstr(err, "longer than"));
	g_assert_cmpint(sp_link_wrap_key_det(w.key, "", &w.t, FAST_OPS, FAST_MEM_KIB, got, got, &w.blob,
	                                     err, sizeof err), ==, -1);
	g_assert_cmpstr(err, ==, "empty password");
	g_free(longpw);
	sp_buf_free(&w.blob);
}

static void
set_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

/* Hostile headers are refused before Argon2id runs (so before any allocation). */
static const struct {
	const char *label;
	size_t off;
	uint32_t v;
	const char *want;
} hostile_cases[] = {
	{ "memory 4 TiB", 13, 0xffffffffU, "outside" },
	{ "memory 4 GiB", 13, 4U * 1024 * 1024, "outside" },
	{ "memory just over the cap", 13, SP_LINK_ARGON2_MEMLIMIT_KIB_MAX + 1, "outside" },
	{ "memory 0", 13, 0, "outside" },
	{ "passes 2^32-1", 9, 0xffffffffU, "outside" },
	{ "passes just over the cap", 9, SP_LINK_ARGON2_OPSLIMIT_MAX + 1, "outside" },
	{ "passes 0", 9, 0, "outside" },
	{ "version 2", 8, 0x02000000U, "unsupported version 2" },
	{ "version 255", 8, 0xff000000U, "unsupported version 255" },
};

static void
test_wrap_hostile(void)
{
	struct wrap_fx w;
	unsigned char got[SP_LINK_KEYBYTES];
	char err[SP_ERRLEN];
	size_t i;

	wrap_fx_make(&w, "pw");
	for (i = 0; i < G_N_ELEMENTS(hostile_cases); i++) {
		unsigned char copy[SP_LINK_WRAPPED_BYTES];
		int64_t t0 = sp_now_ms();

		memcpy(copy, w.blob.data, sizeof copy);
		if (hostile_cases[i].off == 8)
			copy[8] = (unsigned char)(hostile_cases[i].v >> 24);
		else
			set_be32(copy + hostile_cases[i].off, hostile_cases[i].v);
		g_assert_cmpint(sp_link_unwrap_key(copy, sizeof copy, "pw", &w.t, got, err, sizeof err), ==, -1);
		if (strstr(err, hostile_cases[i].want) == NULL)
			g_error("%s: error '%s' does not say '%s'", hostile_cases[i].label, err, hostile_cases[i].want);
		/* Refused up front: no Argon2id run (which would take far longer
		 * at these sizes, if it did not fail to allocate). */
		g_assert_cmpint(sp_now_ms() - t0, <, 1000);
	}
	sp_buf_free(&w.blob);
}

/* ---- known answers (tests/vectors/link-v1.txt) ---- */

static void
test_kat_message(void)
{
	GKeyFile *kf = kat_load("link-v1.txt");
	char **groups = g_key_file_get_groups(kf, NULL);
	int n = 0;

	for (char **g = groups; *g; g++) {
		unsigned char *key, *hdr, *msg;
		size_t len;
		struct sp_buf ct, pt;
		char err[SP_ERRLEN];

		if (!g_str_has_prefix(*g, "message-"))
			continue;
		key = kat_hex(kf, *g, "key", SP_LINK_KEYBYTES, NULL);
		hdr = kat_hex(kf, *g, "stream_header", SP_SECRETSTREAM_HEADERBYTES, NULL);
		msg = kat_plaintext(kf, *g, &len);
		sp_buf_init(&ct, 0);
		sp_buf_init(&pt, 0);
		g_assert_cmpint(sp_link_seal_message_det(key, hdr, msg, len, &ct, err, sizeof err), ==, 0);
		kat_check_sealed(kf, *g, ct.data, ct.len);
		g_assert_cmpint(sp_link_open_message(key, ct.data, ct.len, &pt, err, sizeof err), ==, 0);
		g_assert_cmpmem(pt.data, pt.len, msg, len);
		sp_buf_free(&ct);
		sp_buf_free(&pt);
		g_free(key);
		g_free(hdr);
		g_free(msg);
		n++;
	}
	g_assert_cmpint(n, ==, 3);
	g_strfreev(groups);
	g_key_file_free(kf);
}

static void
test_kat_wrap(void)
{
	GKeyFile *kf = kat_load("link-v1.txt");
	char **groups = g_key_file_get_groups(kf, NULL);
	int n = 0;

	for (char **g = groups; *g; g++) {
		unsigned char *key, *id, *secret, *salt, *nonce, *pwbytes, *want;
		unsigned char got[SP_LINK_KEYBYTES];
		struct sp_link_token t, fromtok;
		char tok[SP_LINK_TOKEN_STRLEN + 1], err[SP_ERRLEN];
		char *password, *pw, *wanttok;
		size_t pwlen, wantlen;
		struct sp_buf blob;

		if (!g_str_has_prefix(*g, "wrap-"))
			continue;
		key = kat_hex(kf, *g, "key", SP_LINK_KEYBYTES, NULL);
		id = kat_hex(kf, *g, "link_id", SP_LINK_IDBYTES, NULL);
		secret = kat_hex(kf, *g, "link_secret", SP_LINK_SECRETBYTES, NULL);
		salt = kat_hex(kf, *g, "salt", SP_LINK_SALTBYTES, NULL);
		nonce = kat_hex(kf, *g, "nonce", SP_LINK_NONCEBYTES, NULL);
		want = kat_hex(kf, *g, "wrapped", SP_LINK_WRAPPED_BYTES, &wantlen);
		pwbytes = kat_hex(kf, *g, "password_utf8", 0, &pwlen);
		password = g_key_file_get_string(kf, *g, "password", NULL);
		wanttok = g_key_file_get_string(kf, *g, "token", NULL);
		/* The key file's text and the hex bytes agree (no normalisation). */
		g_assert_cmpmem(password, strlen(password), pwbytes, pwlen);
		pw = g_strndup((const char *)pwbytes, pwlen);

		memcpy(t.id, id, SP_LINK_IDBYTES);
		memcpy(t.secret, secret, SP_LINK_SECRETBYTES);
		sp_link_token_encode(&t, tok);
		g_assert_cmpstr(tok, ==, wanttok);
		g_assert_cmpint(sp_link_token_decode(wanttok, strlen(wanttok), &fromtok), ==, 0);
		g_assert_cmpmem(&fromtok, sizeof fromtok, &t, sizeof t);

		sp_buf_init(&blob, 0);
		g_assert_cmpint(sp_link_wrap_key_det(key, pw, &t,
		                                     (uint32_t)g_key_file_get_uint64(kf, *g, "opslimit", NULL),
		                                     (uint32_t)g_key_file_get_uint64(kf, *g, "memlimit_kib", NULL),
		                                     salt, nonce, &blob, err, sizeof err), ==, 0);
		g_assert_cmpmem(blob.data, blob.len, want, wantlen);
		g_assert_cmpint(sp_link_unwrap_key(want, wantlen, pw, &t, got, err, sizeof err), ==, 0);
		g_assert_cmpmem(got, sizeof got, key, SP_LINK_KEYBYTES);

		sp_buf_free(&blob);
		g_free(key);
		g_free(id);
		g_free(secret);
		g_free(salt);
		g_free(nonce);
		g_free(want);
		g_free(pwbytes);
		g_free(password);
		g_free(pw);
		g_free(wanttok);
		n++;
	}
	g_assert_cmpint(n, ==, 2);
	g_strfreev(groups);
	g_key_file_free(kf);
}

int
main(int argc, char **argv)
{
	size_t i;

	g_test_init(&argc, &argv, NULL);
	if (sodium_init() < 0)
		g_error("sodium_init failed");
	fixture_init();

	g_test_add_func("/link/token/roundtrip", test_token_roundtrip);
	g_test_add_func("/link/token/decode-table", test_token_decode_table);
	g_test_add_func("/link/id-hex", test_id_hex);
	g_test_add_func("/link/password", test_password);
	for (i = 0; i < G_N_ELEMENTS(msg_sizes); i++) {
		char *name = g_strdup_printf("/link/message/roundtrip/%zu", msg_sizes[i]);

		g_test_add_data_func(name, &msg_sizes[i], test_message_roundtrip);
		g_free(name);
	}
	g_test_add_func("/link/message/tamper", test_message_tamper_every_region);
	g_test_add_func("/link/message/structural", test_message_structural);
	g_test_add_func("/link/message/extension", test_message_extension);
	g_test_add_func("/link/message/not-a-key", test_blob_confusion);
	g_test_add_func("/link/message/nonconforming", test_message_nonconforming);
	g_test_add_func("/link/wrap/production", test_wrap_production);
	g_test_add_func("/link/wrap/rejects", test_wrap_rejects);
	g_test_add_func("/link/wrap/hostile", test_wrap_hostile);
	g_test_add_func("/link/kat/message", test_kat_message);
	g_test_add_func("/link/kat/wrap", test_kat_wrap);

	int rv = g_test_run();
	sp_buf_free(&fx_ct);
	g_free(fx_msg);
	return rv;
}

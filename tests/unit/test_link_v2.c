/* test_link_v2.c - link envelope v2 (crypto/link_v2.c) against the vectors of
 * tests/vectors/link-v2.txt, which tests/vectors/link_v2.py (an independent
 * Python implementation) generates and verifies; plus the protocol's refusals:
 * wrong password, wrong link secret, replayed proof, hostile records. */
#include <string.h>

#include <glib.h>
#include <sodium.h>

#include "kat.h"
#include "link_v2.h"
#include "util.h"

#define VECTORS "link-v2.txt"

struct kat {
	unsigned char *key, *id, *secret, *salt, *nonce, *oprf_key, *record, *blind, *attempt;
	struct sp_link_token t;
	char *password;
	uint32_t ops, mem;
};

static void
kat_read(GKeyFile *kf, const char *g, struct kat *v)
{
	unsigned char *pwbytes;
	size_t pwlen;

	v->key = kat_hex(kf, g, "key", SP_LINK_KEYBYTES, NULL);
	v->id = kat_hex(kf, g, "link_id", SP_LINK_IDBYTES, NULL);
	v->secret = kat_hex(kf, g, "link_secret", SP_LINK_SECRETBYTES, NULL);
	v->salt = kat_hex(kf, g, "salt", SP_LINK_SALTBYTES, NULL);
	v->nonce = kat_hex(kf, g, "nonce", SP_LINK_NONCEBYTES, NULL);
	v->oprf_key = kat_hex(kf, g, "oprf_key", SP_OPRF_SCALARBYTES, NULL);
	v->record = kat_hex(kf, g, "record", SP_LINK2_RECORD_BYTES, NULL);
	v->blind = kat_hex(kf, g, "blind", SP_OPRF_SCALARBYTES, NULL);
	v->attempt = kat_hex(kf, g, "attempt", SP_LINK2_ATTEMPT_BYTES, NULL);
	v->ops = (uint32_t)g_key_file_get_uint64(kf, g, "opslimit", NULL);
	v->mem = (uint32_t)g_key_file_get_uint64(kf, g, "memlimit_kib", NULL);
	memcpy(v->t.id, v->id, SP_LINK_IDBYTES);
	memcpy(v->t.secret, v->secret, SP_LINK_SECRETBYTES);
	/* The key file's text and the hex bytes agree (no normalisation). */
	v->password = g_key_file_get_string(kf, g, "password", NULL);
	pwbytes = kat_hex(kf, g, "password_utf8", 0, &pwlen);
	g_assert_cmpmem(v->password, strlen(v->password), pwbytes, pwlen);
	g_free(pwbytes);
}

static void
kat_free(struct kat *v)
{
	g_free(v->key);
	g_free(v->id);
	g_free(v->secret);
	g_free(v->salt);
	g_free(v->nonce);
	g_free(v->oprf_key);
	g_free(v->record);
	g_free(v->blind);
	g_free(v->attempt);
	g_free(v->password);
}

static void
expect_hex(GKeyFile *kf, const char *g, const char *name, const void *got, size_t len)
{
	unsigned char *want = kat_hex(kf, g, name, len, NULL);

	if (memcmp(got, want, len) != 0) {
		char *hex = g_malloc(len * 2 + 1);

		sodium_bin2hex(hex, len * 2 + 1, got, len);
		g_error("[%s] %s: got %s", g, name, hex);
	}
	g_free(want);
}

/* Every value of every vector: the proxy's record with its intermediates,
 * the link's spelling, and the browser's whole unlock against the viewer. */
static void
test_kat(void)
{
	GKeyFile *kf = kat_load(VECTORS);
	char **groups = g_key_file_get_groups(kf, NULL);
	char err[SP_ERRLEN];
	int n = 0;

	for (char **g = groups; *g; g++) {
		struct kat v;
		unsigned char rec[SP_LINK2_RECORD_BYTES], pw[32], input[SP_LINK2_INPUT_BYTES], y[SP_OPRF_OUTPUTBYTES];
		unsigned char root[32], kwk[32], seed[32], pk[32], sk[64];
		unsigned char params[SP_LINK2_PARAMS_BYTES], sealed[SP_LINK2_SEALED_KEY_BYTES];
		unsigned char blinded[32], evaluated[32], proof[SP_LINK2_PROOF_BYTES], kwk2[32], key[SP_LINK_KEYBYTES];
		unsigned char raw[16];
		char b64[SP_LINK2_B64_STRLEN + 1], *want_b64;
		struct sp_link2_client c;

		kat_read(kf, *g, &v);

		/* The link: base_url || id_b64 || "#" || secret_b64 */
		sp_link2_b64_encode(v.id, b64);
		want_b64 = g_key_file_get_string(kf, *g, "id_b64", NULL);
		g_assert_cmpstr(b64, ==, want_b64);
		g_assert_cmpint(sp_link2_b64_decode(want_b64, strlen(want_b64), raw), ==, 0);
		g_assert_cmpmem(raw, 16, v.id, 16);
		g_free(want_b64);
		sp_link2_b64_encode(v.secret, b64);
		want_b64 = g_key_file_get_string(kf, *g, "secret_b64", NULL);
		g_assert_cmpstr(b64, ==, want_b64);
		g_assert_cmpint(sp_link2_b64_decode(want_b64, strlen(want_b64), raw), ==, 0);
		g_assert_cmpmem(raw, 16, v.secret, 16);
		g_free(want_b64);

		/* Proxy: the record, and each step on the way. */
		g_assert_cmpint(sp_link2_record_new_det(v.key, v.password, &v.t, v.ops, v.mem, v.salt, v.nonce,
		                                        v.oprf_key, rec, err, sizeof err), ==, 0);
		expect_hex(kf, *g, "record", rec, sizeof rec);
		g_assert_cmpint(crypto_pwhash(pw, sizeof pw, v.password, strlen(v.password), v.salt, v.ops,
		                              (size_t)v.mem * 1024U, crypto_pwhash_ALG_ARGON2ID13), ==, 0);
		expect_hex(kf, *g, "pw", pw, sizeof pw);
		sp_link2_oprf_input(v.id, pw, input);
		expect_hex(kf, *g, "input", input, sizeof input);
		g_assert_cmpint(sp_oprf_evaluate(v.oprf_key, input, sizeof input, y, err, sizeof err), ==, 0);
		expect_hex(kf, *g, "y", y, sizeof y);
		sp_link2_derive(y, &v.t, root, kwk, seed);
		expect_hex(kf, *g, "root", root, sizeof root);
		expect_hex(kf, *g, "kwk", kwk, sizeof kwk);
		expect_hex(kf, *g, "auth_seed", seed, sizeof seed);
		crypto_sign_seed_keypair(pk, sk, seed);
		expect_hex(kf, *g, "auth_pk", pk, sizeof pk);

		/* Viewer: the record passes, its slices are the documented ones. */
		g_assert_cmpint(sp_link2_record_check(rec, sizeof rec, err, sizeof err), ==, 0);
		sp_link2_params(rec, params);
		expect_hex(kf, *g, "params", params, sizeof params);
		sp_link2_sealed_key(rec, sealed);
		expect_hex(kf, *g, "sealed_key", sealed, sizeof sealed);

		/* Browser + viewer: the unlock. */
		g_assert_cmpint(sp_link2_client_start_det(&c, params, sizeof params, v.password, &v.t, v.blind, blinded,
		                                          err, sizeof err), ==, 0);
		expect_hex(kf, *g, "blinded", blinded, sizeof blinded);
		g_assert_cmpint(sp_link2_evaluate(rec, blinded, evaluated, err, sizeof err), ==, 0);
		expect_hex(kf, *g, "evaluated", evaluated, sizeof evaluated);
		g_assert_cmpint(sp_link2_client_finish(&c, evaluated, v.attempt, proof, kwk2, err, sizeof err), ==, 0);
		expect_hex(kf, *g, "proof", proof, sizeof proof);
		g_assert_cmpmem(kwk2, sizeof kwk2, kwk, sizeof kwk);
		g_assert_cmpint(sp_link2_verify_unlock(rec, v.id, v.attempt, proof), ==, 0);
		g_assert_cmpint(sp_link2_client_open_key(&c, kwk2, sealed, sizeof sealed, key, err, sizeof err), ==, 0);
		g_assert_cmpmem(key, sizeof key, v.key, SP_LINK_KEYBYTES);
		sp_link2_client_wipe(&c);

		kat_free(&v);
		n++;
	}
	g_assert_cmpint(n, ==, 2);
	g_strfreev(groups);
	g_key_file_free(kf);
}

/* One unlock attempt of (password, token) against rec; returns whether the
 * viewer accepted the proof, and the unwrapped key in key if it did. */
static int
try_unlock(const unsigned char *rec, const char *password, const struct sp_link_token *t,
           unsigned char key[SP_LINK_KEYBYTES])
{
	unsigned char params[SP_LINK2_PARAMS_BYTES], sealed[SP_LINK2_SEALED_KEY_BYTES];
	unsigned char blinded[32], evaluated[32], attempt[SP_LINK2_ATTEMPT_BYTES], proof[64], kwk[32];
	struct sp_link2_client c;
	char err[SP_ERRLEN];
	int ok;

	sp_link2_params(rec, params);
	g_assert_cmpint(sp_link2_client_start(&c, params, sizeof params, password, t, blinded, err, sizeof err), ==, 0);
	g_assert_cmpint(sp_link2_evaluate(rec, blinded, evaluated, err, sizeof err), ==, 0);
	sp_link2_attempt_new(attempt);
	g_assert_cmpint(sp_link2_client_finish(&c, evaluated, attempt, proof, kwk, err, sizeof err), ==, 0);
	ok = sp_link2_verify_unlock(rec, t->id, attempt, proof) == 0;
	sp_link2_sealed_key(rec, sealed);
	/* The key unwraps exactly when the proof is accepted. */
	g_assert_cmpint(sp_link2_client_open_key(&c, kwk, sealed, sizeof sealed, key, err, sizeof err), ==, ok ? 0 : -1);
	if (!ok)
		g_assert_cmpstr(err, ==, "wrong password");
	sp_link2_client_wipe(&c);
	return ok;
}

/* A record with cheap Argon2id for the protocol tests. */
static void
cheap_record(const unsigned char key[SP_LINK_KEYBYTES], const char *password, const struct sp_link_token *t,
             unsigned char rec[SP_LINK2_RECORD_BYTES])
{
	unsigned char salt[SP_LINK_SALTBYTES], nonce[SP_LINK_NONCEBYTES], k[SP_OPRF_SCALARBYTES];
	char err[SP_ERRLEN];

	randombytes_buf(salt, sizeof salt);
	randombytes_buf(nonce, sizeof nonce);
	sp_oprf_keygen(k);
	g_assert_cmpint(sp_link2_record_new_det(key, password, t, 1, 8, salt, nonce, k, rec, err, sizeof err), ==, 0);
}

static void
test_protocol(void)
{
	unsigned char key[SP_LINK_KEYBYTES], got[SP_LINK_KEYBYTES], rec[SP_LINK2_RECORD_BYTES];
	unsigned char rec2[SP_LINK2_RECORD_BYTES];
	struct sp_link_token t, other;

	sp_link_key_new(key);
	sp_link_token_new(&t);
	cheap_record(key, "correct horse", &t, rec);

	g_assert_true(try_unlock(rec, "correct horse", &t, got));
	g_assert_cmpmem(got, sizeof got, key, sizeof key);
	/* Wrong password: refused, and unlocking again after it works. */
	g_assert_false(try_unlock(rec, "correct horsE", &t, got));
	g_assert_false(try_unlock(rec, "correct horse ", &t, got));
	g_assert_true(try_unlock(rec, "correct horse", &t, got));
	/* Right password, wrong link secret (a store without the link). */
	other = t;
	other.secret[0] ^= 1;
	g_assert_false(try_unlock(rec, "correct horse", &other, got));
	/* Right password and secret presented under another link id. */
	other = t;
	other.id[15] ^= 0x80;
	g_assert_false(try_unlock(rec, "correct horse", &other, got));
	/* Another record for the same key, password and token (another OPRF
	 * key, salt, nonce): different bytes, both open. */
	cheap_record(key, "correct horse", &t, rec2);
	g_assert_true(memcmp(rec, rec2, sizeof rec) != 0);
	g_assert_true(try_unlock(rec2, "correct horse", &t, got));
}

/* A proof is for one attempt of one link: replaying it for another attempt
 * id or another link fails, and so does any changed byte. */
static void
test_proof_replay(void)
{
	unsigned char key[SP_LINK_KEYBYTES], rec[SP_LINK2_RECORD_BYTES], params[SP_LINK2_PARAMS_BYTES];
	unsigned char blinded[32], evaluated[32], attempt[16], attempt2[16], proof[64], kwk[32], id2[16];
	struct sp_link_token t;
	struct sp_link2_client c;
	char err[SP_ERRLEN];
	size_t i;

	sp_link_key_new(key);
	sp_link_token_new(&t);
	cheap_record(key, "pw", &t, rec);
	sp_link2_params(rec, params);
	g_assert_cmpint(sp_link2_client_start(&c, params, sizeof params, "pw", &t, blinded, err, sizeof err), ==, 0);
	g_assert_cmpint(sp_link2_evaluate(rec, blinded, evaluated, err, sizeof err), ==, 0);
	sp_link2_attempt_new(attempt);
	g_assert_cmpint(sp_link2_client_finish(&c, evaluated, attempt, proof, kwk, err, sizeof err), ==, 0);
	g_assert_cmpint(sp_link2_verify_unlock(rec, t.id, attempt, proof), ==, 0);

	memcpy(attempt2, attempt, sizeof attempt2);
	attempt2[0] ^= 1;
	g_assert_cmpint(sp_link2_verify_unlock(rec, t.id, attempt2, proof), ==, -1);
	memcpy(id2, t.id, sizeof id2);
	id2[3] ^= 4;
	g_assert_cmpint(sp_link2_verify_unlock(rec, id2, attempt, proof), ==, -1);
	for (i = 0; i < sizeof proof; i++) {
		proof[i] ^= 0x20;
		g_assert_cmpint(sp_link2_verify_unlock(rec, t.id, attempt, proof), ==, -1);
		proof[i] ^= 0x20;
	}
	/* A blind is used once: finishing twice refuses (the blind was wiped). */
	g_assert_cmpint(sp_link2_client_finish(&c, evaluated, attempt, proof, kwk, err, sizeof err), ==, -1);
	sp_link2_client_wipe(&c);
}

/* What the viewer reads from a store or the upload API is checked. */
static void
test_record_check(void)
{
	unsigned char key[SP_LINK_KEYBYTES], rec[SP_LINK2_RECORD_BYTES], bad[SP_LINK2_RECORD_BYTES + 1];
	unsigned char blinded[32], evaluated[32];
	struct sp_link_token t;
	struct sp_link2_client c;
	char err[SP_ERRLEN];
	static const struct {
		const char *label;
		size_t off;
		unsigned char val;
		const char *want;
	} cases[] = {
		{ "magic", 0, 'X', "bad magic" },
		{ "version 1", 8, 1, "version 1, not 2" },
		{ "version 3", 8, 3, "version 3, not 2" },
		{ "passes 0", 12, 0, "passes 0 outside" },
		{ "passes 9", 12, 9, "passes 9 outside" },
		{ "memory 4 KiB", 16, 4, "memory 4 KiB outside" },
		{ "memory 2^24 KiB", 14, 0xff, "outside" },
		{ "OPRF key >= order", 136, 0xff, "OPRF key" },
		{ "auth key not canonical", 137, 0xff, "auth key" },
	};
	size_t i;

	sp_link_key_new(key);
	sp_link_token_new(&t);
	cheap_record(key, "pw", &t, rec);
	g_assert_cmpint(sp_link2_record_check(rec, sizeof rec, err, sizeof err), ==, 0);
	for (i = 0; i < G_N_ELEMENTS(cases); i++) {
		memcpy(bad, rec, sizeof rec);
		if (cases[i].off == 12 || cases[i].off == 16)
			memset(bad + cases[i].off - 3, 0, 3);
		if (cases[i].off == 137)
			memset(bad + 137, cases[i].val, 32); /* y = 2^255 - 1 > p */
		bad[cases[i].off] = cases[i].val;
		err[0] = '\0';
		if (sp_link2_record_check(bad, sizeof rec, err, sizeof err) != -1 || strstr(err, cases[i].want) == NULL)
			g_error("record case '%s': err '%s'", cases[i].label, err);
	}
	/* A zero OPRF key, and an all-zero auth key (a small-order point). */
	memcpy(bad, rec, sizeof rec);
	memset(bad + 105, 0, 32);
	g_assert_cmpint(sp_link2_record_check(bad, sizeof rec, err, sizeof err), ==, -1);
	memcpy(bad, rec, sizeof rec);
	memset(bad + 137, 0, 32);
	g_assert_cmpint(sp_link2_record_check(bad, sizeof rec, err, sizeof err), ==, -1);
	/* Lengths: one short, one long, empty. */
	memcpy(bad, rec, sizeof rec);
	bad[sizeof rec] = 0;
	g_assert_cmpint(sp_link2_record_check(bad, sizeof rec - 1, err, sizeof err), ==, -1);
	g_assert_cmpint(sp_link2_record_check(bad, sizeof rec + 1, err, sizeof err), ==, -1);
	g_assert_cmpint(sp_link2_record_check(bad, 0, err, sizeof err), ==, -1);
	/* A v1 wrapped key is not a v2 record. */
	{
		struct sp_buf v1;

		sp_buf_init(&v1, 0);
		g_assert_cmpint(sp_link_wrap_key_det(key, "pw", &t, 1, 8, rec + 17, rec + 33, &v1, err, sizeof err), ==, 0);
		g_assert_cmpint(sp_link2_record_check(v1.data, v1.len, err, sizeof err), ==, -1);
		g_assert_nonnull(strstr(err, "version 1"));
		sp_buf_free(&v1);
	}

	/* The browser side checks params the same way before any Argon2id. */
	memcpy(bad, rec, SP_LINK2_PARAMS_BYTES);
	bad[12] = 9;
	g_assert_cmpint(sp_link2_client_start(&c, bad, SP_LINK2_PARAMS_BYTES, "pw", &t, blinded, err, sizeof err), ==, -1);
	g_assert_cmpint(sp_link2_client_start(&c, rec, SP_LINK2_PARAMS_BYTES - 1, "pw", &t, blinded, err, sizeof err), ==, -1);
	g_assert_cmpint(sp_link2_client_start(&c, rec, SP_LINK2_PARAMS_BYTES, "", &t, blinded, err, sizeof err), ==, -1);
	/* The viewer refuses a blinded value that is not a group element. */
	memset(blinded, 0, sizeof blinded);
	g_assert_cmpint(sp_link2_evaluate(rec, blinded, evaluated, err, sizeof err), ==, -1);
	memset(blinded, 0xff, sizeof blinded);
	g_assert_cmpint(sp_link2_evaluate(rec, blinded, evaluated, err, sizeof err), ==, -1);
}

static void
test_b64(void)
{
	static const struct {
		const char *s;
		int want;
	} cases[] = {
		{ "AAAAAAAAAAAAAAAAAAAAAA", 0 },
		{ "AAAAAAAAAAAAAAAAAAAAAw", 0 },  /* last char: low 4 bits zero */
		{ "_-AAAAAAAAAAAAAAAAAAAA", 0 },
		{ "AAAAAAAAAAAAAAAAAAAAAB", -1 }, /* non-zero unused bits */
		{ "AAAAAAAAAAAAAAAAAAAAA", -1 },
		{ "AAAAAAAAAAAAAAAAAAAAAAA", -1 },
		{ "AAAAAAAAAAAAAAAAAAAA==", -1 },
		{ "+AAAAAAAAAAAAAAAAAAAAA", -1 },
		{ "/AAAAAAAAAAAAAAAAAAAAA", -1 },
		{ "AAAAAAAAAA AAAAAAAAAAA", -1 },
		{ "", -1 },
	};
	unsigned char raw[16], r2[16];
	char back[SP_LINK2_B64_STRLEN + 1];
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(cases); i++) {
		int rv = sp_link2_b64_decode(cases[i].s, strlen(cases[i].s), raw);

		if (rv != cases[i].want)
			g_error("b64 case '%s': got %d", cases[i].s, rv);
		if (rv == 0) {
			sp_link2_b64_encode(raw, back);
			g_assert_cmpstr(back, ==, cases[i].s);
		}
	}
	for (i = 0; i < 100; i++) {
		randombytes_buf(raw, sizeof raw);
		sp_link2_b64_encode(raw, back);
		g_assert_cmpuint(strlen(back), ==, SP_LINK2_B64_STRLEN);
		g_assert_cmpint(sp_link2_b64_decode(back, strlen(back), r2), ==, 0);
		g_assert_cmpmem(raw, sizeof raw, r2, sizeof r2);
	}
}

/* The production path: fresh randomness and the default Argon2id cost. */
static void
test_production(void)
{
	unsigned char key[SP_LINK_KEYBYTES], got[SP_LINK_KEYBYTES], rec[SP_LINK2_RECORD_BYTES];
	struct sp_link_token t;
	char password[SP_LINK_PASSWORD_MAX], err[SP_ERRLEN];

	sp_link_key_new(key);
	sp_link_token_new(&t);
	sp_link_password_generate(password);
	g_assert_cmpint(sp_link2_record_new(key, password, &t, rec, err, sizeof err), ==, 0);
	g_assert_cmpint(sp_link2_record_check(rec, sizeof rec, err, sizeof err), ==, 0);
	g_assert_cmpuint(((unsigned)rec[11] << 8 | rec[12]), ==, SP_LINK_ARGON2_OPSLIMIT);
	g_assert_cmpuint(((unsigned)rec[13] << 24 | (unsigned)rec[14] << 16 | (unsigned)rec[15] << 8 | rec[16]), ==,
	                 SP_LINK_ARGON2_MEMLIMIT_KIB);
	g_assert_true(try_unlock(rec, password, &t, got));
	g_assert_cmpmem(got, sizeof got, key, sizeof key);
	/* Refusals before any work. */
	g_assert_cmpint(sp_link2_record_new(key, "", &t, rec, err, sizeof err), ==, -1);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	if (sodium_init() < 0)
		g_error("sodium_init failed");

	g_test_add_func("/link2/kat", test_kat);
	g_test_add_func("/link2/protocol", test_protocol);
	g_test_add_func("/link2/proof-replay", test_proof_replay);
	g_test_add_func("/link2/record-check", test_record_check);
	g_test_add_func("/link2/b64", test_b64);
	g_test_add_func("/link2/production", test_production);
	return g_test_run();
}

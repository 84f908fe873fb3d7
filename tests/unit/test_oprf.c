/* test_oprf.c - crypto/oprf.c against RFC 9497 appendix A.1.1 (OPRF mode,
 * ristretto255-SHA512) and RFC 9380 appendix K.3 (expand_message_xmd SHA-512):
 * tests/vectors/oprf/rfc9497-ristretto255-sha512.txt, sources in its README. */
#include <string.h>

#include <glib.h>
#include <sodium.h>

#include "kat.h"
#include "oprf.h"
#include "util.h"

#define VECTORS "oprf/rfc9497-ristretto255-sha512.txt"

/* The order of ristretto255, little-endian: the smallest non-canonical scalar. */
static const unsigned char group_order[32] = {
	0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
};

static void
test_kat_derive_keypair(void)
{
	GKeyFile *kf = kat_load(VECTORS);
	unsigned char *seed, *info, *want;
	unsigned char sk[SP_OPRF_SCALARBYTES], pk[SP_OPRF_ELEMENTBYTES], pk2[SP_OPRF_ELEMENTBYTES];
	size_t info_len;
	char err[SP_ERRLEN];

	seed = kat_hex(kf, "key", "Seed", SP_OPRF_SEEDBYTES, NULL);
	info = kat_hex(kf, "key", "KeyInfo", 0, &info_len);
	want = kat_hex(kf, "key", "skSm", SP_OPRF_SCALARBYTES, NULL);
	g_assert_cmpint(sp_oprf_derive_keypair(seed, info, info_len, sk, pk, err, sizeof err), ==, 0);
	g_assert_cmpmem(sk, sizeof sk, want, SP_OPRF_SCALARBYTES);
	g_assert_true(sp_oprf_key_valid(sk));
	/* pkS = skS * G */
	g_assert_cmpint(crypto_scalarmult_ristretto255_base(pk2, want), ==, 0);
	g_assert_cmpmem(pk, sizeof pk, pk2, sizeof pk2);
	/* The info string is part of the derivation. */
	g_assert_cmpint(sp_oprf_derive_keypair(seed, info, info_len - 1, sk, NULL, err, sizeof err), ==, 0);
	g_assert_true(memcmp(sk, want, sizeof sk) != 0);
	g_free(seed);
	g_free(info);
	g_free(want);
	g_key_file_free(kf);
}

static void
test_kat_vectors(void)
{
	GKeyFile *kf = kat_load(VECTORS);
	char **groups = g_key_file_get_groups(kf, NULL);
	unsigned char *sk = kat_hex(kf, "key", "skSm", SP_OPRF_SCALARBYTES, NULL);
	char err[SP_ERRLEN];
	int n = 0;

	for (char **g = groups; *g; g++) {
		unsigned char *input, *blind, *want_blinded, *want_eval, *want_out;
		unsigned char blinded[SP_OPRF_ELEMENTBYTES], eval[SP_OPRF_ELEMENTBYTES];
		unsigned char out[SP_OPRF_OUTPUTBYTES], out2[SP_OPRF_OUTPUTBYTES];
		size_t len;

		if (!g_str_has_prefix(*g, "vector-"))
			continue;
		input = kat_hex(kf, *g, "Input", 0, &len);
		blind = kat_hex(kf, *g, "Blind", SP_OPRF_SCALARBYTES, NULL);
		want_blinded = kat_hex(kf, *g, "BlindedElement", SP_OPRF_ELEMENTBYTES, NULL);
		want_eval = kat_hex(kf, *g, "EvaluationElement", SP_OPRF_ELEMENTBYTES, NULL);
		want_out = kat_hex(kf, *g, "Output", SP_OPRF_OUTPUTBYTES, NULL);

		/* Input + Blind -> BlindedElement (client) */
		g_assert_cmpint(sp_oprf_blind_det(input, len, blind, blinded, err, sizeof err), ==, 0);
		g_assert_cmpmem(blinded, sizeof blinded, want_blinded, SP_OPRF_ELEMENTBYTES);
		/* skSm + BlindedElement -> EvaluationElement (server) */
		g_assert_cmpint(sp_oprf_blind_evaluate(sk, want_blinded, eval, err, sizeof err), ==, 0);
		g_assert_cmpmem(eval, sizeof eval, want_eval, SP_OPRF_ELEMENTBYTES);
		/* Input + Blind + EvaluationElement -> Output (client) */
		g_assert_cmpint(sp_oprf_finalize(input, len, blind, want_eval, out, err, sizeof err), ==, 0);
		g_assert_cmpmem(out, sizeof out, want_out, SP_OPRF_OUTPUTBYTES);
		/* skSm + Input -> Output without blinding (the proxy's path) */
		g_assert_cmpint(sp_oprf_evaluate(sk, input, len, out2, err, sizeof err), ==, 0);
		g_assert_cmpmem(out2, sizeof out2, want_out, SP_OPRF_OUTPUTBYTES);
		n++;
		g_free(input);
		g_free(blind);
		g_free(want_blinded);
		g_free(want_eval);
		g_free(want_out);
	}
	g_assert_cmpint(n, ==, 2);
	g_free(sk);
	g_strfreev(groups);
	g_key_file_free(kf);
}

static void
test_kat_xmd(void)
{
	static const char dst[] = "QUUX-V01-CS02-with-expander-SHA512-256";
	GKeyFile *kf = kat_load(VECTORS);
	char **groups = g_key_file_get_groups(kf, NULL);
	int n = 0;

	for (char **g = groups; *g; g++) {
		unsigned char *msg, *want, got[SP_XMD_OUT_MAX];
		size_t msglen, wantlen, outlen;
		char *m;

		if (!g_str_has_prefix(*g, "xmd-"))
			continue;
		m = g_key_file_get_string(kf, *g, "msg", NULL);
		g_assert_nonnull(m);
		if (*m == '\0') {
			msg = NULL;
			msglen = 0;
		} else {
			msg = kat_hex(kf, *g, "msg", 0, &msglen);
		}
		outlen = (size_t)g_key_file_get_uint64(kf, *g, "len_in_bytes", NULL);
		want = kat_hex(kf, *g, "uniform_bytes", outlen, &wantlen);
		g_assert_cmpint(sp_expand_message_xmd_sha512(msg, msglen, dst, sizeof dst - 1, got, outlen), ==, 0);
		g_assert_cmpmem(got, outlen, want, wantlen);
		n++;
		g_free(m);
		g_free(msg);
		g_free(want);
	}
	g_assert_cmpint(n, ==, 3);
	g_strfreev(groups);
	g_key_file_free(kf);
}

/* The protocol with fresh keys and blinds: the blinded path and the direct
 * path agree; the output depends on the key and on every input byte. */
static void
test_roundtrip(void)
{
	unsigned char sk[SP_OPRF_SCALARBYTES], sk2[SP_OPRF_SCALARBYTES];
	unsigned char blind[SP_OPRF_SCALARBYTES], blind2[SP_OPRF_SCALARBYTES];
	unsigned char blinded[SP_OPRF_ELEMENTBYTES], blinded2[SP_OPRF_ELEMENTBYTES], eval[SP_OPRF_ELEMENTBYTES];
	unsigned char out[SP_OPRF_OUTPUTBYTES], direct[SP_OPRF_OUTPUTBYTES], other[SP_OPRF_OUTPUTBYTES];
	unsigned char input[69];
	char err[SP_ERRLEN];
	int i;

	for (i = 0; i < 20; i++) {
		sp_oprf_keygen(sk);
		g_assert_true(sp_oprf_key_valid(sk));
		randombytes_buf(input, sizeof input);
		g_assert_cmpint(sp_oprf_blind(input, sizeof input, blind, blinded, err, sizeof err), ==, 0);
		g_assert_cmpint(sp_oprf_blind_evaluate(sk, blinded, eval, err, sizeof err), ==, 0);
		g_assert_cmpint(sp_oprf_finalize(input, sizeof input, blind, eval, out, err, sizeof err), ==, 0);
		g_assert_cmpint(sp_oprf_evaluate(sk, input, sizeof input, direct, err, sizeof err), ==, 0);
		g_assert_cmpmem(out, sizeof out, direct, sizeof direct);

		/* A second blinding of the same input looks unrelated on the wire
		 * and gives the same output. */
		g_assert_cmpint(sp_oprf_blind(input, sizeof input, blind2, blinded2, err, sizeof err), ==, 0);
		g_assert_true(memcmp(blinded, blinded2, sizeof blinded) != 0);
		g_assert_cmpint(sp_oprf_blind_evaluate(sk, blinded2, eval, err, sizeof err), ==, 0);
		g_assert_cmpint(sp_oprf_finalize(input, sizeof input, blind2, eval, other, err, sizeof err), ==, 0);
		g_assert_cmpmem(other, sizeof other, direct, sizeof direct);

		/* Another key: another output. */
		sp_oprf_keygen(sk2);
		g_assert_cmpint(sp_oprf_evaluate(sk2, input, sizeof input, other, err, sizeof err), ==, 0);
		g_assert_true(memcmp(other, direct, sizeof other) != 0);
		/* One input bit flipped: another output. */
		input[i % sizeof input] ^= 1;
		g_assert_cmpint(sp_oprf_evaluate(sk, input, sizeof input, other, err, sizeof err), ==, 0);
		g_assert_true(memcmp(other, direct, sizeof other) != 0);
		/* Unblinding with the wrong blind: another output. */
		input[i % sizeof input] ^= 1;
		g_assert_cmpint(sp_oprf_blind_evaluate(sk, blinded, eval, err, sizeof err), ==, 0);
		g_assert_cmpint(sp_oprf_finalize(input, sizeof input, blind2, eval, other, err, sizeof err), ==, 0);
		g_assert_true(memcmp(other, direct, sizeof other) != 0);
	}
	/* The empty input and the longest accepted one are inputs like any other. */
	{
		unsigned char big[SP_OPRF_INPUT_MAX];

		randombytes_buf(big, sizeof big);
		g_assert_cmpint(sp_oprf_blind(big, sizeof big, blind, blinded, err, sizeof err), ==, 0);
		g_assert_cmpint(sp_oprf_blind_evaluate(sk, blinded, eval, err, sizeof err), ==, 0);
		g_assert_cmpint(sp_oprf_finalize(big, sizeof big, blind, eval, out, err, sizeof err), ==, 0);
		g_assert_cmpint(sp_oprf_evaluate(sk, big, sizeof big, direct, err, sizeof err), ==, 0);
		g_assert_cmpmem(out, sizeof out, direct, sizeof direct);
		g_assert_cmpint(sp_oprf_blind(NULL, 0, blind, blinded, err, sizeof err), ==, 0);
		g_assert_cmpint(sp_oprf_blind_evaluate(sk, blinded, eval, err, sizeof err), ==, 0);
		g_assert_cmpint(sp_oprf_finalize(NULL, 0, blind, eval, out, err, sizeof err), ==, 0);
		g_assert_cmpint(sp_oprf_evaluate(sk, NULL, 0, direct, err, sizeof err), ==, 0);
		g_assert_cmpmem(out, sizeof out, direct, sizeof direct);
	}
}

/* What comes off the wire or out of a store is checked before use. */
static void
test_rejects(void)
{
	unsigned char sk[SP_OPRF_SCALARBYTES], blind[SP_OPRF_SCALARBYTES], bad_scalar[SP_OPRF_SCALARBYTES];
	unsigned char blinded[SP_OPRF_ELEMENTBYTES], eval[SP_OPRF_ELEMENTBYTES], bad[SP_OPRF_ELEMENTBYTES];
	unsigned char out[SP_OPRF_OUTPUTBYTES], big[SP_OPRF_INPUT_MAX + 1], u[64];
	unsigned char seed[SP_OPRF_SEEDBYTES] = { 0 };
	const unsigned char input[] = "input";
	char err[SP_ERRLEN];
	int i;

	sp_oprf_keygen(sk);
	g_assert_cmpint(sp_oprf_blind(input, sizeof input, blind, blinded, err, sizeof err), ==, 0);
	g_assert_cmpint(sp_oprf_blind_evaluate(sk, blinded, eval, err, sizeof err), ==, 0);

	/* Elements: the identity, a non-canonical encoding (field element >= p),
	 * a negative (odd) encoding, and bytes that decode to no point. */
	for (i = 0; i < 4; i++) {
		memset(bad, 0, sizeof bad);
		if (i == 1)
			memset(bad, 0xff, sizeof bad);
		else if (i == 2)
			bad[0] = 1;
		else if (i == 3) {
			memcpy(bad, blinded, sizeof bad);
			bad[31] ^= 0x40;
			bad[0] &= 0xfe;
		}
		if (i == 3 && crypto_core_ristretto255_is_valid_point(bad))
			continue; /* happened to hit a point: nothing to test */
		err[0] = '\0';
		g_assert_cmpint(sp_oprf_blind_evaluate(sk, bad, eval, err, sizeof err), ==, -1);
		g_assert_nonnull(strstr(err, "not a valid group element"));
		g_assert_cmpint(sp_oprf_finalize(input, sizeof input, blind, bad, out, err, sizeof err), ==, -1);
	}

	/* A valid element with the top bit set: the same element to libsodium
	 * 1.0.18, but a non-canonical encoding (>= p) that RFC 9496 refuses. */
	memcpy(bad, blinded, sizeof bad);
	bad[31] |= 0x80;
	g_assert_cmpint(sp_oprf_blind_evaluate(sk, bad, eval, err, sizeof err), ==, -1);
	g_assert_cmpint(sp_oprf_finalize(input, sizeof input, blind, bad, out, err, sizeof err), ==, -1);
	g_assert_cmpint(sp_oprf_blind_evaluate(sk, blinded, eval, err, sizeof err), ==, 0);
	memcpy(bad, eval, sizeof bad);
	bad[31] |= 0x80;
	g_assert_cmpint(sp_oprf_finalize(input, sizeof input, blind, bad, out, err, sizeof err), ==, -1);

	/* Scalars: zero, the group order itself, all ones (key or blind). */
	for (i = 0; i < 3; i++) {
		if (i == 0)
			memset(bad_scalar, 0, sizeof bad_scalar);
		else if (i == 1)
			memcpy(bad_scalar, group_order, sizeof bad_scalar);
		else
			memset(bad_scalar, 0xff, sizeof bad_scalar);
		g_assert_false(sp_oprf_key_valid(bad_scalar));
		g_assert_cmpint(sp_oprf_blind_evaluate(bad_scalar, blinded, eval, err, sizeof err), ==, -1);
		g_assert_cmpint(sp_oprf_evaluate(bad_scalar, input, sizeof input, out, err, sizeof err), ==, -1);
		g_assert_cmpint(sp_oprf_blind_det(input, sizeof input, bad_scalar, eval, err, sizeof err), ==, -1);
		g_assert_cmpint(sp_oprf_finalize(input, sizeof input, bad_scalar, eval, out, err, sizeof err), ==, -1);
	}
	/* order - 1 is the largest valid scalar. */
	memcpy(bad_scalar, group_order, sizeof bad_scalar);
	bad_scalar[0]--;
	g_assert_true(sp_oprf_key_valid(bad_scalar));

	/* Inputs: one byte over the limit, or a NULL with a length. */
	memset(big, 'a', sizeof big);
	g_assert_cmpint(sp_oprf_blind(big, sizeof big, blind, blinded, err, sizeof err), ==, -1);
	g_assert_nonnull(strstr(err, "at most"));
	g_assert_cmpint(sp_oprf_evaluate(sk, big, sizeof big, out, err, sizeof err), ==, -1);
	g_assert_cmpint(sp_oprf_finalize(big, sizeof big, blind, eval, out, err, sizeof err), ==, -1);
	g_assert_cmpint(sp_oprf_blind(NULL, 1, blind, blinded, err, sizeof err), ==, -1);
	g_assert_cmpint(sp_oprf_derive_keypair(seed, big, SP_OPRF_INFO_MAX + 1, sk, NULL, err, sizeof err), ==, -1);
	g_assert_cmpint(sp_oprf_derive_keypair(seed, big, SP_OPRF_INFO_MAX, sk, NULL, err, sizeof err), ==, 0);
	g_assert_true(sp_oprf_key_valid(sk));

	/* expand_message_xmd: the bounds of RFC 9380, 5.3.1. */
	g_assert_cmpint(sp_expand_message_xmd_sha512(input, sizeof input, "", 0, u, 32), ==, -1);
	g_assert_cmpint(sp_expand_message_xmd_sha512(input, sizeof input, big, SP_XMD_DST_MAX + 1, u, 32), ==, -1);
	g_assert_cmpint(sp_expand_message_xmd_sha512(input, sizeof input, big, SP_XMD_DST_MAX, u, 32), ==, 0);
	g_assert_cmpint(sp_expand_message_xmd_sha512(input, sizeof input, "D", 1, u, 0), ==, -1);
	g_assert_cmpint(sp_expand_message_xmd_sha512(input, sizeof input, "D", 1, NULL, SP_XMD_OUT_MAX + 1), ==, -1);
	g_assert_cmpint(sp_expand_message_xmd_sha512(big, SP_XMD_MSG_MAX + 1, "D", 1, u, 32), ==, -1);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	if (sodium_init() < 0)
		g_error("sodium_init failed");

	g_test_add_func("/oprf/kat/derive-keypair", test_kat_derive_keypair);
	g_test_add_func("/oprf/kat/rfc9497-a.1.1", test_kat_vectors);
	g_test_add_func("/oprf/kat/xmd-sha512", test_kat_xmd);
	g_test_add_func("/oprf/roundtrip", test_roundtrip);
	g_test_add_func("/oprf/rejects", test_rejects);
	return g_test_run();
}

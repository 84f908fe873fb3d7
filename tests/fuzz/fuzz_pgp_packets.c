/* fuzz_pgp_packets.c - "is this really an encrypted OpenPGP message?"
 * (crypto/pgp_packets.h): the armor decoder and the packet walker.
 *
 * The input is used twice: as armored text (sp_pgp_armor_decode, then the
 * walker on what it decoded) and as raw packets (sp_pgp_packets_check).
 * Properties: a refusal always says why; decoded armor is never longer than
 * 3/4 of the text; an accepted packet sequence starts with a session-key
 * packet (tag 1 or 3, old or new format) and stays accepted when re-armored
 * by GLib's encoder (the decoder reads what a standard encoder writes), and
 * is refused once its last byte is cut off.
 */
#include "fuzz_common.h"

#include <glib.h>

#include "pgp_packets.h"

static unsigned
first_tag(const uint8_t *p)
{
	return p[0] & 0x40 ? p[0] & 0x3f : (p[0] >> 2) & 0x0f;
}

static void
check_packets(const uint8_t *p, size_t n)
{
	char why[SP_ERRLEN];

	why[0] = '\0';
	if (sp_pgp_packets_check(p, n, why, sizeof why) < 0) {
		FUZZ_CHECK(why[0] != '\0', "refused without a reason");
		return;
	}
	FUZZ_CHECK(n > 0 && (first_tag(p) == 1 || first_tag(p) == 3), "accepted, but starts with tag %u",
	           first_tag(p));
	FUZZ_CHECK(sp_pgp_packets_check(p, n - 1, why, sizeof why) < 0, "accepted with its last byte cut off");
	{
		gchar *b64 = g_base64_encode(p, n);
		GString *t = g_string_new("-----BEGIN PGP MESSAGE-----\n\n");
		size_t i, len = strlen(b64);
		for (i = 0; i < len; i += 64)
			g_string_append_printf(t, "%.*s\n", (int)(len - i < 64 ? len - i : 64), b64 + i);
		g_string_append(t, "-----END PGP MESSAGE-----\n");
		FUZZ_CHECK(sp_pgp_armored_is_encrypted(t->str, t->len, why, sizeof why), "re-armored: %s", why);
		g_string_free(t, TRUE);
		g_free(b64);
	}
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sp_buf b;
	char why[SP_ERRLEN];

	sp_buf_init(&b, 0);
	why[0] = '\0';
	if (sp_pgp_armor_decode((const char *)data, size, &b, why, sizeof why) == 0) {
		FUZZ_CHECK(b.len <= size / 4 * 3, "decoded %zu bytes from %zu of armor", b.len, size);
		check_packets((const uint8_t *)b.data, b.len);
	} else {
		FUZZ_CHECK(why[0] != '\0', "armor refused without a reason");
		FUZZ_CHECK(b.len == 0, "armor refused, but %zu bytes left in the output", b.len);
	}
	sp_buf_free(&b);
	check_packets(data, size);
	return 0;
}

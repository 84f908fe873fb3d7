/* test_discovery.c - WKD names (draft-koch-openpgp-webkey-service). */
#include <glib.h>
#include <string.h>

#include "discovery.h"

struct hash_case {
	const char *local;
	const char *want;
};

static const struct hash_case hash_cases[] = {
	/* The draft's own example: "Joe.Doe@Example.ORG". */
	{ "Joe.Doe", "iy9q119eutrkn8s1mk4r39qejnbu3n5q" },
	/* Only ASCII is lowercased: the same hash for every ASCII case. */
	{ "joe.doe", "iy9q119eutrkn8s1mk4r39qejnbu3n5q" },
	{ "JOE.DOE", "iy9q119eutrkn8s1mk4r39qejnbu3n5q" },
};

static void
test_wkd_hash(void)
{
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(hash_cases); i++) {
		char out[33];
		sp_wkd_hash(hash_cases[i].local, strlen(hash_cases[i].local), out);
		g_assert_cmpstr(out, ==, hash_cases[i].want);
	}
}

static void
test_wkd_hash_non_ascii_kept(void)
{
	/* "Ö" (U+00D6) is not folded: its hash differs from "ö"'s. */
	char up[33], low[33];

	sp_wkd_hash("\xc3\x96", 2, up);
	sp_wkd_hash("\xc3\xb6", 2, low);
	g_assert_cmpuint(strlen(up), ==, 32);
	g_assert_cmpstr(up, !=, low);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/discovery/wkd_hash", test_wkd_hash);
	g_test_add_func("/discovery/wkd_hash_non_ascii_kept", test_wkd_hash_non_ascii_kept);
	return g_test_run();
}

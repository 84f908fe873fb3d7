/* test_address.c - the normal form of mail addresses, table-driven. */
#include <glib.h>
#include <string.h>

#include "address.h"
#include "util.h"

struct norm_case {
	const char *label;
	const char *in;
	const char *want;        /* normal form; NULL = must fail */
	const char *unicode;     /* U-label form (NULL: same as want) */
};

/* zoë@exämple.net in every spelling a client or a key may use. */
#define ZOE "zo\xc3\xab"
#define EXAMPLE_U "ex\xc3\xa4mple.net"
#define EXAMPLE_A "xn--exmple-cua.net"

static const struct norm_case norm_cases[] = {
	{ "ascii", "bob@example.net", "bob@example.net", NULL },
	{ "ascii case folded", "Bob@Example.NET", "bob@example.net", NULL },
	{ "ascii local case folded", "BOB@example.net", "bob@example.net", NULL },
	{ "ascii domain untouched otherwise", "a_b@my_host.example", "a_b@my_host.example", NULL },
	{ "address literal", "a@[192.0.2.1]", "a@[192.0.2.1]", NULL },
	{ "quoted local with @", "\"a@b\"@example.net", "\"a@b\"@example.net", NULL },
	{ "u-label", ZOE "@" EXAMPLE_U, ZOE "@" EXAMPLE_A, ZOE "@" EXAMPLE_U },
	{ "a-label", ZOE "@" EXAMPLE_A, ZOE "@" EXAMPLE_A, ZOE "@" EXAMPLE_U },
	{ "a-label upper case", ZOE "@XN--EXMPLE-CUA.NET", ZOE "@" EXAMPLE_A, ZOE "@" EXAMPLE_U },
	{ "u-label upper case", ZOE "@EX\xc3\x84MPLE.NET", ZOE "@" EXAMPLE_A, ZOE "@" EXAMPLE_U },
	{ "u-label NFD", ZOE "@exa\xcc\x88mple.net", ZOE "@" EXAMPLE_A, ZOE "@" EXAMPLE_U },
	{ "idn subdomain", "a@mail." EXAMPLE_U, "a@mail." EXAMPLE_A, "a@mail." EXAMPLE_U },
	{ "eszett kept (non-transitional)", "a@fa\xc3\x9f.de", "a@xn--fa-hia.de", "a@fa\xc3\x9f.de" },
	/* The local part is compared as it is: no Unicode folding or NFC. */
	{ "local part not case-folded beyond ASCII", "Z\xc3\x96" "E@" EXAMPLE_U, "z\xc3\x96" "e@" EXAMPLE_A,
	  "z\xc3\x96" "e@" EXAMPLE_U },
	{ "local part NFD kept", "zoe\xcc\x88@example.net", "zoe\xcc\x88@example.net", NULL },
	{ "bad punycode", "a@xn--zz.net", NULL, NULL },
	{ "a-label of a disallowed code point", "a@xn--a.net", NULL, NULL },
	{ "a-label not canonical", "a@xn--exmple-cub.net", NULL, NULL },
	{ "hyphen at label end in an idn", "a@ab-." EXAMPLE_U, NULL, NULL },
	{ "no at", "bob.example.net", NULL, NULL },
	{ "empty local", "@example.net", NULL, NULL },
	{ "empty domain", "bob@", NULL, NULL },
};

static void
test_normalize(gconstpointer p)
{
	const struct norm_case *c = p;
	char out[SP_ADDR_MAX], uni[SP_ADDR_MAX], err[SP_ERRLEN] = "";
	int r = sp_addr_normalize(c->in, out, sizeof out, err, sizeof err);

	if (c->want == NULL) {
		if (r != -1)
			g_error("%s: '%s' normalised to '%s', want failure", c->label, c->in, out);
		g_assert_cmpstr(err, !=, "");
		g_assert_cmpint(sp_addr_unicode(c->in, uni, sizeof uni, err, sizeof err), ==, -1);
		return;
	}
	if (r != 0)
		g_error("%s: '%s' failed: %s", c->label, c->in, err);
	g_assert_cmpstr(out, ==, c->want);
	g_assert_cmpint(sp_addr_unicode(c->in, uni, sizeof uni, err, sizeof err), ==, 0);
	g_assert_cmpstr(uni, ==, c->unicode ? c->unicode : c->want);
	/* The normal form is a fixed point. */
	g_assert_cmpint(sp_addr_normalize(out, uni, sizeof uni, err, sizeof err), ==, 0);
	g_assert_cmpstr(uni, ==, out);
}

struct eq_case {
	const char *label;
	const char *a, *b;
	bool equal;
};

static const struct eq_case eq_cases[] = {
	{ "same", "bob@example.net", "bob@example.net", true },
	{ "ascii case", "Bob@Example.net", "bob@EXAMPLE.NET", true },
	{ "a-label vs u-label", ZOE "@" EXAMPLE_A, ZOE "@" EXAMPLE_U, true },
	{ "u-label vs a-label upper", ZOE "@" EXAMPLE_U, ZOE "@XN--EXMPLE-CUA.NET", true },
	{ "nfd vs nfc domain", ZOE "@exa\xcc\x88mple.net", ZOE "@" EXAMPLE_A, true },
	{ "local part differs", "zoe@" EXAMPLE_U, ZOE "@" EXAMPLE_A, false },
	{ "different domain", ZOE "@" EXAMPLE_U, ZOE "@example.net", false },
	{ "substring is not equal", "xbob@example.net", "bob@example.net", false },
	{ "suffix is not equal", "bob@example.net.evil", "bob@example.net", false },
	{ "invalid idn falls back to exact", "a@xn--zz.net", "A@XN--ZZ.NET", true },
	{ "invalid idn never equals a valid one", "a@xn--zz.net", "a@" EXAMPLE_A, false },
};

static void
test_equal(gconstpointer p)
{
	const struct eq_case *c = p;

	if (sp_addr_equal(c->a, c->b) != c->equal || sp_addr_equal(c->b, c->a) != c->equal)
		g_error("%s: sp_addr_equal('%s', '%s') != %d", c->label, c->a, c->b, c->equal);
}

static void
test_is_idn(void)
{
	g_assert_true(sp_addr_is_idn(ZOE "@" EXAMPLE_A));
	g_assert_true(sp_addr_is_idn("a@" EXAMPLE_U));
	g_assert_true(sp_addr_is_idn("a@mail.XN--EXMPLE-CUA.net"));
	g_assert_false(sp_addr_is_idn(ZOE "@example.net"));
	g_assert_false(sp_addr_is_idn("a@xnexample.net"));
	g_assert_false(sp_addr_is_idn("a@[192.0.2.1]"));
}

int
main(int argc, char **argv)
{
	size_t i;

	g_test_init(&argc, &argv, NULL);
	for (i = 0; i < SP_ARRAY_LEN(norm_cases); i++) {
		char *n = g_strdup_printf("/address/normalize/%s", norm_cases[i].label);
		g_test_add_data_func(n, &norm_cases[i], test_normalize);
		g_free(n);
	}
	for (i = 0; i < SP_ARRAY_LEN(eq_cases); i++) {
		char *n = g_strdup_printf("/address/equal/%s", eq_cases[i].label);
		g_test_add_data_func(n, &eq_cases[i], test_equal);
		g_free(n);
	}
	g_test_add_func("/address/is_idn", test_is_idn);
	return g_test_run();
}

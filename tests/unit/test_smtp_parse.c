/* test_smtp_parse.c - paths, parameters and dot-stuffing, table-driven. */
#include <glib.h>
#include <string.h>

#include "smtp_parse.h"

struct path_case {
	const char *label;
	const char *in;          /* what follows "MAIL FROM:" */
	bool allow_null;
	bool allow_utf8;
	const char *want;        /* parsed address; NULL = must fail */
	const char *rest;        /* parameters left over */
};

static const struct path_case path_cases[] = {
	{ "simple", "<a@b.example>", true, false, "a@b.example", "" },
	{ "blank after colon", " <a@b.example>", true, false, "a@b.example", "" },
	{ "null sender", "<>", true, false, "", "" },
	{ "null rcpt refused", "<>", false, false, NULL, NULL },
	{ "params", "<a@b.example> SIZE=10 BODY=8BITMIME", true, false, "a@b.example", "SIZE=10 BODY=8BITMIME" },
	{ "dots and plus", "<first.last+tag@sub.b.example>", true, false, "first.last+tag@sub.b.example", "" },
	{ "quoted local", "<\"a b\"@b.example>", true, false, "\"a b\"@b.example", "" },
	{ "address literal", "<a@[127.0.0.1]>", true, false, "a@[127.0.0.1]", "" },
	{ "source route", "<@relay.example:a@b.example>", true, false, "a@b.example", "" },
	{ "no brackets", "a@b.example", true, false, NULL, NULL },
	{ "no domain", "<a>", true, false, NULL, NULL },
	{ "empty local", "<@b.example>", true, false, NULL, NULL },
	{ "double dot", "<a..b@b.example>", true, false, NULL, NULL },
	{ "trailing dot local", "<a.@b.example>", true, false, NULL, NULL },
	{ "leading hyphen domain", "<a@-b.example>", true, false, NULL, NULL },
	{ "junk after", "<a@b.example>x", true, false, NULL, NULL },
	{ "unclosed", "<a@b.example", true, false, NULL, NULL },
	{ "space inside", "<a @b.example>", true, false, NULL, NULL },
	{ "utf8 without smtputf8", "<j\xc3\xb6rg@b.example>", true, false, NULL, NULL },
	{ "utf8 with smtputf8", "<j\xc3\xb6rg@b.example>", true, true, "j\xc3\xb6rg@b.example", "" },
	{ "control char", "<a\x01@b.example>", true, true, NULL, NULL },
	{ "local 64", "<aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@b.example>", true, false,
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@b.example", "" },
	{ "local 65", "<aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@b.example>", true, false, NULL, NULL },
};

static void
test_path(gconstpointer p)
{
	const struct path_case *c = p;
	struct smtp_path path;
	const char *rest = NULL;
	char why[128];
	int r = smtp_parse_path(c->in, c->allow_null, c->allow_utf8, &path, &rest, why, sizeof why);

	if (c->want == NULL) {
		if (r != -1)
			g_error("%s: '%s' parsed as '%s', want failure", c->label, c->in, path.addr);
		g_assert_cmpstr(why, !=, "");
		return;
	}
	if (r != 0)
		g_error("%s: '%s' failed: %s", c->label, c->in, why);
	g_assert_cmpstr(path.addr, ==, c->want);
	g_assert_cmpstr(rest, ==, c->rest);
	g_assert_true(path.null == (c->want[0] == '\0'));
}

struct param_case {
	const char *label;
	const char *in;
	int n;                   /* -1 = must fail */
	const char *key0, *val0;
};

static const struct param_case param_cases[] = {
	{ "none", "", 0, NULL, NULL },
	{ "size", "SIZE=1000", 1, "SIZE", "1000" },
	{ "lowercase key", "body=8BITMIME", 1, "BODY", "8BITMIME" },
	{ "no value", "SMTPUTF8", 1, "SMTPUTF8", "" },
	{ "two", "SIZE=1 SMTPUTF8", 2, "SIZE", "1" },
	{ "empty value", "SIZE=", -1, NULL, NULL },
	{ "bad key", "-X=1", -1, NULL, NULL },
	{ "equals in value", "A=b=c", -1, NULL, NULL },
	{ "too many", "A B C D E F G H I", -1, NULL, NULL },
};

static void
test_params(gconstpointer p)
{
	const struct param_case *c = p;
	struct smtp_param params[SMTP_PARAMS_MAX];
	size_t n = 0;
	char why[128];
	int r = smtp_parse_params(c->in, params, &n, why, sizeof why);

	if (c->n < 0) {
		g_assert_cmpint(r, ==, -1);
		return;
	}
	g_assert_cmpint(r, ==, 0);
	g_assert_cmpuint(n, ==, (size_t)c->n);
	if (c->key0) {
		g_assert_cmpstr(params[0].key, ==, c->key0);
		g_assert_cmpstr(params[0].value, ==, c->val0);
	}
}

struct stuff_case {
	const char *label;
	const char *in;
	const char *want;
};

static const struct stuff_case stuff_cases[] = {
	{ "empty", "", ".\r\n" },
	{ "one line", "a\r\n", "a\r\n.\r\n" },
	{ "no final newline", "a", "a\r\n.\r\n" },
	{ "leading dot", ".a\r\n", "..a\r\n.\r\n" },
	{ "lone dot line", "a\r\n.\r\nb\r\n", "a\r\n..\r\nb\r\n.\r\n" },
	{ "dot mid line", "a.b\r\n", "a.b\r\n.\r\n" },
	{ "bare lf normalised", "a\nb\n", "a\r\nb\r\n.\r\n" },
	{ "bare cr normalised", "a\rb", "a\r\nb\r\n.\r\n" },
	{ "dot after bare lf", "a\n.b", "a\r\n..b\r\n.\r\n" },
	{ "trailing cr", "a\r", "a\r\n.\r\n" },
};

static void
test_dotstuff(gconstpointer p)
{
	const struct stuff_case *c = p;
	struct smtp_dotstuff d;
	struct sp_buf out;
	size_t i, len = strlen(c->in);

	/* Whole input at once. */
	sp_buf_init(&out, 0);
	smtp_dotstuff_init(&d);
	g_assert_cmpint(smtp_dotstuff_feed(&d, c->in, len, &out), ==, 0);
	g_assert_cmpint(smtp_dotstuff_end(&d, &out), ==, 0);
	g_assert_cmpstr(out.data, ==, c->want);
	/* One byte at a time: chunk boundaries must not matter. */
	sp_buf_reset(&out);
	smtp_dotstuff_init(&d);
	for (i = 0; i < len; i++)
		g_assert_cmpint(smtp_dotstuff_feed(&d, c->in + i, 1, &out), ==, 0);
	g_assert_cmpint(smtp_dotstuff_end(&d, &out), ==, 0);
	g_assert_cmpstr(out.data, ==, c->want);
	sp_buf_free(&out);
}

int
main(int argc, char **argv)
{
	size_t i;

	g_test_init(&argc, &argv, NULL);
	for (i = 0; i < G_N_ELEMENTS(path_cases); i++) {
		char *n = g_strdup_printf("/smtp_parse/path/%s", path_cases[i].label);
		g_test_add_data_func(n, &path_cases[i], test_path);
		g_free(n);
	}
	for (i = 0; i < G_N_ELEMENTS(param_cases); i++) {
		char *n = g_strdup_printf("/smtp_parse/params/%s", param_cases[i].label);
		g_test_add_data_func(n, &param_cases[i], test_params);
		g_free(n);
	}
	for (i = 0; i < G_N_ELEMENTS(stuff_cases); i++) {
		char *n = g_strdup_printf("/smtp_parse/dotstuff/%s", stuff_cases[i].label);
		g_test_add_data_func(n, &stuff_cases[i], test_dotstuff);
		g_free(n);
	}
	return g_test_run();
}

/* test_cli.c - cli_parse_args(), the command line of every subcommand,
 * table-driven.  The cases run one after another in one process, as the test
 * drivers call several subcommands: each parse must start afresh (optind). */
#include <glib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "util.h"

#define MAX_ARGS 10

static const char usage_a[] = "usage: sealpost a [-c FILE] [--flag] [--value V] [--list X...] [OP [OP]]\n";
static const char usage_b[] = "usage: sealpost b -k KEY [OP]\n";

struct parse_case {
	const char *label;
	bool b;                       /* command b (no config, -k required, 0..1 operand), else a */
	const char *argv[MAX_ARGS];   /* NULL-terminated */
	int want_rv;
	const char *want_config;      /* a: the -c FILE seen (NULL: none) */
	bool want_flag;
	const char *want_value;       /* a: --value; b: -k */
	const char *want_list[3];     /* NULL-terminated */
	const char *want_operands[3]; /* NULL-terminated */
	bool want_usage_out;          /* the usage on stdout (--help) */
	bool want_usage_err;          /* the usage ends stderr (a usage error) */
};

#define A(...) .argv = { "a", __VA_ARGS__, NULL }
#define B(...) .b = true, .argv = { "b", __VA_ARGS__, NULL }
#define OK .want_rv = CLI_CONTINUE
#define HELP .want_rv = EXIT_OK, .want_usage_out = true
#define BAD .want_rv = EXIT_USAGE, .want_usage_err = true

static const struct parse_case cases[] = {
	{ .label = "nothing", .argv = { "a", NULL }, OK },
	{ .label = "config short", A("-c", "x.conf"), OK, .want_config = "x.conf" },
	{ .label = "config long after an operand", A("op1", "--config", "y.conf"), OK,
	  .want_config = "y.conf", .want_operands = { "op1" } },
	{ .label = "config =", A("--config=z.conf"), OK, .want_config = "z.conf" },
	{ .label = "options anywhere", A("op1", "-f", "op2", "--value", "v1", "-c", "w.conf"), OK,
	  .want_config = "w.conf", .want_flag = true, .want_value = "v1", .want_operands = { "op1", "op2" } },
	{ .label = "last value wins", A("-v", "one", "--value=two"), OK, .want_value = "two" },
	{ .label = "list repeats", A("--list", "x@a", "-l", "y@b", "op1"), OK, .want_list = { "x@a", "y@b" },
	  .want_operands = { "op1" } },
	{ .label = "help long", A("--help"), HELP },
	{ .label = "help short after options", A("-f", "op1", "-h"), HELP },
	{ .label = "a bad option before help is the error", A("--bogus", "--help"), BAD },
	{ .label = "unknown long option", A("--bogus"), BAD },
	{ .label = "unknown short option", A("-x"), BAD },
	{ .label = "missing argument", A("-c"), BAD },
	{ .label = "too many operands", A("1", "2", "3"), BAD },
	{ .label = "b: required option given", B("-k", "key", "file"), OK, .want_value = "key",
	  .want_operands = { "file" } },
	{ .label = "b: required option missing", B("file"), BAD },
	{ .label = "b: no -c", B("-k", "key", "-c", "x.conf"), BAD },
	{ .label = "b: no --config", B("-k", "key", "--config", "x.conf"), BAD },
	{ .label = "b: too many operands", B("-k", "key", "f1", "f2"), BAD },
	{ .label = "b: help", B("--help"), HELP },
	{ .label = "again after help", A("-c", "again.conf", "op1"), OK, .want_config = "again.conf",
	  .want_operands = { "op1" } },
};

/* Run fn with stdout and stderr going to files; returns what each got. */
static FILE *
redirect(int fd, int *saved)
{
	FILE *f = tmpfile();

	g_assert_nonnull(f);
	fflush(fd == 1 ? stdout : stderr);
	*saved = dup(fd);
	g_assert_cmpint(dup2(fileno(f), fd), ==, fd);
	return f;
}

static char *
restore(FILE *f, int fd, int saved)
{
	char *text = g_malloc0(4096);
	size_t n;

	fflush(fd == 1 ? stdout : stderr);
	g_assert_cmpint(dup2(saved, fd), ==, fd);
	close(saved);
	rewind(f);
	n = fread(text, 1, 4095, f);
	text[n] = '\0';
	fclose(f);
	return text;
}

static bool
ends_with(const char *s, const char *tail)
{
	size_t n = strlen(s), m = strlen(tail);

	return n >= m && strcmp(s + n - m, tail) == 0;
}

static void
test_parse(gconstpointer data)
{
	const struct parse_case *c = data;
	char *argv[MAX_ARGS + 1] = { 0 };
	const char *list[MAX_ARGS] = { 0 }, *value = NULL, *config = "untouched";
	size_t n_list = 0, i;
	bool flag = false;
	const struct cli_option opts_a[] = {
		{ .name = "flag", .letter = 'f', .flag = &flag },
		{ .name = "value", .letter = 'v', .value = &value },
		{ .name = "list", .letter = 'l', .list = list, .n_list = &n_list },
		{ 0 },
	};
	const struct cli_option opts_b[] = {
		{ .name = "key", .letter = 'k', .required = true, .value = &value },
		{ 0 },
	};
	const struct cli_command a = { .usage = usage_a, .config = true, .options = opts_a,
	                               .max_operands = 2 };
	const struct cli_command b = { .usage = usage_b, .options = opts_b, .max_operands = 1 };
	int argc = 0, first = -1, rv, so, se;
	FILE *fo, *fe;
	char *out, *err;

	for (argc = 0; c->argv[argc]; argc++)
		argv[argc] = g_strdup(c->argv[argc]);
	fo = redirect(1, &so);
	fe = redirect(2, &se);
	rv = cli_parse_args(c->b ? &b : &a, argc, argv, c->b ? NULL : &config, &first);
	err = restore(fe, 2, se);
	out = restore(fo, 1, so);

	g_assert_cmpint(rv, ==, c->want_rv);
	g_assert_cmpstr(out, ==, c->want_usage_out ? (c->b ? usage_b : usage_a) : "");
	if (c->want_usage_err)
		g_assert_true(ends_with(err, c->b ? usage_b : usage_a));
	else
		g_assert_cmpstr(err, ==, "");
	if (rv == CLI_CONTINUE) {
		if (!c->b)
			g_assert_cmpstr(config, ==, c->want_config);
		g_assert_cmpint(flag, ==, c->want_flag);
		g_assert_cmpstr(value, ==, c->want_value);
		for (i = 0; c->want_list[i]; i++)
			g_assert_cmpstr(list[i], ==, c->want_list[i]);
		g_assert_cmpuint(n_list, ==, i);
		for (i = 0; c->want_operands[i]; i++)
			g_assert_cmpstr(argv[first + (int)i], ==, c->want_operands[i]);
		g_assert_cmpint(argc - first, ==, (int)i);
	}
	for (i = 0; i < (size_t)argc; i++)
		g_free(argv[i]);
	g_free(out);
	g_free(err);
}

int
main(int argc, char **argv)
{
	size_t i;

	g_test_init(&argc, &argv, NULL);
	for (i = 0; i < SP_ARRAY_LEN(cases); i++) {
		char *n = g_strdup_printf("/cli/parse_args/%02zu %s", i, cases[i].label);
		g_test_add_data_func(n, &cases[i], test_parse);
		g_free(n);
	}
	return g_test_run();
}

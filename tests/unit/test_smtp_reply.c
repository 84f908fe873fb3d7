/* test_smtp_reply.c - the strict reply parser and the one line reader (conn),
 * driven through a real socketpair. */
#include <glib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "smtp_reply.h"

struct line_case {
	const char *label;
	const char *line;
	int code;           /* 0 = invalid */
	bool more;
	const char *text;
};

static const struct line_case line_cases[] = {
	{ "simple", "250 ok\r\n", 250, false, "ok" },
	{ "continuation", "250-PIPELINING\r\n", 250, true, "PIPELINING" },
	{ "code only", "220\r\n", 220, false, "" },
	{ "bare lf tolerated", "354 go\n", 354, false, "go" },
	{ "first digit 1", "150 no\r\n", 0, false, NULL },
	{ "first digit 6", "650 no\r\n", 0, false, NULL },
	{ "letters", "2x0 no\r\n", 0, false, NULL },
	{ "no separator", "250ok\r\n", 0, false, NULL },
	{ "too short", "25\r\n", 0, false, NULL },
	{ "control char", "250 a\x01b\r\n", 0, false, NULL },
	{ "empty", "\r\n", 0, false, NULL },
};

static void
test_line(gconstpointer p)
{
	const struct line_case *c = p;
	int code = 0;
	bool more = false;
	const char *text = NULL;
	int r = smtp_reply_parse_line(c->line, strlen(c->line), &code, &more, &text);

	if (c->code == 0) {
		g_assert_cmpint(r, ==, -1);
		return;
	}
	g_assert_cmpint(r, ==, 0);
	g_assert_cmpint(code, ==, c->code);
	g_assert_cmpint(more, ==, c->more);
	g_assert_cmpint(strncmp(text, c->text, strlen(c->text)), ==, 0);
}

struct enh_case {
	int code;
	const char *text;
	const char *enh;
	const char *rest;
};

static const struct enh_case enh_cases[] = {
	{ 550, "5.7.1 denied", "5.7.1", "denied" },
	{ 250, "2.0.0 Ok", "2.0.0", "Ok" },
	{ 451, "4.4.2 timeout", "4.4.2", "timeout" },
	{ 550, "4.7.1 class mismatch", "", "4.7.1 class mismatch" },
	{ 550, "5.7 short", "", "5.7 short" },
	{ 550, "5.7.1234 long", "", "5.7.1234 long" },
	{ 250, "2.0.0", "2.0.0", "" },
	{ 250, "hello", "", "hello" },
};

static void
test_enh(void)
{
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(enh_cases); i++) {
		char enh[16];
		const char *rest = smtp_reply_split_enh(enh_cases[i].code, enh_cases[i].text, enh);
		g_assert_cmpstr(enh, ==, enh_cases[i].enh);
		g_assert_cmpstr(rest, ==, enh_cases[i].rest);
	}
}

static enum smtp_reply_status
read_from(const char *wire, struct smtp_reply *r)
{
	int sv[2];
	struct conn c;
	char err[SP_ERRLEN];
	enum smtp_reply_status st;

	g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), ==, 0);
	g_assert_cmpint(write(sv[1], wire, strlen(wire)), ==, (ssize_t)strlen(wire));
	close(sv[1]);
	conn_init(&c, sv[0]);
	st = smtp_reply_read(&c, r, sp_now_ms() + 2000, err, sizeof err);
	conn_close(&c);
	return st;
}

static void
test_multiline(void)
{
	struct smtp_reply r = { 0 };

	g_assert_cmpint(read_from("250-mx.example\r\n250-SIZE 1000\r\n250 8BITMIME\r\n", &r), ==, SMTP_REPLY_OK);
	g_assert_cmpint(r.code, ==, 250);
	g_assert_cmpuint(r.n_lines, ==, 3);
	g_assert_cmpstr(r.lines[1], ==, "SIZE 1000");
	smtp_reply_clear(&r);
	/* A code change inside a multi-line reply is a protocol violation. */
	g_assert_cmpint(read_from("250-a\r\n251 b\r\n", &r), ==, SMTP_REPLY_SYNTAX);
	smtp_reply_clear(&r);
	/* Connection closed mid-reply. */
	g_assert_cmpint(read_from("250-a\r\n", &r), ==, SMTP_REPLY_IO);
	smtp_reply_clear(&r);
	g_assert_cmpint(read_from("550 5.1.1 <x@y>: no such user\r\n", &r), ==, SMTP_REPLY_OK);
	g_assert_cmpstr(r.enh, ==, "5.1.1");
	g_assert_cmpstr(r.text, ==, "<x@y>: no such user");
	smtp_reply_clear(&r);
}

static void
test_too_many_lines(void)
{
	struct smtp_reply r = { 0 };
	GString *s = g_string_new(NULL);
	int i;

	for (i = 0; i < SMTP_REPLY_MAX_LINES + 5; i++)
		g_string_append(s, "250-x\r\n");
	g_string_append(s, "250 end\r\n");
	g_assert_cmpint(read_from(s->str, &r), ==, SMTP_REPLY_SYNTAX);
	smtp_reply_clear(&r);
	g_string_free(s, TRUE);
}

static void
test_long_line(void)
{
	struct smtp_reply r = { 0 };
	GString *s = g_string_new("250 ");
	int i;

	for (i = 0; i < SMTP_REPLY_LINE_MAX + 10; i++)
		g_string_append_c(s, 'x');
	g_string_append(s, "\r\n");
	g_assert_cmpint(read_from(s->str, &r), ==, SMTP_REPLY_SYNTAX);
	smtp_reply_clear(&r);
	g_string_free(s, TRUE);
}

/* The line reader: limits on complete lines and on unterminated input. */
static void
test_conn_lines(void)
{
	int sv[2];
	struct conn c;
	char buf[16];
	size_t len;
	const char *wire = "abc\r\n0123456789012345678901234\r\nx\n";

	g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), ==, 0);
	g_assert_cmpint(write(sv[1], wire, strlen(wire)), ==, (ssize_t)strlen(wire));
	close(sv[1]);
	conn_init(&c, sv[0]);
	g_assert_cmpint(conn_read_line(&c, buf, 10, &len, sp_now_ms() + 1000), ==, CONN_OK);
	g_assert_cmpuint(len, ==, 5);
	g_assert_true(c.line_cr);
	g_assert_cmpstr(buf, ==, "abc\r\n");
	/* 27 bytes with a limit of 10: too long, consumed through its LF. */
	g_assert_cmpint(conn_read_line(&c, buf, 10, &len, sp_now_ms() + 1000), ==, CONN_TOOLONG);
	g_assert_cmpuint(len, ==, 10);
	g_assert_true(c.line_cr);
	g_assert_cmpint(conn_read_line(&c, buf, 10, &len, sp_now_ms() + 1000), ==, CONN_OK);
	g_assert_cmpstr(buf, ==, "x\n");
	g_assert_false(c.line_cr);
	g_assert_cmpint(conn_read_line(&c, buf, 10, &len, sp_now_ms() + 1000), ==, CONN_EOF);
	conn_close(&c);
}

static void
test_conn_timeout(void)
{
	int sv[2];
	struct conn c;
	char buf[16];
	size_t len;

	g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), ==, 0);
	g_assert_cmpint(write(sv[1], "par", 3), ==, 3);
	conn_init(&c, sv[0]);
	g_assert_cmpint(conn_read_line(&c, buf, 10, &len, sp_now_ms() + 100), ==, CONN_TIMEOUT);
	conn_close(&c);
	close(sv[1]);
}

int
main(int argc, char **argv)
{
	size_t i;

	g_test_init(&argc, &argv, NULL);
	for (i = 0; i < G_N_ELEMENTS(line_cases); i++) {
		char *n = g_strdup_printf("/smtp_reply/line/%s", line_cases[i].label);
		g_test_add_data_func(n, &line_cases[i], test_line);
		g_free(n);
	}
	g_test_add_func("/smtp_reply/enhanced-codes", test_enh);
	g_test_add_func("/smtp_reply/multiline", test_multiline);
	g_test_add_func("/smtp_reply/too-many-lines", test_too_many_lines);
	g_test_add_func("/smtp_reply/long-line", test_long_line);
	g_test_add_func("/conn/lines", test_conn_lines);
	g_test_add_func("/conn/timeout", test_conn_timeout);
	return g_test_run();
}

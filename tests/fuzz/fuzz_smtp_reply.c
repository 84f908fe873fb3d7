/* fuzz_smtp_reply.c - the strict parser for what the upstream server says
 * (proxy/smtp_reply.h).
 *
 * The input is what a hostile upstream sends: it is written into one end of a
 * socketpair and read back with smtp_reply_read() through a struct conn (the
 * same line assembly the relay uses) until the parser refuses or the stream
 * ends.  The same bytes also go straight to smtp_reply_parse_line(), and
 * through smtp_reply_split_enh() with a code of each class.
 */
#include "fuzz_common.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>

#include "conn.h"
#include "smtp_reply.h"
#include "util.h"

/* Larger inputs than this do not fit the socket buffer without a writer thread,
 * and find nothing a 64 KiB one does not. */
#define FUZZ_REPLY_MAX_INPUT 65536

static void
check_reply(const struct smtp_reply *r)
{
	size_t i;

	FUZZ_CHECK(r->code >= 200 && r->code <= 599, "reply code %d", r->code);
	FUZZ_CHECK(r->n_lines >= 1 && r->n_lines <= SMTP_REPLY_MAX_LINES, "%zu lines", r->n_lines);
	FUZZ_CHECK(memchr(r->text, '\0', sizeof r->text) != NULL, "text not terminated");
	FUZZ_CHECK(memchr(r->enh, '\0', sizeof r->enh) != NULL, "enhanced code not terminated");
	FUZZ_CHECK(r->enh[0] == '\0' || r->enh[0] == '0' + r->code / 100, "enhanced code %s for %d",
	           r->enh, r->code);
	for (i = 0; i < r->n_lines; i++) {
		const char *p;
		FUZZ_CHECK(r->lines[i] != NULL, "line %zu missing", i);
		for (p = r->lines[i]; *p; p++)
			FUZZ_CHECK(*p != '\r' && *p != '\n', "line terminator kept in line %zu", i);
	}
	FUZZ_CHECK(r->lines[r->n_lines] == NULL, "lines not NULL-terminated");
}

static void
read_replies(const uint8_t *data, size_t size)
{
	struct conn c;
	struct smtp_reply r = { 0 };
	char err[SP_ERRLEN];
	int sv[2], n = 0;
	ssize_t w;

	FUZZ_SETUP(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
	{
		int sz = 4 * FUZZ_REPLY_MAX_INPUT;
		setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
	}
	w = size ? write(sv[0], data, size) : 0;
	FUZZ_SETUP(w == (ssize_t)size, "write to the socketpair");
	shutdown(sv[0], SHUT_WR);
	FUZZ_SETUP(fcntl(sv[1], F_SETFL, O_NONBLOCK) == 0, "O_NONBLOCK");
	conn_init(&c, sv[1]);
	for (;;) {
		enum smtp_reply_status st = smtp_reply_read(&c, &r, sp_now_ms() + 5000, err, sizeof err);
		if (st != SMTP_REPLY_OK) {
			FUZZ_CHECK(err[0] != '\0', "failure without a reason");
			break;
		}
		check_reply(&r);
		/* At least one byte per line was consumed. */
		FUZZ_CHECK(++n <= (int)size, "more replies than input bytes");
	}
	smtp_reply_clear(&r);
	conn_close(&c);
	close(sv[0]);
}

static void
parse_line(const uint8_t *data, size_t size)
{
	static const int codes[] = { 250, 354, 451, 554 };
	const char *text = NULL;
	char enh[16];
	bool more = false;
	int code = 0;
	char *s;
	size_t i;

	if (smtp_reply_parse_line((const char *)data, size, &code, &more, &text) == 0) {
		FUZZ_CHECK(code >= 200 && code <= 599, "code %d", code);
		FUZZ_CHECK(text >= (const char *)data && text <= (const char *)data + size, "text outside the line");
	}
	s = fuzz_strndup(data, size);
	for (i = 0; i < SP_ARRAY_LEN(codes); i++) {
		const char *rest = smtp_reply_split_enh(codes[i], s, enh);
		FUZZ_CHECK(memchr(enh, '\0', sizeof enh) != NULL, "enh not terminated");
		FUZZ_CHECK(rest >= s && rest <= s + strlen(s), "rest outside the text");
		if (enh[0]) {
			FUZZ_CHECK(enh[0] == '0' + codes[i] / 100, "enh %s for code %d", enh, codes[i]);
			FUZZ_CHECK(strncmp(s, enh, strlen(enh)) == 0, "enh is not a prefix of the text");
		} else {
			FUZZ_CHECK(rest == s, "text consumed without an enhanced code");
		}
	}
	free(s);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	parse_line(data, size);
	if (size <= FUZZ_REPLY_MAX_INPUT)
		read_replies(data, size);
	return 0;
}

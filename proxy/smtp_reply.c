/* smtp_reply.c - strict parsing of SMTP replies. */
#include "smtp_reply.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
smtp_reply_clear(struct smtp_reply *r)
{
	size_t i;

	for (i = 0; r->lines && i < r->n_lines; i++)
		free(r->lines[i]);
	free(r->lines);
	memset(r, 0, sizeof *r);
}

void
smtp_reply_set(struct smtp_reply *r, int code, const char *enh, const char *fmt, ...)
{
	char text[SMTP_REPLY_TEXT_MAX], e[16];
	va_list ap;

	/* Format first: the arguments may point into r itself. */
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	sp_strlcpy(e, enh ? enh : "", sizeof e);
	smtp_reply_clear(r);
	r->code = code;
	memcpy(r->enh, e, sizeof r->enh);
	memcpy(r->text, text, sizeof r->text);
}

int
smtp_reply_parse_line(const char *line, size_t len, int *code, bool *more, const char **text)
{
	size_t i;

	/* Strip the line terminator; a bare LF is tolerated from servers. */
	if (len && line[len - 1] == '\n')
		len--;
	if (len && line[len - 1] == '\r')
		len--;
	if (len < 3 || line[0] < '2' || line[0] > '5' || !isdigit((unsigned char)line[1]) ||
	    !isdigit((unsigned char)line[2]))
		return -1;
	if (len > 3 && line[3] != ' ' && line[3] != '-')
		return -1;
	for (i = 4; i < len; i++) {
		unsigned char ch = (unsigned char)line[i];
		/* Printable text; tabs and UTF-8 (RFC 6531 servers) tolerated. */
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return -1;
	}
	*code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	*more = len > 3 && line[3] == '-';
	*text = len > 4 ? line + 4 : line + len;
	return 0;
}

const char *
smtp_reply_split_enh(int code, const char *text, char enh[16])
{
	const char *p = text;
	size_t n;

	/* class "." subject "." detail, RFC 3463; the class must match the code. */
	enh[0] = '\0';
	if (p[0] != '0' + code / 100 || p[1] != '.')
		return text;
	p += 2;
	n = strspn(p, "0123456789");
	if (n < 1 || n > 3 || p[n] != '.')
		return text;
	p += n + 1;
	n = strspn(p, "0123456789");
	if (n < 1 || n > 3 || (p[n] != ' ' && p[n] != '\0'))
		return text;
	p += n;
	memcpy(enh, text, (size_t)(p - text));
	enh[p - text] = '\0';
	while (*p == ' ')
		p++;
	return p;
}

enum smtp_reply_status
smtp_reply_read(struct conn *c, struct smtp_reply *r, int64_t deadline_ms, char *err, size_t errsz)
{
	char line[SMTP_REPLY_LINE_MAX + 1];
	size_t len, tl;
	int code, first = 0;
	bool more = true;
	const char *text;
	enum conn_status st;

	smtp_reply_clear(r);
	r->lines = sp_xcalloc(SMTP_REPLY_MAX_LINES + 1, sizeof(char *));
	while (more) {
		st = conn_read_line(c, line, SMTP_REPLY_LINE_MAX, &len, deadline_ms);
		if (st == CONN_TOOLONG) {
			sp_seterr(err, errsz, "reply line longer than %d octets", SMTP_REPLY_LINE_MAX);
			return SMTP_REPLY_SYNTAX;
		}
		if (st != CONN_OK) {
			sp_seterr(err, errsz, "%s", conn_error(c));
			return SMTP_REPLY_IO;
		}
		if (smtp_reply_parse_line(line, len, &code, &more, &text) < 0) {
			char safe[80];
			sp_sanitize(line, len, safe, sizeof safe);
			sp_seterr(err, errsz, "not an SMTP reply: '%s'", safe);
			return SMTP_REPLY_SYNTAX;
		}
		if (first && code != first) {
			sp_seterr(err, errsz, "multi-line reply changes code from %d to %d", first, code);
			return SMTP_REPLY_SYNTAX;
		}
		if (r->n_lines == SMTP_REPLY_MAX_LINES) {
			sp_seterr(err, errsz, "reply has more than %d lines", SMTP_REPLY_MAX_LINES);
			return SMTP_REPLY_SYNTAX;
		}
		first = code;
		tl = strcspn(text, "\r\n");
		r->lines[r->n_lines++] = sp_xstrndup(text, tl);
	}
	r->code = first;
	/* Enhanced code from the first line; text joined over all lines. */
	{
		char enh[16];
		size_t i;
		const char *rest = smtp_reply_split_enh(first, r->lines[0], enh);
		sp_strlcpy(r->enh, enh, sizeof r->enh);
		sp_strlcpy(r->text, rest, sizeof r->text);
		for (i = 1; i < r->n_lines; i++) {
			char e2[16];
			const char *t = smtp_reply_split_enh(first, r->lines[i], e2);
			size_t used = strlen(r->text);
			if (used + 3 >= sizeof r->text)
				break;
			snprintf(r->text + used, sizeof r->text - used, "; %s", t);
		}
	}
	return SMTP_REPLY_OK;
}

void
smtp_reply_default_enh(const struct smtp_reply *r, char enh[16])
{
	if (r->enh[0])
		sp_strlcpy(enh, r->enh, 16);
	else
		snprintf(enh, 16, "%d.0.0", r->code / 100);
}

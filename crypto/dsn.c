/* dsn.c - RFC 3464 delivery status notifications, built with GMime. */
#include "dsn.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <gmime/gmime.h>

#include "mime_message.h"

static GMimePart *
text_part(const char *type, const char *subtype, const char *text)
{
	GMimePart *p = g_mime_part_new_with_type(type, subtype);
	GMimeStream *s = g_mime_stream_mem_new_with_buffer(text, strlen(text));
	GMimeDataWrapper *w = g_mime_data_wrapper_new_with_stream(s, GMIME_CONTENT_ENCODING_DEFAULT);

	g_mime_part_set_content(p, w);
	g_mime_part_set_content_encoding(p, GMIME_CONTENT_ENCODING_7BIT);
	g_object_unref(w);
	g_object_unref(s);
	return p;
}

int
sp_dsn_build(const char *sender, const char *orig_msgid, int64_t arrival,
             const struct sp_dsn_rcpt *rcpts, size_t n, struct sp_buf *out, char *err, size_t errsz)
{
	GMimeMessage *msg = g_mime_message_new(TRUE);
	GMimeMultipart *report = g_mime_multipart_new_with_subtype("report");
	GMimePart *human = NULL, *status = NULL;
	GString *h = g_string_new(NULL), *st = g_string_new(NULL);
	GDateTime *now = g_date_time_new_now_local();
	GDateTime *arr = g_date_time_new_from_unix_local(arrival);
	char *arrs = g_mime_utils_header_format_date(arr);
	size_t i;
	bool delayed = false;
	int rv = -1;

	for (i = 0; i < n; i++)
		delayed |= rcpts[i].delayed;
	g_string_append_printf(h,
		"This is the mail system at sealpost, on behalf of %s.\n\n"
		"Your message %s, sent %s, could not be delivered to %s:\n\n",
		sender, orig_msgid[0] ? orig_msgid : "(no Message-ID)", arrs,
		n == 1 ? "this recipient" : "these recipients");
	for (i = 0; i < n; i++)
		g_string_append_printf(h, "  <%s> (%s copy)\n    %s%s\n", rcpts[i].addr, rcpts[i].form,
		                       rcpts[i].delayed ? "gave up retrying; last error: " : "",
		                       rcpts[i].diagnostic);
	g_string_append(h, "\nThe other recipients of the message, if any, were not affected.  The\n"
	                   "message itself is not included here: sealpost never sends it in clear.\n");
	g_string_append_printf(st, "Reporting-MTA: dns; localhost\nArrival-Date: %s\n", arrs);
	if (orig_msgid[0])
		g_string_append_printf(st, "Original-Envelope-Id: %s\n", orig_msgid);
	for (i = 0; i < n; i++)
		g_string_append_printf(st, "\nFinal-Recipient: rfc822; %s\nAction: failed\nStatus: %s\n"
		                           "Diagnostic-Code: smtp; %s\n",
		                       rcpts[i].addr, rcpts[i].status, rcpts[i].diagnostic);

	g_mime_message_add_mailbox(msg, GMIME_ADDRESS_TYPE_FROM, "Mail Delivery System (sealpost)", sender);
	g_mime_message_add_mailbox(msg, GMIME_ADDRESS_TYPE_TO, NULL, sender);
	g_mime_message_set_subject(msg, delayed ? "Undelivered Mail Returned to Sender (gave up)"
	                                        : "Undelivered Mail Returned to Sender", NULL);
	g_mime_message_set_date(msg, now);
	{
		char *mid = g_mime_utils_generate_message_id("sealpost.invalid");
		g_mime_message_set_message_id(msg, mid);
		g_free(mid);
	}
	g_mime_object_set_header(GMIME_OBJECT(msg), "Auto-Submitted", "auto-replied", NULL);
	g_mime_content_type_set_parameter(g_mime_object_get_content_type(GMIME_OBJECT(report)),
	                                  "report-type", "delivery-status");
	human = text_part("text", "plain", h->str);
	g_mime_object_set_content_type_parameter(GMIME_OBJECT(human), "charset", "utf-8");
	status = text_part("message", "delivery-status", st->str);
	g_mime_multipart_add(report, GMIME_OBJECT(human));
	g_mime_multipart_add(report, GMIME_OBJECT(status));
	g_mime_message_set_mime_part(msg, GMIME_OBJECT(report));
	if (sp_mime_append_object(GMIME_OBJECT(msg), out) < 0) {
		sp_seterr(err, errsz, "out of memory building a DSN");
		goto out;
	}
	rv = 0;
out:
	g_object_unref(human);
	g_object_unref(status);
	g_object_unref(report);
	g_object_unref(msg);
	g_string_free(h, TRUE);
	g_string_free(st, TRUE);
	g_date_time_unref(now);
	g_date_time_unref(arr);
	g_free(arrs);
	return rv;
}

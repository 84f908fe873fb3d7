/* fuzz_view_doc.c - the view document (crypto/view_doc.h) and the render
 * behind it (crypto/view_render.h).
 *
 * The input is used twice:
 *   - as a view document: sp_view_doc_read() refuses it with a reason and an
 *     empty view, or accepts it; then writing what was read and reading that
 *     gives the same view, and writing it again the same bytes;
 *   - as a message: whatever sp_view_render() makes of it fits the format
 *     (sp_view_doc_write() within sp_view_doc_max_size() of the input never
 *     fails), and reads back as the same view.
 */
#include "fuzz_common.h"

#include <glib.h>

#include "view_doc.h"

static void
check_same(const struct sp_view *a, const struct sp_view *b)
{
	const char *const sa[] = { a->from, a->to, a->cc, a->date, a->subject, a->message_id, a->text,
	                           a->html, a->sender_key };
	const char *const sb[] = { b->from, b->to, b->cc, b->date, b->subject, b->message_id, b->text,
	                           b->html, b->sender_key };
	size_t i;

	for (i = 0; i < sizeof sa / sizeof sa[0]; i++)
		FUZZ_CHECK(g_strcmp0(sa[i], sb[i]) == 0, "string %zu differs after a round trip", i);
	FUZZ_CHECK(a->html_refused == b->html_refused && a->truncated == b->truncated, "flags differ");
	FUZZ_CHECK(a->n_att == b->n_att, "%zu attachments, then %zu", a->n_att, b->n_att);
	for (i = 0; i < a->n_att; i++) {
		FUZZ_CHECK(strcmp(a->att[i].filename, b->att[i].filename) == 0, "name %zu differs", i);
		FUZZ_CHECK(strcmp(a->att[i].content_type, b->att[i].content_type) == 0, "type %zu differs", i);
		FUZZ_CHECK(a->att[i].len == b->att[i].len &&
		           (a->att[i].len == 0 || memcmp(a->att[i].data, b->att[i].data, a->att[i].len) == 0),
		           "bytes of %zu differ", i);
	}
}

/* v written, read back, compared; returns the document (caller frees). */
static void
round_trip(const struct sp_view *v, size_t limit, struct sp_buf *doc)
{
	struct sp_view back;
	char err[SP_ERRLEN];

	sp_buf_init(doc, limit);
	FUZZ_CHECK(sp_view_doc_write(v, doc, err, sizeof err) == 0, "write failed: %s", err);
	FUZZ_CHECK(sp_view_doc_read(doc->data, doc->len, limit, &back, err, sizeof err) == 0,
	           "its own document refused: %s", err);
	check_same(v, &back);
	sp_view_free(&back);
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
	struct sp_view v;
	struct sp_buf doc, again;
	char err[SP_ERRLEN];

	err[0] = '\0';
	if (sp_view_doc_read(data, size, 0, &v, err, sizeof err) < 0) {
		FUZZ_CHECK(err[0] != '\0', "refused without a reason");
		FUZZ_CHECK(v.subject == NULL && v.att == NULL && v.n_att == 0, "refused, but not empty");
	} else {
		round_trip(&v, 0, &doc);
		sp_buf_init(&again, 0);
		FUZZ_CHECK(sp_view_doc_write(&v, &again, err, sizeof err) == 0, "second write failed");
		FUZZ_CHECK(again.len == doc.len && memcmp(again.data, doc.data, doc.len) == 0,
		           "two writes of one view differ");
		sp_buf_wipe(&again);
		sp_buf_wipe(&doc);
		sp_view_free(&v);
	}

	if (sp_view_render(data, size, &v, err, sizeof err) == 0) {
		round_trip(&v, sp_view_doc_max_size(size), &doc);
		sp_buf_wipe(&doc);
		sp_view_free(&v);
	}
	return 0;
}

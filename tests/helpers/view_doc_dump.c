/* view_doc_dump.c - test-only: the view document from the command line
 * (tests/integration/test_view_doc.py checks it with an independent reader).
 *
 *   view_doc_dump render EML OUT    render EML (sp_view_render) and write its
 *                                   view document to OUT
 *   view_doc_dump rewrite DOC OUT   read DOC strictly (sp_view_doc_read) and
 *                                   write what was read to OUT
 *
 * Exit 0, or 1 with the error on stderr (2 for usage).
 */
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "view_doc.h"

int
main(int argc, char **argv)
{
	struct sp_view v = { 0 };
	struct sp_buf out;
	char err[SP_ERRLEN], *in = NULL;
	gsize len = 0;
	GError *gerr = NULL;
	int rv = 1;

	if (argc != 4 || (strcmp(argv[1], "render") != 0 && strcmp(argv[1], "rewrite") != 0)) {
		fprintf(stderr, "usage: view_doc_dump render|rewrite IN OUT\n");
		return 2;
	}
	sp_buf_init(&out, 0);
	if (!g_file_get_contents(argv[2], &in, &len, &gerr)) {
		fprintf(stderr, "view_doc_dump: %s\n", gerr->message);
		goto out;
	}
	if (strcmp(argv[1], "render") == 0) {
		if (sp_view_render(in, len, &v, err, sizeof err) < 0)
			goto fail;
		out.limit = sp_view_doc_max_size(len);
	} else if (sp_view_doc_read(in, len, 0, &v, err, sizeof err) < 0) {
		goto fail;
	}
	if (sp_view_doc_write(&v, &out, err, sizeof err) < 0)
		goto fail;
	if (!g_file_set_contents(argv[3], out.data, (gssize)out.len, &gerr)) {
		fprintf(stderr, "view_doc_dump: %s\n", gerr->message);
		goto out;
	}
	rv = 0;
	goto out;
fail:
	fprintf(stderr, "view_doc_dump: %s\n", err);
out:
	if (gerr != NULL)
		g_error_free(gerr);
	g_free(in);
	sp_view_free(&v);
	sp_buf_wipe(&out);
	return rv;
}

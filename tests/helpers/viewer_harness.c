/* viewer_harness.c - test-only driver for the link viewer (tests/integration/test_viewer_*.py).
 *
 *   viewer_harness mklink STORE EML TTL MAX_VIEWS MAX_FAILED BASE_URL PW...
 *   viewer_harness upload URL TOKENFILE EML TTL MAX_VIEWS MAX_FAILED BASE_URL PW...
 *       seal EML as one link message with one link per password, store it
 *       (or upload it to a viewer's API); print "LINK <id> <url> <password>"
 *   viewer_harness serve [--outbox FROM|SUBJECT|ADDR|FORM|LINK_ID|URL|PASSWORD]... -- ARGS
 *       fill the outbox, then run `sealpost linkserver ARGS`
 *   viewer_harness revoke ARGS
 *       `sealpost revoke ARGS`
 *   viewer_harness outbox ARGS
 *       `sealpost outbox ARGS`: the outbox's address, with its token
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cli.h"
#include "link_envelope.h"
#include "link_store.h"
#include "link_upload.h"
#include "log.h"
#include "mime_message.h"
#include "web_outbox.h"

static int
make(int argc, char **argv, bool upload)
{
	const char *store_path = NULL, *url = NULL, *token_file = NULL;
	struct link_store_new_link *links;
	struct link_store_new_msg m = { 0 };
	struct link_store *store = NULL;
	struct sp_buf ct, *wrapped;
	unsigned char key[SP_LINK_KEYBYTES];
	char err[SP_ERRLEN], *eml = NULL, **lines;
	size_t eml_len, n, i;
	uint64_t ttl, mv, mf;
	int a = 0, rv = 1;

	if (upload) {
		url = argv[a++];
		token_file = argv[a++];
	} else {
		store_path = argv[a++];
	}
	if (argc - a < 6)
		return 2;
	if (sp_read_file(argv[a], 64 * 1024 * 1024, &eml, &eml_len, err, sizeof err) < 0 ||
	    sp_parse_uint(argv[a + 1], 1, 1u << 30, &ttl, err, sizeof err) < 0 ||
	    sp_parse_uint(argv[a + 2], 0, 1000000, &mv, err, sizeof err) < 0 ||
	    sp_parse_uint(argv[a + 3], 1, 1000, &mf, err, sizeof err) < 0) {
		fprintf(stderr, "harness: %s\n", err);
		return 2;
	}
	const char *base = argv[a + 4];
	a += 5;
	n = (size_t)(argc - a);
	links = sp_xcalloc(n, sizeof *links);
	wrapped = sp_xcalloc(n, sizeof *wrapped);
	lines = sp_xcalloc(n, sizeof *lines);
	sp_buf_init(&ct, 0);
	sp_link_key_new(key);
	if (sp_link_seal_message(key, eml, eml_len, &ct, err, sizeof err) < 0)
		goto out;
	for (i = 0; i < n; i++) {
		struct sp_link_token t;
		char tok[SP_LINK_TOKEN_STRLEN + 1];

		sp_link_token_new(&t);
		sp_link_token_encode(&t, tok);
		sp_link_id_hex(t.id, links[i].id);
		sp_buf_init(&wrapped[i], 0);
		if (sp_link_wrap_key(key, argv[a + (int)i], &t, &wrapped[i], err, sizeof err) < 0)
			goto out;
		links[i].wrapped = wrapped[i].data;
		links[i].wrapped_len = wrapped[i].len;
		lines[i] = sp_xasprintf("LINK %s %s%s %s", links[i].id, base, tok, argv[a + (int)i]);
	}
	m.ciphertext = ct.data;
	m.ciphertext_len = ct.len;
	m.created = sp_time();
	m.expires = m.created + (int64_t)ttl;
	m.max_views = mv;
	m.max_failed = mf;
	m.links = links;
	m.n_links = n;
	if (upload) {
		if (link_upload(url, token_file, &m, err, sizeof err) < 0)
			goto out;
	} else {
		if (link_store_open(store_path, &store, err, sizeof err) != LINK_STORE_OK ||
		    link_store_put(store, &m, NULL, err, sizeof err) != LINK_STORE_OK)
			goto out;
	}
	for (i = 0; i < n; i++)
		printf("%s\n", lines[i]);
	rv = 0;
out:
	if (rv != 0)
		fprintf(stderr, "harness: %s\n", err);
	link_store_close(store);
	for (i = 0; i < n; i++) {
		sp_buf_free(&wrapped[i]);
		free(lines[i]);
	}
	free(lines);
	free(wrapped);
	free(links);
	sp_buf_free(&ct);
	sp_free_secret(eml);
	return rv;
}

/* FROM|SUBJECT|ADDR|FORM|LINK_ID|URL|PASSWORD (empty fields are NULL) */
static void
outbox_add(char *spec)
{
	char *f[7] = { 0 }, *save = NULL, *p;
	int i = 0;
	struct web_outbox_rcpt r;

	for (p = spec; i < 7; i++) {
		f[i] = p;
		p = strchr(p, '|');
		if (p == NULL)
			break;
		*p++ = '\0';
	}
	(void)save;
	for (i = 0; i < 7; i++)
		if (f[i] && *f[i] == '\0')
			f[i] = NULL;
	r = (struct web_outbox_rcpt){ .address = f[2], .form = f[3], .link_id = f[4], .url = f[5],
	                              .password = f[6] };
	web_outbox_add(f[0], f[1], sp_time(), sp_time() + 3600, &r, 1);
}

int
main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	sp_log_init(SP_LOG_DEBUG);
	if (sodium_init() < 0)
		return 1;
	sp_mime_global_init();
	if (argc >= 2 && strcmp(argv[1], "mklink") == 0 && argc >= 9)
		return make(argc - 2, argv + 2, false);
	if (argc >= 2 && strcmp(argv[1], "upload") == 0 && argc >= 10)
		return make(argc - 2, argv + 2, true);
	if (argc >= 2 && strcmp(argv[1], "serve") == 0) {
		int i = 2;
		while (i + 1 < argc && strcmp(argv[i], "--outbox") == 0) {
			outbox_add(argv[i + 1]);
			i += 2;
		}
		if (i < argc && strcmp(argv[i], "--") == 0)
			i++;
		argv[i - 1] = "linkserver";
		return cmd_linkserver(argc - i + 1, argv + i - 1);
	}
	if (argc >= 2 && strcmp(argv[1], "revoke") == 0)
		return cmd_revoke(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "outbox") == 0)
		return cmd_outbox(argc - 1, argv + 1);
	fprintf(stderr, "usage: see the comment at the top of viewer_harness.c\n");
	return 2;
}

/* cmd_revoke.c - `sealpost revoke LINK-ID`: delete a link message at once. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "link_envelope.h"
#include "link_store.h"
#include "link_v2.h"
#include "link_upload.h"
#include "log.h"

static const char usage[] =
	"usage: sealpost revoke [-c FILE] [--link-only] LINK-ID|LINK\n\n"
	"Deletes the message behind a link at once, with every link to it (all its\n"
	"recipients); with --link-only, only that one link.  LINK-ID is the 32-digit\n"
	"hex id shown in the outbox and the delivery report; a whole link URL works\n"
	"too.  With [link] upload_url set, the message is deleted on the remote viewer.\n"
	"Exit status 0 deleted, 1 no such link (or an error).\n";

/* "0123...ef", "https://host/s/<token>" or "<token>" (v1), or
 * "https://host/s/<id_b64>#<secret_b64>" or "<id_b64>" (v2) -> the link id. */
static bool
parse_target(const char *arg, char id[SP_LINK_ID_HEXLEN + 1])
{
	struct sp_link_token t;
	const char *slash;

	if (link_store_id_valid(arg)) {
		sp_strlcpy(id, arg, SP_LINK_ID_HEXLEN + 1);
		return true;
	}
	slash = strrchr(arg, '/');
	if (slash != NULL)
		arg = slash + 1;
	{
		/* v2: the id before the fragment (the secret is not needed). */
		size_t n = strcspn(arg, "#");
		unsigned char raw[SP_LINK_IDBYTES];
		if (n == SP_LINK2_B64_STRLEN && sp_link2_b64_decode(arg, n, raw) == 0) {
			sp_link_id_hex(raw, id);
			return true;
		}
	}
	if (strlen(arg) != SP_LINK_TOKEN_STRLEN || sp_link_token_decode(arg, strlen(arg), &t) < 0)
		return false;
	sp_link_id_hex(t.id, id);
	memset(&t, 0, sizeof t);
	return true;
}

int
cmd_revoke(int argc, char **argv)
{
	bool link_only = false;
	const struct cli_option opts[] = {
		{ .name = "link-only", .letter = 'l', .flag = &link_only },
		{ 0 },
	};
	const struct cli_command cmd = { .usage = usage, .config = true, .options = opts,
	                                 .min_operands = 1, .max_operands = 1 };
	struct sp_config cfg;
	struct link_store *store = NULL;
	const char *cfgpath = NULL;
	char err[SP_ERRLEN], id[SP_LINK_ID_HEXLEN + 1];
	enum link_store_rc rc;
	int first, rv;

	if ((rv = cli_parse_args(&cmd, argc, argv, &cfgpath, &first)) != CLI_CONTINUE)
		return rv;
	if (!parse_target(argv[first], id)) {
		fprintf(stderr, "sealpost: revoke: '%s' is neither a link id (32 hex digits) nor a "
		        "link\n", argv[first]);
		return EXIT_USAGE;
	}
	if ((rv = cli_load_config(cfgpath, false, &cfg)) != 0)
		return rv;
	sp_log_init(SP_LOG_WARN);
	rv = EXIT_RUNTIME;
	if (cfg.link.upload_url && cfg.link.upload_url[0]) {
		int r;
		if (link_only) {
			fprintf(stderr, "sealpost: revoke: --link-only is not available for a remote "
			        "viewer; run it on the viewer's host\n");
			rv = EXIT_USAGE;
			goto out;
		}
		r = link_upload_revoke(cfg.link.upload_url, cfg.link.upload_token_file, id, err,
		                       sizeof err);
		if (r == 0) {
			printf("revoked %s on %s\n", id, cfg.link.upload_url);
			rv = EXIT_OK;
		} else if (r == 1) {
			fprintf(stderr, "sealpost: revoke: no link %s on the viewer (expired, used up "
			        "or already revoked)\n", id);
		} else {
			fprintf(stderr, "sealpost: revoke: %s\n", err);
		}
		goto out;
	}
	if (link_store_open(cfg.link.store, &store, err, sizeof err) != LINK_STORE_OK) {
		fprintf(stderr, "sealpost: %s\n", err);
		goto out;
	}
	rc = link_store_revoke(store, id, !link_only, err, sizeof err);
	if (rc == LINK_STORE_OK) {
		printf("revoked %s%s\n", id, link_only ? " (this link only)" : " and its message");
		rv = EXIT_OK;
	} else if (rc == LINK_STORE_GONE) {
		char *label = link_store_label(cfg.link.store);
		fprintf(stderr, "sealpost: revoke: no link %s in %s (expired, used up or already "
		        "revoked)\n", id, label);
		free(label);
	} else {
		fprintf(stderr, "sealpost: revoke: %s\n", err);
	}
out:
	link_store_close(store);
	sp_config_free(&cfg);
	return rv;
}

/* fuzz_config.c - the config loader (common/config.h) on arbitrary text.
 *
 * sp_config_load_data() runs on the input twice (with and without a required
 * [upstream] host).  A load that succeeds must give a config the rest of
 * sealpost can rely on: every string set, the bounds of the key table held,
 * at least one listener; a load that fails must say why, with the file name.
 */
#include "fuzz_common.h"

#include "config.h"
#include "net.h"
#include "util.h"

static void
check_loaded(const struct sp_config *c, bool need_upstream)
{
	unsigned i;

	FUZZ_CHECK(c->path && c->state_dir, "path or state_dir unset");
	FUZZ_CHECK(c->proxy.n_listen >= 1 && c->proxy.n_listen <= SP_MAX_LISTEN, "%u listeners",
	           c->proxy.n_listen);
	for (i = 0; i < c->proxy.n_listen; i++) {
		FUZZ_CHECK(c->proxy.listen[i].host[0] != '\0', "empty listen host");
		FUZZ_CHECK(c->proxy.listen[i].port[0] != '\0', "empty listen port");
		if (c->proxy.auth == SP_AUTH_NONE)
			FUZZ_CHECK(sp_net_host_is_loopback(c->proxy.listen[i].host),
			           "auth = none on the non-loopback listener %s", c->proxy.listen[i].host);
	}
	FUZZ_CHECK(c->proxy.tls_cert && c->proxy.tls_key && c->proxy.tls_cert[0] && c->proxy.tls_key[0],
	           "no proxy certificate paths");
	FUZZ_CHECK(c->proxy.max_message_size >= 1024 && c->proxy.max_message_size <= 1024ULL * 1024 * 1024,
	           "max_message_size %llu", (unsigned long long)c->proxy.max_message_size);
	FUZZ_CHECK(c->proxy.max_recipients >= 1 && c->proxy.max_recipients <= 1000, "max_recipients");
	FUZZ_CHECK(c->proxy.timeout >= 1 && c->proxy.timeout <= 3600, "timeout %lld", (long long)c->proxy.timeout);
	FUZZ_CHECK(c->proxy.data_timeout >= 1 && c->proxy.data_timeout <= 3600, "data_timeout");
	FUZZ_CHECK(c->upstream.host && c->upstream.helo && c->upstream.username && c->upstream.ca_file &&
	           c->upstream.password_file && c->upstream.password_command, "upstream strings unset");
	FUZZ_CHECK(!need_upstream || c->upstream.host[0], "no upstream host although required");
	FUZZ_CHECK(c->upstream.port[0] != '\0', "no upstream port");
	FUZZ_CHECK(c->upstream.helo[0] != '\0', "empty helo");
	FUZZ_CHECK(c->upstream.tls != SP_UPSTREAM_NONE || c->upstream.host[0] == '\0' ||
	           sp_net_host_is_loopback(c->upstream.host), "tls = none towards %s", c->upstream.host);
	FUZZ_CHECK(!(c->upstream.password_file[0] && c->upstream.password_command[0]),
	           "both password_file and password_command");
	FUZZ_CHECK(c->pgp.gnupg_home && c->pgp.gpg_program && c->sodium.recipients && c->link.store &&
	           c->link.base_url && c->link.upload_url && c->link.upload_token_file &&
	           c->linkserver.tls_cert && c->linkserver.tls_key && c->queue.dir && c->proxy.user &&
	           c->proxy.users_file, "a string key is unset");
	FUZZ_CHECK(c->link.expiry >= 60 && c->link.expiry <= 366 * 86400, "link expiry");
	FUZZ_CHECK(c->link.max_failed_attempts >= 1, "max_failed_attempts 0");
	FUZZ_CHECK(c->queue.lifetime >= 60, "queue lifetime");
	FUZZ_CHECK((unsigned)c->log.level <= SP_LOG_DEBUG, "log level");
	FUZZ_CHECK((unsigned)c->policy.no_key <= SP_NOKEY_PLAIN, "no_key");
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* Expansions of $STATE/ and ~/ must not depend on who runs the fuzzer. */
	setenv("SEALPOST_STATE_DIR", "/nonexistent/state", 1);
	setenv("HOME", "/nonexistent/home", 1);
	setenv("GNUPGHOME", "/nonexistent/gnupg", 1);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const bool need[] = { true, false };
	struct sp_config cfg;
	char err[SP_ERRLEN];
	size_t i;

	for (i = 0; i < SP_ARRAY_LEN(need); i++) {
		err[0] = '\0';
		if (sp_config_load_data(&cfg, "fuzz.conf", (const char *)data, size, need[i], err, sizeof err) == 0) {
			check_loaded(&cfg, need[i]);
			sp_config_free(&cfg);
		} else {
			FUZZ_CHECK(strncmp(err, "fuzz.conf", 9) == 0, "error does not name the file: '%s'", err);
		}
	}
	return 0;
}

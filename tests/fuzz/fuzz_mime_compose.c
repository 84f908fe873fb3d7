/* fuzz_mime_compose.c - the MIME rewrite path: a client's message in, the
 * copies that leave out (crypto/compose.h, crypto/mime_message.h).
 *
 * The input is the message as the client sent it after DATA (unstuffed).
 *   1. sp_compose() for an envelope of three recipients whose form is plain
 *      (the form decided at RCPT time; OpenPGP needs gpg processes, too slow
 *      to fuzz).  Every recipient must be in exactly one copy, a Bcc recipient
 *      alone in its own; no copy may carry a Bcc or X-Sealpost-* field; the
 *      body of a copy is the client's body byte for byte.
 *   2. sp_mime_parse() + sp_mime_write_protected_entity() +
 *      sp_mime_write_outer_headers(), the MIME half of the OpenPGP form, with
 *      the Subject kept and replaced by "...": no private, Content-* or
 *      other field outside the allow-list, at most one (replaced) Subject,
 *      the body unchanged inside (a Legacy Display Element aside).
 */
#include "fuzz_common.h"

#include <glib.h>
#include <sodium.h>

#include "compose.h"
#include "config.h"
#include "log.h"
#include "message.h"
#include "mime_message.h"
#include "policy.h"

static const char *const rcpts[] = { "alice@example.org", "bob@example.net", "carol@example.com" };

static const char config_text[] =
	"[upstream]\nhost = 127.0.0.1\nport = 1\ntls = none\n"
	"[pgp]\nencrypt_to_self = no\n"
	"[policy]\nno_key = plain\n";

static struct sp_config cfg;
static struct sp_policy *policy;

/* Top-level header names of a message, as GMime sees them on reparsing. */
static void
check_no_private_fields(const char *data, size_t len, const char *what)
{
	struct sp_mime m;
	char err[SP_ERRLEN];
	char *copy = malloc(len + 1);
	size_t i;

	FUZZ_SETUP(copy != NULL, "malloc");
	memcpy(copy, data, len);
	copy[len] = '\0';
	if (sp_mime_parse(copy, len, &m, err, sizeof err) == 0) {
		for (i = 0; i < m.n_hdrs; i++)
			FUZZ_CHECK(!sp_mime_is_private_header(m.hdrs[i].name), "%s carries a %s field", what,
			           m.hdrs[i].name);
		sp_mime_free(&m);
	}
	free(copy);
}

static void
check_compose(const uint8_t *data, size_t size)
{
	struct sp_envelope env;
	struct sp_copies copies;
	char err[SP_ERRLEN];
	char *msg = malloc(size + 1);
	unsigned seen[SP_ARRAY_LEN(rcpts)] = { 0 };
	size_t i, j;

	FUZZ_SETUP(msg != NULL, "malloc");
	if (size)
		memcpy(msg, data, size);
	msg[size] = '\0';
	sp_envelope_init(&env);
	sp_strlcpy(env.id, "fuzz", sizeof env.id);
	env.mail_from = sp_xstrdup("sender@example.org");
	for (i = 0; i < SP_ARRAY_LEN(rcpts); i++)
		sp_envelope_add_rcpt(&env, rcpts[i], SP_FORM_PLAIN, "");
	err[0] = '\0';
	switch (sp_compose(policy, &env, msg, size, &copies, err, sizeof err)) {
	case SP_COMPOSE_OK:
		FUZZ_CHECK(copies.n >= 1, "no copies");
		for (i = 0; i < copies.n; i++) {
			const struct sp_copy *cp = &copies.v[i];
			FUZZ_CHECK(cp->form == SP_FORM_PLAIN, "copy %zu has form %d", i, cp->form);
			FUZZ_CHECK(cp->n_rcpts >= 1, "copy %zu has no recipient", i);
			for (j = 0; j < cp->n_rcpts; j++) {
				FUZZ_CHECK(cp->rcpts[j] < SP_ARRAY_LEN(rcpts), "bad recipient index");
				seen[cp->rcpts[j]]++;
				if (env.rcpts[cp->rcpts[j]].bcc)
					FUZZ_CHECK(cp->n_rcpts == 1, "a Bcc recipient shares copy %zu", i);
			}
			FUZZ_CHECK(cp->data.len <= size, "copy %zu is larger than the message", i);
			check_no_private_fields(cp->data.data ? cp->data.data : "", cp->data.len, "a copy");
		}
		for (i = 0; i < SP_ARRAY_LEN(rcpts); i++)
			FUZZ_CHECK(seen[i] == 1, "recipient %zu is in %u copies", i, seen[i]);
		sp_copies_free(&copies);
		break;
	case SP_COMPOSE_TEMPFAIL:
	case SP_COMPOSE_PERMFAIL:
	default:
		FUZZ_CHECK(err[0] != '\0', "compose failed without a reason");
		FUZZ_CHECK(copies.n == 0 && copies.v == NULL, "copies left after a failure");
		break;
	}
	/* sp_compose gives the buffer back untouched. */
	FUZZ_CHECK(size == 0 || memcmp(msg, data, size) == 0, "the message buffer was modified");
	sp_envelope_free(&env);
	free(msg);
}

static bool
has_field(const char *block, size_t len, const char *name)
{
	size_t nl = strlen(name), off = 0;

	while (off < len) {
		const char *eol = memchr(block + off, '\n', len - off);
		size_t n = eol ? (size_t)(eol - (block + off)) + 1 : len - off;
		if (n > nl && block[off + nl] == ':' && g_ascii_strncasecmp(block + off, name, nl) == 0)
			return true;
		off += n;
	}
	return false;
}

static void
check_protected(const uint8_t *data, size_t size)
{
	struct sp_mime m;
	char err[SP_ERRLEN];
	char *msg = malloc(size + 1);
	static const char *const subjects[] = { NULL, "..." };
	char name[256], addr[256];
	size_t k;

	FUZZ_SETUP(msg != NULL, "malloc");
	if (size)
		memcpy(msg, data, size);
	msg[size] = '\0';
	err[0] = '\0';
	if (sp_mime_parse(msg, size, &m, err, sizeof err) < 0) {
		FUZZ_CHECK(err[0] != '\0', "parse failed without a reason");
		free(msg);
		return;
	}
	FUZZ_CHECK(m.headers_end <= size && m.body_start <= size && m.headers_end <= m.body_start,
	           "spans outside the message (%zu %zu %zu)", m.headers_end, m.body_start, size);
	for (size_t i = 0; i < m.n_hdrs; i++)
		FUZZ_CHECK(m.hdrs[i].start <= m.hdrs[i].end && m.hdrs[i].end <= m.headers_end &&
		           (i == 0 || m.hdrs[i - 1].end <= m.hdrs[i].start), "bad span for header %zu", i);
	(void)sp_mime_is_encrypted(&m, err, sizeof err);
	(void)sp_mime_names_rcpt(&m, rcpts[0]);
	free(sp_mime_header_value(&m, "Subject"));
	free(sp_mime_header_value(&m, "Content-Type"));
	sp_mime_sender(&m, name, sizeof name, addr, sizeof addr);
	for (k = 0; k < SP_ARRAY_LEN(subjects); k++) {
		const char *subject = subjects[k];
		struct sp_buf outer, inner;
		size_t body = size - m.body_start, n_subject = 0, off = 0;

		sp_buf_init(&outer, 0);
		sp_buf_init(&inner, 0);
		FUZZ_CHECK(sp_mime_write_outer_headers(&m, subject, &outer) == 0, "outer headers failed");
		for (size_t i = 0; i < m.n_hdrs; i++) {
			const char *hname = m.hdrs[i].name;
			/* Only the allow-list leaves in clear (Autocrypt may also come
			 * from extra_headers, which this target does not set). */
			if (sp_mime_is_private_header(hname) || sp_mime_is_structural_header(hname) ||
			    !sp_mime_is_outer_header(hname))
				FUZZ_CHECK(!has_field(outer.data ? outer.data : "", outer.len, hname),
				           "the outer header block carries %s", hname);
		}
		while (subject && outer.data && off < outer.len) {
			const char *eol = memchr(outer.data + off, '\n', outer.len - off);
			size_t n = eol ? (size_t)(eol - (outer.data + off)) + 1 : outer.len - off;
			if (n > 8 && g_ascii_strncasecmp(outer.data + off, "Subject:", 8) == 0)
				n_subject++;
			off += n;
		}
		FUZZ_CHECK(n_subject <= 1, "%zu Subject fields outside with a replaced Subject", n_subject);
		if (sp_mime_write_protected_entity(&m, subject, &inner, err, sizeof err) == 0) {
			/* The header, then the body byte for byte with insertions (the
			 * legacy display elements and their parameter) at increasing
			 * offsets inside it, and only when the Subject is hidden. */
			struct sp_mime_protected pe;
			size_t at = 0, pos, j;
			FUZZ_CHECK(sp_mime_protected_build(&m, subject, &pe, err, sizeof err) == 0, "pieces failed");
			FUZZ_CHECK(subject != NULL || pe.n_ins == 0, "a legacy display without a hidden Subject");
			FUZZ_CHECK(inner.len >= pe.header.len && memcmp(inner.data, pe.header.data, pe.header.len) == 0,
			           "the protected entity does not start with its header");
			pos = pe.header.len;
			for (j = 0; j <= pe.n_ins; j++) {
				size_t next = j < pe.n_ins ? pe.ins[j].at : body;
				FUZZ_CHECK(next >= at && next <= body, "insertion %zu at %zu (after %zu, body %zu)", j, next,
				           at, body);
				FUZZ_CHECK(pos + (next - at) <= inner.len &&
				           memcmp(inner.data + pos, msg + m.body_start + at, next - at) == 0,
				           "body bytes %zu..%zu changed in the protected entity", at, next);
				pos += next - at;
				if (j < pe.n_ins) {
					FUZZ_CHECK(pos + pe.ins[j].bytes.len <= inner.len &&
					           memcmp(inner.data + pos, pe.ins[j].bytes.data, pe.ins[j].bytes.len) == 0,
					           "insertion %zu is not where it belongs", j);
					pos += pe.ins[j].bytes.len;
				}
				at = next;
			}
			FUZZ_CHECK(pos == inner.len, "%zu bytes after the body in the protected entity", inner.len - pos);
			sp_mime_protected_wipe(&pe);
		} else {
			FUZZ_CHECK(err[0] != '\0', "protected entity failed without a reason");
		}
		sp_buf_wipe(&outer);
		sp_buf_wipe(&inner);
	}
	sp_mime_free(&m);
	free(msg);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[SP_ERRLEN];

	(void)argc;
	(void)argv;
	setenv("SEALPOST_STATE_DIR", fuzz_tmpdir(), 1);
	setenv("GNUPGHOME", fuzz_tmpdir(), 1);
	sp_log_init(getenv("FUZZ_LOG") ? SP_LOG_DEBUG : SP_LOG_ERROR);
	FUZZ_SETUP(sodium_init() >= 0, "sodium_init");
	sp_mime_global_init();
	if (sp_config_load_data(&cfg, "fuzz.conf", config_text, strlen(config_text), true, err, sizeof err) < 0) {
		fprintf(stderr, "fuzz setup: %s\n", err);
		exit(2);
	}
	policy = sp_policy_new(&cfg, err, sizeof err);
	FUZZ_SETUP(policy != NULL, "sp_policy_new");
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_compose(data, size);
	check_protected(data, size);
	return 0;
}

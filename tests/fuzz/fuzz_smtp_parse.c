/* fuzz_smtp_parse.c - the pure parsers of proxy/smtp_parse.h and smtp_auth.h.
 *
 * One input is used three ways:
 *   1. as what follows "MAIL FROM:" / "RCPT TO:": smtp_parse_path() with every
 *      combination of allow_null and allow_utf8, then smtp_parse_params() on the
 *      rest; the results must respect the RFC 5321 limits the header promises;
 *   2. as an AUTH response: sasl_b64_decode(), then sasl_plain_split() on
 *      the decoded bytes and on the raw input;
 *   3. as a message body for the dot-stuffer, fed in uneven pieces; the output
 *      must be well-formed SMTP DATA (CRLF lines only, exactly one end-of-data
 *      line, at the end) and unstuffing it must give back the input with its
 *      line endings normalised to CRLF.
 */
#include "fuzz_common.h"

#include <stdbool.h>

#include <sodium.h>

#include "smtp_auth.h"
#include "smtp_parse.h"
#include "util.h"

static bool
is_param_key_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

static void
check_path(const char *s, bool allow_null, bool allow_utf8)
{
	struct smtp_path path;
	struct smtp_param params[SMTP_PARAMS_MAX];
	const char *rest = NULL;
	char why[128];
	size_t n = 0, i, len, local;

	why[0] = '\0';
	if (smtp_parse_path(s, allow_null, allow_utf8, &path, &rest, why, sizeof why) < 0) {
		FUZZ_CHECK(why[0] != '\0', "failure without a reason");
		return;
	}
	FUZZ_CHECK(rest != NULL && rest >= s && rest <= s + strlen(s), "rest outside the input");
	FUZZ_CHECK(*rest != ' ', "blanks before the parameters were not skipped");
	len = strlen(path.addr);
	if (path.null) {
		FUZZ_CHECK(allow_null, "null path accepted although not allowed");
		FUZZ_CHECK(len == 0, "null path with an address '%s'", path.addr);
	} else {
		const char *at = strrchr(path.addr, '@');
		FUZZ_CHECK(len > 0 && len <= SMTP_PATH_MAX, "address length %zu", len);
		FUZZ_CHECK(at != NULL && at != path.addr && at[1] != '\0', "address '%s' is not local@domain",
		           path.addr);
		local = (size_t)(strchr(path.addr[0] == '"' ? strchr(path.addr + 1, '"') : path.addr, '@') -
		                 path.addr);
		FUZZ_CHECK(local <= SMTP_LOCAL_MAX, "local part of %zu octets", local);
		FUZZ_CHECK(strlen(smtp_addr_domain(path.addr)) <= SMTP_DOMAIN_MAX, "domain too long");
	}
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)path.addr[i];
		FUZZ_CHECK(c >= 0x20 && c != 0x7f, "control byte 0x%02x in address", c);
		FUZZ_CHECK(c < 0x80 || allow_utf8, "8-bit byte accepted without SMTPUTF8");
		FUZZ_CHECK(c < 0x80 || path.utf8, "utf8 flag not set for an 8-bit address");
	}
	why[0] = '\0';
	if (smtp_parse_params(rest, params, &n, why, sizeof why) < 0) {
		FUZZ_CHECK(why[0] != '\0', "parameter failure without a reason");
		return;
	}
	FUZZ_CHECK(n <= SMTP_PARAMS_MAX, "%zu parameters", n);
	for (i = 0; i < n; i++) {
		const struct smtp_param *p = &params[i];
		size_t k;
		FUZZ_CHECK(p->key[0] != '\0', "empty parameter name");
		for (k = 0; p->key[k]; k++)
			FUZZ_CHECK(is_param_key_char(p->key[k]), "bad byte in parameter name '%s'", p->key);
		FUZZ_CHECK(p->has_value == (p->value[0] != '\0'), "has_value disagrees with the value");
		for (k = 0; p->value[k]; k++)
			FUZZ_CHECK(p->value[k] > 32 && p->value[k] < 127 && p->value[k] != '=',
			           "bad byte in parameter value");
	}
}

/* What the stuffer must reproduce: every CRLF, bare CR and bare LF becomes
 * CRLF, and a last line without an ending gets one. */
static void
normalise(const uint8_t *in, size_t len, struct sp_buf *out)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (in[i] == '\r') {
			if (i + 1 < len && in[i + 1] == '\n')
				i++;
			sp_buf_append(out, "\r\n", 2);
		} else if (in[i] == '\n') {
			sp_buf_append(out, "\r\n", 2);
		} else {
			sp_buf_append(out, &in[i], 1);
		}
	}
	if (out->len && (out->len < 2 || memcmp(out->data + out->len - 2, "\r\n", 2) != 0))
		sp_buf_append(out, "\r\n", 2);
	if (out->data == NULL)
		sp_buf_append(out, "", 0);
}

/* Read stuffed DATA back as a receiving server does (RFC 5321 4.5.2). */
static void
unstuff(const char *p, size_t len, struct sp_buf *out)
{
	size_t off = 0;
	bool ended = false;

	while (off < len) {
		const char *nl = memchr(p + off, '\n', len - off);
		size_t n;
		FUZZ_CHECK(!ended, "data after the end-of-data line at offset %zu", off);
		FUZZ_CHECK(nl != NULL, "stuffed output ends without a line ending");
		n = (size_t)(nl - (p + off)) + 1;
		FUZZ_CHECK(n >= 2 && p[off + n - 2] == '\r', "bare LF in stuffed output at %zu", off);
		FUZZ_CHECK(memchr(p + off, '\r', n - 2) == NULL, "bare CR in stuffed output at %zu", off);
		if (n == 3 && p[off] == '.') {
			ended = true;
		} else if (p[off] == '.') {
			sp_buf_append(out, p + off + 1, n - 1);
		} else {
			sp_buf_append(out, p + off, n);
		}
		off += n;
	}
	FUZZ_CHECK(ended, "no end-of-data line");
	if (out->data == NULL)
		sp_buf_append(out, "", 0);
}

static void
check_dotstuff(const uint8_t *data, size_t size)
{
	static const size_t steps[] = { 1, 7, 2, 64, 3, 1000, 5, 1 };
	struct smtp_dotstuff d;
	struct sp_buf stuffed, want, got;
	size_t off = 0, k = 0;

	sp_buf_init(&stuffed, 0);
	sp_buf_init(&want, 0);
	sp_buf_init(&got, 0);
	smtp_dotstuff_init(&d);
	while (off < size) {
		size_t n = steps[k++ % SP_ARRAY_LEN(steps)];
		if (n > size - off)
			n = size - off;
		FUZZ_CHECK(smtp_dotstuff_feed(&d, (const char *)data + off, n, &stuffed) == 0, "feed failed");
		off += n;
	}
	FUZZ_CHECK(smtp_dotstuff_end(&d, &stuffed) == 0, "end failed");
	normalise(data, size, &want);
	unstuff(stuffed.data, stuffed.len, &got);
	FUZZ_CHECK(got.len == want.len && memcmp(got.data, want.data, got.len) == 0,
	           "unstuffing the stuffed data does not give the input back (%zu vs %zu bytes)",
	           got.len, want.len);
	sp_buf_free(&stuffed);
	sp_buf_free(&want);
	sp_buf_free(&got);
}

static void
check_plain(const char *msg, size_t len)
{
	char *user = NULL, *pass = NULL;

	if (sasl_plain_split(msg, len, &user, &pass) == 0) {
		FUZZ_CHECK(user != NULL && pass != NULL, "PLAIN split without user or password");
		FUZZ_CHECK(strlen(user) < len && strlen(pass) < len, "PLAIN parts longer than the message");
		sodium_free(user);
		sodium_free(pass);
	}
}

static void
check_sasl(const char *s, size_t size)
{
	char *out = NULL;
	size_t len = 0;

	if (sasl_b64_decode(s, &out, &len) == 0) {
		FUZZ_CHECK(out != NULL && out[len] == '\0', "decoded response not terminated");
		FUZZ_CHECK(len <= size, "%zu bytes decoded from %zu", len, size);
		check_plain(out, len);
		sodium_free(out);
	}
	check_plain(s, size);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (sodium_init() < 0)
		abort();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_strndup(data, size);

	check_path(s, true, true);
	check_path(s, true, false);
	check_path(s, false, true);
	check_path(s, false, false);
	check_sasl(s, size);
	free(s);
	check_dotstuff(data, size);
	return 0;
}

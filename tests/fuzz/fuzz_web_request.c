/* fuzz_web_request.c - the link viewer's request handling (linkserver/).
 *
 * The real libmicrohttpd daemon (web_server_start) listens on 127.0.0.1 with a
 * store in a scratch directory holding one link (fixed test token and
 * password, see below), the outbox on and the upload API enabled with a known
 * bearer token.  The input is sent as raw bytes over a fresh TCP connection
 * (request line, path, headers, cookies, form or upload body, several requests
 * if it holds several), the write side is closed, and the response is read
 * until the server hangs up.  An input that starts with "OUTBOX\n" goes to the
 * outbox's own listener instead, with every "@TOKEN@" in it replaced by the
 * outbox token (which no input could guess).
 *
 * The same bytes then go through the pure functions behind those handlers, which
 * the one stored message cannot reach over HTTP:
 *   - sp_view_render() + web_page_message(): a decrypted message as a page;
 *     the page must be valid UTF-8 and carry no <script (no JavaScript
 *     anywhere, web_pages.h);
 *   - sp_html_escape(): no markup character survives, output valid UTF-8;
 *   - link_record_decode() (the upload body), web_client_key() (an
 *     X-Forwarded-For value), web_host_is_loopback() (a Host header),
 *     web_link_path() (a base URL), web_uri_is_plain() (a request target),
 *     web_log_redact() (a log line).
 *
 * Hooks (-Wl,--wrap): crypto_pwhash checks the Argon2id cost a stored blob
 * asks for and runs the real function at the smallest cost (the hook is
 * fuzz_hook_pwhash.c); web_tarpit_enter runs the real tarpit bookkeeping but
 * never makes a request wait or refuses it, so an input is not answered
 * differently because of the ones before it.  The server is restarted with a
 * fresh store every FUZZ_WEB_RESTART inputs (links can be revoked, uploaded
 * or destroyed by wrong passwords).
 */
#include "fuzz_common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <glib.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/socket.h>

#include <sodium.h>

#include "config.h"
#include "link_envelope.h"
#include "link_v2.h"
#include "link_record.h"
#include "link_store.h"
#include "log.h"
#include "mime_message.h"
#include "web_client.h"
#include "web_html.h"
#include "web_outbox.h"
#include "web_pages.h"
#include "view_render.h"
#include "web_server.h"

#define FUZZ_WEB_RESTART 2000
/* Give up on a response after this long (the daemon's own timeout is 30 s). */
#define FUZZ_WEB_MAX_MS 8000

/* The fixed test secrets: the seeds use them (link URL, password, API token). */
static const char test_token_str[] = "EBESExQVFhcYGRobHB0eHyAhIiMkJSYnKCkqKywtLi8";
static const char test_password[] = "bakit-monel-sutar-figon";
static const char test_api_token[] = "fuzz-api-token-0123456789abcdef";
static const char test_message[] =
	"From: Sender <sender@example.org>\r\n"
	"To: Alice <alice@example.org>\r\n"
	"Subject: =?utf-8?q?caf=C3=A9?=\r\n"
	"MIME-Version: 1.0\r\n"
	"Content-Type: multipart/mixed; boundary=\"b\"\r\n"
	"\r\n"
	"--b\r\n"
	"Content-Type: text/plain; charset=utf-8\r\n"
	"\r\n"
	"Hello <b>there</b>.\r\n"
	"--b\r\n"
	"Content-Type: application/pdf; name=\"r.pdf\"\r\n"
	"Content-Disposition: attachment; filename=\"r.pdf\"\r\n"
	"Content-Transfer-Encoding: base64\r\n"
	"\r\n"
	"JVBERi0xLjQK\r\n"
	"--b--\r\n";

int64_t __wrap_web_tarpit_enter(struct web_tarpit *t, const char *key, int64_t now_ms);
int64_t __real_web_tarpit_enter(struct web_tarpit *t, const char *key, int64_t now_ms);

int64_t
__wrap_web_tarpit_enter(struct web_tarpit *t, const char *key, int64_t now_ms)
{
	(void)__real_web_tarpit_enter(t, key, now_ms);
	return 0;
}

static struct sp_config cfg;
static struct link_store *store;
static struct web_server *server;
static uint16_t port, outbox_port;
static char outbox_token[WEB_OUTBOX_TOKEN_HEXLEN + 1];
static unsigned long runs;

static void
make_store(void)
{
	static const unsigned char salt[SP_LINK_SALTBYTES] = { 1, 2, 3 };
	static const unsigned char nonce[SP_LINK_NONCEBYTES] = { 4, 5, 6 };
	unsigned char key[SP_LINK_KEYBYTES];
	/* A v2 link on the same message (the seeds v2-*): id 0x30..0x3f. */
	static const unsigned char oprf_key[SP_OPRF_SCALARBYTES] = { 7 };
	unsigned char record[SP_LINK2_RECORD_BYTES];
	struct sp_link_token t, t2;
	struct sp_buf ct, wrapped;
	struct link_store_new_link link[2];
	struct link_store_new_msg m = { 0 };
	char err[SP_ERRLEN];
	unsigned i;

	unlink(cfg.link.store);
	FUZZ_SETUP(link_store_open(cfg.link.store, &store, err, sizeof err) == LINK_STORE_OK, "link_store_open");
	FUZZ_SETUP(sp_link_token_decode(test_token_str, strlen(test_token_str), &t) == 0, "test token");
	memset(key, 0x42, sizeof key);
	sp_buf_init(&ct, 0);
	sp_buf_init(&wrapped, 0);
	FUZZ_SETUP(sp_link_seal_message(key, test_message, strlen(test_message), &ct, err, sizeof err) == 0, "seal");
	FUZZ_SETUP(sp_link_wrap_key_det(key, test_password, &t, crypto_pwhash_argon2id_OPSLIMIT_MIN,
	                                crypto_pwhash_argon2id_MEMLIMIT_MIN / 1024, salt, nonce, &wrapped, err,
	                                sizeof err) == 0, "wrap");
	for (i = 0; i < SP_LINK_IDBYTES; i++)
		t2.id[i] = (unsigned char)(0x30 + i);
	memcpy(t2.secret, t.secret, sizeof t2.secret);
	FUZZ_SETUP(sp_link2_record_new_det(key, test_password, &t2, crypto_pwhash_argon2id_OPSLIMIT_MIN,
	                                   crypto_pwhash_argon2id_MEMLIMIT_MIN / 1024, salt, nonce,
	                                   oprf_key, record, err, sizeof err) == 0, "v2 record");
	sp_link_id_hex(t.id, link[0].id);
	link[0].wrapped = wrapped.data;
	link[0].wrapped_len = wrapped.len;
	sp_link_id_hex(t2.id, link[1].id);
	link[1].wrapped = record;
	link[1].wrapped_len = sizeof record;
	m.sender = "Fuzz <fuzz@example.org>";
	m.hint = "fuzz hint";
	m.ciphertext = ct.data;
	m.ciphertext_len = ct.len;
	m.created = sp_time();
	m.expires = m.created + 86400;
	m.max_views = 0;
	m.max_failed = 1000;
	m.links = link;
	m.n_links = 2;
	FUZZ_SETUP(link_store_put(store, &m, NULL, err, sizeof err) == LINK_STORE_OK, "link_store_put");
	sp_buf_free(&ct);
	sp_buf_free(&wrapped);
}

static void
start_server(void)
{
	char err[SP_ERRLEN];

	make_store();
	if (web_server_start(&cfg, store, &server, err, sizeof err) < 0) {
		fprintf(stderr, "fuzz setup: %s\n", err);
		exit(2);
	}
	port = web_server_port(server);
	outbox_port = web_server_outbox_port(server);
	FUZZ_SETUP(web_outbox_token(cfg.state_dir, false, outbox_token, err, sizeof err) == 0,
	           "outbox token");
}

static void
stop_server(void)
{
	web_server_stop(server);
	link_store_close(store);
	server = NULL;
	store = NULL;
}

static void
exchange(uint16_t to, const uint8_t *data, size_t size)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(to) };
	int64_t give_up = sp_now_ms() + FUZZ_WEB_MAX_MS;
	size_t off = 0;
	bool shut = false;
	char buf[16384];
	int fd;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	FUZZ_SETUP(fd >= 0, "socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS) {
		perror("fuzz: connect to the viewer");
		exit(2);
	}
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN | (shut ? 0 : POLLOUT) };
		ssize_t n;

		FUZZ_CHECK(sp_now_ms() < give_up, "the viewer neither answered nor hung up");
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		if (!shut && (pfd.revents & POLLOUT)) {
			n = off < size ? send(fd, data + off, size - off, MSG_NOSIGNAL) : 0;
			if (n > 0)
				off += (size_t)n;
			if (off == size || (n < 0 && errno != EAGAIN && errno != EINTR)) {
				shutdown(fd, SHUT_WR);
				shut = true;
			}
		}
		if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
			n = recv(fd, buf, sizeof buf, 0);
			if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
				break;
		}
	}
	close(fd);
}

static bool
has_markup(const char *p, size_t n)
{
	return memchr(p, '<', n) || memchr(p, '>', n) || memchr(p, '"', n) || memchr(p, '\'', n);
}

static void
check_pure(const uint8_t *data, size_t size)
{
	struct sp_view m = { 0 };
	struct link_store_new_msg rec;
	struct sp_buf b;
	char err[SP_ERRLEN], key[WEB_CLIENT_KEYLEN];
	char *s = fuzz_strndup(data, size), *path;
	struct sockaddr_in lo = { .sin_family = AF_INET };

	if (sp_view_render(data, size, &m, err, sizeof err) == 0) {
		sp_buf_init(&b, 0);
		web_page_message(&b, "/s/x", &m, "00", 1, 3);
		FUZZ_CHECK(b.data != NULL && g_utf8_validate(b.data, (gssize)b.len, NULL), "page not valid UTF-8");
		FUZZ_CHECK(g_strstr_len(b.data, (gssize)b.len, "<script") == NULL &&
		           g_strstr_len(b.data, (gssize)b.len, "<SCRIPT") == NULL, "a script element in the page");
		sp_buf_wipe(&b);
		sp_view_free(&m);
	}

	sp_buf_init(&b, 0);
	FUZZ_CHECK(sp_html_escape(&b, (const char *)data, size) == 0, "escape failed");
	FUZZ_CHECK(b.len == 0 || !has_markup(b.data, b.len), "markup survives escaping");
	FUZZ_CHECK(b.len == 0 || g_utf8_validate(b.data, (gssize)b.len, NULL), "escaped text not UTF-8");
	sp_buf_free(&b);

	if (link_record_decode(data, size, &rec, err, sizeof err) == 0) {
		const char *lo_p = (const char *)data, *hi_p = lo_p + size;
		FUZZ_CHECK(rec.n_links >= 1 && rec.n_links <= LINK_STORE_LINKS_MAX, "%zu links", rec.n_links);
		FUZZ_CHECK((const char *)rec.ciphertext >= lo_p &&
		           (const char *)rec.ciphertext + rec.ciphertext_len <= hi_p, "ciphertext outside the body");
		for (size_t i = 0; i < rec.n_links; i++)
			FUZZ_CHECK(rec.links[i].wrapped_len >= 1 && rec.links[i].wrapped_len <= LINK_STORE_WRAPPED_MAX &&
			           (const char *)rec.links[i].wrapped >= lo_p &&
			           (const char *)rec.links[i].wrapped + rec.links[i].wrapped_len <= hi_p,
			           "wrapped key %zu outside the body", i);
		link_record_free(&rec);
	}

	lo.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	{
		static struct sp_net_list trusted;
		static bool trusted_set;
		struct web_forwarded fw = { s, s, s };
		if (!trusted_set) {
			char e[SP_ERRLEN];
			FUZZ_CHECK(sp_parse_net_list("127.0.0.0/8, ::1, 10.0.0.0/8", &trusted, e, sizeof e) == 0,
			           "trusted list: %s", e);
			trusted_set = true;
		}
		if (web_client_key((struct sockaddr *)&lo, &trusted, &fw, key))
			FUZZ_CHECK(memchr(key, '\0', sizeof key) != NULL && key[0] != '\0', "client key");
	}
	(void)web_host_is_loopback(s);
	path = web_link_path(s);
	if (path)
		FUZZ_CHECK(path[0] == '/', "link path '%s'", path);
	free(path);
	if (web_uri_is_plain(s))
		FUZZ_CHECK(s[0] == '/' && strchr(s, '\\') == NULL && strchr(s, '#') == NULL &&
		           strncmp(s, "//", 2) != 0, "odd target '%s' taken as plain", s);
	{
		size_t before = strlen(s), run = 0;
		web_log_redact(s);
		FUZZ_CHECK(strlen(s) <= before + 10, "redacted line grew");
		for (const char *p = s; *p; p++) {
			run = (g_ascii_isalnum(*p) || *p == '-' || *p == '_') ? run + 1 : 0;
			FUZZ_CHECK(run < 20, "a token-like run survived redaction");
		}
	}
	free(s);
}

/* "OUTBOX\n" + a request for the outbox listener, "@TOKEN@" standing for the
 * token. */
static void
exchange_outbox(const uint8_t *data, size_t size)
{
	GString *req = g_string_new_len((const char *)data, (gssize)size);

	g_string_replace(req, "@TOKEN@", outbox_token, 0);
	exchange(outbox_port, (const uint8_t *)req->str, req->len);
	g_string_free(req, TRUE);
}

static void
write_text_seed(const char *dir, const char *name, const char *text)
{
	fuzz_write_seed(dir, name, text, strlen(text));
}

/* FUZZ_MAKE_SEEDS=DIR: write the seed corpus (requests for every route with
 * the test secrets, an upload record, messages for the renderer) and exit. */
static void
make_seeds(const char *dir)
{
	static const char html_msg[] =
		"From: =?utf-8?b?w4lsaXNl?= <elise@example.org>\r\nTo: alice@example.org\r\n"
		"Subject: html\r\nMIME-Version: 1.0\r\n"
		"Content-Type: multipart/alternative; boundary=\"a\"\r\n\r\n"
		"--a\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
		"Content-Transfer-Encoding: quoted-printable\r\n\r\ncaf=E9 <3\r\n"
		"--a\r\nContent-Type: text/html\r\n\r\n<p onclick=\"x()\">hi<script>alert(1)</script>"
		"<img src=\"https://t.example/p.gif\"></p>\r\n--a--\r\n";
	struct link_store_new_link link = { .wrapped = "SPLNKKEY\x01", .wrapped_len = 9 };
	struct link_store_new_msg m = { .ciphertext = "SPLNKMSG\x01", .ciphertext_len = 9,
	                                .expires = sp_time() + 3600, .max_views = 1, .max_failed = 3,
	                                .links = &link, .n_links = 1 };
	char err[SP_ERRLEN], *t;
	struct sp_buf rec, req;
	const char *form = "application/x-www-form-urlencoded";

	memset(link.id, 'a', SP_LINK_ID_HEXLEN);
	link.id[SP_LINK_ID_HEXLEN] = '\0';
	t = g_strdup_printf("GET /s/%s HTTP/1.1\r\nHost: links.example.org\r\nCookie: a=b\r\n\r\n"
	                    "HEAD / HTTP/1.1\r\nHost: links.example.org\r\nConnection: close\r\n\r\n",
	                    test_token_str);
	write_text_seed(dir, "get-link", t);
	g_free(t);
	t = g_strdup_printf("POST /s/%s HTTP/1.1\r\nHost: links.example.org\r\nContent-Type: %s\r\n"
	                    "Content-Length: %zu\r\n\r\npassword=%s", test_token_str, form,
	                    strlen("password=") + strlen(test_password), test_password);
	write_text_seed(dir, "post-password", t);
	g_free(t);
	t = g_strdup_printf("POST /s/%s HTTP/1.1\r\nHost: l\r\nX-Forwarded-For: 192.0.2.1, 2001:db8::1\r\n"
	                    "Content-Type: %s\r\nTransfer-Encoding: chunked\r\n\r\n"
	                    "10\r\npassword=wrong%%2\r\n0\r\n\r\n", test_token_str, form);
	write_text_seed(dir, "post-wrong-chunked", t);
	g_free(t);
	t = g_strdup_printf("POST /s/%s HTTP/1.1\r\nHost: l\r\nContent-Type: multipart/form-data; boundary=XX\r\n"
	                    "Content-Length: 130\r\n\r\n--XX\r\nContent-Disposition: form-data; name=\"dl\"\r\n\r\n"
	                    "0123456789abcdef\r\n--XX\r\nContent-Disposition: form-data; name=\"part\"\r\n\r\n0\r\n"
	                    "--XX--\r\n", test_token_str);
	write_text_seed(dir, "post-download-multipart", t);
	g_free(t);
	write_text_seed(dir, "outbox-public", "GET /outbox?done=revoked HTTP/1.1\r\nHost: localhost:8025\r\n"
	                "Origin: http://127.0.0.1:8025\r\n\r\n");
	write_text_seed(dir, "outbox", "OUTBOX\nGET /outbox/@TOKEN@?done=revoked HTTP/1.1\r\n"
	                "Host: localhost:8026\r\n\r\nGET /outbox/00 HTTP/1.1\r\nHost: [::1]\r\n\r\n");
	/* Content-Length counts the body with the token in place (64 digits). */
	t = g_strdup_printf("OUTBOX\nPOST /outbox/revoke HTTP/1.1\r\nHost: [::1]\r\nContent-Type: %s\r\n"
	                    "Sec-Fetch-Site: same-origin\r\nContent-Length: 126\r\n\r\n"
	                    "token=@TOKEN@&link=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa&scope=message&x=1",
	                    form);
	write_text_seed(dir, "outbox-revoke", t);
	g_free(t);
	sp_buf_init(&rec, 0);
	FUZZ_SETUP(link_record_encode(&m, &rec, err, sizeof err) == 0, "link_record_encode");
	sp_buf_init(&req, 0);
	sp_buf_printf(&req, "POST /api/v1/links HTTP/1.1\r\nHost: links.example.org\r\n"
	              "Authorization: Bearer %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n\r\n",
	              test_api_token, LINK_RECORD_CONTENT_TYPE, rec.len);
	sp_buf_append(&req, rec.data, rec.len);
	fuzz_write_seed(dir, "api-upload", req.data, req.len);
	fuzz_write_seed(dir, "link-record", rec.data, rec.len);
	sp_buf_free(&req);
	sp_buf_free(&rec);
	t = g_strdup_printf("DELETE /api/v1/links/%s HTTP/1.1\r\nHost: l\r\nAuthorization: Bearer %s\r\n\r\n"
	                    "GET /robots.txt HTTP/1.0\r\n\r\n", link.id, test_api_token);
	write_text_seed(dir, "api-delete", t);
	g_free(t);
	write_text_seed(dir, "message-plain", test_message);
	write_text_seed(dir, "message-html", html_msg);
	exit(0);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[SP_ERRLEN], *text, *token_path;
	const char *dir;
	FILE *f;

	(void)argc;
	(void)argv;
	signal(SIGPIPE, SIG_IGN);
	dir = fuzz_tmpdir();
	setenv("SEALPOST_STATE_DIR", dir, 1);
	sp_log_init(SP_LOG_DEBUG);
	FUZZ_SETUP(sodium_init() >= 0, "sodium_init");
	sp_mime_global_init();
	if (getenv("FUZZ_MAKE_SEEDS"))
		make_seeds(getenv("FUZZ_MAKE_SEEDS"));
	token_path = g_strdup_printf("%s/api-token", dir);
	f = fopen(token_path, "w");
	FUZZ_SETUP(f != NULL && fprintf(f, "%s\n", test_api_token) > 0 && fclose(f) == 0, "token file");
	text = g_strdup_printf("[proxy]\nmax_message_size = 64k\n"
	                       "[link]\nbase_url = https://links.example.org/s/\nstore = %s/links.sqlite\n"
	                       "max_failed_attempts = 1000\nupload_token_file = %s\n"
	                       "[linkserver]\nlisten = 127.0.0.1:8025\noutbox = yes\n", dir, token_path);
	if (sp_config_load_data(&cfg, "fuzz.conf", text, strlen(text), false, err, sizeof err) < 0) {
		fprintf(stderr, "fuzz setup: %s\n", err);
		exit(2);
	}
	g_free(text);
	g_free(token_path);
	/* Any free ports (the outbox's too: fuzzers run side by side). */
	sp_strlcpy(cfg.linkserver.listen.port, "0", sizeof cfg.linkserver.listen.port);
	sp_strlcpy(cfg.linkserver.outbox_listen.port, "0", sizeof cfg.linkserver.outbox_listen.port);
	start_server();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (++runs % FUZZ_WEB_RESTART == 0) {
		stop_server();
		start_server();
	}
	if (size >= 7 && memcmp(data, "OUTBOX\n", 7) == 0)
		exchange_outbox(data + 7, size - 7);
	else
		exchange(port, data, size);
	check_pure(data, size);
	return 0;
}

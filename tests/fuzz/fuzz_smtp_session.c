/* fuzz_smtp_session.c - one whole SMTP submission session on hostile input:
 * the command reader, the command table, DATA and its unstuffing, STARTTLS,
 * the data path (policy -> compose -> relay) and every reply.
 *
 * The input is what a mail client sends.  smtp_session_run() serves one end of
 * a socketpair in a thread with a real config ([upstream] 127.0.0.1:1, so
 * relaying fails at once with 451; [policy] no_key = plain) and a real server
 * TLS context; this thread is the client: it writes the input in chunks of
 * FUZZ_CHUNK bytes, reads and discards the replies, and closes its side when
 * the input is done, so the session ends on EOF.
 *
 * Deterministic chunking: after each chunk the client waits until the server
 * has read every byte and is blocked in poll() for more.  poll is linked
 * through __wrap_poll (-Wl,--wrap=poll), which notes when the session's socket
 * is waited on; so each input is served the same way every time.
 *
 * STARTTLS: the input is cut after its first line "STARTTLS".  When the server
 * answers it with "220 2.0.0 Ready to start TLS", the client does the TLS
 * handshake and sends the rest of the input inside TLS; otherwise (no EHLO
 * yet, inside DATA...) it goes on in plain text.
 *
 * OpenPGP: sp_pgp_new, sp_pgp_free and sp_pgp_find_key are linked through
 * __wrap_* hooks that answer "no key" as an empty keyring does, without
 * running gpg (GPGME starts `gpg --version` for each new context and a gpg
 * per lookup: 15 ms a session, 100 times the rest).  The stand-in context is a
 * 1-byte allocation, so any other use of it is an ASan report, not a silent
 * success.  Everything else is the real code.
 */
#include "fuzz_common.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sodium.h>

#include "config.h"
#include "log.h"
#include "mime_message.h"
#include "pgp.h"
#include "relay.h"
#include "smtp_server.h"
#include "tls.h"

/* Bytes written before waiting for the server to go idle: lines straddle
 * chunks, so partial reads are exercised at every offset the input puts there. */
#define FUZZ_CHUNK 1024
/* A session that has not ended this long after its input did is hung. */
#define FUZZ_SESSION_MAX_MS 8000

static const char config_text[] =
	"[proxy]\n"
	"listen = 127.0.0.1:2587\n"
	"auth = none\n"
	"timeout = 1s\n"
	"data_timeout = 1s\n"
	/* Small, so the size and recipient limits are within the fuzzer's reach. */
	"max_message_size = 4k\n"
	"max_recipients = 5\n"
	"[upstream]\n"
	"host = 127.0.0.1\nport = 1\ntls = none\ntimeout = 1s\n"
	"[pgp]\nencrypt_to_self = no\n"
	"[policy]\nno_key = plain\n";

static const char ready_tls[] = "220 2.0.0 Ready to start TLS\r\n";

static struct sp_config cfg;
static struct smtp_server_ctx ctx;
static SSL_CTX *client_tls;

/* ---- poll hook: is the session waiting for input? ---- */

static pthread_mutex_t idle_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t idle_cond = PTHREAD_COND_INITIALIZER;
static int watch_fd = -1;
static bool in_poll;
static bool session_done;

int __real_poll(struct pollfd *fds, nfds_t n, int timeout);
int __wrap_poll(struct pollfd *fds, nfds_t n, int timeout);
struct sp_pgp *__wrap_sp_pgp_new(const struct sp_config *c, char *err, size_t errsz);
void __wrap_sp_pgp_free(struct sp_pgp *p);
enum sp_pgp_lookup __wrap_sp_pgp_find_key(struct sp_pgp *p, const char *addr, struct sp_pgp_key_info *info,
                                          char *why, size_t whysz);

int
__wrap_poll(struct pollfd *fds, nfds_t n, int timeout)
{
	bool watched;
	int r;

	pthread_mutex_lock(&idle_lock);
	watched = n == 1 && fds[0].fd == watch_fd && (fds[0].events & POLLIN);
	if (watched) {
		in_poll = true;
		pthread_cond_broadcast(&idle_cond);
	}
	pthread_mutex_unlock(&idle_lock);
	r = __real_poll(fds, n, timeout);
	if (watched) {
		pthread_mutex_lock(&idle_lock);
		in_poll = false;
		pthread_mutex_unlock(&idle_lock);
	}
	return r;
}

struct sp_pgp *
__wrap_sp_pgp_new(const struct sp_config *c, char *err, size_t errsz)
{
	(void)c;
	(void)err;
	(void)errsz;
	return malloc(1);
}

void
__wrap_sp_pgp_free(struct sp_pgp *p)
{
	free(p);
}

enum sp_pgp_lookup
__wrap_sp_pgp_find_key(struct sp_pgp *p, const char *addr, struct sp_pgp_key_info *info, char *why,
                       size_t whysz)
{
	(void)p;
	(void)addr;
	memset(info, 0, sizeof *info);
	sp_seterr(why, whysz, "no OpenPGP key for this address");
	return SP_PGP_NONE;
}

/* ---- the client side ---- */

struct client {
	int fd;
	SSL *ssl;
	char tail[sizeof ready_tls];   /* the last bytes the server sent */
	size_t tail_len;
	bool eof;
};

static void
note_reply(struct client *c, const char *p, size_t n)
{
	if (n >= sizeof c->tail - 1) {
		memcpy(c->tail, p + n - (sizeof c->tail - 1), sizeof c->tail - 1);
		c->tail_len = sizeof c->tail - 1;
	} else {
		size_t keep = c->tail_len + n > sizeof c->tail - 1 ? sizeof c->tail - 1 - n : c->tail_len;
		memmove(c->tail, c->tail + c->tail_len - keep, keep);
		memcpy(c->tail + keep, p, n);
		c->tail_len = keep + n;
	}
	c->tail[c->tail_len] = '\0';
}

/* Read whatever replies are there, without blocking. */
static void
drain(struct client *c)
{
	char buf[8192];

	while (!c->eof) {
		ssize_t n;
		if (c->ssl) {
			int r;
			ERR_clear_error();
			r = SSL_read(c->ssl, buf, sizeof buf);
			if (r <= 0) {
				int e = SSL_get_error(c->ssl, r);
				if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
					c->eof = true;
				ERR_clear_error();
				return;
			}
			n = r;
		} else {
			n = read(c->fd, buf, sizeof buf);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				return;
			if (n <= 0) {
				c->eof = true;
				return;
			}
		}
		note_reply(c, buf, (size_t)n);
	}
}

/* Wait until the session has read everything sent and waits for more (or has
 * ended), draining replies meanwhile. */
static void
wait_idle(struct client *c)
{
	int64_t give_up = sp_now_ms() + FUZZ_SESSION_MAX_MS;

	for (;;) {
		struct timespec ts;
		bool idle;
		int outq = 0;

		drain(c);
		pthread_mutex_lock(&idle_lock);
		FUZZ_SETUP(ioctl(c->fd, SIOCOUTQ, &outq) == 0, "SIOCOUTQ");
		idle = session_done || (in_poll && outq == 0);
		if (!idle) {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 1000000;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&idle_cond, &idle_lock, &ts);
		}
		pthread_mutex_unlock(&idle_lock);
		if (idle)
			break;
		FUZZ_CHECK(sp_now_ms() < give_up, "the session neither reads nor ends");
	}
	drain(c);
}

/* Send all n bytes (draining replies while the socket is full). */
static bool
send_all(struct client *c, const uint8_t *p, size_t n)
{
	while (n > 0 && !c->eof) {
		ssize_t w;
		if (c->ssl) {
			int r;
			ERR_clear_error();
			r = SSL_write(c->ssl, p, (int)n);
			if (r <= 0) {
				int e = SSL_get_error(c->ssl, r);
				ERR_clear_error();
				if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
					return false;
				w = 0;
			} else {
				w = r;
			}
		} else {
			w = send(c->fd, p, n, MSG_NOSIGNAL);
			if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				return false;
			if (w < 0)
				w = 0;
		}
		p += w;
		n -= (size_t)w;
		if (n > 0) {
			struct pollfd pfd = { .fd = c->fd, .events = POLLIN | POLLOUT };
			drain(c);
			__real_poll(&pfd, 1, 10);
		}
	}
	return n == 0;
}

static bool
send_chunked(struct client *c, const uint8_t *p, size_t n)
{
	while (n > 0) {
		size_t k = n < FUZZ_CHUNK ? n : FUZZ_CHUNK;
		if (!send_all(c, p, k))
			return false;
		wait_idle(c);
		p += k;
		n -= k;
	}
	return true;
}

static bool
start_tls(struct client *c)
{
	int64_t give_up = sp_now_ms() + FUZZ_SESSION_MAX_MS;

	c->ssl = SSL_new(client_tls);
	FUZZ_SETUP(c->ssl != NULL && SSL_set_fd(c->ssl, c->fd) == 1, "SSL_new");
	for (;;) {
		struct pollfd pfd = { .fd = c->fd };
		int r, e;
		ERR_clear_error();
		r = SSL_connect(c->ssl);
		if (r == 1)
			return true;
		e = SSL_get_error(c->ssl, r);
		ERR_clear_error();
		if (e == SSL_ERROR_WANT_READ)
			pfd.events = POLLIN;
		else if (e == SSL_ERROR_WANT_WRITE)
			pfd.events = POLLOUT;
		else
			return false;
		__real_poll(&pfd, 1, 100);
		FUZZ_CHECK(sp_now_ms() < give_up, "the TLS handshake hangs");
	}
}

/* Offset just past the first line "STARTTLS" (any case, CRLF or LF), or 0. */
static size_t
starttls_cut(const uint8_t *data, size_t size)
{
	size_t off = 0;

	while (off < size) {
		const uint8_t *nl = memchr(data + off, '\n', size - off);
		size_t n = nl ? (size_t)(nl - (data + off)) : size - off;
		size_t body = n && data[off + n - 1] == '\r' ? n - 1 : n;
		if (nl && body == 8 && strncasecmp((const char *)data + off, "STARTTLS", 8) == 0)
			return off + n + 1;
		off += n + 1;
	}
	return 0;
}

static void *
session_main(void *arg)
{
	int fd = (int)(intptr_t)arg;

	smtp_session_run(&ctx, fd, false);
	pthread_mutex_lock(&idle_lock);
	session_done = true;
	pthread_cond_broadcast(&idle_cond);
	pthread_mutex_unlock(&idle_lock);
	return NULL;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[SP_ERRLEN], cert[4200], key[4200];
	const char *dir;

	(void)argc;
	(void)argv;
	signal(SIGPIPE, SIG_IGN);
	dir = fuzz_tmpdir();
	setenv("SEALPOST_STATE_DIR", dir, 1);
	setenv("GNUPGHOME", dir, 1);
	/* Debug logging runs the code behind sp_log_enabled(SP_LOG_DEBUG) too;
	 * run with -close_fd_mask=2 to keep it off the terminal. */
	sp_log_init(SP_LOG_DEBUG);
	FUZZ_SETUP(sodium_init() >= 0, "sodium_init");
	sp_mime_global_init();
	if (sp_pgp_global_init(err, sizeof err) < 0 ||
	    sp_config_load_data(&cfg, "fuzz.conf", config_text, strlen(config_text), true, err, sizeof err) < 0)
		goto fail;
	snprintf(cert, sizeof cert, "%s/cert.pem", dir);
	snprintf(key, sizeof key, "%s/key.pem", dir);
	if (tls_ensure_selfsigned(cert, key, err, sizeof err) < 0 ||
	    (ctx.tls = tls_server_ctx(cert, key, err, sizeof err)) == NULL ||
	    (ctx.relay = relay_new(&cfg, NULL, err, sizeof err)) == NULL)
		goto fail;
	ctx.cfg = &cfg;
	ctx.hostname = "fuzz.example";
	client_tls = SSL_CTX_new(TLS_client_method());
	FUZZ_SETUP(client_tls != NULL, "SSL_CTX_new");
	SSL_CTX_set_verify(client_tls, SSL_VERIFY_NONE, NULL);
	return 0;
fail:
	fprintf(stderr, "fuzz setup: %s\n", err);
	exit(2);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct client c = { 0 };
	pthread_t tid;
	int sv[2];
	size_t cut = starttls_cut(data, size);
	int64_t give_up;

	FUZZ_SETUP(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) == 0, "socketpair");
	c.fd = sv[0];
	pthread_mutex_lock(&idle_lock);
	watch_fd = sv[1];
	in_poll = false;
	session_done = false;
	pthread_mutex_unlock(&idle_lock);
	FUZZ_SETUP(pthread_create(&tid, NULL, session_main, (void *)(intptr_t)sv[1]) == 0, "pthread_create");

	if (cut == 0) {
		send_chunked(&c, data, size);
	} else if (send_chunked(&c, data, cut)) {
		wait_idle(&c);
		if (!c.eof && strcmp(c.tail, ready_tls) == 0 && start_tls(&c))
			send_chunked(&c, data + cut, size - cut);
		else if (!c.eof && c.ssl == NULL)
			send_chunked(&c, data + cut, size - cut);
	}
	/* End of input: close our side and read until the server hangs up. */
	if (c.ssl) {
		ERR_clear_error();
		SSL_shutdown(c.ssl);
	}
	shutdown(c.fd, SHUT_WR);
	give_up = sp_now_ms() + FUZZ_SESSION_MAX_MS;
	while (!c.eof) {
		struct pollfd pfd = { .fd = c.fd, .events = POLLIN };
		drain(&c);
		if (!c.eof)
			__real_poll(&pfd, 1, 100);
		FUZZ_CHECK(sp_now_ms() < give_up, "the session did not end after the client closed");
	}
	pthread_join(tid, NULL);
	pthread_mutex_lock(&idle_lock);
	watch_fd = -1;
	pthread_mutex_unlock(&idle_lock);
	if (c.ssl)
		SSL_free(c.ssl);
	close(c.fd);
	return 0;
}

/* fuzz_smtp_session.c - one whole SMTP submission session on hostile input:
 * the command reader, the command table, DATA and its unstuffing, STARTTLS,
 * the data path (policy -> compose -> relay) and every reply.
 *
 * The input is what a mail client sends.  smtp_session_run() serves one end of
 * a socketpair with a real config ([upstream] 127.0.0.1:1, so relaying fails
 * at once with 451; [policy] no_key = plain) and a real server TLS context.
 * The client is driven from inside the session, in the same thread: poll is
 * linked through __wrap_poll (-Wl,--wrap=poll), and each time the session
 * waits on its socket the hook first plays the client's next move:
 *
 *   - read (and discard) every reply there is;
 *   - if the session waits for input and none is pending: send the next chunk
 *     of FUZZ_CHUNK bytes (lines straddle chunks, so partial reads are
 *     exercised at every offset the input puts there), or take the next step
 *     of the client's TLS handshake, or, once the input is done, close the
 *     client's side so the session ends on EOF.
 *
 * So each input is served the same way every time, with no second thread, no
 * timing and no waiting: a move that cannot be made (the session waits for
 * something this client will never send) closes the client's side too.
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

/* Bytes the client sends per move (the session reads them all before it
 * waits again). */
#define FUZZ_CHUNK 1024

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

/* ---- the client, played from the session's poll ---- */

struct client {
	int fd;             /* our end of the socketpair */
	int server_fd;      /* the session's end: the poll to hook */
	SSL *ssl;
	bool handshaken;    /* ssl has finished its handshake */
	bool tls_decided;   /* the input's STARTTLS cut has been passed */
	bool closed;        /* we have shut down our sending side */
	bool eof;           /* the session has closed its side */
	const uint8_t *data;
	size_t size, pos, cut;
	char tail[sizeof ready_tls];   /* the last bytes the server sent */
	size_t tail_len;
};

static struct client client = { .fd = -1, .server_fd = -1 };

int __real_poll(struct pollfd *fds, nfds_t n, int timeout);
int __wrap_poll(struct pollfd *fds, nfds_t n, int timeout);
struct sp_pgp *__wrap_sp_pgp_new(const struct sp_config *c, char *err, size_t errsz);
void __wrap_sp_pgp_free(struct sp_pgp *p);
enum sp_pgp_lookup __wrap_sp_pgp_find_key(struct sp_pgp *p, const char *addr, struct sp_pgp_key_info *info,
                                          char *err, size_t errsz);

/* ---- OpenPGP: an empty keyring ---- */

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
__wrap_sp_pgp_find_key(struct sp_pgp *p, const char *addr, struct sp_pgp_key_info *info, char *err,
                       size_t errsz)
{
	(void)p;
	(void)addr;
	memset(info, 0, sizeof *info);
	sp_seterr(err, errsz, "no OpenPGP key for this address");
	return SP_PGP_NONE;
}

/* ---- the client's moves ---- */

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

/* Bytes we sent that the session has not read yet. */
static int
unread(const struct client *c)
{
	int outq = 0;

	FUZZ_SETUP(ioctl(c->fd, SIOCOUTQ, &outq) == 0, "SIOCOUTQ");
	return outq;
}

/* Send all n bytes.  The session waits for input with its receive queue
 * empty, so one chunk always fits; anything else is the harness's fault. */
static void
send_all(struct client *c, const uint8_t *p, size_t n)
{
	if (c->ssl) {
		ERR_clear_error();
		FUZZ_SETUP(n == 0 || SSL_write(c->ssl, p, (int)n) == (int)n, "SSL_write");
	} else if (n) {
		FUZZ_SETUP(send(c->fd, p, n, MSG_NOSIGNAL) == (ssize_t)n, "send");
	}
}

/* No more input: close our side (after a TLS close_notify). */
static void
finish(struct client *c)
{
	if (c->closed)
		return;
	if (c->ssl && c->handshaken) {
		ERR_clear_error();
		SSL_shutdown(c->ssl);
		ERR_clear_error();
	}
	shutdown(c->fd, SHUT_WR);
	c->closed = true;
}

/* One step of the TLS handshake; false once it failed. */
static bool
handshake_step(struct client *c)
{
	int r, e;

	ERR_clear_error();
	r = SSL_connect(c->ssl);
	if (r == 1) {
		c->handshaken = true;
		return true;
	}
	e = SSL_get_error(c->ssl, r);
	ERR_clear_error();
	return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
}

/* The session waits for input and has read all we sent: make the next move. */
static void
move(struct client *c)
{
	size_t end, k;

	if (c->closed)
		return;
	if (c->cut && c->pos == c->cut && !c->tls_decided) {
		/* The STARTTLS line went out and was answered. */
		c->tls_decided = true;
		if (!c->eof && strcmp(c->tail, ready_tls) == 0) {
			c->ssl = SSL_new(client_tls);
			FUZZ_SETUP(c->ssl != NULL && SSL_set_fd(c->ssl, c->fd) == 1, "SSL_new");
		}
	}
	if (c->ssl && !c->handshaken) {
		/* A failed handshake, or one that waits on the session while the
		 * session waits on us, ends the input. */
		if (!handshake_step(c) || (!c->handshaken && unread(c) == 0)) {
			finish(c);
			return;
		}
		if (!c->handshaken || unread(c) > 0)
			return;
	}
	if (c->pos == c->size) {
		finish(c);
		return;
	}
	end = c->cut && c->pos < c->cut ? c->cut : c->size;
	k = end - c->pos < FUZZ_CHUNK ? end - c->pos : FUZZ_CHUNK;
	send_all(c, c->data + c->pos, k);
	c->pos += k;
}

int
__wrap_poll(struct pollfd *fds, nfds_t n, int timeout)
{
	struct client *c = &client;
	struct pollfd now;

	if (n != 1 || fds[0].fd != c->server_fd || c->server_fd < 0)
		return __real_poll(fds, n, timeout);
	if (!c->ssl || c->handshaken)
		drain(c);
	if (fds[0].events & POLLIN) {
		now = (struct pollfd){ .fd = c->server_fd, .events = POLLIN };
		if (__real_poll(&now, 1, 0) == 0)
			move(c);
		/* Nothing this client will send: let the session see EOF rather
		 * than sit out its timeout. */
		if (__real_poll(&now, 1, 0) == 0)
			finish(c);
	}
	return __real_poll(fds, n, timeout);
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
	struct client *c = &client;
	int sv[2];

	FUZZ_SETUP(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) == 0, "socketpair");
	*c = (struct client){ .fd = sv[0], .server_fd = sv[1], .data = data, .size = size,
	                      .cut = starttls_cut(data, size) };
	/* The session closes sv[1] when it ends. */
	smtp_session_run(&ctx, sv[1], false);
	c->server_fd = -1;
	if (!c->ssl || c->handshaken)
		drain(c);
	if (c->ssl)
		SSL_free(c->ssl);
	close(c->fd);
	*c = (struct client){ .fd = -1, .server_fd = -1 };
	return 0;
}

/* conn.c - buffered, deadline-bounded I/O over a socket, with or without TLS. */
#include "conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

void
conn_init(struct conn *c, int fd)
{
	memset(c, 0, sizeof *c);
	c->fd = fd;
	/* Output is replies and message data in flight: never more than a flush. */
	sp_buf_init(&c->wbuf, 0);
}

const char *
conn_error(const struct conn *c)
{
	return c->err[0] ? c->err : "connection error";
}

bool
conn_is_tls(const struct conn *c)
{
	return c->ssl != NULL;
}

void
conn_tls_info(const struct conn *c, char *out, size_t outsz)
{
	if (c->ssl == NULL) {
		if (outsz)
			out[0] = '\0';
		return;
	}
	snprintf(out, outsz, "%s %s", SSL_get_version(c->ssl), SSL_get_cipher_name(c->ssl));
}

void
conn_close(struct conn *c)
{
	if (c->ssl) {
		/* Best effort close_notify; the socket is non-blocking, never wait. */
		ERR_clear_error();
		SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	sp_buf_wipe(&c->wbuf);
	/* The read buffer held message plaintext. */
	explicit_bzero(c->rbuf, sizeof c->rbuf);
	c->rpos = c->rlen = 0;
}

/* Wait until fd is ready for `events` or the deadline passes. */
static enum conn_status
wait_fd(struct conn *c, short events, int64_t deadline_ms)
{
	struct pollfd pfd = { .fd = c->fd, .events = events };
	int64_t left;
	int r;

	for (;;) {
		left = deadline_ms - sp_now_ms();
		if (left <= 0) {
			sp_seterr(c->err, sizeof c->err, "timed out");
			return CONN_TIMEOUT;
		}
		r = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
		if (r > 0)
			return CONN_OK;
		if (r < 0 && errno != EINTR) {
			sp_seterr(c->err, sizeof c->err, "poll: %s", strerror(errno));
			return CONN_ERROR;
		}
	}
}

static void
set_ssl_error(struct conn *c, const char *what, int sslerr)
{
	unsigned long e = ERR_peek_last_error();
	char buf[256];

	if (e) {
		ERR_error_string_n(e, buf, sizeof buf);
		sp_seterr(c->err, sizeof c->err, "%s: %s", what, buf);
	} else if (sslerr == SSL_ERROR_SYSCALL && errno) {
		sp_seterr(c->err, sizeof c->err, "%s: %s", what, strerror(errno));
	} else if (sslerr == SSL_ERROR_SYSCALL || sslerr == SSL_ERROR_ZERO_RETURN) {
		sp_seterr(c->err, sizeof c->err, "%s: connection closed by peer", what);
	} else {
		sp_seterr(c->err, sizeof c->err, "%s: TLS error %d", what, sslerr);
	}
	ERR_clear_error();
}

/* Read more bytes into rbuf.  Flushes pending output first (replies to
 * pipelined commands go out before we wait for more input). */
static enum conn_status
conn_fill(struct conn *c, int64_t deadline_ms)
{
	enum conn_status st;
	ssize_t n;

	if (c->wbuf.len && conn_flush(c, deadline_ms) < 0)
		return CONN_ERROR;
	if (c->rpos > 0) {
		memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
		c->rlen -= c->rpos;
		c->rpos = 0;
	}
	for (;;) {
		if (c->ssl) {
			int r, e;
			ERR_clear_error();
			r = SSL_read(c->ssl, c->rbuf + c->rlen, (int)(sizeof c->rbuf - c->rlen));
			if (r > 0) {
				c->rlen += (size_t)r;
				c->bytes_in += (uint64_t)r;
				return CONN_OK;
			}
			e = SSL_get_error(c->ssl, r);
			if (e == SSL_ERROR_WANT_READ)
				st = wait_fd(c, POLLIN, deadline_ms);
			else if (e == SSL_ERROR_WANT_WRITE)
				st = wait_fd(c, POLLOUT, deadline_ms);
			else if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 && r == 0)) {
				sp_seterr(c->err, sizeof c->err, "connection closed by peer");
				return CONN_EOF;
			} else {
				set_ssl_error(c, "TLS read", e);
				return CONN_ERROR;
			}
		} else {
			n = read(c->fd, c->rbuf + c->rlen, sizeof c->rbuf - c->rlen);
			if (n > 0) {
				c->rlen += (size_t)n;
				c->bytes_in += (uint64_t)n;
				return CONN_OK;
			}
			if (n == 0) {
				sp_seterr(c->err, sizeof c->err, "connection closed by peer");
				return CONN_EOF;
			}
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				sp_seterr(c->err, sizeof c->err, "read: %s", strerror(errno));
				return CONN_ERROR;
			}
			st = wait_fd(c, POLLIN, deadline_ms);
		}
		if (st != CONN_OK)
			return st;
	}
}

enum conn_status
conn_read_line(struct conn *c, char *buf, size_t max, size_t *len, int64_t deadline_ms)
{
	enum conn_status st;
	bool toolong = false;
	char prev = '\0';
	size_t n = 0;

	c->line_cr = false;
	for (;;) {
		char *start = c->rbuf + c->rpos;
		size_t avail = c->rlen - c->rpos;
		char *nl = avail ? memchr(start, '\n', avail) : NULL;
		size_t take = nl ? (size_t)(nl - start) + 1 : avail;

		if (!toolong) {
			size_t room = max - n;
			size_t cp = take <= room ? take : room;
			memcpy(buf + n, start, cp);
			n += cp;
			if (take > room)
				toolong = true;
		}
		c->rpos += take;
		if (nl && nl > start)
			prev = nl[-1];
		else if (!nl && take)
			prev = start[take - 1];
		if (nl) {
			c->line_cr = prev == '\r';
			buf[n] = '\0';
			*len = n;
			return toolong ? CONN_TOOLONG : CONN_OK;
		}
		st = conn_fill(c, deadline_ms);
		if (st != CONN_OK) {
			buf[n] = '\0';
			*len = n;
			return st;
		}
	}
}

enum conn_status
conn_read_line_ref(struct conn *c, const char **line, size_t max, size_t *len, int64_t deadline_ms)
{
	enum conn_status st;
	size_t scanned = 0;

	*line = NULL;
	*len = 0;
	for (;;) {
		char *start = c->rbuf + c->rpos;
		size_t avail = c->rlen - c->rpos;
		char *nl = avail > scanned ? memchr(start + scanned, '\n', avail - scanned) : NULL;

		if (nl) {
			size_t n = (size_t)(nl - start) + 1;
			if (n > max) {
				/* Too long after all: consume it through the copying reader. */
				char *sink = sp_xmalloc(max + 1);
				st = conn_read_line(c, sink, max, len, deadline_ms);
				free(sink);
				return st;
			}
			c->line_cr = n >= 2 && nl[-1] == '\r';
			c->rpos += n;
			*line = start;
			*len = n;
			return CONN_OK;
		}
		if (avail >= max) {
			char *sink = sp_xmalloc(max + 1);
			st = conn_read_line(c, sink, max, len, deadline_ms);
			free(sink);
			return st;
		}
		scanned = avail;
		/* conn_fill moves the partial line to the front, then reads more. */
		st = conn_fill(c, deadline_ms);
		if (st != CONN_OK) {
			*len = c->rlen - c->rpos;
			return st;
		}
	}
}

bool
conn_has_buffered(const struct conn *c)
{
	return c->rpos < c->rlen;
}

void
conn_discard_input(struct conn *c)
{
	explicit_bzero(c->rbuf, sizeof c->rbuf);
	c->rpos = c->rlen = 0;
}

int
conn_flush(struct conn *c, int64_t deadline_ms)
{
	size_t off = 0;
	enum conn_status st;
	int rv = -1;

	while (off < c->wbuf.len) {
		if (c->ssl) {
			int r, e;
			ERR_clear_error();
			r = SSL_write(c->ssl, c->wbuf.data + off, (int)(c->wbuf.len - off));
			if (r > 0) {
				off += (size_t)r;
				continue;
			}
			e = SSL_get_error(c->ssl, r);
			if (e == SSL_ERROR_WANT_WRITE)
				st = wait_fd(c, POLLOUT, deadline_ms);
			else if (e == SSL_ERROR_WANT_READ)
				st = wait_fd(c, POLLIN, deadline_ms);
			else {
				set_ssl_error(c, "TLS write", e);
				goto out;
			}
		} else {
			ssize_t n = send(c->fd, c->wbuf.data + off, c->wbuf.len - off, MSG_NOSIGNAL);
			if (n > 0) {
				off += (size_t)n;
				continue;
			}
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
				sp_seterr(c->err, sizeof c->err, "write: %s", strerror(errno));
				goto out;
			}
			st = wait_fd(c, POLLOUT, deadline_ms);
		}
		if (st != CONN_OK)
			goto out;
	}
	rv = 0;
out:
	c->bytes_out += off;
	sp_buf_reset(&c->wbuf);
	return rv;
}

int
conn_write(struct conn *c, const void *p, size_t n, int64_t deadline_ms)
{
	if (sp_buf_append(&c->wbuf, p, n) < 0) {
		sp_seterr(c->err, sizeof c->err, "out of memory");
		return -1;
	}
	if (c->wbuf.len >= CONN_WBUF_FLUSH)
		return conn_flush(c, deadline_ms);
	return 0;
}

int
conn_printf(struct conn *c, int64_t deadline_ms, const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	if ((size_t)n >= sizeof line)
		n = sizeof line - 1;
	return conn_write(c, line, (size_t)n, deadline_ms);
}

static int
handshake(struct conn *c, bool server, int64_t deadline_ms)
{
	for (;;) {
		int r, e;
		enum conn_status st;

		ERR_clear_error();
		r = server ? SSL_accept(c->ssl) : SSL_connect(c->ssl);
		if (r == 1)
			return 0;
		e = SSL_get_error(c->ssl, r);
		if (e == SSL_ERROR_WANT_READ)
			st = wait_fd(c, POLLIN, deadline_ms);
		else if (e == SSL_ERROR_WANT_WRITE)
			st = wait_fd(c, POLLOUT, deadline_ms);
		else {
			long vr = SSL_get_verify_result(c->ssl);
			if (!server && vr != X509_V_OK) {
				sp_seterr(c->err, sizeof c->err, "TLS certificate verification failed: %s",
				          X509_verify_cert_error_string(vr));
				ERR_clear_error();
			} else {
				set_ssl_error(c, "TLS handshake", e);
			}
			return -1;
		}
		if (st != CONN_OK) {
			sp_seterr(c->err, sizeof c->err, "TLS handshake %s",
			          st == CONN_TIMEOUT ? "timed out" : "failed");
			return -1;
		}
	}
}

/* The switch to TLS after STARTTLS: what we said goes out in the clear, and
 * anything the peer sent ahead of the handshake is dropped, never read as if
 * it had come over TLS (the STARTTLS command injection class of bugs). */
static int
tls_begin(struct conn *c, SSL_CTX *ctx, int64_t deadline_ms)
{
	if (c->wbuf.len && conn_flush(c, deadline_ms) < 0)
		return -1;
	conn_discard_input(c);
	c->ssl = SSL_new(ctx);
	if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
		set_ssl_error(c, "TLS setup", 0);
		return -1;
	}
	return 0;
}

int
conn_starttls_server(struct conn *c, SSL_CTX *ctx, int64_t deadline_ms)
{
	if (tls_begin(c, ctx, deadline_ms) < 0)
		return -1;
	return handshake(c, true, deadline_ms);
}

static bool
is_ip_literal(const char *host)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

int
conn_starttls_client(struct conn *c, SSL_CTX *ctx, const char *host, int64_t deadline_ms)
{
	if (tls_begin(c, ctx, deadline_ms) < 0)
		return -1;
	SSL_set_verify(c->ssl, SSL_VERIFY_PEER, NULL);
	if (is_ip_literal(host)) {
		if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), host) != 1) {
			set_ssl_error(c, "TLS setup", 0);
			return -1;
		}
	} else {
		/* SNI always, and OpenSSL's own host name check (never hand-rolled). */
		if (SSL_set_tlsext_host_name(c->ssl, host) != 1 || SSL_set1_host(c->ssl, host) != 1) {
			set_ssl_error(c, "TLS setup", 0);
			return -1;
		}
		SSL_set_hostflags(c->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	}
	return handshake(c, false, deadline_ms);
}

/* conn.h - one buffered, deadline-bounded byte stream over a socket, with or
 * without TLS.  Both the SMTP server (client side) and the upstream client use
 * it; line assembly happens here and only here, and enforces the maximum both on
 * complete lines and on buffered, unterminated input.
 */
#ifndef SP_CONN_H
#define SP_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "util.h"

/* Read buffer: large enough for a few pipelined commands or a DATA burst;
 * lines longer than the caller's limit never accumulate beyond it. */
#define CONN_RBUF_SIZE 16384
/* Output is flushed when this much is pending, and whenever the reader would block. */
#define CONN_WBUF_FLUSH 16384

enum conn_status {
	CONN_OK = 0,
	CONN_EOF,        /* peer closed cleanly (possibly mid-line) */
	CONN_TIMEOUT,    /* deadline passed */
	CONN_TOOLONG,    /* line exceeded the limit; the rest of it was discarded */
	CONN_ERROR,      /* I/O or TLS error; see conn_error() */
};

struct conn {
	int fd;
	SSL *ssl;
	char rbuf[CONN_RBUF_SIZE];
	size_t rpos;
	size_t rlen;
	struct sp_buf wbuf;
	char err[SP_ERRLEN];
	bool line_cr;            /* the last line read ended in CRLF (even a too-long one) */
	uint64_t bytes_in;
	uint64_t bytes_out;
};

void conn_init(struct conn *c, int fd);
/* Close the socket (TLS close_notify first when possible) and free buffers. */
void conn_close(struct conn *c);
/* The last I/O or TLS error ("connection error" when none was recorded).  The
 * one error kept in an object (docs/architecture.md "Conventions"): a
 * connection's failure is sticky, like a stream's, and the functions below
 * that return -1 or CONN_ERROR leave their line here for whoever reports it. */
const char *conn_error(const struct conn *c);

/* TLS on the existing socket.  Any input buffered before the handshake is
 * discarded (RFC 3207 section 4.2: no command injection across STARTTLS).
 * Returns 0, or -1 with conn_error() set. */
int conn_starttls_server(struct conn *c, SSL_CTX *ctx, int64_t deadline_ms);
int conn_starttls_client(struct conn *c, SSL_CTX *ctx, const char *host, int64_t deadline_ms);
/* Is TLS on? */
bool conn_is_tls(const struct conn *c);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384", or "" without TLS. */
void conn_tls_info(const struct conn *c, char *out, size_t outsz);

/* Read one line terminated by LF into buf (at most max bytes including the
 * terminator; buf must hold max + 1 for the NUL).  *len includes the LF.
 * CONN_TOOLONG: the line was longer than max; it has been consumed up to and
 * including its LF (or until the deadline), and buf holds its first max bytes.
 * Returns CONN_OK, CONN_EOF, CONN_TIMEOUT, CONN_TOOLONG, or CONN_ERROR with
 * conn_error() set. */
enum conn_status conn_read_line(struct conn *c, char *buf, size_t max, size_t *len,
                                int64_t deadline_ms);
/* The same without copying: *line points into the read buffer and stays valid
 * until the next read.  max must be below CONN_RBUF_SIZE.  CONN_TOOLONG
 * leaves *line NULL (the line was consumed).  Returns as conn_read_line. */
enum conn_status conn_read_line_ref(struct conn *c, const char **line, size_t max, size_t *len,
                                    int64_t deadline_ms);
/* Is there a complete line, or any byte, already buffered? */
bool conn_has_buffered(const struct conn *c);
/* Drop everything buffered for reading. */
void conn_discard_input(struct conn *c);

/* Queue output; it is sent by conn_flush (called automatically when the
 * buffer grows past CONN_WBUF_FLUSH and before a read would block).  They
 * return 0, or -1 with conn_error() set. */
int conn_write(struct conn *c, const void *p, size_t n, int64_t deadline_ms);
int conn_printf(struct conn *c, int64_t deadline_ms, const char *fmt, ...) SP_PRINTF(3, 4);
int conn_flush(struct conn *c, int64_t deadline_ms);

#endif

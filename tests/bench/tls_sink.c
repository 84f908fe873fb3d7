/* tls_sink.c - a fast SMTP sink with STARTTLS, for the benchmark only.
 *
 *   tls_sink [-c CERT -k KEY] ADDR:PORT
 *
 * Postfix's smtp-sink has no STARTTLS; this one does (and works without TLS
 * when no certificate is given).  One thread per connection, blocking I/O,
 * PIPELINING, every message thrown away.  After each message it prints
 * "mesg=N sess=M" on stdout, so the harness can count deliveries.
 * Not part of sealpost: tests/bench/ builds it with cc (scripts/bench.sh).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

static SSL_CTX *ctx;
static atomic_ulong n_mesg, n_sess;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

struct conn {
	int fd;
	SSL *ssl;
	char buf[65536];
	size_t off, len;
};

static ssize_t
c_read(struct conn *c, void *p, size_t n)
{
	if (c->ssl) {
		int r = SSL_read(c->ssl, p, (int)n);
		return r > 0 ? r : -1;
	}
	for (;;) {
		ssize_t r = read(c->fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		return r > 0 ? r : -1;
	}
}

static int
c_write(struct conn *c, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w;
		if (c->ssl) {
			int r = SSL_write(c->ssl, p, (int)n);
			w = r > 0 ? r : -1;
		} else {
			w = send(c->fd, p, n, MSG_NOSIGNAL);
			if (w < 0 && errno == EINTR)
				continue;
		}
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
fill(struct conn *c)
{
	ssize_t r;

	if (c->off > 0 && c->off < c->len)
		memmove(c->buf, c->buf + c->off, c->len - c->off);
	c->len -= c->off;
	c->off = 0;
	if (c->len == sizeof c->buf)
		return -1;
	r = c_read(c, c->buf + c->len, sizeof c->buf - c->len);
	if (r <= 0)
		return -1;
	c->len += (size_t)r;
	return 0;
}

/* One command line without CRLF into line; -1 on EOF/error/too long. */
static int
read_line(struct conn *c, char *line, size_t max)
{
	for (;;) {
		char *nl = memchr(c->buf + c->off, '\n', c->len - c->off);
		if (nl) {
			size_t n = (size_t)(nl - (c->buf + c->off));
			size_t k = n;
			if (k > 0 && c->buf[c->off + k - 1] == '\r')
				k--;
			if (k >= max)
				k = max - 1;
			memcpy(line, c->buf + c->off, k);
			line[k] = '\0';
			c->off += n + 1;
			return 0;
		}
		if (fill(c) < 0)
			return -1;
	}
}

/* Swallow message data up to CRLF "." CRLF (the DATA line's CRLF counts). */
static int
read_data(struct conn *c)
{
	int st = 2; /* 0 mid-line, 1 CR, 2 line start, 3 ".", 4 ".\r" */

	for (;;) {
		while (c->off < c->len) {
			char ch = c->buf[c->off++];
			switch (st) {
			case 0: {
				char *cr = memchr(c->buf + c->off - 1, '\r', c->len - (c->off - 1));
				if (cr == NULL) {
					c->off = c->len;
					continue;
				}
				c->off = (size_t)(cr - c->buf) + 1;
				st = 1;
				break;
			}
			case 1: st = ch == '\n' ? 2 : ch == '\r' ? 1 : 0; break;
			case 2: st = ch == '.' ? 3 : ch == '\r' ? 1 : 0; break;
			case 3: st = ch == '\r' ? 4 : 0; break;
			case 4:
				if (ch == '\n')
					return 0;
				st = ch == '\r' ? 1 : 0;
				break;
			}
		}
		if (fill(c) < 0)
			return -1;
	}
}

#define R(s) c_write(c, s, sizeof s - 1)

static void *
session(void *arg)
{
	struct conn *c = arg;
	char line[1024];
	int one = 1;

	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	atomic_fetch_add(&n_sess, 1);
	if (R("220 sink ESMTP\r\n") < 0)
		goto out;
	while (read_line(c, line, sizeof line) == 0) {
		int r;
		if (strncasecmp(line, "EHLO", 4) == 0) {
			r = R("250-sink\r\n250-PIPELINING\r\n250-SIZE 209715200\r\n250-8BITMIME\r\n"
			      "250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n");
			if (r == 0 && ctx && c->ssl == NULL)
				r = R("250-STARTTLS\r\n");
			if (r == 0)
				r = R("250 DSN\r\n");
		} else if (strncasecmp(line, "HELO", 4) == 0) {
			r = R("250 sink\r\n");
		} else if (strncasecmp(line, "STARTTLS", 8) == 0 && ctx && c->ssl == NULL) {
			if (R("220 2.0.0 Ready to start TLS\r\n") < 0)
				break;
			c->off = c->len = 0;   /* nothing before the handshake counts */
			c->ssl = SSL_new(ctx);
			SSL_set_fd(c->ssl, c->fd);
			if (SSL_accept(c->ssl) <= 0)
				break;
			continue;
		} else if (strncasecmp(line, "MAIL", 4) == 0) {
			r = R("250 2.1.0 Ok\r\n");
		} else if (strncasecmp(line, "RCPT", 4) == 0) {
			r = R("250 2.1.5 Ok\r\n");
		} else if (strncasecmp(line, "DATA", 4) == 0) {
			unsigned long m, s;
			if (R("354 End data with <CR><LF>.<CR><LF>\r\n") < 0 || read_data(c) < 0)
				break;
			r = R("250 2.0.0 Ok: queued\r\n");
			/* Counted and printed under one lock: the last line printed
			 * always carries the highest count. */
			pthread_mutex_lock(&out_lock);
			m = atomic_fetch_add(&n_mesg, 1) + 1;
			s = atomic_load(&n_sess);
			printf("mesg=%lu sess=%lu\n", m, s);
			fflush(stdout);
			pthread_mutex_unlock(&out_lock);
		} else if (strncasecmp(line, "QUIT", 4) == 0) {
			R("221 2.0.0 Bye\r\n");
			break;
		} else if (strncasecmp(line, "RSET", 4) == 0 || strncasecmp(line, "NOOP", 4) == 0) {
			r = R("250 2.0.0 Ok\r\n");
		} else {
			r = R("502 5.5.2 Not implemented\r\n");
		}
		if (r < 0)
			break;
	}
out:
	if (c->ssl) {
		SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	close(c->fd);
	free(c);
	return NULL;
}

int
main(int argc, char **argv)
{
	const char *cert = NULL, *key = NULL;
	struct sockaddr_in sa = { .sin_family = AF_INET };
	char host[64], *colon;
	pthread_attr_t attr;
	int opt, lfd, one = 1;

	while ((opt = getopt(argc, argv, "c:k:")) != -1) {
		if (opt == 'c')
			cert = optarg;
		else if (opt == 'k')
			key = optarg;
		else
			return 2;
	}
	if (optind != argc - 1 || (colon = strrchr(argv[optind], ':')) == NULL) {
		fprintf(stderr, "usage: tls_sink [-c CERT -k KEY] ADDR:PORT\n");
		return 2;
	}
	snprintf(host, sizeof host, "%.*s", (int)(colon - argv[optind]), argv[optind]);
	sa.sin_port = htons((unsigned short)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		fprintf(stderr, "tls_sink: bad address %s\n", host);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (cert) {
		ctx = SSL_CTX_new(TLS_server_method());
		SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
		if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
		    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
			ERR_print_errors_fp(stderr);
			return 1;
		}
	}
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 1024) < 0) {
		perror("tls_sink: bind/listen");
		return 1;
	}
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	for (;;) {
		pthread_t t;
		struct conn *c;
		int fd = accept(lfd, NULL, NULL);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE)
				continue;
			perror("tls_sink: accept");
			return 1;
		}
		c = calloc(1, sizeof *c);
		c->fd = fd;
		if (pthread_create(&t, &attr, session, c) != 0) {
			close(fd);
			free(c);
		}
	}
}

/* net.c - sockets. */
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util.h"

int
net_set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -1;
	return 0;
}

int
net_listen(const struct sp_listen *l, char *err, size_t errsz)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	int fd = -1, one = 1, r;
	unsigned long port = strtoul(l->port, NULL, 10);

	r = getaddrinfo(l->host, l->port, &hints, &res);
	if (r != 0) {
		sp_seterr(err, errsz, "cannot listen on %s:%s: %s", l->host, l->port, gai_strerror(r));
		return -1;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		sp_seterr(err, errsz, "socket: %s", strerror(errno));
		goto fail;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (res->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	if (bind(fd, res->ai_addr, res->ai_addrlen) < 0) {
		if ((errno == EACCES || errno == EPERM) && port < 1024)
			sp_seterr(err, errsz,
			          "cannot listen on %s:%s: %s. Ports below 1024 need privilege: run "
			          "the systemd unit (conf/sealpost.service), or grant it once with "
			          "`setcap cap_net_bind_service=+ep $(command -v sealpost)`, or listen "
			          "on a port above 1023 ([proxy] listen = 127.0.0.1:2587)",
			          l->host, l->port, strerror(errno));
		else
			sp_seterr(err, errsz, "cannot listen on %s:%s: %s", l->host, l->port, strerror(errno));
		goto fail;
	}
	if (listen(fd, NET_LISTEN_BACKLOG) < 0) {
		sp_seterr(err, errsz, "listen %s:%s: %s", l->host, l->port, strerror(errno));
		goto fail;
	}
	freeaddrinfo(res);
	return fd;
fail:
	if (fd >= 0)
		close(fd);
	freeaddrinfo(res);
	return -1;
}

int
net_connect(const char *host, const char *port, int64_t deadline_ms, char *err, size_t errsz)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG };
	struct addrinfo *res = NULL, *ai;
	char last[SP_ERRLEN] = "no addresses";
	int fd = -1, r, one = 1;

	r = getaddrinfo(host, port, &hints, &res);
	if (r != 0) {
		sp_seterr(err, errsz, "cannot resolve %s: %s", host, gai_strerror(r));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		struct pollfd pfd;
		int soerr = 0;
		socklen_t sl = sizeof soerr;
		int64_t left;

		fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0) {
			snprintf(last, sizeof last, "socket: %s", strerror(errno));
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (errno != EINPROGRESS) {
			snprintf(last, sizeof last, "%s", strerror(errno));
			goto next;
		}
		pfd.fd = fd;
		pfd.events = POLLOUT;
		for (;;) {
			left = deadline_ms - sp_now_ms();
			if (left <= 0) {
				snprintf(last, sizeof last, "connection timed out");
				goto next;
			}
			r = poll(&pfd, 1, (int)(left > 60000 ? 60000 : left));
			if (r > 0)
				break;
			if (r < 0 && errno != EINTR) {
				snprintf(last, sizeof last, "poll: %s", strerror(errno));
				goto next;
			}
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr != 0) {
			snprintf(last, sizeof last, "%s", strerror(soerr ? soerr : errno));
			goto next;
		}
		break;
next:
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		sp_seterr(err, errsz, "cannot connect to %s:%s: %s", host, port, last);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return fd;
}

static void
format_addr(const struct sockaddr_storage *ss, char *out, size_t outsz)
{
	char host[INET6_ADDRSTRLEN] = "?";

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &s->sin_addr, host, sizeof host);
		snprintf(out, outsz, "%s:%u", host, ntohs(s->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof host);
		snprintf(out, outsz, "[%s]:%u", host, ntohs(s->sin6_port));
	} else {
		snprintf(out, outsz, "unknown");
	}
}

void
net_peer_name(int fd, char *out, size_t outsz)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;

	memset(&ss, 0, sizeof ss);
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0) {
		snprintf(out, outsz, "unknown");
		return;
	}
	format_addr(&ss, out, outsz);
}

static bool
addr_is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
	if (ss->ss_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
		if (IN6_IS_ADDR_LOOPBACK(a))
			return true;
		/* ::ffff:127.x.y.z */
		return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
	}
	return false;
}

bool
net_peer_is_loopback(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;

	memset(&ss, 0, sizeof ss);
	return getpeername(fd, (struct sockaddr *)&ss, &sl) == 0 && addr_is_loopback(&ss);
}

bool
net_local_is_loopback(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;

	memset(&ss, 0, sizeof ss);
	return getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 && addr_is_loopback(&ss);
}

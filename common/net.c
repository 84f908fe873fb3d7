/* net.c - sockets shared by the proxy and the link server. */
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

int
sp_net_listen(const char *host, const char *port, bool nonblock, int backlog,
              struct sp_net_failure *why)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	int fd, one = 1, r;

	r = getaddrinfo(host, port, &hints, &res);
	if (r != 0) {
		*why = (struct sp_net_failure){ SP_NET_RESOLVE, r };
		return -1;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
	if (fd < 0) {
		*why = (struct sp_net_failure){ SP_NET_SOCKET, errno };
		goto out;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (res->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	if (bind(fd, res->ai_addr, res->ai_addrlen) < 0)
		*why = (struct sp_net_failure){ SP_NET_BIND, errno };
	else if (listen(fd, backlog) < 0)
		*why = (struct sp_net_failure){ SP_NET_LISTEN, errno };
	else
		goto out;
	close(fd);
	fd = -1;
out:
	freeaddrinfo(res);
	return fd;
}

const char *
sp_net_failure_text(const struct sp_net_failure *why)
{
	return why->step == SP_NET_RESOLVE ? gai_strerror(why->code) : strerror(why->code);
}

int
sp_net_connect(const char *host, const char *port, int64_t deadline_ms, char *err, size_t errsz)
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

/* ---- addresses ---- */

bool
sp_net_addr_is_loopback(const struct sockaddr *sa)
{
	if (sa == NULL)
		return false;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)sa;
		return (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
		/* ::1, or ::ffff:127.x.y.z */
		return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
	return false;
}

bool
sp_net_addr_ip(const struct sockaddr *sa, char *out, size_t outsz)
{
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
		          (socklen_t)outsz);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
		          (socklen_t)outsz);
	else
		return false;
	return true;
}

unsigned
sp_net_addr_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)(const void *)sa)->sin6_port);
	return 0;
}

void
sp_net_addr_name(const struct sockaddr *sa, char *out, size_t outsz)
{
	char host[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6) {
		snprintf(out, outsz, "unknown");
		return;
	}
	sp_net_addr_ip(sa, host, sizeof host);
	snprintf(out, outsz, sa->sa_family == AF_INET ? "%s:%u" : "[%s]:%u", host, sp_net_addr_port(sa));
}

/* ---- either end of a socket ---- */

static bool
peer_addr(int fd, struct sockaddr_storage *ss)
{
	socklen_t sl = sizeof *ss;

	memset(ss, 0, sizeof *ss);
	return getpeername(fd, (struct sockaddr *)ss, &sl) == 0;
}

bool
sp_net_local_addr(int fd, struct sockaddr_storage *ss)
{
	socklen_t sl = sizeof *ss;

	memset(ss, 0, sizeof *ss);
	return getsockname(fd, (struct sockaddr *)ss, &sl) == 0;
}

void
sp_net_peer_name(int fd, char *out, size_t outsz)
{
	struct sockaddr_storage ss;

	if (!peer_addr(fd, &ss)) {
		snprintf(out, outsz, "unknown");
		return;
	}
	sp_net_addr_name((struct sockaddr *)&ss, out, outsz);
}

bool
sp_net_peer_ip(int fd, char *out, size_t outsz)
{
	struct sockaddr_storage ss;

	return peer_addr(fd, &ss) && sp_net_addr_ip((struct sockaddr *)&ss, out, outsz);
}

bool
sp_net_peer_is_loopback(int fd)
{
	struct sockaddr_storage ss;

	return peer_addr(fd, &ss) && sp_net_addr_is_loopback((struct sockaddr *)&ss);
}

bool
sp_net_local_is_loopback(int fd)
{
	struct sockaddr_storage ss;

	return sp_net_local_addr(fd, &ss) && sp_net_addr_is_loopback((struct sockaddr *)&ss);
}

bool
sp_net_host_is_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (strcmp(host, "localhost") == 0 || sp_streq_nocase(host, "localhost."))
		return true;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return false;
}

/* net.h - sockets, for the proxy and the link server alike: listening,
 * connecting with a deadline, and what an address is (its text, whether it is
 * this machine).  The one place these live; proxy/ and linkserver/ call here.
 */
#ifndef SP_NET_H
#define SP_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* The step at which sp_net_listen failed, and its error: an errno value, or
 * getaddrinfo's code for SP_NET_RESOLVE.  Each caller words its own message
 * (the proxy and the link server name different fixes). */
enum sp_net_step { SP_NET_RESOLVE, SP_NET_SOCKET, SP_NET_BIND, SP_NET_LISTEN };
struct sp_net_failure {
	enum sp_net_step step;
	int code;
};

/* A listening TCP socket on host:port (host NULL: every address; port
 * numeric), close-on-exec, non-blocking if asked, SO_REUSEADDR, IPv6-only on
 * an IPv6 address.  Returns the socket, or -1 with *why filled: a documented
 * exception to the err/errsz convention, since each caller words the message
 * and names its own fix (docs/architecture.md "Conventions"). */
int sp_net_listen(const char *host, const char *port, bool nonblock, int backlog,
                  struct sp_net_failure *why);
/* The text of a failure's error (strerror, or gai_strerror when resolving):
 * a static string. */
const char *sp_net_failure_text(const struct sp_net_failure *why);

/* A non-blocking connected socket, trying each address until the deadline.
 * Returns the socket, or -1 with err set ("cannot resolve ..." / "cannot
 * connect to HOST:PORT: ..."). */
int sp_net_connect(const char *host, const char *port, int64_t deadline_ms, char *err, size_t errsz);

/* Is this socket address loopback (127.0.0.0/8, ::1, ::ffff:127.0.0.0/104)?
 * false for NULL and other families. */
bool sp_net_addr_is_loopback(const struct sockaddr *sa);
/* The address without port ("192.0.2.1", "2001:db8::1"); false (out left
 * alone) for other families. */
bool sp_net_addr_ip(const struct sockaddr *sa, char *out, size_t outsz);
/* "127.0.0.1:54321" / "[::1]:54321" / "unknown" */
void sp_net_addr_name(const struct sockaddr *sa, char *out, size_t outsz);
/* The port in host order; 0 for other families. */
unsigned sp_net_addr_port(const struct sockaddr *sa);

/* The same, of a connected socket's peer ("unknown" / false when getpeername
 * fails) or of its local end: true when the address is that. */
void sp_net_peer_name(int fd, char *out, size_t outsz);
bool sp_net_peer_ip(int fd, char *out, size_t outsz);
bool sp_net_peer_is_loopback(int fd);
bool sp_net_local_is_loopback(int fd);
/* The local address of fd; false when getsockname fails. */
bool sp_net_local_addr(int fd, struct sockaddr_storage *ss);

/* A host name or address as written in a config or URL naming this machine:
 * "localhost", "localhost.", 127.0.0.0/8 or ::1 (not v4-mapped forms). */
bool sp_net_host_is_loopback(const char *host);

#endif

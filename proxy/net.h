/* net.h - sockets: listening, connecting with a deadline, peer names. */
#ifndef SP_NET_H
#define SP_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* Pending connections the kernel may queue for us before accept(). */
#define NET_LISTEN_BACKLOG 511

/* A non-blocking listening socket; on EACCES for a port below 1024 the message
 * names the fixes (systemd unit, setcap, a higher port). */
int net_listen(const struct sp_listen *l, char *err, size_t errsz);
/* A non-blocking connected socket, trying each address until the deadline. */
int net_connect(const char *host, const char *port, int64_t deadline_ms, char *err, size_t errsz);
int net_set_nonblock(int fd);
/* "127.0.0.1:54321" / "[::1]:54321" */
void net_peer_name(int fd, char *out, size_t outsz);
bool net_peer_is_loopback(int fd);
/* Is the local end of fd a loopback address? (AUTH without TLS on loopback only) */
bool net_local_is_loopback(int fd);

#endif

/* peer_limits.h - what one client address may do at once: connections and
 * failed AUTH attempts.  Loopback clients all share one address (every local
 * mail client is 127.0.0.1), so the connection limit applies to other
 * addresses only; the AUTH failure limit applies to all. */
#ifndef SP_PEER_LIMITS_H
#define SP_PEER_LIMITS_H

#include <stdbool.h>
#include <sys/socket.h>

/* Failed AUTH attempts from one address within the window before AUTH is
 * refused for that address until the window has passed: slows guessing
 * across sessions (each session also hangs up after SMTP_MAX_AUTH_FAILURES). */
#define PEER_AUTH_FAILURES_MAX 10
#define PEER_AUTH_WINDOW_S 600
/* Addresses tracked; past this, the oldest idle entries are forgotten. */
#define PEER_TABLE_MAX 4096

/* Register a new connection from fd's peer.  false: over max_per_ip. */
bool peer_connect(int fd, unsigned max_per_ip, char ip_out[64]);
void peer_disconnect(const char *ip);
/* true: too many failed AUTH attempts from ip within the window. */
bool peer_auth_blocked(const char *ip);
void peer_auth_failed(const char *ip);
void peer_auth_succeeded(const char *ip);

#endif

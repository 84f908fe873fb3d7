/* web_client.h - who is asking: the peer address checks of the viewer and the
 * per-client backoff for wrong passwords (the tarpit).
 */
#ifndef SP_WEB_CLIENT_H
#define SP_WEB_CLIENT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

/* Room for a client key: an IPv4 address or an IPv6 /64 prefix in text. */
#define WEB_CLIENT_KEYLEN 64

/* First wrong password from a client: the next attempt may come this much later;
 * each further one doubles it, up to WEB_TARPIT_MAX_MS.  One second is nothing
 * to a person retyping, and 2^n seconds defeats guessing across many links. */
#define WEB_TARPIT_BASE_MS 1000
/* The longest wait between attempts: an hour of guessing buys ~60 tries. */
#define WEB_TARPIT_MAX_MS 60000
/* A client whose last failure is this old starts again from zero. */
#define WEB_TARPIT_FORGET_MS (15 * 60 * 1000)
/* Clients remembered at once; the oldest is forgotten first.  Bounded so that a
 * flood of addresses cannot eat memory. */
#define WEB_TARPIT_MAX_CLIENTS 8192
/* A wait up to this long is served by holding the request (a tarpit) instead
 * of a 429 answer; longer waits are refused at once. */
#define WEB_TARPIT_HOLD_MAX_MS 3000

/* Is this socket address loopback (127.0.0.0/8, ::1, ::ffff:127.0.0.0/104)? */
bool web_addr_is_loopback(const struct sockaddr *sa);

/* A Host header value ("host", "host:port", "[v6]:port") naming this machine
 * (localhost, 127.0.0.0/8, ::1)? */
bool web_host_is_loopback(const char *host_header);

/* The key the tarpit counts under: the IPv4 address, or the /64 of an IPv6
 * address (one customer's LAN), v4-mapped IPv6 folded to IPv4.  A loopback
 * peer (the usual TLS reverse proxy on the same host) may name the real client
 * in `forwarded_for` (the last X-Forwarded-For entry or X-Real-IP): it is used
 * when it is a valid address.  Returns false for an unknown address family. */
bool web_client_key(const struct sockaddr *sa, const char *forwarded_for,
                    char out[WEB_CLIENT_KEYLEN]);

struct web_tarpit;

struct web_tarpit *web_tarpit_new(unsigned max_clients);
void web_tarpit_free(struct web_tarpit *t);
/* Before a password attempt.  Returns 0: go ahead now; > 0: go ahead after
 * sleeping that many ms (the slot is reserved); < 0: refused, retry in -ret ms
 * (more than WEB_TARPIT_HOLD_MAX_MS away). */
int64_t web_tarpit_enter(struct web_tarpit *t, const char *key, int64_t now_ms);
/* After a wrong password. */
void web_tarpit_failed(struct web_tarpit *t, const char *key, int64_t now_ms);
/* Forget clients idle for WEB_TARPIT_FORGET_MS. */
void web_tarpit_expire(struct web_tarpit *t, int64_t now_ms);
/* Delay before the attempt after `failures` consecutive failures. */
int64_t web_tarpit_delay(unsigned failures);

#endif

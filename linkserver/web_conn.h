/* web_conn.h - the viewer's connections: how many each client holds, and a
 * deadline for every request.
 *
 * libmicrohttpd has only an inactivity timeout: a client that trickles one
 * byte a second keeps a connection (and its thread) for as long as it likes,
 * and a few hundred such connections lock everyone else out.  So every
 * connection gets a deadline by which its request must have arrived whole
 * (request line, headers, body); a reaper shuts down the socket of any
 * connection past it.  Clients are counted by web_client_key(): an IPv4
 * address, or the /64 of an IPv6 address (one customer's network: a single
 * host there has 2^64 addresses to spread connections over).
 *
 * Thread-safe.  Use: web_conns_admit() from the accept policy,
 * web_conns_open()/web_conns_close() from MHD's connection notifications,
 * web_conns_answering() when the request is complete, web_conns_rearm() when
 * a response is done (the next request on a kept-alive connection), and
 * web_conns_reap() from a timer.
 */
#ifndef SP_WEB_CONN_H
#define SP_WEB_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "web_client.h"

struct web_conns;
struct web_conn;

/* At most per_client_max connections per client key; a request gets
 * budget_ms from the start of its connection (or the end of the previous
 * response) to arrive whole.  Never NULL. */
struct web_conns *web_conns_new(unsigned per_client_max, int64_t budget_ms);
void web_conns_free(struct web_conns *cs);

/* The key a peer is counted under ("127.0.0.2", "2001:db8:1:2::/64").
 * Returns false for an unknown address family. */
bool web_conns_key(const struct sockaddr *sa, char out[WEB_CLIENT_KEYLEN]);

/* May this peer open one more connection?  (An unknown address family: yes,
 * counted under "unknown".) */
bool web_conns_admit(struct web_conns *cs, const struct sockaddr *sa);

/* A connection was accepted on socket fd: count it and start its clock.
 * Never NULL. */
struct web_conn *web_conns_open(struct web_conns *cs, const struct sockaddr *sa, int fd,
                                int64_t now_ms);
/* The connection is closing (its socket is still open): forget it. */
void web_conns_close(struct web_conns *cs, struct web_conn *c);

/* The request has arrived whole: no deadline while it is answered. */
void web_conns_answering(struct web_conns *cs, struct web_conn *c);
/* The response is done: the next request must arrive within the budget. */
void web_conns_rearm(struct web_conns *cs, struct web_conn *c, int64_t now_ms);
/* Allow this request until deadline_ms instead (an authenticated upload). */
void web_conns_extend(struct web_conns *cs, struct web_conn *c, int64_t deadline_ms);

/* Shut down (shutdown(2), both ways) every connection whose request is past
 * its deadline; libmicrohttpd then sees the end of the stream and closes it.
 * Returns how many were shut down now. */
unsigned web_conns_reap(struct web_conns *cs, int64_t now_ms);

/* Connections counted under the key of sa (tests). */
unsigned web_conns_count(struct web_conns *cs, const struct sockaddr *sa);
/* Whether no connection is open (NULL counts as none). */
bool web_conns_idle(struct web_conns *cs);

#endif

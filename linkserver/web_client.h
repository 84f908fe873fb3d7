/* web_client.h - who is asking: the peer address checks of the viewer and the
 * per-client backoff for wrong passwords (the tarpit).
 */
#ifndef SP_WEB_CLIENT_H
#define SP_WEB_CLIENT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config.h"
#include "link_envelope.h"

/* Room for a client key: an IPv4 address or an IPv6 /64 prefix in text. */
#define WEB_CLIENT_KEYLEN 64

/* First wrong password from a client: its next attempt is held this long before
 * it is tried; each further failure doubles it, up to WEB_TARPIT_MAX_MS.  One
 * second is nothing to a person retyping; the doubling slows guessing across
 * many links from one address. */
#define WEB_TARPIT_BASE_MS 1000
/* The longest a client's attempt is held for its earlier failures.  Every
 * attempt waits its turn (the right password too: the server cannot tell before
 * it has tried), so this is what a person who mistyped five times waits for the
 * answer, and it caps a guesser at ~450 tries an hour per address, one at a
 * time.  Nothing is refused for earlier failures: the per-link cap
 * ([link] max_failed_attempts) bounds the guesses at each link. */
#define WEB_TARPIT_MAX_MS 8000
/* A client whose last failure is this old starts again from zero. */
#define WEB_TARPIT_FORGET_MS (15 * 60 * 1000)
/* Clients remembered at once; the oldest is forgotten first.  Bounded so that a
 * flood of addresses cannot eat memory. */
#define WEB_TARPIT_MAX_CLIENTS 8192
/* Links whose failures are remembered per client: a right password on one of
 * them takes back the failures made on it (a person who mistyped), and nothing
 * else (a guesser cannot launder failures on other links with a link he holds).
 * A person opens one or two links at a time. */
#define WEB_TARPIT_LINKS_PER_CLIENT 4
/* Attempts from one client queue one delay apart; one whose turn is further
 * away than this (several sent at once by a client that has failed before) is
 * refused with 429 instead of held.  At least WEB_TARPIT_MAX_MS, so that one
 * attempt at a time is never refused. */
#define WEB_TARPIT_HOLD_MAX_MS WEB_TARPIT_MAX_MS
_Static_assert(WEB_TARPIT_HOLD_MAX_MS >= WEB_TARPIT_MAX_MS,
               "an attempt that comes one at a time must never be refused");
/* Password attempts under way on one link at once, in this process: at most
 * the failures the link has left, so concurrent wrong guesses cannot overshoot
 * [link] max_failed_attempts.  The table of links with attempts under way is
 * bounded by the connection limit. */
#define WEB_ATTEMPTS_MAX_LINKS 1024
/* Forwarding entries (X-Forwarded-For items, Forwarded elements) read from the
 * right before giving up: a chain of trusted proxies is a few hops. */
#define WEB_FORWARDED_MAX_HOPS 16

/* A Host header value ("host", "host:port", "[v6]:port") naming this machine
 * (localhost, 127.0.0.0/8, ::1)? */
bool web_host_is_loopback(const char *host_header);

/* What a request says about where it was forwarded from (NULL when absent). */
struct web_forwarded {
	const char *xff;        /* X-Forwarded-For */
	const char *forwarded;  /* Forwarded (RFC 7239) */
	const char *real_ip;    /* X-Real-IP */
};

/* The key the tarpit counts under: the IPv4 address, or the /64 of an IPv6
 * address (one customer's LAN), v4-mapped IPv6 folded to IPv4.
 *
 * The client is the peer, unless the peer is in `trusted` ([linkserver]
 * trusted_proxies): then the forwarding header names it, read from the right
 * the way nginx's real_ip_recursive does.  X-Forwarded-For when present, else
 * Forwarded's for= values, else X-Real-IP (one address).  Each entry from the
 * right replaces the candidate while the candidate is trusted; the first
 * untrusted address is the client.  An entry that is not an address
 * ("unknown", an obfuscated name, garbage) stops the walk: the last address
 * reached is the client.  Returns false for an unknown address family. */
bool web_client_key(const struct sockaddr *sa, const struct sp_net_list *trusted,
                    const struct web_forwarded *fw, char out[WEB_CLIENT_KEYLEN]);

struct web_tarpit;

/* A tarpit remembering at most max_clients clients (0: WEB_TARPIT_MAX_CLIENTS).
 * Never NULL. */
struct web_tarpit *web_tarpit_new(unsigned max_clients);
void web_tarpit_free(struct web_tarpit *t);
/* Before a password attempt.  Returns 0: go ahead now; > 0: go ahead after
 * sleeping that many ms (the turn is reserved: a parallel attempt from the same
 * client waits one more delay); < 0: refused, retry in -ret ms.  Refused only
 * when the client has failed before and several of its attempts queue at once
 * (the turn is more than WEB_TARPIT_HOLD_MAX_MS away); an attempt that comes
 * after the previous one has been answered is always held, never refused. */
int64_t web_tarpit_enter(struct web_tarpit *t, const char *key, int64_t now_ms);
/* After a wrong password on link_id.  Returns the delay the client's next
 * attempt will be held (for Retry-After). */
int64_t web_tarpit_failed(struct web_tarpit *t, const char *key, const char *link_id,
                          int64_t now_ms);
/* After the right password on link_id: the failures this client made on that
 * link no longer count (and with none left, it is not held at all). */
void web_tarpit_succeeded(struct web_tarpit *t, const char *key, const char *link_id,
                          int64_t now_ms);
/* Consecutive failures counted for a client (tests, logs). */
unsigned web_tarpit_failures(struct web_tarpit *t, const char *key, int64_t now_ms);
/* Forget clients idle for WEB_TARPIT_FORGET_MS. */
void web_tarpit_expire(struct web_tarpit *t, int64_t now_ms);
/* Delay before the attempt after `failures` consecutive failures. */
int64_t web_tarpit_delay(unsigned failures);

/* An attempt on link_id is about to run: returns how many other attempts on it
 * are under way in this process (the caller compares with the failures the
 * link has left), or -1 when the table is full (treat as busy).  Pair every
 * call that does not return -1 with web_tarpit_attempt_end(). */
int web_tarpit_attempt_begin(struct web_tarpit *t, const char *link_id);
void web_tarpit_attempt_end(struct web_tarpit *t, const char *link_id);

#endif

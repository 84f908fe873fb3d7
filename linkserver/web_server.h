/* web_server.h - the link viewer (libmicrohttpd).
 *
 * Routes (one table in web_request.c):
 *   GET  <link path><token>     password form (never counts a view); 410 when gone
 *   POST <link path><token>     password -> the message; dl+part -> an attachment
 *   POST /api/v1/links          upload an encrypted record (bearer token)
 *   DELETE /api/v1/links/<id>   revoke a message (bearer token)
 *   GET  /, /robots.txt
 * and, on a listener of its own ([linkserver] outbox_listen, loopback only),
 * when [linkserver] outbox = yes:
 *   GET  /outbox/<token>        recent link messages with links and passwords
 *   POST /outbox/revoke         revoke a link or a message (token in the form)
 * <link path> is the path of [link] base_url ("/s/" when unset); <token> is
 * the outbox token (web_outbox_token()).  A request target with an escape in
 * its path, a NUL, or an empty, "." or ".." segment is refused (400), as is a
 * request with two Host headers.  Every request must arrive whole within
 * WEB_REQUEST_DEADLINE_S (web_server.c); each client (IPv4 address, IPv6 /64)
 * holds at most WEB_PER_IP_CONNECTION_LIMIT connections.
 *
 * The server runs in its own threads (one per connection, plus a sweeper that
 * deletes expired data every WEB_SWEEP_INTERVAL_S); the caller keeps `cfg` and
 * `store` alive until web_server_stop().
 */
#ifndef SP_WEB_SERVER_H
#define SP_WEB_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "link_store.h"

/* How often the sweeper deletes expired links and forgets idle state.  Expired
 * links already answer 410 at once; the sweep bounds how long their bytes stay. */
#define WEB_SWEEP_INTERVAL_S 60

struct web_server;

/* Bind [linkserver] listen (and outbox_listen) and start serving.  Returns 0
 * with *out, or -1 with err set and *out NULL. */
int web_server_start(const struct sp_config *cfg, struct link_store *store,
                     struct web_server **out, char *err, size_t errsz);
/* Stop serving, wait for the threads, wipe what the server held. */
void web_server_stop(struct web_server *ws);
/* The bound port (useful with port 0). */
uint16_t web_server_port(const struct web_server *ws);
/* The outbox listener's port, 0 when the outbox is off. */
uint16_t web_server_outbox_port(const struct web_server *ws);
/* Run one sweep now (tests; the sweeper does this by itself). */
void web_server_sweep(struct web_server *ws);

/* The path part of a base URL ("https://h/s/" -> "/s/"); "/s/" when empty.
 * Returns a malloc'd string, or NULL when base_url is not http(s)://host/path. */
char *web_link_path(const char *base_url);

/* Is a raw request target (before decoding) one the viewer serves: starts
 * with '/', printable ASCII, no escape in the path, no NUL or bad escape in
 * the query, no empty, "." or ".." path segment, no backslash? */
bool web_uri_is_plain(const char *uri);

/* Replace every run of 20 or more token characters ([A-Za-z0-9_-]: a link
 * token, the outbox token) in a log line with "[redacted]", in place. */
void web_log_redact(char *line);

#endif

/* web_server.h - the link viewer (libmicrohttpd).
 *
 * Routes (one table in web_server.c):
 *   GET  <link path><token>     password form (never counts a view); 410 when gone
 *   POST <link path><token>     password -> the message; dl+part -> an attachment
 *   GET  /outbox                recent link messages (loopback only, [linkserver] outbox)
 *   POST /outbox/revoke         revoke a link or a message (loopback, CSRF token)
 *   POST /api/v1/links          upload an encrypted record (bearer token)
 *   DELETE /api/v1/links/<id>   revoke a message (bearer token)
 *   GET  /, /robots.txt
 * <link path> is the path of [link] base_url ("/s/" when unset).
 *
 * The server runs in its own threads (one per connection, plus a sweeper that
 * deletes expired data every WEB_SWEEP_INTERVAL_S); the caller keeps `cfg` and
 * `store` alive until web_server_stop().
 */
#ifndef SP_WEB_SERVER_H
#define SP_WEB_SERVER_H

#include <stdint.h>

#include "config.h"
#include "link_store.h"

/* How often the sweeper deletes expired links and forgets idle state.  Expired
 * links already answer 410 at once; the sweep bounds how long their bytes stay. */
#define WEB_SWEEP_INTERVAL_S 60

struct web_server;

/* Bind [linkserver] listen and start serving.  0, or -1 with err. */
int web_server_start(const struct sp_config *cfg, struct link_store *store,
                     struct web_server **out, char *err, size_t errsz);
/* Stop serving, wait for the threads, wipe what the server held. */
void web_server_stop(struct web_server *ws);
/* The bound port (useful with port 0). */
uint16_t web_server_port(const struct web_server *ws);
/* Run one sweep now (tests; the sweeper does this by itself). */
void web_server_sweep(struct web_server *ws);

/* The path part of a base URL ("https://h/s/" -> "/s/"); "/s/" when empty.
 * Returns a malloc'd string, or NULL when base_url is not http(s)://host/path. */
char *web_link_path(const char *base_url);

#endif

/* web_server.c - the link viewer's daemons: the two listeners and every
 * libmicrohttpd limit, the accept policy, the dispatch of each request
 * (web_request.c), the sweeper and deadline reaper, the drain at stop. */
#include "web_server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>

#include "log.h"
#include "web_conn.h"
#include "web_internal.h"
#include "web_session.h"

/* ---- limits (docs/viewer.md "Limits") ---- */

/* A client that sends nothing for this long is dropped: MHD's default is no
 * timeout at all, and every connection holds a thread. */
#define WEB_CONNECTION_TIMEOUT_S 30
/* A request must arrive whole (request line, headers, form body) within this
 * long of its connection's start, or of the end of the previous response on a
 * kept-alive connection; else its socket is shut down.  The inactivity timeout
 * alone lets a client that trickles a byte a second hold a thread forever.  A
 * browser sends a request in one or two packets; 15 s is ample on a bad link. */
#define WEB_REQUEST_DEADLINE_S 15
/* How often connections are checked against their deadline. */
#define WEB_REAP_INTERVAL_MS 1000
/* At stop, how long connections that are closing get to finish before the
 * daemons are stopped under them (a busy viewer is not held up longer). */
#define WEB_STOP_DRAIN_MS 2000
/* Connections at once (each is a thread): enough for a busy personal viewer,
 * bounded so a flood cannot exhaust threads or memory. */
#define WEB_CONNECTION_LIMIT 256
/* Connections from one client: an IPv4 address or an IPv6 /64 (web_conn.h).
 * Behind a reverse proxy on the same host all come from it, so this is
 * generous; the proxy should limit per client. */
#define WEB_PER_IP_CONNECTION_LIMIT 32
/* Connections at once on the outbox listener: one person's browser. */
#define WEB_OUTBOX_CONNECTION_LIMIT 16
/* MHD's per-connection memory pool: request line, headers, small buffers.  A
 * request whose headers do not fit is refused by MHD (431). */
#define WEB_CONNECTION_MEMORY_LIMIT (64 * 1024)
/* Argon2id runs at once: each takes the KDF's memory (64 MiB by default), so
 * this caps the viewer's peak memory for unlocks at about 256 MiB. */
#define WEB_KDF_CONCURRENCY 4
/* Listen backlog. */
#define WEB_LISTEN_BACKLOG 128
/* TLS certificate and key files are small PEM files. */
#define WEB_PEM_MAX (1024 * 1024)

/* ---- MHD callbacks ---- */

static struct web_conn *
conn_record(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci ? ci->socket_context : NULL;
}

/* MHD_OPTION_URI_LOG_CALLBACK: called once per request with the raw target,
 * before it is decoded; what it returns is the request's *req_cls.  Never
 * logs the target: the outbox's carries its token. */
static void *
on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
	return web_req_new(cls, c, conn_record(c), uri);
}

static void
on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
             enum MHD_RequestTerminationCode toe)
{
	struct web_listener *l = cls;

	web_req_free(*req_cls);
	*req_cls = NULL;
	/* The next request on a kept-alive connection starts its clock now. */
	if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
		web_conns_rearm(l->conns, conn_record(c), sp_now_ms());
}

/* The access handler: route on the first call, take the body on the next
 * ones, and answer when it is all in. */
static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
           const char *version, const char *upload_data, size_t *upload_data_size,
           void **req_cls)
{
	struct web_listener *l = cls;
	struct web_server *ws = l->ws;
	struct web_req *r = *req_cls;
	bool done;

	if (r == NULL) /* on_uri runs for every request; never without it */
		*req_cls = r = on_uri(l, "", c);
	if (!r->begun) {
		enum MHD_Result ret = web_req_begin(ws, r, url, method, &done);
		if (done || ret != MHD_YES)
			return ret;
		/* Answer from the next call, never the first: libmicrohttpd 0.9.75
		 * closes the connection (Connection: close) after a response queued
		 * in the first call, so every request would cost a TCP connection
		 * and a thread (5k instead of 79k requests/s).  For routes with a
		 * body, it comes in the next calls anyway. */
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		return web_req_body(r, upload_data, n);
	}
	/* The whole request is in: answering it (a tarpit wait, the KDF) is not
	 * held to the deadline. */
	web_conns_answering(l->conns, r->wc);
	return web_req_handle(ws, r);
}

/* MHD_OPTION_NOTIFY_CONNECTION: count the connection under its client and
 * start its clock; forget it when it closes (before its socket is closed). */
static void
on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
              enum MHD_ConnectionNotificationCode toe)
{
	struct web_listener *l = cls;
	const union MHD_ConnectionInfo *fd, *addr;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		fd = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		addr = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		*socket_context = web_conns_open(l->conns, addr ? addr->client_addr : NULL,
		                                 fd ? fd->connect_fd : -1, sp_now_ms());
	} else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		web_conns_close(l->conns, *socket_context);
		*socket_context = NULL;
	}
}

/* The accept policy: at most WEB_PER_IP_CONNECTION_LIMIT per client, an IPv6
 * client being its /64.  Accepting and the STARTED notification both run in
 * the daemon's one listening thread, so the count cannot be overtaken. */
static enum MHD_Result
on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
	struct web_listener *l = cls;

	return web_conns_admit(l->conns, addr) ? MHD_YES : MHD_NO;
}

/* Tokens are at least this long: a link token is 43 characters, the outbox
 * token 64; words, numbers and addresses in libmicrohttpd's messages are
 * shorter. */
#define WEB_LOG_TOKEN_MIN 20

static bool
token_char(char c)
{
	return g_ascii_isalnum(c) || c == '-' || c == '_';
}

void
web_log_redact(char *line)
{
	static const char mark[] = "[redacted]";
	char *in = line, *out = line;

	while (*in) {
		size_t n = 0;
		while (token_char(in[n]))
			n++;
		if (n >= WEB_LOG_TOKEN_MIN) {
			memcpy(out, mark, sizeof mark - 1);
			out += sizeof mark - 1;
			in += n;
		} else if (n > 0) {
			memmove(out, in, n);
			out += n;
			in += n;
		} else {
			*out++ = *in++;
		}
	}
	*out = '\0';
}

SP_PRINTF(2, 0)
static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	size_t n;

	vsnprintf(line, sizeof line, fmt, ap);
	/* libmicrohttpd names the URL in some messages ("Failed to send data in
	 * response for %s"): a link token or the outbox token must not reach
	 * the log. */
	web_log_redact(line);
	n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	sp_log_warn("viewer: %s", line);
}

/* ---- sweeper ---- */

/* Downloads of links that left the store (revoked by another process,
 * expired, swept) end now, not at their next request: the bytes are wiped. */
static void
prune_sessions(struct web_server *ws)
{
	char (*ids)[SP_LINK_ID_HEXLEN + 1] = sp_xcalloc(WEB_SESSION_MAX, sizeof *ids);
	char err[SP_ERRLEN];
	size_t n, i;

	n = web_sessions_links(ws->sessions, ids, WEB_SESSION_MAX);
	for (i = 0; i < n; i++)
		if (web_link_check(ws, ids[i], err, sizeof err) == LINK_STORE_GONE)
			web_downloads_end(ws, ids[i]);
	free(ids);
}

void
web_server_sweep(struct web_server *ws)
{
	char err[SP_ERRLEN];
	unsigned nl = 0, nm = 0;

	if (link_store_sweep(ws->store, sp_time(), &nl, &nm, err, sizeof err) != LINK_STORE_OK)
		sp_log_error("viewer: sweep: %s", err);
	else if (nl || nm)
		sp_log_info("viewer: swept %u expired link(s) and %u message(s)", nl, nm);
	web_sessions_expire(ws->sessions, sp_now_ms());
	prune_sessions(ws);
	web_tarpit_expire(ws->tarpit, sp_now_ms());
	web_outbox_expire(sp_time());
}

static void *
sweeper_main(void *arg)
{
	struct web_server *ws = arg;
	struct timespec until;
	int64_t next_sweep = 0, now;

	pthread_mutex_lock(&ws->stop_lock);
	while (!ws->stopping) {
		pthread_mutex_unlock(&ws->stop_lock);
		now = sp_now_ms();
		/* Requests past their deadline: every tick. */
		if (web_conns_reap(ws->pub.conns, now) + web_conns_reap(ws->obx.conns, now) > 0)
			sp_log_debug("viewer: closed connection(s) whose request was not in after %d s",
			             WEB_REQUEST_DEADLINE_S);
		if (now >= next_sweep) {
			web_server_sweep(ws);
			next_sweep = now + (int64_t)WEB_SWEEP_INTERVAL_S * 1000;
		}
		pthread_mutex_lock(&ws->stop_lock);
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += (long)WEB_REAP_INTERVAL_MS * 1000000L;
		until.tv_sec += until.tv_nsec / 1000000000L;
		until.tv_nsec %= 1000000000L;
		while (!ws->stopping &&
		       pthread_cond_timedwait(&ws->stop_cond, &ws->stop_lock, &until) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&ws->stop_lock);
	return NULL;
}

/* ---- start / stop ---- */

char *
web_link_path(const char *base_url)
{
	const char *p;

	if (base_url == NULL || *base_url == '\0')
		return sp_xstrdup("/s/");
	if (sp_has_prefix_nocase(base_url, "https://"))
		p = base_url + 8;
	else if (sp_has_prefix_nocase(base_url, "http://"))
		p = base_url + 7;
	else
		return NULL;
	p = strchr(p, '/');
	if (p == NULL)
		return sp_xstrdup("/");
	if (strpbrk(p, "?#") != NULL)
		return NULL;
	return sp_xstrdup(p);
}

static int
listen_socket(const char *key, const struct sp_listen *l, char *err, size_t errsz)
{
	struct sp_net_failure why;
	int fd = sp_net_listen(l->host[0] ? l->host : NULL, l->port, false, WEB_LISTEN_BACKLOG, &why);
	const char *text = fd < 0 ? sp_net_failure_text(&why) : NULL;

	if (fd >= 0)
		return fd;
	if (why.step == SP_NET_RESOLVE)
		sp_seterr(err, errsz, "[linkserver] %s %s:%s: %s", key, l->host, l->port, text);
	else if (why.step == SP_NET_SOCKET)
		sp_seterr(err, errsz, "[linkserver] %s: socket: %s", key, text);
	else if (why.step == SP_NET_BIND)
		sp_seterr(err, errsz, "[linkserver] %s %s:%s: cannot bind: %s%s", key, l->host, l->port,
		          text, why.code == EACCES ?
		          " (ports below 1024 need privileges: use a higher port behind a reverse proxy)" :
		          "");
	else
		sp_seterr(err, errsz, "[linkserver] %s: %s", key, text);
	return -1;
}

/* Tell the sweeper to stop, and wait for it. */
static void
sweeper_stop(struct web_server *ws)
{
	pthread_mutex_lock(&ws->stop_lock);
	ws->stopping = true;
	pthread_cond_signal(&ws->stop_cond);
	pthread_mutex_unlock(&ws->stop_lock);
	pthread_join(ws->sweeper, NULL);
}

/* Let connections that are closing finish first (bounded): libmicrohttpd
 * 0.9.75 can lose a connection whose thread is ending while the daemon
 * stops (LeakSanitizer saw its MHD_Connection in fuzz_web_request). */
static void
connections_drain(struct web_server *ws)
{
	int64_t until = sp_now_ms() + WEB_STOP_DRAIN_MS;

	while ((!web_conns_idle(ws->pub.conns) || !web_conns_idle(ws->obx.conns)) &&
	       sp_now_ms() < until)
		usleep(10000);
}

static void
server_free(struct web_server *ws)
{
	if (ws == NULL)
		return;
	if (ws->sweeper_running)
		sweeper_stop(ws);
	connections_drain(ws);
	/* The daemons after the sweeper: it reaps their connections. */
	if (ws->pub.daemon)
		MHD_stop_daemon(ws->pub.daemon);
	if (ws->obx.daemon)
		MHD_stop_daemon(ws->obx.daemon);
	web_conns_free(ws->pub.conns);
	web_conns_free(ws->obx.conns);
	pthread_cond_destroy(&ws->stop_cond);
	pthread_mutex_destroy(&ws->stop_lock);
	web_sessions_free(ws->sessions);
	web_tarpit_free(ws->tarpit);
	sem_destroy(&ws->kdf_slots);
	free(ws->link_path);
	free(ws->csp_page);
	free(ws->csp_message);
	free(ws->tls_cert);
	if (ws->tls_key) {
		sodium_memzero(ws->tls_key, ws->tls_key_len);
		free(ws->tls_key);
	}
	sodium_memzero(ws, sizeof *ws);
	free(ws);
}

/* The server's state before anything is read or bound: the stop signal, the
 * KDF slots, the tarpit, the download sessions. */
static struct web_server *
server_new(const struct sp_config *cfg, struct link_store *store)
{
	struct web_server *ws = sp_xcalloc(1, sizeof *ws);
	pthread_condattr_t ca;

	ws->store = store;
	ws->pub = (struct web_listener){ .ws = ws, .side = SIDE_PUBLIC };
	ws->obx = (struct web_listener){ .ws = ws, .side = SIDE_OUTBOX };
	pthread_mutex_init(&ws->stop_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&ws->stop_cond, &ca);
	pthread_condattr_destroy(&ca);
	sem_init(&ws->kdf_slots, 0, WEB_KDF_CONCURRENCY);
	ws->tarpit = web_tarpit_new(WEB_TARPIT_MAX_CLIENTS);
	ws->trusted_proxies = cfg->linkserver.trusted_proxies;
	ws->sessions = web_sessions_new(WEB_SESSION_MAX_BYTES, WEB_SESSION_MAX);
	return ws;
}

/* What the configuration says: the link path, the upload API (its token and
 * body limit), the outbox's token, the pages' Content-Security-Policy. */
static int
server_configure(struct web_server *ws, const struct sp_config *cfg, char *err, size_t errsz)
{
	ws->link_path = web_link_path(cfg->link.base_url);
	if (ws->link_path == NULL) {
		sp_seterr(err, errsz, "[link] base_url '%s' is not http(s)://host/path/",
		          cfg->link.base_url);
		return -1;
	}
	ws->link_path_len = strlen(ws->link_path);
	ws->outbox = cfg->linkserver.outbox;
	ws->hsts = cfg->link.base_url && sp_has_prefix_nocase(cfg->link.base_url, "https://");
	/* An upload carries a message of at most [proxy] max_message_size, its
	 * encryption overhead (well under 1/64) and the links' wrapped keys. */
	ws->upload_max = (size_t)cfg->proxy.max_message_size + (size_t)cfg->proxy.max_message_size / 64 +
	                 (size_t)LINK_STORE_LINKS_MAX * (LINK_STORE_WRAPPED_MAX + 32) + 4096;
	ws->reply_max = (size_t)cfg->linkserver.reply_max_size;
	ws->reply_max_count = cfg->linkserver.reply_max_count;
	ws->reply_min_interval = cfg->linkserver.reply_min_interval;
	if (web_api_load_token(ws, cfg->link.upload_token_file, err, errsz) < 0)
		return -1;
	/* The outbox's capability: made at the first start, kept (0600) in the
	 * state directory, where `sealpost outbox` reads it. */
	if (ws->outbox &&
	    web_outbox_token(cfg->state_dir, true, ws->outbox_token, err, errsz) < 0)
		return -1;
	/* style-src: our one stylesheet by hash.  img-src data: on the message page
	 * only, for images embedded in the HTML part; never a remote URL. */
	ws->csp_page = sp_xasprintf("default-src 'none'; style-src %s; form-action 'self'; "
	                            "frame-ancestors 'none'; base-uri 'none'",
	                            web_pages_style_source());
	ws->csp_message = sp_xasprintf("default-src 'none'; style-src %s; img-src data:; "
	                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
	                               web_pages_style_source());
	return 0;
}

/* [linkserver] tls_cert and tls_key, read for libmicrohttpd (unset: plain HTTP). */
static int
tls_load(struct web_server *ws, const struct sp_config *cfg, char *err, size_t errsz)
{
	size_t tls_cert_len = 0;

	if (cfg->linkserver.tls_cert == NULL || cfg->linkserver.tls_cert[0] == '\0')
		return 0;
	if (!MHD_is_feature_supported(MHD_FEATURE_TLS)) {
		sp_seterr(err, errsz, "[linkserver] tls_cert: this libmicrohttpd has no TLS; use a "
		          "TLS reverse proxy instead");
		return -1;
	}
	if (sp_read_file(cfg->linkserver.tls_cert, WEB_PEM_MAX, &ws->tls_cert, &tls_cert_len,
	                 err, errsz) < 0 ||
	    sp_read_file(cfg->linkserver.tls_key, WEB_PEM_MAX, &ws->tls_key, &ws->tls_key_len,
	                 err, errsz) < 0)
		return -1;
	return 0;
}

/* Start one libmicrohttpd daemon on a bound socket (taken over, closed on
 * failure). */
static int
listener_start(struct web_listener *l, int fd, unsigned flags, unsigned conn_limit,
               struct MHD_OptionItem *tls_opts, char *err, size_t errsz)
{
	struct sockaddr_storage ss;

	l->conns = web_conns_new(WEB_PER_IP_CONNECTION_LIMIT,
	                         (int64_t)WEB_REQUEST_DEADLINE_S * 1000);
	if (sp_net_local_addr(fd, &ss)) {
		l->port = sp_net_addr_port((struct sockaddr *)&ss);
		if (ss.ss_family == AF_INET6)
			flags |= MHD_USE_IPv6;
	}
	/* Per-client limits are ours (on_accept: IPv6 by /64), not
	 * MHD_OPTION_PER_IP_CONNECTION_LIMIT (per exact address). */
	l->daemon = MHD_start_daemon(flags, 0, on_accept, l, on_request, l,
		MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
		MHD_OPTION_LISTEN_SOCKET, fd,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)WEB_CONNECTION_TIMEOUT_S,
		MHD_OPTION_CONNECTION_LIMIT, conn_limit,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)WEB_CONNECTION_MEMORY_LIMIT,
		MHD_OPTION_URI_LOG_CALLBACK, on_uri, l,
		MHD_OPTION_NOTIFY_CONNECTION, on_connection, l,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, l,
		MHD_OPTION_ARRAY, tls_opts,
		MHD_OPTION_END);
	if (l->daemon == NULL) {
		close(fd);
		sp_seterr(err, errsz, "libmicrohttpd did not start");
		return -1;
	}
	return 0;
}

/* Bind `at` ([linkserver] `key`) and serve on it. */
static int
listener_open(struct web_listener *l, const char *key, const struct sp_listen *at,
              unsigned flags, unsigned conn_limit, struct MHD_OptionItem *tls_opts, char *err,
              size_t errsz)
{
	int fd;

	if ((fd = listen_socket(key, at, err, errsz)) < 0)
		return -1;
	if (listener_start(l, fd, flags, conn_limit, tls_opts, err, errsz) < 0) {
		sp_seterr(err, errsz, "[linkserver] %s %s:%s: libmicrohttpd did not start", key,
		          at->host, at->port);
		return -1;
	}
	return 0;
}

/* The public listener (TLS when configured) and, with the outbox on, the
 * outbox's own: plain HTTP on loopback (config.c refuses anything else). */
static int
listeners_start(struct web_server *ws, const struct sp_config *cfg, char *err, size_t errsz)
{
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
	                 MHD_USE_POLL | MHD_USE_ERROR_LOG;
	struct MHD_OptionItem tls_opts[3], no_tls[1];

	tls_opts[0] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
	no_tls[0] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
	if (ws->tls_cert) {
		tls_opts[0] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0, ws->tls_cert };
		tls_opts[1] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0, ws->tls_key };
		tls_opts[2] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
	}
	if (listener_open(&ws->pub, "listen", &cfg->linkserver.listen,
	                  flags | (ws->tls_cert ? MHD_USE_TLS : 0), WEB_CONNECTION_LIMIT, tls_opts,
	                  err, errsz) < 0)
		return -1;
	if (ws->outbox &&
	    listener_open(&ws->obx, "outbox_listen", &cfg->linkserver.outbox_listen, flags,
	                  WEB_OUTBOX_CONNECTION_LIMIT, no_tls, err, errsz) < 0)
		return -1;
	return 0;
}

/* Where the viewer listens.  Never the outbox token in a log line: `sealpost
 * outbox` prints the URL. */
static void
log_listening(const struct web_server *ws, const struct sp_config *cfg)
{
	const struct sp_listen *ol = &cfg->linkserver.outbox_listen;
	bool v6;

	if (ws->outbox) {
		v6 = strchr(ol->host, ':') != NULL;
		sp_log_info("viewer: outbox on http://%s%s%s:%u/outbox/ (its address, with its "
		            "token: sealpost outbox)", v6 ? "[" : "", ol->host, v6 ? "]" : "",
		            (unsigned)ws->obx.port);
	}
	v6 = strchr(cfg->linkserver.listen.host, ':') != NULL;
	sp_log_info("viewer: listening on %s%s%s%s:%u, links under %s%s",
	            ws->tls_cert ? "https://" : "http://", v6 ? "[" : "", cfg->linkserver.listen.host,
	            v6 ? "]" : "", (unsigned)ws->pub.port, ws->link_path,
	            ws->api_enabled ? ", upload API on" : "");
}

int
web_server_start(const struct sp_config *cfg, struct link_store *store, struct web_server **out,
                 char *err, size_t errsz)
{
	struct web_server *ws = server_new(cfg, store);
	int rv = -1;

	*out = NULL;
	if (server_configure(ws, cfg, err, errsz) < 0 || tls_load(ws, cfg, err, errsz) < 0 ||
	    listeners_start(ws, cfg, err, errsz) < 0)
		goto out;
	if (pthread_create(&ws->sweeper, NULL, sweeper_main, ws) != 0) {
		sp_seterr(err, errsz, "viewer: cannot start the sweeper thread");
		goto out;
	}
	ws->sweeper_running = true;
	log_listening(ws, cfg);
	*out = ws;
	ws = NULL;
	rv = 0;
out:
	server_free(ws);
	return rv;
}

void
web_server_stop(struct web_server *ws)
{
	server_free(ws);
}

uint16_t
web_server_port(const struct web_server *ws)
{
	return ws->pub.port;
}

uint16_t
web_server_outbox_port(const struct web_server *ws)
{
	return ws->outbox ? ws->obx.port : 0;
}

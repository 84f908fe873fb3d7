/* server.c - listeners, accept loop, session threads, privileges. */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib.h>

#include "log.h"
#include "net.h"
#include "peer_limits.h"
#include "pgp.h"
#include "smtp_reply.h"
#include "tls.h"
#include "web_outbox.h"

/* One SMTP listener, its failure worded for the proxy: below port 1024 the
 * message names the fixes (systemd unit, setcap, a higher port). */
static int
listen_smtp(const struct sp_listen *l, char *err, size_t errsz)
{
	struct sp_net_failure why;
	int fd = sp_net_listen(l->host, l->port, true, SERVER_LISTEN_BACKLOG, &why);
	const char *text = fd < 0 ? sp_net_failure_text(&why) : NULL;

	if (fd >= 0)
		return fd;
	if (why.step == SP_NET_SOCKET)
		sp_seterr(err, errsz, "socket: %s", text);
	else if (why.step == SP_NET_LISTEN)
		sp_seterr(err, errsz, "listen %s:%s: %s", l->host, l->port, text);
	else if (why.step == SP_NET_BIND && (why.code == EACCES || why.code == EPERM) &&
	         strtoul(l->port, NULL, 10) < 1024)
		sp_seterr(err, errsz,
		          "cannot listen on %s:%s: %s. Ports below 1024 need privilege: run "
		          "the systemd unit (conf/sealpost.service), or grant it once with "
		          "`setcap cap_net_bind_service=+ep $(command -v sealpost)`, or listen "
		          "on a port above 1023 ([proxy] listen = 127.0.0.1:2587)",
		          l->host, l->port, text);
	else
		sp_seterr(err, errsz, "cannot listen on %s:%s: %s", l->host, l->port, text);
	return -1;
}

struct session_arg {
	struct server *srv;
	int fd;
	bool implicit_tls;
	char ip[64];
};

int
server_init(struct server *srv, const struct sp_config *cfg, char *err, size_t errsz)
{
	unsigned i;

	memset(srv, 0, sizeof *srv);
	srv->cfg = cfg;
	srv->stop_pipe[0] = srv->stop_pipe[1] = -1;
	for (i = 0; i < SP_MAX_LISTEN; i++)
		srv->lfd[i] = -1;
	pthread_mutex_init(&srv->lock, NULL);
	pthread_cond_init(&srv->idle, NULL);
	srv->cap_ended = (size_t)cfg->proxy.max_connections + 1;
	srv->ended = sp_xcalloc(srv->cap_ended, sizeof *srv->ended);
	srv->joining = sp_xcalloc(srv->cap_ended, sizeof *srv->joining);
	srv->ctx.cfg = cfg;
	srv->ctx.hostname = "localhost";
	if (pipe2(srv->stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		sp_seterr(err, errsz, "pipe: %s", strerror(errno));
		return -1;
	}
	if (cfg->proxy.tls_generate) {
		char fp[128];
		if (sp_mkdir_p(cfg->state_dir, 0700, err, errsz) < 0)
			return -1;
		if (tls_ensure_selfsigned(cfg->proxy.tls_cert, cfg->proxy.tls_key, err, errsz) < 0)
			return -1;
		if (tls_cert_fingerprint(cfg->proxy.tls_cert, fp, sizeof fp, err, errsz) == 0)
			sp_log_info("client-side TLS: self-signed %s (SHA-256 %s); accept it once in "
			            "your mail client", cfg->proxy.tls_cert, fp);
	}
	srv->ctx.tls = tls_server_ctx(cfg->proxy.tls_cert, cfg->proxy.tls_key, err, errsz);
	if (srv->ctx.tls == NULL)
		return -1;
	if (cfg->proxy.auth == SP_AUTH_USERS &&
	    sp_users_load(cfg->proxy.users_file, &srv->ctx.users, err, errsz) < 0)
		return -1;
	if (queue_open(cfg->queue.dir, true, &srv->queue, err, errsz) < 0)
		return -1;
	srv->ctx.relay = relay_new(cfg, srv->queue, err, errsz);
	if (srv->ctx.relay == NULL)
		return -1;
	/* The link store: the embedded viewer reads it, the proxy writes it
	 * (unless links are uploaded to a remote viewer). */
	if (cfg->linkserver.mode == SP_LINKSERVER_EMBEDDED ||
	    (cfg->link.base_url[0] && cfg->link.upload_url[0] == '\0')) {
		if (link_store_open(cfg->link.store, &srv->store, err, errsz) != LINK_STORE_OK)
			return -1;
		srv->ctx.store = srv->store;
	}
	if (cfg->linkserver.mode == SP_LINKSERVER_EMBEDDED &&
	    web_server_start(cfg, srv->store, &srv->web, err, errsz) < 0)
		return -1;
	for (i = 0; i < cfg->proxy.n_listen; i++) {
		srv->lfd[i] = listen_smtp(&cfg->proxy.listen[i], err, errsz);
		if (srv->lfd[i] < 0)
			return -1;
		srv->ltls[i] = cfg->proxy.listen[i].implicit_tls;
		srv->n_listen++;
	}
	return 0;
}

static uid_t chown_uid;
static gid_t chown_gid;

static int
chown_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (lchown(path, chown_uid, chown_gid) < 0)
		sp_log_warn("chown %s: %s", path, strerror(errno));
	return 0;
}

int
server_drop_privileges(const struct sp_config *cfg, char *err, size_t errsz)
{
	const char *user = cfg->proxy.user;
	struct passwd *pw;

	if (geteuid() != 0) {
		if (user && *user)
			sp_log_warn("[proxy] user = %s ignored: not started as root", user);
		return 0;
	}
	if (user == NULL || *user == '\0') {
		sp_log_warn("running as root: set [proxy] user so sessions run unprivileged "
		            "(the systemd units use User= instead)");
		return 0;
	}
	pw = getpwnam(user);
	if (pw == NULL) {
		sp_seterr(err, errsz, "[proxy] user: no such user '%s'", user);
		return -1;
	}
	/* What the sessions and the queue runner write must be theirs - and
	 * nothing else: the queue directory holds only sealpost's files; of the
	 * link store, only its own files (and the state directory it lives in
	 * when that is sealpost's). */
	chown_uid = pw->pw_uid;
	chown_gid = pw->pw_gid;
	nftw(cfg->queue.dir, chown_one, 16, FTW_PHYS);
	if (!link_store_is_url(cfg->link.store)) { /* a database has no files here */
		static const char *const suffixes[] = { "", "-wal", "-shm", "-journal" };
		char *dir = g_path_get_dirname(cfg->link.store);
		size_t i;
		for (i = 0; i < SP_ARRAY_LEN(suffixes); i++) {
			char *f = sp_xasprintf("%s%s", cfg->link.store, suffixes[i]);
			if (access(f, F_OK) == 0)
				chown_one(f, NULL, 0, NULL);
			free(f);
		}
		if (strcmp(dir, cfg->state_dir) == 0)
			chown_one(dir, NULL, 0, NULL);
		g_free(dir);
	}
	{
		/* The outbox token, made at start as root: `sealpost outbox`, run as
		 * the service's user, must be able to read it (it stays 0600). */
		char *f = sp_xasprintf("%s/%s", cfg->state_dir, WEB_OUTBOX_TOKEN_FILE);
		if (access(f, F_OK) == 0)
			chown_one(f, NULL, 0, NULL);
		free(f);
	}
	if (setgroups(1, &pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
		sp_seterr(err, errsz, "dropping privileges to %s: %s", user, strerror(errno));
		return -1;
	}
	/* Never able to get root back. */
	if (setuid(0) == 0) {
		sp_seterr(err, errsz, "dropping privileges to %s: still able to become root", user);
		return -1;
	}
	sp_log_info("running as %s (uid %u)", user, (unsigned)pw->pw_uid);
	return 0;
}

static void *
session_thread(void *p)
{
	struct session_arg *a = p;
	struct server *srv = a->srv;

	unsigned left;

	smtp_session_run(&srv->ctx, a->fd, a->implicit_tls);
	peer_disconnect(a->ip);
	pthread_mutex_lock(&srv->lock);
	if (srv->n_ended < srv->cap_ended)
		srv->ended[srv->n_ended++] = pthread_self();
	else
		pthread_detach(pthread_self());    /* cannot happen (see server.h) */
	left = atomic_fetch_sub(&srv->active, 1) - 1;
	/* Logged once the slot is given back (and before shutdown can go on):
	 * from this line on, the next connection is counted without this one. */
	sp_log_debug("smtp %s: session slot released; %u active", a->ip, left);
	free(a);
	if (left == 0)
		pthread_cond_broadcast(&srv->idle);
	pthread_mutex_unlock(&srv->lock);
	return NULL;
}

static void
refuse(int fd, const char *msg)
{
	ssize_t r = send(fd, msg, strlen(msg), MSG_NOSIGNAL | MSG_DONTWAIT);

	(void)r;
	close(fd);
}

/* Join the session threads that have ended (each is at most finishing its
 * exit by now, so this does not wait on a client). */
static void
reap_ended(struct server *srv)
{
	size_t n, i;

	pthread_mutex_lock(&srv->lock);
	n = srv->n_ended;
	memcpy(srv->joining, srv->ended, n * sizeof *srv->ended);
	srv->n_ended = 0;
	pthread_mutex_unlock(&srv->lock);
	for (i = 0; i < n; i++)
		pthread_join(srv->joining[i], NULL);
}

static void
accept_one(struct server *srv, unsigned i, pthread_attr_t *attr)
{
	struct session_arg *a;
	pthread_t tid;
	int fd;

	reap_ended(srv);
	fd = accept4(srv->lfd[i], NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0) {
		if (errno == EMFILE || errno == ENFILE) {
			sp_log_error("accept: %s; raise the file limit or lower max_connections", strerror(errno));
			usleep(100000);
		}
		return;
	}
	if (atomic_load(&srv->active) >= srv->cfg->proxy.max_connections) {
		char peer[64];
		sp_net_peer_name(fd, peer, sizeof peer);
		sp_log_warn("smtp %s: refused: %llu connections already (max_connections)", peer,
		            (unsigned long long)srv->cfg->proxy.max_connections);
		refuse(fd, "421 " SMTP_ENH_SECURITY_TEMP " localhost Too many connections; try again later\r\n");
		return;
	}
	a = sp_xcalloc(1, sizeof *a);
	a->srv = srv;
	a->fd = fd;
	a->implicit_tls = srv->ltls[i];
	if (!peer_connect(fd, (unsigned)srv->cfg->proxy.max_connections_per_ip, a->ip)) {
		sp_log_warn("smtp %s: refused: %llu connections from this address already "
		            "(max_connections_per_ip)", a->ip,
		            (unsigned long long)srv->cfg->proxy.max_connections_per_ip);
		refuse(fd, "421 " SMTP_ENH_SECURITY_TEMP
		           " localhost Too many connections from your address; try again later\r\n");
		free(a);
		return;
	}
	atomic_fetch_add(&srv->active, 1);
	if (pthread_create(&tid, attr, session_thread, a) != 0) {
		atomic_fetch_sub(&srv->active, 1);
		peer_disconnect(a->ip);
		sp_log_error("cannot start a session thread: %s", strerror(errno));
		refuse(fd, "421 " SMTP_ENH_NOT_ACCEPTING_TEMP " localhost Service temporarily unavailable\r\n");
		free(a);
	}
}

int
server_run(struct server *srv)
{
	struct pollfd pfd[SP_MAX_LISTEN + 1];
	pthread_attr_t attr;
	struct timespec ts;
	unsigned i;

	{
		char err[SP_ERRLEN];
		if (queue_runner_start(srv->queue, srv->ctx.relay, srv->cfg, &srv->runner, err, sizeof err) < 0) {
			sp_log_error("%s", err);
			return 1;
		}
		/* Secure replies wait in the store the embedded viewer writes, or
		 * on the remote viewer links are uploaded to. */
		const struct sp_config *c = srv->cfg;
		bool embedded = srv->store && c->linkserver.mode == SP_LINKSERVER_EMBEDDED;
		bool remote = c->link.upload_url[0] != '\0';
		if ((embedded || remote) &&
		    reply_collector_start(embedded ? srv->store : NULL, c->link.upload_url,
		                          c->link.upload_token_file, srv->queue, &srv->replies, err,
		                          sizeof err) < 0) {
			sp_log_error("%s", err);
			return 1;
		}
	}
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_JOINABLE);
	pthread_attr_setstacksize(&attr, SERVER_THREAD_STACK);
	for (i = 0; i < srv->n_listen; i++) {
		char *l = sp_xasprintf("%s:%s%s", srv->cfg->proxy.listen[i].host,
		                       srv->cfg->proxy.listen[i].port, srv->ltls[i] ? " (implicit TLS)" : "");
		sp_log_info("listening on %s", l);
		free(l);
	}
	for (;;) {
		for (i = 0; i < srv->n_listen; i++) {
			pfd[i].fd = srv->lfd[i];
			pfd[i].events = POLLIN;
			pfd[i].revents = 0;
		}
		pfd[i].fd = srv->stop_pipe[0];
		pfd[i].events = POLLIN;
		pfd[i].revents = 0;
		if (poll(pfd, srv->n_listen + 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			sp_log_error("poll: %s", strerror(errno));
			break;
		}
		if (pfd[srv->n_listen].revents)
			break;
		for (i = 0; i < srv->n_listen; i++)
			if (pfd[i].revents & POLLIN)
				accept_one(srv, i, &attr);
	}
	pthread_attr_destroy(&attr);
	for (i = 0; i < srv->n_listen; i++) {
		close(srv->lfd[i]);
		srv->lfd[i] = -1;
	}
	sp_log_info("shutting down; %u session(s) active", atomic_load(&srv->active));
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += SERVER_SHUTDOWN_GRACE_S;
	pthread_mutex_lock(&srv->lock);
	while (atomic_load(&srv->active) > 0)
		if (pthread_cond_timedwait(&srv->idle, &srv->lock, &ts) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&srv->lock);
	/* Every session that ended is joined: none is still tearing down its
	 * thread-local state (OpenSSL's) while the process exits. */
	reap_ended(srv);
	reply_collector_stop(srv->replies);
	srv->replies = NULL;
	queue_runner_stop(srv->runner);
	srv->runner = NULL;
	return atomic_load(&srv->active) == 0 ? 0 : 1;
}

void
server_stop(struct server *srv)
{
	ssize_t r = write(srv->stop_pipe[1], "x", 1);

	(void)r;
}

void
server_free(struct server *srv)
{
	unsigned i;

	/* Sessions still running (grace period over) keep their context: the
	 * process is about to exit; freeing under them would be a use-after-free. */
	if (atomic_load(&srv->active) > 0)
		return;
	for (i = 0; i < SP_MAX_LISTEN; i++)
		if (srv->lfd[i] >= 0)
			close(srv->lfd[i]);
	if (srv->stop_pipe[0] >= 0)
		close(srv->stop_pipe[0]);
	if (srv->stop_pipe[1] >= 0)
		close(srv->stop_pipe[1]);
	web_server_stop(srv->web);
	link_store_close(srv->store);
	web_outbox_clear();
	if (srv->ctx.tls)
		SSL_CTX_free(srv->ctx.tls);
	sp_users_free(srv->ctx.users);
	relay_free(srv->ctx.relay);
	queue_close(srv->queue);
	sp_pgp_pool_clear();
	pthread_mutex_destroy(&srv->lock);
	pthread_cond_destroy(&srv->idle);
	free(srv->ended);
	free(srv->joining);
}

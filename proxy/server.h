/* server.h - the proxy process: listeners, the accept loop, one thread per
 * client session (bounded by max_connections), privilege drop, shutdown.
 */
#ifndef SP_SERVER_H
#define SP_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "config.h"
#include "queue.h"
#include "queue_runner.h"
#include "reply_deliver.h"
#include "smtp_server.h"
#include "web_server.h"

/* Stack for each session thread: sessions keep big buffers on the heap, and
 * 1,000 idle clients should not reserve 8 MiB each. */
#define SERVER_THREAD_STACK (1024 * 1024)
/* Pending SMTP connections the kernel may queue for us before accept(). */
#define SERVER_LISTEN_BACKLOG 511
/* On SIGTERM, sessions in flight get this long to finish their transaction. */
#define SERVER_SHUTDOWN_GRACE_S 10

struct server {
	const struct sp_config *cfg;
	struct smtp_server_ctx ctx;
	int lfd[SP_MAX_LISTEN];
	bool ltls[SP_MAX_LISTEN];
	unsigned n_listen;
	struct queue *queue;
	struct queue_runner *runner;
	struct reply_collector *replies; /* secure replies out of the store */
	struct link_store *store;
	struct web_server *web;
	int stop_pipe[2];
	atomic_uint active;
	pthread_mutex_t lock;
	pthread_cond_t idle;
	/* Session threads that have ended but are not joined yet (under lock).
	 * Joining, not detaching, is what guarantees a thread has also run its
	 * thread-local destructors (OpenSSL's per-thread state) before exit. */
	pthread_t *ended, *joining;    /* max_connections each: no more can end
	                                * between two reaps than were running */
	size_t n_ended, cap_ended;
};

/* Load TLS material (generating it on first run), users, upstream password;
 * bind every listener.  Everything privileged happens here.  Returns 0, or -1
 * with err set. */
int server_init(struct server *srv, const struct sp_config *cfg, char *err, size_t errsz);
/* setgid/setgroups/setuid to [proxy] user, after handing it the state
 * directories (queue, store) it must write.  Returns 0, or -1 with err set. */
int server_drop_privileges(const struct sp_config *cfg, char *err, size_t errsz);
/* Accept until server_stop(); then wait (bounded) for sessions to end.
 * Returns an exit status (cli/cli.h): 0, or 1 when the queue runner could
 * not start (logged: the caller is `sealpost run`, whose errors go to the log)
 * or sessions were still running when the wait ended. */
int server_run(struct server *srv);
/* Async-signal-safe. */
void server_stop(struct server *srv);
void server_free(struct server *srv);

#endif

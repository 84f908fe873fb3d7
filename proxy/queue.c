/* queue.c - the durable outbound queue (see queue.h). */
#include "queue.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define QUEUE_MAGIC "sealpost-queue 1"

struct queue {
	char *dir;
	int dirfd;
	int lockfd;      /* <dir>/.lock, flock'd exclusively by whoever owns the queue */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool kicked;
};

static int
fsync_dir(int dfd, const char *sub)
{
	int fd = openat(dfd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r;

	if (fd < 0)
		return -1;
	r = fsync(fd);
	close(fd);
	return r;
}

static bool
valid_id(const char *id)
{
	size_t n = strspn(id, "0123456789abcdef");

	return n == 32 && id[n] == '\0';
}

static void
remove_leftovers(struct queue *q)
{
	DIR *d;
	struct dirent *de;
	int tfd = openat(q->dirfd, "tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	/* tmp/: writes that never completed.  Only called with the queue's
	 * exclusive lock: nobody else is writing. */
	if (tfd >= 0 && (d = fdopendir(tfd)) != NULL) {
		while ((de = readdir(d)) != NULL)
			if (de->d_name[0] != '.')
				unlinkat(dirfd(d), de->d_name, 0);
		closedir(d);
	} else if (tfd >= 0) {
		close(tfd);
	}
	/* msg/ without env/: an entry removed half-way. */
	tfd = openat(q->dirfd, "msg", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (tfd >= 0 && (d = fdopendir(tfd)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			char path[300];
			if (!valid_id(de->d_name))
				continue;
			snprintf(path, sizeof path, "env/%s", de->d_name);
			if (faccessat(q->dirfd, path, F_OK, 0) != 0 && errno == ENOENT)
				unlinkat(dirfd(d), de->d_name, 0);
		}
		closedir(d);
	} else if (tfd >= 0) {
		close(tfd);
	}
}

int
queue_open(const char *dir, bool owner, struct queue **out, char *err, size_t errsz)
{
	static const char *const subs[] = { "tmp", "msg", "env" };
	struct queue *q;
	size_t i;

	if (sp_mkdir_p(dir, 0700, err, errsz) < 0)
		return -1;
	q = sp_xcalloc(1, sizeof *q);
	q->lockfd = -1;
	q->dir = sp_xstrdup(dir);
	q->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (q->dirfd < 0) {
		sp_seterr(err, errsz, "queue %s: %s", dir, strerror(errno));
		free(q->dir);
		free(q);
		return -1;
	}
	for (i = 0; i < SP_ARRAY_LEN(subs); i++) {
		if (mkdirat(q->dirfd, subs[i], 0700) < 0 && errno != EEXIST) {
			sp_seterr(err, errsz, "queue %s/%s: %s", dir, subs[i], strerror(errno));
			close(q->dirfd);
			free(q->dir);
			free(q);
			return -1;
		}
	}
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->cond, NULL);
	/* The proxy owns its queue for its whole life; `sealpost queue` owns it
	 * only when no proxy runs.  Only the owner removes leftovers: anybody
	 * else might delete a write in progress. */
	q->lockfd = openat(q->dirfd, ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (q->lockfd >= 0) {
		int64_t until = sp_now_ms() + (owner ? QUEUE_OWNER_WAIT_MS : 0);
		bool locked;
		while (!(locked = flock(q->lockfd, LOCK_EX | LOCK_NB) == 0) && sp_now_ms() < until)
			usleep(100000);
		if (locked) {
			remove_leftovers(q);
		} else if (owner) {
			sp_seterr(err, errsz, "queue %s: in use by another sealpost process", dir);
			queue_close(q);
			return -1;
		} else {
			close(q->lockfd);
			q->lockfd = -1;
		}
	} else if (owner) {
		/* A queue that cannot be written still lets mail through that need
		 * not wait; what must be queued then gets 4xx (relay_deliver). */
		sp_log_warn("queue %s/.lock: %s; the queue cannot be written", dir, strerror(errno));
	}
	*out = q;
	return 0;
}

void
queue_close(struct queue *q)
{
	if (q == NULL)
		return;
	if (q->lockfd >= 0)
		close(q->lockfd);
	close(q->dirfd);
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->cond);
	free(q->dir);
	free(q);
}

const char *
queue_dir(const struct queue *q)
{
	return q->dir;
}

void
queue_entry_clear(struct queue_entry *e)
{
	size_t i;

	free(e->mail_from);
	free(e->user);
	for (i = 0; i < e->n_rcpts; i++)
		free(e->rcpts[i]);
	free(e->rcpts);
	memset(e, 0, sizeof *e);
}

void
queue_entries_free(struct queue_entry *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		queue_entry_clear(&v[i]);
	free(v);
}

int64_t
queue_backoff(unsigned attempts, int64_t min, int64_t max)
{
	int64_t b = min;

	while (attempts-- > 1 && b < max)
		b *= 2;
	return b < max ? b : max;
}

/* One line values must not break the line format. */
static void
put_line(struct sp_buf *b, const char *key, const char *v)
{
	char safe[512];

	sp_sanitize(v, strlen(v), safe, sizeof safe);
	sp_buf_printf(b, "%s %s\n", key, safe);
}

static void
format_env(const struct queue_entry *e, struct sp_buf *b)
{
	size_t i;

	sp_buf_printf(b, "%s\n", QUEUE_MAGIC);
	put_line(b, "id", e->id);
	sp_buf_printf(b, "created %" PRId64 "\nnext %" PRId64 "\nattempts %u\n", e->created,
	              e->next_attempt, e->attempts);
	put_line(b, "form", e->form);
	sp_buf_printf(b, "eightbit %d\nsmtputf8 %d\n", e->eightbit, e->smtputf8);
	sp_buf_printf(b, "from <%s>\n", e->mail_from);
	put_line(b, "user", e->user[0] ? e->user : "-");
	put_line(b, "txn", e->txn[0] ? e->txn : "-");
	for (i = 0; i < e->n_rcpts; i++)
		sp_buf_printf(b, "rcpt <%s>\n", e->rcpts[i]);
	if (e->last_error[0])
		put_line(b, "error", e->last_error);
}

static int
parse_env(const char *id, const char *text, struct queue_entry *e)
{
	char *copy = sp_xstrdup(text), *line, *next;
	bool magic = false;
	int rv = -1;

	memset(e, 0, sizeof *e);
	sp_strlcpy(e->id, id, sizeof e->id);
	for (line = copy; line && *line; line = next) {
		char *v;
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (!magic) {
			if (strcmp(line, QUEUE_MAGIC) != 0)
				goto out;
			magic = true;
			continue;
		}
		v = strchr(line, ' ');
		if (v == NULL)
			goto out;
		*v++ = '\0';
		if (strcmp(line, "created") == 0)
			e->created = strtoll(v, NULL, 10);
		else if (strcmp(line, "next") == 0)
			e->next_attempt = strtoll(v, NULL, 10);
		else if (strcmp(line, "attempts") == 0)
			e->attempts = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(line, "form") == 0)
			sp_strlcpy(e->form, v, sizeof e->form);
		else if (strcmp(line, "eightbit") == 0)
			e->eightbit = *v == '1';
		else if (strcmp(line, "smtputf8") == 0)
			e->smtputf8 = *v == '1';
		else if (strcmp(line, "from") == 0 || strcmp(line, "rcpt") == 0) {
			size_t n = strlen(v);
			char *a;
			if (n < 2 || v[0] != '<' || v[n - 1] != '>')
				goto out;
			a = sp_xstrndup(v + 1, n - 2);
			if (line[0] == 'f') {
				free(e->mail_from);
				e->mail_from = a;
			} else {
				e->rcpts = realloc(e->rcpts, (e->n_rcpts + 1) * sizeof *e->rcpts);
				if (e->rcpts == NULL)
					abort();
				e->rcpts[e->n_rcpts++] = a;
			}
		} else if (strcmp(line, "user") == 0) {
			free(e->user);
			e->user = sp_xstrdup(strcmp(v, "-") == 0 ? "" : v);
		} else if (strcmp(line, "txn") == 0) {
			sp_strlcpy(e->txn, strcmp(v, "-") == 0 ? "" : v, sizeof e->txn);
		} else if (strcmp(line, "error") == 0) {
			sp_strlcpy(e->last_error, v, sizeof e->last_error);
		}
	}
	if (!magic || e->mail_from == NULL || e->n_rcpts == 0)
		goto out;
	if (e->user == NULL)
		e->user = sp_xstrdup("");
	rv = 0;
out:
	free(copy);
	if (rv < 0)
		queue_entry_clear(e);
	return rv;
}

/* Write body to tmp/<name>, fsync, rename to <sub>/<id>. */
static int
write_durable(struct queue *q, const char *sub, const char *id, const struct sp_blob *body,
              char *err, size_t errsz)
{
	char tmp[80], dst[80], *chunk = NULL;
	size_t off = 0;
	int fd;

	snprintf(tmp, sizeof tmp, "tmp/%s.%s", id, sub);
	snprintf(dst, sizeof dst, "%s/%s", sub, id);
	fd = openat(q->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		sp_seterr(err, errsz, "queue %s/%s: %s", q->dir, tmp, strerror(errno));
		return -1;
	}
	chunk = sp_xmalloc(QUEUE_COPY_CHUNK);
	while (off < body->len) {
		ssize_t n = sp_blob_read(body, off, chunk, QUEUE_COPY_CHUNK), w = 0;
		if (n <= 0) {
			sp_seterr(err, errsz, "queue %s/%s: reading the copy failed", q->dir, tmp);
			goto fail;
		}
		while (w < n) {
			ssize_t k = write(fd, chunk + w, (size_t)(n - w));
			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0) {
				sp_seterr(err, errsz, "queue %s/%s: %s", q->dir, tmp, k < 0 ? strerror(errno) : "short write");
				goto fail;
			}
			w += k;
		}
		off += (size_t)n;
	}
	if (fsync(fd) < 0) {
		sp_seterr(err, errsz, "queue %s/%s: fsync: %s", q->dir, tmp, strerror(errno));
		goto fail;
	}
	close(fd);
	free(chunk);
	if (renameat(q->dirfd, tmp, q->dirfd, dst) < 0) {
		sp_seterr(err, errsz, "queue %s/%s: %s", q->dir, dst, strerror(errno));
		unlinkat(q->dirfd, tmp, 0);
		return -1;
	}
	if (fsync_dir(q->dirfd, sub) < 0) {
		sp_seterr(err, errsz, "queue %s/%s: fsync: %s", q->dir, sub, strerror(errno));
		return -1;
	}
	return 0;
fail:
	close(fd);
	free(chunk);
	unlinkat(q->dirfd, tmp, 0);
	return -1;
}

static int
write_durable_buf(struct queue *q, const char *sub, const char *id, const struct sp_buf *b,
                  char *err, size_t errsz)
{
	struct sp_span span = { b->data, b->len };
	struct sp_blob blob = { .spans = &span, .n_spans = 1, .fd = -1, .len = b->len };

	return write_durable(q, sub, id, &blob, err, errsz);
}

int
queue_add(struct queue *q, struct queue_entry *e, const struct sp_blob *body, char *err, size_t errsz)
{
	struct sp_buf env;
	int rv;

	sp_random_id(e->id);
	if (e->user == NULL)
		e->user = sp_xstrdup("");
	sp_buf_init(&env, QUEUE_ENV_MAX);
	format_env(e, &env);
	/* The copy first: an envelope never points at a missing copy. */
	rv = write_durable(q, "msg", e->id, body, err, errsz);
	if (rv == 0)
		rv = write_durable_buf(q, "env", e->id, &env, err, errsz);
	if (rv < 0) {
		char p[80];
		snprintf(p, sizeof p, "msg/%s", e->id);
		unlinkat(q->dirfd, p, 0);
	}
	sp_buf_free(&env);
	if (rv == 0)
		queue_kick(q);
	return rv;
}

int
queue_update(struct queue *q, const struct queue_entry *e, char *err, size_t errsz)
{
	struct sp_buf env;
	int rv;

	sp_buf_init(&env, QUEUE_ENV_MAX);
	format_env(e, &env);
	rv = write_durable_buf(q, "env", e->id, &env, err, errsz);
	sp_buf_free(&env);
	return rv;
}

int
queue_remove(struct queue *q, const char *id, char *err, size_t errsz)
{
	char p[80];

	if (!valid_id(id)) {
		sp_seterr(err, errsz, "not a queue id: %s", id);
		return -1;
	}
	/* The envelope first: from then on the entry does not exist. */
	snprintf(p, sizeof p, "env/%s", id);
	if (unlinkat(q->dirfd, p, 0) < 0) {
		sp_seterr(err, errsz, "queue entry %s: %s", id, strerror(errno));
		return -1;
	}
	fsync_dir(q->dirfd, "env");
	snprintf(p, sizeof p, "msg/%s", id);
	unlinkat(q->dirfd, p, 0);
	return 0;
}

/* Relative to the queue's directory fd: no path length to get wrong. */
static int
read_env(struct queue *q, const char *id, struct queue_entry *e)
{
	struct sp_buf b;
	char rel[80], chunk[4096];
	ssize_t n;
	int fd, rv = -1;

	snprintf(rel, sizeof rel, "env/%s", id);
	fd = openat(q->dirfd, rel, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT)
			sp_log_warn("queue %s/%s: %s", q->dir, rel, strerror(errno));
		return -1;
	}
	sp_buf_init(&b, QUEUE_ENV_MAX);
	while ((n = read(fd, chunk, sizeof chunk)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || sp_buf_append(&b, chunk, (size_t)n) < 0) {
			sp_log_warn("queue %s/%s: cannot read it (%s)", q->dir, rel, n < 0 ? strerror(errno) : "too big");
			goto out;
		}
	}
	if (b.data == NULL)
		sp_buf_append(&b, "", 0);
	rv = parse_env(id, b.data, e);
	if (rv < 0)
		sp_log_warn("queue %s/%s: damaged envelope; leaving it for inspection", q->dir, rel);
out:
	close(fd);
	sp_buf_free(&b);
	return rv;
}

static int
cmp_created(const void *a, const void *b)
{
	const struct queue_entry *x = a, *y = b;

	return x->created < y->created ? -1 : x->created > y->created;
}

int
queue_list(struct queue *q, struct queue_entry **out, size_t *n, char *err, size_t errsz)
{
	int fd = openat(q->dirfd, "env", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct queue_entry *v = NULL;
	struct dirent *de;
	size_t cnt = 0;
	DIR *d;

	*out = NULL;
	*n = 0;
	if (fd < 0 || (d = fdopendir(fd)) == NULL) {
		sp_seterr(err, errsz, "queue %s/env: %s", q->dir, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		struct queue_entry e;
		struct stat st;
		char p[300];
		if (!valid_id(de->d_name) || read_env(q, de->d_name, &e) < 0)
			continue;
		snprintf(p, sizeof p, "msg/%s", de->d_name);
		if (fstatat(q->dirfd, p, &st, 0) == 0)
			e.size = (size_t)st.st_size;
		v = realloc(v, (cnt + 1) * sizeof *v);
		if (v == NULL)
			abort();
		v[cnt++] = e;
	}
	closedir(d);
	if (cnt)
		qsort(v, cnt, sizeof *v, cmp_created);
	*out = v;
	*n = cnt;
	return 0;
}

int
queue_lock(struct queue *q, const char *id, struct queue_entry *e, int *lockfd)
{
	char p[80];
	int fd;

	if (!valid_id(id))
		return -1;
	snprintf(p, sizeof p, "env/%s", id);
	fd = openat(q->dirfd, p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		close(fd);
		return -1;
	}
	/* Gone (delivered, deleted) while we waited for the lock? */
	if (faccessat(q->dirfd, p, F_OK, 0) != 0 || read_env(q, id, e) < 0) {
		close(fd);
		return -1;
	}
	*lockfd = fd;
	return 0;
}

void
queue_unlock(int lockfd)
{
	if (lockfd >= 0)
		close(lockfd);
}

int
queue_open_data(struct queue *q, const char *id, int *fd, size_t *len, char *err, size_t errsz)
{
	char p[80];
	struct stat st;

	snprintf(p, sizeof p, "msg/%s", id);
	*fd = openat(q->dirfd, p, O_RDONLY | O_CLOEXEC);
	if (*fd < 0 || fstat(*fd, &st) < 0) {
		sp_seterr(err, errsz, "queue %s/%s: %s", q->dir, p, strerror(errno));
		if (*fd >= 0)
			close(*fd);
		*fd = -1;
		return -1;
	}
	*len = (size_t)st.st_size;
	return 0;
}

void
queue_kick(struct queue *q)
{
	pthread_mutex_lock(&q->lock);
	q->kicked = true;
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
}

void
queue_wait(struct queue *q, int64_t timeout_ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (timeout_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&q->lock);
	while (!q->kicked)
		if (pthread_cond_timedwait(&q->cond, &q->lock, &ts) != 0)
			break;
	q->kicked = false;
	pthread_mutex_unlock(&q->lock);
}

/* web_outbox.c - in-memory list of recent link messages (see web_outbox.h). */
#include "web_outbox.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "util.h"

static pthread_mutex_t outbox_lock = PTHREAD_MUTEX_INITIALIZER;
static struct web_outbox_entry *outbox[WEB_OUTBOX_MAX]; /* [0] oldest */
static size_t outbox_n;

static char *
dup_opt(const char *s)
{
	return s ? sp_xstrdup(s) : NULL;
}

static void
entry_free(struct web_outbox_entry *e)
{
	size_t i;

	if (e == NULL)
		return;
	for (i = 0; i < e->n_rcpts; i++) {
		struct web_outbox_rcpt *r = &e->rcpts[i];
		sp_free_secret((char *)r->address);
		sp_free_secret((char *)r->form);
		sp_free_secret((char *)r->detail);
		sp_free_secret((char *)r->link_id);
		sp_free_secret((char *)r->url);
		sp_free_secret((char *)r->password);
	}
	free(e->rcpts);
	sp_free_secret(e->from);
	sp_free_secret(e->subject);
	sodium_memzero(e, sizeof *e);
	free(e);
}

static void
remove_at(size_t i)
{
	entry_free(outbox[i]);
	memmove(&outbox[i], &outbox[i + 1], (outbox_n - i - 1) * sizeof outbox[0]);
	outbox[--outbox_n] = NULL;
}

void
web_outbox_add(const char *from, const char *subject, int64_t sent, int64_t expires,
               const struct web_outbox_rcpt *r, size_t n)
{
	struct web_outbox_entry *e = sp_xcalloc(1, sizeof *e);
	size_t i, keep = n < WEB_OUTBOX_MAX_RCPTS ? n : WEB_OUTBOX_MAX_RCPTS;

	e->from = sp_xstrdup(from ? from : "");
	e->subject = dup_opt(subject);
	e->sent = sent;
	e->expires = expires;
	e->rcpts = sp_xcalloc(keep ? keep : 1, sizeof *e->rcpts);
	e->n_rcpts = keep;
	e->n_dropped = n - keep;
	for (i = 0; i < keep; i++) {
		e->rcpts[i].address = sp_xstrdup(r[i].address ? r[i].address : "");
		e->rcpts[i].form = sp_xstrdup(r[i].form ? r[i].form : "");
		e->rcpts[i].detail = dup_opt(r[i].detail);
		e->rcpts[i].link_id = dup_opt(r[i].link_id);
		e->rcpts[i].url = dup_opt(r[i].url);
		e->rcpts[i].password = dup_opt(r[i].password);
	}
	pthread_mutex_lock(&outbox_lock);
	if (outbox_n == WEB_OUTBOX_MAX)
		remove_at(0);
	outbox[outbox_n++] = e;
	pthread_mutex_unlock(&outbox_lock);
}

void
web_outbox_foreach(void (*fn)(const struct web_outbox_entry *e, void *arg), void *arg)
{
	size_t i;

	pthread_mutex_lock(&outbox_lock);
	for (i = outbox_n; i-- > 0;)
		fn(outbox[i], arg);
	pthread_mutex_unlock(&outbox_lock);
}

void
web_outbox_expire(int64_t now)
{
	size_t i;

	pthread_mutex_lock(&outbox_lock);
	for (i = outbox_n; i-- > 0;)
		if (outbox[i]->expires <= now)
			remove_at(i);
	pthread_mutex_unlock(&outbox_lock);
}

void
web_outbox_clear(void)
{
	pthread_mutex_lock(&outbox_lock);
	while (outbox_n)
		remove_at(outbox_n - 1);
	pthread_mutex_unlock(&outbox_lock);
}

size_t
web_outbox_count(void)
{
	size_t n;

	pthread_mutex_lock(&outbox_lock);
	n = outbox_n;
	pthread_mutex_unlock(&outbox_lock);
	return n;
}

/* ---- the capability token ---- */

static bool
token_valid(const char *t, size_t n)
{
	size_t i;

	if (n != WEB_OUTBOX_TOKEN_HEXLEN)
		return false;
	for (i = 0; i < n; i++)
		if (!((t[i] >= '0' && t[i] <= '9') || (t[i] >= 'a' && t[i] <= 'f')))
			return false;
	return true;
}

/* Write a new token to a temporary name and link it into place: a reader never
 * sees a half-written file, and of two starting processes the first wins. */
static int
token_create(const char *dir, const char *path, char *err, size_t errsz)
{
	unsigned char raw[WEB_OUTBOX_TOKEN_BYTES];
	char hex[WEB_OUTBOX_TOKEN_HEXLEN + 2], id[33];
	char *tmp;
	int fd, rv = -1;
	size_t len;

	sp_random_id(id);
	tmp = sp_xasprintf("%s/.%s.%s", dir, WEB_OUTBOX_TOKEN_FILE, id);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		sp_seterr(err, errsz, "outbox token: cannot create %s: %s", tmp, strerror(errno));
		goto out;
	}
	randombytes_buf(raw, sizeof raw);
	sodium_bin2hex(hex, sizeof hex, raw, sizeof raw);
	sodium_memzero(raw, sizeof raw);
	len = strlen(hex);
	hex[len++] = '\n';
	if (write(fd, hex, len) != (ssize_t)len || fsync(fd) < 0) {
		sp_seterr(err, errsz, "outbox token: cannot write %s: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		goto out;
	}
	close(fd);
	if (link(tmp, path) < 0 && errno != EEXIST) {
		sp_seterr(err, errsz, "outbox token: cannot create %s: %s", path, strerror(errno));
		unlink(tmp);
		goto out;
	}
	unlink(tmp);
	rv = 0;
out:
	sodium_memzero(hex, sizeof hex);
	free(tmp);
	return rv;
}

int
web_outbox_token(const char *state_dir, bool create, char out[WEB_OUTBOX_TOKEN_HEXLEN + 1],
                 char *err, size_t errsz)
{
	char buf[WEB_OUTBOX_TOKEN_HEXLEN + 8];
	char *path = sp_xasprintf("%s/%s", state_dir, WEB_OUTBOX_TOKEN_FILE);
	struct stat st;
	ssize_t n;
	int fd = -1, rv = -1;

	out[0] = '\0';
	if (create) {
		if (sp_mkdir_p(state_dir, 0700, err, errsz) < 0)
			goto out;
		if (access(path, F_OK) < 0 && token_create(state_dir, path, err, errsz) < 0)
			goto out;
	}
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		sp_seterr(err, errsz, "outbox token %s: %s%s", path, strerror(errno),
		          errno == ENOENT ? " (it is made when sealpost starts with [linkserver] "
		          "outbox = yes)" : "");
		goto out;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		sp_seterr(err, errsz, "outbox token %s: not a regular file", path);
		goto out;
	}
	if ((st.st_mode & 077) != 0) {
		sp_seterr(err, errsz, "outbox token %s: readable by others (mode %03o); "
		          "chmod 600 it, or delete it for a new one", path,
		          (unsigned)(st.st_mode & 0777));
		goto out;
	}
	n = read(fd, buf, sizeof buf - 1);
	if (n < 0) {
		sp_seterr(err, errsz, "outbox token %s: %s", path, strerror(errno));
		goto out;
	}
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	if (!token_valid(buf, (size_t)n)) {
		sp_seterr(err, errsz, "outbox token %s: not %d lowercase hex digits; delete it and "
		          "restart sealpost for a new one", path, WEB_OUTBOX_TOKEN_HEXLEN);
		goto out;
	}
	memcpy(out, buf, WEB_OUTBOX_TOKEN_HEXLEN);
	out[WEB_OUTBOX_TOKEN_HEXLEN] = '\0';
	rv = 0;
out:
	sodium_memzero(buf, sizeof buf);
	if (fd >= 0)
		close(fd);
	free(path);
	return rv;
}

char *
web_outbox_url(const struct sp_listen *l, const char *token)
{
	bool v6 = strchr(l->host, ':') != NULL;

	return sp_xasprintf("http://%s%s%s:%s/outbox/%s", v6 ? "[" : "", l->host, v6 ? "]" : "",
	                    l->port, token);
}

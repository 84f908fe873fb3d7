/* smtp_auth.c - SASL decoding and the users file. */
#include "smtp_auth.h"

#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "util.h"

struct sp_user {
	char *name;
	char *hash;
};

struct sp_users {
	struct sp_user *v;
	size_t n;
	char dummy[crypto_pwhash_STRBYTES];   /* verified against when the user is unknown */
};

static sem_t auth_sem;
static pthread_once_t auth_sem_once = PTHREAD_ONCE_INIT;

static void
auth_sem_init(void)
{
	sem_init(&auth_sem, 0, SMTP_AUTH_MAX_CONCURRENT);
}

int
sp_users_hash(const char *pass, char *out, size_t outsz, char *err, size_t errsz)
{
	if (outsz < crypto_pwhash_STRBYTES) {
		sp_seterr(err, errsz, "buffer too small");
		return -1;
	}
	/* INTERACTIVE: ~64 MiB and well under a second here, acceptable per login. */
	if (crypto_pwhash_str(out, pass, strlen(pass), crypto_pwhash_OPSLIMIT_INTERACTIVE,
	                      crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
		sp_seterr(err, errsz, "out of memory hashing the password");
		return -1;
	}
	return 0;
}

int
sp_users_load(const char *path, struct sp_users **out, char *err, size_t errsz)
{
	struct sp_users *u = sp_xcalloc(1, sizeof *u);
	char *data = NULL, *line, *next, dpass[33];
	size_t len, lineno = 0;
	int rv = -1;

	pthread_once(&auth_sem_once, auth_sem_init);
	if (sp_read_file(path, SMTP_USERS_FILE_MAX, &data, &len, err, errsz) < 0)
		goto out;
	for (line = data; line && *line; line = next) {
		char *colon, *p;
		lineno++;
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		p = sp_strstrip(line);
		if (*p == '\0' || *p == '#')
			continue;
		colon = strchr(p, ':');
		if (colon == NULL || colon == p) {
			sp_seterr(err, errsz, "%s:%zu: expected user:$argon2id$...", path, lineno);
			goto out;
		}
		*colon = '\0';
		if (strncmp(colon + 1, "$argon2id$", 10) != 0 &&
		    strncmp(colon + 1, "$argon2i$", 9) != 0) {
			sp_seterr(err, errsz, "%s:%zu: user %s: the hash is not an $argon2id$ string "
			          "(make one with `sealpost passwd`)", path, lineno, p);
			goto out;
		}
		if (strlen(colon + 1) >= crypto_pwhash_STRBYTES) {
			sp_seterr(err, errsz, "%s:%zu: user %s: hash too long", path, lineno, p);
			goto out;
		}
		u->v = realloc(u->v, (u->n + 1) * sizeof *u->v);
		if (u->v == NULL)
			abort();
		u->v[u->n].name = sp_xstrdup(p);
		u->v[u->n].hash = sp_xstrdup(colon + 1);
		u->n++;
	}
	sp_random_id(dpass);
	if (sp_users_hash(dpass, u->dummy, sizeof u->dummy, err, errsz) < 0)
		goto out;
	*out = u;
	u = NULL;
	rv = 0;
out:
	if (data) {
		sodium_memzero(data, len);
		free(data);
	}
	sp_users_free(u);
	return rv;
}

void
sp_users_free(struct sp_users *u)
{
	size_t i;

	if (u == NULL)
		return;
	for (i = 0; i < u->n; i++) {
		free(u->v[i].name);
		sp_free_secret(u->v[i].hash);
	}
	free(u->v);
	free(u);
}

bool
sp_users_verify(struct sp_users *u, const char *user, const char *pass)
{
	const char *hash = u->dummy;
	bool found = false;
	size_t i;
	int r;

	for (i = 0; i < u->n; i++) {
		if (strcmp(u->v[i].name, user) == 0) {
			hash = u->v[i].hash;
			found = true;
			break;
		}
	}
	while (sem_wait(&auth_sem) != 0)
		;
	r = crypto_pwhash_str_verify(hash, pass, strlen(pass));
	sem_post(&auth_sem);
	return found && r == 0;
}

int
sasl_b64_decode(const char *in, char **out, size_t *outlen)
{
	size_t inlen = strlen(in), max = inlen / 4 * 3 + 3, n = 0;
	char *buf;

	if (strcmp(in, "=") == 0)
		inlen = 0;
	buf = sodium_malloc(max + 1);
	if (buf == NULL)
		return -1;
	if (inlen && (!sp_b64_alphabet_ok(in, inlen, false, true) ||
	              sodium_base642bin((unsigned char *)buf, max, in, inlen, NULL, &n, NULL,
	                                sodium_base64_VARIANT_ORIGINAL) != 0)) {
		sodium_free(buf);
		return -1;
	}
	buf[n] = '\0';
	*out = buf;
	*outlen = n;
	return 0;
}

int
sasl_plain_split(const char *msg, size_t len, char **user, char **pass)
{
	const char *n1 = memchr(msg, '\0', len), *n2;
	size_t zlen, ulen, plen;

	if (n1 == NULL)
		return -1;
	zlen = (size_t)(n1 - msg);
	n2 = memchr(n1 + 1, '\0', len - zlen - 1);
	if (n2 == NULL)
		return -1;
	ulen = (size_t)(n2 - n1 - 1);
	plen = len - zlen - ulen - 2;
	if (ulen == 0 || memchr(n2 + 1, '\0', plen))
		return -1;
	/* Acting as another user (authzid) is not a thing here. */
	if (zlen && (zlen != ulen || memcmp(msg, n1 + 1, ulen) != 0))
		return -1;
	*user = sp_secret_dup(n1 + 1, ulen);
	*pass = sp_secret_dup(n2 + 1, plen);
	return 0;
}

/* crypto_floor.c - the libsodium costs sealpost cannot avoid, for the benchmark.
 *
 *   crypto_floor [MIB] [REPS]
 *
 * Prints one JSON object:
 *   secretstream_push_mbs / _pull_mbs: crypto_secretstream_xchacha20poly1305
 *       over MIB MiB in 64 KiB chunks (sealpost's SP_SECRETSTREAM_CHUNK),
 *       median of REPS runs, MB/s (10^6 bytes per second)
 *   box_seal_us: crypto_box_seal of a 32-byte key to one X25519 key
 *   argon2id_link_ms: crypto_pwhash Argon2id with sealpost's link parameters
 *       (t=3, m=64 MiB; crypto/link_envelope.h), median of REPS runs
 *   argon2id_interactive_ms: the same at libsodium's INTERACTIVE (t=2, 64 MiB)
 *   argon2id_link_parallel_per_s: the same Argon2id on every core at once
 *       (one thread per core, REPS runs each): what the machine really
 *       sustains, memory bandwidth shared
 * Fixed inputs (no randomness in what is measured).  Built by scripts/bench.sh
 * with cc against libsodium directly.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#define CHUNK 65536

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int kdf_reps;

static void *
kdf_thread(void *arg)
{
	unsigned char k[32], salt[crypto_pwhash_SALTBYTES];
	const char pw[] = "correct horse battery staple";
	int r;

	(void)arg;
	memset(salt, 1, sizeof salt);
	for (r = 0; r < kdf_reps; r++)
		if (crypto_pwhash(k, sizeof k, pw, strlen(pw), salt, 3, (size_t)64 << 20,
		                  crypto_pwhash_ALG_ARGON2ID13) != 0)
			abort();
	return NULL;
}

static double
median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int
main(int argc, char **argv)
{
	size_t mib = argc > 1 ? (size_t)atoi(argv[1]) : 256;
	int reps = argc > 2 ? atoi(argv[2]) : 5, r;
	size_t len = mib << 20, nchunks = len / CHUNK, i;
	unsigned char key[crypto_secretstream_xchacha20poly1305_KEYBYTES];
	unsigned char hdr[crypto_secretstream_xchacha20poly1305_HEADERBYTES];
	unsigned char *pt, *ct, *out;
	double *push = calloc((size_t)reps, sizeof *push), *pull = calloc((size_t)reps, sizeof *pull);
	double *a_link = calloc((size_t)reps, sizeof *a_link), *a_int = calloc((size_t)reps, sizeof *a_int);
	double box_us, par;

	if (sodium_init() < 0 || reps < 1 || nchunks == 0)
		return 1;
	pt = malloc(len);
	ct = malloc(nchunks * (CHUNK + crypto_secretstream_xchacha20poly1305_ABYTES));
	out = malloc(CHUNK);
	for (i = 0; i < len; i++)
		pt[i] = (unsigned char)(i * 131u + 7u);
	memset(key, 0x42, sizeof key);

	for (r = 0; r < reps; r++) {
		crypto_secretstream_xchacha20poly1305_state st;
		unsigned char *c = ct, tag;
		double t0 = now();
		crypto_secretstream_xchacha20poly1305_init_push(&st, hdr, key);
		for (i = 0; i < nchunks; i++) {
			unsigned long long cl;
			crypto_secretstream_xchacha20poly1305_push(&st, c, &cl, pt + i * CHUNK, CHUNK, NULL, 0,
			        i + 1 == nchunks ? crypto_secretstream_xchacha20poly1305_TAG_FINAL : 0);
			c += cl;
		}
		push[r] = (double)len / (now() - t0) / 1e6;

		t0 = now();
		if (crypto_secretstream_xchacha20poly1305_init_pull(&st, hdr, key) != 0)
			return 1;
		c = ct;
		for (i = 0; i < nchunks; i++) {
			unsigned long long ol;
			if (crypto_secretstream_xchacha20poly1305_pull(&st, out, &ol, &tag, c,
			        CHUNK + crypto_secretstream_xchacha20poly1305_ABYTES, NULL, 0) != 0)
				return 1;
			c += CHUNK + crypto_secretstream_xchacha20poly1305_ABYTES;
		}
		pull[r] = (double)len / (now() - t0) / 1e6;
	}

	{
		unsigned char pk[crypto_box_PUBLICKEYBYTES], sk[crypto_box_SECRETKEYBYTES], seed[32];
		unsigned char sealed[32 + crypto_box_SEALBYTES];
		int n = 2000;
		double t0;
		memset(seed, 7, sizeof seed);
		crypto_box_seed_keypair(pk, sk, seed);
		t0 = now();
		for (i = 0; i < (size_t)n; i++)
			crypto_box_seal(sealed, key, sizeof key, pk);
		box_us = (now() - t0) / n * 1e6;
	}

	for (r = 0; r < reps; r++) {
		unsigned char k[32], salt[crypto_pwhash_SALTBYTES];
		const char pw[] = "correct horse battery staple";
		double t0;
		memset(salt, 1, sizeof salt);
		t0 = now();
		if (crypto_pwhash(k, sizeof k, pw, strlen(pw), salt, 3, (size_t)64 << 20,
		                  crypto_pwhash_ALG_ARGON2ID13) != 0)
			return 1;
		a_link[r] = (now() - t0) * 1e3;
		t0 = now();
		if (crypto_pwhash(k, sizeof k, pw, strlen(pw), salt, crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE,
		                  crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE, crypto_pwhash_ALG_ARGON2ID13) != 0)
			return 1;
		a_int[r] = (now() - t0) * 1e3;
	}

	{
		long nc = sysconf(_SC_NPROCESSORS_ONLN);
		pthread_t *t = calloc((size_t)(nc > 0 ? nc : 1), sizeof *t);
		double t0;
		long j;
		if (nc < 1)
			nc = 1;
		kdf_reps = reps;
		t0 = now();
		for (j = 0; j < nc; j++)
			pthread_create(&t[j], NULL, kdf_thread, NULL);
		for (j = 0; j < nc; j++)
			pthread_join(t[j], NULL);
		par = (double)(nc * reps) / (now() - t0);
		free(t);
	}
	printf("{\"mib\": %zu, \"reps\": %d, \"libsodium\": \"%s\", \"secretstream_push_mbs\": %.1f, "
	       "\"secretstream_pull_mbs\": %.1f, \"box_seal_us\": %.1f, \"argon2id_link_ms\": %.1f, "
	       "\"argon2id_link_t\": 3, \"argon2id_link_m_mib\": 64, \"argon2id_interactive_ms\": %.1f, "
	       "\"argon2id_link_parallel_per_s\": %.2f}\n",
	       mib, reps, sodium_version_string(), median(push, reps), median(pull, reps), box_us,
	       median(a_link, reps), median(a_int, reps), par);
	return 0;
}

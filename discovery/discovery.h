/* discovery.h - recipients' OpenPGP keys found by sealpost itself: the Web
 * Key Directory of the recipient's domain (advanced, then direct), then a VKS
 * keyserver when one is configured (docs/discovery.md).
 *
 * This library sits between crypto/ (which has no sockets) and the proxy: it
 * fetches with libcurl (TLS verified, a time budget per recipient, a size
 * limit), judges what it fetched with GnuPG in a scratch keyring under exactly
 * the rules of a local key (crypto/pgp.c: a user ID with exactly this address,
 * encryption-capable, not expired, revoked or disabled), and keeps what it
 * accepts in a keyring of its own under the state directory (never the user's),
 * with its provenance in an SQLite table beside it.  The policy reaches it
 * through struct sp_key_discovery (crypto/policy.h).
 */
#ifndef SP_DISCOVERY_H
#define SP_DISCOVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "policy.h"

/* A WKD or VKS answer larger than this is refused: a key with its self
 * signatures is a few KiB; keys.openpgp.org serves stripped keys far below
 * it, and a WKD key with years of third-party signatures stays under it. */
#define SP_DISCOVERY_MAX_KEY_BYTES (256 * 1024)
/* Connecting (TCP + TLS) gets at most this much of the budget, so that an
 * advanced host that does not answer leaves time for the direct method. */
#define SP_DISCOVERY_CONNECT_SHARE 2   /* 1/2 of what is left */
/* `sealpost keys list` and the provenance table: at most this many rows
 * are read at once (one per address). */
#define SP_DISCOVERY_LIST_MAX 100000

/* z-base-32 (RFC 6189 alphabet) of SHA-1 of the local part lowercased (ASCII
 * only), as WKD names keys: 32 characters plus NUL. */
void sp_wkd_hash(const char *local, size_t len, char out[33]);

struct sp_discovery;

/* Open (and create) <state>/discovery: gnupg/ (the keyring), keys/ (one
 * exported key per fingerprint, what gpg encrypts to), discovery.sqlite (the
 * provenance).  Returns the handle, or NULL with err set. */
struct sp_discovery *sp_discovery_open(const struct sp_config *cfg, char *err, size_t errsz);
void sp_discovery_close(struct sp_discovery *d);
/* Returns the hook for the policy (valid while d is open). */
const struct sp_key_discovery *sp_discovery_hook(struct sp_discovery *d);

/* One row of provenance. */
struct sp_discovered {
	char addr[512];
	char fpr[65];            /* "" = no key (negative cache) */
	char source[32];         /* "wkd-advanced", "wkd-direct", "keyserver", "" */
	char url[1024];
	int64_t first_seen;      /* when this fingerprint was first accepted */
	int64_t fetched;         /* the last lookup */
	char state[16];          /* "ok", "none", "changed" */
	char new_fpr[65];        /* state "changed": the fingerprint the lookup found */
};

/* Every row, in address order; cb returns nonzero to stop.  Returns 0 (also
 * when cb stopped it), or -1 with err set. */
int sp_discovery_list(struct sp_discovery *d, int (*cb)(void *arg, const struct sp_discovered *row), void *arg,
                      char *err, size_t errsz);
/* Look addr up again now (ignoring the caches); returns as the policy hook's
 * find (policy.h): SP_PGP_FOUND, or SP_PGP_NONE or SP_PGP_ERROR with err set. */
enum sp_pgp_lookup sp_discovery_refresh(struct sp_discovery *d, const char *addr, struct sp_pgp_key_info *info,
                                        char *source, size_t sourcesz, char *err, size_t errsz);
/* Forget addr: its row and its key (a changed key is then accepted by the next
 * lookup).  Returns 0, 1 when there was nothing to forget, or -1 with err set. */
int sp_discovery_forget(struct sp_discovery *d, const char *addr, char *err, size_t errsz);

/* The background refresh (`sealpost run`): a thread that, at start and then
 * every SP_DISCOVERY_REFRESH_CHECK_S, looks up again the discovered keys that
 * have reached SP_DISCOVERY_REFRESH_AT of [discovery] ttl, at most
 * SP_DISCOVERY_REFRESH_BATCH per pass, so that a send after the ttl costs no
 * lookup.  Key changes are handled as at RCPT.  Returns 0, or -1 with err set. */
#define SP_DISCOVERY_REFRESH_CHECK_S 60
#define SP_DISCOVERY_REFRESH_AT 0.75
#define SP_DISCOVERY_REFRESH_BATCH 100
int sp_discovery_start_refresher(struct sp_discovery *d, char *err, size_t errsz);
/* Stop it (waits for a lookup under way: at most [discovery] timeout plus gpg). */
void sp_discovery_stop_refresher(struct sp_discovery *d);

/* Returns the network lookups made since open (tests, benchmarks). */
uint64_t sp_discovery_lookups(const struct sp_discovery *d);

#endif

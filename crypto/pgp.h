/* pgp.h - OpenPGP through GPGME: key selection and encryption.
 *
 * A key is used for a recipient only when one of its user IDs has exactly that
 * address (never a substring), it is valid under [pgp] trust (GnuPG's
 * validity: full or ultimate; or `always`), and it is not expired, revoked,
 * disabled or without a usable encryption subkey.  Keys are chosen and logged
 * by full fingerprint; encryption names keys by fingerprint only.
 */
#ifndef SP_PGP_H
#define SP_PGP_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "message.h"
#include "util.h"

/* A full v4/v5 fingerprint in hex. */
#define SP_PGP_FPR_MAX 65
/* Messages larger than this are encrypted without compression (see pgp.c). */
#define SP_PGP_COMPRESS_MAX (1024 * 1024)

struct sp_pgp;

/* Once per process, before threads.  Returns 0, or -1 with err set. */
int sp_pgp_global_init(char *err, size_t errsz);

/* One per session (a GPGME context is not shared between threads).  Returns
 * the context, or NULL with err set (not today: the GPGME context is made at
 * first use, and that call reports its failure). */
struct sp_pgp *sp_pgp_new(const struct sp_config *cfg, char *err, size_t errsz);
void sp_pgp_free(struct sp_pgp *p);
/* The same from a process-wide pool of warm contexts (same cfg), and back.
 * Returns the context, or NULL with err set. */
struct sp_pgp *sp_pgp_acquire(const struct sp_config *cfg, char *err, size_t errsz);
void sp_pgp_release(struct sp_pgp *p);
/* At exit: free the pooled contexts. */
void sp_pgp_pool_clear(void);

enum sp_pgp_lookup {
	SP_PGP_FOUND,
	SP_PGP_NONE,     /* no usable key; err says what was found and why unusable */
	SP_PGP_ERROR,    /* GnuPG failed; err says how */
};

struct sp_pgp_key_info {
	char fpr[SP_PGP_FPR_MAX];
	char uid[256];
	long long expires;     /* 0 = never */
	char validity[16];     /* "ultimate", "full", ... */
};

/* What encrypting returns (sp_pgp_encrypt*, and pgp_mime.h's builders,
 * which compose.c turns into 451 or 554).  The failures are negative, so
 * "< 0" and "!= 0" still mean "failed". */
enum sp_pgp_encrypt_result {
	SP_PGP_ENCRYPTED = 0,
	SP_PGP_ENCRYPT_TEMPFAIL = -1,  /* worth retrying (gpg failed, timed out, I/O); err says how */
	SP_PGP_ENCRYPT_PERMFAIL = -2,  /* only the user can fix it (the signing key needs a passphrase) */
};

enum sp_pgp_keyring {
	SP_PGP_KEYRING_OK,
	SP_PGP_KEYRING_ABSENT,   /* the fallback ~/.gnupg does not exist: no keys */
	SP_PGP_KEYRING_FAULT,    /* unusable: err says what; never "no key" */
};

/* Before gpg runs: is [pgp] gnupg_home a keyring GnuPG can answer from?  A
 * missing directory that was named (config or GNUPGHOME), an unreadable,
 * empty or damaged pubring.kbx, a missing or damaged trustdb.gpg beside keys
 * under trust = keyring are faults.  Cheap: stat() and two short reads.
 * Returns SP_PGP_KEYRING_OK, SP_PGP_KEYRING_ABSENT, or SP_PGP_KEYRING_FAULT
 * with err set. */
enum sp_pgp_keyring sp_pgp_keyring_check(const struct sp_config *cfg, char *err, size_t errsz);

/* The same, and then every key listed once by gpg (as lookups do, once per
 * keyring state): errors anywhere in the keyring show.  *n_keys: how many
 * keys gpg listed.  On OK, err holds a warning ("" if none): keys, but none
 * ultimately trusted, under trust = keyring.  Returns SP_PGP_KEYRING_OK,
 * SP_PGP_KEYRING_ABSENT, or SP_PGP_KEYRING_FAULT with err set. */
enum sp_pgp_keyring sp_pgp_keyring_verify(struct sp_pgp *p, size_t *n_keys, char *err, size_t errsz);

/* The best usable public key for addr (the newest usable encryption subkey
 * wins among several).  Returns SP_PGP_FOUND with *info, or SP_PGP_NONE or
 * SP_PGP_ERROR with err set. */
enum sp_pgp_lookup sp_pgp_find_key(struct sp_pgp *p, const char *addr, struct sp_pgp_key_info *info,
                                   char *err, size_t errsz);
/* The secret key to sign as addr ([pgp] sign = yes).  Returns as
 * sp_pgp_find_key. */
enum sp_pgp_lookup sp_pgp_find_signer(struct sp_pgp *p, const char *addr, struct sp_pgp_key_info *info,
                                      char *err, size_t errsz);
/* Re-check, at DATA time, that the key chosen at RCPT time is still usable
 * for addr (it may have been revoked or expired in between).  Returns as
 * sp_pgp_find_key. */
enum sp_pgp_lookup sp_pgp_recheck(struct sp_pgp *p, const char *addr, const char *fpr, char *err, size_t errsz);

/* Encrypt (and sign, when sign_fpr is set) in to every fingerprint in fprs
 * (an entry starting with '/' is instead the path of a key file, given to gpg
 * as --recipient-file: a discovered key, which is not in the user's keyring);
 * ASCII armor appended to out.  Integrity protection (MDC/AEAD) is what
 * GnuPG 2.2+ always produces; the tests check the packets.  Each operation is
 * cancelled after [pgp] timeout.  Returns SP_PGP_ENCRYPTED,
 * SP_PGP_ENCRYPT_TEMPFAIL or SP_PGP_ENCRYPT_PERMFAIL with err set. */
enum sp_pgp_encrypt_result sp_pgp_encrypt(struct sp_pgp *p, const char *const *fprs, size_t n, const char *sign_fpr,
                                          const char *in, size_t len, struct sp_buf *out, char *err,
                                          size_t errsz);

/* The same, reading the plaintext from a blob (no copy) and writing the
 * armor to out, or (out NULL) to the file out_fd at its current offset.
 * Returns as sp_pgp_encrypt. */
enum sp_pgp_encrypt_result sp_pgp_encrypt_io(struct sp_pgp *p, const char *const *fprs, size_t n,
                                             const char *sign_fpr, const struct sp_blob *in,
                                             struct sp_buf *out, int out_fd, char *err, size_t errsz);

/* The public key of fpr, minimal (for Autocrypt), appended to out.  Returns
 * 0, or -1 with err set. */
int sp_pgp_export_minimal(struct sp_pgp *p, const char *fpr, struct sp_buf *out, char *err, size_t errsz);
/* The same minimal public key, ASCII-armored (for a v2 link's view document:
 * the secure reply's "sender_key", which a browser's OpenPGP library reads).
 * Not cached.  Returns 0, or -1 with err set (out then as on entry). */
int sp_pgp_export_minimal_armored(struct sp_pgp *p, const char *fpr, struct sp_buf *out, char *err,
                                  size_t errsz);

/* Import OpenPGP key material (binary or armored) into this context's
 * keyring (sealpost's own: discovery/).  *n_imported: keys taken.  Returns 0,
 * or -1 with err set. */
int sp_pgp_import(struct sp_pgp *p, const void *data, size_t len, size_t *n_imported, char *err, size_t errsz);
/* Delete the public key fpr from this context's keyring.  Returns 0 (also
 * when it was absent), or -1 with err set. */
int sp_pgp_delete_key(struct sp_pgp *p, const char *fpr, char *err, size_t errsz);

#endif

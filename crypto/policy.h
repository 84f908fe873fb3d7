/* policy.h - which form each recipient gets.
 *
 * Per recipient, strongest first: a usable OpenPGP key -> a registered sodium key
 * -> a link (when [link] base_url is set and a store or upload URL exists) ->
 * [policy] no_key (link | reject | plain; plain only when chosen explicitly).
 * The decision is made at RCPT time, so a recipient that can get no allowed
 * form is refused right there; compose re-checks at DATA time.
 */
#ifndef SP_POLICY_H
#define SP_POLICY_H

#include "config.h"
#include "message.h"
#include "pgp.h"

enum sp_policy_result {
	SP_POLICY_OK,        /* d->form chosen */
	SP_POLICY_REFUSE,    /* no allowed form: 550 5.7.1 with d->reason */
	SP_POLICY_TEMPFAIL,  /* a lookup failed (keyring unreadable...): 451 4.7.0 with d->reason */
};

struct sp_decision {
	enum sp_form form;
	char detail[160];    /* fingerprint / key / "" */
	char source[300];    /* an OpenPGP key sealpost discovered: where from, since when; else "" */
	char notice[300];    /* for the sender (log, delivery report): a discovered key changed, so
	                      * this recipient got a weaker form; else "" */
	char reason[768];    /* why refused, or why a weaker form was chosen */
};

/* Keys sealpost finds by itself (WKD, keyserver: discovery/, which sits above
 * this library and needs the network).  The commands that want discovery
 * register it once, before threads start; the policy asks it after the user's
 * keyring said "no key", and compose asks it again at DATA time.  Both
 * functions take the address in its normal form (address.h) and are
 * thread-safe.
 *   find:    FOUND (info->fpr; source says where from and since when),
 *            NONE (err: nothing usable was found, or it changed and the
 *            configuration says to fall to the next form), ERROR (err: its
 *            own keyring or store is unusable: 451, never a weaker form).
 *            On NONE, a non-empty source is a notice the sender must get
 *            (a key change).
 *   recheck: is fpr still the usable discovered key for norm?  FOUND with
 *            keyfile: the path of the key to encrypt to (gpg --recipient-file). */
struct sp_key_discovery {
	enum sp_pgp_lookup (*find)(void *ctx, const char *addr, const char *norm, struct sp_pgp_key_info *info,
	                           char *source, size_t sourcesz, char *err, size_t errsz);
	enum sp_pgp_lookup (*recheck)(void *ctx, const char *norm, const char *fpr, char *keyfile, size_t keyfilesz,
	                              char *err, size_t errsz);
	void *ctx;
};
/* The longest key file path recheck gives back (the state directory's). */
#define SP_DISCOVERY_PATH_MAX 1024
/* NULL: no discovery (the default).  sp_policy_discovery returns what was
 * set (NULL: none). */
void sp_policy_set_discovery(const struct sp_key_discovery *kd);
const struct sp_key_discovery *sp_policy_discovery(void);

/* One per session: it holds per-thread state (a GPGME context). */
struct sp_policy;

/* Returns the policy, or NULL with err set (not today: its GnuPG context and
 * sodium recipients come at first use). */
struct sp_policy *sp_policy_new(const struct sp_config *cfg, char *err, size_t errsz);
void sp_policy_free(struct sp_policy *p);
/* The form for addr.  Returns SP_POLICY_OK with d->form, or SP_POLICY_REFUSE
 * or SP_POLICY_TEMPFAIL with d->reason: the reason is part of the decision
 * (it goes into the SMTP reply), so it lives in d, not in an err buffer. */
enum sp_policy_result sp_policy_decide(struct sp_policy *p, const char *addr, struct sp_decision *d);
/* The configuration the policy was made with. */
const struct sp_config *sp_policy_config(const struct sp_policy *p);
struct sp_sodium_recipients;
/* The [sodium] recipients file: a missing default file means none; one named
 * in the config must exist.  *out stays NULL when there is none.  Returns 0,
 * or -1 with err set. */
int sp_policy_load_sodium(const struct sp_config *cfg, struct sp_sodium_recipients **out,
                          char *err, size_t errsz);
/* The session's sodium recipients (read on first use); NULL when there are none
 * or on error (then err is set and the lookup must fail closed). */
const struct sp_sodium_recipients *sp_policy_sodium(struct sp_policy *p, char *err, size_t errsz);
/* The session's GnuPG context (created on first use); NULL with err on failure. */
struct sp_pgp *sp_policy_pgp(struct sp_policy *p, char *err, size_t errsz);

#endif

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
	char reason[768];    /* why refused, or why a weaker form was chosen */
};

/* One per session: it holds per-thread state (a GPGME context). */
struct sp_policy;

struct sp_policy *sp_policy_new(const struct sp_config *cfg, char *err, size_t errsz);
void sp_policy_free(struct sp_policy *p);
enum sp_policy_result sp_policy_decide(struct sp_policy *p, const char *addr, struct sp_decision *d);
const struct sp_config *sp_policy_config(const struct sp_policy *p);
struct sp_sodium_recipients;
/* The [sodium] recipients file: a missing default file means none; one named
 * in the config must exist.  *out stays NULL when there is none. */
int sp_policy_load_sodium(const struct sp_config *cfg, struct sp_sodium_recipients **out,
                          char *err, size_t errsz);
/* The session's sodium recipients (read on first use); NULL when there are none
 * or on error (then err is set and the lookup must fail closed). */
const struct sp_sodium_recipients *sp_policy_sodium(struct sp_policy *p, char *err, size_t errsz);
/* The session's GnuPG context (created on first use); NULL with err on failure. */
struct sp_pgp *sp_policy_pgp(struct sp_policy *p, char *err, size_t errsz);

#endif

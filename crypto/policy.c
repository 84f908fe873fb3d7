/* policy.c - the per-recipient decision (see policy.h). */
#include "policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sp_policy {
	const struct sp_config *cfg;
};

struct sp_policy *
sp_policy_new(const struct sp_config *cfg, char *err, size_t errsz)
{
	struct sp_policy *p = sp_xcalloc(1, sizeof *p);

	(void)err;
	(void)errsz;
	p->cfg = cfg;
	return p;
}

void
sp_policy_free(struct sp_policy *p)
{
	free(p);
}

const struct sp_config *
sp_policy_config(const struct sp_policy *p)
{
	return p->cfg;
}

enum sp_policy_result
sp_policy_decide(struct sp_policy *p, const char *addr, struct sp_decision *d)
{
	const struct sp_config *cfg = p->cfg;

	(void)addr;
	memset(d, 0, sizeof *d);
	switch (cfg->policy.no_key) {
	case SP_NOKEY_PLAIN:
		d->form = SP_FORM_PLAIN;
		snprintf(d->reason, sizeof d->reason, "no key; [policy] no_key = plain");
		return SP_POLICY_OK;
	case SP_NOKEY_LINK:
		snprintf(d->reason, sizeof d->reason,
		         "no OpenPGP or sodium key for this recipient and link mode is not "
		         "configured ([link] base_url); refusing to send in clear");
		return SP_POLICY_REFUSE;
	case SP_NOKEY_REJECT:
	default:
		snprintf(d->reason, sizeof d->reason,
		         "no OpenPGP or sodium key for this recipient; refusing to send in clear "
		         "([policy] no_key = reject)");
		return SP_POLICY_REFUSE;
	}
}

/* policy.c - the per-recipient decision (see policy.h). */
#include "policy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "sodium_keys.h"

struct sp_policy {
	const struct sp_config *cfg;
	struct sp_pgp *pgp;          /* created on first use: a session may never need it */
	struct sp_sodium_recipients *sodium;   /* read once per session */
	bool sodium_loaded;
};

static const struct sp_key_discovery *discovery;

void
sp_policy_set_discovery(const struct sp_key_discovery *kd)
{
	discovery = kd;
}

const struct sp_key_discovery *
sp_policy_discovery(void)
{
	return discovery;
}

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
	if (p == NULL)
		return;
	sp_pgp_release(p->pgp);
	sp_sodium_recipients_free(p->sodium);
	free(p);
}

int
sp_policy_load_sodium(const struct sp_config *cfg, struct sp_sodium_recipients **out, char *err, size_t errsz)
{
	*out = NULL;
	/* The default file is optional; one named in the config must exist.
	 * Only "no such file" is absence: any other failure (a directory that
	 * cannot be searched...) is an error, never "no sodium keys". */
	if (!cfg->sodium.recipients_explicit && access(cfg->sodium.recipients, F_OK) != 0 && errno == ENOENT)
		return 0;
	return sp_sodium_recipients_load(cfg->sodium.recipients, out, err, errsz);
}

const struct sp_sodium_recipients *
sp_policy_sodium(struct sp_policy *p, char *err, size_t errsz)
{
	if (!p->sodium_loaded) {
		if (sp_policy_load_sodium(p->cfg, &p->sodium, err, errsz) < 0)
			return NULL;
		p->sodium_loaded = true;
	}
	return p->sodium;
}

const struct sp_config *
sp_policy_config(const struct sp_policy *p)
{
	return p->cfg;
}

struct sp_pgp *
sp_policy_pgp(struct sp_policy *p, char *err, size_t errsz)
{
	if (p->pgp == NULL)
		p->pgp = sp_pgp_acquire(p->cfg, err, errsz);
	return p->pgp;
}

/* A key lookup's outcome (the user's keyring or discovery): true when it
 * settles the recipient's form (found: OpenPGP; failed: 451, never a weaker
 * form), with *res set; false for "no key here", to go on to the next. */
static bool
pgp_settles(enum sp_pgp_lookup lookup, const struct sp_pgp_key_info *info, const char *err,
            struct sp_decision *d, enum sp_policy_result *res)
{
	switch (lookup) {
	case SP_PGP_FOUND:
		d->form = SP_FORM_PGP;
		sp_strlcpy(d->detail, info->fpr, sizeof d->detail);
		*res = SP_POLICY_OK;
		return true;
	case SP_PGP_ERROR:
		sp_seterr(d->reason, sizeof d->reason, "%s", err);
		*res = SP_POLICY_TEMPFAIL;
		return true;
	case SP_PGP_NONE:
	default:
		return false;
	}
}

enum sp_policy_result
sp_policy_decide(struct sp_policy *p, const char *addr, struct sp_decision *d)
{
	const struct sp_config *cfg = p->cfg;
	struct sp_pgp_key_info info;
	char pgp_why[SP_ERRLEN], err[SP_ERRLEN], norm[SP_ADDR_MAX];
	enum sp_pgp_lookup lookup;
	enum sp_policy_result res;
	struct sp_pgp *pgp;

	memset(d, 0, sizeof *d);
	/* 0. One normal form for every lookup (address.h): a domain that is no
	 * valid IDN cannot be looked up, and is never compared as bytes. */
	if (sp_addr_normalize(addr, norm, sizeof norm, err, sizeof err) < 0) {
		sp_seterr(d->reason, sizeof d->reason, "%s", err);
		return SP_POLICY_REFUSE;
	}
	/* 1. OpenPGP.  A GnuPG failure or an unusable keyring is not "no key":
	 * never downgrade on it (pgp.c).  Only the fallback ~/.gnupg that does
	 * not exist means no keys. */
	pgp = sp_policy_pgp(p, err, sizeof err);
	if (pgp == NULL) {
		sp_seterr(d->reason, sizeof d->reason, "cannot look up OpenPGP keys: %s", err);
		return SP_POLICY_TEMPFAIL;
	}
	lookup = sp_pgp_find_key(pgp, addr, &info, pgp_why, sizeof pgp_why);
	if (pgp_settles(lookup, &info, pgp_why, d, &res))
		return res;
	/* 1b. A key sealpost discovered (WKD, keyserver), under the same rules.
	 * Its own keyring failing is a 451 as the user's is; a lookup that
	 * found nothing (or failed on the network) is "no key". */
	if (discovery) {
		char dwhy[SP_ERRLEN];
		lookup = discovery->find(discovery->ctx, addr, norm, &info, d->source, sizeof d->source, dwhy,
		                         sizeof dwhy);
		if (pgp_settles(lookup, &info, dwhy, d, &res))
			return res;
		sp_strlcpy(d->notice, d->source, sizeof d->notice);
		d->source[0] = '\0';
		{
			size_t l = strlen(pgp_why);
			if (l + 2 < sizeof pgp_why) {
				memcpy(pgp_why + l, "; ", 3);
				sp_strlcpy(pgp_why + l + 2, dwhy, sizeof pgp_why - l - 2);
			}
		}
	}
	/* 2. A registered sodium key. */
	{
		const struct sp_sodium_recipients *r = sp_policy_sodium(p, err, sizeof err);
		const unsigned char *pk;
		if (r == NULL && !p->sodium_loaded) {
			sp_seterr(d->reason, sizeof d->reason, "%s", err);
			return SP_POLICY_TEMPFAIL;
		}
		if (r && (pk = sp_sodium_recipients_lookup(r, norm)) != NULL) {
			d->form = SP_FORM_SODIUM;
			sp_sodium_format_public(pk, d->detail);
			return SP_POLICY_OK;
		}
	}
	/* 4. What to do without a key. */
	switch (cfg->policy.no_key) {
	case SP_NOKEY_PLAIN:
		d->form = SP_FORM_PLAIN;
		sp_seterr(d->reason, sizeof d->reason, "%s; [policy] no_key = plain", pgp_why);
		return SP_POLICY_OK;
	case SP_NOKEY_LINK:
		if (cfg->link.base_url[0]) {
			d->form = SP_FORM_LINK;
			sp_seterr(d->reason, sizeof d->reason, "%s; no sodium key", pgp_why);
			return SP_POLICY_OK;
		}
		sp_seterr(d->reason, sizeof d->reason,
		         "%s; no sodium key; link mode is not configured ([link] base_url); "
		         "refusing to send in clear", pgp_why);
		return SP_POLICY_REFUSE;
	case SP_NOKEY_REJECT:
	default:
		sp_seterr(d->reason, sizeof d->reason,
		         "%s; no sodium key; refusing to send in clear ([policy] no_key = reject)", pgp_why);
		return SP_POLICY_REFUSE;
	}
}

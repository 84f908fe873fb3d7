/* fuzz_hook_pwhash.c - the crypto_pwhash hook of every target that unwraps a
 * link key (link_envelope, web_request), linked in by tests/fuzz/meson.build
 * with -Wl,--wrap=crypto_pwhash.
 *
 * The hook first checks the property that matters for a hostile blob: the
 * cost the caller asks for never exceeds SP_LINK_ARGON2_OPSLIMIT_MAX passes and
 * SP_LINK_ARGON2_MEMLIMIT_KIB_MAX KiB, and the password is at most
 * SP_LINK_PASSWORD_INPUT_MAX bytes (a blob over the bounds must be refused
 * before Argon2id runs).  It then runs the real Argon2id at the smallest cost
 * (1 pass, 8 KiB), so an input is microseconds, not a second and 256 MiB.
 * The seeds are wrapped with that smallest cost, so they unwrap.
 */
#include "fuzz_common.h"

#include <sodium.h>

#include "link_envelope.h"

int __wrap_crypto_pwhash(unsigned char *const out, unsigned long long outlen, const char *const passwd,
                         unsigned long long passwdlen, const unsigned char *const salt,
                         unsigned long long opslimit, size_t memlimit, int alg);
int __real_crypto_pwhash(unsigned char *const out, unsigned long long outlen, const char *const passwd,
                         unsigned long long passwdlen, const unsigned char *const salt,
                         unsigned long long opslimit, size_t memlimit, int alg);

int
__wrap_crypto_pwhash(unsigned char *const out, unsigned long long outlen, const char *const passwd,
                     unsigned long long passwdlen, const unsigned char *const salt,
                     unsigned long long opslimit, size_t memlimit, int alg)
{
	FUZZ_CHECK(opslimit <= SP_LINK_ARGON2_OPSLIMIT_MAX, "Argon2id asked for %llu passes", opslimit);
	FUZZ_CHECK(memlimit <= (size_t)SP_LINK_ARGON2_MEMLIMIT_KIB_MAX * 1024U, "Argon2id asked for %zu bytes",
	           memlimit);
	FUZZ_CHECK(passwdlen <= SP_LINK_PASSWORD_INPUT_MAX, "Argon2id got a %llu-byte password", passwdlen);
	return __real_crypto_pwhash(out, outlen, passwd, passwdlen, salt, crypto_pwhash_argon2id_OPSLIMIT_MIN,
	                            crypto_pwhash_argon2id_MEMLIMIT_MIN, alg);
}

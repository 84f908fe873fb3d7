/* kat.h - loading the known-answer vectors under tests/vectors/ for unit tests. */
#ifndef SP_TEST_KAT_H
#define SP_TEST_KAT_H

#include <stddef.h>

#include <glib.h>

/* Load tests/vectors/NAME as a GKeyFile (found through $SEALPOST_VECTORS_DIR, or
 * next to this source file); fails the test if it cannot. */
GKeyFile *kat_load(const char *name);
/* Hex value of key in group; fails the test unless it decodes to exactly
 * want bytes (want == 0: any length).  Caller g_free()s. */
unsigned char *kat_hex(GKeyFile *kf, const char *group, const char *key, size_t want, size_t *len);
/* The plaintext of a vector: "plaintext" (hex) or "plaintext_mod251_length". */
unsigned char *kat_plaintext(GKeyFile *kf, const char *group, size_t *len);
/* Compare sealed output with "sealed" (hex) or "sealed_length" + "sealed_sha256". */
void kat_check_sealed(GKeyFile *kf, const char *group, const void *p, size_t len);
/* i mod 251 pattern, the large-plaintext rule of the vector files. */
unsigned char *kat_pattern(size_t len);

#endif

/* fuzz_common.h - what every fuzz target shares: the libFuzzer entry points,
 * property checks that crash (so libFuzzer keeps the input), and a scratch
 * directory removed at exit.  Header-only: each target is one .c file, plus
 * the hooks several targets share (fuzz_hook_*.c, tests/fuzz/meson.build).
 */
#ifndef SP_FUZZ_COMMON_H
#define SP_FUZZ_COMMON_H

#include <ftw.h>
#include <sys/stat.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* stderr as it was at start-up: libFuzzer's -close_fd_mask=2 later points
 * fd 2 at /dev/null, but a failed check must still be seen. */
static int fuzz_report_fd = 2;

__attribute__((constructor)) static void
fuzz_keep_stderr(void)
{
	int fd = dup(2);

	if (fd >= 0)
		fuzz_report_fd = fd;
}

/* A property of the code under test does not hold: say which, and crash. */
#define FUZZ_CHECK(cond, ...)                                                         \
	do {                                                                          \
		if (!(cond)) {                                                        \
			dprintf(fuzz_report_fd, "\nFUZZ CHECK FAILED %s:%d: %s: ",    \
			        __FILE__, __LINE__, #cond);                           \
			dprintf(fuzz_report_fd, __VA_ARGS__);                         \
			dprintf(fuzz_report_fd, "\n");                                \
			abort();                                                      \
		}                                                                     \
	} while (0)

/* The harness itself cannot go on (no socket, no temp dir): not a finding. */
#define FUZZ_SETUP(cond, what)                                                        \
	do {                                                                          \
		if (!(cond)) {                                                        \
			perror("fuzz setup: " what);                                  \
			exit(2);                                                      \
		}                                                                     \
	} while (0)

/* data as a NUL-terminated heap string (embedded NULs stay: callers that use
 * C strings see a prefix, as the real callers would). */
static inline char *
fuzz_strndup(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	FUZZ_SETUP(s != NULL, "malloc");
	if (size)
		memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/* FUZZ_MAKE_SEEDS: one seed file DIR/NAME holding p[0..n). */
static inline void
fuzz_write_seed(const char *dir, const char *name, const void *p, size_t n)
{
	char path[4200];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	f = fopen(path, "wb");
	FUZZ_SETUP(f != NULL && fwrite(p, 1, n, f) == n && fclose(f) == 0, "write seed");
}

static char fuzz_tmp_path[4096];

static inline int
fuzz_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static inline void
fuzz_tmpdir_remove(void)
{
	if (fuzz_tmp_path[0])
		nftw(fuzz_tmp_path, fuzz_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A private scratch directory (in $TMPDIR, else /dev/shm when it exists, else
 * /tmp), removed when the process exits normally. */
static inline const char *
fuzz_tmpdir(void)
{
	const char *base = getenv("TMPDIR");

	if (fuzz_tmp_path[0])
		return fuzz_tmp_path;
	if (base == NULL || *base == '\0')
		base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(fuzz_tmp_path, sizeof fuzz_tmp_path, "%s/sealpost-fuzz-XXXXXX", base);
	FUZZ_SETUP(mkdtemp(fuzz_tmp_path) != NULL, "mkdtemp");
	atexit(fuzz_tmpdir_remove);
	return fuzz_tmp_path;
}

#endif

/* log.c - one line per event on stderr (see log.h). */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A log line longer than this is cut: a line is one event, never a dump. */
#define SP_LOG_LINE_MAX 2048

static enum sp_log_level log_level = SP_LOG_INFO;
static bool log_journal;

static bool
stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long dev, ino;
	struct stat st;

	if (js == NULL || sscanf(js, "%lu:%lu", &dev, &ino) != 2)
		return false;
	if (fstat(STDERR_FILENO, &st) < 0)
		return false;
	return st.st_dev == (dev_t)dev && st.st_ino == (ino_t)ino;
}

void
sp_log_init(enum sp_log_level level)
{
	log_level = level;
	log_journal = stderr_is_journal();
}

void
sp_log_set_level(enum sp_log_level level)
{
	log_level = level;
}

bool
sp_log_enabled(enum sp_log_level level)
{
	return level <= log_level;
}

void
sp_log(enum sp_log_level level, const char *fmt, ...)
{
	static const char *names[] = { "error", "warning", "info", "debug" };
	static const int prio[] = { 3, 4, 6, 7 };
	char line[SP_LOG_LINE_MAX];
	size_t n = 0, i;
	va_list ap;
	int saved = errno, r;

	if (level > log_level)
		return;
	if (log_journal) {
		r = snprintf(line, sizeof line, "<%d>", prio[level]);
	} else {
		struct timespec ts;
		struct tm tm;
		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		r = (int)strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
		r += snprintf(line + r, sizeof line - (size_t)r, ".%03ld sealpost[%d]: ",
		              ts.tv_nsec / 1000000, (int)getpid());
	}
	n = (size_t)r;
	if (level != SP_LOG_INFO)
		n += (size_t)snprintf(line + n, sizeof line - n, "%s: ", names[level]);
	va_start(ap, fmt);
	r = vsnprintf(line + n, sizeof line - n, fmt, ap);
	va_end(ap);
	if (r < 0)
		r = 0;
	n = (size_t)r + n >= sizeof line - 1 ? sizeof line - 2 : n + (size_t)r;
	/* A log line is one line: control characters from peers never split it. */
	for (i = 0; i < n; i++)
		if ((unsigned char)line[i] < 0x20 && line[i] != '\t')
			line[i] = '?';
	line[n++] = '\n';
	while (write(STDERR_FILENO, line, n) < 0 && errno == EINTR)
		;
	errno = saved;
}

/* log.h - one line per event on stderr.
 *
 * Under systemd (JOURNAL_STREAM set and matching stderr) lines carry a "<N>"
 * syslog priority prefix and no timestamp, since journald adds its own;
 * otherwise each line starts with an ISO 8601 timestamp.  Lines are written with
 * a single write(2) so concurrent sessions never interleave.  Nothing secret is
 * ever passed here: no bodies, passwords, AUTH payloads or link secrets.
 */
#ifndef SP_LOG_H
#define SP_LOG_H

#include <stdbool.h>

#include "util.h"

enum sp_log_level {
	SP_LOG_ERROR,
	SP_LOG_WARN,
	SP_LOG_INFO,
	SP_LOG_DEBUG,
};

void sp_log_init(enum sp_log_level level);
void sp_log_set_level(enum sp_log_level level);
/* Would a line at this level be written? */
bool sp_log_enabled(enum sp_log_level level);
void sp_log(enum sp_log_level level, const char *fmt, ...) SP_PRINTF(2, 3);

#define sp_log_error(...) sp_log(SP_LOG_ERROR, __VA_ARGS__)
#define sp_log_warn(...) sp_log(SP_LOG_WARN, __VA_ARGS__)
#define sp_log_info(...) sp_log(SP_LOG_INFO, __VA_ARGS__)
#define sp_log_debug(...) sp_log(SP_LOG_DEBUG, __VA_ARGS__)

#endif

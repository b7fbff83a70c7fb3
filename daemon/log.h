/*
 * Logging for nonod: levelled lines on stderr; when stderr is the journal
 * (JOURNAL_STREAM names it) entries go through sd_journal_send with
 * structured fields (PRIORITY, CODE_FUNC, and any NONO_* fields given).
 *
 * log_warn/log_error append ": strerror(errno)" like warn(3); the *x
 * variants do not. Never pass secret bytes to any of these.
 */
#ifndef DAEMON_LOG_H
#define DAEMON_LOG_H

#include <stdbool.h>

enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

/* Reads JOURNAL_STREAM and decides the sink. Safe to call more than once. */
void log_init(const char *ident, enum log_level level);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* "error", "warn", "info", "debug" -> level; -1 when unknown. */
int log_level_parse(const char *s);

void log_msg(enum log_level level, bool with_errno, const char *func,
	     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define log_error(...) log_msg(LOG_LEVEL_ERROR, true, __func__, __VA_ARGS__)
#define log_errorx(...) log_msg(LOG_LEVEL_ERROR, false, __func__, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, true, __func__, __VA_ARGS__)
#define log_warnx(...) log_msg(LOG_LEVEL_WARN, false, __func__, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, false, __func__, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, false, __func__, __VA_ARGS__)

#endif

/* Logging to stderr or, when stderr is the journal, with structured fields. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

#include "log.h"

static enum log_level cur_level = LOG_LEVEL_INFO;
static bool to_journal;
static const char *log_ident = "nonod";

static const char *const level_names[] = { "error", "warn", "info", "debug" };
static const int level_prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };

/* JOURNAL_STREAM is "dev:ino" of the journal's stream; only trust it when it is our stderr. */
static bool stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (js == NULL || sscanf(js, "%llu:%llu", &dev, &ino) != 2)
		return false;
	if (fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev &&
	       (unsigned long long)st.st_ino == ino;
}

void log_init(const char *ident, enum log_level level)
{
	if (ident != NULL)
		log_ident = ident;
	cur_level = level;
	to_journal = stderr_is_journal();
}

void log_set_level(enum log_level level)
{
	cur_level = level;
}

enum log_level log_get_level(void)
{
	return cur_level;
}

int log_level_parse(const char *s)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (strcmp(s, level_names[i]) == 0)
			return (int)i;
	return -1;
}

void log_msg(enum log_level level, bool with_errno, const char *func,
	     const char *fmt, ...)
{
	int saved = errno;
	char msg[2048];
	va_list ap;
	int n;

	if (level > cur_level) {
		errno = saved;
		return;
	}
	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		msg[0] = '\0';
	if (with_errno) {
		size_t len = strlen(msg);
		snprintf(msg + len, sizeof(msg) - len, ": %s", strerror(saved));
	}
	/* One line per entry: control characters from peers must not forge lines. */
	for (char *p = msg; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';

	if (to_journal) {
		sd_journal_send("MESSAGE=%s", msg,
				"PRIORITY=%d", level_prio[level],
				"CODE_FUNC=%s", func,
				"SYSLOG_IDENTIFIER=%s", log_ident,
				"NONO_LEVEL=%s", level_names[level],
				NULL);
	} else {
		struct timespec ts;
		struct tm tm;
		char when[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
		fprintf(stderr, "%s.%03ldZ %s[%ld] %s: %s: %s\n", when,
			ts.tv_nsec / 1000000, log_ident, (long)getpid(),
			level_names[level], func, msg);
	}
	errno = saved;
}

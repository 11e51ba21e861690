/*
 * log: leveled logging to stderr or syslog, in the manner of OpenSMTPD's
 * log.c. Every function keeps errno as it found it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "log.h"

static const char *log_ident = "xcomp";
static int log_syslog;
static enum log_level log_lvl = LOG_LEVEL_INFO;

static const char *const level_names[] = {"error", "warning", "info", "debug"};

void
log_init(const char *ident, int to_syslog, enum log_level lvl)
{
	log_ident = ident;
	log_syslog = to_syslog;
	log_lvl = lvl;
	if (to_syslog)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void
log_setlevel(enum log_level lvl)
{
	log_lvl = lvl;
}

int
log_level_parse(const char *s, enum log_level *lvl)
{
	size_t i;

	for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (strcmp(s, level_names[i]) == 0) {
			*lvl = (enum log_level)i;
			return 0;
		}
	return -1;
}

static void
vlog(enum log_level lvl, const char *fmt, va_list ap, const char *suffix)
{
	static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
	char msg[2048];
	int saved = errno;

	if (lvl > log_lvl) {
		errno = saved;
		return;
	}
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (log_syslog) {
		if (suffix)
			syslog(prio[lvl], "%s: %s", msg, suffix);
		else
			syslog(prio[lvl], "%s", msg);
	} else {
		if (suffix)
			fprintf(
			    stderr, "%s: %s: %s: %s\n", log_ident, level_names[lvl], msg, suffix);
		else
			fprintf(stderr, "%s: %s: %s\n", log_ident, level_names[lvl], msg);
		fflush(stderr);
	}
	errno = saved;
}

#define LOGFN(fn, lvl, withErrno)                                                                  \
	void fn(const char *fmt, ...)                                                              \
	{                                                                                          \
		va_list ap;                                                                        \
		int e = errno;                                                                     \
		va_start(ap, fmt);                                                                 \
		vlog(lvl, fmt, ap, withErrno ? strerror(e) : NULL);                                \
		va_end(ap);                                                                        \
		errno = e;                                                                         \
	}

LOGFN(log_warn, LOG_LEVEL_WARNING, 1)
LOGFN(log_warnx, LOG_LEVEL_WARNING, 0)
LOGFN(log_error, LOG_LEVEL_ERROR, 0)
LOGFN(log_info, LOG_LEVEL_INFO, 0)
LOGFN(log_debug, LOG_LEVEL_DEBUG, 0)

void
fatal(const char *fmt, ...)
{
	va_list ap;
	int e = errno;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_ERROR, fmt, ap, strerror(e));
	va_end(ap);
	exit(2);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_ERROR, fmt, ap, NULL);
	va_end(ap);
	exit(2);
}

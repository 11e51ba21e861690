/*
 * log: leveled logging to stderr or syslog. log_warn appends strerror(errno),
 * log_warnx does not. Every function saves and restores errno.
 * fatal/fatalx log and exit(2); use them only before the loop runs or when an
 * invariant breaks.
 */
#ifndef XCOMP_LOG_H
#define XCOMP_LOG_H

#include <stdarg.h>

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARNING, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

/* ident: program name; to_syslog: 0 = stderr. */
void log_init(const char *ident, int to_syslog, enum log_level);
void log_setlevel(enum log_level);
/* Parse "error", "warning", "info", "debug"; -1 if none of these. */
int log_level_parse(const char *, enum log_level *);

void log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void fatal(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif

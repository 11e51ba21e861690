/*
 * statusview: what "xcomp status" prints from a parsed status file.
 */
#ifndef XCOMP_STATUSVIEW_H
#define XCOMP_STATUSVIEW_H

#include <stdio.h>
#include <time.h>

#include "status.h"

/*
 * "connected", "not connected", or "stale": the agent is gone (pid) or has
 * not written for two keepalive intervals and 5 s, or the file lacks state.
 */
const char *statusview_verdict(const struct status_file *, unsigned keepalive, time_t now);
/*
 * Why the verdict is "stale", in words ("the agent (pid 42) is not
 * running"), written into buf; NULL when it is not stale.
 */
const char *statusview_stale_reason(
    const struct status_file *, unsigned keepalive, time_t now, char *buf, size_t len);
/* The status in words, with the section of xcomp-troubleshooting(7) to read. */
void statusview_human(FILE *, const struct status_file *, const char *verdict, time_t now);
/*
 * The status as one JSON object; node lines become objects. reason, when
 * not NULL, says why the verdict is what it is (statusview_stale_reason).
 */
void statusview_json(FILE *, const struct status_file *, const char *verdict, const char *reason);
/*
 * No status to show (no file, unreadable, not a status file): verdict and
 * state "unknown", the reason, the file's path, and no nodes.
 */
void statusview_json_unknown(FILE *, const char *path, const char *reason);

/* s as a JSON string, quotes and escapes included. */
void statusview_json_str(FILE *out, const char *s);

#endif

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
const char *status_verdict(const struct status_file *, unsigned keepalive, time_t now);
/* The status in words, with the section of xcomp-troubleshooting(7) to read. */
void status_print_human(FILE *, const struct status_file *, const char *verdict, time_t now);
/* The status as one JSON object; node lines become objects. */
void status_print_json(FILE *, const struct status_file *, const char *verdict);

#endif

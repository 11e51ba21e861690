/*
 * serve: xcomp-server at work: listeners, component streams, the XEP-0114
 * handshake, conflict policies, routing and pings, and the control socket
 * that "xcomp-server status" reads.
 * Functions returning int return 0 on success and -1 on failure.
 */
#ifndef XCOMP_SERVE_H
#define XCOMP_SERVE_H

#include <stdio.h>

#include "state.h"

/*
 * Serve until SIGTERM or SIGINT. 0 after a clean stop, 1 when the state
 * is incomplete or a server already runs for it, 2 when it cannot listen or
 * the loop fails; the reason is logged.
 */
int serve_run(struct state *);

/* Print the running server's connected components; -1 if it does not run. */
int serve_status(const char *dir, FILE *out, char *err, size_t errlen);

#endif

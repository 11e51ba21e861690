/*
 * serve: xcomp-server at work: component sessions (accept.c) on its
 * listeners, conflict policies, routing and pings, and the control socket
 * that "xcomp-server status" reads.
 * Functions returning int return 0 on success and -1 on failure.
 */
#ifndef XCOMP_SERVE_H
#define XCOMP_SERVE_H

#include <stdio.h>

#include "state.h"

struct server;

/*
 * A server for st (which must outlive it). NULL, with the reason logged,
 * when the state is incomplete, its TLS files fail, or a server already
 * runs for it. Freed with serve_free.
 */
struct server *serve_new(struct state *);
/*
 * Listen and serve until SIGTERM or SIGINT. 0 after a clean stop, -1 when
 * it cannot listen or the loop fails; the reason is logged.
 */
int serve_run(struct server *);
void serve_free(struct server *);

#endif

/*
 * agent: xcompd's state machine. It resolves the SRV records, orders them,
 * connects to one node after another until one authenticates, watches the
 * session with XEP-0199 pings, fails over to a different node when the
 * session drops, backs off only after every node has failed once, and keeps
 * the status file current.
 * Functions returning int return 0 on success and -1 on failure.
 */
#ifndef XCOMP_AGENT_H
#define XCOMP_AGENT_H

#include "conf.h"
#include "loop.h"

struct agent;

/* The agent takes conf. -1 (err set) if the resolver cannot start. Freed with agent_free. */
struct agent *agent_new(struct loop *, struct conf *, char *err, size_t errlen);
void agent_start(struct agent *);
/*
 * Adopt a new configuration (SIGHUP); reconnect only when something that
 * matters for the session changed. The agent takes conf.
 */
void agent_reload(struct agent *, struct conf *);
/*
 * A new configuration could not be read (SIGHUP): say so in the log and the
 * status file (last-error=config) and keep running with the old one.
 */
void agent_config_error(struct agent *, const char *why);
/* Close the stream politely, write state=stopped, then loop_break. */
void agent_stop(struct agent *);
void agent_free(struct agent *);

#endif

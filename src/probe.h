/*
 * probe: "xcomp probe", one attempt at each node, step by step, with the
 * agent's own code (resolver, io, TLS, stream parser, handshake digest)
 * inside the loop: the SRV records, the node's addresses, the TCP connect,
 * TLS with the chain as received, the stream header, the handshake and a
 * polite close. Each step is timed and printed for a person; a node stops
 * at its first failure, which names the section of xcomp-troubleshooting(7)
 * to read. Nothing is kept: each session is closed after its handshake.
 * Functions returning int return 0 on success and -1 on failure.
 */
#ifndef XCOMP_PROBE_H
#define XCOMP_PROBE_H

#include <stdio.h>
#include <time.h>

#include "conf.h"
#include "loop.h"

struct probe_opts {
	/*
	 * The agent's configuration, checked as conf_finish does. secret is
	 * NULL when the secret file was refused; secret_why then says why, and
	 * each node stops before its handshake with a configuration error.
	 */
	const struct conf *conf;
	const char *secret_why;
	/*
	 * One node (HOST[:PORT]); NULL: the SRV records, or the server list.
	 * port 0: not given; the port of HOST's SRV records (or of its
	 * server line), else the configuration's port.
	 */
	const char *host;
	int port;
	/*
	 * The node where the running agent holds its session, from its
	 * status file ("target:port" and the address), or NULL. That node
	 * is not asked for a second session: a kick-new server would refuse
	 * it (conflict), a kick-old one would drop the agent's.
	 */
	const char *agent_server;
	const char *agent_address;
	FILE *out;
};

struct probe;

/*
 * A probe with its resolver and TLS credentials; opts and what it points
 * to must outlive it. NULL with err set when either cannot start. Freed
 * with probe_free.
 */
struct probe *probe_new(struct loop *, const struct probe_opts *, char *err, size_t errlen);
/* Start; the probe calls loop_break when every node has been tried. */
void probe_start(struct probe *);
/*
 * Once the loop has stopped: 0 when every node passed, -1 when a node (or
 * the SRV lookup) failed or none was probed.
 */
int probe_result(const struct probe *);
/* 1 when a node stopped at a configuration error (the secret file was refused), else 0. */
int probe_config_error(const struct probe *);
void probe_free(struct probe *);

/* "expires in 364 days", "expired 3 days ago": for a certificate's end date. */
void probe_expiry_words(time_t not_after, time_t now, char *buf, size_t len);

#endif

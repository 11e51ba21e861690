/*
 * relay: the call bridge's way to the cluster through the agent. A local
 * XEP-0114 component connects to the agent as if it were an XMPP server and
 * authenticates with the agent's own stream id; its stanzas go upstream
 * unmodified over whichever node is alive, queued (up to a cap) while none
 * is, and upstream stanzas come back to it. With replay on, what was
 * written upstream is kept until a ping reply proves the node read past it,
 * and is sent again after a failover: at-least-once delivery.
 * Functions returning int return 0 on success and -1 on failure.
 */
#ifndef XCOMP_RELAY_H
#define XCOMP_RELAY_H

#include <stddef.h>

#include "loop.h"
#include "xs.h"

struct relay;

/* What the relay needs from the agent's upstream session. */
struct relay_upstream {
	/* Write raw bytes upstream; -1 when no session is authenticated or it is full. */
	int (*send)(void *arg, const char *p, size_t n);
	/* Send a ping upstream with this id (an acknowledgement probe). */
	void (*ping)(void *arg, const char *id);
	/* Something the status file shows changed. */
	void (*changed)(void *arg);
};

struct relay_conf {
	const char *listen;    /* "HOST:PORT" or "unix:PATH" */
	const char *component; /* the JID the local component must name */
	const char *secret;    /* what it must prove */
	size_t queue_max;      /* bytes held (queued and unacknowledged) */
	int replay;
};

/* Listen; NULL with err set. Freed with relay_free. */
struct relay *relay_new(struct loop *, const struct relay_conf *, const struct relay_upstream *,
    void *arg, char *err, size_t errlen);
void relay_free(struct relay *);
/* A new secret (SIGHUP) for the next local session. */
void relay_set_secret(struct relay *, const char *secret);

/* The upstream session authenticated: replay, then flush the queue, in order. */
void relay_upstream_up(struct relay *);
/* The upstream session ended. */
void relay_upstream_down(struct relay *);
/* A stanza from upstream: to the local component, or answered when there is none. */
void relay_from_upstream(struct relay *, const struct xs_elem *, const char *raw, size_t len);
/* A reply (result or error) to a ping the relay asked for. */
void relay_ping_reply(struct relay *, const char *id);
/* Whether an iq id is one of the relay's acknowledgement pings. */
int relay_ping_id(const char *id);

/* For the status file. */
const char *relay_state(const struct relay *); /* "listening" or "connected" */
size_t relay_queued(const struct relay *);
unsigned long relay_bounced(const struct relay *);

#endif

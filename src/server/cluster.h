/*
 * cluster: xcomp-server nodes that elect a leader and route stanzas to each
 * other, the seed's resilient XMPP cluster. Raft's leader election
 * (raft.c) runs over mutually authenticated TLS links between the members
 * (DIR/cluster, members.c). Every node tells the others which components
 * are online on it; a stanza for a component on another node goes straight
 * to that node, or through the leader when there is no direct link. The
 * leader decides joins and removals.
 *
 * serve.c owns the component sessions and reaches them through the hooks.
 * Functions returning int return 0 on success and -1 on failure.
 */
#ifndef XCOMP_CLUSTER_H
#define XCOMP_CLUSTER_H

#include <stddef.h>

#include "buf.h"
#include "loop.h"
#include "state.h"
#include "xs.h"

struct cluster;

struct cluster_hooks {
	/*
	 * A stanza from another node (serialised for a component stream) for the
	 * local component jid; -1 when it is not online here or cannot take it.
	 */
	int (*deliver)(void *arg, const char *jid, const char *stanza, size_t len);
	/* Another node took the component under kick-old: end its sessions here. */
	void (*kick)(void *arg, const char *jid, const char *where);
	/*
	 * A member says jid is online there (where: its address). With jid
	 * online here too, theirs_wins says which session the policy keeps
	 * when it keeps one: the same on both nodes.
	 */
	void (*remote_up)(void *arg, const char *jid, const char *where, int theirs_wins);
	/* Call fn for each component online here. */
	void (*each_local)(void *arg, void (*fn)(void *fnarg, const char *jid), void *fnarg);
	void *arg;
};

/* The answer to a control request: the CLI's exit status and its text. */
typedef void cluster_reply_fn(void *arg, int status, const char *text);

/*
 * A running cluster for st (enabled, its files checked): listens, dials
 * the members. NULL with err set when it cannot start.
 */
struct cluster *cluster_new(
    struct loop *, const struct state *, const struct cluster_hooks *, char *err, size_t errlen);
void cluster_free(struct cluster *);

/* The cluster listener's "IP:PORT" for DIR/listening. */
const char *cluster_listen_name(const struct cluster *);

/* A component came online here, or went. */
void cluster_local_up(struct cluster *, const char *jid);
void cluster_local_down(struct cluster *, const char *jid);

/*
 * Is jid online on another node that can be reached now? Then where ("IP:PORT")
 * for messages; NULL otherwise.
 */
const char *cluster_holder(struct cluster *, const char *jid);
/* Send a stanza for jid to the node that holds it: -1 when none can take it. */
int cluster_forward(struct cluster *, const char *jid, const struct xs_elem *stanza);
/* kick-old: ask the nodes that hold jid to end its sessions. */
void cluster_kick(struct cluster *, const char *jid);

/*
 * A control request (argv: "status", "initialize", "join" ADDR, "remove"
 * PEER). reply is called exactly once, perhaps later (a join waits for the
 * leader); cluster_free answers a request still waiting.
 */
void cluster_control(struct cluster *, int argc, char **argv, cluster_reply_fn *, void *arg);

/* "cluster status" for a server whose cluster is disabled. */
void cluster_status_disabled(const struct state *, struct buf *);

#endif

/*
 * cluster_impl: what cluster.c and link.c share. cluster.c is the cluster:
 * members, Raft, routes, requests, status; link.c carries its messages:
 * one TLS connection to or from another node, its stream and hello. Not for
 * anything else to include.
 */
#ifndef XCOMP_CLUSTER_IMPL_H
#define XCOMP_CLUSTER_IMPL_H

#include <stdint.h>
#include <time.h>

#include "accept.h"
#include "cluster.h"
#include "io.h"
#include "members.h"
#include "raft.h"
#include "timer.h"
#include "xs.h"

#define CLUSTER_NS "urn:xcomp:cluster:1"
#define LINK_OUT_MAX (16u << 20)
/* TCP keepalive idle and probe interval of the links; TCP_USER_TIMEOUT is twice it. */
#define LINK_TCP_IDLE_S 5
#define EVENTS_MAX 4

struct cluster;

struct link {
	struct cluster *cl;
	struct io *io;
	struct xs *xs;
	int outgoing;
	int joining; /* this node's link for its own join request */
	int secured; /* TLS done, our header and hello sent */
	uint32_t id; /* the peer's id from its hello; 0 before */
	char addr[MEMBERS_ADDR_MAX];
	struct timer dial; /* an outgoing link's connect and TLS handshake */
	struct link *prev, *next;
};

struct peer {
	uint32_t id;
	char addr[MEMBERS_ADDR_MAX];
	struct link *out; /* our link to it */
	struct timer retry;
	unsigned fails;
	uint64_t heard; /* when a message from it last arrived (ms); 0: never */
	time_t lost_at; /* when it stopped being heard; 0 while it is */
	int was_alive;
	char why[300]; /* why our last link to it failed */
	char **routes; /* the components online there */
	size_t nroutes;
	struct cluster *cl;
};

/* REQ_JOINED: accepted, waiting to hear from the leader before saying so. */
enum request_kind { REQ_NONE, REQ_JOIN, REQ_JOINED, REQ_REMOVE };

struct request {
	enum request_kind kind;
	cluster_reply_fn *fn;
	void *arg;
	uint32_t seq;
	char target[MEMBERS_ADDR_MAX];
	struct link *link; /* a join: our link to the node asked */
	struct timer timeout;
};

struct cluster {
	struct loop *loop;
	const struct state *st;
	struct cluster_hooks h;
	struct tls_ctx *server_tls, *client_tls;
	struct accept_listener *al;
	char name[MEMBERS_ADDR_MAX]; /* our cluster address */
	struct xs_limits limits;
	struct members m;
	struct raft raft;
	int in_raft; /* this node is in its member list */
	struct peer peers[MEMBERS_MAX];
	size_t npeers;
	struct link *links;
	struct timer raft_timer, ka_timer;
	enum raft_role role; /* Raft's role, leader and term as last logged */
	uint32_t leader;
	uint64_t term;
	time_t changed_at; /* when the status's State or leader last changed */
	const char *shown; /* that State */
	uint32_t shown_leader;
	int had_majority;
	char events[EVENTS_MAX][300];
	size_t nevents;
	struct request req;
	uint32_t seq;
	struct raft_settings set;
	struct buf scratch; /* a forwarded stanza's frame, kept between stanzas */
};

/* link.c */

/* Dial addr ("IP:PORT"); NULL with why set when not even a socket. */
struct link *link_dial(struct cluster *, const char *addr, char *why, size_t len);
/* The cluster listener's accept_fn (arg: the cluster). */
void link_accept(void *arg, int fd);
/* Queue a message; -1 (and the link freed) when the queue is full or the link not up. */
int link_send(struct link *, const char *, size_t);
/* Flush what is queued as far as the socket takes it. */
void link_flush(struct link *);
/* Close and free; cluster_link_gone is told first. */
void link_free(struct link *);

/* cluster.c, for link.c */

/* The link failed before it was up, for why; it is freed. */
void cluster_link_failed(struct link *, const char *why);
/* Our header and hello went out on l. */
void cluster_link_up(struct link *);
/* l is about to be freed. */
void cluster_link_gone(struct link *);
/* The peer's hello arrived (l->id and l->addr are set from it). */
void cluster_on_hello(struct link *, uint32_t id, uint64_t epoch);
/* Any other message; 0 to go on, -1 when l is gone. */
int cluster_on_message(struct link *, const struct xs_elem *, const char *raw, size_t rawlen);

const char *cluster_hex_id(uint32_t id, char buf[9]);
uint32_t cluster_parse_id(const char *);
uint64_t cluster_parse_u64(const char *);

#endif

/*
 * members: the cluster's membership as this node keeps it, in DIR/cluster
 * ("key = value", replaced atomically and fsynced: Raft's term and vote
 * must be on disk before the messages that depend on them leave), and the
 * pure decisions about who may join. The leader owns the list: it raises
 * epoch with every change and the others take a list only with a higher
 * epoch than theirs.
 *
 *	id = 1a2b3c4d              this node (hex, never 0)
 *	epoch = 3                  version of the member list
 *	term = 5                   Raft: the current term ...
 *	voted-for = 0              ... and the vote cast in it (0: none)
 *	member = 1a2b3c4d 127.0.0.1:5400
 *	member = 0badcafe 127.0.0.2:5400
 *
 * Functions returning int return 0 on success and -1 on failure; on
 * failure err holds a message for the operator.
 */
#ifndef XCOMP_MEMBERS_H
#define XCOMP_MEMBERS_H

#include <stddef.h>
#include <stdint.h>

#include "raft.h"

#define MEMBERS_MAX RAFT_MAX_MEMBERS
#define MEMBERS_ADDR_MAX 80

struct member {
	uint32_t id;
	char addr[MEMBERS_ADDR_MAX]; /* "IP:PORT", where its cluster listener is */
};

struct members {
	uint32_t self; /* 0 until the node initializes or joins a cluster */
	uint64_t epoch;
	uint64_t term;
	uint32_t voted_for;
	struct member m[MEMBERS_MAX];
	size_t n;
};

/* DIR/cluster; a missing file is an empty membership (all zero). */
int members_load(const char *dir, struct members *, char *err, size_t errlen);
/* Write DIR/cluster atomically (temporary file, fsync, rename, fsync of DIR). */
int members_save(const char *dir, const struct members *, char *err, size_t errlen);

/* A random id, never 0 (GnuTLS random). */
uint32_t members_new_id(void);

struct member *members_by_id(struct members *, uint32_t id);
struct member *members_by_addr(struct members *, const char *addr);
/* -1 when full or id is already there. */
int members_add(struct members *, uint32_t id, const char *addr);
/* -1 when id is not a member. */
int members_del(struct members *, uint32_t id);

/*
 * PEER as the operator names it in "cluster remove": an address
 * ("127.0.0.2:5400") or an id in hex ("0badcafe"). The member's id, or 0.
 */
uint32_t members_resolve(const struct members *, const char *peer);

/*
 * The epoch of the next list made by a leader in term: above the current
 * one, and above every epoch a leader of an earlier term can make (2^20
 * changes a term), so that lists order by (term of the change, count) and a
 * deposed leader's late change loses to its successor's. Two leaders never
 * share a term (Raft), so one epoch names one list.
 */
uint64_t members_next_epoch(uint64_t epoch, uint64_t term);

/*
 * Gossip: take theirs when its epoch is higher (self, term and vote stay
 * ours). 1 when taken. Every member passes its list to any member whose
 * epoch is lower, so the members converge on the newest list.
 */
int members_merge(struct members *mine, const struct members *theirs);

/* The answer to a join request, decided by the leader. */
enum members_join {
	MEMBERS_JOIN_ADD,     /* a new member */
	MEMBERS_JOIN_AGAIN,   /* already a member under this id: its address is updated */
	MEMBERS_JOIN_REPLACE, /* the address is a member that no live node hears: replace it */
	MEMBERS_JOIN_LIVE,    /* refused: a live member has that address */
	MEMBERS_JOIN_FULL     /* refused: MEMBERS_MAX members already */
};

/*
 * Decide a join of id at addr. alive(arg, member_id) is 1 when the leader
 * heard from that member recently. *other: with REPLACE and LIVE, the
 * member that has the address.
 */
enum members_join members_join_verdict(const struct members *, uint32_t id, const char *addr,
    int (*alive)(void *arg, uint32_t id), void *arg, uint32_t *other);

#endif

/*
 * raft: leader election for the xcomp-server cluster, as a pure state
 * machine. The algorithm is Raft's leader election (Ongaro and Ousterhout,
 * "In Search of an Understandable Consensus Algorithm", USENIX ATC 2014,
 * section 5.2) with Pre-Vote and CheckQuorum (Ongaro's thesis, sections 9.6
 * and 6.2), following etcd-io/raft's raft.go. The cluster replicates no log,
 * so section 5.4.1's election restriction does not apply: a vote is granted
 * on the term alone, to the first candidate that asks in that term.
 *
 * Nothing here does I/O or reads a clock: the caller passes the time in
 * milliseconds (CLOCK_MONOTONIC), a random source, and the messages it
 * received; each call fills an output array with the messages to send.
 * Messages may be lost, delayed, duplicated or reordered; safety (at most one
 * leader per term) holds regardless, provided that term and voted_for are on
 * disk before the messages of the call that changed them are sent.
 *
 * Membership is a plain list set by raft_set_members(); there is no joint
 * consensus and the list is not replicated. Changing it by more than one
 * member at a time, or nodes disagreeing about it, can let two disjoint
 * majorities exist and so two leaders in one term: add or remove one member
 * at a time, and let the change reach every member before the next one.
 * Functions returning int return 0 on success and -1 on failure.
 */
#ifndef XCOMP_RAFT_H
#define XCOMP_RAFT_H

#include <stddef.h>
#include <stdint.h>

#define RAFT_MAX_MEMBERS 16
#define RAFT_NONE 0 /* no node: ids are never 0 */
/* A call sends at most one message to each other member; twice that is room to spare. */
#define RAFT_OUT_MAX (2 * RAFT_MAX_MEMBERS)

enum raft_role { RAFT_FOLLOWER, RAFT_PRE_CANDIDATE, RAFT_CANDIDATE, RAFT_LEADER };

enum raft_msg_type {
	RAFT_MSG_PRE_VOTE,
	RAFT_MSG_PRE_VOTE_RESP,
	RAFT_MSG_VOTE,
	RAFT_MSG_VOTE_RESP,
	RAFT_MSG_HEARTBEAT, /* AppendEntries without entries */
	RAFT_MSG_HEARTBEAT_RESP
};

struct raft_msg {
	enum raft_msg_type type;
	uint32_t from, to;
	uint64_t term;
	int reject; /* in responses: 1 when the (pre-)vote is refused */
};

struct raft_out {
	struct raft_msg msg[RAFT_OUT_MAX];
	size_t n;
};

/* Timing, in milliseconds; raft_settings_default() sets the defaults. */
struct raft_settings {
	uint32_t heartbeat_ms; /* default 200: a leader's heartbeat interval */
	/*
	 * Default 1000. A follower campaigns after a random time in
	 * [election_ms, 2 * election_ms) without a heartbeat; a leader steps
	 * down as soon as it has not heard from a majority (itself included)
	 * for election_ms, before another can be elected; a node that
	 * heard from its leader less than election_ms ago refuses to vote.
	 */
	uint32_t election_ms;
};

/* The random source: a value in [0, bound). */
typedef uint32_t (*raft_rnd_fn)(void *arg, uint32_t bound);

struct raft_member {
	uint32_t id;
	uint64_t last_heard; /* when a message from it last arrived; 0: never */
	uint64_t last_ack;   /* leader: its last heartbeat response in this term */
	int vote;            /* in this campaign: 1 granted, -1 refused, 0 no answer */
};

struct raft {
	uint32_t id;
	struct raft_settings set;
	raft_rnd_fn rnd;
	void *rnd_arg;
	struct raft_member members[RAFT_MAX_MEMBERS]; /* may include this node */
	size_t nmembers;

	/* The persistent part: saved before sending what changed them. */
	uint64_t term;
	uint32_t voted_for; /* RAFT_NONE when it has not voted in term */

	enum raft_role role;
	uint32_t leader; /* RAFT_NONE when unknown */
	/*
	 * etcd's electionElapsed as a start time: when the election timer was
	 * last reset (a heartbeat from the leader, a vote granted, a role change;
	 * for a leader, the last CheckQuorum).
	 */
	uint64_t elapsed_from;
	uint32_t timeout_ms;    /* this round's randomized election timeout */
	uint64_t heartbeat_due; /* leader: when to send the next heartbeats */
	uint64_t changed_at;    /* when role or leader last changed */
};

/* What cluster status prints. */
struct raft_status {
	enum raft_role role;
	uint64_t term;
	uint32_t leader;
	/*
	 * 1 when this node is a leader that heard from a majority (itself
	 * included) within election_ms (a member added meanwhile counts as
	 * heard when added), or a follower that heard from its leader within
	 * election_ms; 0 is the status's NO QUORUM.
	 */
	int quorum;
	uint64_t changed_at;
};

void raft_settings_default(struct raft_settings *);

/*
 * Starts a node as a follower with the persisted term and voted_for (0 and
 * RAFT_NONE for a new node) and no members: call raft_set_members() next.
 * A node restarted this way refuses a second vote in the term it voted in.
 */
void raft_init(struct raft *, uint32_t id, const struct raft_settings *, uint64_t term,
    uint32_t voted_for, uint64_t now, raft_rnd_fn rnd, void *rnd_arg);

/*
 * Replaces the member list (ids other than RAFT_NONE, no duplicates, at most
 * RAFT_MAX_MEMBERS). Members kept keep their last_heard. A node not in the
 * list never campaigns, and a leader not in it steps down.
 */
int raft_set_members(struct raft *, const uint32_t *ids, size_t n, uint64_t now);

/* Advances the timers to now: campaigns, heartbeats, CheckQuorum. Fills out. */
void raft_tick(struct raft *, uint64_t now, struct raft_out *out);

/*
 * The transport knows the leader is gone (its connection closed: the
 * process died). A follower forgets it, which also ends its lease, and
 * campaigns at a random moment within a heartbeat interval instead of an
 * election timeout. Followers that still hear the leader refuse the
 * pre-vote, so a false alarm deposes nobody. Not in etcd, whose transport
 * says nothing of connections.
 */
void raft_leader_lost(struct raft *, uint64_t now);

/*
 * etcd's MsgHup: campaign now (with Pre-Vote) instead of waiting out the
 * election timeout; a one-node cluster becomes its leader at once.
 */
void raft_campaign_now(struct raft *, uint64_t now, struct raft_out *out);

/*
 * Handles one received message; fills out with the replies. Messages not for
 * this node or from a non-member are ignored.
 */
void raft_step(struct raft *, uint64_t now, const struct raft_msg *in, struct raft_out *out);

/* The earliest time raft_tick() has something to do: the caller's timer. */
uint64_t raft_next_deadline(const struct raft *);

void raft_state(const struct raft *, uint64_t now, struct raft_status *);

/* 1 when a message from member id arrived within election_ms (this node: always 1). */
int raft_member_alive(const struct raft *, uint32_t id, uint64_t now);

const char *raft_role_name(enum raft_role);

#endif

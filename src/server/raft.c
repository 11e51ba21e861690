/*
 * raft: Raft's leader election (Ongaro and Ousterhout, "In Search of an
 * Understandable Consensus Algorithm", section 5.2) with Pre-Vote (thesis
 * 9.6) and CheckQuorum (thesis 6.2), as a pure state machine for the
 * xcomp-server cluster. The functions mirror etcd-io/raft's raft.go:
 * raft_become_* its becomeFollower/becomePreCandidate/becomeCandidate/
 * becomeLeader, raft_campaign its campaign, raft_step its Step with
 * stepLeader/stepCandidate/stepFollower, raft_tick its tickElection and
 * tickHeartbeat. Where etcd counts ticks this counts milliseconds: its
 * electionElapsed is now - elapsed_from. See raft.h for what the caller owes.
 */
#include <string.h>

#include "server/raft.h"

enum raft_tally { RAFT_PENDING, RAFT_WON, RAFT_LOST };

void
raft_settings_default(struct raft_settings *set)
{
	set->heartbeat_ms = 200;
	set->election_ms = 1000;
}

static struct raft_member *
raft_member(struct raft *r, uint32_t id)
{
	size_t i;

	for (i = 0; i < r->nmembers; i++)
		if (r->members[i].id == id)
			return &r->members[i];
	return NULL;
}

static const struct raft_member *
raft_member_const(const struct raft *r, uint32_t id)
{
	return raft_member((struct raft *)r, id);
}

/* Members needed for a majority. */
static size_t
raft_quorum(const struct raft *r)
{
	return r->nmembers / 2 + 1;
}

static void
raft_send(struct raft *r, struct raft_out *out, enum raft_msg_type type, uint32_t to, uint64_t term,
    int reject)
{
	struct raft_msg *m;

	/* Each call sends at most one message per other member: never full. */
	if (out->n >= RAFT_OUT_MAX)
		return;
	m = &out->msg[out->n++];
	m->type = type;
	m->from = r->id;
	m->to = to;
	m->term = term;
	m->reject = reject;
}

/* etcd's resetRandomizedElectionTimeout: a timeout in [election, 2 * election). */
static void
raft_reset_timer(struct raft *r, uint64_t now)
{
	r->elapsed_from = now;
	r->timeout_ms = r->set.election_ms + r->rnd(r->rnd_arg, r->set.election_ms);
}

static void
raft_set_role(struct raft *r, enum raft_role role, uint32_t leader, uint64_t now)
{
	if (r->role != role || r->leader != leader)
		r->changed_at = now;
	r->role = role;
	r->leader = leader;
}

static void
raft_reset_votes(struct raft *r)
{
	size_t i;

	for (i = 0; i < r->nmembers; i++)
		r->members[i].vote = 0;
}

/* etcd's reset: a new term forgets the vote; the leader and the votes are forgotten. */
static void
raft_reset(struct raft *r, uint64_t term, uint64_t now)
{
	if (r->term != term) {
		r->term = term;
		r->voted_for = RAFT_NONE;
	}
	raft_reset_timer(r, now);
	raft_reset_votes(r);
}

static void
raft_become_follower(struct raft *r, uint64_t term, uint32_t leader, uint64_t now)
{
	raft_reset(r, term, now);
	raft_set_role(r, RAFT_FOLLOWER, leader, now);
}

/* Neither the term nor the vote changes: a failed pre-campaign disturbs nobody. */
static void
raft_become_pre_candidate(struct raft *r, uint64_t now)
{
	raft_reset_votes(r);
	raft_set_role(r, RAFT_PRE_CANDIDATE, RAFT_NONE, now);
}

static void
raft_become_candidate(struct raft *r, uint64_t now)
{
	raft_reset(r, r->term + 1, now);
	r->voted_for = r->id;
	raft_set_role(r, RAFT_CANDIDATE, RAFT_NONE, now);
}

static void
raft_bcast_heartbeat(struct raft *r, uint64_t now, struct raft_out *out)
{
	size_t i;

	for (i = 0; i < r->nmembers; i++)
		if (r->members[i].id != r->id)
			raft_send(r, out, RAFT_MSG_HEARTBEAT, r->members[i].id, r->term, 0);
	r->heartbeat_due = now + r->set.heartbeat_ms;
}

/* Heartbeats at once (etcd's bcastAppend after becomeLeader) tell the others who won. */
static void
raft_become_leader(struct raft *r, uint64_t now, struct raft_out *out)
{
	raft_reset(r, r->term, now);
	raft_set_role(r, RAFT_LEADER, r->id, now);
	raft_bcast_heartbeat(r, now, out);
}

/* etcd's poll and TallyVotes: only the first answer of each member counts. */
static enum raft_tally
raft_poll(struct raft *r, uint32_t id, int granted)
{
	struct raft_member *m;
	size_t i, yes = 0, no = 0;

	if ((m = raft_member(r, id)) != NULL && m->vote == 0)
		m->vote = granted ? 1 : -1;
	for (i = 0; i < r->nmembers; i++) {
		if (r->members[i].vote > 0)
			yes++;
		else if (r->members[i].vote < 0)
			no++;
	}
	if (yes >= raft_quorum(r))
		return RAFT_WON;
	if (no >= raft_quorum(r))
		return RAFT_LOST;
	return RAFT_PENDING;
}

static void
raft_campaign(struct raft *r, int pre, uint64_t now, struct raft_out *out)
{
	enum raft_msg_type type;
	uint64_t term;
	size_t i;

	if (pre) {
		raft_become_pre_candidate(r, now);
		type = RAFT_MSG_PRE_VOTE;
		/* Asks about the term a real campaign would use, without moving to it. */
		term = r->term + 1;
	} else {
		raft_become_candidate(r, now);
		type = RAFT_MSG_VOTE;
		term = r->term;
	}
	if (raft_poll(r, r->id, 1) == RAFT_WON) {
		/* A cluster of one wins at once. */
		if (pre)
			raft_campaign(r, 0, now, out);
		else
			raft_become_leader(r, now, out);
		return;
	}
	for (i = 0; i < r->nmembers; i++)
		if (r->members[i].id != r->id)
			raft_send(r, out, type, r->members[i].id, term, 0);
}

void
raft_init(struct raft *r, uint32_t id, const struct raft_settings *set, uint64_t term,
    uint32_t voted_for, uint64_t now, raft_rnd_fn rnd, void *rnd_arg)
{
	memset(r, 0, sizeof(*r));
	r->id = id;
	r->set = *set;
	r->rnd = rnd;
	r->rnd_arg = rnd_arg;
	r->term = term;
	r->voted_for = voted_for;
	r->role = RAFT_FOLLOWER;
	r->leader = RAFT_NONE;
	r->changed_at = now;
	raft_reset_timer(r, now);
}

int
raft_set_members(struct raft *r, const uint32_t *ids, size_t n, uint64_t now)
{
	struct raft_member next[RAFT_MAX_MEMBERS];
	const struct raft_member *old;
	size_t i, j;

	if (n > RAFT_MAX_MEMBERS)
		return -1;
	for (i = 0; i < n; i++) {
		if (ids[i] == RAFT_NONE)
			return -1;
		for (j = 0; j < i; j++)
			if (ids[j] == ids[i])
				return -1;
		memset(&next[i], 0, sizeof(next[i]));
		next[i].id = ids[i];
		/* A leader gives a new member an election timeout to answer, as at its election. */
		if (r->role == RAFT_LEADER)
			next[i].last_ack = now;
		if ((old = raft_member(r, ids[i])) != NULL)
			next[i] = *old;
	}
	memcpy(r->members, next, n * sizeof(next[0]));
	r->nmembers = n;
	if (r->role == RAFT_LEADER && raft_member(r, r->id) == NULL)
		raft_become_follower(r, r->term, RAFT_NONE, now);
	return 0;
}

/*
 * CheckQuorum as a sliding window: the time until which a majority (this
 * node included) has answered within election_ms; with grace, each answer
 * counts as no older than the election (the grace etcd gives a new leader).
 * etcd checks once per election timeout, and so may lead for up to two of
 * them without a majority: longer than the others need to elect a new
 * leader, which would make two leaders at once. Stepping down election_ms
 * after the last answers means stepping down before any other can win:
 * its voters stop hearing this node no earlier than it stops hearing them,
 * and refuse to vote for election_ms after that (the lease).
 */
static uint64_t
raft_quorum_until(const struct raft *r, int grace)
{
	uint64_t acks[RAFT_MAX_MEMBERS], a;
	size_t i, j, n = 0, need = raft_quorum(r);

	if (raft_member_const(r, r->id) != NULL)
		need--; /* this node's own vote */
	if (need == 0)
		return UINT64_MAX;
	for (i = 0; i < r->nmembers; i++) {
		if (r->members[i].id == r->id)
			continue;
		/* Answers from before this election (an earlier term) do not count. */
		a = r->members[i].last_ack;
		if (a < r->elapsed_from)
			a = grace ? r->elapsed_from : 0;
		/* Insertion sort, latest first: at most RAFT_MAX_MEMBERS. */
		for (j = n++; j > 0 && acks[j - 1] < a; j--)
			acks[j] = acks[j - 1];
		acks[j] = a;
	}
	if (n < need || acks[need - 1] == 0)
		return 0; /* no majority at all */
	return acks[need - 1] + r->set.election_ms;
}

static void
raft_tick_leader(struct raft *r, uint64_t now, struct raft_out *out)
{
	/* CheckQuorum: a leader cut off from the majority must not stay one. */
	if (now >= raft_quorum_until(r, 1)) {
		raft_become_follower(r, r->term, RAFT_NONE, now);
		return;
	}
	if (now >= r->heartbeat_due)
		raft_bcast_heartbeat(r, now, out);
}

void
raft_tick(struct raft *r, uint64_t now, struct raft_out *out)
{
	out->n = 0;
	if (r->role == RAFT_LEADER) {
		raft_tick_leader(r, now, out);
		return;
	}
	if (now - r->elapsed_from < r->timeout_ms)
		return;
	/* etcd resets electionElapsed but keeps the randomized timeout until reset(). */
	r->elapsed_from = now;
	if (raft_member(r, r->id) != NULL)
		raft_campaign(r, 1, now, out);
}

void
raft_leader_lost(struct raft *r, uint64_t now)
{
	if (r->role != RAFT_FOLLOWER || r->leader == RAFT_NONE)
		return;
	raft_set_role(r, RAFT_FOLLOWER, RAFT_NONE, now);
	/* Not all followers at the same moment: a split vote costs a whole timeout. */
	r->elapsed_from = now;
	r->timeout_ms = 1 + r->rnd(r->rnd_arg, r->set.heartbeat_ms);
}

void
raft_campaign_now(struct raft *r, uint64_t now, struct raft_out *out)
{
	out->n = 0;
	if (r->role == RAFT_LEADER || raft_member(r, r->id) == NULL)
		return;
	r->elapsed_from = now;
	raft_campaign(r, 1, now, out);
}

/*
 * etcd's inLease. A leader is always in it: etcd's leader resets its
 * electionElapsed in the tick that reaches the timeout, so no message finds
 * it past; here a message may come between the timeout and the tick.
 */
static int
raft_in_lease(const struct raft *r, uint64_t now)
{
	return r->role == RAFT_LEADER ||
	       (r->leader != RAFT_NONE && now - r->elapsed_from < r->set.election_ms);
}

/* etcd's Step: the term checks every message goes through first. 0: go on; -1: done. */
static int
raft_step_term(struct raft *r, uint64_t now, const struct raft_msg *m, struct raft_out *out)
{
	if (m->term > r->term) {
		if (m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PRE_VOTE) {
			/*
			 * Within the minimum election timeout of hearing from a
			 * current leader, neither update the term nor vote: a node
			 * rejoining after isolation does not depose a healthy leader.
			 */
			if (raft_in_lease(r, now))
				return -1;
		}
		if (m->type == RAFT_MSG_PRE_VOTE)
			; /* never change the term for a pre-vote */
		else if (m->type == RAFT_MSG_PRE_VOTE_RESP && !m->reject)
			; /* our own future term: moved to when the pre-vote is won */
		else if (m->type == RAFT_MSG_HEARTBEAT)
			raft_become_follower(r, m->term, m->from, now);
		else
			raft_become_follower(r, m->term, RAFT_NONE, now);
		return 0;
	}
	if (m->term < r->term) {
		/* A stale leader learns the newer term from the answer and steps down. */
		if (m->type == RAFT_MSG_HEARTBEAT)
			raft_send(r, out, RAFT_MSG_HEARTBEAT_RESP, m->from, r->term, 0);
		else if (m->type == RAFT_MSG_PRE_VOTE)
			raft_send(r, out, RAFT_MSG_PRE_VOTE_RESP, m->from, r->term, 1);
		return -1;
	}
	return 0;
}

/* First come, first served per term: no log, so no election restriction (5.4.1). */
static void
raft_step_vote(struct raft *r, uint64_t now, const struct raft_msg *m, struct raft_out *out)
{
	int pre = m->type == RAFT_MSG_PRE_VOTE;
	enum raft_msg_type resp = pre ? RAFT_MSG_PRE_VOTE_RESP : RAFT_MSG_VOTE_RESP;
	int can_vote;

	can_vote = r->voted_for == m->from ||
	           (r->voted_for == RAFT_NONE && r->leader == RAFT_NONE) ||
	           (pre && m->term > r->term);
	if (!can_vote) {
		raft_send(r, out, resp, m->from, r->term, 1);
		return;
	}
	/* The answer carries the asked term: a pre-vote's is in our future. */
	raft_send(r, out, resp, m->from, m->term, 0);
	if (!pre) {
		r->elapsed_from = now;
		r->voted_for = m->from;
	}
}

static void
raft_step_candidate(struct raft *r, uint64_t now, const struct raft_msg *m, struct raft_out *out)
{
	int pre = r->role == RAFT_PRE_CANDIDATE;
	enum raft_tally t;

	if (m->type == RAFT_MSG_HEARTBEAT) {
		raft_become_follower(r, m->term, m->from, now);
		raft_send(r, out, RAFT_MSG_HEARTBEAT_RESP, m->from, r->term, 0);
		return;
	}
	if (m->type != (pre ? RAFT_MSG_PRE_VOTE_RESP : RAFT_MSG_VOTE_RESP))
		return;
	/* Stricter than etcd: a grant from an earlier pre-campaign does not count. */
	if (pre && !m->reject && m->term != r->term + 1)
		return;
	t = raft_poll(r, m->from, !m->reject);
	if (t == RAFT_WON) {
		if (pre)
			raft_campaign(r, 0, now, out);
		else
			raft_become_leader(r, now, out);
	} else if (t == RAFT_LOST)
		raft_become_follower(r, r->term, RAFT_NONE, now);
}

void
raft_step(struct raft *r, uint64_t now, const struct raft_msg *m, struct raft_out *out)
{
	struct raft_member *from;

	out->n = 0;
	if (m->to != r->id || m->from == r->id || (from = raft_member(r, m->from)) == NULL)
		return;
	from->last_heard = now;
	if (raft_step_term(r, now, m, out) == -1)
		return;
	if (m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PRE_VOTE) {
		raft_step_vote(r, now, m, out);
		return;
	}
	switch (r->role) {
	case RAFT_FOLLOWER:
		if (m->type == RAFT_MSG_HEARTBEAT) {
			r->elapsed_from = now;
			raft_set_role(r, RAFT_FOLLOWER, m->from, now);
			raft_send(r, out, RAFT_MSG_HEARTBEAT_RESP, m->from, r->term, 0);
		}
		break;
	case RAFT_PRE_CANDIDATE:
	case RAFT_CANDIDATE:
		raft_step_candidate(r, now, m, out);
		break;
	case RAFT_LEADER:
		if (m->type == RAFT_MSG_HEARTBEAT_RESP)
			from->last_ack = now;
		break;
	}
}

uint64_t
raft_next_deadline(const struct raft *r)
{
	uint64_t check;

	if (r->role != RAFT_LEADER)
		return r->elapsed_from + r->timeout_ms;
	check = raft_quorum_until(r, 1);
	return r->heartbeat_due < check ? r->heartbeat_due : check;
}

int
raft_member_alive(const struct raft *r, uint32_t id, uint64_t now)
{
	const struct raft_member *m;

	if (id == r->id)
		return 1;
	if ((m = raft_member_const(r, id)) == NULL || m->last_heard == 0)
		return 0;
	return now - m->last_heard < r->set.election_ms;
}

void
raft_state(const struct raft *r, uint64_t now, struct raft_status *st)
{
	st->role = r->role;
	st->term = r->term;
	st->leader = r->leader;
	st->changed_at = r->changed_at;
	st->quorum = 0;
	if (r->role == RAFT_LEADER)
		st->quorum = now < raft_quorum_until(r, 0); /* answers seen, no grace */
	else if (r->role == RAFT_FOLLOWER && r->leader != RAFT_NONE)
		st->quorum = raft_member_alive(r, r->leader, now);
}

const char *
raft_role_name(enum raft_role role)
{
	switch (role) {
	case RAFT_FOLLOWER:
		return "follower";
	case RAFT_PRE_CANDIDATE:
		return "pre-candidate";
	case RAFT_CANDIDATE:
		return "candidate";
	case RAFT_LEADER:
		return "leader";
	}
	return "unknown";
}

/*
 * Unit tests for server/raft.c: Raft's leader election driven as a pure
 * function. Single steps are checked by hand; whole clusters run in a small
 * simulator (a fake clock advanced in 10-ms steps, a network that delivers
 * each message after 1 to 20 ms unless a partition or scripted loss drops
 * it, nodes that can be paused like SIGSTOP or restarted from their
 * persisted term and vote). Every raft call in the simulator is followed by
 * the safety check: never two leaders in one term.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "server/raft.h"
#include "unit.h"

#define SIM_MAX 5
#define SIM_NET_MAX 8192
#define SIM_TERM_MAX 4096
#define SIM_STEP 10 /* ms */

struct sim_pkt {
	struct raft_msg m;
	uint64_t due;
};

struct sim {
	int n;
	struct raft_settings set;
	struct raft node[SIM_MAX];
	uint32_t node_rnd[SIM_MAX];
	uint32_t net_rnd;
	uint64_t now;
	int group[SIM_MAX]; /* a message crosses only within a group */
	int paused[SIM_MAX];
	uint32_t loss_pct, dup_pct;
	struct sim_pkt q[SIM_NET_MAX];
	size_t nq;
	uint32_t leader_of_term[SIM_TERM_MAX]; /* the safety map: term -> leader */
	/*
	 * Also never two leaders at one moment, whatever their terms: a leader
	 * cut off from the majority steps down before the majority can elect
	 * another (not with paused nodes: a stopped leader cannot step down).
	 */
	int one_at_a_time;
};

static struct sim sim; /* large: static, one run at a time */

/*
 * unit_rnd_seeded without its ck_assert: in Check every assertion, even one
 * that holds, writes to the runner, and the simulator's hot path would
 * spend its time there (and ten times that under valgrind).
 */
static uint32_t
sim_rnd(void *arg, uint32_t bound)
{
	uint32_t *x = arg;

	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return (uint32_t)(((uint64_t)*x * bound) >> 32);
}

/* No other node leads while node i does. */
static void
sim_check_one(struct sim *s, int i)
{
	int k;

	for (k = 0; k < s->n; k++)
		if (k != i && s->node[k].role == RAFT_LEADER)
			ck_abort_msg("two leaders at %llu ms: %d (term %llu) and %d (term %llu)",
			    (unsigned long long)s->now, k + 1, (unsigned long long)s->node[k].term,
			    i + 1, (unsigned long long)s->node[i].term);
}

/* Election safety: at most one leader per term, over the whole run. */
static void
sim_check(struct sim *s, int i)
{
	const struct raft *r = &s->node[i];

	if (r->role != RAFT_LEADER)
		return;
	if (r->term >= SIM_TERM_MAX)
		ck_abort_msg("term %llu out of the map", (unsigned long long)r->term);
	if (s->leader_of_term[r->term] == RAFT_NONE)
		s->leader_of_term[r->term] = r->id;
	if (s->leader_of_term[r->term] != r->id)
		ck_abort_msg("two leaders in term %llu: %u and %u", (unsigned long long)r->term,
		    s->leader_of_term[r->term], r->id);
	if (s->one_at_a_time)
		sim_check_one(s, i);
}

static void
sim_send(struct sim *s, const struct raft_out *out)
{
	size_t i;
	int copies;

	for (i = 0; i < out->n; i++) {
		if (s->loss_pct && sim_rnd(&s->net_rnd, 100) < s->loss_pct)
			continue;
		copies = s->dup_pct && sim_rnd(&s->net_rnd, 100) < s->dup_pct ? 2 : 1;
		while (copies-- > 0) {
			if (s->nq >= SIM_NET_MAX)
				ck_abort_msg("network queue full");
			s->q[s->nq].m = out->msg[i];
			s->q[s->nq].due = s->now + 1 + sim_rnd(&s->net_rnd, 20);
			s->nq++;
		}
	}
}

static void
sim_members(struct sim *s, int i)
{
	uint32_t ids[SIM_MAX];
	int k;

	for (k = 0; k < s->n; k++)
		ids[k] = (uint32_t)k + 1;
	ck_assert_int_eq(raft_set_members(&s->node[i], ids, (size_t)s->n, s->now), 0);
}

/* Node i (id i + 1) starts, or restarts, from its persisted term and vote. */
static void
sim_start(struct sim *s, int i, uint64_t term, uint32_t voted_for)
{
	raft_init(&s->node[i], (uint32_t)i + 1, &s->set, term, voted_for, s->now, sim_rnd,
	    &s->node_rnd[i]);
	sim_members(s, i);
}

static void
sim_init(struct sim *s, int n, uint32_t seed)
{
	int i;

	memset(s, 0, sizeof(*s));
	s->n = n;
	raft_settings_default(&s->set);
	s->now = 1000;
	s->net_rnd = seed * 2654435761u | 1;
	for (i = 0; i < n; i++) {
		s->node_rnd[i] = (seed + 1) * 40503u + (uint32_t)i * 977u + 1;
		sim_start(s, i, 0, RAFT_NONE);
	}
}

/* Delivers what is due, in order of arrival; messages to a paused node wait. */
static void
sim_deliver(struct sim *s)
{
	static struct sim_pkt batch[SIM_NET_MAX];
	struct raft_out out;
	size_t i, j, nb = 0, nk = 0;
	struct sim_pkt p;
	int from, to;

	for (i = 0; i < s->nq; i++) {
		to = (int)s->q[i].m.to - 1;
		if (s->q[i].due <= s->now && !s->paused[to])
			batch[nb++] = s->q[i];
		else
			s->q[nk++] = s->q[i];
	}
	s->nq = nk;
	for (i = 1; i < nb; i++) {
		p = batch[i];
		for (j = i; j > 0 && batch[j - 1].due > p.due; j--)
			batch[j] = batch[j - 1];
		batch[j] = p;
	}
	for (i = 0; i < nb; i++) {
		from = (int)batch[i].m.from - 1;
		to = (int)batch[i].m.to - 1;
		if (s->group[from] != s->group[to])
			continue;
		raft_step(&s->node[to], s->now, &batch[i].m, &out);
		sim_check(s, to);
		sim_send(s, &out);
	}
}

static void
sim_step(struct sim *s)
{
	struct raft_out out;
	int i;

	s->now += SIM_STEP;
	sim_deliver(s);
	for (i = 0; i < s->n; i++) {
		if (s->paused[i])
			continue;
		raft_tick(&s->node[i], s->now, &out);
		sim_check(s, i);
		sim_send(s, &out);
	}
}

static void
sim_run(struct sim *s, uint64_t ms)
{
	uint64_t end = s->now + ms;

	while (s->now < end)
		sim_step(s);
}

static void
sim_heal(struct sim *s)
{
	memset(s->group, 0, sizeof(s->group));
	s->loss_pct = 0;
	s->dup_pct = 0;
}

/*
 * Liveness within a group: with a majority, exactly one leader that every
 * member follows in its term, all reporting quorum; without one, no leader
 * and no quorum anywhere in it. Returns the leader's index or -1.
 */
static int
sim_check_group(struct sim *s, int g)
{
	struct raft_status st;
	int i, size = 0, leader = -1;

	for (i = 0; i < s->n; i++) {
		if (s->group[i] != g)
			continue;
		size++;
		if (s->node[i].role == RAFT_LEADER) {
			ck_assert_msg(leader == -1, "two leaders in group %d", g);
			leader = i;
		}
	}
	if (size == 0)
		return -1;
	for (i = 0; i < s->n; i++) {
		if (s->group[i] != g)
			continue;
		raft_state(&s->node[i], s->now, &st);
		if (2 * size <= s->n) {
			ck_assert_msg(st.role != RAFT_LEADER && !st.quorum,
			    "node %d of a minority of %d: %s, quorum %d", i + 1, size,
			    raft_role_name(st.role), st.quorum);
			continue;
		}
		ck_assert_msg(leader >= 0, "no leader in a majority of %d", size);
		ck_assert_uint_eq(st.term, s->node[leader].term);
		ck_assert_uint_eq(st.leader, (uint32_t)leader + 1);
		ck_assert_int_eq(st.quorum, 1);
	}
	return 2 * size > s->n ? leader : -1;
}

/* A fresh cluster elects its leader; returns its index. */
static int
sim_stable(struct sim *s)
{
	sim_run(s, 5000);
	return sim_check_group(s, 0);
}

/* Single steps, by hand. */

static void
one_node(struct raft *r, uint32_t id, raft_rnd_fn rnd, size_t n)
{
	static const uint32_t ids[] = {1, 2, 3, 4, 5};
	struct raft_settings set;

	raft_settings_default(&set);
	raft_init(r, id, &set, 0, RAFT_NONE, 1000, rnd, NULL);
	ck_assert_int_eq(raft_set_members(r, ids, n, 1000), 0);
}

static struct raft_msg
msg(enum raft_msg_type type, uint32_t from, uint32_t to, uint64_t term, int reject)
{
	struct raft_msg m = {type, from, to, term, reject};

	return m;
}

START_TEST(test_defaults)
{
	struct raft_settings set;

	raft_settings_default(&set);
	ck_assert_uint_eq(set.heartbeat_ms, 200);
	ck_assert_uint_eq(set.election_ms, 1000);
}
END_TEST

/* The randomized election timeout lies in [election, 2 * election); the first step is a pre-vote.
 */
START_TEST(test_timeout_range)
{
	struct raft r;
	struct raft_out out;

	one_node(&r, 1, unit_rnd_low, 3);
	ck_assert_uint_eq(raft_next_deadline(&r), 2000);
	raft_tick(&r, 1999, &out);
	ck_assert_uint_eq(out.n, 0);
	raft_tick(&r, 2000, &out);
	ck_assert_int_eq(r.role, RAFT_PRE_CANDIDATE);
	ck_assert_uint_eq(r.term, 0);
	ck_assert_uint_eq(out.n, 2);
	ck_assert_int_eq(out.msg[0].type, RAFT_MSG_PRE_VOTE);
	ck_assert_uint_eq(out.msg[0].term, 1);
	ck_assert_uint_eq(out.msg[0].to, 2);
	ck_assert_uint_eq(out.msg[1].to, 3);

	one_node(&r, 1, unit_rnd_high, 3);
	raft_tick(&r, 2998, &out);
	ck_assert_int_eq(r.role, RAFT_FOLLOWER);
	raft_tick(&r, 2999, &out);
	ck_assert_int_eq(r.role, RAFT_PRE_CANDIDATE);
}
END_TEST

/*
 * The leader's process dies: every follower's transport sees it at once. A
 * new leader well within the election timeout, one per term; over many
 * seeds, in 3 and in 5.
 */
START_TEST(test_leader_lost)
{
	uint32_t seed;
	int n, i, old, now_leader;
	uint64_t t0;

	for (n = 3; n <= 5; n += 2)
		for (seed = 1; seed <= 200; seed++) {
			sim_init(&sim, n, seed);
			old = sim_stable(&sim);
			ck_assert_int_ge(old, 0);
			sim.paused[old] = 1;
			sim.group[old] = 1;
			for (i = 0; i < n; i++)
				if (i != old)
					raft_leader_lost(&sim.node[i], sim.now);
			t0 = sim.now;
			now_leader = -1;
			while (now_leader == -1 && sim.now - t0 < 3 * sim.set.election_ms) {
				sim_step(&sim);
				for (i = 0; i < n; i++)
					if (i != old && sim.node[i].role == RAFT_LEADER)
						now_leader = i;
			}
			ck_assert_int_ge(now_leader, 0);
			/* A split vote (rare) costs an election timeout; most are fast. */
			if (seed <= 20)
				ck_assert_msg(sim.now - t0 <= sim.set.election_ms * 2,
				    "seed %u: %llu ms", seed, (unsigned long long)(sim.now - t0));
		}
}
END_TEST

/* A false alarm: one follower's link broke, the others still hear the leader. */
START_TEST(test_leader_lost_false_alarm)
{
	uint32_t seed;
	int leader, other;

	for (seed = 1; seed <= 50; seed++) {
		sim_init(&sim, 3, seed);
		leader = sim_stable(&sim);
		ck_assert_int_ge(leader, 0);
		other = (leader + 1) % 3;
		raft_leader_lost(&sim.node[other], sim.now);
		sim_run(&sim, 3000);
		ck_assert_int_eq(sim.node[leader].role, RAFT_LEADER);
		ck_assert_int_eq(sim_check_group(&sim, 0), leader);
	}
}
END_TEST

/* MsgHup: a one-node cluster leads at once; in three, a pre-campaign starts at once. */
START_TEST(test_campaign_now)
{
	struct raft r;
	struct raft_out out;
	uint32_t self = 1;

	one_node(&r, 1, unit_rnd_low, 3);
	ck_assert_int_eq(raft_set_members(&r, &self, 1, 5), 0);
	raft_campaign_now(&r, 10, &out);
	ck_assert_int_eq(r.role, RAFT_LEADER);
	ck_assert_uint_eq(r.term, 1);
	ck_assert_uint_eq(out.n, 0);
	raft_campaign_now(&r, 20, &out); /* a leader stays one, same term */
	ck_assert_int_eq(r.role, RAFT_LEADER);
	ck_assert_uint_eq(r.term, 1);

	one_node(&r, 1, unit_rnd_low, 3);
	raft_campaign_now(&r, 10, &out);
	ck_assert_int_eq(r.role, RAFT_PRE_CANDIDATE);
	ck_assert_uint_eq(r.term, 0);
	ck_assert_uint_eq(out.n, 2);
	ck_assert_int_eq(out.msg[0].type, RAFT_MSG_PRE_VOTE);
}
END_TEST

/* Pre-vote won -> candidate at term + 1 -> votes won -> leader, heartbeats at once. */
START_TEST(test_campaign)
{
	struct raft r;
	struct raft_out out;
	struct raft_msg m;
	struct raft_status st;

	one_node(&r, 1, unit_rnd_low, 3);
	raft_tick(&r, 2000, &out);
	m = msg(RAFT_MSG_PRE_VOTE_RESP, 2, 1, 1, 0);
	raft_step(&r, 2005, &m, &out);
	ck_assert_int_eq(r.role, RAFT_CANDIDATE);
	ck_assert_uint_eq(r.term, 1);
	ck_assert_uint_eq(r.voted_for, 1);
	ck_assert_uint_eq(out.n, 2);
	ck_assert_int_eq(out.msg[0].type, RAFT_MSG_VOTE);
	ck_assert_uint_eq(out.msg[0].term, 1);
	m = msg(RAFT_MSG_VOTE_RESP, 3, 1, 1, 0);
	raft_step(&r, 2010, &m, &out);
	ck_assert_int_eq(r.role, RAFT_LEADER);
	ck_assert_uint_eq(r.leader, 1);
	ck_assert_uint_eq(out.n, 2);
	ck_assert_int_eq(out.msg[0].type, RAFT_MSG_HEARTBEAT);
	raft_state(&r, 2010, &st);
	ck_assert_int_eq(st.quorum, 0); /* nobody answered a heartbeat yet */
	m = msg(RAFT_MSG_HEARTBEAT_RESP, 2, 1, 1, 0);
	raft_step(&r, 2020, &m, &out);
	raft_state(&r, 2020, &st);
	ck_assert_int_eq(st.quorum, 1);
	ck_assert_str_eq(raft_role_name(st.role), "leader");
	/* Heartbeats every 200 ms; CheckQuorum at 1000 ms after election: 2 acked, kept. */
	raft_tick(&r, 2209, &out);
	ck_assert_uint_eq(out.n, 0);
	raft_tick(&r, 2210, &out);
	ck_assert_uint_eq(out.n, 2);
	raft_tick(&r, 3010, &out);
	ck_assert_int_eq(r.role, RAFT_LEADER);
	/* No answer in the next window: steps down. */
	raft_tick(&r, 4010, &out);
	ck_assert_int_eq(r.role, RAFT_FOLLOWER);
	ck_assert_uint_eq(r.leader, RAFT_NONE);
	ck_assert_uint_eq(r.term, 1);
}
END_TEST

/* A vote is granted to the first candidate of a term only; a repeat of the same request is granted
 * again. */
START_TEST(test_vote_once_per_term)
{
	struct raft r;
	struct raft_out out;
	struct raft_msg m;

	one_node(&r, 1, unit_rnd_low, 3);
	m = msg(RAFT_MSG_VOTE, 2, 1, 4, 0);
	raft_step(&r, 1100, &m, &out);
	ck_assert_uint_eq(r.term, 4);
	ck_assert_uint_eq(r.voted_for, 2);
	ck_assert_uint_eq(out.n, 1);
	ck_assert_int_eq(out.msg[0].type, RAFT_MSG_VOTE_RESP);
	ck_assert_int_eq(out.msg[0].reject, 0);
	m = msg(RAFT_MSG_VOTE, 3, 1, 4, 0);
	raft_step(&r, 1101, &m, &out);
	ck_assert_uint_eq(out.n, 1);
	ck_assert_int_eq(out.msg[0].reject, 1);
	ck_assert_uint_eq(r.voted_for, 2);
	m = msg(RAFT_MSG_VOTE, 2, 1, 4, 0);
	raft_step(&r, 1102, &m, &out);
	ck_assert_int_eq(out.msg[0].reject, 0);
	/* A stale request is ignored; a non-member's is not even read. */
	m = msg(RAFT_MSG_VOTE, 3, 1, 3, 0);
	raft_step(&r, 1103, &m, &out);
	ck_assert_uint_eq(out.n, 0);
	m = msg(RAFT_MSG_VOTE, 9, 1, 9, 0);
	raft_step(&r, 1104, &m, &out);
	ck_assert_uint_eq(out.n, 0);
	ck_assert_uint_eq(r.term, 4);
}
END_TEST

/* Within election_ms of a leader's heartbeat, (pre-)votes of higher terms are ignored. */
START_TEST(test_lease)
{
	struct raft r;
	struct raft_out out;
	struct raft_msg m;

	one_node(&r, 1, unit_rnd_low, 3);
	m = msg(RAFT_MSG_HEARTBEAT, 2, 1, 3, 0);
	raft_step(&r, 1500, &m, &out);
	ck_assert_uint_eq(r.leader, 2);
	ck_assert_int_eq(out.msg[0].type, RAFT_MSG_HEARTBEAT_RESP);
	m = msg(RAFT_MSG_VOTE, 3, 1, 4, 0);
	raft_step(&r, 2499, &m, &out);
	ck_assert_uint_eq(out.n, 0);
	ck_assert_uint_eq(r.term, 3);
	m = msg(RAFT_MSG_PRE_VOTE, 3, 1, 4, 0);
	raft_step(&r, 2499, &m, &out);
	ck_assert_uint_eq(out.n, 0);
	/* Lease over: the pre-vote is granted without moving the term. */
	raft_step(&r, 2500, &m, &out);
	ck_assert_uint_eq(out.n, 1);
	ck_assert_int_eq(out.msg[0].reject, 0);
	ck_assert_uint_eq(out.msg[0].term, 4);
	ck_assert_uint_eq(r.term, 3);
	ck_assert_uint_eq(r.leader, 2);
}
END_TEST

/* A stale leader's heartbeat is answered with the newer term, which deposes it. */
START_TEST(test_stale_leader)
{
	struct raft f, l;
	struct raft_out out;
	struct raft_msg m;

	one_node(&f, 2, unit_rnd_low, 3);
	m = msg(RAFT_MSG_HEARTBEAT, 3, 2, 5, 0);
	raft_step(&f, 1100, &m, &out);
	one_node(&l, 1, unit_rnd_low, 1);
	raft_tick(&l, 2000, &out);
	ck_assert_int_eq(l.role, RAFT_LEADER);
	ck_assert_uint_eq(l.term, 1);
	ck_assert_int_eq(raft_set_members(&l, (uint32_t[]){1, 2, 3}, 3, 2000), 0);
	ck_assert_int_eq(l.role, RAFT_LEADER);
	m = msg(RAFT_MSG_HEARTBEAT, 1, 2, 1, 0);
	raft_step(&f, 2001, &m, &out);
	ck_assert_uint_eq(out.n, 1);
	ck_assert_int_eq(out.msg[0].type, RAFT_MSG_HEARTBEAT_RESP);
	ck_assert_uint_eq(out.msg[0].term, 5);
	m = out.msg[0];
	raft_step(&l, 2002, &m, &out);
	ck_assert_int_eq(l.role, RAFT_FOLLOWER);
	ck_assert_uint_eq(l.term, 5);
	ck_assert_uint_eq(l.leader, RAFT_NONE);
}
END_TEST

START_TEST(test_members)
{
	struct raft r;
	struct raft_out out;
	uint32_t many[RAFT_MAX_MEMBERS + 1];
	size_t i;

	for (i = 0; i <= RAFT_MAX_MEMBERS; i++)
		many[i] = (uint32_t)i + 1;
	one_node(&r, 1, unit_rnd_low, 1);
	ck_assert_int_eq(raft_set_members(&r, many, RAFT_MAX_MEMBERS + 1, 1000), -1);
	ck_assert_int_eq(raft_set_members(&r, (uint32_t[]){1, 0}, 2, 1000), -1);
	ck_assert_int_eq(raft_set_members(&r, (uint32_t[]){1, 2, 2}, 3, 1000), -1);
	ck_assert_uint_eq(r.nmembers, 1);
	/* Alone, it elects itself at the first timeout. */
	raft_tick(&r, 2000, &out);
	ck_assert_int_eq(r.role, RAFT_LEADER);
	ck_assert_uint_eq(out.n, 0);
	ck_assert_int_eq(raft_member_alive(&r, 1, 2000), 1);
	ck_assert_int_eq(raft_member_alive(&r, 2, 2000), 0);
	/* Removed from its own list: steps down and never campaigns. */
	ck_assert_int_eq(raft_set_members(&r, (uint32_t[]){2, 3}, 2, 2100), 0);
	ck_assert_int_eq(r.role, RAFT_FOLLOWER);
	raft_tick(&r, 9000, &out);
	ck_assert_int_eq(r.role, RAFT_FOLLOWER);
	ck_assert_uint_eq(out.n, 0);
}
END_TEST

/* Restarted with its persisted term and vote, a node never votes twice in that term. */
START_TEST(test_restart_keeps_vote)
{
	struct raft r;
	struct raft_settings set;
	struct raft_out out;
	struct raft_msg m;

	raft_settings_default(&set);
	raft_init(&r, 1, &set, 5, 2, 1000, unit_rnd_low, NULL);
	ck_assert_int_eq(raft_set_members(&r, (uint32_t[]){1, 2, 3}, 3, 1000), 0);
	ck_assert_int_eq(r.role, RAFT_FOLLOWER);
	m = msg(RAFT_MSG_VOTE, 3, 1, 5, 0);
	raft_step(&r, 1001, &m, &out);
	ck_assert_int_eq(out.msg[0].reject, 1);
	m = msg(RAFT_MSG_VOTE, 2, 1, 5, 0);
	raft_step(&r, 1002, &m, &out);
	ck_assert_int_eq(out.msg[0].reject, 0);
}
END_TEST

/* Whole clusters in the simulator. */

START_TEST(test_three_elect)
{
	int l, i;

	sim_init(&sim, 3, (uint32_t)_i + 1);
	sim_run(&sim, 5000); /* at most a few election timeouts */
	l = sim_check_group(&sim, 0);
	ck_assert_int_ge(l, 0);
	for (i = 0; i < 3; i++)
		ck_assert_uint_eq(sim.node[i].term, sim.node[l].term);
	/* And it stays. */
	sim_run(&sim, 10000);
	ck_assert_int_eq(sim_check_group(&sim, 0), l);
}
END_TEST

/* Every set partition of n members as restricted growth strings; returns how many. */
static int
partitions(int n, int grp[][SIM_MAX], int max)
{
	int a[SIM_MAX] = {0}, count = 0, i, top;

	for (;;) {
		ck_assert_int_lt(count, max);
		memcpy(grp[count++], a, sizeof(a));
		/* Next string: bump the last position that may grow, zero the rest. */
		for (i = n - 1; i > 0; i--) {
			int j;

			top = 0;
			for (j = 0; j < i; j++)
				if (a[j] > top)
					top = a[j];
			if (a[i] <= top)
				break;
		}
		if (i == 0)
			return count;
		a[i]++;
		for (i = i + 1; i < n; i++)
			a[i] = 0;
	}
}

static void
partition_runs(int n, int bell)
{
	int grp[64][SIM_MAX], np, p, g, i, l;

	np = partitions(n, grp, 64);
	ck_assert_int_eq(np, bell);
	for (p = 0; p < np; p++) {
		sim_init(&sim, n, (uint32_t)(p + 1));
		ck_assert_int_ge(sim_stable(&sim), 0);
		memcpy(sim.group, grp[p], sizeof(sim.group));
		sim.one_at_a_time = 1;
		/* Enough for CheckQuorum in a minority and an election in the majority. */
		sim_run(&sim, 10000);
		for (g = 0; g < n; g++)
			sim_check_group(&sim, g);
		sim_heal(&sim);
		sim_run(&sim, 10000);
		l = sim_check_group(&sim, 0);
		ck_assert_int_ge(l, 0);
		for (i = 0; i < n; i++)
			ck_assert_uint_eq(sim.node[i].term, sim.node[l].term);
	}
}

START_TEST(test_partitions_of_three)
{
	partition_runs(3, 5);
}
END_TEST

START_TEST(test_partitions_of_five)
{
	partition_runs(5, 52);
}
END_TEST

/*
 * The leader cut off from all the others, at every point of its heartbeat
 * interval, 3 and 5 members: it steps down within an election timeout of
 * its last acknowledgements, before the others elect a new leader (checked
 * at every step), and the new one comes within the longest election
 * timeout and a few messages. Before the CheckQuorum window slid, the
 * leader checked once per election timeout and led on for up to another
 * whole one, past the new leader's election.
 */
START_TEST(test_leader_cut_off)
{
	int n = _i < 50 ? 3 : 5, l, i, l2;
	uint64_t cut, stepped, elected;

	sim_init(&sim, n, (uint32_t)_i + 500);
	l = sim_stable(&sim);
	ck_assert_int_ge(l, 0);
	sim_run(&sim, (uint64_t)(_i % 20) * SIM_STEP);
	sim.one_at_a_time = 1;
	for (i = 0; i < n; i++)
		sim.group[i] = i == l ? 1 : 0;
	cut = sim.now;
	stepped = elected = 0;
	while (sim.now < cut + 5000 && (!stepped || !elected)) {
		sim_step(&sim);
		if (!stepped && sim.node[l].role != RAFT_LEADER)
			stepped = sim.now;
		for (i = 0; i < n && !elected; i++)
			if (i != l && sim.node[i].role == RAFT_LEADER)
				elected = sim.now;
	}
	ck_assert_msg(stepped && stepped - cut <= sim.set.election_ms + SIM_STEP,
	    "the cut-off leader stepped down %llu ms after the cut",
	    (unsigned long long)(stepped - cut));
	ck_assert_msg(elected && elected - cut <= 2 * sim.set.election_ms + 100,
	    "a new leader %llu ms after the cut", (unsigned long long)(elected - cut));
	sim_run(&sim, 500); /* its heartbeats reach the others */
	l2 = sim_check_group(&sim, 0);
	ck_assert_int_ge(l2, 0);
	sim_heal(&sim);
	sim_run(&sim, 3000);
	ck_assert_int_eq(sim_check_group(&sim, 0), l2);
}
END_TEST

/* Seeded loss, duplication and random partitions: safety throughout, a leader once healed. */
static void
random_runs(int n, int runs)
{
	int run, phase, i;
	uint32_t rnd;

	for (run = 0; run < runs; run++) {
		sim_init(&sim, n, (uint32_t)(1000 + run));
		rnd = (uint32_t)run * 7919u + 17u;
		sim.loss_pct = 30;
		sim.dup_pct = 5;
		for (phase = 0; phase < 8; phase++) {
			for (i = 0; i < n; i++)
				sim.group[i] = unit_rnd_seeded(&rnd, 3) == 0
				                   ? 0
				                   : (int)unit_rnd_seeded(&rnd, 3);
			sim_run(&sim, 200 + unit_rnd_seeded(&rnd, 5000));
		}
		sim_heal(&sim);
		sim_run(&sim, 10000);
		ck_assert_int_ge(sim_check_group(&sim, 0), 0);
	}
}

START_TEST(test_random_three)
{
	random_runs(3, 100);
}
END_TEST

START_TEST(test_random_five)
{
	random_runs(5, 100);
}
END_TEST

/* A paused leader (SIGSTOP) resumes into a newer term and steps down on its first messages. */
START_TEST(test_paused_leader)
{
	int l, l2, i;
	uint64_t t;

	sim_init(&sim, 3, 7);
	l = sim_stable(&sim);
	ck_assert_int_ge(l, 0);
	t = sim.node[l].term;
	sim.paused[l] = 1;
	sim_run(&sim, 5000);
	ck_assert_int_eq(sim.node[l].role, RAFT_LEADER); /* still believes it */
	ck_assert_uint_eq(sim.node[l].term, t);
	l2 = -1;
	for (i = 0; i < 3; i++)
		if (i != l && sim.node[i].role == RAFT_LEADER)
			l2 = i;
	ck_assert_int_ge(l2, 0);
	ck_assert_uint_gt(sim.node[l2].term, t);
	sim.paused[l] = 0;
	sim_deliver(&sim); /* what queued up while it was stopped, before any tick */
	ck_assert_int_eq(sim.node[l].role, RAFT_FOLLOWER);
	ck_assert_uint_eq(sim.node[l].term, sim.node[l2].term);
	ck_assert_uint_eq(sim.node[l].leader, (uint32_t)l2 + 1);
	sim_run(&sim, 5000);
	ck_assert_int_eq(sim_check_group(&sim, 0), l2);
}
END_TEST

/*
 * Pre-Vote + CheckQuorum: a follower isolated, or stopped, for 2.5 to 4.6 s
 * rejoins 40 times without an election. The isolation ends at a different
 * point of its pre-campaigns each time, so that some of its pre-votes reach
 * followers that still hear the leader (the lease).
 */
START_TEST(test_rejoin_no_disruption)
{
	int l, f, pause, k;
	uint64_t t, end;

	for (pause = 0; pause < 2; pause++) {
		sim_init(&sim, 5, 11 + (uint32_t)pause);
		l = sim_stable(&sim);
		ck_assert_int_ge(l, 0);
		t = sim.node[l].term;
		for (k = 0; k < 40; k++) {
			f = (l + 1 + k % 4) % 5;
			if (pause)
				sim.paused[f] = 1;
			else
				sim.group[f] = 1;
			sim_run(&sim, 2500 + 53 * (uint64_t)k);
			ck_assert_uint_eq(sim.node[f].term, t); /* pre-votes never won */
			sim.paused[f] = 0;
			sim.group[f] = 0;
			for (end = sim.now + 3000; sim.now < end;) {
				sim_step(&sim);
				if (sim.node[l].role != RAFT_LEADER || sim.node[l].term != t)
					ck_abort_msg("leader %d deposed (term %llu) by %d's return",
					    l + 1, (unsigned long long)sim.node[l].term, f + 1);
			}
			ck_assert_int_eq(sim_check_group(&sim, 0), l);
		}
	}
}
END_TEST

/* Restarted from "disk" (term and voted_for), a follower or the leader rejoins as a follower. */
START_TEST(test_restart)
{
	int l, f, i, l2;
	uint64_t t;
	size_t k, nk;

	sim_init(&sim, 3, 21);
	l = sim_stable(&sim);
	ck_assert_int_ge(l, 0);
	t = sim.node[l].term;
	f = (l + 1) % 3;
	sim_start(&sim, f, sim.node[f].term, sim.node[f].voted_for);
	ck_assert_int_eq(sim.node[f].role, RAFT_FOLLOWER);
	ck_assert_uint_eq(sim.node[f].term, t);
	sim_run(&sim, 3000);
	ck_assert_int_eq(sim_check_group(&sim, 0), l);
	ck_assert_uint_eq(sim.node[l].term, t);

	/* The leader restarts; what was in flight to it is lost. */
	for (k = 0, nk = 0; k < sim.nq; k++)
		if (sim.q[k].m.to != (uint32_t)l + 1)
			sim.q[nk++] = sim.q[k];
	sim.nq = nk;
	sim_start(&sim, l, sim.node[l].term, sim.node[l].voted_for);
	ck_assert_int_eq(sim.node[l].role, RAFT_FOLLOWER);
	ck_assert_uint_eq(sim.node[l].voted_for, (uint32_t)l + 1);
	sim_run(&sim, 10000);
	l2 = sim_check_group(&sim, 0);
	ck_assert_int_ge(l2, 0);
	ck_assert_uint_gt(sim.node[l2].term, t);
	for (i = 0; i < 3; i++)
		ck_assert_uint_eq(sim.node[i].term, sim.node[l2].term);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("raft");
	TCase *tc = tcase_create("step");

	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_timeout_range);
	tcase_add_test(tc, test_campaign);
	tcase_add_test(tc, test_campaign_now);
	tcase_add_test(tc, test_leader_lost);
	tcase_add_test(tc, test_leader_lost_false_alarm);
	tcase_add_test(tc, test_vote_once_per_term);
	tcase_add_test(tc, test_lease);
	tcase_add_test(tc, test_stale_leader);
	tcase_add_test(tc, test_members);
	tcase_add_test(tc, test_restart_keeps_vote);
	suite_add_tcase(s, tc);

	tc = tcase_create("cluster");
	/* Under valgrind the simulator runs some 50 times slower. */
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, test_three_elect, 0, 5);
	tcase_add_test(tc, test_partitions_of_three);
	tcase_add_test(tc, test_partitions_of_five);
	tcase_add_loop_test(tc, test_leader_cut_off, 0, 100);
	tcase_add_test(tc, test_random_three);
	tcase_add_test(tc, test_random_five);
	tcase_add_test(tc, test_paused_leader);
	tcase_add_test(tc, test_rejoin_no_disruption);
	tcase_add_test(tc, test_restart);
	suite_add_tcase(s, tc);
	return unit_run(s);
}

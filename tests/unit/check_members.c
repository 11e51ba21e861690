/* Unit tests for server/members.c: DIR/cluster and the join verdicts. */
#include <sys/stat.h>

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/members.h"
#include "unit.h"

static char dir[64];
static char err[1024];

static void
setup(void)
{
	strcpy(dir, "/tmp/check_members.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void
teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static void
write_cluster(const char *text)
{
	char path[128];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/cluster", dir);
	ck_assert_ptr_nonnull(fp = fopen(path, "w"));
	fputs(text, fp);
	fclose(fp);
}

/* A list of three: this node (1a2b3c4d) and two others. */
static void
three(struct members *ms)
{
	memset(ms, 0, sizeof(*ms));
	ms->self = 0x1a2b3c4d;
	ck_assert_int_eq(members_add(ms, 0x1a2b3c4d, "127.0.0.1:5400"), 0);
	ck_assert_int_eq(members_add(ms, 0x0badcafe, "127.0.0.2:5400"), 0);
	ck_assert_int_eq(members_add(ms, 0x5eed5eed, "127.0.0.3:5400"), 0);
}

/* alive(): arg points to the one id considered dead. */
static int
alive_except(void *arg, uint32_t id)
{
	return id != *(uint32_t *)arg;
}

START_TEST(test_missing_is_empty)
{
	struct members ms;

	memset(&ms, 0xff, sizeof(ms));
	ck_assert_int_eq(members_load(dir, &ms, err, sizeof(err)), 0);
	ck_assert_uint_eq(ms.self, 0);
	ck_assert_uint_eq(ms.epoch, 0);
	ck_assert_uint_eq(ms.term, 0);
	ck_assert_uint_eq(ms.voted_for, 0);
	ck_assert_uint_eq(ms.n, 0);
}
END_TEST

START_TEST(test_round_trip)
{
	struct members ms, back;
	struct stat sb;
	char path[128];

	three(&ms);
	ms.epoch = 3;
	ms.term = 18446744073709551615ull;
	ms.voted_for = 0x0badcafe;
	ck_assert_int_eq(members_save(dir, &ms, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/cluster", dir);
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_uint_eq(sb.st_mode & 0777, 0600);
	snprintf(path, sizeof(path), "%s/cluster.tmp", dir);
	ck_assert_int_eq(access(path, F_OK), -1);
	ck_assert_int_eq(members_load(dir, &back, err, sizeof(err)), 0);
	ck_assert_mem_eq(&back, &ms, sizeof(ms));

	/* No vote, no members. */
	memset(&ms, 0, sizeof(ms));
	ms.self = 7;
	ck_assert_int_eq(members_save(dir, &ms, err, sizeof(err)), 0);
	ck_assert_int_eq(members_load(dir, &back, err, sizeof(err)), 0);
	ck_assert_mem_eq(&back, &ms, sizeof(ms));
}
END_TEST

START_TEST(test_hand_written)
{
	struct members ms;

	write_cluster("# by hand\nid = 1A2B3C4D\nepoch = 3\nterm = 5\nvoted-for = 0\n"
	              "member = 1a2b3c4d 127.0.0.1:5400\nmember = 0badcafe [::1]:5400\n");
	ck_assert_int_eq(members_load(dir, &ms, err, sizeof(err)), 0);
	ck_assert_uint_eq(ms.self, 0x1a2b3c4d);
	ck_assert_uint_eq(ms.n, 2);
	ck_assert_str_eq(ms.m[1].addr, "[::1]:5400");
	ck_assert_uint_eq(members_resolve(&ms, "[::1]:5400"), 0x0badcafe);
}
END_TEST

static void
bad_line(const char *text, const char *expect)
{
	struct members ms;
	char want[256];

	write_cluster(text);
	ck_assert_int_eq(members_load(dir, &ms, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s/cluster:%s", dir, expect);
	ck_assert_str_eq(err, want);
}

START_TEST(test_bad_lines)
{
	bad_line("id = 1\nterm = x\n", "2: term: expected a number");
	bad_line("id = 0\n", "1: id: expected 1 to 8 hex digits, not 0");
	bad_line("id = 123456789\n", "1: id: expected 1 to 8 hex digits, not 0");
	bad_line("epoch = -1\n", "1: epoch: expected a number");
	bad_line("voted-for = zz\n", "1: voted-for: expected an id in hex, or 0");
	bad_line("\n\nmember = 1a2b3c4d\n",
	    "3: member: expected ID IP:PORT, e.g. member = 1a2b3c4d 127.0.0.1:5400");
	bad_line("member = 0 127.0.0.1:5400\n",
	    "1: member: \"0\" is not an id (1 to 8 hex digits, not 0)");
	bad_line("member = 1 node1:5400\n", "1: member 1: \"node1:5400\" is not IP:PORT");
	bad_line("member = 1 127.0.0.1:0\n", "1: member 1: \"127.0.0.1:0\" is not IP:PORT");
	bad_line("member = 1 127.0.0.1:5400\nmember = 2 127.0.0.1:5400\n",
	    "2: member 2: address 127.0.0.1:5400 listed twice");
	bad_line(
	    "member = 1 127.0.0.1:5400\nmember = 1 127.0.0.2:5400\n", "2: member 1 listed twice");
	bad_line("leader = 1\n", "1: unknown key \"leader\"");
}
END_TEST

START_TEST(test_new_id)
{
	uint32_t a = members_new_id(), b = members_new_id();

	ck_assert_uint_ne(a, 0);
	ck_assert_uint_ne(b, 0);
	/* 2^-32 to fail by chance. */
	ck_assert_uint_ne(a, b);
}
END_TEST

START_TEST(test_add_del)
{
	struct members ms;
	char addr[32];
	uint32_t i;

	three(&ms);
	ck_assert_int_eq(members_add(&ms, 0x0badcafe, "127.0.0.9:5400"), -1);
	ck_assert_int_eq(members_add(&ms, 0, "127.0.0.9:5400"), -1);
	ck_assert_int_eq(members_del(&ms, 0x12345678), -1);
	/* The order stays as they joined. */
	ck_assert_int_eq(members_del(&ms, 0x0badcafe), 0);
	ck_assert_uint_eq(ms.n, 2);
	ck_assert_uint_eq(ms.m[0].id, 0x1a2b3c4d);
	ck_assert_uint_eq(ms.m[1].id, 0x5eed5eed);
	ck_assert_int_eq(members_del(&ms, 0x0badcafe), -1);
	ck_assert_ptr_null(members_by_id(&ms, 0x0badcafe));
	ck_assert_ptr_null(members_by_addr(&ms, "127.0.0.2:5400"));
	ck_assert_ptr_eq(members_by_addr(&ms, "127.0.0.3:5400"), &ms.m[1]);
	ck_assert_int_eq(members_del(&ms, 0x5eed5eed), 0);
	ck_assert_int_eq(members_del(&ms, 0x1a2b3c4d), 0);
	ck_assert_uint_eq(ms.n, 0);
	for (i = 1; i <= MEMBERS_MAX; i++) {
		snprintf(addr, sizeof(addr), "127.0.0.%u:5400", i);
		ck_assert_int_eq(members_add(&ms, i, addr), 0);
	}
	ck_assert_int_eq(members_add(&ms, 999, "127.0.1.1:5400"), -1);
	ck_assert_uint_eq(ms.n, MEMBERS_MAX);
	ck_assert_str_eq(members_by_id(&ms, MEMBERS_MAX)->addr, "127.0.0.16:5400");
}
END_TEST

START_TEST(test_resolve)
{
	struct members ms;

	three(&ms);
	ck_assert_uint_eq(members_resolve(&ms, "127.0.0.2:5400"), 0x0badcafe);
	ck_assert_uint_eq(members_resolve(&ms, "0badcafe"), 0x0badcafe);
	ck_assert_uint_eq(members_resolve(&ms, "badcafe"), 0x0badcafe);
	ck_assert_uint_eq(members_resolve(&ms, "0BADCAFE"), 0x0badcafe);
	ck_assert_uint_eq(members_resolve(&ms, "127.0.0.9:5400"), 0);
	ck_assert_uint_eq(members_resolve(&ms, "127.0.0.2:5401"), 0);
	ck_assert_uint_eq(members_resolve(&ms, "12345678"), 0);
	ck_assert_uint_eq(members_resolve(&ms, "0"), 0);
	ck_assert_uint_eq(members_resolve(&ms, ""), 0);
	ck_assert_uint_eq(members_resolve(&ms, "node2"), 0);
	ck_assert_uint_eq(members_resolve(&ms, "0badcafe0"), 0);
}
END_TEST

START_TEST(test_verdicts)
{
	struct members ms;
	uint32_t other, dead = 0;
	char addr[32];
	uint32_t i;

	three(&ms);
	/* A new node at a new address. */
	other = 0;
	ck_assert_int_eq(
	    members_join_verdict(&ms, 0x99, "127.0.0.4:5400", alive_except, &dead, &other),
	    MEMBERS_JOIN_ADD);
	ck_assert_uint_eq(other, 0);
	/* A member again, at its address or at a new one. */
	ck_assert_int_eq(
	    members_join_verdict(&ms, 0x0badcafe, "127.0.0.2:5400", alive_except, &dead, &other),
	    MEMBERS_JOIN_AGAIN);
	ck_assert_int_eq(
	    members_join_verdict(&ms, 0x0badcafe, "127.0.0.7:5400", alive_except, &dead, &other),
	    MEMBERS_JOIN_AGAIN);
	/* The address of a live member under another id: refused. */
	ck_assert_int_eq(
	    members_join_verdict(&ms, 0x99, "127.0.0.2:5400", alive_except, &dead, &other),
	    MEMBERS_JOIN_LIVE);
	ck_assert_uint_eq(other, 0x0badcafe);
	/* The address of the leader itself, which alive() need not know. */
	dead = 0x1a2b3c4d;
	other = 0;
	ck_assert_int_eq(
	    members_join_verdict(&ms, 0x99, "127.0.0.1:5400", alive_except, &dead, &other),
	    MEMBERS_JOIN_LIVE);
	ck_assert_uint_eq(other, 0x1a2b3c4d);
	/* Reset without leaving: its old id is heard by nobody, so it is replaced. */
	dead = 0x5eed5eed;
	other = 0;
	ck_assert_int_eq(
	    members_join_verdict(&ms, 0x99, "127.0.0.3:5400", alive_except, &dead, &other),
	    MEMBERS_JOIN_REPLACE);
	ck_assert_uint_eq(other, 0x5eed5eed);
	/* Full: no one more, but members and replacements still pass. */
	memset(&ms, 0, sizeof(ms));
	ms.self = 1;
	for (i = 1; i <= MEMBERS_MAX; i++) {
		snprintf(addr, sizeof(addr), "127.0.0.%u:5400", i);
		ck_assert_int_eq(members_add(&ms, i, addr), 0);
	}
	dead = 2;
	ck_assert_int_eq(
	    members_join_verdict(&ms, 0x99, "127.0.1.1:5400", alive_except, &dead, &other),
	    MEMBERS_JOIN_FULL);
	ck_assert_int_eq(
	    members_join_verdict(&ms, 3, "127.0.0.3:5400", alive_except, &dead, &other),
	    MEMBERS_JOIN_AGAIN);
	ck_assert_int_eq(
	    members_join_verdict(&ms, 0x99, "127.0.0.2:5400", alive_except, &dead, &other),
	    MEMBERS_JOIN_REPLACE);
	ck_assert_uint_eq(other, 2);
}
END_TEST

/* The epoch order: later in a term, and any change of a later term after any of an earlier one. */
START_TEST(test_next_epoch)
{
	ck_assert_uint_eq(members_next_epoch(0, 0), 1);
	ck_assert_uint_eq(members_next_epoch(5, 0), 6);
	ck_assert_uint_eq(members_next_epoch(5, 1), 1u << 20);
	ck_assert_uint_eq(members_next_epoch(1u << 20, 1), (1u << 20) + 1);
	ck_assert_uint_gt(members_next_epoch(0, 2), members_next_epoch((1u << 20) + 500, 1));
}
END_TEST

/*
 * Membership under partitions, on a model of the cluster: N nodes share a
 * list made by node 1, the leader in term 1. The network splits into
 * groups (every set partition of 3 and of 5 nodes). The old leader changes
 * the list once more in term 1 (as a deposed leader may, inside its
 * lease); a group with a majority that lacks it elects its lowest node in
 * term 2, which changes the list too. Lists spread by members_merge inside
 * each group, then everywhere after the heal. Always: one epoch, one
 * list. After the heal: one list everywhere, and it is the majority's.
 */
#define SIM_N 5

static int
same_list(const struct members *a, const struct members *b)
{
	size_t i;

	if (a->n != b->n)
		return 0;
	for (i = 0; i < a->n; i++)
		if (a->m[i].id != b->m[i].id || strcmp(a->m[i].addr, b->m[i].addr) != 0)
			return 0;
	return 1;
}

static void
sim_check_epochs(const struct members *node, int n)
{
	int i, j;

	for (i = 0; i < n; i++)
		for (j = 0; j < n; j++)
			if (node[i].epoch == node[j].epoch)
				ck_assert_msg(same_list(&node[i], &node[j]),
				    "nodes %d and %d: epoch %llu names two lists", i + 1, j + 1,
				    (unsigned long long)node[i].epoch);
}

/* Gossip until nothing changes; only between nodes of the same group (group NULL: all). */
static void
sim_spread(struct members *node, int n, const int *group)
{
	int i, j, changed;

	do {
		changed = 0;
		for (i = 0; i < n; i++)
			for (j = 0; j < n; j++)
				if (i != j && (group == NULL || group[i] == group[j]))
					changed |= members_merge(&node[j], &node[i]);
		sim_check_epochs(node, n);
	} while (changed);
}

/* A leader's change: a member added under an id of its own. */
static void
sim_change(struct members *m, uint64_t term, uint32_t new_id)
{
	char addr[32];

	snprintf(addr, sizeof(addr), "127.0.1.%u:5400", (unsigned)(new_id % 250));
	ck_assert_int_eq(members_add(m, new_id, addr), 0);
	m->epoch = members_next_epoch(m->epoch, term);
}

static void
sim_partition(int n, const int *group)
{
	struct members node[SIM_N], want;
	int i, size[SIM_N] = {0}, major = -1, leader2 = -1;

	memset(node, 0, sizeof(node));
	for (i = 0; i < n; i++) {
		char addr[32];

		snprintf(addr, sizeof(addr), "127.0.0.%d:5400", i + 1);
		ck_assert_int_eq(members_add(&node[0], (uint32_t)i + 1, addr), 0);
	}
	node[0].epoch = members_next_epoch(0, 1);
	for (i = 1; i < n; i++)
		node[i] = node[0];
	for (i = 0; i < n; i++)
		node[i].self = (uint32_t)i + 1;
	for (i = 0; i < n; i++)
		size[group[i]]++;
	for (i = 0; i < n; i++)
		if (size[group[i]] > n / 2)
			major = group[i];
	/* The old leader changes the list whatever its group. */
	sim_change(&node[0], 1, 100);
	if (major != -1 && major != group[0]) {
		for (i = 0; i < n && leader2 == -1; i++)
			if (group[i] == major)
				leader2 = i;
		sim_change(&node[leader2], 2, 200);
	}
	sim_spread(node, n, group);
	want = leader2 != -1 ? node[leader2] : node[0];
	sim_spread(node, n, NULL);
	for (i = 0; i < n; i++) {
		ck_assert_uint_eq(node[i].epoch, want.epoch);
		ck_assert(same_list(&node[i], &want));
	}
	/* A majority elsewhere: the deposed leader's change is gone, the new leader's stays. */
	if (leader2 != -1) {
		ck_assert_ptr_null(members_by_id(&node[0], 100));
		ck_assert_ptr_nonnull(members_by_id(&node[0], 200));
	}
}

/* Every set partition of n nodes, as restricted growth strings. */
static int
sim_every_partition(int n, int *group, int at, int max)
{
	int g, count = 0;

	if (at == n) {
		sim_partition(n, group);
		return 1;
	}
	for (g = 0; g <= max + 1 && g < n; g++) {
		group[at] = g;
		count += sim_every_partition(n, group, at + 1, g > max ? g : max);
	}
	return count;
}

START_TEST(test_gossip_under_partitions)
{
	int group[SIM_N] = {0};

	/* Bell numbers: 5 partitions of 3 nodes, 52 of 5. */
	ck_assert_int_eq(sim_every_partition(3, group, 1, 0), 5);
	ck_assert_int_eq(sim_every_partition(5, group, 1, 0), 52);
}
END_TEST

static Suite *
members_suite(void)
{
	Suite *s = suite_create("members");
	TCase *tc = tcase_create("members");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_missing_is_empty);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_hand_written);
	tcase_add_test(tc, test_bad_lines);
	tcase_add_test(tc, test_new_id);
	tcase_add_test(tc, test_add_del);
	tcase_add_test(tc, test_resolve);
	tcase_add_test(tc, test_verdicts);
	tcase_add_test(tc, test_next_epoch);
	tcase_add_test(tc, test_gossip_under_partitions);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return unit_run(members_suite());
}

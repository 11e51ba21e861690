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
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return unit_run(members_suite());
}

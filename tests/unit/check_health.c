/*
 * Unit tests for health.c, driven by scripted sequences of failures on a
 * fake clock (no sleeps): the holds, the choice of the next node, a rolling
 * restart, a silent node, refusing nodes that must not make the agent spin,
 * and the rules checked over many random sequences.
 */
#include <check.h>
#include <stdlib.h>

#include "health.h"
#include "unit.h"

/* The order the rules give, written out again: 0 for no failure that counts. */
static uint64_t
key(const struct health *h, const struct health_policy *p, uint64_t t)
{
	return h->fails > 0 && t < h->held_until + p->max_ms ? h->failed_at + 1 : 0;
}

static void
nodes_init(struct health *h, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		health_init(&h[i]);
}

START_TEST(test_policy_from_backoff)
{
	struct health_policy p;

	health_policy_init(&p, 1, 60);
	ck_assert_uint_eq(p.down_ms, 250);
	ck_assert_uint_eq(p.refused_ms, 1000);
	ck_assert_uint_eq(p.max_ms, 60000);
	/* backoff-min 0: still a hold, never a retry at once. */
	health_policy_init(&p, 0, 0);
	ck_assert_uint_eq(p.refused_ms, 100);
	ck_assert_uint_eq(p.down_ms, 25);
	ck_assert_uint_eq(p.max_ms, 100);
	/* max below min counts as min. */
	health_policy_init(&p, 5, 2);
	ck_assert_uint_eq(p.max_ms, 5000);
}
END_TEST

START_TEST(test_holds_grow_to_the_cap)
{
	static const unsigned down_high[] = {
	    250, 500, 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000};
	static const unsigned refused_low[] = {500, 1000, 2000, 4000, 8000, 16000, 30000, 30000};
	struct health_policy p;
	struct health h;
	uint64_t now = 1000;
	size_t i;

	health_policy_init(&p, 1, 60);
	health_init(&h);
	for (i = 0; i < sizeof(down_high) / sizeof(down_high[0]); i++) {
		ck_assert_uint_eq(
		    health_failed(&h, &p, HEALTH_DOWN, now, unit_rnd_high, NULL), down_high[i]);
		ck_assert(health_held(&h, now + down_high[i] - 1));
		ck_assert(!health_held(&h, now + down_high[i]));
		now += down_high[i]; /* tried again as soon as it is free */
	}
	health_init(&h);
	for (i = 0; i < sizeof(refused_low) / sizeof(refused_low[0]); i++) {
		ck_assert_uint_eq(
		    health_failed(&h, &p, HEALTH_REFUSED, now, unit_rnd_low, NULL), refused_low[i]);
		now += refused_low[i];
	}
	/* A fail count that keeps growing never overflows the step. */
	for (i = 0; i < 1000; i++)
		ck_assert_uint_le(
		    health_failed(&h, &p, HEALTH_DOWN, now, unit_rnd_high, NULL), 60000);
}
END_TEST

START_TEST(test_fresh_nodes_in_rfc_order)
{
	struct health_policy p;
	struct health h[3];

	health_policy_init(&p, 1, 60);
	nodes_init(h, 3);
	ck_assert_uint_eq(health_pick(h, 3, &p, 0), 0);
	ck_assert_uint_eq(health_pick(h, 0, &p, 0), HEALTH_NONE);
	ck_assert_uint_eq(health_next_free(h, 0), 0);
}
END_TEST

/*
 * The rolling restart: a, b, c restarted in turn, each back 500 ms
 * after it went down, the next one 500-1000 ms later. The agent must always
 * have a node to go to: pick never says "wait".
 */
START_TEST(test_rolling_restart_never_waits)
{
	struct health_policy p;
	struct health h[3];
	size_t cur;
	uint64_t t = 0;

	health_policy_init(&p, 1, 60);
	nodes_init(h, 3);
	cur = health_pick(h, 3, &p, t);
	ck_assert_uint_eq(cur, 0);
	/* a goes down under the session: b, never failed, next. */
	health_failed(&h[0], &p, HEALTH_DOWN, t, unit_rnd_high, NULL);
	cur = health_pick(h, 3, &p, t);
	ck_assert_uint_eq(cur, 1);
	/* a is back at 500; b goes down at 1500: c, never failed, next. */
	t = 1500;
	health_failed(&h[1], &p, HEALTH_DOWN, t, unit_rnd_high, NULL);
	cur = health_pick(h, 3, &p, t);
	ck_assert_uint_eq(cur, 2);
	/* b is back at 2000; c goes down at 3000: a (oldest failure, hold over). */
	t = 3000;
	health_failed(&h[2], &p, HEALTH_DOWN, t, unit_rnd_high, NULL);
	ck_assert_uint_eq(health_pick(h, 3, &p, t), 0);
	/* Had a failed again, b would go next, and c (the newest failure) last. */
	health_failed(&h[0], &p, HEALTH_DOWN, t, unit_rnd_high, NULL);
	ck_assert_uint_eq(health_pick(h, 3, &p, t), 1);
}
END_TEST

/* A silent node (found by the keepalive) is tried after every other node. */
START_TEST(test_silent_node_goes_last)
{
	struct health_policy p;
	struct health h[3];
	uint64_t t = 10000;

	health_policy_init(&p, 1, 60);
	nodes_init(h, 3);
	health_failed(&h[0], &p, HEALTH_DOWN, t, unit_rnd_high, NULL); /* a silent */
	t += 2000;                                                     /* its hold is long over */
	ck_assert_uint_eq(health_pick(h, 3, &p, t), 1);
	health_failed(&h[1], &p, HEALTH_DOWN, t, unit_rnd_high, NULL);
	ck_assert_uint_eq(health_pick(h, 3, &p, t), 2);
	health_failed(&h[2], &p, HEALTH_DOWN, t + 10, unit_rnd_high, NULL);
	/* b and c held, a free: only now a again. */
	ck_assert_uint_eq(health_pick(h, 3, &p, t + 10), 0);
}
END_TEST

/* The oldest failure first, whatever the RFC 2782 order says. */
START_TEST(test_older_failure_before_newer)
{
	struct health_policy p;
	struct health h[2];

	health_policy_init(&p, 1, 60);
	nodes_init(h, 2);
	health_failed(&h[1], &p, HEALTH_DOWN, 100, unit_rnd_high, NULL);
	health_failed(&h[0], &p, HEALTH_DOWN, 200, unit_rnd_high, NULL);
	ck_assert_uint_eq(health_pick(h, 2, &p, 5000), 1);
	/* Equal times: the RFC 2782 order. */
	nodes_init(h, 2);
	health_failed(&h[1], &p, HEALTH_DOWN, 100, unit_rnd_high, NULL);
	health_failed(&h[0], &p, HEALTH_DOWN, 100, unit_rnd_high, NULL);
	ck_assert_uint_eq(health_pick(h, 2, &p, 5000), 0);
}
END_TEST

START_TEST(test_every_node_held_means_wait)
{
	struct health_policy p;
	struct health h[3];
	unsigned ms[3];
	size_t i;

	health_policy_init(&p, 1, 60);
	nodes_init(h, 3);
	for (i = 0; i < 3; i++)
		ms[i] = health_failed(&h[i], &p, HEALTH_DOWN, 1000 + i, unit_rnd_high, NULL);
	ck_assert_uint_eq(ms[0], 250);
	ck_assert_uint_eq(health_pick(h, 3, &p, 1100), HEALTH_NONE);
	ck_assert_uint_eq(health_next_free(h, 3), 1250);
	ck_assert_uint_eq(health_pick(h, 3, &p, 1250), 0);
	ck_assert_uint_eq(health_pick(h, 3, &p, 1252), 0);
}
END_TEST

START_TEST(test_stable_session_clears)
{
	struct health_policy p;
	struct health h[2];

	health_policy_init(&p, 1, 60);
	nodes_init(h, 2);
	health_failed(&h[0], &p, HEALTH_DOWN, 0, unit_rnd_high, NULL);
	health_failed(&h[0], &p, HEALTH_DOWN, 300, unit_rnd_high, NULL);
	health_failed(&h[1], &p, HEALTH_DOWN, 900, unit_rnd_high, NULL);
	health_stable(&h[0]);
	ck_assert_uint_eq(h[0].fails, 0);
	ck_assert_uint_eq(health_pick(h, 2, &p, 900), 0);
	/* Its next failure starts from the first hold again. */
	ck_assert_uint_eq(health_failed(&h[0], &p, HEALTH_DOWN, 1000, unit_rnd_high, NULL), 250);
}
END_TEST

/* Quiet for backoff-max after its hold: the old failure no longer counts. */
START_TEST(test_quiet_node_is_forgiven)
{
	struct health_policy p;
	struct health h[2];

	health_policy_init(&p, 1, 4);
	nodes_init(h, 2);
	health_failed(&h[0], &p, HEALTH_DOWN, 0, unit_rnd_high, NULL);   /* held until 250 */
	health_failed(&h[0], &p, HEALTH_DOWN, 250, unit_rnd_high, NULL); /* until 750 */
	ck_assert_uint_eq(health_pick(h, 2, &p, 4749), 1);
	/* From 4750 a counts as never failed: the RFC 2782 order again. */
	ck_assert_uint_eq(health_pick(h, 2, &p, 4750), 0);
	ck_assert_uint_eq(health_failed(&h[0], &p, HEALTH_DOWN, 4750, unit_rnd_high, NULL), 250);
	ck_assert_uint_eq(h[0].fails, 1);
}
END_TEST

/*
 * Three nodes that each refuse us at once (accept and close, conflict, wrong
 * secret), the agent trying whatever pick gives and else waiting until
 * next_free: over ten minutes the attempts stay few, and grow further apart.
 */
START_TEST(test_refusing_nodes_do_not_spin)
{
	struct health_policy p;
	struct health h[3];
	unsigned attempts = 0, last_minute = 0;
	uint64_t t = 0, end = 600000;
	uint32_t seed = 12345;
	size_t i;

	health_policy_init(&p, 1, 60);
	nodes_init(h, 3);
	while (t < end) {
		i = health_pick(h, 3, &p, t);
		if (i == HEALTH_NONE) {
			ck_assert_uint_gt(health_next_free(h, 3), t);
			t = health_next_free(h, 3);
			continue;
		}
		attempts++;
		if (t >= end - 60000)
			last_minute++;
		health_failed(&h[i], &p, HEALTH_REFUSED, t, unit_rnd_seeded, &seed);
		t += 2; /* an attempt costs a little time */
	}
	/* Per node: holds 0.5-1, 1-2, ... 30-60 s, then at least 30 s each. */
	ck_assert_uint_le(attempts, 3 * (7 + 600 / 30));
	ck_assert_uint_le(last_minute, 3 * 2);
}
END_TEST

/*
 * The rules over many random sequences of failures, stable sessions and
 * time: pick never gives a held node, never a node whose last failure is
 * newer than that of another free node, gives HEALTH_NONE only when every
 * node is held, and next_free is then in the future.
 */
START_TEST(test_rules_over_random_sequences)
{
	struct health_policy p;
	struct health h[5];
	uint32_t seed = 99;
	uint64_t t;
	size_t n, i, j, k;
	int run, step;

	health_policy_init(&p, 1, 8);
	for (run = 0; run < 2000; run++) {
		n = 1 + unit_rnd_seeded(&seed, 5);
		nodes_init(h, n);
		t = unit_rnd_seeded(&seed, 1000);
		for (step = 0; step < 60; step++) {
			i = health_pick(h, n, &p, t);
			if (i == HEALTH_NONE) {
				for (j = 0; j < n; j++)
					ck_assert(health_held(&h[j], t));
				ck_assert_uint_gt(health_next_free(h, n), t);
			} else {
				ck_assert(!health_held(&h[i], t));
				for (j = 0; j < n; j++) {
					if (j == i || health_held(&h[j], t))
						continue;
					/* the oldest failure first; among equals the array's order
					 */
					ck_assert_uint_le(key(&h[i], &p, t), key(&h[j], &p, t));
					if (j < i)
						ck_assert_uint_lt(
						    key(&h[i], &p, t), key(&h[j], &p, t));
				}
			}
			k = unit_rnd_seeded(&seed, 10);
			if (k < 6 && i != HEALTH_NONE)
				health_failed(&h[i], &p, k < 4 ? HEALTH_DOWN : HEALTH_REFUSED, t,
				    unit_rnd_seeded, &seed);
			else if (k == 6 && i != HEALTH_NONE)
				health_stable(&h[i]);
			t += unit_rnd_seeded(&seed, 3000);
		}
	}
}
END_TEST

static Suite *
health_suite(void)
{
	Suite *s = suite_create("health");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_policy_from_backoff);
	tcase_add_test(tc, test_holds_grow_to_the_cap);
	tcase_add_test(tc, test_fresh_nodes_in_rfc_order);
	tcase_add_test(tc, test_rolling_restart_never_waits);
	tcase_add_test(tc, test_silent_node_goes_last);
	tcase_add_test(tc, test_older_failure_before_newer);
	tcase_add_test(tc, test_every_node_held_means_wait);
	tcase_add_test(tc, test_stable_session_clears);
	tcase_add_test(tc, test_quiet_node_is_forgiven);
	tcase_add_test(tc, test_refusing_nodes_do_not_spin);
	tcase_add_test(tc, test_rules_over_random_sequences);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return unit_run(health_suite());
}

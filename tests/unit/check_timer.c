/* Unit tests for timer.c: ordering, cancelling, re-arming inside a callback. */
#include <check.h>
#include <stdlib.h>

#include "timer.h"
#include "util.h"
#include "unit.h"

static int fired[16], nfired;

static void
record(void *arg)
{
	fired[nfired++] = (int)(long)arg;
}

START_TEST(test_order)
{
	struct timerq *q = timerq_new();
	struct timer t[5];
	static const int delay[5] = {50, 10, 40, 20, 30};
	int i;

	nfired = 0;
	for (i = 0; i < 5; i++) {
		timer_init(&t[i], record, (void *)(long)i);
		timer_add(q, &t[i], delay[i]);
	}
	ck_assert_int_eq(timerq_run(q, util_now_ms()), 0);
	ck_assert_int_eq(timerq_run(q, util_now_ms() + 1000), 5);
	ck_assert_int_eq(fired[0], 1);
	ck_assert_int_eq(fired[1], 3);
	ck_assert_int_eq(fired[2], 4);
	ck_assert_int_eq(fired[3], 2);
	ck_assert_int_eq(fired[4], 0);
	ck_assert_int_eq(timerq_timeout(q, util_now_ms()), -1);
	timerq_free(q);
}
END_TEST

START_TEST(test_cancel)
{
	struct timerq *q = timerq_new();
	struct timer t[8];
	int i;

	nfired = 0;
	for (i = 0; i < 8; i++) {
		timer_init(&t[i], record, (void *)(long)i);
		timer_add(q, &t[i], 10 * (i + 1));
	}
	timer_cancel(q, &t[0]);
	timer_cancel(q, &t[0]); /* twice is safe */
	timer_cancel(q, &t[5]);
	ck_assert_int_eq(timer_armed(&t[0]), 0);
	ck_assert_int_eq(timer_armed(&t[1]), 1);
	ck_assert_int_eq(timerq_run(q, util_now_ms() + 1000), 6);
	ck_assert_int_eq(fired[0], 1);
	ck_assert_int_eq(fired[4], 6);
	ck_assert_int_eq(fired[5], 7);
	timerq_free(q);
}
END_TEST

START_TEST(test_rearm_moves)
{
	struct timerq *q = timerq_new();
	struct timer a, b;
	int ms;

	timer_init(&a, record, (void *)1L);
	timer_init(&b, record, (void *)2L);
	timer_add(q, &a, 100);
	timer_add(q, &b, 200);
	timer_add(q, &a, 300); /* re-arm later */
	ms = timerq_timeout(q, util_now_ms());
	ck_assert_int_gt(ms, 150);
	ck_assert_int_le(ms, 200);
	timerq_free(q);
}
END_TEST

static struct timerq *spin_q;
static struct timer spin_t;
static int spins;

static void
respin(void *arg)
{
	(void)arg;
	spins++;
	timer_add(spin_q, &spin_t, 0);
}

START_TEST(test_zero_rearm_does_not_spin)
{
	spin_q = timerq_new();
	spins = 0;
	timer_init(&spin_t, respin, NULL);
	timer_add(spin_q, &spin_t, 0);
	ck_assert_int_eq(timerq_run(spin_q, util_now_ms() + 10), 1);
	ck_assert_int_eq(spins, 1);
	timerq_free(spin_q);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("timer");
	TCase *tc = tcase_create("timer");

	tcase_add_test(tc, test_order);
	tcase_add_test(tc, test_cancel);
	tcase_add_test(tc, test_rearm_moves);
	tcase_add_test(tc, test_zero_rearm_does_not_spin);
	suite_add_tcase(s, tc);
	return unit_run(s);
}

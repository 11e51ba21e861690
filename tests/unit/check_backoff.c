/* Unit tests for backoff.c: doubling, the cap, the jitter bounds, reset. */
#include <check.h>
#include <stdlib.h>

#include "backoff.h"
#include "unit.h"

START_TEST(test_growth_and_cap)
{
	static const unsigned high[] = {1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000};
	static const unsigned low[] = {1000, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000};
	struct backoff b;
	size_t i;

	backoff_init(&b, 1, 60);
	for (i = 0; i < sizeof(high) / sizeof(high[0]); i++)
		ck_assert_uint_eq(backoff_next(&b, unit_rnd_high, NULL), high[i]);
	backoff_init(&b, 1, 60);
	for (i = 0; i < sizeof(low) / sizeof(low[0]); i++)
		ck_assert_uint_eq(backoff_next(&b, unit_rnd_low, NULL), low[i]);
}
END_TEST

START_TEST(test_jitter_bounds)
{
	struct backoff b;
	uint32_t seed = 77;
	unsigned d, step, lo, hi_seen, lo_seen;
	int round, i;

	for (round = 0; round < 200; round++) {
		backoff_init(&b, 2, 45);
		step = 2000;
		for (i = 0; i < 12; i++) {
			d = backoff_next(&b, unit_rnd_seeded, &seed);
			lo = step / 2 > 2000 ? step / 2 : 2000;
			ck_assert_uint_ge(d, lo);
			ck_assert_uint_le(d, step);
			ck_assert_uint_le(d, 45000);
			step = step * 2 > 45000 ? 45000 : step * 2;
		}
	}
	/* The jitter spreads over the whole upper half of the step. */
	lo_seen = 45000;
	hi_seen = 0;
	for (i = 0; i < 2000; i++) {
		b.cur_ms = 45000;
		d = backoff_next(&b, unit_rnd_seeded, &seed);
		lo_seen = d < lo_seen ? d : lo_seen;
		hi_seen = d > hi_seen ? d : hi_seen;
	}
	ck_assert_uint_lt(lo_seen, 22500 + 500);
	ck_assert_uint_gt(hi_seen, 45000 - 500);
}
END_TEST

START_TEST(test_reset)
{
	struct backoff b;
	int i;

	backoff_init(&b, 1, 60);
	for (i = 0; i < 10; i++)
		backoff_next(&b, unit_rnd_high, NULL);
	ck_assert_uint_eq(backoff_next(&b, unit_rnd_high, NULL), 60000);
	backoff_reset(&b);
	ck_assert_uint_eq(backoff_next(&b, unit_rnd_high, NULL), 1000);
	ck_assert_uint_eq(backoff_next(&b, unit_rnd_high, NULL), 2000);
}
END_TEST

START_TEST(test_odd_settings)
{
	struct backoff b;
	uint32_t seed = 9;
	unsigned d;
	int i;

	/* max below min: every delay is min. */
	backoff_init(&b, 10, 5);
	for (i = 0; i < 5; i++)
		ck_assert_uint_eq(backoff_next(&b, unit_rnd_seeded, &seed), 10000);
	/* min == max: no jitter below min. */
	backoff_init(&b, 3, 3);
	for (i = 0; i < 5; i++)
		ck_assert_uint_eq(backoff_next(&b, unit_rnd_seeded, &seed), 3000);
	/* min 0 still grows from 100 ms, never 0. */
	backoff_init(&b, 0, 1);
	ck_assert_uint_eq(backoff_next(&b, unit_rnd_high, NULL), 100);
	ck_assert_uint_eq(backoff_next(&b, unit_rnd_high, NULL), 200);
	ck_assert_uint_eq(backoff_next(&b, unit_rnd_low, NULL), 200);
	for (i = 0; i < 5; i++)
		backoff_next(&b, unit_rnd_high, NULL);
	ck_assert_uint_eq(backoff_next(&b, unit_rnd_high, NULL), 1000);
	backoff_init(&b, 0, 0);
	for (i = 0; i < 5; i++) {
		d = backoff_next(&b, unit_rnd_seeded, &seed);
		ck_assert_uint_ge(d, 50);
		ck_assert_uint_le(d, 100);
	}
	/* Huge values are capped at a day, without overflow. */
	backoff_init(&b, 4000000000u, 4000000000u);
	ck_assert_uint_eq(backoff_next(&b, unit_rnd_low, NULL), 86400000);
	backoff_init(&b, 1, 4000000000u);
	for (i = 0; i < 40; i++)
		d = backoff_next(&b, unit_rnd_high, NULL);
	ck_assert_uint_eq(d, 86400000);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("backoff");
	TCase *tc = tcase_create("backoff");

	tcase_add_test(tc, test_growth_and_cap);
	tcase_add_test(tc, test_jitter_bounds);
	tcase_add_test(tc, test_reset);
	tcase_add_test(tc, test_odd_settings);
	suite_add_tcase(s, tc);
	return unit_run(s);
}

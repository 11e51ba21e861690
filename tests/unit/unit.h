/* How every Check suite here runs: all its tests, exit 1 if any failed. */
#ifndef XCOMP_TESTS_UNIT_H
#define XCOMP_TESTS_UNIT_H

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline int
unit_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* A fresh directory /tmp/NAME.XXXXXX into dir (at least 64 bytes), and its removal. */
static inline void
unit_tmpdir(char *dir, size_t len, const char *name)
{
	snprintf(dir, len, "/tmp/%s.XXXXXX", name);
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static inline void
unit_rmtree(const char *dir)
{
	char cmd[4200];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* Random sources for the pure functions that take one (srv, backoff, health). */

/* The lowest value a generator may return. */
static inline uint32_t
unit_rnd_low(void *arg, uint32_t bound)
{
	(void)arg;
	ck_assert_uint_gt(bound, 0);
	return 0;
}

/* The highest value a generator may return. */
static inline uint32_t
unit_rnd_high(void *arg, uint32_t bound)
{
	(void)arg;
	ck_assert_uint_gt(bound, 0);
	return bound - 1;
}

/* xorshift32, seeded through arg (a uint32_t, not 0). */
static inline uint32_t
unit_rnd_seeded(void *arg, uint32_t bound)
{
	uint32_t *x = arg;

	ck_assert_uint_gt(bound, 0);
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return (uint32_t)(((uint64_t)*x * bound) >> 32);
}

#endif

/* Unit tests for buf.c: growth, consumption and the hard cap. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "unit.h"

START_TEST(test_cap)
{
	struct buf b;

	buf_init(&b, 10);
	ck_assert_int_eq(buf_add(&b, "0123456789", 10), 0);
	ck_assert_int_eq(buf_add(&b, "x", 1), -1);
	ck_assert_uint_eq(b.len, 10);
	buf_consume(&b, 4);
	ck_assert_int_eq(buf_add(&b, "abcd", 4), 0);
	ck_assert_int_eq(memcmp(buf_head(&b), "456789abcd", 10), 0);
	ck_assert_int_eq(buf_add(&b, "y", 1), -1);
	ck_assert_int_eq(buf_add(&b, "", 0), 0);
	buf_free(&b);
}
END_TEST

START_TEST(test_huge_request)
{
	struct buf b;

	buf_init(&b, 100);
	ck_assert_int_eq(buf_add(&b, "a", (size_t)-1), -1);
	ck_assert_ptr_null(b.data);
	buf_free(&b);
}
END_TEST

START_TEST(test_grow_and_shrink)
{
	struct buf b;
	char chunk[1000];
	int i;

	memset(chunk, 'z', sizeof(chunk));
	buf_init(&b, 1 << 20);
	for (i = 0; i < 100; i++)
		ck_assert_int_eq(buf_add(&b, chunk, sizeof(chunk)), 0);
	ck_assert_uint_eq(b.len, 100000);
	buf_consume(&b, 99999);
	ck_assert_uint_eq(b.len, 1);
	buf_shrink(&b);
	ck_assert_ptr_nonnull(b.data); /* not empty: kept */
	buf_consume(&b, 5);
	ck_assert_uint_eq(b.len, 0);
	buf_shrink(&b);
	ck_assert_ptr_null(b.data);
	buf_free(&b);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("buf");
	TCase *tc = tcase_create("buf");

	tcase_add_test(tc, test_cap);
	tcase_add_test(tc, test_huge_request);
	tcase_add_test(tc, test_grow_and_shrink);
	suite_add_tcase(s, tc);
	return unit_run(s);
}

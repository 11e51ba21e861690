/* Unit tests for digest.c: the XEP-0114 handshake value and its comparison. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "digest.h"
#include "unit.h"

START_TEST(test_prosody_vector)
{
	char out[DIGEST_HEXLEN + 1];

	/* A value Prosody 0.12 accepted. */
	ck_assert_int_eq(
	    digest_handshake("ca633396-605f-414b-bb2b-547c89527b23", "s3cret-1", out), 0);
	ck_assert_str_eq(out, "d7e7b66738dca37fce0a1308b3daeba7170f4fdb");
}
END_TEST

START_TEST(test_empty)
{
	char out[DIGEST_HEXLEN + 1];

	/* SHA-1 of the empty string. */
	ck_assert_int_eq(digest_handshake("", "", out), 0);
	ck_assert_str_eq(out, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
}
END_TEST

START_TEST(test_order_matters)
{
	char a[DIGEST_HEXLEN + 1], b[DIGEST_HEXLEN + 1];

	digest_handshake("id", "secret", a);
	digest_handshake("secret", "id", b);
	ck_assert_str_ne(a, b);
	digest_handshake("ids", "ecret", b);
	ck_assert_str_eq(a, b); /* plain concatenation, no separator */
}
END_TEST

START_TEST(test_equal)
{
	ck_assert_int_eq(digest_equal("abc", 3, "abc", 3), 1);
	ck_assert_int_eq(digest_equal("abc", 3, "abd", 3), 0);
	ck_assert_int_eq(digest_equal("abc", 3, "ab", 2), 0);
	ck_assert_int_eq(digest_equal("ab", 2, "abc", 3), 0);
	ck_assert_int_eq(digest_equal("", 0, "", 0), 1);
	ck_assert_int_eq(digest_equal("Abc", 3, "abc", 3), 0);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("digest");
	TCase *tc = tcase_create("digest");

	tcase_add_test(tc, test_prosody_vector);
	tcase_add_test(tc, test_empty);
	tcase_add_test(tc, test_order_matters);
	tcase_add_test(tc, test_equal);
	suite_add_tcase(s, tc);
	return unit_run(s);
}

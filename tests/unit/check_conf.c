/* Unit tests for conf.c: the "key = value" reader and its error messages. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"

struct seen {
	char text[1024];
	int n;
};

static const char *
collect(void *arg, const char *key, const char *value, char *err, size_t errlen)
{
	struct seen *s = arg;

	if (strcmp(key, "bad") == 0) {
		snprintf(err, errlen, "bad: \"%s\" is not allowed", value);
		return err;
	}
	if (strcmp(key, "static") == 0)
		return "static message";
	snprintf(s->text + strlen(s->text), sizeof(s->text) - strlen(s->text), "[%s=%s]", key,
	    value);
	s->n++;
	return NULL;
}

static int
parse(const char *text, struct seen *s, char *err)
{
	memset(s, 0, sizeof(*s));
	err[0] = '\0';
	return conf_parse_string("test.conf", text, collect, s, err, 512);
}

START_TEST(test_pairs)
{
	struct seen s;
	char err[512];

	ck_assert_int_eq(parse("# comment\n\n  name = cb1  \nkeepalive=30\r\n"
	    "domain = tptac9.com # trailing comment\nsecret = a#b\n", &s, err), 0);
	ck_assert_str_eq(s.text, "[name=cb1][keepalive=30][domain=tptac9.com][secret=a#b]");
	ck_assert_int_eq(s.n, 4);
}
END_TEST

START_TEST(test_value_with_spaces_and_equals)
{
	struct seen s;
	char err[512];

	ck_assert_int_eq(parse("server = a.test:5223 b.test = c\n", &s, err), 0);
	ck_assert_str_eq(s.text, "[server=a.test:5223 b.test = c]");
}
END_TEST

START_TEST(test_no_final_newline)
{
	struct seen s;
	char err[512];

	ck_assert_int_eq(parse("a = 1\nb = 2", &s, err), 0);
	ck_assert_str_eq(s.text, "[a=1][b=2]");
}
END_TEST

static void
expect_error(const char *text, const char *message)
{
	struct seen s;
	char err[512];

	ck_assert_int_eq(parse(text, &s, err), -1);
	ck_assert_str_eq(err, message);
}

START_TEST(test_errors)
{
	expect_error("a = 1\njust words\n", "test.conf:2: expected \"key = value\", found "
	    "\"just words\"");
	expect_error("= 1\n", "test.conf:1: bad key \"\"");
	expect_error("my key = 1\n", "test.conf:1: bad key \"my key\"");
	expect_error("\n\nname =   \n", "test.conf:3: name: missing value");
	expect_error("a = 1\nbad = x\n", "test.conf:2: bad: \"x\" is not allowed");
	expect_error("static = x\n", "test.conf:1: static message");
	expect_error("a = b\001c\n", "test.conf:1: control character (0x01) in line");
}
END_TEST

START_TEST(test_long_line)
{
	char *text = malloc(CONF_LINE_MAX + 100);
	struct seen s;
	char err[512];

	memset(text, 'x', CONF_LINE_MAX + 50);
	memcpy(text, "a = ", 4);
	strcpy(text + CONF_LINE_MAX + 50, "\n");
	ck_assert_int_eq(parse(text, &s, err), -1);
	ck_assert_str_eq(err, "test.conf:1: line longer than 4096 bytes");
	free(text);
}
END_TEST

START_TEST(test_nul_byte)
{
	static const char text[] = "a = 1\nb = x\0y\n";
	char path[] = "/tmp/check_conf.XXXXXX", err[512];
	struct seen s;
	FILE *fp;
	int fd;

	fd = mkstemp(path);
	ck_assert_int_ne(fd, -1);
	fp = fdopen(fd, "w");
	fwrite(text, 1, sizeof(text) - 1, fp);
	fclose(fp);
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(conf_parse_file(path, collect, &s, err, sizeof(err)), -1);
	unlink(path);
	ck_assert_ptr_nonnull(strstr(err, ":2: NUL byte in line"));
}
END_TEST

START_TEST(test_missing_file)
{
	struct seen s;
	char err[512];

	ck_assert_int_eq(conf_parse_file("/nonexistent/xcompd.conf", collect, &s, err,
	    sizeof(err)), -1);
	ck_assert_str_eq(err, "/nonexistent/xcompd.conf: cannot open: No such file or directory");
}
END_TEST

START_TEST(test_file_line_numbers)
{
	char path[] = "/tmp/check_conf.XXXXXX", err[512], *expect;
	struct seen s;
	FILE *fp;
	int fd;

	fd = mkstemp(path);
	fp = fdopen(fd, "w");
	fputs("# header\nname = cb1\n\nbad = 7\n", fp);
	fclose(fp);
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(conf_parse_file(path, collect, &s, err, sizeof(err)), -1);
	expect = malloc(strlen(path) + 64);
	sprintf(expect, "%s:4: bad: \"7\" is not allowed", path);
	ck_assert_str_eq(err, expect);
	ck_assert_str_eq(s.text, "[name=cb1]");
	free(expect);
	unlink(path);
}
END_TEST

START_TEST(test_uint)
{
	unsigned v = 99;

	ck_assert_int_eq(conf_uint("30", 1, 60, &v), 0);
	ck_assert_uint_eq(v, 30);
	ck_assert_int_eq(conf_uint("0", 1, 60, &v), -1);
	ck_assert_int_eq(conf_uint("61", 1, 60, &v), -1);
	ck_assert_int_eq(conf_uint("-1", 0, 60, &v), -1);
	ck_assert_int_eq(conf_uint("3s", 0, 60, &v), -1);
	ck_assert_int_eq(conf_uint("", 0, 60, &v), -1);
	ck_assert_int_eq(conf_uint(" 3", 0, 60, &v), -1);
	ck_assert_int_eq(conf_uint("99999999999999999999", 0, 60, &v), -1);
	ck_assert_uint_eq(v, 30);
}
END_TEST

START_TEST(test_bool)
{
	int b = -1;

	ck_assert_int_eq(conf_bool("on", &b), 0);
	ck_assert_int_eq(b, 1);
	ck_assert_int_eq(conf_bool("off", &b), 0);
	ck_assert_int_eq(b, 0);
	ck_assert_int_eq(conf_bool("maybe", &b), -1);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("conf");
	TCase *tc = tcase_create("conf");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_pairs);
	tcase_add_test(tc, test_value_with_spaces_and_equals);
	tcase_add_test(tc, test_no_final_newline);
	tcase_add_test(tc, test_errors);
	tcase_add_test(tc, test_long_line);
	tcase_add_test(tc, test_nul_byte);
	tcase_add_test(tc, test_missing_file);
	tcase_add_test(tc, test_file_line_numbers);
	tcase_add_test(tc, test_uint);
	tcase_add_test(tc, test_bool);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* Unit tests for server/state.c: xcomp-server's state directory commands. */
#include <sys/stat.h>

#include <check.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/state.h"
#include "unit.h"

static char dir[64];
static char out[8192], err[1024];

static void
setup(void)
{
	strcpy(dir, "/tmp/check_state.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void
teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* Run a command given as a string of words; stdin text for add-secret. */
static int
run(const char *input, const char *words)
{
	char copy[512], *argv[16], *w;
	FILE *in, *fo;
	int argc = 0, r;

	snprintf(copy, sizeof(copy), "%s", words);
	for (w = strtok(copy, " "); w && argc < 15; w = strtok(NULL, " "))
		argv[argc++] = w;
	argv[argc] = NULL;
	in = fmemopen((void *)(input ? input : ""), input ? strlen(input) : 0, "r");
	memset(out, 0, sizeof(out));
	fo = fmemopen(out, sizeof(out) - 1, "w");
	err[0] = '\0';
	r = state_command(dir, argc, argv, in, fo, err, sizeof(err));
	fclose(fo);
	fclose(in);
	return r;
}

START_TEST(test_domain)
{
	ck_assert_int_eq(run(NULL, "domain"), 0);
	ck_assert_str_eq(out, "(not set)\n");
	ck_assert_int_eq(run(NULL, "domain tptac9.com"), 0);
	ck_assert_int_eq(run(NULL, "domain"), 0);
	ck_assert_str_eq(out, "tptac9.com\n");
	ck_assert_int_eq(run(NULL, "domain bad/domain"), 1);
	ck_assert_str_eq(err, "\"bad/domain\" is not a valid domain name");
}
END_TEST

START_TEST(test_list_format)
{
	struct state st;
	char expect[512];

	ck_assert_int_eq(run(NULL, "domain tptac9.com"), 0);
	ck_assert_int_eq(run(NULL, "callbridge add cb1"), 0);
	ck_assert_int_eq(run("uBiLLdIU8vVqj86CAb1\n", "callbridge add-secret cb2"), 0);
	ck_assert_int_eq(state_load(dir, &st, err, sizeof(err)), 0);
	ck_assert_uint_eq(st.ncbs, 2);
	ck_assert_uint_eq(strlen(st.cbs[0].secret), STATE_SECRET_LEN);
	snprintf(expect, sizeof(expect),
	    "***\nCallbridge : cb1\nDomain     : tptac9.com\nSecret     : %s\n"
	    "***\nCallbridge : cb2\nDomain     : tptac9.com\nSecret     : uBiLLdIU8vVqj86CAb1\n",
	    st.cbs[0].secret);
	state_free(&st);
	ck_assert_int_eq(run(NULL, "callbridge list"), 0);
	ck_assert_str_eq(out, expect);
}
END_TEST

START_TEST(test_add_prints_secret)
{
	struct state st;
	char expect[256];

	ck_assert_int_eq(run(NULL, "domain tptac9.com"), 0);
	ck_assert_int_eq(run(NULL, "callbridge add cb1"), 0);
	ck_assert_int_eq(state_load(dir, &st, err, sizeof(err)), 0);
	snprintf(expect, sizeof(expect),
	    "Callbridge : cb1\nDomain     : tptac9.com\n"
	    "Secret     : %s\n",
	    st.cbs[0].secret);
	state_free(&st);
	ck_assert_str_eq(out, expect);
}
END_TEST

START_TEST(test_add_twice_remove)
{
	ck_assert_int_eq(run(NULL, "callbridge add cb1"), 0);
	ck_assert_int_eq(run(NULL, "callbridge add cb1"), 1);
	ck_assert_str_eq(err, "call bridge \"cb1\" exists already; use add-secret to change "
	                      "its secret");
	ck_assert_int_eq(run(NULL, "callbridge remove cb1"), 0);
	ck_assert_int_eq(run(NULL, "callbridge remove cb1"), 1);
	ck_assert_str_eq(err, "no call bridge named \"cb1\"");
	ck_assert_int_eq(run(NULL, "callbridge list"), 0);
	ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(test_add_secret_replaces_and_checks)
{
	struct state st;

	ck_assert_int_eq(run("first\n", "callbridge add-secret cb1"), 0);
	ck_assert_int_eq(run("second\r\n", "callbridge add-secret cb1"), 0);
	ck_assert_int_eq(state_load(dir, &st, err, sizeof(err)), 0);
	ck_assert_uint_eq(st.ncbs, 1);
	ck_assert_str_eq(st.cbs[0].secret, "second");
	state_free(&st);
	ck_assert_int_eq(run("", "callbridge add-secret cb1"), 1);
	ck_assert_str_eq(err, "no secret on standard input");
	ck_assert_int_eq(run("with space\n", "callbridge add-secret cb1"), 1);
	ck_assert_str_eq(err, "a secret may hold printable ASCII characters only, no spaces or "
	                      "control characters");
	ck_assert_int_eq(run("#hash\n", "callbridge add-secret cb1"), 1);
	ck_assert_int_eq(run("x\n", "callbridge add-secret bad.name"), 1);
	ck_assert_ptr_nonnull(strstr(err, "use letters, digits"));
}
END_TEST

START_TEST(test_secrets_file_mode)
{
	char path[128];
	struct stat sb;
	struct state st;

	ck_assert_int_eq(run(NULL, "callbridge add cb1"), 0);
	snprintf(path, sizeof(path), "%s/callbridges", dir);
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 0777, 0600);
	chmod(path, 0644);
	ck_assert_int_eq(run(NULL, "callbridge list"), 1);
	ck_assert_ptr_nonnull(
	    strstr(err, "readable by group or others (mode 644); run: chmod 600"));
	ck_assert_int_eq(state_load(dir, &st, err, sizeof(err)), -1);
	state_free(&st);
}
END_TEST

START_TEST(test_listen)
{
	ck_assert_int_eq(run(NULL, "listen 127.0.0.1:5223"), 0);
	ck_assert_int_eq(run(NULL, "listen [::1]:5224"), 0);
	ck_assert_int_eq(run(NULL, "listen 127.0.0.1:5223"), 1);
	ck_assert_str_eq(err, "already listening on 127.0.0.1:5223");
	ck_assert_int_eq(run(NULL, "listen host.example:5223"), 1);
	ck_assert_str_eq(
	    err, "listen \"host.example:5223\": \"host.example\" is not an IP address");
	ck_assert_int_eq(run(NULL, "listen 127.0.0.1"), 1);
	ck_assert_int_eq(run(NULL, "listen 127.0.0.1:70000"), 1);
	ck_assert_int_eq(run(NULL, "listen"), 0);
	ck_assert_str_eq(out, "127.0.0.1:5223\n[::1]:5224\n");
	ck_assert_int_eq(run(NULL, "listen none"), 0);
	ck_assert_int_eq(run(NULL, "listen"), 0);
	ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(test_policy_and_numbers)
{
	ck_assert_int_eq(run(NULL, "conflict-policy"), 0);
	ck_assert_str_eq(out, "kick-new\n");
	ck_assert_int_eq(run(NULL, "conflict-policy allow"), 0);
	ck_assert_int_eq(run(NULL, "conflict-policy"), 0);
	ck_assert_str_eq(out, "allow\n");
	ck_assert_int_eq(run(NULL, "conflict-policy sometimes"), 1);
	ck_assert_int_eq(run(NULL, "handshake-timeout 2"), 0);
	ck_assert_int_eq(run(NULL, "handshake-timeout"), 0);
	ck_assert_str_eq(out, "2\n");
	ck_assert_int_eq(run(NULL, "handshake-timeout 0"), 1);
	ck_assert_int_eq(run(NULL, "max-stanza 10"), 1);
	ck_assert_int_eq(run(NULL, "frobnicate"), 1);
	ck_assert_str_eq(err, "unknown command \"frobnicate\" (see xcomp-server -h)");
}
END_TEST

START_TEST(test_bad_conf_file)
{
	char path[128];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/xcomp-server.conf", dir);
	fp = fopen(path, "w");
	fputs("domain = tptac9.com\nlisten = nowhere\n", fp);
	fclose(fp);
	ck_assert_int_eq(run(NULL, "domain"), 1);
	ck_assert_ptr_nonnull(strstr(err, "xcomp-server.conf:2: listen \"nowhere\""));
	fp = fopen(path, "w");
	fputs("colour = blue\n", fp);
	fclose(fp);
	ck_assert_int_eq(run(NULL, "domain"), 1);
	ck_assert_ptr_nonnull(strstr(err, "xcomp-server.conf:1: unknown key \"colour\""));
}
END_TEST

START_TEST(test_find_jid)
{
	struct state st;

	ck_assert_int_eq(run(NULL, "domain tptac9.com"), 0);
	ck_assert_int_eq(run(NULL, "callbridge add cb1"), 0);
	ck_assert_int_eq(state_load(dir, &st, err, sizeof(err)), 0);
	ck_assert_ptr_nonnull(state_find_jid(&st, "cb1.tptac9.com"));
	ck_assert_ptr_nonnull(state_find_jid(&st, "CB1.TPTAC9.com"));
	ck_assert_ptr_null(state_find_jid(&st, "cb1.tptac9.co"));
	ck_assert_ptr_null(state_find_jid(&st, "cb1"));
	ck_assert_ptr_null(state_find_jid(&st, "cb2.tptac9.com"));
	ck_assert_ptr_null(state_find_jid(&st, "tptac9.com"));
	state_free(&st);
}
END_TEST

START_TEST(test_new_secret)
{
	char a[STATE_SECRET_LEN + 1], b[STATE_SECRET_LEN + 1];
	int i;

	state_new_secret(a);
	state_new_secret(b);
	ck_assert_uint_eq(strlen(a), STATE_SECRET_LEN);
	ck_assert_str_ne(a, b);
	for (i = 0; i < STATE_SECRET_LEN; i++)
		ck_assert(isalnum((unsigned char)a[i]));
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("state");
	TCase *tc = tcase_create("state");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_domain);
	tcase_add_test(tc, test_list_format);
	tcase_add_test(tc, test_add_prints_secret);
	tcase_add_test(tc, test_add_twice_remove);
	tcase_add_test(tc, test_add_secret_replaces_and_checks);
	tcase_add_test(tc, test_secrets_file_mode);
	tcase_add_test(tc, test_listen);
	tcase_add_test(tc, test_policy_and_numbers);
	tcase_add_test(tc, test_bad_conf_file);
	tcase_add_test(tc, test_find_jid);
	tcase_add_test(tc, test_new_secret);
	suite_add_tcase(s, tc);
	return unit_run(s);
}

/*
 * Unit tests for status.c: the status file's format, parsing it back and its
 * lock; and for statusview.c: what "xcomp status" says about a given file,
 * its stale reasons and JSON.
 */
#include <sys/wait.h>

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "status.h"
#include "statusview.h"
#include "unit.h"

static const struct status_node sample_nodes[] = {
    {"cb1.tptac9.com", 5223, 0, 0, "auth"},
    {"cb2.tptac9.com", 5223, 0, 0, "ok"},
    {"cb3.tptac9.com", 5223, 10, 5, "untried"},
};

static struct status
sample(enum agent_state state)
{
	struct status s;

	memset(&s, 0, sizeof(s));
	s.state = state;
	s.since = 1795680751; /* 2026-11-26T08:12:31Z */
	s.pid = 4242;
	s.component = "cb1.tptac9.com";
	s.domain = "tptac9.com";
	s.server = "cb2.tptac9.com:5223";
	s.address = "10.0.0.2";
	s.connected_since = 1795680752;
	s.failovers = 3;
	s.last_error = "auth";
	s.last_error_text = "authentication failure at cb1.tptac9.com:5223 (not-authorized)";
	s.last_error_at = 1795680750;
	s.nodes = sample_nodes;
	s.nnodes = 3;
	return s;
}

START_TEST(test_connected)
{
	struct status s = sample(STATUS_CONNECTED);
	char *text = status_format(&s, 1795680760);

	ck_assert_str_eq(text,
	    "state=connected\n"
	    "since=2026-11-26T08:12:31Z\n"
	    "updated=2026-11-26T08:12:40Z\n"
	    "pid=4242\n"
	    "component=cb1.tptac9.com\n"
	    "domain=tptac9.com\n"
	    "server=cb2.tptac9.com:5223\n"
	    "address=10.0.0.2\n"
	    "connected-since=2026-11-26T08:12:32Z\n"
	    "failovers=3\n"
	    "relay=off\n"
	    "last-error=auth\n"
	    "last-error-text=authentication failure at cb1.tptac9.com:5223 (not-authorized)\n"
	    "last-error-at=2026-11-26T08:12:30Z\n"
	    "node=cb1.tptac9.com:5223 priority=0 weight=0 result=auth\n"
	    "node=cb2.tptac9.com:5223 priority=0 weight=0 result=ok\n"
	    "node=cb3.tptac9.com:5223 priority=10 weight=5 result=untried\n");
	free(text);
}
END_TEST

/* STATUS= for systemctl status: the session, else what went wrong, else the step. */
START_TEST(test_words)
{
	struct status s = sample(STATUS_CONNECTED);
	char *w;

	ck_assert_str_eq(
	    w = status_words(&s), "connected to cb2.tptac9.com:5223 since 2026-11-26 08:12:32 UTC");
	free(w);
	s.state = STATUS_BACKOFF;
	ck_assert_str_eq(w = status_words(&s),
	    "no session: authentication failure at cb1.tptac9.com:5223 (not-authorized)");
	free(w);
	s.last_error = NULL;
	s.state = STATUS_CONNECTING;
	ck_assert_str_eq(w = status_words(&s), "no session: connecting to cb2.tptac9.com:5223");
	free(w);
	s.state = STATUS_AUTHENTICATING;
	ck_assert_str_eq(w = status_words(&s), "no session: authenticating at cb2.tptac9.com:5223");
	free(w);
	s.state = STATUS_RESOLVING;
	s.server = NULL;
	ck_assert_str_eq(w = status_words(&s), "no session: resolving");
	free(w);
	s.state = STATUS_STOPPED;
	ck_assert_str_eq(w = status_words(&s), "stopped");
	free(w);
}
END_TEST

START_TEST(test_backoff_has_no_server)
{
	struct status s = sample(STATUS_BACKOFF);
	char *text = status_format(&s, 1795680760);

	ck_assert_ptr_null(strstr(text, "server="));
	ck_assert_ptr_null(strstr(text, "address="));
	ck_assert_ptr_null(strstr(text, "connected-since="));
	ck_assert_ptr_nonnull(strstr(text, "state=backoff\n"));
	free(text);
}
END_TEST

START_TEST(test_relay_keys)
{
	struct status s = sample(STATUS_CONNECTED);
	char *text;

	s.relay = "connected";
	s.relay_queued = 7;
	s.relay_bounced = 2;
	text = status_format(&s, 1795680760);
	ck_assert_ptr_nonnull(strstr(text, "\nrelay=connected\nrelay-queued=7\nrelay-bounced=2\n"));
	free(text);
}
END_TEST

START_TEST(test_no_error_yet)
{
	struct status s = sample(STATUS_RESOLVING);
	char *text;

	s.last_error = NULL;
	s.nnodes = 0;
	text = status_format(&s, 1795680760);
	ck_assert_ptr_null(strstr(text, "last-error"));
	ck_assert_ptr_null(strstr(text, "node="));
	ck_assert_ptr_nonnull(strstr(text, "failovers=3\n"));
	free(text);
}
END_TEST

START_TEST(test_values_stay_on_one_line)
{
	struct status s = sample(STATUS_BACKOFF);
	struct status_file f;
	char *text;

	s.last_error_text = "bad\nstate=connected\r";
	text = status_format(&s, 1795680760);
	ck_assert_int_eq(status_parse(text, strlen(text), &f), 0);
	ck_assert_str_eq(status_get(&f, "state"), "backoff");
	ck_assert_str_eq(status_get(&f, "last-error-text"), "bad state=connected ");
	status_file_free(&f);
	free(text);
}
END_TEST

START_TEST(test_parse_round_trip)
{
	struct status s = sample(STATUS_CONNECTED);
	struct status_file f;
	char *text = status_format(&s, 1795680760);
	size_t i, nodes = 0;
	time_t t;

	ck_assert_int_eq(status_parse(text, strlen(text), &f), 0);
	ck_assert_str_eq(status_get(&f, "server"), "cb2.tptac9.com:5223");
	ck_assert_str_eq(
	    status_get(&f, "node"), "cb1.tptac9.com:5223 priority=0 weight=0 result=auth");
	for (i = 0; i < f.n; i++)
		nodes += strcmp(f.kv[i].key, "node") == 0;
	ck_assert_uint_eq(nodes, 3);
	ck_assert_str_eq(status_get(&f, "relay"), "off");
	ck_assert_ptr_null(status_get(&f, "no-such-key"));
	ck_assert_int_eq(status_parse_time(status_get(&f, "since"), &t), 0);
	ck_assert_int_eq(t, 1795680751);
	status_file_free(&f);
	free(text);
}
END_TEST

START_TEST(test_parse_garbage)
{
	struct status_file f;
	time_t t;

	ck_assert_int_eq(status_parse("state=connected\nno equals sign\n", 31, &f), -1);
	ck_assert_int_eq(status_parse("=value\n", 7, &f), -1);
	ck_assert_int_eq(status_parse("a=b\0c\n", 6, &f), -1);
	ck_assert_int_eq(status_parse("", 0, &f), 0);
	ck_assert_uint_eq(f.n, 0);
	status_file_free(&f);
	ck_assert_int_eq(status_parse_time("2026-11-26 08:12:31", &t), -1);
	ck_assert_int_eq(status_parse_time("2026-11-26T08:12:31Zjunk", &t), -1);
	ck_assert_int_eq(status_parse_time("", &t), -1);
}
END_TEST

START_TEST(test_write_atomic)
{
	char dir[] = "/tmp/check_status.XXXXXX", path[64], err[256], buf[64];
	FILE *fp;
	size_t n;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/status", dir);
	ck_assert_int_eq(status_write(path, "state=connected\n", err, sizeof(err)), 0);
	ck_assert_int_eq(status_write(path, "state=backoff\n", err, sizeof(err)), 0);
	fp = fopen(path, "r");
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	ck_assert_str_eq(buf, "state=backoff\n");
	snprintf(buf, sizeof(buf), "%s/status.tmp", dir);
	ck_assert_int_eq(access(buf, F_OK), -1); /* no temporary left behind */
	unlink(path);
	rmdir(dir);
	ck_assert_int_eq(status_write("/nonexistent/dir/status", "x=y\n", err, sizeof(err)), -1);
	ck_assert_str_eq(err, "/nonexistent/dir/status.tmp: No such file or directory");
}
END_TEST

START_TEST(test_lock)
{
	char dir[] = "/tmp/check_status.XXXXXX", path[64], err[512], want[256], c;
	int fd, up[2], down[2];
	pid_t child;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/status", dir);
	ck_assert_int_eq(pipe(up), 0);
	ck_assert_int_eq(pipe(down), 0);
	/* fcntl locks are per process: another process must hold it. */
	if ((child = fork()) == 0) {
		fd = status_lock(path, err, sizeof(err));
		c = fd == -1 ? 'n' : 'y';
		if (write(up[1], &c, 1) != 1 || read(down[0], &c, 1) != 1)
			_exit(2);
		_exit(0);
	}
	ck_assert_int_eq(read(up[0], &c, 1), 1);
	ck_assert_int_eq(c, 'y');
	ck_assert_int_eq(status_lock(path, err, sizeof(err)), -1);
	snprintf(want, sizeof(want),
	    "status-file %s is in use by another xcompd (pid %ld holds %s.lock); stop that one, "
	    "or give this one a status-file of its own",
	    path, (long)child, path);
	ck_assert_str_eq(err, want);
	/* Its holder gone, the lock is free again, file and all. */
	ck_assert_int_eq(write(down[1], "x", 1), 1);
	ck_assert_int_eq(waitpid(child, NULL, 0), child);
	ck_assert_int_ge(fd = status_lock(path, err, sizeof(err)), 0);
	close(fd);
	snprintf(want, sizeof(want), "%s.lock", path);
	unlink(want);
	rmdir(dir);
	ck_assert_int_eq(status_lock("/nonexistent/dir/status", err, sizeof(err)), -1);
	ck_assert_str_eq(err, "status-file /nonexistent/dir/status: cannot open "
	                      "/nonexistent/dir/status.lock: No such file or directory");
}
END_TEST

static const char *
stale_reason(const char *text, time_t now, char *why)
{
	struct status_file f;
	const char *r;

	ck_assert_int_eq(status_parse(text, strlen(text), &f), 0);
	r = statusview_stale_reason(&f, 30, now, why, 256);
	ck_assert_str_eq(statusview_verdict(&f, 30, now), r ? "stale" : "not connected");
	status_file_free(&f);
	return r;
}

START_TEST(test_stale_reasons)
{
	time_t now = 1795680751 + 60; /* updated + 60 s */
	char text[256], why[256], want[256];

	ck_assert_str_eq(stale_reason("pid=1\n", now, why), "the file has no state");
	ck_assert_str_eq(stale_reason("state=backoff\nupdated=soon\n", now, why),
	    "the file has no valid updated time");
	ck_assert_str_eq(stale_reason("state=backoff\nupdated=2026-11-26T08:12:31Z\n", now, why),
	    "the file has no valid pid");
	/* Larger than any pid_max: no such process. */
	ck_assert_str_eq(
	    stale_reason("state=backoff\nupdated=2026-11-26T08:12:31Z\npid=2147483000\n", now, why),
	    "the agent (pid 2147483000) is not running");
	snprintf(text, sizeof(text), "state=backoff\nupdated=2026-11-26T08:12:31Z\npid=%ld\n",
	    (long)getpid());
	ck_assert_ptr_null(stale_reason(text, now, why));
	snprintf(want, sizeof(want),
	    "the agent (pid %ld) has not written its status since 2026-11-26T08:12:31Z, 66 s ago; "
	    "it writes at least every 30 s (keepalive)",
	    (long)getpid());
	ck_assert_str_eq(stale_reason(text, now + 6, why), want);
	/* A stopped agent is gone by design: not stale. */
	ck_assert_ptr_null(stale_reason(
	    "state=stopped\nupdated=2026-11-26T08:12:31Z\npid=2147483000\n", now + 1000, why));
}
END_TEST

START_TEST(test_json_reason_and_unknown)
{
	const char *text = "state=backoff\npid=7\n";
	struct status_file f;
	char *json = NULL;
	size_t len = 0;
	FILE *out;

	ck_assert_int_eq(status_parse(text, strlen(text), &f), 0);
	ck_assert_ptr_nonnull(out = open_memstream(&json, &len));
	statusview_json(out, &f, "stale", "the file has no \"updated\"");
	fclose(out);
	ck_assert_str_eq(json, "{\n  \"verdict\": \"stale\",\n  \"reason\": \"the file has no "
	                       "\\\"updated\\\"\",\n  \"state\": \"backoff\",\n  \"pid\": 7,\n  "
	                       "\"nodes\": []\n}\n");
	free(json);
	status_file_free(&f);
	ck_assert_ptr_nonnull(out = open_memstream(&json, &len));
	statusview_json_unknown(out, "/run/xcomp/status",
	    "cannot read the status file /run/xcomp/status: No such file or directory");
	fclose(out);
	ck_assert_str_eq(json,
	    "{\n  \"verdict\": \"unknown\",\n  \"state\": \"unknown\",\n  "
	    "\"reason\": \"cannot read the status file /run/xcomp/status: No such "
	    "file or directory\",\n  \"status-file\": \"/run/xcomp/status\",\n  "
	    "\"nodes\": []\n}\n");
	free(json);
}
END_TEST

/* "xcomp status" on a file's text, at 2026-11-26T08:13:31Z. Freed with free(). */
static char *
view(const char *text, const char *verdict)
{
	struct status_file f;
	char *out = NULL;
	size_t len = 0;
	FILE *fp;

	ck_assert_int_eq(status_parse(text, strlen(text), &f), 0);
	ck_assert_ptr_nonnull(fp = open_memstream(&out, &len));
	statusview_human(fp, &f, verdict, 1795680811);
	fclose(fp);
	status_file_free(&f);
	return out;
}

/* An address refused, then the node's next address connected: history, not state. */
START_TEST(test_view_error_before_the_session)
{
	char *out = view("state=connected\nsince=2026-11-26T08:12:31Z\n"
	                 "updated=2026-11-26T08:13:31Z\npid=1\ncomponent=cb1.tptac9.com\n"
	                 "domain=tptac9.com\nserver=a.tptac9.com:5223\naddress=127.0.0.1\n"
	                 "connected-since=2026-11-26T08:12:31Z\nfailovers=0\n"
	                 "last-error=connect\nlast-error-text=cannot connect to "
	                 "a.tptac9.com:5223 (::1): Connection refused\n"
	                 "last-error-at=2026-11-26T08:12:31Z\n"
	                 "node=a.tptac9.com:5223 priority=10 weight=60 result=ok\n",
	    "connected");

	ck_assert_ptr_nonnull(strstr(out, "XMPP connection: connected to a.tptac9.com:5223 "
	                                  "(127.0.0.1) for 1 minute\n"));
	ck_assert_ptr_nonnull(strstr(out, "\nEarlier:         cannot connect to a.tptac9.com:5223 "
	                                  "(::1): Connection refused (1 minute ago, before this "
	                                  "session)\n"));
	ck_assert_ptr_null(strstr(out, "Last error"));
	ck_assert_ptr_null(strstr(out, "section CONNECT"));
	free(out);
}
END_TEST

/* A re-resolve that failed while the session stays up is the state. */
START_TEST(test_view_error_during_the_session)
{
	char *out = view("state=connected\nsince=2026-11-26T08:12:31Z\n"
	                 "updated=2026-11-26T08:13:31Z\npid=1\nserver=a.tptac9.com:5223\n"
	                 "connected-since=2026-11-26T08:12:31Z\nlast-error=dns\n"
	                 "last-error-text=_xmpp-component._tcp.tptac9.com: SERVFAIL\n"
	                 "last-error-at=2026-11-26T08:13:01Z\n"
	                 "node=a.tptac9.com:5223 priority=10 weight=60 result=ok\n",
	    "connected");

	ck_assert_ptr_nonnull(strstr(out, "\nLast error:      _xmpp-component._tcp.tptac9.com: "
	                                  "SERVFAIL (30 seconds ago)\n"
	                                  "                 See xcomp-troubleshooting(7), "
	                                  "section DNS.\n"));
	ck_assert_ptr_null(strstr(out, "Earlier"));
	free(out);
}
END_TEST

/* One node refuses the secret, the others are down: both, per node, with sections. */
START_TEST(test_view_failures_per_node)
{
	char *out = view("state=backoff\nsince=2026-11-26T08:13:21Z\n"
	                 "updated=2026-11-26T08:13:31Z\npid=1\nlast-error=connect\n"
	                 "last-error-text=cannot connect to c.tptac9.com:5223 (10.0.0.3): "
	                 "Connection refused\nlast-error-at=2026-11-26T08:13:21Z\n"
	                 "node=a.tptac9.com:5223 priority=10 weight=60 result=auth\n"
	                 "node=b.tptac9.com:5223 priority=20 weight=60 result=connect\n"
	                 "node=d.tptac9.com:5223 priority=30 weight=60 result=untried\n"
	                 "node=c.tptac9.com:5223 priority=20 weight=60 result=connect\n",
	    "not connected");

	ck_assert_ptr_nonnull(strstr(out, "XMPP connection: backoff; failed to connect to "
	                                  "a.tptac9.com:5223 due to authentication failure, to "
	                                  "b.tptac9.com:5223 and c.tptac9.com:5223 due to "
	                                  "connection failure (10 seconds ago)\n"));
	ck_assert_ptr_nonnull(strstr(out, "\nLast error:      cannot connect to c.tptac9.com:5223 "
	                                  "(10.0.0.3): Connection refused (10 seconds ago)\n"
	                                  "Failed nodes:    a.tptac9.com:5223: authentication "
	                                  "failure. See xcomp-troubleshooting(7), section AUTH.\n"
	                                  "                 b.tptac9.com:5223 and "
	                                  "c.tptac9.com:5223: connection failure. See "
	                                  "xcomp-troubleshooting(7), section CONNECT.\n"));
	free(out);
}
END_TEST

/* One node, one failure: the headline the Meeting Server would show. */
START_TEST(test_view_one_failure)
{
	char *out = view("state=backoff\nsince=2026-11-26T08:13:21Z\n"
	                 "updated=2026-11-26T08:13:31Z\npid=1\nlast-error=auth\n"
	                 "last-error-text=authentication failure at cb2.tptac9.com:5223 "
	                 "(not-authorized)\nlast-error-at=2026-11-26T08:12:31Z\n"
	                 "node=cb2.tptac9.com:5223 priority=10 weight=60 result=auth\n",
	    "not connected");

	ck_assert_ptr_nonnull(strstr(out, "XMPP connection: backoff; failed to connect to "
	                                  "cb2.tptac9.com:5223 due to authentication failure "
	                                  "(1 minute ago)\n"));
	ck_assert_ptr_nonnull(strstr(out, "section AUTH.\n"));
	ck_assert_ptr_null(strstr(out, "CONNECT"));
	free(out);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("status");
	TCase *tc = tcase_create("status");

	tcase_add_test(tc, test_connected);
	tcase_add_test(tc, test_backoff_has_no_server);
	tcase_add_test(tc, test_no_error_yet);
	tcase_add_test(tc, test_words);
	tcase_add_test(tc, test_relay_keys);
	tcase_add_test(tc, test_values_stay_on_one_line);
	tcase_add_test(tc, test_parse_round_trip);
	tcase_add_test(tc, test_parse_garbage);
	tcase_add_test(tc, test_write_atomic);
	tcase_add_test(tc, test_lock);
	tcase_add_test(tc, test_stale_reasons);
	tcase_add_test(tc, test_json_reason_and_unknown);
	suite_add_tcase(s, tc);
	tc = tcase_create("view");
	tcase_add_test(tc, test_view_error_before_the_session);
	tcase_add_test(tc, test_view_error_during_the_session);
	tcase_add_test(tc, test_view_failures_per_node);
	tcase_add_test(tc, test_view_one_failure);
	suite_add_tcase(s, tc);
	return unit_run(s);
}

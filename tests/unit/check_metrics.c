/*
 * Unit tests for metrics.c: the Prometheus text that the metrics-file and
 * "xcomp status --prometheus" hold, built from a status file: every metric
 * with its HELP and TYPE, label values escaped, junk counted as 0.
 */
#include <sys/stat.h>

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "metrics.h"
#include "status.h"
#include "unit.h"
#include "util.h"

static const struct status_node sample_nodes[] = {
    {"cb1.tptac9.com", 5223, 0, 0, "auth"},
    {"cb2.tptac9.com", 5223, 0, 0, "ok"},
    {"cb3.tptac9.com", 5223, 10, 5, "untried"},
};

/* Connected for 9 s after the third failover, which left 1.834 s without a session. */
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
	s.connected_since = 1795680751;
	s.failovers = 3;
	s.has_gap = 1;
	s.gap_ms = 1834;
	s.last_error = "auth";
	s.last_error_text = "authentication failure at cb1.tptac9.com:5223 (not-authorized)";
	s.last_error_at = 1795680750;
	s.nodes = sample_nodes;
	s.nnodes = 3;
	s.relay = "connected";
	s.relay_queued = 2;
	s.relay_bounced = 7;
	s.events = 1;
	s.events_dropped = 1;
	return s;
}

/* The metrics of a status as the agent writes it: formatted, parsed back. */
static char *
metrics_of(const struct status *s)
{
	char *text = status_format(s, 1795680760), *m;
	struct status_file f;

	ck_assert_int_eq(status_parse(text, strlen(text), &f), 0);
	m = metrics_format(&f);
	status_file_free(&f);
	free(text);
	return m;
}

static char *
metrics_of_text(const char *text)
{
	struct status_file f;
	char *m;

	ck_assert_int_eq(status_parse(text, strlen(text), &f), 0);
	m = metrics_format(&f);
	status_file_free(&f);
	return m;
}

/*
 * The exposition format's rules that promtool checks too: each sample's
 * metric has its HELP and TYPE before it, counters and only counters end in
 * _total, and no series appears twice.
 */
static void
check_format(const char *m)
{
	char *copy = strdup(m), *line, *save = NULL, types[4096] = "", series[8192] = "";
	char name[128], want[160];

	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		const char *value = strrchr(line, ' ');
		char type[16];

		if (sscanf(line, "# TYPE %127s %15s", name, type) == 2) {
			ck_assert_msg((strcmp(type, "counter") == 0) ==
			                  (strlen(name) > 6 &&
			                      strcmp(name + strlen(name) - 6, "_total") == 0),
			    "%s is a %s", name, type);
			snprintf(want, sizeof(want), "# HELP %s ", name);
			ck_assert_msg(strstr(m, want) != NULL, "%s has no HELP", name);
			snprintf(
			    types + strlen(types), sizeof(types) - strlen(types), "[%s]", name);
			continue;
		}
		if (line[0] == '#')
			continue;
		ck_assert_ptr_nonnull(value);
		ck_assert_msg(strspn(value + 1, "0123456789.") == strlen(value + 1), "%s", line);
		snprintf(name, sizeof(name), "%.*s", (int)strcspn(line, "{ "), line);
		snprintf(want, sizeof(want), "[%s]", name);
		ck_assert_msg(strstr(types, want) != NULL, "%s comes before its TYPE", line);
		snprintf(want, sizeof(want), "[%.*s]", (int)(value - line), line);
		ck_assert_msg(strstr(series, want) == NULL, "%s twice", line);
		snprintf(series + strlen(series), sizeof(series) - strlen(series), "%s", want);
	}
	free(copy);
}

START_TEST(test_every_metric)
{
	struct status s = sample(STATUS_CONNECTED);
	char *m = metrics_of(&s);

	ck_assert_str_eq(m,
	    "# HELP xcomp_connected Whether xcompd holds an authenticated component session (1) "
	    "or not (0).\n"
	    "# TYPE xcomp_connected gauge\n"
	    "xcomp_connected{component=\"cb1.tptac9.com\"} 1\n"
	    "# HELP xcomp_state The agent's state: 1 for the current one.\n"
	    "# TYPE xcomp_state gauge\n"
	    "xcomp_state{component=\"cb1.tptac9.com\",state=\"resolving\"} 0\n"
	    "xcomp_state{component=\"cb1.tptac9.com\",state=\"connecting\"} 0\n"
	    "xcomp_state{component=\"cb1.tptac9.com\",state=\"authenticating\"} 0\n"
	    "xcomp_state{component=\"cb1.tptac9.com\",state=\"connected\"} 1\n"
	    "xcomp_state{component=\"cb1.tptac9.com\",state=\"backoff\"} 0\n"
	    "xcomp_state{component=\"cb1.tptac9.com\",state=\"stopped\"} 0\n"
	    "# HELP xcomp_failovers_total Times the agent moved to another node after an "
	    "established session dropped.\n"
	    "# TYPE xcomp_failovers_total counter\n"
	    "xcomp_failovers_total{component=\"cb1.tptac9.com\"} 3\n"
	    "# HELP xcomp_session_seconds Age of the current component session when the status "
	    "was written; 0 without one.\n"
	    "# TYPE xcomp_session_seconds gauge\n"
	    "xcomp_session_seconds{component=\"cb1.tptac9.com\"} 9\n"
	    "# HELP xcomp_last_failover_gap_seconds Time without a session from the last drop to "
	    "the next session; 0 before the first failover ended.\n"
	    "# TYPE xcomp_last_failover_gap_seconds gauge\n"
	    "xcomp_last_failover_gap_seconds{component=\"cb1.tptac9.com\"} 1.834\n"
	    "# HELP xcomp_node_result The last result at each node the agent knows, in try "
	    "order: ok, untried or an error code (always 1).\n"
	    "# TYPE xcomp_node_result gauge\n"
	    "xcomp_node_result{component=\"cb1.tptac9.com\",node=\"cb1.tptac9.com:5223\","
	    "result=\"auth\"} 1\n"
	    "xcomp_node_result{component=\"cb1.tptac9.com\",node=\"cb2.tptac9.com:5223\","
	    "result=\"ok\"} 1\n"
	    "xcomp_node_result{component=\"cb1.tptac9.com\",node=\"cb3.tptac9.com:5223\","
	    "result=\"untried\"} 1\n"
	    "# HELP xcomp_relay_queued Stanzas the relay holds, waiting for a node.\n"
	    "# TYPE xcomp_relay_queued gauge\n"
	    "xcomp_relay_queued{component=\"cb1.tptac9.com\"} 2\n"
	    "# HELP xcomp_relay_bounced_total Stanzas the relay bounced because its queue was "
	    "full.\n"
	    "# TYPE xcomp_relay_bounced_total counter\n"
	    "xcomp_relay_bounced_total{component=\"cb1.tptac9.com\"} 7\n"
	    "# HELP xcomp_events_dropped_total Events dropped because the queue to event-url was "
	    "full.\n"
	    "# TYPE xcomp_events_dropped_total counter\n"
	    "xcomp_events_dropped_total{component=\"cb1.tptac9.com\"} 1\n");
	check_format(m);
	free(m);
}
END_TEST

/* Not connected, no relay, no events, no failover yet: zeros, and no relay or event series. */
START_TEST(test_not_connected)
{
	struct status s = sample(STATUS_BACKOFF);
	char *m;

	s.relay = NULL;
	s.events = 0;
	s.has_gap = 0;
	m = metrics_of(&s);
	check_format(m);
	ck_assert_ptr_nonnull(strstr(m, "xcomp_connected{component=\"cb1.tptac9.com\"} 0\n"));
	ck_assert_ptr_nonnull(
	    strstr(m, "xcomp_state{component=\"cb1.tptac9.com\",state=\"backoff\"} 1\n"));
	ck_assert_ptr_nonnull(
	    strstr(m, "xcomp_state{component=\"cb1.tptac9.com\",state=\"connected\"} 0\n"));
	ck_assert_ptr_nonnull(strstr(m, "xcomp_session_seconds{component=\"cb1.tptac9.com\"} 0\n"));
	ck_assert_ptr_nonnull(
	    strstr(m, "xcomp_last_failover_gap_seconds{component=\"cb1.tptac9.com\"} 0.000\n"));
	ck_assert_ptr_null(strstr(m, "xcomp_relay"));
	ck_assert_ptr_null(strstr(m, "xcomp_events"));
	free(m);
}
END_TEST

/* Backslash, double quote and newline in a label value, as the format escapes them. */
START_TEST(test_escaping)
{
	struct status_kv kv[] = {{"state", "connected"}, {"component", "a\"b\\c\nd"},
	    {"node", "we\"ird\\:5223 priority=0 weight=0 result=o\"k"}};
	struct status_file f = {kv, nitems(kv)};
	char *m = metrics_format(&f);

	check_format(m);
	ck_assert_ptr_nonnull(strstr(m, "xcomp_connected{component=\"a\\\"b\\\\c\\nd\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(m, "xcomp_node_result{component=\"a\\\"b\\\\c\\nd\","
	                                "node=\"we\\\"ird\\\\:5223\",result=\"o\\\"k\"} 1\n"));
	free(m);
}
END_TEST

/* A file anyone could have written: junk counts as 0, a node listed twice once. */
START_TEST(test_junk)
{
	char *m = metrics_of_text("state=dreaming\nfailovers=-4\nlast-failover-gap=1e999\n"
	                          "relay-queued=lots\nrelay-bounced=99999999999999999999999\n"
	                          "node=a:1 priority=0 weight=0 result=ok\n"
	                          "node=a:1 priority=5 weight=0 result=auth\n"
	                          "node=not a node line\n");

	check_format(m);
	ck_assert_ptr_nonnull(strstr(m, "xcomp_connected{component=\"\"} 0\n"));
	ck_assert_ptr_null(strstr(m, "} 1\nxcomp_state"));
	ck_assert_ptr_nonnull(strstr(m, "xcomp_failovers_total{component=\"\"} 0\n"));
	ck_assert_ptr_nonnull(strstr(m, "xcomp_last_failover_gap_seconds{component=\"\"} 0.000\n"));
	ck_assert_ptr_nonnull(strstr(m, "xcomp_relay_queued{component=\"\"} 0\n"));
	ck_assert_ptr_nonnull(strstr(m, "xcomp_relay_bounced_total{component=\"\"} 0\n"));
	ck_assert_ptr_nonnull(
	    strstr(m, "xcomp_node_result{component=\"\",node=\"a:1\",result=\"ok\"} 1\n"));
	ck_assert_ptr_null(strstr(m, "result=\"auth\""));
	free(m);
	/* Connected, but a session that began after the file was written is no age at all. */
	m = metrics_of_text("state=connected\nupdated=2026-11-26T08:12:31Z\n"
	                    "connected-since=2026-11-26T08:12:40Z\n");
	ck_assert_ptr_nonnull(strstr(m, "xcomp_session_seconds{component=\"\"} 0\n"));
	free(m);
}
END_TEST

/* metrics_write: the file holds what metrics_format gives, and no temporary is left. */
START_TEST(test_write)
{
	struct status s = sample(STATUS_CONNECTED);
	char dir[64], path[128], tmp[160], buf[8192], err[256], *status, *m;
	struct stat sb;
	FILE *fp;
	size_t n;

	unit_tmpdir(dir, sizeof(dir), "check_metrics");
	snprintf(path, sizeof(path), "%s/xcomp.prom", dir);
	status = status_format(&s, 1795680760);
	ck_assert_int_eq(metrics_write(path, status, err, sizeof(err)), 0);
	ck_assert_ptr_nonnull(fp = fopen(path, "r"));
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	m = metrics_of(&s);
	ck_assert_str_eq(buf, m);
	free(m);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	ck_assert_int_eq(stat(tmp, &sb), -1);
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_uint_eq(sb.st_mode & 0777, 0644);
	/* Not a status: refused, and nothing written. */
	ck_assert_int_eq(metrics_write(path, "no equals sign\n", err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "not key=value"));
	snprintf(path, sizeof(path), "%s/missing/xcomp.prom", dir);
	ck_assert_int_eq(metrics_write(path, status, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "No such file or directory"));
	free(status);
	unit_rmtree(dir);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("metrics");

	tcase_add_test(tc, test_every_metric);
	tcase_add_test(tc, test_not_connected);
	tcase_add_test(tc, test_escaping);
	tcase_add_test(tc, test_junk);
	tcase_add_test(tc, test_write);
	suite_add_tcase(s, tc);
	return unit_run(s);
}

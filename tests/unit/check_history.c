/*
 * Unit tests for history.c: a line out and back in, garbage skipped, the
 * cap's trimming (pure and on a real file), the 24-hour sums, and what a
 * person and a script are shown.
 */
#include <sys/stat.h>

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "history.h"
#include "status.h"
#include "unit.h"
#include "util.h"

static struct history_entry
entry(time_t at, enum history_event ev, const char *node, const char *code, uint64_t gap_ms)
{
	struct history_entry e;

	memset(&e, 0, sizeof(e));
	e.at = at;
	e.event = ev;
	snprintf(e.node, sizeof(e.node), "%s", node);
	snprintf(e.code, sizeof(e.code), "%s", code);
	e.gap_ms = gap_ms;
	return e;
}

static time_t
at(const char *iso)
{
	time_t t;

	ck_assert_int_eq(status_parse_time(iso, &t), 0);
	return t;
}

START_TEST(test_round_trip)
{
	struct history_entry e =
	    entry(at("2026-11-26T03:12:07Z"), HISTORY_DROPPED, "cb1.tptac9.com:5223", "timeout", 0);
	struct history_entry back;
	char *line;

	snprintf(e.text, sizeof(e.text), "no reply\tfrom\ncb1");
	line = history_format(&e);
	/* Tabs and newlines inside a field cannot split the line. */
	ck_assert_str_eq(line, "2026-11-26T03:12:07Z\tdropped\tcb1.tptac9.com:5223\ttimeout\tno "
	                       "reply from cb1\n");
	ck_assert_int_eq(history_parse_line(line, strlen(line) - 1, &back), 0);
	ck_assert_int_eq(back.event, HISTORY_DROPPED);
	ck_assert_str_eq(back.node, "cb1.tptac9.com:5223");
	ck_assert_str_eq(back.code, "timeout");
	ck_assert_str_eq(back.text, "no reply from cb1");
	free(line);

	e = entry(at("2026-11-26T03:12:09Z"), HISTORY_CONNECTED, "cb2.tptac9.com:5223", "", 1834);
	line = history_format(&e);
	ck_assert_str_eq(line, "2026-11-26T03:12:09Z\tconnected\tcb2.tptac9.com:5223\t1.834\n");
	ck_assert_int_eq(history_parse_line(line, strlen(line) - 1, &back), 0);
	ck_assert_uint_eq(back.gap_ms, 1834);
	free(line);
}
END_TEST

START_TEST(test_garbage_skipped)
{
	static const char text[] =
	    "\n"
	    "garbage\n"
	    "2026-11-26T03:12:00Z\n"                      /* no event */
	    "2026-11-26T03:12:00Z\tlaunched\n"            /* unknown event */
	    "2026-13-26T03:12:00Z\tstarted\n"             /* bad time */
	    "2026-11-26T03:12:01Z\tconnected\tcb1:5223\n" /* no gap */
	    "2026-11-26T03:12:01Z\tconnected\tcb1:5223\t-1\n"
	    "2026-11-26T03:12:01Z\tconnected\tcb1:5223\t1.5x\n"
	    "2026-11-26T03:12:01Z\tdropped\t\ttimeout\n" /* no node */
	    "2026-11-26T03:12:01Z\tstarted\n"
	    "2026-11-26T03:12:02Z\tconnected\tcb1:5223\t0.25\textra\n"
	    "2026-11-26T03:12:03Z\tdropped\tcb1:5223\tclosed"; /* last, without its newline */
	char nul[] = "2026-11-26T03:12:01Z\tstarted\0junk";
	struct history_entry *e, one;
	size_t n;

	n = history_parse(text, strlen(text), &e);
	ck_assert_uint_eq(n, 3);
	ck_assert_int_eq(e[0].event, HISTORY_STARTED);
	ck_assert_int_eq(e[1].event, HISTORY_CONNECTED);
	ck_assert_uint_eq(e[1].gap_ms, 250);
	ck_assert_int_eq(e[2].event, HISTORY_DROPPED);
	ck_assert_str_eq(e[2].code, "closed");
	free(e);
	ck_assert_int_eq(history_parse_line(nul, sizeof(nul) - 1, &one), -1);
	ck_assert_uint_eq(history_parse("", 0, &e), 0);
	ck_assert_ptr_null(e);
}
END_TEST

START_TEST(test_trim)
{
	/* Four 10-byte lines; the cap 40 trims to 30 with room for the new one. */
	static const char text[] = "123456789\n223456789\n323456789\n423456789\n";
	size_t len = strlen(text);

	ck_assert_uint_eq(history_trim(text, len, 10, 40), 20);
	ck_assert_uint_eq(history_trim(text, len, 10, 80), 0);
	ck_assert_uint_eq(history_trim(text, len, 5, 40), 20);
	/* A line longer than three quarters of the cap: nothing of the old stays. */
	ck_assert_uint_eq(history_trim(text, len, 35, 40), len);
	/* A torn last line without a newline cannot be a start: all goes. */
	ck_assert_uint_eq(history_trim("12345678901234567890", 20, 10, 20), 20);
}
END_TEST

START_TEST(test_append_capped)
{
	char dir[64], path[128], err[256], line[256], *text;
	struct history_entry *e;
	struct stat sb;
	size_t len, n, i;

	unit_tmpdir(dir, sizeof(dir), "check_history");
	snprintf(path, sizeof(path), "%s/status.history", dir);
	for (i = 0; i < 500; i++) {
		snprintf(
		    line, sizeof(line), "2026-11-26T03:12:07Z\tdropped\tcb%03zu:5223\tclosed\n", i);
		ck_assert_int_eq(history_append(path, 1024, line, err, sizeof(err)), 0);
		ck_assert_int_eq(stat(path, &sb), 0);
		ck_assert_int_le(sb.st_size, 1024);
	}
	ck_assert_ptr_nonnull(text = history_read(path, &len));
	n = history_parse(text, len, &e);
	/* Whole lines only, the newest kept, the last one last. */
	ck_assert_uint_eq(n * strlen(line), len);
	ck_assert_uint_gt(n, 10);
	ck_assert_str_eq(e[n - 1].node, "cb499:5223");
	for (i = 1; i < n; i++)
		ck_assert_int_lt(strcmp(e[i - 1].node, e[i].node), 0);
	free(e);
	free(text);
	/* No temporary file is left behind. */
	snprintf(line, sizeof(line), "%s.tmp", path);
	ck_assert_int_eq(access(line, F_OK), -1);
	snprintf(line, sizeof(line), "%s/none/h", dir);
	ck_assert_int_eq(history_append(line, 1024, "x\n", err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "none/h"));
	unit_rmtree(dir);
}
END_TEST

START_TEST(test_sums)
{
	time_t now = at("2026-11-27T03:00:00Z");
	struct history_entry e[] = {
	    /* Before the window: neither the drop nor the gap counts. */
	    entry(at("2026-11-26T01:00:00Z"), HISTORY_DROPPED, "cb1:5223", "closed", 0),
	    entry(at("2026-11-26T01:00:10Z"), HISTORY_CONNECTED, "cb2:5223", "", 10000),
	    /* Across the window's start (03:00:00): 5 s of the 20 s count. */
	    entry(at("2026-11-26T02:59:55Z"), HISTORY_DROPPED, "cb2:5223", "closed", 0),
	    entry(at("2026-11-26T03:00:05Z"), HISTORY_CONNECTED, "cb1:5223", "", 10000),
	    /* Inside: 1.8 s. */
	    entry(at("2026-11-26T23:12:07Z"), HISTORY_DROPPED, "cb1:5223", "timeout", 0),
	    entry(at("2026-11-26T23:12:09Z"), HISTORY_CONNECTED, "cb2:5223", "", 1800),
	    entry(at("2026-11-27T01:00:00Z"), HISTORY_STOPPED, "cb2:5223", "", 0),
	    /* A restart: the gap from the start to the session counts. */
	    entry(at("2026-11-27T02:00:00Z"), HISTORY_STARTED, "", "", 0),
	    entry(at("2026-11-27T02:00:01Z"), HISTORY_CONNECTED, "cb2:5223", "", 700),
	    /* Still without a session: open until now, 30 s. */
	    entry(at("2026-11-27T02:59:30Z"), HISTORY_DROPPED, "cb2:5223", "stream", 0),
	};
	unsigned failovers;
	uint64_t ms;

	history_sums(e, nitems(e), now, 86400, &failovers, &ms);
	ck_assert_uint_eq(failovers, 2);
	ck_assert_uint_eq(ms, 5000 + 1800 + 700 + 30000);
	/* Connected again: nothing open. */
	history_sums(e, nitems(e) - 1, now, 86400, &failovers, &ms);
	ck_assert_uint_eq(failovers, 1);
	ck_assert_uint_eq(ms, 5000 + 1800 + 700);
	history_sums(NULL, 0, now, 86400, &failovers, &ms);
	ck_assert_uint_eq(failovers, 0);
	ck_assert_uint_eq(ms, 0);
}
END_TEST

/* What fn wrote to a memory stream, for comparing. Freed with free(). */
static char *
capture_human(const struct history_entry *e, size_t n)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	history_human(f, e, n);
	fclose(f);
	return buf;
}

START_TEST(test_human_and_json)
{
	struct history_entry e[] = {
	    entry(at("2026-11-26T03:12:07Z"), HISTORY_DROPPED, "cb1.tptac9.com:5223", "timeout", 0),
	    entry(at("2026-11-26T03:12:09Z"), HISTORY_CONNECTED, "cb2.tptac9.com:5223", "", 1834),
	    entry(at("2026-11-27T00:00:01Z"), HISTORY_STOPPED, "cb2.tptac9.com:5223", "", 0),
	};
	char *buf = NULL, d[32];
	size_t len = 0;
	FILE *f;

	setenv("TZ", "UTC", 1);
	tzset();
	snprintf(e[0].text, sizeof(e[0].text), "no \"reply\"");
	buf = capture_human(e, nitems(e));
	ck_assert_str_eq(buf, "2026-11-26\n"
	                      "  03:12:07 dropped by cb1.tptac9.com:5223 (keepalive timeout)\n"
	                      "  03:12:09 connected to cb2.tptac9.com:5223 after 1.8 s\n"
	                      "2026-11-27\n"
	                      "  00:00:01 stopped, leaving cb2.tptac9.com:5223\n");
	free(buf);
	buf = capture_human(e, 0);
	ck_assert_str_eq(buf, "No transitions recorded.\n");
	free(buf);

	f = open_memstream(&buf, &len);
	history_json(f, "/run/xcomp/status.history", e, 2, at("2026-11-26T04:00:00Z"));
	fclose(f);
	ck_assert_str_eq(buf,
	    "{\n"
	    "  \"history-file\": \"/run/xcomp/status.history\",\n"
	    "  \"last-24h\": {\"failovers\": 1, \"without-session\": 1.834},\n"
	    "  \"events\": [\n"
	    "    {\"time\": \"2026-11-26T03:12:07Z\", \"event\": \"dropped\", \"node\": "
	    "\"cb1.tptac9.com:5223\", \"reason\": \"timeout\", \"text\": \"no \\\"reply\\\"\"},\n"
	    "    {\"time\": \"2026-11-26T03:12:09Z\", \"event\": \"connected\", \"node\": "
	    "\"cb2.tptac9.com:5223\", \"gap\": 1.834}\n"
	    "  ]\n"
	    "}\n");
	free(buf);

	f = open_memstream(&buf, &len);
	history_status_line(f, e, 2, at("2026-11-26T04:00:00Z"));
	fclose(f);
	ck_assert_str_eq(buf, "Last 24 hours:   1 failover, 1.8 s without a session\n");
	free(buf);

	history_duration(12, d, sizeof(d));
	ck_assert_str_eq(d, "12 ms");
	history_duration(125000, d, sizeof(d));
	ck_assert_str_eq(d, "2 min 5 s");
	history_duration(3720000, d, sizeof(d));
	ck_assert_str_eq(d, "1 h 2 min");
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("history");
	TCase *tc = tcase_create("history");

	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_garbage_skipped);
	tcase_add_test(tc, test_trim);
	tcase_add_test(tc, test_append_capped);
	tcase_add_test(tc, test_sums);
	tcase_add_test(tc, test_human_and_json);
	suite_add_tcase(s, tc);
	return unit_run(s);
}

/*
 * Unit tests for event.c without a network: the JSON of each field, nulls,
 * escaping and UTF-8; the queue's drop-oldest accounting, with and without a
 * head in flight; event_new's argument checks; a sink that queues and is
 * freed before it ever sends.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "loop.h"
#include "unit.h"

static const char all_null[] = "{\"event\":null,\"component\":null,\"state\":null,\"server\":null,"
                               "\"address\":null,\"since\":null,\"last-error\":null,"
                               "\"last-error-text\":null}";

static void
check_json(const struct event_fields *f, const char *want)
{
	char *got = event_json(f);

	ck_assert_str_eq(got, want);
	free(got);
}

/* The object with only one member set to the JSON text value. */
static void
check_one(const struct event_fields *f, const char *key, const char *value)
{
	char want[1024], *at;
	char pattern[64];

	snprintf(pattern, sizeof(pattern), "\"%s\":null", key);
	at = strstr(all_null, pattern);
	ck_assert_ptr_nonnull(at);
	snprintf(want, sizeof(want), "%.*s\"%s\":%s%s", (int)(at - all_null), all_null, key, value,
	    at + strlen(pattern));
	check_json(f, want);
}

START_TEST(test_json_all_fields)
{
	struct event_fields f = {
	    .event = "connected",
	    .component = "cb1.tptac9.com",
	    .state = "connected",
	    .server = "xmpp1.tptac9.com:5347",
	    .address = "2001:db8::1",
	    .since = 1764145951, /* 2025-11-26T08:32:31Z */
	    .last_error = "auth",
	    .last_error_text = "authentication failure at xmpp2.tptac9.com:5347 (not-authorized)",
	};

	check_json(&f, "{\"event\":\"connected\",\"component\":\"cb1.tptac9.com\","
	               "\"state\":\"connected\",\"server\":\"xmpp1.tptac9.com:5347\","
	               "\"address\":\"2001:db8::1\",\"since\":\"2025-11-26T08:32:31Z\","
	               "\"last-error\":\"auth\",\"last-error-text\":\"authentication failure at "
	               "xmpp2.tptac9.com:5347 (not-authorized)\"}");
}
END_TEST

START_TEST(test_json_each_field)
{
	struct event_fields f;

	memset(&f, 0, sizeof(f));
	check_json(&f, all_null);
	f.event = "disconnected";
	check_one(&f, "event", "\"disconnected\"");
	memset(&f, 0, sizeof(f));
	f.component = "cb2.tptac9.com";
	check_one(&f, "component", "\"cb2.tptac9.com\"");
	memset(&f, 0, sizeof(f));
	f.state = "backoff";
	check_one(&f, "state", "\"backoff\"");
	memset(&f, 0, sizeof(f));
	f.server = "xmpp2.tptac9.com:5347";
	check_one(&f, "server", "\"xmpp2.tptac9.com:5347\"");
	memset(&f, 0, sizeof(f));
	f.address = "192.0.2.7";
	check_one(&f, "address", "\"192.0.2.7\"");
	memset(&f, 0, sizeof(f));
	f.since = 86400;
	check_one(&f, "since", "\"1970-01-02T00:00:00Z\"");
	memset(&f, 0, sizeof(f));
	f.last_error = "dns";
	check_one(&f, "last-error", "\"dns\"");
	memset(&f, 0, sizeof(f));
	f.last_error_text = "";
	check_one(&f, "last-error-text", "\"\"");
}
END_TEST

START_TEST(test_json_escaping)
{
	struct event_fields f;

	memset(&f, 0, sizeof(f));
	f.last_error_text = "say \"no\" \\ back/slash";
	check_one(&f, "last-error-text", "\"say \\\"no\\\" \\\\ back/slash\"");
	f.last_error_text = "\b\f\n\r\t";
	check_one(&f, "last-error-text", "\"\\b\\f\\n\\r\\t\"");
	f.last_error_text = "\x01\x1f\x7f";
	check_one(&f, "last-error-text", "\"\\u0001\\u001f\x7f\"");
	/* Non-ASCII passes through as UTF-8. */
	f.last_error_text = "caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80";
	check_one(&f, "last-error-text", "\"caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80\"");
	/* Keys are escaped by the same code; a value like a key is only a value. */
	f.last_error_text = "\",\"event\":\"forged";
	check_one(&f, "last-error-text", "\"\\\",\\\"event\\\":\\\"forged\"");
}
END_TEST

START_TEST(test_json_bad_utf8)
{
	struct event_fields f;

	memset(&f, 0, sizeof(f));
	/* A lone continuation byte, a Latin-1 byte, a truncated sequence. */
	f.state = "a\x80"
	          "b\xe9"
	          "c\xe2\x9c";
	check_one(&f, "state",
	    "\"a\xef\xbf\xbd"
	    "b\xef\xbf\xbd"
	    "c\xef\xbf\xbd\xef\xbf\xbd\"");
	/* An overlong "/", a UTF-16 surrogate, a code point past U+10FFFF. */
	f.state = "\xc0\xaf|\xed\xa0\x80|\xf4\x90\x80\x80";
	check_one(&f, "state",
	    "\"\xef\xbf\xbd\xef\xbf\xbd|\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd|"
	    "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
}
END_TEST

START_TEST(test_json_cut)
{
	struct event_fields f;
	char *long_text, *want, *got;
	size_t i;

	/* Over EVENT_FIELD_MAX bytes: cut, never inside a character. */
	long_text = malloc(EVENT_FIELD_MAX + 100);
	want = malloc(EVENT_FIELD_MAX + 100);
	long_text[0] = 'x';
	for (i = 1; i + 2 < EVENT_FIELD_MAX + 50; i += 2)
		memcpy(long_text + i, "\xc3\xa9", 2);
	long_text[i] = '\0';
	memset(&f, 0, sizeof(f));
	f.component = long_text;
	got = event_json(&f);
	/* x + 511 e-acute = 1023 bytes; the next would end past 1024. */
	memcpy(want, long_text, EVENT_FIELD_MAX - 1);
	want[EVENT_FIELD_MAX - 1] = '\0';
	ck_assert_ptr_nonnull(strstr(got, want));
	ck_assert_uint_eq(strlen(got), strlen(all_null) + EVENT_FIELD_MAX - 1 + 2 - 4);

	/* Every field at the worst expansion still fits. */
	memset(long_text, 1, EVENT_FIELD_MAX + 50);
	long_text[EVENT_FIELD_MAX + 50] = '\0';
	f = (struct event_fields){
	    long_text, long_text, long_text, long_text, long_text, 1, long_text, long_text};
	free(got);
	got = event_json(&f);
	ck_assert_uint_lt(strlen(got), EVENT_JSON_MAX);
	free(got);
	free(want);
	free(long_text);
}
END_TEST

static char *
num(int i)
{
	char *s = malloc(16);

	snprintf(s, 16, "%d", i);
	return s;
}

/* The queue's events, oldest first, as "1 2 3". */
static void
check_queue(struct event_queue *q, const char *want)
{
	char got[256] = "";
	size_t i;

	for (i = 0; i < q->n; i++) {
		if (i > 0)
			strcat(got, " ");
		strcat(got, q->ev[(q->first + i) % (q->max + 1)]);
	}
	ck_assert_str_eq(got, want);
}

START_TEST(test_queue_drop_oldest)
{
	struct event_queue q;
	int i;

	event_queue_init(&q, 4);
	ck_assert_ptr_null(event_queue_head(&q));
	for (i = 1; i <= 4; i++)
		event_queue_push(&q, num(i));
	check_queue(&q, "1 2 3 4");
	ck_assert_uint_eq(q.dropped, 0);
	/* Ten while nothing is sent: the oldest six go. */
	for (i = 5; i <= 10; i++)
		event_queue_push(&q, num(i));
	check_queue(&q, "7 8 9 10");
	ck_assert_uint_eq(q.dropped, 6);
	ck_assert_str_eq(event_queue_head(&q), "7");
	event_queue_pop(&q);
	check_queue(&q, "8 9 10");
	event_queue_push(&q, num(11));
	check_queue(&q, "8 9 10 11");
	ck_assert_uint_eq(q.dropped, 6);
	event_queue_clear(&q);
	ck_assert_uint_eq(q.n, 0);
}
END_TEST

START_TEST(test_queue_busy_head)
{
	struct event_queue q;
	int i;

	event_queue_init(&q, 3);
	for (i = 1; i <= 3; i++)
		event_queue_push(&q, num(i));
	/* "1" is being sent: it is not waiting, so a fourth fits. */
	q.busy = 1;
	event_queue_push(&q, num(4));
	check_queue(&q, "1 2 3 4");
	ck_assert_uint_eq(q.dropped, 0);
	/* Then the oldest waiting one goes, never the head in flight. */
	for (i = 5; i <= 9; i++) {
		event_queue_push(&q, num(i));
		ck_assert_str_eq(event_queue_head(&q), "1");
	}
	check_queue(&q, "1 7 8 9");
	ck_assert_uint_eq(q.dropped, 5);
	/* Delivered: "1" goes, busy clears, the next push drops "7". */
	event_queue_pop(&q);
	ck_assert_int_eq(q.busy, 0);
	check_queue(&q, "7 8 9");
	event_queue_push(&q, num(10));
	check_queue(&q, "8 9 10");
	ck_assert_uint_eq(q.dropped, 6);
	event_queue_clear(&q);
}
END_TEST

START_TEST(test_queue_max_one)
{
	struct event_queue q;

	event_queue_init(&q, 1);
	event_queue_push(&q, num(1));
	event_queue_push(&q, num(2));
	check_queue(&q, "2");
	q.busy = 1;
	event_queue_push(&q, num(3));
	event_queue_push(&q, num(4));
	check_queue(&q, "2 4");
	ck_assert_uint_eq(q.dropped, 2);
	event_queue_pop(&q);
	check_queue(&q, "4");
	event_queue_pop(&q);
	event_queue_pop(&q); /* empty: nothing happens */
	ck_assert_ptr_null(event_queue_head(&q));
	event_queue_clear(&q);
}
END_TEST

static void
check_bad(const char *url, const char *ca, unsigned timeout_s, unsigned queue_max, const char *want)
{
	struct loop *l = loop_new();
	char err[256] = "";

	ck_assert_ptr_null(event_new(l, url, ca, timeout_s, queue_max, err, sizeof(err)));
	ck_assert_msg(strstr(err, want) != NULL, "%s: error \"%s\", expected \"%s\"",
	    url ? url : "NULL", err, want);
	loop_free(l);
}

START_TEST(test_new_bad_args)
{
	check_bad(NULL, NULL, 5, 10, "event URL: empty");
	check_bad("", NULL, 5, 10, "event URL: empty");
	check_bad("example.com/events", NULL, 5, 10, "not an http:// or https:// URL");
	check_bad("ftp://example.com/events", NULL, 5, 10, "scheme \"ftp\" is not http or https");
	check_bad("file:///etc/passwd", NULL, 5, 10, "scheme \"file\" is not http or https");
	check_bad("httpx://example.com/", NULL, 5, 10, "scheme \"httpx\"");
	check_bad("://example.com/", NULL, 5, 10, "scheme \"\"");
	check_bad("http://", NULL, 5, 10, "event URL: ");
	check_bad("http://exa mple.com/", NULL, 5, 10, "event URL: ");
	check_bad("http://example.com:99999/", NULL, 5, 10, "event URL: ");
	check_bad("http://example.com/", NULL, 0, 10, "event timeout: must be at least 1 second");
	check_bad("http://example.com/", NULL, 5, 0, "event queue: must hold at least 1 event");
	check_bad("https://example.com/", "/nonexistent/ca.pem", 5, 10,
	    "event CA file /nonexistent/ca.pem: No such file or directory");
}
END_TEST

START_TEST(test_new_good_urls)
{
	static const char *urls[] = {"http://example.com/events", "https://example.com/events",
	    "HTTPS://Example.COM:8443/a/b?token=x", "http://127.0.0.1:8080",
	    "http://[::1]:8080/events", "https://user:secret@example.com/events"};
	struct loop *l = loop_new();
	struct event_sink *s;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		err[0] = '\0';
		s = event_new(l, urls[i], NULL, 5, 10, err, sizeof(err));
		ck_assert_msg(s != NULL, "%s: %s", urls[i], err);
		event_free(s);
	}
	loop_free(l);
}
END_TEST

/* The sink's own accounting, before the loop ever runs: nothing is sent. */
START_TEST(test_sink_queue)
{
	struct loop *l = loop_new();
	struct event_sink *s;
	char err[256], json[32], *big;
	int i;

	s = event_new(l, "http://127.0.0.1:9/", NULL, 1, 4, err, sizeof(err));
	ck_assert_ptr_nonnull(s);
	ck_assert_uint_eq(event_queued(s), 0);
	for (i = 1; i <= 10; i++) {
		snprintf(json, sizeof(json), "{\"n\":%d}", i);
		event_post(s, json);
	}
	ck_assert_uint_eq(event_queued(s), 4);
	ck_assert_uint_eq(event_dropped(s), 6);
	/* Too large to send: dropped and counted, the queue unchanged. */
	big = malloc(EVENT_JSON_MAX + 1);
	memset(big, ' ', EVENT_JSON_MAX);
	big[EVENT_JSON_MAX] = '\0';
	event_post(s, big);
	ck_assert_uint_eq(event_queued(s), 4);
	ck_assert_uint_eq(event_dropped(s), 7);
	free(big);
	/* Freed with events waiting and the wake timer armed. */
	event_free(s);
	event_free(NULL);
	loop_free(l);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("event");
	TCase *tc = tcase_create("event");

	tcase_add_test(tc, test_json_all_fields);
	tcase_add_test(tc, test_json_each_field);
	tcase_add_test(tc, test_json_escaping);
	tcase_add_test(tc, test_json_bad_utf8);
	tcase_add_test(tc, test_json_cut);
	tcase_add_test(tc, test_queue_drop_oldest);
	tcase_add_test(tc, test_queue_busy_head);
	tcase_add_test(tc, test_queue_max_one);
	tcase_add_test(tc, test_new_bad_args);
	tcase_add_test(tc, test_new_good_urls);
	tcase_add_test(tc, test_sink_queue);
	suite_add_tcase(s, tc);
	return unit_run(s);
}

/*
 * event_driver: event.c for real, without the agent, for test_event.py. It
 * posts count numbered events to url before the loop starts, then runs the
 * loop with a 50 ms heartbeat timer, so that a test can see that the loop
 * keeps running while a POST hangs. It exits 0 once no event is left to
 * deliver, 1 at the deadline, 3 on SIGTERM, 2 on bad arguments.
 *
 *   event_driver [-v] [-b min_s,max_s] [-c ca_file] [-d deadline_s]
 *       [-H every] [-q queue_max] [-t timeout_s] url count
 *
 * Lines on stdout: "posted N queued Q dropped D", then every 10 (-H)
 * heartbeats "heartbeats H queued Q dropped D", and at the end
 * "delivered: ...", "deadline: ..." or "stopped: ...".
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "event.h"
#include "log.h"
#include "loop.h"
#include "util.h"

#define HEARTBEAT_MS 50

struct driver {
	struct loop *loop;
	struct event_sink *sink;
	struct timer heartbeat, deadline;
	unsigned beats, every;
	int status;
};

static void
report(struct driver *d, const char *what)
{
	printf("%s %u queued %zu dropped %u\n", what, d->beats, event_queued(d->sink),
	    event_dropped(d->sink));
	fflush(stdout);
}

static void
on_heartbeat(void *arg)
{
	struct driver *d = arg;

	d->beats++;
	if (event_queued(d->sink) == 0) {
		report(d, "delivered: heartbeats");
		d->status = 0;
		loop_break(d->loop);
		return;
	}
	if (d->beats % d->every == 0)
		report(d, "heartbeats");
	timer_add(loop_timers(d->loop), &d->heartbeat, HEARTBEAT_MS);
}

static void
on_deadline(void *arg)
{
	struct driver *d = arg;

	report(d, "deadline: heartbeats");
	d->status = 1;
	loop_break(d->loop);
}

static void
on_term(int signo, void *arg)
{
	struct driver *d = arg;

	(void)signo;
	report(d, "stopped: heartbeats");
	d->status = 3;
	loop_break(d->loop);
}

/* Event n; the text exercises event_json's escaping on the real path. */
static void
post_numbered(struct event_sink *sink, int n)
{
	struct event_fields f;
	char name[32], *json;

	snprintf(name, sizeof(name), "test %d", n);
	memset(&f, 0, sizeof(f));
	f.event = name;
	f.component = "cb1.tptac9.test";
	f.state = "connected";
	f.server = "xmpp1.tptac9.test:5347";
	f.address = "127.0.0.1";
	f.since = 1764145951;
	f.last_error_text = "tab\t quote\" backslash\\ caf\xc3\xa9 \xe2\x9c\x93";
	json = event_json(&f);
	event_post(sink, json);
	free(json);
}

static void
usage(void)
{
	fprintf(stderr, "usage: event_driver [-v] [-b min_s,max_s] [-c ca_file] [-d deadline_s] "
	                "[-H every] [-q queue_max] [-t timeout_s] url count\n");
	exit(2);
}

int
main(int argc, char *argv[])
{
	struct driver d;
	const char *ca = NULL;
	unsigned bmin = 1, bmax = 60, deadline = 30, every = 10, queue_max = 100, timeout_s = 5;
	int ch, count, i, verbose = 0;
	char err[256];

	while ((ch = getopt(argc, argv, "b:c:d:H:q:t:v")) != -1) {
		switch (ch) {
		case 'b':
			if (sscanf(optarg, "%u,%u", &bmin, &bmax) != 2)
				usage();
			break;
		case 'c':
			ca = optarg;
			break;
		case 'd':
			deadline = (unsigned)atoi(optarg);
			break;
		case 'H':
			every = (unsigned)atoi(optarg);
			break;
		case 'q':
			queue_max = (unsigned)atoi(optarg);
			break;
		case 't':
			timeout_s = (unsigned)atoi(optarg);
			break;
		case 'v':
			verbose = 1;
			break;
		default:
			usage();
		}
	}
	if (argc - optind != 2 || every == 0)
		usage();
	count = atoi(argv[optind + 1]);
	log_init("event_driver", 0, verbose ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);

	memset(&d, 0, sizeof(d));
	d.every = every;
	d.loop = loop_new();
	d.sink = event_new(d.loop, argv[optind], ca, timeout_s, queue_max, err, sizeof(err));
	if (d.sink == NULL) {
		fprintf(stderr, "event_driver: %s\n", err);
		loop_free(d.loop);
		return 2;
	}
	event_set_backoff(d.sink, bmin, bmax);
	for (i = 1; i <= count; i++)
		post_numbered(d.sink, i);
	printf("posted %d queued %zu dropped %u\n", count, event_queued(d.sink),
	    event_dropped(d.sink));
	fflush(stdout);

	timer_init(&d.heartbeat, on_heartbeat, &d);
	timer_init(&d.deadline, on_deadline, &d);
	timer_add(loop_timers(d.loop), &d.heartbeat, HEARTBEAT_MS);
	timer_add(loop_timers(d.loop), &d.deadline, (uint64_t)deadline * 1000);
	loop_signal(d.loop, SIGTERM, on_term, &d);
	d.status = 1;
	if (loop_run(d.loop) == -1)
		d.status = 1;

	/* A POST may still be under way: event_free cancels it. */
	timer_cancel(loop_timers(d.loop), &d.heartbeat);
	timer_cancel(loop_timers(d.loop), &d.deadline);
	event_free(d.sink);
	loop_free(d.loop);
	return d.status;
}

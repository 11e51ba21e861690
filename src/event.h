/*
 * event: the agent's events, POSTed as JSON objects to one http or https
 * URL through libcurl's multi interface inside the loop. One POST at a time,
 * strictly in order; a 2xx answer delivers an event, anything else keeps it
 * at the head and retries it after a backoff. Nothing here waits: event_post
 * only queues, and the transfer advances from loop callbacks.
 * Functions returning int return 0 on success and -1 on failure.
 */
#ifndef XCOMP_EVENT_H
#define XCOMP_EVENT_H

#include <stddef.h>
#include <time.h>

#include "loop.h"

/* The largest event event_post accepts; event_json's results always fit. */
#define EVENT_JSON_MAX (64 * 1024)
/* event_json cuts each string at this many bytes, on a character boundary. */
#define EVENT_FIELD_MAX 1024

/* One event's fields; a NULL string (or a since of 0) is JSON null. */
struct event_fields {
	const char *event; /* what happened: "connected", "disconnected", ... */
	const char *component;
	const char *state;
	const char *server;  /* target:port */
	const char *address; /* IP */
	time_t since;        /* as UTC ISO 8601 */
	const char *last_error;
	const char *last_error_text;
};

/*
 * The JSON object with the keys event, component, state, server, address,
 * since, last-error and last-error-text, all strings or null, on one line.
 * Invalid UTF-8 becomes U+FFFD. Pure. Freed with free().
 */
char *event_json(const struct event_fields *);

/*
 * The queue, pure so that its accounting is tested alone. At most max events
 * wait; the head, while it is being sent (busy), is not waiting: it is never
 * dropped and does not count against max. A push onto max waiting events
 * drops the oldest waiting one.
 */
struct event_queue {
	char **ev; /* a ring of max + 1 slots */
	size_t first, n, max;
	int busy;
	unsigned dropped;
};

/* max >= 1. Freed with event_queue_clear. */
void event_queue_init(struct event_queue *, size_t max);
/* Append json, which the queue now owns (and frees when it is dropped). */
void event_queue_push(struct event_queue *, char *json);
/* The oldest event, or NULL when empty. */
const char *event_queue_head(const struct event_queue *);
/* Free the head (delivered) and clear busy. */
void event_queue_pop(struct event_queue *);
/* Free every event and the ring. */
void event_queue_clear(struct event_queue *);

struct event_sink;

/*
 * A sink for url (http:// or https:// only). https is verified against
 * ca_file, or the system's trust store when ca_file is NULL. A POST that has
 * no answer after timeout_s seconds (>= 1) fails. queue_max (>= 1) events
 * may wait. NULL with a message in err on a bad argument. Retries back off
 * from 1 s to 60 s. Freed with event_free.
 */
struct event_sink *event_new(struct loop *, const char *url, const char *ca_file,
    unsigned timeout_s, unsigned queue_max, char *err, size_t errlen);
/* Backoff steps between retries, as backoff_init (0 stands for 100 ms). */
void event_set_backoff(struct event_sink *, unsigned min_s, unsigned max_s);
/* Queue a copy of json; one larger than EVENT_JSON_MAX is dropped. */
void event_post(struct event_sink *, const char *json);
/* Events dropped so far (queue full, or too large). */
unsigned event_dropped(const struct event_sink *);
/* Events not delivered yet: waiting, and the one being sent. */
size_t event_queued(const struct event_sink *);
/* Cancel the transfer and the timers and free the sink; safe in a callback. */
void event_free(struct event_sink *);

#endif

/*
 * relay: one local component session behind the agent.
 *
 * Every stanza from the local component becomes an item. An item goes
 * upstream at once when a node is authenticated and nothing waits before
 * it; else it waits in the queue. With replay, an item sent upstream moves
 * to the unacknowledged list, and an acknowledgement ping follows each burst:
 * the reply proves the node read everything written before the ping (the
 * stream is ordered), so those items are dropped. After a failover the
 * unacknowledged items go first, then the queue: at-least-once, in order.
 * Queue and unacknowledged items together stay under queue_max bytes; a
 * stanza beyond that is bounced to the local component (resource-constraint,
 * type wait), never dropped silently.
 */
#include <sys/socket.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "accept.h"
#include "io.h"
#include "log.h"
#include "relay.h"
#include "util.h"

#define LOCAL_OUT_MAX (8u << 20)
#define HANDSHAKE_MS 10000
#define LISTEN_BACKLOG 8
#define ACK_PREFIX "xcomp-ack-"

struct item {
	struct item *next;
	unsigned long seq;
	size_t len;
	char data[];
};

struct itemq {
	struct item *head, *tail;
	size_t n, bytes;
};

struct relay {
	struct loop *loop;
	struct relay_conf conf;
	char *listen, *component, *secret, *unix_path;
	const struct relay_upstream *up;
	void *arg;
	struct accept_listener *al;
	struct xs_limits limits;
	struct accept_session *local; /* the local component's session */
	int upstream;                 /* a node is authenticated */
	struct itemq queue;           /* waiting for upstream */
	struct itemq unacked;         /* sent, not yet proven read (replay) */
	unsigned long seq;            /* items numbered in order */
	unsigned long ping_covers;    /* seq the outstanding ack ping covers, 0 if none */
	char ping_id[32];
	unsigned ping_n;
	struct timer t_ack;
	unsigned long bounced;
	int full; /* bouncing, and said so in the log */
};

/* Queues of items */

static void
q_push(struct itemq *q, struct item *it)
{
	it->next = NULL;
	if (q->tail)
		q->tail->next = it;
	else
		q->head = it;
	q->tail = it;
	q->n++;
	q->bytes += it->len;
}

static struct item *
q_pop(struct itemq *q)
{
	struct item *it = q->head;

	if (it == NULL)
		return NULL;
	q->head = it->next;
	if (q->head == NULL)
		q->tail = NULL;
	q->n--;
	q->bytes -= it->len;
	return it;
}

/* Put the items of src in front of dst (after a failover, unacked before queued). */
static void
q_prepend(struct itemq *dst, struct itemq *src)
{
	if (src->head == NULL)
		return;
	src->tail->next = dst->head;
	if (dst->tail == NULL)
		dst->tail = src->tail;
	dst->head = src->head;
	dst->n += src->n;
	dst->bytes += src->bytes;
	memset(src, 0, sizeof(*src));
}

static void
q_clear(struct itemq *q)
{
	struct item *it;

	while ((it = q_pop(q)) != NULL)
		free(it);
}

/* Upstream */

static void
relay_ack_timer(void *arg)
{
	struct relay *r = arg;

	if (!r->upstream || r->ping_covers != 0 || r->unacked.tail == NULL)
		return;
	snprintf(r->ping_id, sizeof(r->ping_id), ACK_PREFIX "%u", ++r->ping_n);
	r->ping_covers = r->unacked.tail->seq;
	r->up->ping(r->arg, r->ping_id);
}

/* Send queued items while upstream takes them; 0 when the queue is empty. */
static int
relay_flush(struct relay *r)
{
	struct item *it;

	while (r->upstream && (it = r->queue.head) != NULL) {
		if (r->up->send(r->arg, it->data, it->len) == -1)
			return -1;
		q_pop(&r->queue);
		if (r->conf.replay)
			q_push(&r->unacked, it);
		else
			free(it);
	}
	/* One acknowledgement ping after a burst, not one per stanza. */
	if (r->conf.replay && r->unacked.n > 0 && r->ping_covers == 0)
		timer_add(loop_timers(r->loop), &r->t_ack, 0);
	return r->queue.head ? -1 : 0;
}

void
relay_upstream_up(struct relay *r)
{
	r->upstream = 1;
	r->ping_covers = 0;
	if (r->unacked.n > 0)
		log_info(
		    "relay: sending again %zu stanzas the last node did not confirm", r->unacked.n);
	q_prepend(&r->queue, &r->unacked);
	relay_flush(r);
	r->up->changed(r->arg);
}

void
relay_upstream_down(struct relay *r)
{
	r->upstream = 0;
	r->ping_covers = 0;
	timer_cancel(loop_timers(r->loop), &r->t_ack);
}

int
relay_ping_id(const char *id)
{
	return id != NULL && strncmp(id, ACK_PREFIX, strlen(ACK_PREFIX)) == 0;
}

void
relay_ping_reply(struct relay *r, const char *id)
{
	struct item *it;

	if (r->ping_covers == 0 || strcmp(id, r->ping_id) != 0)
		return;
	while (r->unacked.head && r->unacked.head->seq <= r->ping_covers) {
		it = q_pop(&r->unacked);
		free(it);
	}
	r->ping_covers = 0;
	if (r->unacked.n > 0)
		timer_add(loop_timers(r->loop), &r->t_ack, 0);
}

/* Local stream */

static void
relay_from_local(
    struct relay *r, struct accept_session *s, const struct xs_elem *e, const char *raw, size_t len)
{
	struct item *it;

	if (r->queue.bytes + r->unacked.bytes + len > r->conf.queue_max) {
		if (accept_is_error(e)) {
			log_warnx(
			    "relay: queue full (relay-queue = %zu bytes): an error stanza from "
			    "the local component was dropped (errors are never bounced)",
			    r->conf.queue_max);
			return;
		}
		if (!r->full)
			log_warnx("relay: queue full (relay-queue = %zu bytes): stanzas from the "
			          "local component are bounced (resource-constraint) until a node "
			          "takes them",
			    r->conf.queue_max);
		r->full = 1;
		accept_bounce(s, e, "wait", "resource-constraint");
		r->bounced++;
		r->up->changed(r->arg);
		return;
	}
	r->full = 0;
	it = xmalloc(sizeof(*it) + len);
	it->seq = ++r->seq;
	it->len = len;
	memcpy(it->data, raw, len);
	q_push(&r->queue, it);
	if (relay_flush(r) == -1 && r->queue.n == 1)
		r->up->changed(r->arg);
}

/* The relay answers only for its own component. */
static const char *
relay_local_open(void *arg, struct accept_session *s, const char *to)
{
	struct relay *r = arg;

	if (to == NULL || strcasecmp(to, r->component) != 0) {
		accept_error(s, "host-unknown", "this agent relays only its own component");
		return NULL;
	}
	return r->component;
}

static const char *
relay_local_secret(void *arg, struct accept_session *s)
{
	struct relay *r = arg;

	(void)s;
	return r->secret;
}

static int
relay_local_authenticated(void *arg, struct accept_session *s)
{
	struct relay *r = arg;

	(void)s;
	r->up->changed(r->arg);
	return 0;
}

static int
relay_local_stanza(
    void *arg, struct accept_session *s, const struct xs_elem *e, const char *raw, size_t len)
{
	relay_from_local(arg, s, e, raw, len);
	return 0;
}

/* The local session is gone: the status says so. */
static void
relay_local_gone(struct relay *r)
{
	r->local = NULL;
	log_info("relay: local component disconnected");
	r->up->changed(r->arg);
}

static void
relay_local_closed(void *arg, struct accept_session *s)
{
	struct relay *r = arg;

	if (r->local == s)
		relay_local_gone(r);
}

static const struct accept_handler relay_local = {relay_local_open, relay_local_secret,
    relay_local_authenticated, relay_local_stanza, relay_local_closed};

static int
relay_local_alive(struct accept_session *s)
{
	char c;
	ssize_t n = recv(io_fd(accept_io(s)), &c, 1, MSG_PEEK | MSG_DONTWAIT);

	return n > 0 || (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK));
}

static void
relay_accept(void *arg, int fd)
{
	struct relay *r = arg;
	/* Stanzas are passed on as received: their children need no tree. */
	struct accept_conf ac = {r->component, r->listen, "relay: ", NULL, &r->limits, 1,
	    LOCAL_OUT_MAX, HANDSHAKE_MS, NULL};
	struct accept_session *s, *old;

	if ((s = accept_new(r->loop, fd, &ac, &relay_local, r)) == NULL)
		return;
	/*
	 * One local session at a time: a second one is told so, and closed,
	 * unless the first is gone already (its EOF not yet read this pass).
	 */
	if ((old = r->local) != NULL && !relay_local_alive(old)) {
		relay_local_gone(r);
		accept_free(old);
	}
	if (r->local != NULL) {
		accept_error(s, "conflict", "a local component is connected already");
		return;
	}
	r->local = s;
}

/* Upstream stanzas */

void
relay_from_upstream(struct relay *r, const struct xs_elem *e, const char *raw, size_t len)
{
	char *s;

	if (r->local != NULL && accept_online(r->local)) {
		accept_send(r->local, raw, len);
		return;
	}
	/* Nobody to take it: say so, unless it is an error (no loops). */
	if ((s = accept_stanza_error(e, "cancel", "service-unavailable")) == NULL)
		return;
	r->up->send(r->arg, s, strlen(s));
	free(s);
}

/* Listening: "unix:PATH" or "IP:PORT". */
static int
relay_listen(struct relay *r, const char *where, char *err, size_t errlen)
{
	char host[64], why[256];
	int port = -1;

	if (strncmp(where, "unix:", 5) == 0) {
		r->al = accept_listen_unix(
		    r->loop, where + 5, LISTEN_BACKLOG, relay_accept, r, why, sizeof(why));
		if (r->al == NULL) {
			snprintf(err, errlen, "relay-listen unix:%s", why);
			return -1;
		}
		r->unix_path = xstrdup(where + 5);
		return 0;
	}
	if (util_split_hostport(where, host, sizeof(host), &port) == -1 || port < 0) {
		snprintf(err, errlen, "relay-listen %s: expected IP:PORT or unix:PATH", where);
		return -1;
	}
	r->al = accept_listen_tcp(
	    r->loop, host, port, LISTEN_BACKLOG, relay_accept, r, why, sizeof(why));
	if (r->al == NULL) {
		snprintf(err, errlen, "relay-listen %s", why);
		return -1;
	}
	return 0;
}

struct relay *
relay_new(struct loop *loop, const struct relay_conf *conf, const struct relay_upstream *up,
    void *arg, char *err, size_t errlen)
{
	struct relay *r = xcalloc(1, sizeof(*r));

	r->loop = loop;
	r->conf = *conf;
	r->listen = xstrdup(conf->listen);
	r->component = xstrdup(conf->component);
	r->secret = xstrdup(conf->secret);
	r->up = up;
	r->arg = arg;
	xs_limits_default(&r->limits);
	timer_init(&r->t_ack, relay_ack_timer, r);
	if (relay_listen(r, conf->listen, err, errlen) == -1) {
		relay_free(r);
		return NULL;
	}
	log_info("relay: listening on %s for %s", conf->listen, conf->component);
	return r;
}

void
relay_set_secret(struct relay *r, const char *secret)
{
	util_wipe(r->secret, strlen(r->secret));
	free(r->secret);
	r->secret = xstrdup(secret);
}

void
relay_free(struct relay *r)
{
	if (r == NULL)
		return;
	accept_free(r->local);
	timer_cancel(loop_timers(r->loop), &r->t_ack);
	accept_listener_free(r->al);
	if (r->unix_path) {
		unlink(r->unix_path);
		free(r->unix_path);
	}
	q_clear(&r->queue);
	q_clear(&r->unacked);
	util_wipe(r->secret, strlen(r->secret));
	free(r->secret);
	free(r->listen);
	free(r->component);
	free(r);
}

const char *
relay_state(const struct relay *r)
{
	return r->local && accept_online(r->local) ? "connected" : "listening";
}

size_t
relay_queued(const struct relay *r)
{
	return r->queue.n;
}

unsigned long
relay_bounced(const struct relay *r)
{
	return r->bounced;
}

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
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "digest.h"
#include "io.h"
#include "log.h"
#include "relay.h"
#include "util.h"

#define LOCAL_OUT_MAX (8u << 20)
#define HANDSHAKE_MS 10000
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

enum local_state { L_HEADER, L_HANDSHAKE, L_ONLINE };

struct local {
	struct relay *r;
	struct io *io;
	struct xs *xs;
	enum local_state state;
	int header_sent;
	int in_feed;
	int dead;
	char id[40];
	struct timer timer;
};

struct relay {
	struct loop *loop;
	struct relay_conf conf;
	char *listen, *component, *secret, *unix_path;
	const struct relay_upstream *up;
	void *arg;
	int fd;
	struct loop_fd *lfd;
	struct local *local;
	int upstream;              /* a node is authenticated */
	struct itemq queue;        /* waiting for upstream */
	struct itemq unacked;      /* sent, not yet proven read (replay) */
	unsigned long seq;         /* items numbered in order */
	unsigned long ping_covers; /* seq the outstanding ack ping covers, 0 if none */
	char ping_id[32];
	unsigned ping_n;
	struct timer t_ack;
	unsigned long bounced;
	int full; /* bouncing, and said so in the log */
};

static void local_end(struct local *, int flush);

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
ack_timer(void *arg)
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
flush(struct relay *r)
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
	flush(r);
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
local_send(struct local *l, const char *s, size_t n)
{
	if (io_write(l->io, s, n) == -1)
		log_warnx("relay: the local component does not read; output dropped");
}

static void
local_str(struct local *l, const char *s)
{
	local_send(l, s, strlen(s));
}

static void
local_error(struct local *l, const char *cond, const char *text)
{
	char *s;

	if (!l->header_sent) {
		s = xs_header(NULL, l->r->component, l->id);
		local_str(l, s);
		free(s);
		l->header_sent = 1;
	}
	s = xs_stream_error(cond, text);
	local_str(l, s);
	free(s);
	log_info("relay: local component (%s): <%s/>%s%s", io_peer(l->io), cond, text ? " " : "",
	    text ? text : "");
	local_end(l, 1);
}

/* A stanza error in reply to e, from its 'to' back to its 'from'. */
static char *
stanza_error(const struct xs_elem *e, const char *type, const char *cond)
{
	const char *id = xs_attr(e, "id"), *from = xs_attr(e, "from"), *to = xs_attr(e, "to");
	char *eid = id ? xs_escape(id) : NULL;
	char *efrom = xs_escape(to ? to : ""), *eto = xs_escape(from ? from : ""), *s;

	s = xasprintf("<%s from='%s' to='%s' type='error'%s%s%s><error type='%s'><%s "
	              "xmlns='" XS_NS_STANZA_ERRORS "'/></error></%s>",
	    e->name, efrom, eto, eid ? " id='" : "", eid ? eid : "", eid ? "'" : "", type, cond,
	    e->name);
	free(eid);
	free(efrom);
	free(eto);
	return s;
}

static int
is_error(const struct xs_elem *e)
{
	const char *type = xs_attr(e, "type");

	return type && strcmp(type, "error") == 0;
}

static void
from_local(struct local *l, const struct xs_elem *e, const char *raw, size_t len)
{
	struct relay *r = l->r;
	struct item *it;
	char *s;

	if (r->queue.bytes + r->unacked.bytes + len > r->conf.queue_max) {
		if (is_error(e)) {
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
		s = stanza_error(e, "wait", "resource-constraint");
		local_str(l, s);
		free(s);
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
	if (flush(r) == -1 && r->queue.n == 1)
		r->up->changed(r->arg);
}

static int
l_open(void *arg, const struct xs_elem *hdr)
{
	struct local *l = arg;
	const char *to = xs_attr(hdr, "to");
	char *s;

	if (to == NULL || strcasecmp(to, l->r->component) != 0) {
		local_error(l, "host-unknown", "this agent relays only its own component");
		return -1;
	}
	s = xs_header(NULL, l->r->component, l->id);
	local_str(l, s);
	free(s);
	l->header_sent = 1;
	l->state = L_HANDSHAKE;
	return 0;
}

static void
l_handshake(struct local *l, const struct xs_elem *e)
{
	char want[DIGEST_HEXLEN + 1];
	const char *got = e->text ? e->text : "";
	int ok;

	if (strcmp(e->name, "handshake") != 0) {
		local_error(l, "not-authorized", "expected <handshake/> first");
		return;
	}
	if (digest_handshake(l->id, l->r->secret, want) == -1) {
		local_error(l, "internal-server-error", NULL);
		return;
	}
	ok = digest_equal(want, DIGEST_HEXLEN, got, strlen(got));
	util_wipe(want, sizeof(want));
	if (!ok) {
		local_error(l, "not-authorized", "Given token does not match calculated token");
		return;
	}
	timer_cancel(loop_timers(l->r->loop), &l->timer);
	l->state = L_ONLINE;
	local_str(l, "<handshake/>");
	log_info("relay: local component %s connected from %s", l->r->component, io_peer(l->io));
	l->r->up->changed(l->r->arg);
}

static int
l_stanza(void *arg, const struct xs_elem *e, const char *raw, size_t len)
{
	struct local *l = arg;

	if (strcmp(e->ns, XS_NS_STREAMS) == 0) {
		local_end(l, 1);
		return -1;
	}
	if (l->state == L_HANDSHAKE)
		l_handshake(l, e);
	else
		from_local(l, e, raw, len);
	return l->dead ? -1 : 0;
}

static int
l_close(void *arg)
{
	struct local *l = arg;

	local_str(l, "</stream:stream>");
	local_end(l, 1);
	return -1;
}

static void
l_error(void *arg, const char *cond, const char *text)
{
	local_error(arg, cond, text);
}

static const struct xs_handler local_xs = {l_open, l_stanza, l_close, l_error};

static void
local_free(struct local *l, int flush_out)
{
	timer_cancel(loop_timers(l->r->loop), &l->timer);
	if (flush_out)
		io_close_after_flush(l->io);
	else
		io_free(l->io);
	xs_free(l->xs);
	free(l);
}

/* The session is over: free now, or after xs_feed returns. */
static void
local_end(struct local *l, int flush_out)
{
	struct relay *r = l->r;

	if (r->local == l) {
		r->local = NULL;
		log_info("relay: local component disconnected");
		r->up->changed(r->arg);
	}
	if (l->in_feed) {
		l->dead = flush_out ? 1 : 2;
		return;
	}
	local_free(l, flush_out);
}

static void
local_data(void *arg, const char *p, size_t n)
{
	struct local *l = arg;

	l->in_feed = 1;
	xs_feed(l->xs, p, n);
	l->in_feed = 0;
	if (l->dead)
		local_free(l, l->dead == 1);
}

static void
local_closed(void *arg, int err)
{
	(void)err;
	local_end(arg, 0);
}

static void
local_connected(void *arg, int err)
{
	(void)arg;
	(void)err;
}

static const struct io_handler local_io = {local_connected, local_data, local_closed, NULL};

static void
handshake_expired(void *arg)
{
	local_error(arg, "connection-timeout", "no handshake within the time allowed");
}

static void
new_id(char id[40])
{
	unsigned char b[16];
	size_t i;

	util_random(b, sizeof(b));
	for (i = 0; i < sizeof(b); i++)
		snprintf(id + 2 * i, 3, "%02x", b[i]);
}

static int
local_alive(struct local *l)
{
	char c;
	ssize_t n = recv(io_fd(l->io), &c, 1, MSG_PEEK | MSG_DONTWAIT);

	return n > 0 || (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK));
}

static void
accept_event(int fd, int revents, void *arg)
{
	struct relay *r = arg;
	struct xs_limits lim;
	struct local *l;
	int s;

	(void)revents;
	if ((s = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) == -1)
		return;
	l = xcalloc(1, sizeof(*l));
	l->r = r;
	new_id(l->id);
	l->io = io_new(r->loop, s, 0, LOCAL_OUT_MAX, &local_io, l);
	xs_limits_default(&lim);
	l->xs = xs_new(XS_NS_COMPONENT, &lim, &local_xs, l);
	/* Stanzas are passed on as received: their children need no tree. */
	xs_set_shallow(l->xs, 1);
	timer_init(&l->timer, handshake_expired, l);
	/*
	 * One local session at a time: a second one is told so, and closed,
	 * unless the first is gone already (its EOF not yet read this pass).
	 */
	if (r->local != NULL && !local_alive(r->local))
		local_end(r->local, 0);
	if (r->local != NULL) {
		local_error(l, "conflict", "a local component is connected already");
		return;
	}
	r->local = l;
	timer_add(loop_timers(r->loop), &l->timer, HANDSHAKE_MS);
}

/* Upstream stanzas */

void
relay_from_upstream(struct relay *r, const struct xs_elem *e, const char *raw, size_t len)
{
	char *s;

	if (r->local != NULL && r->local->state == L_ONLINE) {
		local_send(r->local, raw, len);
		return;
	}
	/* Nobody to take it: say so, unless it is an error (no loops). */
	if (is_error(e) || strcmp(e->ns, XS_NS_COMPONENT) != 0 ||
	    (strcmp(e->name, "message") && strcmp(e->name, "iq") && strcmp(e->name, "presence")))
		return;
	s = stanza_error(e, "cancel", "service-unavailable");
	r->up->send(r->arg, s, strlen(s));
	free(s);
}

/* Listening */

static int
listen_unix(struct relay *r, const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sun;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path) >= (int)sizeof(sun.sun_path)) {
		snprintf(err, errlen, "relay-listen unix:%s: path too long", path);
		return -1;
	}
	unlink(path);
	if ((r->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1 ||
	    bind(r->fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 || chmod(path, 0600) == -1 ||
	    listen(r->fd, 8) == -1) {
		snprintf(err, errlen, "relay-listen unix:%s: %s", path, strerror(errno));
		return -1;
	}
	r->unix_path = xstrdup(path);
	return 0;
}

static int
listen_tcp(struct relay *r, const char *where, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	char host[64];
	int port = -1, sslen, one = 1;

	if (util_split_hostport(where, host, sizeof(host), &port) == -1 || port < 0 ||
	    util_sockaddr(host, port, &ss, &sslen) == -1) {
		snprintf(err, errlen, "relay-listen %s: expected IP:PORT or unix:PATH", where);
		return -1;
	}
	if ((r->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1 ||
	    setsockopt(r->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    bind(r->fd, (struct sockaddr *)&ss, sslen) == -1 || listen(r->fd, 8) == -1) {
		snprintf(err, errlen, "relay-listen %s: %s", where, strerror(errno));
		return -1;
	}
	return 0;
}

struct relay *
relay_new(struct loop *loop, const struct relay_conf *conf, const struct relay_upstream *up,
    void *arg, char *err, size_t errlen)
{
	struct relay *r = xcalloc(1, sizeof(*r));
	int rv;

	r->loop = loop;
	r->conf = *conf;
	r->listen = xstrdup(conf->listen);
	r->component = xstrdup(conf->component);
	r->secret = xstrdup(conf->secret);
	r->up = up;
	r->arg = arg;
	r->fd = -1;
	timer_init(&r->t_ack, ack_timer, r);
	if (strncmp(conf->listen, "unix:", 5) == 0)
		rv = listen_unix(r, conf->listen + 5, err, errlen);
	else
		rv = listen_tcp(r, conf->listen, err, errlen);
	if (rv == -1) {
		relay_free(r);
		return NULL;
	}
	r->lfd = loop_add(loop, r->fd, POLLIN, accept_event, r);
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
	if (r->local) {
		r->local->in_feed = 0;
		local_free(r->local, 0);
	}
	timer_cancel(loop_timers(r->loop), &r->t_ack);
	loop_del(r->loop, r->lfd);
	if (r->fd != -1)
		close(r->fd);
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
	return r->local && r->local->state == L_ONLINE ? "connected" : "listening";
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

/*
 * agent: xcompd's state machine, one session at a time.
 *
 * Which node to try is health.c's choice: each node has its own failure
 * count and hold (a short, growing, jittered time after each failure), and
 * the next attempt goes at once to the best node not held: the one whose
 * last failure is the oldest, then the RFC 2782 order. So a rolling restart
 * of the nodes costs no wait while one of them is up, and a node that
 * accepts and closes at once is tried less and less often instead of making
 * the agent spin. Only when every node is held does the agent wait, until
 * the first hold ends, and then it re-resolves. A session that stays up for
 * STABLE_MS clears its node's count. With no node at all (a DNS failure) the
 * agent backs off exponentially, with jitter, from backoff-min.
 */
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "backoff.h"
#include "connect.h"
#include "dns.h"
#include "event.h"
#include "health.h"
#include "history.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "relay.h"
#include "srv.h"
#include "status.h"
#include "tls.h"
#include "util.h"
#include "xs.h"

#define STABLE_MS 3000
#define STOP_WAIT_MS 1000
#define UPSTREAM_STANZA_MAX (1u << 20)
#define OUT_MAX (1u << 20) /* plus the relay queue: a flush after failover fits */
#define NONE ((size_t)-1)

struct node {
	char target[SRV_TARGET_MAX];
	int port;
	unsigned priority, weight;
	struct dns_addr *addrs;
	size_t naddrs;
	int resolved; /* address lookup finished */
	struct dns_query *q;
	struct agent *agent;
	const char *result;    /* "untried", "ok" or an error code */
	int bogus;             /* the address lookup failed DNSSEC validation */
	char why[DNS_WHY_MAX]; /* why the address lookup found nothing */
	int redirect;          /* added by see-other-host, until the next resolve */
	struct health health;  /* its failures and hold */
};

struct agent {
	struct loop *loop;
	struct conf *conf;
	struct dns *dns;
	struct tls_ctx *tls;       /* with tls = direct */
	struct relay *relay;       /* with relay-listen */
	struct event_sink *events; /* with event-url */
	struct tls_info tlsinfo;   /* of the session, while connected over TLS */
	enum agent_state state;
	time_t since;

	struct node *nodes;
	size_t nnodes;
	size_t cur;    /* node being tried or in use, or NONE */
	size_t prefer; /* see-other-host: try this node next, or NONE */
	struct dns_query *srvq;
	int refreshing;      /* re-resolving while connected */
	size_t srv_left_out; /* SRV records beyond SRV_USE_MAX, last said in the log */

	/* The SRV name's usual misspellings (agent_hint_answer) */
	struct dns_hint *hintq;      /* being asked */
	char hint_name[512];         /* the failure they were asked for: the name */
	enum dns_status hint_status; /* and its status */
	char hint_text[600];         /* what they found, or "" */
	int hint_active;             /* the last SRV answer was that failure */

	struct connect *cs; /* the attempt or session */
	int waiting_ping;
	unsigned ping_seq;
	uint64_t connected_ms;
	time_t connected_since;
	uint64_t dropped_ms; /* when an established session dropped, until the next one */
	int has_gap;         /* a failover has ended: gap_ms is its time without a session */
	uint64_t gap_ms;

	struct timer t_keepalive;
	struct timer t_backoff;
	struct timer t_stable;
	struct timer t_ttl;
	struct timer t_status;
	struct backoff backoff;      /* with no node to try */
	struct backoff refresh_wait; /* between failed refreshes of a working session's records */
	struct health_policy policy; /* the nodes' holds */

	unsigned failovers;
	uint64_t no_session_since; /* util_now_ms(): for the history's gaps */
	char last_error[16];
	char last_error_text[600];
	time_t last_error_at;
	char server[SRV_TARGET_MAX + 8];
	char address[DNS_IP_MAX];
	int stopping;
};

static void next_attempt(struct agent *);
static void start_resolve(struct agent *);
static void agent_try_node(struct agent *);
static void finish_stop(struct agent *);
static const struct connect_handler agent_session;

/* Status file */

static void
write_status(struct agent *a)
{
	struct status_node *sn = xcalloc(a->nnodes, sizeof(*sn));
	struct status s;
	char err[512], *text, *words;
	size_t i;

	for (i = 0; i < a->nnodes; i++) {
		snprintf(sn[i].target, sizeof(sn[i].target), "%s", a->nodes[i].target);
		sn[i].port = a->nodes[i].port;
		sn[i].priority = a->nodes[i].priority;
		sn[i].weight = a->nodes[i].weight;
		sn[i].result = a->nodes[i].result;
	}
	memset(&s, 0, sizeof(s));
	s.state = a->state;
	s.since = a->since;
	s.pid = getpid();
	s.component = a->conf->component;
	s.domain = a->conf->domain;
	s.server = a->server[0] ? a->server : NULL;
	s.address = a->address[0] ? a->address : NULL;
	s.connected_since = a->connected_since;
	s.failovers = a->failovers;
	s.has_gap = a->has_gap;
	s.gap_ms = a->gap_ms;
	s.last_error = a->last_error[0] ? a->last_error : NULL;
	s.last_error_text = a->last_error_text;
	s.last_error_at = a->last_error_at;
	s.nodes = sn;
	s.nnodes = a->nnodes;
	if (a->events) {
		s.events = 1;
		s.events_dropped = event_dropped(a->events);
	}
	if (a->relay) {
		s.relay = relay_state(a->relay);
		s.relay_queued = relay_queued(a->relay);
		s.relay_bounced = relay_bounced(a->relay);
	}
	if (a->tlsinfo.version[0]) {
		s.tls_version = a->tlsinfo.version;
		s.tls_cipher = a->tlsinfo.cipher;
		s.tls_peer = a->tlsinfo.chain[0].subject;
		s.tls_issuer = a->tlsinfo.chain[0].issuer;
		s.tls_expires = a->tlsinfo.chain[0].not_after;
	}
	text = status_format(&s, time(NULL));
	words = status_words(&s);
	notify_status(words);
	free(words);
	if (status_write(a->conf->status_file, text, err, sizeof(err)) == -1)
		log_warnx("status file: %s", err);
	if (a->conf->metrics_file &&
	    metrics_write(a->conf->metrics_file, text, err, sizeof(err)) == -1)
		log_warnx("metrics file: %s", err);
	free(text);
	free(sn);
	/* A heartbeat, so that a reader can tell a dead agent from a quiet one. */
	timer_add(loop_timers(a->loop), &a->t_status, a->conf->keepalive * 1000ull);
}

static void
status_tick(void *arg)
{
	write_status(arg);
}

/* The history file (history = none: nothing). A failure is said, never fatal. */
static void
agent_history(struct agent *a, enum history_event ev, const char *code, const char *text)
{
	struct history_entry e;
	char err[512], *path, *line;

	if ((path = conf_history_path(a->conf)) == NULL)
		return;
	memset(&e, 0, sizeof(e));
	e.at = time(NULL);
	e.event = ev;
	snprintf(e.node, sizeof(e.node), "%s", a->server);
	snprintf(e.code, sizeof(e.code), "%s", code ? code : "");
	snprintf(e.text, sizeof(e.text), "%s", text ? text : "");
	if (ev == HISTORY_CONNECTED)
		e.gap_ms = util_now_ms() - a->no_session_since;
	else if (ev != HISTORY_STOPPED)
		a->no_session_since = util_now_ms(); /* a time without a session begins */
	line = history_format(&e);
	if (history_append(path, a->conf->history_max, line, err, sizeof(err)) == -1)
		log_warnx("history file: %s", err);
	free(line);
	free(path);
}

/* Tell the event receiver; queued, never waited for. */
static void
post_event(struct agent *a)
{
	struct event_fields f;
	char *json;

	memset(&f, 0, sizeof(f));
	f.event = "state";
	f.component = a->conf->component;
	f.state = status_state_name(a->state);
	f.server = a->server[0] ? a->server : NULL;
	f.address = a->address[0] ? a->address : NULL;
	f.since = a->since;
	f.last_error = a->last_error[0] ? a->last_error : NULL;
	f.last_error_text = a->last_error[0] ? a->last_error_text : NULL;
	json = event_json(&f);
	event_post(a->events, json);
	free(json);
}

static void
set_state(struct agent *a, enum agent_state s)
{
	if (a->state != s) {
		a->state = s;
		a->since = time(NULL);
		log_debug("state %s", status_state_name(s));
		if (a->events)
			post_event(a);
	}
	write_status(a);
}

static void set_error(struct agent *a, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
set_error(struct agent *a, const char *code, const char *fmt, ...)
{
	va_list ap;

	snprintf(a->last_error, sizeof(a->last_error), "%s", code);
	va_start(ap, fmt);
	vsnprintf(a->last_error_text, sizeof(a->last_error_text), fmt, ap);
	va_end(ap);
	a->last_error_at = time(NULL);
	log_warnx("%s", a->last_error_text);
}

/* Nodes */

static void
node_clear(struct agent *a, struct node *n)
{
	if (n->q)
		dns_cancel(a->dns, n->q);
	n->q = NULL;
	free(n->addrs);
	n->addrs = NULL;
	n->naddrs = 0;
}

static void
nodes_free(struct agent *a)
{
	size_t i;

	for (i = 0; i < a->nnodes; i++)
		node_clear(a, &a->nodes[i]);
	free(a->nodes);
	a->nodes = NULL;
	a->nnodes = 0;
}

static struct node *
node_find(struct node *nodes, size_t n, const char *target, int port)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (nodes[i].port == port && strcasecmp(nodes[i].target, target) == 0)
			return &nodes[i];
	return NULL;
}

static void
node_init(struct agent *a, struct node *n, const char *target, int port, unsigned prio,
    unsigned weight, const struct node *old)
{
	memset(n, 0, sizeof(*n));
	snprintf(n->target, sizeof(n->target), "%s", target);
	n->port = port;
	n->priority = prio;
	n->weight = weight;
	n->agent = a;
	n->result = old ? old->result : "untried";
	if (old)
		n->health = old->health;
	else
		health_init(&n->health);
}

/* Replace the node list, keeping what is known of nodes that stay. */
static void
nodes_replace(struct agent *a, struct node *fresh, size_t n)
{
	char cur_target[SRV_TARGET_MAX] = "";
	int cur_port = 0;
	size_t i;

	if (a->cur != NONE) {
		snprintf(cur_target, sizeof(cur_target), "%s", a->nodes[a->cur].target);
		cur_port = a->nodes[a->cur].port;
	}
	nodes_free(a);
	a->nodes = fresh;
	a->nnodes = n;
	a->prefer = NONE;
	a->cur = NONE;
	for (i = 0; i < n; i++)
		if (cur_target[0] && fresh[i].port == cur_port &&
		    strcasecmp(fresh[i].target, cur_target) == 0)
			a->cur = i;
}

/* Addresses */

static void
on_addrs(void *arg, const struct dns_addr_result *r)
{
	struct node *n = arg;
	struct agent *a = n->agent;

	n->q = NULL;
	n->resolved = 1;
	if (r->status == DNS_OK) {
		n->addrs = xcalloc(r->n, sizeof(*n->addrs));
		memcpy(n->addrs, r->addrs, r->n * sizeof(*n->addrs));
		n->naddrs = r->n;
	} else {
		n->bogus = r->status == DNS_BOGUS;
		snprintf(n->why, sizeof(n->why), "%s", r->why);
		log_debug("%s", r->why);
	}
	/* The attempt was waiting for exactly this node. */
	if (a->cur == (size_t)(n - a->nodes) && a->state == STATUS_RESOLVING && a->cs == NULL)
		agent_try_node(a);
}

static void
resolve_addrs(struct agent *a)
{
	size_t i;

	for (i = 0; i < a->nnodes; i++) {
		struct node *n = &a->nodes[i];
		struct dns_addr lit;

		if (n->resolved || n->q)
			continue;
		if (dns_addr_literal(n->target, &lit) == 0) {
			n->addrs = xcalloc(1, sizeof(*n->addrs));
			n->addrs[0] = lit;
			n->naddrs = 1;
			n->resolved = 1;
		} else if (dns_addrs(a->dns, n->target, on_addrs, n, &n->q) == -1) {
			n->resolved = 1;
		}
	}
}

/* Sessions */

static void
session_end(struct agent *a)
{
	struct timerq *tq = loop_timers(a->loop);

	timer_cancel(tq, &a->t_keepalive);
	timer_cancel(tq, &a->t_stable);
	a->waiting_ping = 0;
	memset(&a->tlsinfo, 0, sizeof(a->tlsinfo));
	/*
	 * A refresh asked for this session is moot (the next wait resolves);
	 * its answer, arriving in a backoff, would start an attempt of its own.
	 */
	if (a->refreshing) {
		dns_cancel(a->dns, a->srvq);
		a->srvq = NULL;
		a->refreshing = 0;
	}
	if (a->relay && a->state == STATUS_CONNECTED)
		relay_upstream_down(a->relay);
	/* Also from inside the session's callbacks: it frees itself on the way out. */
	connect_free(a->cs);
	a->cs = NULL;
}

static int
was_connected(const struct agent *a)
{
	return a->state == STATUS_CONNECTED;
}

/*
 * A node that is up but will not have us (wrong secret, conflict, TLS, a
 * stream opened and closed again before the handshake) is held longer than
 * one that is down: restarting nodes come back soon, refusals rarely do.
 */
static enum health_kind
failure_kind(const struct agent *a, const char *code)
{
	if (strcmp(code, "auth") == 0 || strcmp(code, "conflict") == 0 || strcmp(code, "tls") == 0)
		return HEALTH_REFUSED;
	if (a->state == STATUS_AUTHENTICATING &&
	    (strcmp(code, "closed") == 0 || strcmp(code, "stream") == 0))
		return HEALTH_REFUSED;
	return HEALTH_DOWN;
}

/* Count the failure against the current node and hold it; the hold in ms. */
static unsigned
node_failed(struct agent *a, const char *code)
{
	struct node *n = &a->nodes[a->cur];
	unsigned ms;

	n->result = code;
	ms = health_failed(
	    &n->health, &a->policy, failure_kind(a, code), util_now_ms(), util_random_fn, NULL);
	log_debug("%s:%d: failure %u in a row (%s); not tried again for %u.%03u s", n->target,
	    n->port, n->health.fails, code, ms / 1000, ms % 1000);
	return ms;
}

/* After the current node's failure was counted: end the session, move on. */
static void
session_next(struct agent *a)
{
	if (a->stopping) {
		finish_stop(a);
		return;
	}
	if (was_connected(a)) {
		a->failovers++;
		a->dropped_ms = util_now_ms();
		agent_history(a, HISTORY_DROPPED, a->last_error, a->last_error_text);
	}
	session_end(a);
	a->server[0] = a->address[0] = '\0';
	a->connected_since = 0;
	next_attempt(a);
}

/* The current attempt or session failed with code; move on. */
static void
session_failed(struct agent *a, const char *code)
{
	if (!a->stopping)
		node_failed(a, code);
	session_next(a);
}

/* TCP is up (connect.c's connected): let the kernel help find a dead node too. */
static void
tune_socket(void *arg)
{
	struct agent *a = arg;

	util_tcp_keepalive(connect_fd(a->cs), a->conf->keepalive, a->conf->keepalive_timeout);
}

/* "::1, 127.0.0.2": the node's addresses, in the race's order. */
static const char *
node_addr_list(const struct node *n, char *buf, size_t len)
{
	size_t i, used = 0;

	buf[0] = '\0';
	for (i = 0; i < n->naddrs && used < len; i++)
		used += snprintf(buf + used, len - used, "%s%s", i ? ", " : "", n->addrs[i].ip);
	return buf;
}

/* Race the node's addresses (connect.c, RFC 8305); the first to connect goes on. */
static void
agent_try_node(struct agent *a)
{
	struct node *n = &a->nodes[a->cur];
	char msg[DNS_WHY_MAX + 300];
	struct connect_params cp;

	if (!n->resolved) {
		set_state(a, STATUS_RESOLVING);
		return; /* on_addrs comes back here */
	}
	if (n->naddrs == 0) {
		/*
		 * The seed's wording: "No DNS A or AAAA records for ...". Not for a
		 * forged or unsigned answer: there are records, and they were rejected.
		 */
		if (n->bogus)
			snprintf(msg, sizeof(msg), "%s", n->why);
		else
			dns_addr_failure(n->target, n->why, msg, sizeof(msg));
		set_error(a, n->bogus ? "dnssec" : "dns", "%s", msg);
		session_failed(a, n->bogus ? "dnssec" : "dns");
		return;
	}
	snprintf(a->server, sizeof(a->server), "%s:%d", n->target, n->port);
	/* Until the race is won (agent_attempt), the first address. */
	snprintf(a->address, sizeof(a->address), "%s", n->addrs[0].ip);
	log_info("connecting to %s (%s)", a->server, node_addr_list(n, msg, sizeof(msg)));
	memset(&cp, 0, sizeof(cp));
	cp.server = a->server;
	cp.addrs = n->addrs;
	cp.naddrs = n->naddrs;
	cp.port = n->port;
	cp.tls = a->tls;
	cp.tls_name = conf_tls_name(a->conf);
	cp.tls_alt = conf_tls_alt(a->conf, n->target);
	cp.component = a->conf->component;
	cp.secret = a->conf->secret;
	cp.connect_timeout = a->conf->connect_timeout;
	cp.handshake_timeout = a->conf->handshake_timeout;
	cp.outmax = OUT_MAX + 2 * (size_t)a->conf->relay_queue;
	/* Servers forward stanzas up to 512 KiB (Prosody): one must not end our session. */
	cp.stanza_max = UPSTREAM_STANZA_MAX;
	/* With a relay, upstream stanzas are passed on as received. */
	cp.shallow = a->relay != NULL;
	a->cs = connect_new(a->loop, &cp, &agent_session, a);
	if (a->cs == NULL) {
		set_error(a, "connect", "cannot connect to %s: %s", a->server, strerror(errno));
		session_failed(a, "connect");
		return;
	}
	set_state(a, STATUS_CONNECTING);
}

/* The nodes' health, in their (RFC 2782) order; free() it. */
static struct health *
nodes_health(const struct agent *a)
{
	struct health *h = xcalloc(a->nnodes ? a->nnodes : 1, sizeof(*h));
	size_t i;

	for (i = 0; i < a->nnodes; i++)
		h[i] = a->nodes[i].health;
	return h;
}

/* The node to try now (see-other-host's first), or NONE while all are held. */
static size_t
pick_node(struct agent *a, const struct health *h, uint64_t now)
{
	size_t i, p = a->prefer;

	a->prefer = NONE;
	if (p != NONE && p < a->nnodes && !health_held(&h[p], now))
		return p;
	i = health_pick(h, a->nnodes, &a->policy, now);
	return i == HEALTH_NONE ? NONE : i;
}

static void
backoff_expired(void *arg)
{
	start_resolve(arg);
}

/* Wait ms, then resolve again and try. */
static void
enter_backoff(struct agent *a, unsigned ms)
{
	a->cur = NONE;
	timer_add(loop_timers(a->loop), &a->t_backoff, ms);
	set_state(a, STATUS_BACKOFF);
}

/* No node at all (a DNS failure, or none in the records): exponential backoff. */
static void
backoff_no_node(struct agent *a)
{
	unsigned ms = backoff_next(&a->backoff, util_random_fn, NULL);

	log_info("no node to try; next try in %u.%03u s", ms / 1000, ms % 1000);
	enter_backoff(a, ms);
}

/* Every node failed recently: wait until the first hold ends. */
static void
backoff_all_held(struct agent *a, const struct health *h, uint64_t now)
{
	uint64_t free_at = health_next_free(h, a->nnodes);
	unsigned ms = free_at > now ? (unsigned)(free_at - now) : 0;
	size_t i;

	for (i = 0; i < a->nnodes && h[i].held_until != free_at; i++)
		;
	log_info("every node failed recently; next try in %u.%03u s (%s:%d)", ms / 1000, ms % 1000,
	    a->nodes[i].target, a->nodes[i].port);
	enter_backoff(a, ms);
}

static void
next_attempt(struct agent *a)
{
	uint64_t now = util_now_ms();
	struct health *h;
	size_t next;

	if (a->stopping)
		return;
	if (a->nnodes == 0) {
		backoff_no_node(a);
		return;
	}
	h = nodes_health(a);
	next = pick_node(a, h, now);
	if (next == NONE)
		backoff_all_held(a, h, now);
	free(h);
	if (next == NONE)
		return;
	a->cur = next;
	agent_try_node(a);
}

static void
stable(void *arg)
{
	struct agent *a = arg;

	/* The session held: its node's failures are forgotten. */
	if (a->cur != NONE)
		health_stable(&a->nodes[a->cur].health);
	backoff_reset(&a->backoff);
}

static void
send_str(struct agent *a, const char *s)
{
	if (a->cs && connect_write(a->cs, s, strlen(s)) == -1)
		log_warnx("%s: write queue full", a->server);
}

/* Keepalive: inbound silence, then a ping, then a deadline. */
static void
keepalive_expired(void *arg)
{
	struct agent *a = arg;
	char id[32], *s;

	if (a->waiting_ping) {
		set_error(a, "timeout", "no reply from %s (%s) within %u s of a keepalive ping",
		    a->server, a->address, a->conf->keepalive_timeout);
		session_failed(a, "timeout");
		return;
	}
	snprintf(id, sizeof(id), "xcomp-ping-%u", ++a->ping_seq);
	s = xs_ping(id, a->conf->component, a->conf->domain);
	send_str(a, s);
	free(s);
	a->waiting_ping = 1;
	timer_add(loop_timers(a->loop), &a->t_keepalive, a->conf->keepalive_timeout * 1000ull);
}

/* Any bytes from the server (connect.c's data): the session is alive. */
static void
agent_heard(void *arg)
{
	struct agent *a = arg;

	if (a->state != STATUS_CONNECTED)
		return;
	a->waiting_ping = 0;
	timer_add(loop_timers(a->loop), &a->t_keepalive, a->conf->keepalive * 1000ull);
}

/* The session's steps (connect.c) */

static void
agent_secured(void *arg, const struct tls_info *ti)
{
	struct agent *a = arg;

	a->tlsinfo = *ti;
	log_info("%s: %s, %s, certificate %s", a->server, a->tlsinfo.version, a->tlsinfo.cipher,
	    a->tlsinfo.chain[0].subject);
}

static void
agent_opened(void *arg)
{
	set_state(arg, STATUS_AUTHENTICATING);
}

static void
finish_stop(struct agent *a)
{
	if (!was_connected(a))
		a->server[0] = '\0'; /* the stop line names a node only if it held a session */
	agent_history(a, HISTORY_STOPPED, NULL, NULL);
	session_end(a);
	a->server[0] = a->address[0] = '\0';
	set_state(a, STATUS_STOPPED);
	timer_cancel(loop_timers(a->loop), &a->t_status);
	loop_break(a->loop);
}

static void
agent_authenticated(void *arg)
{
	struct agent *a = arg;
	struct node *n = &a->nodes[a->cur];

	n->result = "ok";
	a->connected_ms = util_now_ms();
	a->connected_since = time(NULL);
	if (a->dropped_ms != 0) {
		a->gap_ms = a->connected_ms - a->dropped_ms;
		a->has_gap = 1;
		a->dropped_ms = 0;
	}
	log_info("connected to %s (%s) as %s", a->server, a->address, a->conf->component);
	agent_history(a, HISTORY_CONNECTED, NULL, NULL);
	timer_add(loop_timers(a->loop), &a->t_keepalive, a->conf->keepalive * 1000ull);
	timer_add(loop_timers(a->loop), &a->t_stable, STABLE_MS);
	/*
	 * The TTL ran out during the attempts that led here (ttl_expired skips
	 * a refresh while not connected, and a failover to a node not held does not
	 * resolve): refresh now, or this session never looks at the records again.
	 */
	if (a->conf->nservers == 0 && !timer_armed(&a->t_ttl))
		timer_add(loop_timers(a->loop), &a->t_ttl, 0);
	set_state(a, STATUS_CONNECTED);
	if (a->relay)
		relay_upstream_up(a->relay);
}

/*
 * Room for one more node. Address lookups in flight point at their node:
 * cancel them before the array moves, and ask again (resolve_addrs) after.
 */
static void
nodes_grow(struct agent *a)
{
	size_t i;

	for (i = 0; i < a->nnodes; i++)
		if (a->nodes[i].q != NULL) {
			dns_cancel(a->dns, a->nodes[i].q);
			a->nodes[i].q = NULL;
			a->nodes[i].resolved = 0;
		}
	a->nodes = xrealloc(a->nodes, (a->nnodes + 1) * sizeof(*a->nodes));
}

/* see-other-host: the node named in the error is tried next. */
static void
redirect(struct agent *a, const char *where)
{
	char host[SRV_TARGET_MAX];
	struct node *n;
	int port = a->conf->port;

	if (where == NULL || util_split_hostport(where, host, sizeof(host), &port) == -1)
		return;
	if ((n = node_find(a->nodes, a->nnodes, host, port)) == NULL) {
		nodes_grow(a);
		n = &a->nodes[a->nnodes++];
		node_init(a, n, host, port, a->nodes[a->cur].priority, 0, NULL);
		n->redirect = 1;
		resolve_addrs(a);
	}
	a->prefer = n - a->nodes;
}

/*
 * The attempt or session ended: say why, count it against the node, and
 * move on. While stopping only a stream error is still said.
 */
static void
agent_ended(void *arg, const struct connect_end *e)
{
	struct agent *a = arg;
	unsigned ms;

	if (a->stopping && e->how != CONNECT_STREAM_ERROR) {
		finish_stop(a);
		return;
	}
	if (strcmp(e->code, "conflict") == 0) {
		ms = node_failed(a, "conflict");
		set_error(a, "conflict", "%s; retrying that node in %u s or later", e->text,
		    (ms + 999) / 1000);
		session_next(a);
		return;
	}
	if (e->see_other_host) {
		redirect(a, e->host);
		set_error(a, e->code, "%s; trying it next", e->text);
	} else
		set_error(a, e->code, "%s", e->text);
	session_failed(a, e->code);
}

static void
answer_iq(struct agent *a, const struct xs_elem *e)
{
	const char *type = xs_attr(e, "type"), *id = xs_attr(e, "id");
	const char *from = xs_attr(e, "from");
	char *eid, *efrom, *s;

	if (type == NULL || (strcmp(type, "get") && strcmp(type, "set")) || from == NULL)
		return;
	eid = xs_escape(id ? id : "");
	efrom = xs_escape(from);
	if (xs_child(e, "ping", XS_NS_PING) != NULL)
		s = xasprintf("<iq type='result' id='%s' from='%s' to='%s'/>", eid,
		    a->conf->component, efrom);
	else
		s = xasprintf("<iq type='error' id='%s' from='%s' to='%s'><error type='cancel'>"
		              "<service-unavailable xmlns='" XS_NS_STANZA_ERRORS "'/></error></iq>",
		    eid, a->conf->component, efrom);
	send_str(a, s);
	free(s);
	free(eid);
	free(efrom);
}

/*
 * A reply to one of our own pings (keepalive, or the relay's acknowledgement
 * probes): it never reaches the local component.
 */
static int
own_reply(struct agent *a, const struct xs_elem *e)
{
	const char *type = xs_attr(e, "type"), *id = xs_attr(e, "id");

	if (type == NULL || id == NULL || (strcmp(type, "result") && strcmp(type, "error")))
		return 0;
	if (strncmp(id, "xcomp-ping-", 11) == 0)
		return 1;
	if (a->relay && relay_ping_id(id)) {
		relay_ping_reply(a->relay, id);
		return 1;
	}
	return 0;
}

static void
agent_stanza(void *arg, const struct xs_elem *e, const char *raw, size_t rawlen)
{
	struct agent *a = arg;

	if (strcmp(e->name, "iq") == 0 && own_reply(a, e))
		return;
	if (a->relay)
		relay_from_upstream(a->relay, e, raw, rawlen);
	else if (strcmp(e->name, "iq") == 0)
		answer_iq(a, e);
}

/* The race's attempts: each at debug, the winner at info when there was a race. */
static void
agent_attempt(void *arg, const struct connect_attempt *t)
{
	struct agent *a = arg;

	switch (t->what) {
	case CONNECT_ATTEMPT_STARTED:
		log_debug("%s: trying %s", a->server, t->ip);
		break;
	case CONNECT_ATTEMPT_FAILED:
		log_debug("%s: %s: %s", a->server, t->ip, strerror(t->err));
		break;
	case CONNECT_ATTEMPT_ABANDONED:
		log_debug(
		    "%s: %s abandoned after %u ms without an answer", a->server, t->ip, t->ms);
		break;
	case CONNECT_ATTEMPT_WON:
		snprintf(a->address, sizeof(a->address), "%s", t->ip);
		if (a->nodes[a->cur].naddrs > 1)
			log_info(
			    "%s: %s connected first, after %u ms", a->server, t->ip, t->race_ms);
		break;
	}
}

static const struct connect_handler agent_session = {tune_socket, agent_secured, agent_opened, NULL,
    agent_authenticated, agent_heard, agent_stanza, agent_ended, agent_attempt};

/* Resolution */

static void
ttl_expired(void *arg)
{
	struct agent *a = arg;

	/* Only a live session needs fresh records now; a wait resolves anyway. */
	if (a->state == STATUS_CONNECTED && a->srvq == NULL && a->conf->nservers == 0) {
		a->refreshing = 1;
		start_resolve(a);
	}
}

static void
nodes_from_config(struct agent *a)
{
	struct node *fresh = xcalloc(a->conf->nservers, sizeof(*fresh));
	size_t i;

	for (i = 0; i < a->conf->nservers; i++) {
		const struct conf_server *s = &a->conf->servers[i];
		int port = s->port ? s->port : (int)a->conf->port;

		node_init(a, &fresh[i], s->host, port, i, 0,
		    node_find(a->nodes, a->nnodes, s->host, port));
	}
	nodes_replace(a, fresh, a->conf->nservers);
}

/* Say so when records were left out, and again when their number changes. */
static void
srv_cap_note(struct agent *a, const struct dns_srv_result *r, size_t used)
{
	size_t left = used == SRV_USE_MAX ? r->n - used : 0;

	if (left > 0 && left != a->srv_left_out)
		log_warnx("%s: %zu SRV records; trying the first %d nodes in RFC 2782 order "
		          "and leaving out the other %zu records",
		    r->name, r->n, SRV_USE_MAX, left);
	a->srv_left_out = left;
}

/*
 * Hints: when the SRV name has no records, the agent looks for them under
 * the usual misspellings (srv_variants), once per failure: a failure is the
 * name and its status, remembered until records come, the failure changes
 * or the configuration does. What was found replaces the error's text.
 */

static void
agent_hint_forget(struct agent *a)
{
	dns_hint_cancel(a->dns, a->hintq);
	a->hintq = NULL;
	a->hint_name[0] = a->hint_text[0] = '\0';
	a->hint_active = 0;
}

static void
agent_hint_done(void *arg, const struct dns_hint_result *h)
{
	struct agent *a = arg;

	a->hintq = NULL;
	if (h->nfound == 0)
		return;
	srv_variant_text(a->hint_text, sizeof(a->hint_text), h->name,
	    dns_status_str(a->hint_status), h->found[0].v);
	/* Meanwhile the session may be up, or another error said. */
	if (!a->hint_active || a->stopping)
		return;
	set_error(a, "dns", "%s", a->hint_text);
	write_status(a);
}

/* The text to report for an SRV answer: its own, or what the hint found. */
static const char *
agent_hint_answer(struct agent *a, const struct dns_srv_result *r, int refreshing)
{
	a->hint_active = 0;
	if (r->status == DNS_OK)
		agent_hint_forget(a);
	/* A server failure says nothing about the name; a refresh keeps its session. */
	if (refreshing || (r->status != DNS_NXDOMAIN && r->status != DNS_NODATA))
		return r->why;
	if (r->status == a->hint_status && strcmp(r->name, a->hint_name) == 0) {
		a->hint_active = 1;
		return a->hint_text[0] ? a->hint_text : r->why;
	}
	agent_hint_forget(a);
	a->hint_active = 1;
	snprintf(a->hint_name, sizeof(a->hint_name), "%s", r->name);
	a->hint_status = r->status;
	if (dns_srv_hint(
	        a->dns, a->conf->service, a->conf->domain, agent_hint_done, a, &a->hintq) == -1)
		log_debug("%s: cannot look up its usual misspellings", r->name);
	return r->why;
}

static void
on_srv(void *arg, const struct dns_srv_result *r)
{
	struct agent *a = arg;
	struct node *fresh;
	size_t *order, n, i;
	int refreshing = a->refreshing;
	const char *why;

	a->srvq = NULL;
	a->refreshing = 0;
	why = agent_hint_answer(a, r, refreshing);
	if (r->status != DNS_OK) {
		set_error(a, r->status == DNS_BOGUS ? "dnssec" : "dns", "%s", why);
		if (refreshing) {
			/*
			 * Keep the session and the records we have; ask again
			 * from backoff-min on, so that changes made while DNS
			 * was away are followed soon after it returns.
			 */
			timer_add(loop_timers(a->loop), &a->t_ttl,
			    backoff_next(&a->refresh_wait, util_random_fn, NULL));
			write_status(a);
			return;
		}
		backoff_no_node(a);
		return;
	}
	backoff_reset(&a->refresh_wait);
	order = xcalloc(r->n, sizeof(*order));
	n = srv_order_max(r->rrs, r->n, SRV_USE_MAX, util_random_fn, NULL, order);
	srv_cap_note(a, r, n);
	fresh = xcalloc(n ? n : 1, sizeof(*fresh));
	for (i = 0; i < n; i++) {
		const struct srv_rr *rr = &r->rrs[order[i]];

		node_init(a, &fresh[i], rr->target, rr->port, rr->priority, rr->weight,
		    node_find(a->nodes, a->nnodes, rr->target, rr->port));
	}
	free(order);
	nodes_replace(a, fresh, n);
	timer_add(loop_timers(a->loop), &a->t_ttl, (r->ttl ? r->ttl : 1) * 1000ull);
	resolve_addrs(a);
	if (refreshing) {
		if (a->cur == NONE) {
			/* The node in use left the records: move to one that is listed. */
			log_info("%s is no longer in the SRV records; moving", a->server);
			session_end(a);
			a->server[0] = a->address[0] = '\0';
			next_attempt(a);
		} else {
			write_status(a);
		}
		return;
	}
	next_attempt(a);
}

static void
start_resolve(struct agent *a)
{
	char *name;
	size_t i;

	if (!a->refreshing)
		a->cur = NONE;
	if (a->conf->nservers > 0) {
		nodes_from_config(a);
		for (i = 0; i < a->nnodes; i++)
			a->nodes[i].resolved = 0;
		resolve_addrs(a);
		next_attempt(a);
		return;
	}
	if (!a->refreshing)
		set_state(a, STATUS_RESOLVING);
	name = conf_srv_name(a->conf);
	if (dns_srv(a->dns, name, on_srv, a, &a->srvq) == -1) {
		set_error(a, "dns", "cannot ask for the SRV records of %s", name);
		if (!a->refreshing)
			backoff_no_node(a);
		a->refreshing = 0;
	}
	free(name);
}

/* The relay's view of the upstream session */

static int
agent_relay_send(void *arg, const char *p, size_t n)
{
	struct agent *a = arg;

	if (a->state != STATUS_CONNECTED || a->cs == NULL || a->stopping)
		return -1;
	return connect_write(a->cs, p, n);
}

static void
agent_relay_ping(void *arg, const char *id)
{
	struct agent *a = arg;
	char *s;

	s = xs_ping(id, a->conf->component, a->conf->domain);
	agent_relay_send(a, s, strlen(s));
	free(s);
}

static void
agent_relay_changed(void *arg)
{
	write_status(arg);
}

static const struct relay_upstream agent_relay_up = {
    agent_relay_send, agent_relay_ping, agent_relay_changed};

static struct relay *
agent_relay_start(struct agent *a, const struct conf *conf, char *err, size_t errlen)
{
	struct relay_conf rc;

	rc.listen = conf->relay_listen;
	rc.component = conf->component;
	rc.secret = conf->relay_secret;
	rc.queue_max = conf->relay_queue;
	rc.replay = conf->relay_replay;
	return relay_new(a->loop, &rc, &agent_relay_up, a, err, errlen);
}

/* Life cycle */

struct agent *
agent_new(struct loop *loop, struct conf *conf, char *err, size_t errlen)
{
	struct agent *a = xcalloc(1, sizeof(*a));

	a->loop = loop;
	a->conf = conf;
	a->cur = a->prefer = NONE;
	a->since = time(NULL);
	if (conf->tls && (a->tls = tls_client_ctx(conf->tls_ca, conf->tls_cert, conf->tls_key,
	                      conf->tls_priority, err, errlen)) == NULL) {
		free(a);
		return NULL;
	}
	a->dns = dns_new(loop, conf->dns_server, conf->trust_anchor, err, errlen);
	if (a->dns == NULL) {
		tls_ctx_free(a->tls);
		free(a);
		return NULL;
	}
	if (conf->relay_listen && (a->relay = agent_relay_start(a, conf, err, errlen)) == NULL) {
		dns_free(a->dns);
		tls_ctx_free(a->tls);
		free(a);
		return NULL;
	}
	if (conf->event_url && (a->events = event_new(loop, conf->event_url, conf->event_ca,
	                            conf->event_timeout, conf->event_queue, err, errlen)) == NULL) {
		relay_free(a->relay);
		dns_free(a->dns);
		tls_ctx_free(a->tls);
		free(a);
		return NULL;
	}
	timer_init(&a->t_keepalive, keepalive_expired, a);
	timer_init(&a->t_backoff, backoff_expired, a);
	timer_init(&a->t_stable, stable, a);
	timer_init(&a->t_ttl, ttl_expired, a);
	timer_init(&a->t_status, status_tick, a);
	backoff_init(&a->backoff, conf->backoff_min, conf->backoff_max);
	backoff_init(&a->refresh_wait, conf->backoff_min, conf->backoff_max);
	health_policy_init(&a->policy, conf->backoff_min, conf->backoff_max);
	return a;
}

void
agent_start(struct agent *a)
{
	/* The first state is not a change, but a receiver wants to hear it. */
	if (a->events)
		post_event(a);
	agent_history(a, HISTORY_STARTED, NULL, NULL);
	start_resolve(a);
}

static void
cancel_all(struct agent *a)
{
	struct timerq *tq = loop_timers(a->loop);

	session_end(a);
	timer_cancel(tq, &a->t_backoff);
	timer_cancel(tq, &a->t_ttl);
	timer_cancel(tq, &a->t_status);
	if (a->srvq)
		dns_cancel(a->dns, a->srvq);
	a->srvq = NULL;
	a->refreshing = 0;
	agent_hint_forget(a);
}

void
agent_stop(struct agent *a)
{
	struct timerq *tq = loop_timers(a->loop);

	if (a->stopping)
		return;
	a->stopping = 1;
	timer_cancel(tq, &a->t_backoff);
	timer_cancel(tq, &a->t_ttl);
	timer_cancel(tq, &a->t_keepalive);
	timer_cancel(tq, &a->t_stable);
	if (a->srvq)
		dns_cancel(a->dns, a->srvq);
	a->srvq = NULL;
	if (a->cs != NULL && (a->state == STATUS_CONNECTED || a->state == STATUS_AUTHENTICATING)) {
		/* Close politely and give the server a moment to close its side. */
		connect_close(a->cs, STOP_WAIT_MS);
		return;
	}
	finish_stop(a);
}

void
agent_config_error(struct agent *a, const char *why)
{
	set_error(a, "config", "configuration not reloaded: %s", why);
	write_status(a);
}

#define SAME_STR(x, y) (((x) == NULL && (y) == NULL) || ((x) && (y) && strcmp((x), (y)) == 0))

/* Whether a new configuration changes the session itself. */
static int
session_changed(const struct conf *o, const struct conf *n)
{
#define DIFF(f) ((o->f == NULL) != (n->f == NULL) || (o->f && strcmp(o->f, n->f) != 0))
	if (DIFF(name) || DIFF(domain) || DIFF(component) || DIFF(secret) || DIFF(service) ||
	    DIFF(dns_server) || DIFF(trust_anchor) || DIFF(tls_ca) || DIFF(tls_name) ||
	    DIFF(tls_cert) || DIFF(tls_key) || DIFF(tls_priority))
		return 1;
	if (o->tls != n->tls)
		return 1;
#undef DIFF
	return o->port != n->port || o->nservers != n->nservers ||
	       memcmp(o->servers, n->servers, sizeof(o->servers[0]) * n->nservers) != 0;
}

/* The relay follows its own keys; a restart of it ends the local session. */
static void
agent_relay_reload(struct agent *a, const struct conf *o, const struct conf *n)
{
	char err[512];

	if (SAME_STR(o->relay_listen, n->relay_listen) && o->relay_queue == n->relay_queue &&
	    o->relay_replay == n->relay_replay && SAME_STR(o->component, n->component)) {
		if (a->relay && !SAME_STR(o->relay_secret, n->relay_secret))
			relay_set_secret(a->relay, n->relay_secret);
		return;
	}
	log_info("relay settings changed: restarting the relay");
	relay_free(a->relay);
	a->relay = NULL;
	if (n->relay_listen && (a->relay = agent_relay_start(a, n, err, sizeof(err))) == NULL)
		set_error(a, "config", "relay: %s", err);
	else if (a->relay && a->state == STATUS_CONNECTED)
		relay_upstream_up(a->relay);
}

/* A new receiver or new limits: a new sink (what waited for the old one is dropped). */
static void
events_reload(struct agent *a, const struct conf *o, const struct conf *n)
{
	char err[512];

	if (SAME_STR(o->event_url, n->event_url) && SAME_STR(o->event_ca, n->event_ca) &&
	    o->event_timeout == n->event_timeout && o->event_queue == n->event_queue)
		return;
	event_free(a->events);
	a->events = NULL;
	if (n->event_url && (a->events = event_new(a->loop, n->event_url, n->event_ca,
	                         n->event_timeout, n->event_queue, err, sizeof(err))) == NULL)
		set_error(a, "config", "events: %s", err);
}

void
agent_reload(struct agent *a, struct conf *conf)
{
	struct conf *old = a->conf;
	struct tls_ctx *tls = NULL;
	char err[512];
	struct dns *dns;
	int changed = session_changed(old, conf);
	/*
	 * Not connected: the operator may have just fixed the records, a node or
	 * the network. Start afresh at once, with a new resolver (libunbound
	 * keeps an NXDOMAIN for the zone's negative TTL) and no node held.
	 */
	int restart = changed || a->state != STATUS_CONNECTED;

	/* Never fall back to plain text: without the new credentials keep the old config. */
	if (restart && conf->tls &&
	    (tls = tls_client_ctx(conf->tls_ca, conf->tls_cert, conf->tls_key, conf->tls_priority,
	         err, sizeof(err))) == NULL) {
		agent_config_error(a, err);
		conf_free(conf);
		return;
	}

	if (conf->log_syslog != old->log_syslog)
		log_init("xcompd", conf->log_syslog, conf->log_level);
	log_setlevel(conf->log_level);
	a->conf = conf;
	/* A collector would go on reading the last values of a file no longer written. */
	if (old->metrics_file != NULL &&
	    (conf->metrics_file == NULL || strcmp(old->metrics_file, conf->metrics_file) != 0))
		unlink(old->metrics_file);
	backoff_init(&a->backoff, conf->backoff_min, conf->backoff_max);
	backoff_init(&a->refresh_wait, conf->backoff_min, conf->backoff_max);
	health_policy_init(&a->policy, conf->backoff_min, conf->backoff_max);
	agent_relay_reload(a, old, conf);
	events_reload(a, old, conf);
	if (!restart) {
		log_info("configuration reloaded; the session is unchanged");
		conf_free(old);
		write_status(a);
		return;
	}
	if (changed)
		log_info("configuration reloaded; reconnecting");
	else
		log_info("configuration reloaded; not connected: trying again now, "
		         "with a new resolver and no node held");
	if (a->cs && a->state == STATUS_CONNECTED) {
		send_str(a, "</stream:stream>");
		agent_history(a, HISTORY_DROPPED, "reload", "configuration reloaded; reconnecting");
	}
	cancel_all(a);
	nodes_free(a);
	a->cur = a->prefer = NONE;
	a->server[0] = a->address[0] = '\0';
	dns = dns_new(a->loop, conf->dns_server, conf->trust_anchor, err, sizeof(err));
	if (dns == NULL)
		log_warnx("resolver: %s; keeping the previous one", err);
	else {
		dns_free(a->dns);
		a->dns = dns;
	}
	tls_ctx_free(a->tls);
	a->tls = tls;
	conf_free(old);
	start_resolve(a);
}

void
agent_free(struct agent *a)
{
	if (a == NULL)
		return;
	cancel_all(a);
	nodes_free(a);
	event_free(a->events);
	relay_free(a->relay);
	dns_free(a->dns);
	tls_ctx_free(a->tls);
	conf_free(a->conf);
	free(a);
}

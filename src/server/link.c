/*
 * link: one connection between two cluster nodes. The dialing side is a
 * TLS client, the other a TLS server; both present the node's certs and
 * verify the other's chain against cluster trust. Then each sends a stream
 * header in the cluster's namespace and a hello (id, address, list epoch),
 * and every message after it is one flat element, parsed shallow by xs.c
 * with its limits. What the messages mean is cluster.c's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_impl.h"
#include "log.h"
#include "tls.h"
#include "util.h"

static void
link_unlink(struct link *l)
{
	struct cluster *cl = l->cl;

	if (l->prev)
		l->prev->next = l->next;
	else
		cl->links = l->next;
	if (l->next)
		l->next->prev = l->prev;
}

void
link_free(struct link *l)
{
	timer_cancel(loop_timers(l->cl->loop), &l->dial);
	cluster_link_gone(l);
	link_unlink(l);
	if (l->xs)
		xs_free(l->xs);
	io_free(l->io);
	free(l);
}

int
link_send(struct link *l, const char *s, size_t len)
{
	if (l == NULL || !l->secured)
		return -1;
	if (io_write(l->io, s, len) == -1) {
		log_warnx("cluster: link %s %s: write queue full, closing it",
		    l->outgoing ? "to" : "from", l->addr);
		link_free(l);
		return -1;
	}
	return 0;
}

void
link_flush(struct link *l)
{
	if (l->secured)
		(void)io_flush(l->io);
}

/*
 * tls.c's reasons speak of the agent's settings; between nodes the remedy
 * is this node's certs or the cluster trust bundle.
 */
static void
link_tls_words(const struct link *l, const char *why, char *out, size_t len)
{
	static const char agent_hint[] = " (tls-cert, tls-key)";
	const char *hint = strstr(why, agent_hint);
	int n = hint ? (int)(hint - why) : (int)strlen(why);

	snprintf(out, len, "%s%s%.*s%s%s", l->outgoing ? l->addr : "", l->outgoing ? ": " : "", n,
	    why, hint ? " (certs on this node, cluster trust on the other)" : "",
	    hint ? hint + strlen(agent_hint) : "");
}

static void
link_on_connected(void *arg, int err)
{
	struct link *l = arg;
	char why[600];

	if (err) {
		snprintf(why, sizeof(why), "%s is unreachable (%s)", l->addr, strerror(err));
		cluster_link_failed(l, why);
		return;
	}
	/*
	 * Each node writes on its own links: unacknowledged keepalives break
	 * one whose peer's network died (TCP_USER_TIMEOUT), and it is dialled
	 * again, rather than waiting out TCP's ever longer retransmissions.
	 */
	util_tcp_keepalive(io_fd(l->io), LINK_TCP_IDLE_S, LINK_TCP_IDLE_S);
	if (tls_client(l->io, l->cl->client_tls, NULL, NULL, why, sizeof(why)) == -1)
		cluster_link_failed(l, why);
}

static void
link_on_data(void *arg, const char *p, size_t n)
{
	struct link *l = arg;

	/* A callback may end the link: xs_feed then returns -1 and l is gone. */
	(void)xs_feed(l->xs, p, n);
}

static void
link_on_closed(void *arg, int err)
{
	struct link *l = arg;
	char why[400];

	if (!l->secured) {
		snprintf(why, sizeof(why), "%s closed the connection during the TLS handshake%s%s",
		    l->addr, err ? ": " : "", err ? strerror(err) : "");
		cluster_link_failed(l, why);
		return;
	}
	if (l->joining) {
		/* TLS 1.3: a node that refuses our certificate does so after our handshake. */
		if (tls_why(l->io)[0])
			link_tls_words(l, tls_why(l->io), why, sizeof(why));
		else
			snprintf(
			    why, sizeof(why), "%s closed the connection before answering", l->addr);
		cluster_link_failed(l, why);
		return;
	}
	log_debug("cluster: link %s %s closed", l->outgoing ? "to" : "from", l->addr);
	link_free(l);
}

/* Our stream header and hello: who we are, where we listen, our list's epoch. */
static void
link_on_secured(void *arg, int err)
{
	struct link *l = arg;
	struct cluster *cl = l->cl;
	char why[700], id[9], *a, *s;

	if (err) {
		link_tls_words(l, tls_why(l->io), why, sizeof(why));
		cluster_link_failed(l, why);
		return;
	}
	l->secured = 1;
	timer_cancel(loop_timers(cl->loop), &l->dial);
	a = xs_escape(cl->name);
	s = xasprintf("<?xml version='1.0'?><stream:stream xmlns='" CLUSTER_NS
	              "' xmlns:stream='" XS_NS_STREAMS "'><hello i='%s' a='%s' e='%llu'/>",
	    cluster_hex_id(cl->m.self, id), a, (unsigned long long)cl->m.epoch);
	link_send(l, s, strlen(s));
	free(s);
	free(a);
	cluster_link_up(l);
}

static int
link_xs_open(void *arg, const struct xs_elem *header)
{
	(void)arg;
	(void)header;
	return 0;
}

/* The peer's hello: an incoming link learns who it is from. */
static void
link_on_hello(struct link *l, const struct xs_elem *e)
{
	uint32_t id = cluster_parse_id(xs_attr(e, "i"));

	if (!l->outgoing) {
		l->id = id;
		if (xs_attr(e, "a") && strlen(xs_attr(e, "a")) < sizeof(l->addr))
			snprintf(l->addr, sizeof(l->addr), "%s", xs_attr(e, "a"));
	}
	cluster_on_hello(l, id, cluster_parse_u64(xs_attr(e, "e")));
}

static int
link_xs_stanza(void *arg, const struct xs_elem *e, const char *raw, size_t rawlen)
{
	struct link *l = arg;

	if (strcmp(e->name, "hello") == 0) {
		link_on_hello(l, e);
		return 0;
	}
	return cluster_on_message(l, e, raw, rawlen);
}

static int
link_xs_close(void *arg)
{
	struct link *l = arg;

	link_free(l);
	return -1;
}

static void
link_xs_error(void *arg, const char *condition, const char *text)
{
	struct link *l = arg;

	log_warnx("cluster: link %s %s: %s%s%s", l->outgoing ? "to" : "from", l->addr, condition,
	    text ? ": " : "", text ? text : "");
	link_free(l);
}

static const struct io_handler link_io_handler = {
    link_on_connected, link_on_data, link_on_closed, link_on_secured};
static const struct xs_handler link_xs_handler = {
    link_xs_open, link_xs_stanza, link_xs_close, link_xs_error};

/*
 * A dial that neither connects nor finishes TLS within two election
 * timeouts meets a network that drops its packets: give up and dial again
 * (peer_schedule), so that the link is back soon after the network is.
 */
static void
link_dial_expired(void *arg)
{
	struct link *l = arg;
	char why[400];

	snprintf(why, sizeof(why), "%s is unreachable (no answer within %u ms)", l->addr,
	    2 * l->cl->set.election_ms);
	cluster_link_failed(l, why);
}

static struct link *
link_new(struct cluster *cl, int outgoing)
{
	struct link *l = xcalloc(1, sizeof(*l));

	l->cl = cl;
	timer_init(&l->dial, link_dial_expired, l);
	l->outgoing = outgoing;
	l->xs = xs_new(CLUSTER_NS, &cl->limits, &link_xs_handler, l);
	xs_set_shallow(l->xs, 1);
	l->next = cl->links;
	if (l->next)
		l->next->prev = l;
	cl->links = l;
	return l;
}

struct link *
link_dial(struct cluster *cl, const char *addr, char *why, size_t len)
{
	char host[MEMBERS_ADDR_MAX];
	struct link *l;
	int port;

	if (util_split_hostport(addr, host, sizeof(host), &port) == -1) {
		snprintf(why, len, "%s: not IP:PORT", addr);
		return NULL;
	}
	l = link_new(cl, 1);
	snprintf(l->addr, sizeof(l->addr), "%s", addr);
	/*
	 * From the cluster listen address, the address the others know this
	 * node by: on a multi-homed node (or 127.0.0.x on loopback) the
	 * kernel's choice would be another, which firewalls and the others'
	 * logs would not recognise.
	 */
	l->io = io_connect_from(
	    cl->loop, cl->st->cluster_listen.host, host, port, LINK_OUT_MAX, &link_io_handler, l);
	if (l->io == NULL) {
		snprintf(why, len, "%s: cannot connect from %s (cluster listen): %s", addr,
		    cl->st->cluster_listen.host, strerror(errno));
		link_unlink(l);
		xs_free(l->xs);
		free(l);
		return NULL;
	}
	timer_add(loop_timers(cl->loop), &l->dial, 2ull * cl->set.election_ms);
	return l;
}

void
link_accept(void *arg, int fd)
{
	struct cluster *cl = arg;
	struct link *l = link_new(cl, 0);
	char why[600];

	util_tcp_keepalive(fd, LINK_TCP_IDLE_S, LINK_TCP_IDLE_S);
	l->io = io_new(cl->loop, fd, 0, LINK_OUT_MAX, &link_io_handler, l);
	snprintf(l->addr, sizeof(l->addr), "%s", io_peer(l->io));
	if (tls_server(l->io, cl->server_tls, why, sizeof(why)) == -1)
		cluster_link_failed(l, why);
}

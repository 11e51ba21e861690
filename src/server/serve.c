/*
 * serve: a minimal XEP-0114 server. Components authenticate against the
 * state directory's call bridges; stanzas are routed between connected
 * components by the domain of their "to"; pings to the server's domain are
 * answered; everything else gets service-unavailable. One thread, one loop,
 * no per-connection thread: an idle component costs a socket, a parser and
 * a few hundred bytes. The sessions themselves (TLS, stream header,
 * handshake, stream errors, bounces) are accept.c's, shared with the
 * agent's relay; this file decides what they are for.
 */
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "accept.h"
#include "cluster.h"
#include "control.h"
#include "io.h"
#include "jid.h"
#include "log.h"
#include "loop.h"
#include "serve.h"
#include "tls.h"
#include "util.h"
#include "xs.h"

#define CONN_OUT_MAX (4u << 20)
#define CONTROL_OUT_MAX (64u << 20)
#define CONTROL_LINE_MAX 1024
#define CONTROL_TIMEOUT_MS 5000
#define SHUTDOWN_GRACE_MS 2000
#define CONTROL_SOCK CONTROL_SOCK_NAME
#define LISTENING_FILE "listening"
/* The ids of the server's keepalive pings: their replies go nowhere. */
#define PING_ID_PREFIX "xcomp-server-ping-"

struct server;

/* A component's session, and what the server keeps about it. */
struct conn {
	struct server *srv;
	struct accept_session *s;
	const struct listener *l; /* where it came in */
	time_t since;             /* when authenticated */
	struct timer keepalive;   /* while online */
	uint64_t pinged_ms;       /* when a keepalive ping went out; 0: none waits */
	struct conn *prev, *next;
};

struct listener {
	struct server *srv;
	struct accept_listener *al;
	int tls;
	char name[80];
};

struct server {
	struct state *st;
	struct loop *loop;
	struct xs_limits limits;
	struct listener ls[STATE_MAX_LISTEN + 1]; /* + the control socket */
	size_t nls;
	struct tls_ctx *tls; /* NULL without certs */
	struct conn *conns;
	size_t nconns;
	unsigned turn;     /* for serve_pick_online */
	unsigned ping_seq; /* for the keepalive pings' ids */
	int stopping;
	struct timer stop_timer;
	uint64_t stop_deadline;
	struct cluster *cl; /* NULL when the cluster is disabled */
	struct ctl *ctls;
	char *control_path;
	char *listening_path;
	int own_files; /* control.sock and listening are ours to remove */
};

static const struct accept_handler serve_handler;

static void
serve_unlink(struct conn *c)
{
	struct server *srv = c->srv;

	if (c->prev)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	srv->nconns--;
}

/*
 * What the keepalive does next (a pure decision, times in ms): with a ping
 * waiting and nothing heard since it went out, the session is dead once
 * timeout_ms have passed; otherwise silence of idle_ms asks for a ping.
 * *wait_ms: when to look again.
 */
enum serve_ka { KA_WAIT, KA_PING, KA_DEAD };

static enum serve_ka
serve_keepalive_next(uint64_t now, uint64_t heard, uint64_t pinged, uint64_t idle_ms,
    uint64_t timeout_ms, uint64_t *wait_ms)
{
	if (pinged != 0 && heard < pinged) {
		if (now - pinged >= timeout_ms)
			return KA_DEAD;
		*wait_ms = pinged + timeout_ms - now;
		return KA_WAIT;
	}
	if (now - heard >= idle_ms) {
		*wait_ms = timeout_ms;
		return KA_PING;
	}
	*wait_ms = idle_ms - (now - heard);
	return KA_WAIT;
}

/*
 * A component that went silent gets a ping (XEP-0199) from the server's
 * domain; any byte back proves life, a result or an error alike. Nothing
 * within keepalive-timeout: the link is dead (a network that died without
 * a FIN or RST), and the session ends like a disconnect, its routes
 * withdrawn, so that the component can come back under kick-new. The
 * connection-timeout stream error is written for the case that the peer
 * is alive but stuck; on a dead link it lingers and is dropped.
 */
static void
serve_keepalive_expired(void *arg)
{
	struct conn *c = arg;
	struct state *st = c->srv->st;
	uint64_t now = util_now_ms(), wait = 0;
	char *ping, id[40], text[128];

	switch (serve_keepalive_next(now, accept_heard(c->s), c->pinged_ms, st->keepalive * 1000ull,
	    st->keepalive_timeout * 1000ull, &wait)) {
	case KA_DEAD:
		snprintf(text, sizeof(text), "no reply to a keepalive ping within %u s",
		    st->keepalive_timeout);
		accept_error(c->s, "connection-timeout", text);
		return;
	case KA_PING:
		snprintf(id, sizeof(id), PING_ID_PREFIX "%u", ++c->srv->ping_seq);
		ping = xs_ping(id, st->domain, accept_jid(c->s));
		accept_send(c->s, ping, strlen(ping));
		free(ping);
		c->pinged_ms = now;
		break;
	case KA_WAIT:
		if (c->pinged_ms != 0 && accept_heard(c->s) >= c->pinged_ms)
			c->pinged_ms = 0;
		break;
	}
	timer_add(loop_timers(c->srv->loop), &c->keepalive, wait);
}

static void
serve_accept(void *arg, int fd)
{
	struct listener *l = arg;
	struct server *srv = l->srv;
	struct accept_conf ac = {srv->st->domain, l->name, "",
	    "; use a TLS listener (listen ADDRESS:PORT tls) or plain XML there", &srv->limits, 0,
	    CONN_OUT_MAX, srv->st->handshake_timeout * 1000u, l->tls ? srv->tls : NULL};
	struct conn *c;

	if (srv->stopping) {
		close(fd);
		return;
	}
	/* The kernel helps to find a dead component too. */
	util_tcp_keepalive(fd, srv->st->keepalive, srv->st->keepalive_timeout);
	c = xcalloc(1, sizeof(*c));
	c->srv = srv;
	c->l = l;
	timer_init(&c->keepalive, serve_keepalive_expired, c);
	if ((c->s = accept_new(srv->loop, fd, &ac, &serve_handler, c)) == NULL) {
		free(c);
		return;
	}
	c->next = srv->conns;
	if (c->next)
		c->next->prev = c;
	srv->conns = c;
	srv->nconns++;
}

/* The online session of a component JID, skipping "except". */
static struct conn *
serve_find_online(struct server *srv, const char *jid, const struct conn *except)
{
	struct conn *c;

	for (c = srv->conns; c; c = c->next)
		if (c != except && accept_online(c->s) && strcasecmp(accept_jid(c->s), jid) == 0)
			return c;
	return NULL;
}

/*
 * The session to route to. With conflict-policy allow a component may hold
 * several: take turns, as ejabberd balances between them.
 */
static struct conn *
serve_pick_online(struct server *srv, const char *jid)
{
	struct conn *c, *first = NULL;
	unsigned n = 0, want, i = 0;

	for (c = srv->conns; c; c = c->next)
		if (accept_online(c->s) && strcasecmp(accept_jid(c->s), jid) == 0) {
			if (first == NULL)
				first = c;
			n++;
		}
	if (n <= 1)
		return first;
	want = srv->turn++ % n;
	for (c = first; c; c = c->next)
		if (accept_online(c->s) && strcasecmp(accept_jid(c->s), jid) == 0 && i++ == want)
			return c;
	return first;
}

/* A component may connect for the names of the call bridges. */
static const char *
serve_open(void *arg, struct accept_session *s, const char *to)
{
	struct conn *c = arg;

	if (to == NULL || *to == '\0') {
		accept_error(s, "improper-addressing", "the stream header has no 'to'");
		return NULL;
	}
	if (state_find_jid(c->srv->st, to) == NULL) {
		accept_error(s, "host-unknown", "no call bridge is configured for this name");
		return NULL;
	}
	return to;
}

/* Taken when the handshake arrives: a SIGHUP in between may have removed it. */
static const char *
serve_secret(void *arg, struct accept_session *s)
{
	struct conn *c = arg;
	struct callbridge *cb = state_find_jid(c->srv->st, accept_jid(s));

	return cb ? cb->secret : NULL;
}

static int
serve_kick(struct conn *c, const char *text)
{
	accept_error(c->s, "conflict", text);
	return -1;
}

/* The policy across the cluster: the component may be online on another node. */
static int
serve_cluster_conflict(struct conn *c)
{
	const char *jid = accept_jid(c->s), *where = cluster_holder(c->srv->cl, jid);
	char text[200];

	if (where == NULL || c->srv->st->policy == POLICY_ALLOW)
		return 0;
	if (c->srv->st->policy == POLICY_KICK_NEW) {
		snprintf(text, sizeof(text), "Component already connected (on the cluster node %s)",
		    where);
		return serve_kick(c, text);
	}
	cluster_kick(c->srv->cl, jid);
	return 0;
}

/* The conflict policy decides between a new session and one already online. */
static int
serve_authenticated(void *arg, struct accept_session *s)
{
	struct conn *c = arg, *other;

	other = serve_find_online(c->srv, accept_jid(s), c);
	if (other != NULL && c->srv->st->policy == POLICY_KICK_NEW)
		return serve_kick(c, "Component already connected");
	if (other != NULL && c->srv->st->policy == POLICY_KICK_OLD)
		serve_kick(other, "Replaced by a new connection");
	if (c->srv->cl && serve_cluster_conflict(c) == -1)
		return -1;
	c->since = time(NULL);
	if (c->srv->cl)
		cluster_local_up(c->srv->cl, accept_jid(s));
	timer_add(loop_timers(c->srv->loop), &c->keepalive, c->srv->st->keepalive * 1000ull);
	return 0;
}

/*
 * Before a ping's answer: write out what was routed to others. A component
 * (the agent's relay) takes the answer as proof that everything it sent
 * before the ping was handled; the stanzas must not be waiting in a queue
 * then, to be lost if this server dies before its next pass.
 */
static void
serve_flush_routed(struct server *srv)
{
	struct conn *c;

	for (c = srv->conns; c; c = c->next)
		if (io_queued(accept_io(c->s)) > 0)
			(void)io_flush(accept_io(c->s));
}

/*
 * A reply to one of the server's keepalive pings, whatever its 'to': it
 * proved life (accept_heard) and goes nowhere else.
 */
static int
serve_own_reply(const struct xs_elem *e)
{
	const char *type = xs_attr(e, "type"), *id = xs_attr(e, "id");

	return strcmp(e->name, "iq") == 0 && type && id &&
	       (strcmp(type, "result") == 0 || strcmp(type, "error") == 0) &&
	       strncmp(id, PING_ID_PREFIX, strlen(PING_ID_PREFIX)) == 0;
}

/* A stanza to the server's own domain: answer pings, refuse the rest. */
static void
serve_to_server(struct conn *c, const struct xs_elem *e)
{
	const char *type = xs_attr(e, "type"), *id = xs_attr(e, "id");
	char *eid, *to, *from, *s;

	if (strcmp(e->name, "iq") == 0 && type && strcmp(type, "get") == 0 &&
	    xs_child(e, "ping", XS_NS_PING) != NULL) {
		eid = xs_escape(id ? id : "");
		to = xs_escape(xs_attr(e, "from"));
		from = xs_escape(xs_attr(e, "to"));
		s = xasprintf("<iq type='result' id='%s' from='%s' to='%s'/>", eid, from, to);
		serve_flush_routed(c->srv);
		accept_send(c->s, s, strlen(s));
		free(s);
		free(eid);
		free(to);
		free(from);
		return;
	}
	if (strcmp(e->name, "presence") == 0 || (type && strcmp(type, "result") == 0))
		return;
	accept_bounce(c->s, e, "cancel", "service-unavailable");
}

static void
serve_forward(struct conn *c, struct conn *dst, const struct xs_elem *e)
{
	struct buf b;

	buf_init(&b, c->srv->limits.stanza * 2);
	if (xs_serialize(e, XS_NS_COMPONENT, &b) == -1) {
		buf_free(&b);
		accept_bounce(c->s, e, "cancel", "resource-constraint");
		return;
	}
	if (accept_write(dst->s, buf_head(&b), b.len) == -1) {
		log_warnx("%s (%s): write queue full, stanza bounced", accept_name(dst->s),
		    accept_peer(dst->s));
		accept_bounce(c->s, e, "cancel", "resource-constraint");
	}
	buf_free(&b);
}

static int
serve_route(
    void *arg, struct accept_session *s, const struct xs_elem *e, const char *raw, size_t rawlen)
{
	struct conn *c = arg, *dst;
	const char *to = xs_attr(e, "to"), *from = xs_attr(e, "from");
	char dom[1024];

	(void)raw;
	(void)rawlen;
	if (!accept_is_stanza(e)) {
		accept_error(s, "unsupported-stanza-type", NULL);
		return -1;
	}
	if (to == NULL || from == NULL || jid_domain(to, dom, sizeof(dom)) == -1) {
		accept_error(s, "improper-addressing", "a stanza needs 'to' and 'from'");
		return -1;
	}
	if (!jid_in_domain(from, accept_jid(s))) {
		accept_error(s, "invalid-from", "'from' is not at the component's domain");
		return -1;
	}
	if (serve_own_reply(e))
		return 0;
	if (strcasecmp(dom, c->srv->st->domain) == 0)
		serve_to_server(c, e);
	else if ((dst = serve_pick_online(c->srv, dom)) != NULL)
		serve_forward(c, dst, e);
	else if (c->srv->cl == NULL || cluster_forward(c->srv->cl, dom, e) == -1)
		accept_bounce(s, e, "cancel", "service-unavailable");
	return 0;
}

static void
serve_closed(void *arg, struct accept_session *s)
{
	struct conn *c = arg;

	timer_cancel(loop_timers(c->srv->loop), &c->keepalive);
	serve_unlink(c);
	/* The route goes with the last session of the component here. */
	if (c->since != 0 && c->srv->cl && serve_find_online(c->srv, accept_jid(s), NULL) == NULL)
		cluster_local_down(c->srv->cl, accept_jid(s));
	free(c);
}

static const struct accept_handler serve_handler = {
    serve_open, serve_secret, serve_authenticated, serve_route, serve_closed};

/* A TLS session for "status": its version, and the client's certificate if it sent one. */
static void
serve_print_tls(struct io *out, const struct conn *c)
{
	struct tls_info info;

	if (tls_info(accept_io(c->s), &info) == -1)
		return;
	io_print(out, "TLS        : %s%s%s\n", info.version,
	    info.nchain ? ", client certificate " : "", info.nchain ? info.chain[0].subject : "");
}

/* What "xcomp-server status" prints. */
static void
serve_status_text(struct server *srv, struct io *io)
{
	char when[32];
	struct conn *c;
	size_t i;

	io_print(io, "Domain     : %s\nPolicy     : %s\n", srv->st->domain,
	    state_policy_name(srv->st->policy));
	for (i = 0; i < srv->nls; i++)
		if (strcmp(srv->ls[i].name, CONTROL_SOCK) != 0)
			io_print(io, "Listening  : %s%s\n", srv->ls[i].name,
			    srv->ls[i].tls ? " (tls)" : "");
	if (srv->cl)
		io_print(io, "Cluster    : %s\n", cluster_listen_name(srv->cl));
	for (c = srv->conns; c; c = c->next)
		if (accept_online(c->s)) {
			util_iso_time(c->since, when, sizeof(when));
			io_print(io, "***\nComponent  : %s\nAddress    : %s\nSince      : %s\n",
			    accept_jid(c->s), accept_peer(c->s), when);
			if (c->l->tls)
				serve_print_tls(io, c);
		}
}

/*
 * A control client (xcomp-server's commands): one request line in, the
 * exit status on a line and the text out. A cluster request may wait for
 * the leader; a client gone meanwhile is forgotten when the answer comes.
 */
struct ctl {
	struct server *srv;
	struct io *io;
	char line[CONTROL_LINE_MAX];
	size_t n;
	int pending;
	struct timer timeout;
	struct ctl *next;
};

static void
ctl_free(struct ctl *k)
{
	struct ctl **pp;

	for (pp = &k->srv->ctls; *pp; pp = &(*pp)->next)
		if (*pp == k) {
			*pp = k->next;
			break;
		}
	timer_cancel(loop_timers(k->srv->loop), &k->timeout);
	if (k->io)
		io_free(k->io);
	free(k);
}

/* The answer is written: the io lingers until flushed and frees itself. */
static void
ctl_done(struct ctl *k)
{
	if (k->io != NULL) {
		io_close_after_flush(k->io);
		k->io = NULL;
	}
	ctl_free(k);
}

static void
ctl_reply(void *arg, int status, const char *text)
{
	struct ctl *k = arg;

	if (k->io != NULL)
		io_print(k->io, "%d\n%s", status, text);
	ctl_done(k);
}

static void serve_reload(struct server *);
static void serve_reload_cluster(struct server *, struct state *);

static void
ctl_request(struct ctl *k)
{
	struct server *srv = k->srv;
	char *argv[4], *p = k->line;
	int argc = 0;

	while (argc < 4 && (argv[argc] = strsep(&p, " ")) != NULL)
		if (*argv[argc] != '\0')
			argc++;
	k->pending = 1;
	if (argc == 1 && strcmp(argv[0], "status") == 0) {
		io_print(k->io, "0\n");
		serve_status_text(srv, k->io);
		ctl_done(k);
	} else if (argc == 2 && strcmp(argv[0], "cluster") == 0 && strcmp(argv[1], "reload") == 0) {
		serve_reload(srv);
		ctl_reply(k, 0,
		    srv->cl ? "the cluster settings are in effect\n" : "the cluster is disabled\n");
	} else if (argc >= 2 && strcmp(argv[0], "cluster") == 0 && srv->cl != NULL) {
		cluster_control(srv->cl, argc - 1, argv + 1, ctl_reply, k);
	} else if (argc == 2 && strcmp(argv[0], "cluster") == 0 && strcmp(argv[1], "status") == 0) {
		struct buf b;

		buf_init(&b, 1 << 20);
		cluster_status_disabled(srv->st, &b);
		buf_add(&b, "", 1);
		ctl_reply(k, 1, buf_head(&b));
		buf_free(&b);
	} else if (argc >= 2 && strcmp(argv[0], "cluster") == 0) {
		char *text = xasprintf(
		    "the cluster is disabled: xcomp-server -d %s cluster enable\n", srv->st->dir);

		ctl_reply(k, 1, text);
		free(text);
	} else
		ctl_reply(k, 2, "unknown request\n");
}

static void
ctl_data(void *arg, const char *p, size_t n)
{
	struct ctl *k = arg;
	char *nl;

	if (k->pending)
		return;
	if (n > sizeof(k->line) - 1 - k->n) {
		ctl_reply(k, 2, "request too long\n");
		return;
	}
	memcpy(k->line + k->n, p, n);
	k->n += n;
	k->line[k->n] = '\0';
	if ((nl = strchr(k->line, '\n')) != NULL) {
		*nl = '\0';
		io_pause(k->io, 1);
		ctl_request(k);
	}
}

static void
ctl_closed(void *arg, int err)
{
	struct ctl *k = arg;

	(void)err;
	if (k->pending) {
		io_free(k->io);
		k->io = NULL;
		return;
	}
	ctl_free(k);
}

static void
ctl_timeout(void *arg)
{
	struct ctl *k = arg;

	if (!k->pending)
		ctl_free(k); /* never sent its request */
}

static void
ctl_connected(void *arg, int err)
{
	(void)arg;
	(void)err;
}

static void
serve_control(void *arg, int s)
{
	static const struct io_handler h = {ctl_connected, ctl_data, ctl_closed, NULL};
	struct listener *l = arg;
	struct ctl *k = xcalloc(1, sizeof(*k));

	k->srv = l->srv;
	k->io = io_new(k->srv->loop, s, 0, CONTROL_OUT_MAX, &h, k);
	timer_init(&k->timeout, ctl_timeout, k);
	timer_add(loop_timers(k->srv->loop), &k->timeout, CONTROL_TIMEOUT_MS);
	k->next = k->srv->ctls;
	k->srv->ctls = k;
}

static int
serve_listen_tcp(struct server *srv, const struct listen_addr *la)
{
	struct listener *l = &srv->ls[srv->nls];
	char err[256];

	l->srv = srv;
	l->tls = la->tls;
	l->al = accept_listen_tcp(
	    srv->loop, la->host, la->port, 1024, serve_accept, l, err, sizeof(err));
	if (l->al == NULL) {
		log_warnx("listen %s", err);
		return -1;
	}
	srv->nls++;
	snprintf(l->name, sizeof(l->name), "%s", accept_listener_name(l->al));
	log_info("listening on %s%s for %s", l->name, la->tls ? " (TLS)" : "", srv->st->domain);
	return 0;
}

static int
serve_listen_control(struct server *srv)
{
	struct listener *l = &srv->ls[srv->nls];
	char err[1024];

	l->srv = srv;
	l->al = accept_listen_unix(
	    srv->loop, srv->control_path, 16, serve_control, l, err, sizeof(err));
	if (l->al == NULL) {
		log_warnx("%s", err);
		return -1;
	}
	srv->nls++;
	snprintf(l->name, sizeof(l->name), "%s", CONTROL_SOCK);
	return 0;
}

/* DIR/listening: the addresses in use, one a line ("ADDR:PORT [tls]"), for scripts and tests. */
static int
serve_write_listening(struct server *srv)
{
	char *tmp = xasprintf("%s.tmp", srv->listening_path);
	FILE *fp;
	size_t i;
	int r = -1;

	if ((fp = fopen(tmp, "w")) != NULL) {
		for (i = 0; i < srv->nls; i++)
			if (strcmp(srv->ls[i].name, CONTROL_SOCK) != 0)
				fprintf(
				    fp, "%s%s\n", srv->ls[i].name, srv->ls[i].tls ? " tls" : "");
		if (srv->cl)
			fprintf(fp, "%s cluster\n", cluster_listen_name(srv->cl));
		if (fclose(fp) == 0 && rename(tmp, srv->listening_path) == 0)
			r = 0;
	}
	if (r == -1)
		log_warn("%s", srv->listening_path);
	free(tmp);
	return r;
}

static void
serve_raise_fd_limit(void)
{
	struct rlimit rl;

	/* Thousands of components need more than the default 1024 descriptors. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int
serve_cl_deliver(void *arg, const char *jid, const char *bytes, size_t len)
{
	struct server *srv = arg;
	struct conn *dst = serve_pick_online(srv, jid);

	if (dst == NULL)
		return -1;
	if (accept_write(dst->s, bytes, len) == -1) {
		log_warnx("%s (%s): write queue full, stanza from the cluster bounced",
		    accept_name(dst->s), accept_peer(dst->s));
		return -1;
	}
	return 0;
}

static void
serve_cl_kick(void *arg, const char *jid, const char *where)
{
	struct server *srv = arg;
	struct conn *c, *next;
	char text[200];

	snprintf(text, sizeof(text), "Replaced by a new connection on the cluster node %s", where);
	for (c = srv->conns; c; c = next) {
		next = c->next;
		if (accept_online(c->s) && strcasecmp(accept_jid(c->s), jid) == 0)
			serve_kick(c, text);
	}
}

/*
 * kick-new across nodes is decided by each node from what it knows: two
 * sessions authenticated at once on two nodes, or on both sides of a
 * partition, both got in. When the nodes learn of each other, the same
 * session goes on both sides: the one on the node with the lower id.
 */
static void
serve_cl_remote_up(void *arg, const char *jid, const char *where, int theirs_wins)
{
	struct server *srv = arg;
	struct conn *c, *next;
	char text[200];

	if (srv->st->policy != POLICY_KICK_NEW || !theirs_wins)
		return;
	snprintf(text, sizeof(text), "Component already connected (on the cluster node %s)", where);
	for (c = srv->conns; c; c = next) {
		next = c->next;
		if (accept_online(c->s) && strcasecmp(accept_jid(c->s), jid) == 0) {
			log_warnx("%s: online on %s too: this session ends (kick-new)", jid, where);
			serve_kick(c, text);
		}
	}
}

static void
serve_cl_each_local(void *arg, void (*fn)(void *, const char *), void *fnarg)
{
	struct server *srv = arg;
	struct conn *c;

	for (c = srv->conns; c; c = c->next)
		if (accept_online(c->s))
			fn(fnarg, accept_jid(c->s));
}

static int
serve_start_cluster(struct server *srv)
{
	struct cluster_hooks h = {
	    serve_cl_deliver, serve_cl_kick, serve_cl_remote_up, serve_cl_each_local, srv};
	char err[1024];

	if ((srv->cl = cluster_new(srv->loop, srv->st, &h, err, sizeof(err))) == NULL) {
		log_warnx("%s", err);
		return -1;
	}
	return 0;
}

static void
serve_stop_check(void *arg)
{
	struct server *srv = arg;

	if (io_lingering() == 0 || util_now_ms() >= srv->stop_deadline) {
		loop_break(srv->loop);
		return;
	}
	timer_add(loop_timers(srv->loop), &srv->stop_timer, 10);
}

static void
serve_on_signal(int signo, void *arg)
{
	struct server *srv = arg;
	size_t i;

	if (srv->stopping)
		return;
	log_info("%s: shutting down", strsignal(signo));
	srv->stopping = 1;
	for (i = 0; i < srv->nls; i++) {
		accept_listener_free(srv->ls[i].al);
		srv->ls[i].al = NULL;
	}
	srv->nls = 0;
	cluster_free(srv->cl);
	srv->cl = NULL;
	while (srv->conns)
		accept_shutdown(srv->conns->s);
	srv->stop_deadline = util_now_ms() + SHUTDOWN_GRACE_MS;
	serve_stop_check(srv);
}

static int
serve_same_path(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

/*
 * SIGHUP: take the call bridges and policies from the state directory again.
 * Sessions already authenticated stay; the domain and listeners need a restart.
 */
static void
serve_on_hup(int signo, void *arg)
{
	(void)signo;
	serve_reload(arg);
}

static void
serve_reload(struct server *srv)
{
	struct state fresh, *st = srv->st;
	struct callbridge *cbs;
	struct conn *c;
	char err[1024];
	size_t n;

	if (state_load(st->dir, &fresh, err, sizeof(err)) == -1) {
		log_warnx("state not reloaded: %s", err);
		state_free(&fresh);
		return;
	}
	if (fresh.domain == NULL || strcmp(fresh.domain, st->domain) != 0 ||
	    fresh.nlisten != st->nlisten ||
	    memcmp(fresh.listen, st->listen, sizeof(st->listen[0]) * st->nlisten) != 0)
		log_warnx("the domain and listeners change only with a restart");
	if (!serve_same_path(fresh.tls_key, st->tls_key) ||
	    !serve_same_path(fresh.tls_cert, st->tls_cert) ||
	    !serve_same_path(fresh.tls_bundle, st->tls_bundle) ||
	    !serve_same_path(fresh.tls_trust, st->tls_trust))
		log_warnx("certs and trust change only with a restart");
	cbs = st->cbs;
	n = st->ncbs;
	st->cbs = fresh.cbs;
	st->ncbs = fresh.ncbs;
	fresh.cbs = cbs;
	fresh.ncbs = n;
	st->policy = fresh.policy;
	st->handshake_timeout = fresh.handshake_timeout;
	st->keepalive = fresh.keepalive;
	st->keepalive_timeout = fresh.keepalive_timeout;
	st->max_stanza = fresh.max_stanza;
	srv->limits.stanza = st->max_stanza;
	serve_reload_cluster(srv, &fresh);
	state_free(&fresh);
	/* The new keepalive holds for the sessions already up, from now on. */
	for (c = srv->conns; c; c = c->next) {
		util_tcp_keepalive(io_fd(accept_io(c->s)), st->keepalive, st->keepalive_timeout);
		if (accept_online(c->s))
			timer_add(loop_timers(srv->loop), &c->keepalive, 0);
	}
	log_info("state reloaded: %zu call bridge%s, conflict-policy %s", st->ncbs,
	    st->ncbs == 1 ? "" : "s", state_policy_name(st->policy));
}

/* The cluster's settings changed: the cluster starts, stops or starts again with them. */
static void
serve_reload_cluster(struct server *srv, struct state *fresh)
{
	struct state *st = srv->st;
	char *trust;

	if (fresh->cluster_enabled == st->cluster_enabled &&
	    memcmp(&fresh->cluster_listen, &st->cluster_listen, sizeof(st->cluster_listen)) == 0 &&
	    serve_same_path(fresh->cluster_trust, st->cluster_trust) &&
	    fresh->cluster_keepalive_ms == st->cluster_keepalive_ms &&
	    fresh->cluster_election_ms == st->cluster_election_ms)
		return;
	trust = st->cluster_trust;
	st->cluster_trust = fresh->cluster_trust;
	fresh->cluster_trust = trust;
	st->cluster_enabled = fresh->cluster_enabled;
	st->cluster_listen = fresh->cluster_listen;
	st->cluster_keepalive_ms = fresh->cluster_keepalive_ms;
	st->cluster_election_ms = fresh->cluster_election_ms;
	cluster_free(srv->cl);
	srv->cl = NULL;
	if (st->cluster_enabled && serve_start_cluster(srv) == -1)
		log_warnx("cluster: not started; fix the settings and run cluster enable again");
	serve_write_listening(srv);
}

/* Is a server already answering on DIR/control.sock? */
static int
serve_already_running(const char *path)
{
	struct sockaddr_un sun;
	int fd, r;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return 0;
	r = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
	close(fd);
	return r;
}

/*
 * The TLS credentials, checked before anything listens: files that went
 * missing or a key that became readable to others stop the start here.
 * Certificates without a TLS listener are checked all the same, so that a
 * broken set-up shows before a TLS listener is added.
 */
static int
serve_setup_tls(struct server *srv)
{
	char err[1024];

	if (!state_has_tls(srv->st) && srv->st->tls_key == NULL)
		return 0;
	if ((srv->tls = state_tls_ctx(srv->st, err, sizeof(err))) == NULL) {
		log_warnx("%s", err);
		return -1;
	}
	if (!state_has_tls(srv->st))
		log_info("certs are set but no listener is a TLS listener "
		         "(xcomp-server -d %s listen ADDRESS:PORT tls)",
		    srv->st->dir);
	return 0;
}

struct server *
serve_new(struct state *st)
{
	struct server *srv = xcalloc(1, sizeof(*srv));

	srv->st = st;
	srv->loop = loop_new();
	xs_limits_default(&srv->limits);
	srv->limits.stanza = st->max_stanza;
	srv->control_path = xasprintf("%s/%s", st->dir, CONTROL_SOCK);
	srv->listening_path = xasprintf("%s/%s", st->dir, LISTENING_FILE);
	timer_init(&srv->stop_timer, serve_stop_check, srv);
	if (serve_already_running(srv->control_path)) {
		log_warnx("xcomp-server is already running for %s", st->dir);
		goto fail;
	}
	if (st->domain == NULL) {
		log_warnx("no domain set: run xcomp-server -d %s domain DOMAIN", st->dir);
		goto fail;
	}
	if (st->nlisten == 0) {
		log_warnx("no listener: run xcomp-server -d %s listen ADDRESS:PORT", st->dir);
		goto fail;
	}
	if (serve_setup_tls(srv) == -1)
		goto fail;
	srv->own_files = 1;
	return srv;
fail:
	serve_free(srv);
	return NULL;
}

int
serve_run(struct server *srv)
{
	struct state *st = srv->st;
	size_t i;

	serve_raise_fd_limit();
	signal(SIGPIPE, SIG_IGN);
	loop_signal(srv->loop, SIGTERM, serve_on_signal, srv);
	loop_signal(srv->loop, SIGINT, serve_on_signal, srv);
	loop_signal(srv->loop, SIGHUP, serve_on_hup, srv);
	if (st->ncbs == 0)
		log_warnx("no call bridge configured: every component will be refused "
		          "(xcomp-server -d %s callbridge add NAME)",
		    st->dir);
	for (i = 0; i < st->nlisten; i++)
		if (serve_listen_tcp(srv, &st->listen[i]) == -1)
			return -1;
	if (st->cluster_enabled && serve_start_cluster(srv) == -1)
		return -1;
	if (serve_listen_control(srv) == -1 || serve_write_listening(srv) == -1)
		return -1;
	return loop_run(srv->loop);
}

void
serve_free(struct server *srv)
{
	struct conn *c;
	size_t i;

	if (srv == NULL)
		return;
	cluster_free(srv->cl);
	while (srv->ctls)
		ctl_free(srv->ctls);
	while ((c = srv->conns) != NULL) {
		timer_cancel(loop_timers(srv->loop), &c->keepalive);
		accept_free(c->s);
		serve_unlink(c);
		free(c);
	}
	for (i = 0; i < srv->nls; i++)
		accept_listener_free(srv->ls[i].al);
	if (srv->own_files) {
		unlink(srv->control_path);
		unlink(srv->listening_path);
	}
	free(srv->control_path);
	free(srv->listening_path);
	loop_free(srv->loop);
	/* After the connections: their sessions use it. */
	tls_ctx_free(srv->tls);
	free(srv);
}

/*
 * serve: a minimal XEP-0114 server. Components authenticate against the
 * state directory's call bridges; stanzas are routed between connected
 * components by the domain of their "to"; pings to the server's domain are
 * answered; everything else gets service-unavailable. One thread, one loop,
 * no per-connection thread: an idle component costs a socket, a parser and
 * a few hundred bytes. On a TLS listener the TLS handshake comes first and
 * the XML stream starts only once it succeeded; a failed handshake has no
 * stream to carry an error, so it is logged and the connection closed.
 */
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "digest.h"
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
#define SHUTDOWN_GRACE_MS 2000
#define CONTROL_SOCK "control.sock"
#define LISTENING_FILE "listening"

/* C_TLS: the TLS handshake runs; no XML has been read or written yet. */
enum conn_state { C_TLS, C_HEADER, C_HANDSHAKE, C_ONLINE, C_CLOSED };

struct server;

struct conn {
	struct server *srv;
	struct io *io;
	struct xs *xs;
	enum conn_state state;
	int header_sent;
	int fed;                  /* bytes reached the parser */
	int in_feed;              /* inside xs_feed: freeing waits until it returns */
	const struct listener *l; /* where it came in */
	char id[37];
	char *jid;          /* component JID from the stream header */
	time_t since;       /* when authenticated */
	struct timer timer; /* handshake timeout */
	struct conn *prev, *next;
};

struct listener {
	struct server *srv;
	int fd;
	int tls;
	struct loop_fd *lfd;
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
	unsigned turn; /* for pick_online */
	int stopping;
	struct timer stop_timer;
	uint64_t stop_deadline;
	char *control_path;
	char *listening_path;
	int own_files; /* control.sock and listening are ours to remove */
};

static const struct io_handler conn_handler;
static const struct xs_handler conn_xs_handler;

static void
new_stream_id(char id[37])
{
	unsigned char r[16];

	util_random(r, sizeof(r));
	r[6] = (r[6] & 0x0f) | 0x40; /* UUID version 4 */
	r[8] = (r[8] & 0x3f) | 0x80;
	snprintf(id, 37,
	    "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
	    "%02x%02x%02x%02x%02x%02x",
	    r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13],
	    r[14], r[15]);
}

static const char *
conn_name(const struct conn *c)
{
	return c->jid ? c->jid : "unknown component";
}

static void
conn_unlink(struct conn *c)
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

/* Forget the connection; its io closes on its own (after flushing) or now. */
static void
conn_free(struct conn *c, int flush)
{
	timer_cancel(loop_timers(c->srv->loop), &c->timer);
	conn_unlink(c);
	if (flush)
		io_close_after_flush(c->io);
	else
		io_free(c->io);
	xs_free(c->xs);
	free(c->jid);
	free(c);
}

/* The stream is over: free now, or once xs_feed has returned. */
static void
conn_end(struct conn *c)
{
	c->state = C_CLOSED;
	if (!c->in_feed)
		conn_free(c, 1);
}

static void
send_str(struct conn *c, const char *s)
{
	if (io_write(c->io, s, strlen(s)) == -1)
		log_warnx(
		    "%s (%s): write queue full, output dropped", conn_name(c), io_peer(c->io));
}

static void
send_header(struct conn *c, const char *from)
{
	char *h;

	h = xs_header(NULL, from, c->id);
	send_str(c, h);
	free(h);
	c->header_sent = 1;
}

/*
 * End the stream with a stream error. RFC 6120 4.9.1.2: before an error
 * the receiving entity sends its own stream header if it has not yet.
 */
static void
conn_error(struct conn *c, const char *condition, const char *text)
{
	char *e;

	if (!c->header_sent)
		send_header(c, c->srv->st->domain);
	e = xs_stream_error(condition, text);
	send_str(c, e);
	free(e);
	log_info("%s (%s): stream error <%s/>%s%s", conn_name(c), io_peer(c->io), condition,
	    text ? ": " : "", text ? text : "");
	conn_end(c);
}

static void
handshake_expired(void *arg)
{
	struct conn *c = arg;

	/* The timeout covers the TLS handshake too: a peer that stalls there gets no XML. */
	if (c->state == C_TLS) {
		log_warnx("TLS handshake with %s on %s failed: not finished within %u s",
		    io_peer(c->io), c->l->name, c->srv->st->handshake_timeout);
		conn_free(c, 1);
		return;
	}
	conn_error(c, "connection-timeout", "no handshake within the time allowed");
}

/* The end of the server's life for one connection: system-shutdown when it has a stream. */
static void
conn_shutdown(struct conn *c)
{
	if (c->state == C_TLS)
		conn_free(c, 0);
	else
		conn_error(c, "system-shutdown", NULL);
}

static void
start_tls(struct conn *c)
{
	char err[256];

	c->state = C_TLS;
	if (tls_server(c->io, c->srv->tls, err, sizeof(err)) == -1) {
		log_warnx("TLS with %s on %s: %s", io_peer(c->io), c->l->name, err);
		conn_free(c, 0);
	}
}

static void
accept_conn(const struct listener *l, int fd)
{
	struct server *srv = l->srv;
	struct conn *c = xcalloc(1, sizeof(*c));

	c->srv = srv;
	c->l = l;
	c->state = C_HEADER;
	new_stream_id(c->id);
	c->io = io_new(srv->loop, fd, 0, CONN_OUT_MAX, &conn_handler, c);
	c->xs = xs_new(XS_NS_COMPONENT, &srv->limits, &conn_xs_handler, c);
	timer_init(&c->timer, handshake_expired, c);
	timer_add(loop_timers(srv->loop), &c->timer, srv->st->handshake_timeout * 1000ull);
	c->next = srv->conns;
	if (c->next)
		c->next->prev = c;
	srv->conns = c;
	srv->nconns++;
	log_debug("connection from %s on %s", io_peer(c->io), l->name);
	if (l->tls)
		start_tls(c);
}

/* The online session of a component JID, skipping "except". */
static struct conn *
find_online(struct server *srv, const char *jid, const struct conn *except)
{
	struct conn *c;

	for (c = srv->conns; c; c = c->next)
		if (c != except && c->state == C_ONLINE && strcasecmp(c->jid, jid) == 0)
			return c;
	return NULL;
}

/*
 * The session to route to. With conflict-policy allow a component may hold
 * several: take turns, as ejabberd balances between them.
 */
static struct conn *
pick_online(struct server *srv, const char *jid)
{
	struct conn *c, *first = NULL;
	unsigned n = 0, want, i = 0;

	for (c = srv->conns; c; c = c->next)
		if (c->state == C_ONLINE && strcasecmp(c->jid, jid) == 0) {
			if (first == NULL)
				first = c;
			n++;
		}
	if (n <= 1)
		return first;
	want = srv->turn++ % n;
	for (c = first; c; c = c->next)
		if (c->state == C_ONLINE && strcasecmp(c->jid, jid) == 0 && i++ == want)
			return c;
	return first;
}

static int
x_open(void *arg, const struct xs_elem *hdr)
{
	struct conn *c = arg;
	const char *to = xs_attr(hdr, "to");

	if (to == NULL || *to == '\0') {
		conn_error(c, "improper-addressing", "the stream header has no 'to'");
		return -1;
	}
	c->jid = xstrdup(to);
	if (state_find_jid(c->srv->st, to) == NULL) {
		conn_error(c, "host-unknown", "no call bridge is configured for this name");
		return -1;
	}
	send_header(c, to);
	c->state = C_HANDSHAKE;
	return 0;
}

static int
kick(struct conn *c, const char *text)
{
	conn_error(c, "conflict", text);
	return -1;
}

static int
do_handshake(struct conn *c, const struct xs_elem *e)
{
	struct callbridge *cb = state_find_jid(c->srv->st, c->jid);
	struct conn *other;
	char want[DIGEST_HEXLEN + 1];
	const char *got = e->text ? e->text : "";
	int ok;

	if (strcmp(e->name, "handshake") != 0 || strcmp(e->ns, XS_NS_COMPONENT) != 0) {
		conn_error(c, "not-authorized", "expected <handshake/> first");
		return -1;
	}
	if (cb == NULL) {
		conn_error(c, "not-authorized", "the call bridge was removed");
		return -1;
	}
	if (digest_handshake(c->id, cb->secret, want) == -1) {
		conn_error(c, "internal-server-error", NULL);
		return -1;
	}
	ok = digest_equal(want, DIGEST_HEXLEN, got, strlen(got));
	util_wipe(want, sizeof(want));
	if (!ok) {
		log_warnx("authentication failure for %s from %s (not-authorized)", c->jid,
		    io_peer(c->io));
		conn_error(c, "not-authorized", "Given token does not match calculated token");
		return -1;
	}
	other = find_online(c->srv, c->jid, c);
	if (other != NULL && c->srv->st->policy == POLICY_KICK_NEW)
		return kick(c, "Component already connected");
	if (other != NULL && c->srv->st->policy == POLICY_KICK_OLD)
		kick(other, "Replaced by a new connection");
	timer_cancel(loop_timers(c->srv->loop), &c->timer);
	c->state = C_ONLINE;
	c->since = time(NULL);
	send_str(c, "<handshake/>");
	log_info(
	    "%s authenticated from %s%s", c->jid, io_peer(c->io), c->l->tls ? " over TLS" : "");
	return 0;
}

static int
is_stanza(const struct xs_elem *e)
{
	return strcmp(e->ns, XS_NS_COMPONENT) == 0 &&
	       (strcmp(e->name, "message") == 0 || strcmp(e->name, "presence") == 0 ||
	           strcmp(e->name, "iq") == 0);
}

/* A stanza error in reply to e, from its 'to' back to its 'from'. */
static void
bounce(struct conn *c, const struct xs_elem *e, const char *condition)
{
	const char *id = xs_attr(e, "id");
	char *to = xs_escape(xs_attr(e, "from")), *from = xs_escape(xs_attr(e, "to"));
	char *eid = id ? xs_escape(id) : NULL, *s;

	s = xasprintf("<%s from='%s' to='%s' type='error'%s%s%s><error type='cancel'>"
	              "<%s xmlns='" XS_NS_STANZA_ERRORS "'/></error></%s>",
	    e->name, from, to, eid ? " id='" : "", eid ? eid : "", eid ? "'" : "", condition,
	    e->name);
	send_str(c, s);
	free(s);
	free(to);
	free(from);
	free(eid);
}

static int
is_error(const struct xs_elem *e)
{
	const char *type = xs_attr(e, "type");

	return type && strcmp(type, "error") == 0;
}

/*
 * Before a ping's answer: write out what was routed to others. A component
 * (the agent's relay) takes the answer as proof that everything it sent
 * before the ping was handled; the stanzas must not be waiting in a queue
 * then, to be lost if this server dies before its next pass.
 */
static void
flush_routed(struct server *srv)
{
	struct conn *c;

	for (c = srv->conns; c; c = c->next)
		if (io_queued(c->io) > 0)
			(void)io_flush(c->io);
}

/* A stanza to the server's own domain: answer pings, refuse the rest. */
static void
to_server(struct conn *c, const struct xs_elem *e)
{
	const char *type = xs_attr(e, "type"), *id = xs_attr(e, "id");
	char *eid, *to, *from, *s;

	if (strcmp(e->name, "iq") == 0 && type && strcmp(type, "get") == 0 &&
	    xs_child(e, "ping", XS_NS_PING) != NULL) {
		eid = xs_escape(id ? id : "");
		to = xs_escape(xs_attr(e, "from"));
		from = xs_escape(xs_attr(e, "to"));
		s = xasprintf("<iq type='result' id='%s' from='%s' to='%s'/>", eid, from, to);
		flush_routed(c->srv);
		send_str(c, s);
		free(s);
		free(eid);
		free(to);
		free(from);
		return;
	}
	if (strcmp(e->name, "presence") == 0 || is_error(e) ||
	    (type && strcmp(type, "result") == 0))
		return;
	bounce(c, e, "service-unavailable");
}

static void
forward(struct conn *c, struct conn *dst, const struct xs_elem *e)
{
	struct buf b;

	buf_init(&b, c->srv->limits.stanza * 2);
	if (xs_serialize(e, XS_NS_COMPONENT, &b) == -1) {
		buf_free(&b);
		bounce(c, e, "resource-constraint");
		return;
	}
	if (io_write(dst->io, buf_head(&b), b.len) == -1) {
		log_warnx(
		    "%s (%s): write queue full, stanza bounced", conn_name(dst), io_peer(dst->io));
		if (!is_error(e))
			bounce(c, e, "resource-constraint");
	}
	buf_free(&b);
}

static int
route(struct conn *c, const struct xs_elem *e)
{
	const char *to = xs_attr(e, "to"), *from = xs_attr(e, "from");
	char dom[1024];
	struct conn *dst;

	if (!is_stanza(e)) {
		conn_error(c, "unsupported-stanza-type", NULL);
		return -1;
	}
	if (to == NULL || from == NULL || jid_domain(to, dom, sizeof(dom)) == -1) {
		conn_error(c, "improper-addressing", "a stanza needs 'to' and 'from'");
		return -1;
	}
	if (!jid_in_domain(from, c->jid)) {
		conn_error(c, "invalid-from", "'from' is not at the component's domain");
		return -1;
	}
	if (strcasecmp(dom, c->srv->st->domain) == 0) {
		to_server(c, e);
		return 0;
	}
	if ((dst = pick_online(c->srv, dom)) != NULL) {
		forward(c, dst, e);
		return 0;
	}
	if (!is_error(e))
		bounce(c, e, "service-unavailable");
	return 0;
}

static int
x_stanza(void *arg, const struct xs_elem *e, const char *raw, size_t rawlen)
{
	struct conn *c = arg;
	const char *cond, *text;

	(void)raw;
	(void)rawlen;
	if (strcmp(e->ns, XS_NS_STREAMS) == 0 && strcmp(e->name, "error") == 0) {
		xs_stream_error_parse(e, &cond, &text);
		log_info("%s (%s) sent stream error <%s/>%s%s", conn_name(c), io_peer(c->io),
		    cond ? cond : "?", text ? ": " : "", text ? text : "");
		send_str(c, "</stream:stream>");
		conn_end(c);
		return -1;
	}
	if (c->state == C_HANDSHAKE)
		return do_handshake(c, e);
	return route(c, e);
}

static int
x_close(void *arg)
{
	struct conn *c = arg;

	log_debug("%s (%s) closed its stream", conn_name(c), io_peer(c->io));
	if (!c->header_sent)
		send_header(c, c->srv->st->domain);
	send_str(c, "</stream:stream>");
	conn_end(c);
	return -1;
}

static void
x_error(void *arg, const char *condition, const char *text)
{
	conn_error(arg, condition, text);
}

static const struct xs_handler conn_xs_handler = {x_open, x_stanza, x_close, x_error};

/*
 * A TLS record header (handshake, TLS 1.x) as a plain stream's first byte:
 * the client wants TLS on a plain listener. Say so in the log; the stream
 * error still goes out in plain XML, which lets a TLS client explain it too.
 */
static int
tls_on_plain(struct conn *c, const char *p, size_t n)
{
	if (c->fed || c->l->tls || n == 0 || (unsigned char)p[0] != 0x16)
		return 0;
	log_warnx("%s on %s started a TLS handshake on a plain listener; use a TLS listener "
	          "(listen ADDRESS:PORT tls) or plain XML there",
	    io_peer(c->io), c->l->name);
	conn_error(c, "not-well-formed", "this port speaks plain XML, not TLS");
	return 1;
}

static void
io_data(void *arg, const char *p, size_t n)
{
	struct conn *c = arg;

	if (tls_on_plain(c, p, n))
		return;
	c->fed = 1;
	c->in_feed = 1;
	xs_feed(c->xs, p, n);
	c->in_feed = 0;
	if (c->state == C_CLOSED)
		conn_free(c, 1);
}

static void
io_closed(void *arg, int err)
{
	struct conn *c = arg;

	if (c->state == C_ONLINE)
		log_info("%s (%s) disconnected%s%s", c->jid, io_peer(c->io), err ? ": " : "",
		    err ? strerror(err) : "");
	conn_free(c, 0);
}

static void
io_connected(void *arg, int err)
{
	(void)arg;
	(void)err;
}

/* The TLS handshake ended: the XML stream may start, or the connection ends here. */
static void
io_secured(void *arg, int err)
{
	struct conn *c = arg;
	struct tls_info info;

	/*
	 * No stream error without a stream. Shut our side at once, but drain
	 * what the client still sends: closing on unread bytes would reset the
	 * connection, and a reset can destroy the alert that says why.
	 */
	if (err != 0) {
		log_warnx("TLS handshake with %s on %s failed: %s", io_peer(c->io), c->l->name,
		    tls_why(c->io));
		conn_free(c, 1);
		return;
	}
	c->state = C_HEADER;
	if (tls_info(c->io, &info) == 0)
		log_debug("TLS with %s: %s%s%s", io_peer(c->io), info.cipher,
		    info.nchain ? ", client certificate " : "",
		    info.nchain ? info.chain[0].subject : "");
}

static const struct io_handler conn_handler = {io_connected, io_data, io_closed, io_secured};

static void
accept_event(int fd, int revents, void *arg)
{
	struct listener *l = arg;
	struct server *srv = l->srv;
	int s, i;

	(void)revents;
	/* Take a batch, not all: a flood must not starve established streams. */
	for (i = 0; i < 64; i++) {
		s = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (s == -1) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED)
				log_warn("accept");
			return;
		}
		if (srv->stopping) {
			close(s);
			continue;
		}
		accept_conn(l, s);
	}
}

/* A TLS session for "status": its version, and the client's certificate if it sent one. */
static void
print_tls(struct io *out, const struct conn *c)
{
	struct tls_info info;

	if (tls_info(c->io, &info) == -1)
		return;
	io_print(out, "TLS        : %s%s%s\n", info.version,
	    info.nchain ? ", client certificate " : "", info.nchain ? info.chain[0].subject : "");
}

/* A status reader: write the listing and close. */
static void
control_event(int fd, int revents, void *arg)
{
	static const struct io_handler none = {io_connected, NULL, NULL, NULL};
	struct server *srv = arg;
	char when[32], line[1400];
	struct conn *c;
	struct io *io;
	size_t i;
	int s;

	(void)revents;
	if ((s = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) == -1)
		return;
	io = io_new(srv->loop, s, 0, CONTROL_OUT_MAX, &none, NULL);
	snprintf(line, sizeof(line), "Domain     : %s\nPolicy     : %s\n", srv->st->domain,
	    state_policy_name(srv->st->policy));
	io_write(io, line, strlen(line));
	for (i = 0; i < srv->nls; i++)
		if (strcmp(srv->ls[i].name, CONTROL_SOCK) != 0)
			io_print(io, "Listening  : %s%s\n", srv->ls[i].name,
			    srv->ls[i].tls ? " (tls)" : "");
	for (c = srv->conns; c; c = c->next)
		if (c->state == C_ONLINE) {
			util_iso_time(c->since, when, sizeof(when));
			io_print(io, "***\nComponent  : %s\nAddress    : %s\nSince      : %s\n",
			    c->jid, io_peer(c->io), when);
			if (c->l->tls)
				print_tls(io, c);
		}
	io_close_after_flush(io);
}

static int
add_listener(struct server *srv, int fd, const char *name, int tls, loop_fd_cb *cb, void *arg)
{
	struct listener *l = &srv->ls[srv->nls++];

	l->srv = srv;
	l->fd = fd;
	l->tls = tls;
	snprintf(l->name, sizeof(l->name), "%s", name);
	l->lfd = loop_add(srv->loop, fd, POLLIN, cb, arg ? arg : l);
	return 0;
}

static int
listen_tcp(struct server *srv, const struct listen_addr *la)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char name[80];
	int fd, sslen, one = 1;

	if (util_sockaddr(la->host, la->port, &ss, &sslen) == -1) {
		log_warnx("listen %s:%d: not an IP address", la->host, la->port);
		return -1;
	}
	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1) {
		log_warn("socket");
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sslen) == -1 || listen(fd, 1024) == -1) {
		log_warn("listen %s", util_sockaddr_str(&ss, name, sizeof(name)));
		close(fd);
		return -1;
	}
	/* Port 0 asks for a free port: report the one we got. */
	len = sizeof(ss);
	getsockname(fd, (struct sockaddr *)&ss, &len);
	util_sockaddr_str(&ss, name, sizeof(name));
	log_info("listening on %s%s for %s", name, la->tls ? " (TLS)" : "", srv->st->domain);
	return add_listener(srv, fd, name, la->tls, accept_event, NULL);
}

static int
listen_control(struct server *srv)
{
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", srv->control_path) >=
	    (int)sizeof(sun.sun_path)) {
		log_warnx("%s: path too long for a socket", srv->control_path);
		return -1;
	}
	unlink(srv->control_path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1 ||
	    bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    chmod(srv->control_path, 0600) == -1 || listen(fd, 16) == -1) {
		log_warn("%s", srv->control_path);
		if (fd != -1)
			close(fd);
		return -1;
	}
	return add_listener(srv, fd, CONTROL_SOCK, 0, control_event, srv);
}

/* DIR/listening: the addresses in use, one a line ("ADDR:PORT [tls]"), for scripts and tests. */
static int
write_listening(struct server *srv)
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
		if (fclose(fp) == 0 && rename(tmp, srv->listening_path) == 0)
			r = 0;
	}
	if (r == -1)
		log_warn("%s", srv->listening_path);
	free(tmp);
	return r;
}

static void
raise_fd_limit(void)
{
	struct rlimit rl;

	/* Thousands of components need more than the default 1024 descriptors. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void
stop_check(void *arg)
{
	struct server *srv = arg;

	if (io_lingering() == 0 || util_now_ms() >= srv->stop_deadline) {
		loop_break(srv->loop);
		return;
	}
	timer_add(loop_timers(srv->loop), &srv->stop_timer, 10);
}

static void
on_signal(int signo, void *arg)
{
	struct server *srv = arg;
	size_t i;

	if (srv->stopping)
		return;
	log_info("%s: shutting down", strsignal(signo));
	srv->stopping = 1;
	for (i = 0; i < srv->nls; i++) {
		loop_del(srv->loop, srv->ls[i].lfd);
		close(srv->ls[i].fd);
	}
	srv->nls = 0;
	while (srv->conns)
		conn_shutdown(srv->conns);
	srv->stop_deadline = util_now_ms() + SHUTDOWN_GRACE_MS;
	stop_check(srv);
}

static int
same_path(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

/*
 * SIGHUP: take the call bridges and policies from the state directory again.
 * Sessions already authenticated stay; the domain and listeners need a restart.
 */
static void
on_hup(int signo, void *arg)
{
	struct server *srv = arg;
	struct state fresh, *st = srv->st;
	struct callbridge *cbs;
	char err[1024];
	size_t n;

	(void)signo;
	if (state_load(st->dir, &fresh, err, sizeof(err)) == -1) {
		log_warnx("state not reloaded: %s", err);
		state_free(&fresh);
		return;
	}
	if (fresh.domain == NULL || strcmp(fresh.domain, st->domain) != 0 ||
	    fresh.nlisten != st->nlisten ||
	    memcmp(fresh.listen, st->listen, sizeof(st->listen[0]) * st->nlisten) != 0)
		log_warnx("the domain and listeners change only with a restart");
	if (!same_path(fresh.tls_key, st->tls_key) || !same_path(fresh.tls_cert, st->tls_cert) ||
	    !same_path(fresh.tls_bundle, st->tls_bundle) ||
	    !same_path(fresh.tls_trust, st->tls_trust))
		log_warnx("certs and trust change only with a restart");
	cbs = st->cbs;
	n = st->ncbs;
	st->cbs = fresh.cbs;
	st->ncbs = fresh.ncbs;
	fresh.cbs = cbs;
	fresh.ncbs = n;
	st->policy = fresh.policy;
	st->handshake_timeout = fresh.handshake_timeout;
	st->max_stanza = fresh.max_stanza;
	srv->limits.stanza = st->max_stanza;
	state_free(&fresh);
	log_info("state reloaded: %zu call bridge%s, conflict-policy %s", st->ncbs,
	    st->ncbs == 1 ? "" : "s", state_policy_name(st->policy));
}

/* Is a server already answering on DIR/control.sock? */
static int
already_running(const char *path)
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
setup_tls(struct server *srv)
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

static int
serve_setup(struct server *srv)
{
	size_t i;

	if (already_running(srv->control_path)) {
		log_warnx("xcomp-server is already running for %s", srv->st->dir);
		return 1;
	}
	if (srv->st->domain == NULL) {
		log_warnx("no domain set: run xcomp-server -d %s domain DOMAIN", srv->st->dir);
		return 1;
	}
	if (srv->st->nlisten == 0) {
		log_warnx("no listener: run xcomp-server -d %s listen ADDRESS:PORT", srv->st->dir);
		return 1;
	}
	if (setup_tls(srv) == -1)
		return 1;
	srv->own_files = 1;
	if (srv->st->ncbs == 0)
		log_warnx("no call bridge configured: every component will be refused "
		          "(xcomp-server -d %s callbridge add NAME)",
		    srv->st->dir);
	for (i = 0; i < srv->st->nlisten; i++)
		if (listen_tcp(srv, &srv->st->listen[i]) == -1)
			return 2;
	if (listen_control(srv) == -1 || write_listening(srv) == -1)
		return 2;
	return 0;
}

int
serve_run(struct state *st)
{
	struct server srv;
	int r;

	memset(&srv, 0, sizeof(srv));
	srv.st = st;
	srv.loop = loop_new();
	xs_limits_default(&srv.limits);
	srv.limits.stanza = st->max_stanza;
	srv.control_path = xasprintf("%s/%s", st->dir, CONTROL_SOCK);
	srv.listening_path = xasprintf("%s/%s", st->dir, LISTENING_FILE);
	timer_init(&srv.stop_timer, stop_check, &srv);
	raise_fd_limit();
	signal(SIGPIPE, SIG_IGN);
	loop_signal(srv.loop, SIGTERM, on_signal, &srv);
	loop_signal(srv.loop, SIGINT, on_signal, &srv);
	loop_signal(srv.loop, SIGHUP, on_hup, &srv);
	if ((r = serve_setup(&srv)) == 0 && loop_run(srv.loop) == -1)
		r = 2;
	while (srv.conns)
		conn_free(srv.conns, 0);
	for (size_t i = 0; i < srv.nls; i++)
		close(srv.ls[i].fd);
	if (srv.own_files) {
		unlink(srv.control_path);
		unlink(srv.listening_path);
	}
	free(srv.control_path);
	free(srv.listening_path);
	loop_free(srv.loop);
	/* After the connections: their sessions use it. */
	tls_ctx_free(srv.tls);
	return r;
}

int
serve_status(const char *dir, FILE *out, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	char buf[4096];
	ssize_t n;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/%s", dir, CONTROL_SOCK);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		snprintf(
		    err, errlen, "not running for %s (%s: %s)", dir, sun.sun_path, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		fwrite(buf, 1, n, out);
	close(fd);
	return 0;
}

/*
 * accept: the accepting side of XEP-0114 sessions, shared by xcomp-server
 * and the agent's relay, so that each protocol step (stream header and id,
 * handshake, stream and stanza errors, bounces) and the listeners' accept
 * loop exist once. A session answers only for itself; which names are
 * served and what happens to stanzas is its handler's business.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "accept.h"
#include "digest.h"
#include "log.h"
#include "tls.h"
#include "util.h"

/* A flood of connections must not starve established streams: a batch per pass. */
#define ACCEPT_BATCH 64
/* Out of descriptors or memory: how long a listener rests before it tries again. */
#define ACCEPT_PAUSE_MS 1000
/* While accept keeps failing, at most one log line this often. */
#define ACCEPT_LOG_MS 60000

struct accept_listener {
	struct loop *loop;
	int fd;
	struct loop_fd *lfd;
	accept_fn *fn;
	void *arg;
	struct timer resume;
	uint64_t logged_at;  /* when a failure was last logged; 0: never */
	unsigned long quiet; /* failures since then, not logged */
	char name[108];
};

/* A_TLS: the TLS handshake runs; no XML has been read or written yet. */
enum accept_state { A_TLS, A_HEADER, A_HANDSHAKE, A_ONLINE };

struct accept_session {
	struct loop *loop;
	struct io *io;
	struct xs *xs;
	const struct accept_handler *h;
	void *arg;
	struct accept_conf conf;
	enum accept_state state;
	int header_sent;
	int fed;           /* bytes reached the parser */
	uint64_t heard_ms; /* when the peer last sent anything */
	char id[37];
	char *jid; /* 'to' of the stream header */
	struct timer timer;
};

static const struct io_handler accept_io_handler;
static const struct xs_handler accept_xs_handler;

/* Listeners */

/*
 * One attempt failed for a reason that stays (EMFILE, ENFILE, ENOBUFS,
 * ENOMEM, or one never expected). The connection stays queued, so poll
 * would report it again at once: rest instead of spinning, and say so
 * once a minute, not once a pass.
 */
static void
accept_listener_failed(struct accept_listener *l, int err)
{
	uint64_t now = util_now_ms();

	loop_set_events(l->lfd, 0);
	timer_add(loop_timers(l->loop), &l->resume, ACCEPT_PAUSE_MS);
	if (l->logged_at != 0 && now - l->logged_at < ACCEPT_LOG_MS) {
		l->quiet++;
		return;
	}
	if (l->quiet > 0)
		log_warnx("accept on %s: %s (%lu more failures in the last minute); trying again "
		          "every %u ms",
		    l->name, strerror(err), l->quiet, ACCEPT_PAUSE_MS);
	else
		log_warnx("accept on %s: %s; trying again in %u ms", l->name, strerror(err),
		    ACCEPT_PAUSE_MS);
	l->logged_at = now;
	l->quiet = 0;
}

static void
accept_listener_resume(void *arg)
{
	struct accept_listener *l = arg;

	loop_set_events(l->lfd, POLLIN);
}

static void
accept_listener_event(int fd, int revents, void *arg)
{
	struct accept_listener *l = arg;
	int s, i;

	(void)revents;
	for (i = 0; i < ACCEPT_BATCH; i++) {
		s = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (s != -1) {
			l->fn(l->arg, s);
			continue;
		}
		switch (errno) {
		case EAGAIN:
#if EWOULDBLOCK != EAGAIN
		case EWOULDBLOCK:
#endif
			return;
		case EINTR:
			continue;
		/* The peer's connection failed before we took it (accept(2), "Error handling"). */
		case ECONNABORTED:
		case EPROTO:
		case ENETDOWN:
		case ENOPROTOOPT:
		case EHOSTDOWN:
		case ENONET:
		case EHOSTUNREACH:
		case EOPNOTSUPP:
		case ENETUNREACH:
		case EPERM:
			log_debug("accept on %s: %s", l->name, strerror(errno));
			continue;
		default:
			accept_listener_failed(l, errno);
			return;
		}
	}
}

static struct accept_listener *
accept_listener_new(struct loop *loop, int fd, const char *name, accept_fn *fn, void *arg)
{
	struct accept_listener *l = xcalloc(1, sizeof(*l));

	l->loop = loop;
	l->fd = fd;
	l->fn = fn;
	l->arg = arg;
	snprintf(l->name, sizeof(l->name), "%s", name);
	timer_init(&l->resume, accept_listener_resume, l);
	l->lfd = loop_add(loop, fd, POLLIN, accept_listener_event, l);
	return l;
}

struct accept_listener *
accept_listen_tcp(struct loop *loop, const char *host, int port, int backlog, accept_fn *fn,
    void *arg, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char name[80];
	int fd, sslen, one = 1;

	if (util_sockaddr(host, port, &ss, &sslen) == -1) {
		snprintf(err, errlen, "%s:%d: not an IP address", host, port);
		return NULL;
	}
	util_sockaddr_str(&ss, name, sizeof(name));
	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1) {
		snprintf(err, errlen, "%s: socket: %s", name, strerror(errno));
		return NULL;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sslen) == -1 || listen(fd, backlog) == -1) {
		snprintf(err, errlen, "%s: %s", name, strerror(errno));
		close(fd);
		return NULL;
	}
	/* Port 0 asks for a free port: name the one we got. */
	len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
		util_sockaddr_str(&ss, name, sizeof(name));
	return accept_listener_new(loop, fd, name, fn, arg);
}

struct accept_listener *
accept_listen_unix(struct loop *loop, const char *path, int backlog, accept_fn *fn, void *arg,
    char *err, size_t errlen)
{
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path) >= (int)sizeof(sun.sun_path)) {
		snprintf(err, errlen, "%s: path too long for a socket", path);
		return NULL;
	}
	unlink(path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1 ||
	    bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 || chmod(path, 0600) == -1 ||
	    listen(fd, backlog) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		if (fd != -1)
			close(fd);
		return NULL;
	}
	return accept_listener_new(loop, fd, path, fn, arg);
}

const char *
accept_listener_name(const struct accept_listener *l)
{
	return l->name;
}

void
accept_listener_free(struct accept_listener *l)
{
	if (l == NULL)
		return;
	timer_cancel(loop_timers(l->loop), &l->resume);
	loop_del(l->loop, l->lfd);
	close(l->fd);
	free(l);
}

/* Sessions */

/* A random (version 4) UUID: the stream id, and with the secret the handshake's input. */
static void
accept_stream_id(char id[37])
{
	unsigned char r[16];

	util_random(r, sizeof(r));
	r[6] = (r[6] & 0x0f) | 0x40;
	r[8] = (r[8] & 0x3f) | 0x80;
	snprintf(id, 37,
	    "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
	    "%02x%02x%02x%02x%02x%02x",
	    r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13],
	    r[14], r[15]);
}

const char *
accept_name(const struct accept_session *s)
{
	return s->jid ? s->jid : "unknown component";
}

const char *
accept_jid(const struct accept_session *s)
{
	return s->jid;
}

const char *
accept_peer(const struct accept_session *s)
{
	return io_peer(s->io);
}

int
accept_online(const struct accept_session *s)
{
	return s->state == A_ONLINE;
}

struct io *
accept_io(const struct accept_session *s)
{
	return s->io;
}

uint64_t
accept_heard(const struct accept_session *s)
{
	return s->heard_ms;
}

void
accept_free(struct accept_session *s)
{
	if (s == NULL)
		return;
	timer_cancel(loop_timers(s->loop), &s->timer);
	/* Both defer their own free while their callbacks run. */
	io_free(s->io);
	xs_free(s->xs);
	free(s->jid);
	free(s);
}

/* The session is over: the handler lets go, the io flushes (or not) on its own. */
static void
accept_end(struct accept_session *s, int flush)
{
	if (s->h->closed)
		s->h->closed(s->arg, s);
	if (flush)
		io_close_after_flush(s->io);
	accept_free(s);
}

int
accept_write(struct accept_session *s, const void *p, size_t n)
{
	return io_write(s->io, p, n);
}

void
accept_send(struct accept_session *s, const void *p, size_t n)
{
	if (io_write(s->io, p, n) == -1)
		log_warnx("%s%s (%s): write queue full, output dropped", s->conf.prefix,
		    accept_name(s), io_peer(s->io));
}

static void
accept_send_str(struct accept_session *s, const char *str)
{
	accept_send(s, str, strlen(str));
}

static void
accept_header(struct accept_session *s, const char *from)
{
	char *h;

	h = xs_header(NULL, from, s->id);
	accept_send_str(s, h);
	free(h);
	s->header_sent = 1;
}

/*
 * End the stream with a stream error. RFC 6120 4.9.1.2: before an error
 * the receiving entity sends its own stream header if it has not yet.
 */
void
accept_error(struct accept_session *s, const char *condition, const char *text)
{
	char *e;

	if (!s->header_sent)
		accept_header(s, s->conf.domain);
	e = xs_stream_error(condition, text);
	accept_send_str(s, e);
	free(e);
	log_info("%s%s (%s): stream error <%s/>%s%s", s->conf.prefix, accept_name(s),
	    io_peer(s->io), condition, text ? ": " : "", text ? text : "");
	accept_end(s, 1);
}

/* accept_error for xs callbacks, which then stop the parser. */
static int
accept_fail(struct accept_session *s, const char *condition, const char *text)
{
	accept_error(s, condition, text);
	return -1;
}

void
accept_shutdown(struct accept_session *s)
{
	if (s->state == A_TLS)
		accept_end(s, 0);
	else
		accept_error(s, "system-shutdown", NULL);
}

static void
accept_expired(void *arg)
{
	struct accept_session *s = arg;

	/* The timeout covers the TLS handshake too: a peer that stalls there gets no XML. */
	if (s->state == A_TLS) {
		log_warnx("%sTLS handshake with %s on %s failed: not finished within %u s",
		    s->conf.prefix, io_peer(s->io), s->conf.where, s->conf.timeout_ms / 1000);
		accept_end(s, 1);
		return;
	}
	accept_error(s, "connection-timeout", "no handshake within the time allowed");
}

struct accept_session *
accept_new(struct loop *loop, int fd, const struct accept_conf *conf,
    const struct accept_handler *h, void *arg)
{
	struct accept_session *s = xcalloc(1, sizeof(*s));
	char err[256];

	s->loop = loop;
	s->conf = *conf;
	s->h = h;
	s->arg = arg;
	s->state = A_HEADER;
	s->heard_ms = util_now_ms();
	accept_stream_id(s->id);
	s->io = io_new(loop, fd, 0, conf->outmax, &accept_io_handler, s);
	s->xs = xs_new(XS_NS_COMPONENT, conf->limits, &accept_xs_handler, s);
	xs_set_shallow(s->xs, conf->shallow);
	timer_init(&s->timer, accept_expired, s);
	timer_add(loop_timers(loop), &s->timer, conf->timeout_ms);
	log_debug("%sconnection from %s on %s", conf->prefix, io_peer(s->io), conf->where);
	if (conf->tls != NULL) {
		s->state = A_TLS;
		if (tls_server(s->io, conf->tls, err, sizeof(err)) == -1) {
			log_warnx("%sTLS with %s on %s: %s", conf->prefix, io_peer(s->io),
			    conf->where, err);
			accept_free(s);
			return NULL;
		}
	}
	return s;
}

/* The stream: header, handshake, stanzas */

static int
accept_x_open(void *arg, const struct xs_elem *hdr)
{
	struct accept_session *s = arg;
	const char *to = xs_attr(hdr, "to"), *from;

	if (to != NULL && *to != '\0')
		s->jid = xstrdup(to);
	if ((from = s->h->open(s->arg, s, to)) == NULL)
		return -1;
	accept_header(s, from);
	s->state = A_HANDSHAKE;
	return 0;
}

static int
accept_handshake(struct accept_session *s, const struct xs_elem *e)
{
	char want[DIGEST_HEXLEN + 1];
	const char *got = e->text ? e->text : "", *secret;
	int ok;

	if (strcmp(e->name, "handshake") != 0 || strcmp(e->ns, XS_NS_COMPONENT) != 0)
		return accept_fail(s, "not-authorized", "expected <handshake/> first");
	if ((secret = s->h->secret(s->arg, s)) == NULL)
		return accept_fail(s, "not-authorized", "the call bridge was removed");
	if (digest_handshake(s->id, secret, want) == -1)
		return accept_fail(s, "internal-server-error", NULL);
	ok = digest_equal(want, DIGEST_HEXLEN, got, strlen(got));
	util_wipe(want, sizeof(want));
	if (!ok) {
		log_warnx("%sauthentication failure for %s from %s (not-authorized)",
		    s->conf.prefix, accept_name(s), io_peer(s->io));
		return accept_fail(
		    s, "not-authorized", "Given token does not match calculated token");
	}
	timer_cancel(loop_timers(s->loop), &s->timer);
	s->state = A_ONLINE;
	if (s->h->authenticated(s->arg, s) == -1)
		return -1;
	accept_send_str(s, "<handshake/>");
	log_info("%s%s authenticated from %s%s", s->conf.prefix, s->jid, io_peer(s->io),
	    s->conf.tls ? " over TLS" : "");
	return 0;
}

static int
accept_x_stanza(void *arg, const struct xs_elem *e, const char *raw, size_t rawlen)
{
	struct accept_session *s = arg;
	const char *cond, *text;

	if (strcmp(e->ns, XS_NS_STREAMS) == 0 && strcmp(e->name, "error") == 0) {
		xs_stream_error_parse(e, &cond, &text);
		log_info("%s%s (%s) sent stream error <%s/>%s%s", s->conf.prefix, accept_name(s),
		    io_peer(s->io), cond ? cond : "?", text ? ": " : "", text ? text : "");
		accept_send_str(s, "</stream:stream>");
		accept_end(s, 1);
		return -1;
	}
	if (s->state == A_HANDSHAKE)
		return accept_handshake(s, e);
	if (strcmp(e->ns, XS_NS_STREAMS) == 0)
		return accept_fail(s, "unsupported-stanza-type", NULL);
	return s->h->stanza(s->arg, s, e, raw, rawlen);
}

static int
accept_x_close(void *arg)
{
	struct accept_session *s = arg;

	log_debug("%s%s (%s) closed its stream", s->conf.prefix, accept_name(s), io_peer(s->io));
	if (!s->header_sent)
		accept_header(s, s->conf.domain);
	accept_send_str(s, "</stream:stream>");
	accept_end(s, 1);
	return -1;
}

static void
accept_x_error(void *arg, const char *condition, const char *text)
{
	accept_error(arg, condition, text);
}

static const struct xs_handler accept_xs_handler = {
    accept_x_open, accept_x_stanza, accept_x_close, accept_x_error};

/* The byte stream */

/*
 * A TLS record header (handshake, TLS 1.x) as a plain stream's first byte:
 * the client wants TLS on a plain listener. Say so in the log; the stream
 * error still goes out in plain XML, which lets a TLS client explain it too.
 */
static int
accept_tls_on_plain(struct accept_session *s, const char *p, size_t n)
{
	if (s->fed || s->conf.tls || n == 0 || (unsigned char)p[0] != 0x16)
		return 0;
	log_warnx("%s%s on %s started a TLS handshake on a plain listener%s", s->conf.prefix,
	    io_peer(s->io), s->conf.where, s->conf.tls_hint ? s->conf.tls_hint : "");
	accept_error(s, "not-well-formed", "this port speaks plain XML, not TLS");
	return 1;
}

static void
accept_io_data(void *arg, const char *p, size_t n)
{
	struct accept_session *s = arg;

	s->heard_ms = util_now_ms();
	if (accept_tls_on_plain(s, p, n))
		return;
	s->fed = 1;
	/* The session may end inside: nothing of it is touched after. */
	xs_feed(s->xs, p, n);
}

static void
accept_io_closed(void *arg, int err)
{
	struct accept_session *s = arg;

	if (s->state == A_ONLINE)
		log_info("%s%s (%s) disconnected%s%s", s->conf.prefix, s->jid, io_peer(s->io),
		    err ? ": " : "", err ? strerror(err) : "");
	accept_end(s, 0);
}

static void
accept_io_connected(void *arg, int err)
{
	(void)arg;
	(void)err;
}

/* The TLS handshake ended: the XML stream may start, or the connection ends here. */
static void
accept_io_secured(void *arg, int err)
{
	struct accept_session *s = arg;
	struct tls_info info;

	/*
	 * No stream error without a stream. Shut our side at once, but drain
	 * what the client still sends: closing on unread bytes would reset the
	 * connection, and a reset can destroy the alert that says why.
	 */
	if (err != 0) {
		log_warnx("%sTLS handshake with %s on %s failed: %s", s->conf.prefix,
		    io_peer(s->io), s->conf.where, tls_why(s->io));
		accept_end(s, 1);
		return;
	}
	s->state = A_HEADER;
	if (tls_info(s->io, &info) == 0)
		log_debug("%sTLS with %s: %s%s%s", s->conf.prefix, io_peer(s->io), info.cipher,
		    info.nchain ? ", client certificate " : "",
		    info.nchain ? info.chain[0].subject : "");
}

static const struct io_handler accept_io_handler = {
    accept_io_connected, accept_io_data, accept_io_closed, accept_io_secured};

/* Stanza errors */

int
accept_is_stanza(const struct xs_elem *e)
{
	return strcmp(e->ns, XS_NS_COMPONENT) == 0 &&
	       (strcmp(e->name, "message") == 0 || strcmp(e->name, "presence") == 0 ||
	           strcmp(e->name, "iq") == 0);
}

int
accept_is_error(const struct xs_elem *e)
{
	const char *type = xs_attr(e, "type");

	return type && strcmp(type, "error") == 0;
}

char *
accept_stanza_error(const struct xs_elem *e, const char *type, const char *condition)
{
	const char *id = xs_attr(e, "id"), *from = xs_attr(e, "from"), *to = xs_attr(e, "to");
	char *eid, *efrom, *eto, *s;

	if (!accept_is_stanza(e) || accept_is_error(e))
		return NULL;
	eid = id ? xs_escape(id) : NULL;
	efrom = xs_escape(to ? to : "");
	eto = xs_escape(from ? from : "");
	s = xasprintf("<%s from='%s' to='%s' type='error'%s%s%s><error type='%s'><%s "
	              "xmlns='" XS_NS_STANZA_ERRORS "'/></error></%s>",
	    e->name, efrom, eto, eid ? " id='" : "", eid ? eid : "", eid ? "'" : "", type,
	    condition, e->name);
	free(eid);
	free(efrom);
	free(eto);
	return s;
}

int
accept_bounce(
    struct accept_session *s, const struct xs_elem *e, const char *type, const char *condition)
{
	char *err = accept_stanza_error(e, type, condition);

	if (err == NULL)
		return -1;
	accept_send_str(s, err);
	free(err);
	return 0;
}

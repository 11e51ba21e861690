/*
 * connect: one client session of XEP-0114 to one address, for the agent
 * and probe (see connect.h). The deadline of each step is one timer:
 * connect-timeout from the TCP connect through TLS, then handshake-timeout
 * from the stream header to <handshake/>. The user's callbacks may free the
 * session; the free then waits until the io callback or timer that called
 * them returns, as io_free does.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connect.h"
#include "digest.h"
#include "io.h"
#include "log.h"
#include "util.h"

struct connect {
	struct loop *loop;
	struct connect_params p;
	char server[300];
	char ip[64];
	char *component;
	const struct connect_handler *h;
	void *arg;
	struct io *io;
	struct xs *xs;
	enum connect_phase phase;
	int no_id;  /* the server's header had no id */
	int authed; /* the handshake passed */
	struct timer t_step;
	int busy;  /* inside one of our io callbacks or the timer */
	int freed; /* connect_free was called meanwhile */
	char text[800];
};

static const struct io_handler connect_io;
static void connect_step_expired(void *);
static const struct xs_handler connect_xs;

static void
connect_destroy(struct connect *c)
{
	free(c->component);
	free(c);
}

static void
connect_leave(struct connect *c)
{
	if (--c->busy == 0 && c->freed)
		connect_destroy(c);
}

static void connect_end(struct connect *, struct connect_end *, const char *code, const char *, ...)
    __attribute__((format(printf, 4, 5)));

/* End the session with e (how and the facts filled in) and a text; tell the user. */
static void
connect_end(struct connect *c, struct connect_end *e, const char *code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->text, sizeof(c->text), fmt, ap);
	va_end(ap);
	e->phase = c->phase;
	e->code = code;
	e->text = c->text;
	if (e->why == NULL)
		e->why = "";
	timer_cancel(loop_timers(c->loop), &c->t_step);
	/* Both are deferred while their own callbacks run. */
	io_free(c->io);
	c->io = NULL;
	xs_free(c->xs);
	c->xs = NULL;
	c->h->ended(c->arg, e);
}

/* Connect */

struct connect *
connect_new(
    struct loop *loop, const struct connect_params *p, const struct connect_handler *h, void *arg)
{
	struct connect *c = xcalloc(1, sizeof(*c));

	c->loop = loop;
	c->p = *p;
	snprintf(c->server, sizeof(c->server), "%s", p->server);
	snprintf(c->ip, sizeof(c->ip), "%s", p->ip);
	c->component = xstrdup(p->component);
	c->h = h;
	c->arg = arg;
	c->phase = CONNECT_TCP;
	timer_init(&c->t_step, connect_step_expired, c);
	c->io = io_connect(loop, c->ip, p->port, p->outmax, &connect_io, c);
	if (c->io == NULL) {
		int e = errno;

		connect_destroy(c);
		errno = e;
		return NULL;
	}
	timer_add(loop_timers(loop), &c->t_step, p->connect_timeout * 1000ull);
	return c;
}

/* The byte stream is ready (TCP, or TLS done): open the XML stream. */
static void
connect_open(struct connect *c)
{
	struct xs_limits lim;
	char *hdr;

	xs_limits_default(&lim);
	if (c->p.stanza_max)
		lim.stanza = c->p.stanza_max;
	c->xs = xs_new(XS_NS_COMPONENT, &lim, &connect_xs, c);
	xs_set_shallow(c->xs, c->p.shallow);
	hdr = xs_header(c->component, NULL, NULL);
	if (io_write(c->io, hdr, strlen(hdr)) == -1)
		log_warnx("%s: write queue full", c->server);
	free(hdr);
	c->phase = CONNECT_STREAM;
	timer_add(loop_timers(c->loop), &c->t_step, c->p.handshake_timeout * 1000ull);
	if (c->h->opened)
		c->h->opened(c->arg);
}

/* TCP is up: TLS, or the stream at once. */
static void
connect_secure(struct connect *c)
{
	struct connect_end e = {.how = CONNECT_TLS_FAILED};
	char why[512];

	if (c->p.tls == NULL) {
		connect_open(c);
		return;
	}
	/* The TLS handshake counts against connect-timeout: t_step runs on. */
	c->phase = CONNECT_TLS;
	if (tls_client(c->io, c->p.tls, c->p.tls_name, c->p.tls_alt, why, sizeof(why)) == -1) {
		e.why = why;
		connect_end(c, &e, "tls", "TLS failure at %s: %s", c->server, why);
	}
}

static void
connect_io_connected(void *arg, int err)
{
	struct connect *c = arg;
	struct connect_end e = {.how = CONNECT_REFUSED, .err = err, .address = 1};

	c->busy++;
	if (err)
		connect_end(c, &e, "connect", "cannot connect to %s (%s): %s", c->server, c->ip,
		    strerror(err));
	else if (c->h->connected)
		c->h->connected(c->arg);
	if (!err && !c->freed)
		connect_secure(c);
	connect_leave(c);
}

static void
connect_io_secured(void *arg, int err)
{
	struct connect *c = arg;
	struct connect_end e = {.how = CONNECT_TLS_FAILED};
	struct tls_info ti;

	c->busy++;
	tls_info(c->io, &ti);
	if (err) {
		e.why = tls_why(c->io);
		e.tls = &ti;
		connect_end(
		    c, &e, "tls", "TLS failure at %s (%s): %s", c->server, c->ip, tls_why(c->io));
	} else {
		if (c->h->secured)
			c->h->secured(c->arg, &ti);
		if (!c->freed)
			connect_open(c);
	}
	connect_leave(c);
}

static void
connect_io_data(void *arg, const char *p, size_t n)
{
	struct connect *c = arg;

	c->busy++;
	if (c->h->data)
		c->h->data(c->arg);
	if (!c->freed && c->xs)
		xs_feed(c->xs, p, n);
	connect_leave(c);
}

static void
connect_io_closed(void *arg, int err)
{
	struct connect *c = arg;
	struct connect_end e = {.how = CONNECT_LOST, .err = err};
	const char *before = c->authed ? "" : " before the handshake completed";

	c->busy++;
	e.why = c->p.tls ? tls_why(c->io) : "";
	/* Before the handshake, TLS may know why the server hung up (TLS 1.3 alerts). */
	if (e.why[0] && (c->phase == CONNECT_STREAM || c->phase == CONNECT_HANDSHAKE)) {
		e.how = CONNECT_TLS_FAILED;
		connect_end(c, &e, "tls", "TLS failure at %s (%s): %s", c->server, c->ip, e.why);
	} else if (err) {
		connect_end(c, &e, "closed", "connection to %s (%s) lost%s: %s", c->server, c->ip,
		    before, strerror(err));
	} else {
		connect_end(
		    c, &e, "closed", "connection closed by %s (%s)%s", c->server, c->ip, before);
	}
	connect_leave(c);
}

static const struct io_handler connect_io = {
    connect_io_connected, connect_io_data, connect_io_closed, connect_io_secured};

static void
connect_step_expired(void *arg)
{
	struct connect *c = arg;
	struct connect_end e = {.how = CONNECT_TIMEOUT};

	c->busy++;
	if (c->phase == CONNECT_TCP || c->phase == CONNECT_TLS) {
		e.address = 1;
		connect_end(c, &e, "timeout",
		    "no answer from %s (%s) within %u s (connect-timeout%s)", c->server, c->ip,
		    c->p.connect_timeout, c->p.tls ? ", TLS included" : "");
	} else if (c->phase == CONNECT_CLOSING) {
		connect_end(c, &e, "timeout", "no answer from %s to </stream:stream>", c->server);
	} else {
		connect_end(c, &e, "timeout",
		    "no handshake from %s within %u s (handshake-timeout)", c->server,
		    c->p.handshake_timeout);
	}
	connect_leave(c);
}

/* Stream */

static int
connect_x_open(void *arg, const struct xs_elem *hdr)
{
	struct connect *c = arg;
	struct connect_end e = {.how = CONNECT_DIGEST};
	const char *id = xs_attr(hdr, "id");
	char digest[DIGEST_HEXLEN + 1], *s;

	c->no_id = id == NULL || *id == '\0';
	if (c->h->header) {
		c->h->header(c->arg, xs_attr(hdr, "from"), c->no_id ? NULL : id);
		if (c->freed)
			return -1;
		if (c->phase != CONNECT_STREAM)
			return 0; /* the user closes instead */
	}
	/* Prosody opens an early stream error with id='': read on, to report that error. */
	if (c->no_id)
		return 0;
	if (digest_handshake(id, c->p.secret, digest) == -1) {
		connect_end(c, &e, "stream", "cannot compute the handshake digest");
		return -1;
	}
	s = xasprintf("<handshake>%s</handshake>", digest);
	if (io_write(c->io, s, strlen(s)) == -1)
		log_warnx("%s: write queue full", c->server);
	util_wipe(s, strlen(s));
	free(s);
	util_wipe(digest, sizeof(digest));
	c->phase = CONNECT_HANDSHAKE;
	return 0;
}

/* The server's <stream:error>, in the operator's words. */
static void
connect_stream_error(struct connect *c, const struct xs_elem *el)
{
	struct connect_end e = {.how = CONNECT_STREAM_ERROR};
	const char *cond = NULL, *text = NULL, *sep = "", *close = "";
	const struct xs_elem *other;

	xs_stream_error_parse(el, &cond, &text);
	e.condition = cond = cond ? cond : "undefined-condition";
	e.detail = text;
	if (strcmp(cond, "not-authorized") == 0) {
		connect_end(c, &e, "auth", "authentication failure at %s (not-authorized%s%s)",
		    c->server, text ? ": " : "", text ? text : "");
	} else if (strcmp(cond, "conflict") == 0) {
		if (text) {
			sep = " (";
			close = ")";
		}
		connect_end(c, &e, "conflict",
		    "conflict at %s: %s is already connected there%s%s%s", c->server, c->component,
		    sep, text ? text : "", close);
	} else if ((other = xs_child(el, "see-other-host", XS_NS_STREAM_ERRORS)) != NULL) {
		e.see_other_host = 1;
		e.host = other->text;
		connect_end(c, &e, "stream", "stream error from %s: see-other-host %s", c->server,
		    other->text ? other->text : "(no host)");
	} else {
		connect_end(c, &e, "stream", "stream error from %s: %s%s%s", c->server, cond,
		    text ? ": " : "", text ? text : "");
	}
}

static int
connect_x_stanza(void *arg, const struct xs_elem *el, const char *raw, size_t rawlen)
{
	struct connect *c = arg;
	struct connect_end e = {.how = CONNECT_NO_ID};

	if (strcmp(el->ns, XS_NS_STREAMS) == 0 && strcmp(el->name, "error") == 0) {
		connect_stream_error(c, el);
		return -1;
	}
	if (c->no_id) {
		connect_end(c, &e, "stream", "%s sent a stream header without an id", c->server);
		return -1;
	}
	if (c->authed) {
		if (c->h->stanza)
			c->h->stanza(c->arg, el, raw, rawlen);
	} else if (c->phase == CONNECT_HANDSHAKE && strcmp(el->name, "handshake") == 0) {
		timer_cancel(loop_timers(c->loop), &c->t_step);
		c->authed = 1;
		c->phase = CONNECT_SESSION;
		if (c->h->authenticated)
			c->h->authenticated(c->arg);
	} else {
		log_debug("%s: <%s/> before the handshake, ignored", c->server, el->name);
	}
	return c->freed ? -1 : 0;
}

static int
connect_x_close(void *arg)
{
	struct connect *c = arg;
	struct connect_end e = {.how = CONNECT_STREAM_END};

	connect_end(c, &e, "closed", "%s (%s) closed the stream", c->server, c->ip);
	return -1;
}

static void
connect_x_error(void *arg, const char *cond, const char *text)
{
	struct connect *c = arg;
	struct connect_end e = {.how = CONNECT_BAD_XML, .condition = cond, .detail = text};
	/* The text tells the server's operator which limit or rule was broken. */
	char *s = xs_stream_error(cond, text);

	/* Let the error reach the server: the io closes itself once it is written. */
	io_write(c->io, s, strlen(s));
	free(s);
	io_close_after_flush(c->io);
	c->io = NULL;
	connect_end(c, &e, "stream", "%s sent bad XML: %s (%s)", c->server, text, cond);
}

static const struct xs_handler connect_xs = {
    connect_x_open, connect_x_stanza, connect_x_close, connect_x_error};

/* The user's side */

int
connect_write(struct connect *c, const char *p, size_t n)
{
	if (c->io == NULL)
		return -1;
	return io_write(c->io, p, n);
}

void
connect_close(struct connect *c, unsigned ms)
{
	static const char end[] = "</stream:stream>";

	if (connect_write(c, end, sizeof(end) - 1) == -1)
		log_warnx("%s: write queue full", c->server);
	c->phase = CONNECT_CLOSING;
	timer_add(loop_timers(c->loop), &c->t_step, ms);
}

enum connect_phase
connect_phase(const struct connect *c)
{
	return c->phase;
}

int
connect_fd(const struct connect *c)
{
	return c->io ? io_fd(c->io) : -1;
}

void
connect_free(struct connect *c)
{
	if (c == NULL)
		return;
	timer_cancel(loop_timers(c->loop), &c->t_step);
	io_free(c->io);
	c->io = NULL;
	xs_free(c->xs);
	c->xs = NULL;
	if (c->busy) {
		c->freed = 1;
		return;
	}
	connect_destroy(c);
}

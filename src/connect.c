/*
 * connect: one client session of XEP-0114 to one node, for the agent and
 * probe (see connect.h). The deadline of each step is one timer:
 * connect-timeout from the race's first TCP connect through TLS, then
 * handshake-timeout from the stream header to <handshake/>. The race
 * (RFC 8305 section 5) has a timer of its own, for the next attempt. The
 * user's callbacks may free the session; the free then waits until the io
 * callback or timer that called them returns, as io_free does.
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

/* RFC 8305 section 8: the recommended Connection Attempt Delay. */
#define CONNECT_ATTEMPT_DELAY_MS 250

enum connect_try_state {
	CONNECT_TRY_WAITING,
	CONNECT_TRY_RUNNING,
	CONNECT_TRY_FAILED,
	CONNECT_TRY_WON
};

/* One address's attempt in the race. */
struct connect_try {
	struct connect *c;
	char ip[DNS_IP_MAX];
	enum connect_try_state state;
	struct io *io; /* while CONNECT_TRY_RUNNING */
	int err;       /* CONNECT_TRY_FAILED: errno */
	uint64_t started;
};

struct connect {
	struct loop *loop;
	struct connect_params p;
	char server[300];
	char ip[DNS_IP_MAX]; /* the winner, or the first address */
	char *component;
	struct connect_try *tries;
	size_t ntries, next; /* next: the first not started */
	uint64_t t0;         /* the race's start */
	struct timer t_next; /* the next attempt */
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
static const struct io_handler connect_try_io;
static void connect_step_expired(void *);
static void connect_next_expired(void *);
static void connect_secure(struct connect *);
static const struct xs_handler connect_xs;

/* Close the attempts still running, and start no more. */
static void
connect_race_stop(struct connect *c)
{
	size_t i;

	timer_cancel(loop_timers(c->loop), &c->t_next);
	for (i = 0; i < c->ntries; i++) {
		io_free(c->tries[i].io);
		c->tries[i].io = NULL;
	}
}

static void
connect_destroy(struct connect *c)
{
	free(c->component);
	free(c->tries);
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
	connect_race_stop(c);
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
	struct connect *c;
	size_t i;

	if (p->naddrs == 0) {
		errno = EINVAL;
		return NULL;
	}
	c = xcalloc(1, sizeof(*c));
	c->loop = loop;
	c->p = *p;
	snprintf(c->server, sizeof(c->server), "%s", p->server);
	c->tries = xcalloc(p->naddrs, sizeof(*c->tries));
	c->ntries = p->naddrs;
	for (i = 0; i < c->ntries; i++) {
		c->tries[i].c = c;
		snprintf(c->tries[i].ip, sizeof(c->tries[i].ip), "%s", p->addrs[i].ip);
	}
	c->p.addrs = NULL;
	snprintf(c->ip, sizeof(c->ip), "%s", c->tries[0].ip);
	c->component = xstrdup(p->component);
	c->h = h;
	c->arg = arg;
	c->phase = CONNECT_TCP;
	c->t0 = util_now_ms();
	timer_init(&c->t_step, connect_step_expired, c);
	timer_init(&c->t_next, connect_next_expired, c);
	timer_add(loop_timers(loop), &c->t_step, p->connect_timeout * 1000ull);
	/* The first attempt from the loop: every callback runs outside connect_new. */
	timer_add(loop_timers(loop), &c->t_next, 0);
	return c;
}

/* The race (RFC 8305 section 5) */

/* Tell the user of one attempt; 0, or -1 when the user freed the session meanwhile. */
static int
connect_tell(
    struct connect *c, struct connect_try *t, enum connect_attempt_what what, const char *other)
{
	struct connect_attempt a = {.what = what, .ip = t->ip, .err = t->err};
	uint64_t now = util_now_ms();

	a.ms = (unsigned)(now - t->started);
	a.race_ms = (unsigned)(now - c->t0);
	if (what == CONNECT_ATTEMPT_STARTED)
		a.pending = other;
	else
		a.winner = other;
	if (c->h->attempt)
		c->h->attempt(c->arg, &a);
	return c->freed ? -1 : 0;
}

/* The earliest attempt still waiting for its answer, or NULL. */
static const char *
connect_pending(const struct connect *c)
{
	size_t i;

	for (i = 0; i < c->ntries; i++)
		if (c->tries[i].state == CONNECT_TRY_RUNNING)
			return c->tries[i].ip;
	return NULL;
}

/* Start t's TCP connect: 0, or -1 when it failed at once (or the user freed us). */
static int
connect_try_start(struct connect *c, struct connect_try *t)
{
	t->started = util_now_ms();
	if (connect_tell(c, t, CONNECT_ATTEMPT_STARTED, connect_pending(c)) == -1)
		return -1;
	t->io = io_connect(c->loop, t->ip, c->p.port, c->p.outmax, &connect_try_io, t);
	if (t->io != NULL) {
		t->state = CONNECT_TRY_RUNNING;
		return 0;
	}
	t->state = CONNECT_TRY_FAILED;
	t->err = errno;
	connect_tell(c, t, CONNECT_ATTEMPT_FAILED, NULL);
	return -1;
}

/* Each address with how its attempt ended: "::1 (no answer), 127.0.0.2 (Connection refused)". */
static void
connect_race_words(const struct connect *c, char *buf, size_t len)
{
	size_t i, used = 0;
	const char *how;

	buf[0] = '\0';
	for (i = 0; i < c->ntries && used < len; i++) {
		const struct connect_try *t = &c->tries[i];

		how = t->state == CONNECT_TRY_FAILED    ? strerror(t->err)
		      : t->state == CONNECT_TRY_RUNNING ? "no answer"
		                                        : "not tried";
		used += snprintf(buf + used, len - used, "%s%s (%s)", i ? ", " : "", t->ip, how);
	}
}

/* Every address's connect failed. */
static void
connect_race_lost(struct connect *c)
{
	struct connect_end e = {.how = CONNECT_REFUSED, .err = c->tries[c->ntries - 1].err};
	char words[600];

	if (c->ntries == 1) {
		connect_end(c, &e, "connect", "cannot connect to %s (%s): %s", c->server, c->ip,
		    strerror(e.err));
		return;
	}
	connect_race_words(c, words, sizeof(words));
	connect_end(c, &e, "connect", "cannot connect to %s at any address: %s", c->server, words);
}

/*
 * Start the next attempt: the next address's, and the one after it too when
 * that fails at once. The race is lost when none is left and none runs.
 */
static void
connect_race_next(struct connect *c)
{
	timer_cancel(loop_timers(c->loop), &c->t_next);
	while (c->next < c->ntries) {
		if (connect_try_start(c, &c->tries[c->next++]) == 0) {
			if (c->next < c->ntries)
				timer_add(
				    loop_timers(c->loop), &c->t_next, CONNECT_ATTEMPT_DELAY_MS);
			return;
		}
		if (c->freed)
			return;
	}
	if (connect_pending(c) == NULL)
		connect_race_lost(c);
}

static void
connect_next_expired(void *arg)
{
	struct connect *c = arg;

	c->busy++;
	connect_race_next(c);
	connect_leave(c);
}

/* t connected first: the session goes on over its io, the others are closed. */
static void
connect_race_won(struct connect *c, struct connect_try *t)
{
	size_t i;

	timer_cancel(loop_timers(c->loop), &c->t_next);
	c->io = t->io;
	t->io = NULL;
	t->state = CONNECT_TRY_WON;
	io_set_handler(c->io, &connect_io, c);
	snprintf(c->ip, sizeof(c->ip), "%s", t->ip);
	if (connect_tell(c, t, CONNECT_ATTEMPT_WON, NULL) == -1)
		return;
	for (i = 0; i < c->ntries; i++) {
		if (c->tries[i].state != CONNECT_TRY_RUNNING)
			continue;
		io_free(c->tries[i].io);
		c->tries[i].io = NULL;
		c->tries[i].state = CONNECT_TRY_FAILED;
		c->tries[i].err = ECANCELED;
		if (connect_tell(c, &c->tries[i], CONNECT_ATTEMPT_ABANDONED, t->ip) == -1)
			return;
	}
	if (c->h->connected)
		c->h->connected(c->arg);
	if (!c->freed)
		connect_secure(c);
}

/* One attempt's TCP connect finished. */
static void
connect_try_connected(void *arg, int err)
{
	struct connect_try *t = arg;
	struct connect *c = t->c;

	c->busy++;
	if (err == 0) {
		connect_race_won(c, t);
	} else {
		io_free(t->io);
		t->io = NULL;
		t->state = CONNECT_TRY_FAILED;
		t->err = err;
		/* RFC 8305: a failed attempt starts the next one at once. */
		if (connect_tell(c, t, CONNECT_ATTEMPT_FAILED, NULL) == 0)
			connect_race_next(c);
	}
	connect_leave(c);
}

/* Only connected is called before the race is won; the winner moves to connect_io. */
static const struct io_handler connect_try_io = {connect_try_connected, NULL, NULL, NULL};

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

/* The winner's io, from TLS on (its connect was connect_try_io's). */
static const struct io_handler connect_io = {
    NULL, connect_io_data, connect_io_closed, connect_io_secured};

/* connect-timeout ended the race: each address's fate. */
static void
connect_race_timeout(struct connect *c, struct connect_end *e)
{
	char words[600];

	connect_race_words(c, words, sizeof(words));
	connect_end(c, e, "timeout", "no answer from %s within %u s (connect-timeout%s): %s",
	    c->server, c->p.connect_timeout, c->p.tls ? ", TLS included" : "", words);
}

static void
connect_step_expired(void *arg)
{
	struct connect *c = arg;
	struct connect_end e = {.how = CONNECT_TIMEOUT};

	c->busy++;
	if (c->phase == CONNECT_TCP && c->ntries > 1) {
		connect_race_timeout(c, &e);
	} else if (c->phase == CONNECT_TCP || c->phase == CONNECT_TLS) {
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

const char *
connect_ip(const struct connect *c)
{
	return c->ip;
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
	connect_race_stop(c);
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

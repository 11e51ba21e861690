/*
 * probe: "xcomp probe" walks one attempt at each node the way the agent
 * makes it, with the same resolver, io, TLS, stream parser and digest, and
 * prints every step with its time. It runs inside the loop like the agent
 * (nothing blocks), one node after the other so that each step's time is
 * that step's alone. Node transitions go through a zero-delay timer, never
 * from inside an io or parser callback, so that a parser is never freed
 * while it is feeding.
 */
#include <sys/socket.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "digest.h"
#include "dns.h"
#include "io.h"
#include "probe.h"
#include "status.h"
#include "srv.h"
#include "tls.h"
#include "util.h"
#include "xs.h"

#define OUT_MAX (64u * 1024)
/* libunbound retries for minutes; an operator waiting at a prompt should not. */
#define DNS_TIMEOUT_MS 15000
/* As the agent's stop: a moment for the server's </stream:stream>. */
#define CLOSE_WAIT_MS 1000
/* Continuation lines start under the text of a step line. */
#define INDENT 26

enum step {
	STEP_SRV,
	STEP_DNS,
	STEP_CONNECT,
	STEP_TLS,
	STEP_STREAM,
	STEP_HANDSHAKE,
	STEP_CLOSE,
};

static const char *const step_names[] = {
    "DNS", "DNS", "TCP connect", "TLS", "stream header", "handshake", "close"};

struct pnode {
	char target[SRV_TARGET_MAX];
	int port;
	const char *result; /* NULL: not tried or passed; else the error code */
};

struct probe {
	struct loop *loop;
	struct probe_opts o;
	const struct conf *conf;
	FILE *out;
	struct dns *dns;
	struct tls_ctx *tls; /* with tls = direct */

	struct pnode *nodes;
	size_t nnodes, cur;
	struct dns_query *q;
	struct dns_hint *hint; /* the SRV name's usual misspellings */
	struct dns_addr *addrs;
	size_t naddrs, addr;
	struct io *io;
	struct xs *xs;
	enum step step;
	uint64_t t0; /* when the current step began */
	char server[SRV_TARGET_MAX + 8];
	const char *note; /* said with the node's result */
	struct timer t_step, t_next;

	unsigned passed, failed;
	int srv_failed;
	int config_error;
};

static const struct io_handler probe_io;
static const struct xs_handler probe_xs;
static void node_start(struct probe *);
static void connect_addr(struct probe *);

/* Output */

/* "cb1.tptac9.com:5223", "[2001:db8::1]:5223". */
static const char *
node_name(const struct pnode *n, char *buf, size_t len)
{
	snprintf(buf, len, strchr(n->target, ':') ? "[%s]:%d" : "%s:%d", n->target, n->port);
	return buf;
}

static void
begin(struct probe *p, enum step s)
{
	p->step = s;
	p->t0 = util_now_ms();
}

static void step_line(struct probe *, const char *, ...) __attribute__((format(printf, 2, 3)));
static void more(struct probe *, const char *, ...) __attribute__((format(printf, 2, 3)));

/* The step's name, the milliseconds since it began, what happened. */
static void
step_line(struct probe *p, const char *fmt, ...)
{
	va_list ap;

	fprintf(p->out, "  %-13s %5llu ms  ", step_names[p->step],
	    (unsigned long long)(util_now_ms() - p->t0));
	va_start(ap, fmt);
	vfprintf(p->out, fmt, ap);
	va_end(ap);
	fputc('\n', p->out);
}

/* A further line of the same step, under its text. */
static void
more(struct probe *p, const char *fmt, ...)
{
	va_list ap;

	fprintf(p->out, "%*s", INDENT, "");
	va_start(ap, fmt);
	vfprintf(p->out, fmt, ap);
	va_end(ap);
	fputc('\n', p->out);
}

void
probe_expiry_words(time_t not_after, time_t now, char *buf, size_t len)
{
	long long days;

	if (not_after < now) {
		days = (long long)(now - not_after) / 86400;
		snprintf(buf, len, "expired %lld day%s ago", days, days == 1 ? "" : "s");
	} else {
		days = (long long)(not_after - now) / 86400;
		snprintf(buf, len, "expires in %lld day%s", days, days == 1 ? "" : "s");
	}
}

/* Node ends */

static void
node_end(struct probe *p)
{
	struct timerq *tq = loop_timers(p->loop);

	timer_cancel(tq, &p->t_step);
	if (p->q)
		dns_cancel(p->dns, p->q);
	p->q = NULL;
	/* Deferred by io when inside its callback; the parser goes in advance(). */
	io_free(p->io);
	p->io = NULL;
	free(p->addrs);
	p->addrs = NULL;
	p->naddrs = 0;
	timer_add(tq, &p->t_next, 0);
}

static void
node_passed(struct probe *p)
{
	fprintf(p->out, "Result: %s passed%s%s.\n", p->server, p->note ? ": " : "",
	    p->note ? p->note : "");
	p->passed++;
	node_end(p);
}

/* The man page's section for an error code: "auth" -> "AUTH". */
static void
print_section(struct probe *p, const char *code)
{
	char up[16];

	status_section(code, up, sizeof(up));
	fprintf(p->out, "  See xcomp-troubleshooting(7), section %s.\n", up);
}

/* The node failed at the current step, which has said why. */
static void
node_failed(struct probe *p, const char *code)
{
	print_section(p, code);
	fprintf(p->out, "Result: %s failed at the %s step (%s).\n", p->server, step_names[p->step],
	    code);
	p->nodes[p->cur].result = code;
	p->failed++;
	if (strcmp(code, "config") == 0)
		p->config_error = 1;
	node_end(p);
}

static void
finish(struct probe *p)
{
	char name[SRV_TARGET_MAX + 8];
	size_t i;
	int first = 1;

	if (p->srv_failed) {
		fprintf(p->out, "\nSummary: the SRV lookup failed; no node probed.\n");
	} else {
		fprintf(p->out, "\nSummary: %zu node%s probed, %u passed, %u failed", p->nnodes,
		    p->nnodes == 1 ? "" : "s", p->passed, p->failed);
		for (i = 0; i < p->nnodes; i++)
			if (p->nodes[i].result) {
				fprintf(p->out, "%s%s (%s)", first ? ": " : ", ",
				    node_name(&p->nodes[i], name, sizeof(name)),
				    p->nodes[i].result);
				first = 0;
			}
		fprintf(p->out, ".\n");
	}
	fflush(p->out);
	loop_break(p->loop);
}

/* Zero-delay timer: the next node, or the end, outside every callback. */
static void
advance(void *arg)
{
	struct probe *p = arg;

	xs_free(p->xs);
	p->xs = NULL;
	if (!p->srv_failed && p->cur + 1 < p->nnodes) {
		p->cur++;
		node_start(p);
		return;
	}
	finish(p);
}

/* Connect and TLS */

/* This address failed; try the node's next one, as the agent does. */
static void connect_failed(struct probe *, const char *code, const char *, ...)
    __attribute__((format(printf, 3, 4)));

static void
connect_failed(struct probe *p, const char *code, const char *fmt, ...)
{
	char why[800];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	step_line(p, "FAILED: %s", why);
	timer_cancel(loop_timers(p->loop), &p->t_step);
	io_free(p->io);
	p->io = NULL;
	if (p->addr + 1 < p->naddrs) {
		p->addr++;
		connect_addr(p);
		return;
	}
	node_failed(p, code);
}

static const char *
cur_ip(const struct probe *p)
{
	return p->addrs[p->addr].ip;
}

static void
connect_addr(struct probe *p)
{
	struct pnode *n = &p->nodes[p->cur];

	begin(p, STEP_CONNECT);
	p->io = io_connect(p->loop, cur_ip(p), n->port, OUT_MAX, &probe_io, p);
	if (p->io == NULL) {
		connect_failed(p, "connect", "cannot connect to %s (%s): %s", p->server, cur_ip(p),
		    strerror(errno));
		return;
	}
	/* Covers TLS too, as for the agent: the timer runs on until the stream starts. */
	timer_add(loop_timers(p->loop), &p->t_step, p->conf->connect_timeout * 1000ull);
}

static void
print_cert(struct probe *p, size_t i, const struct tls_cert *c, time_t now)
{
	char from[32], to[32], words[64];

	util_iso_time(c->not_before, from, sizeof(from));
	util_iso_time(c->not_after, to, sizeof(to));
	if (c->not_before > now)
		snprintf(words, sizeof(words), "not valid yet");
	else
		probe_expiry_words(c->not_after, now, words, sizeof(words));
	more(p, "%zu. subject  %s", i + 1, c->subject);
	more(p, "   issuer   %s", c->issuer);
	more(p, "   valid    %s to %s (%s)", from, to, words);
	if (c->san[0])
		more(p, "   SAN      %s", c->san);
}

static void
print_chain(struct probe *p, const struct tls_info *ti)
{
	time_t now = time(NULL);
	size_t i;

	if (ti->nchain == 0) {
		more(p, "no certificate received");
		return;
	}
	more(p, "certificate chain as received, %zu certificate%s, leaf first:", ti->nchain,
	    ti->nchain == 1 ? "" : "s");
	for (i = 0; i < ti->nchain; i++)
		print_cert(p, i, &ti->chain[i], now);
}

/* The names the agent accepts: tls-name, else the domain or the node's own name. */
static const char *
tls_alt(const struct probe *p)
{
	return p->conf->tls_name ? NULL : p->nodes[p->cur].target;
}

static void
start_stream(struct probe *p)
{
	struct xs_limits lim;
	char *h;

	begin(p, STEP_STREAM);
	xs_limits_default(&lim);
	p->xs = xs_new(XS_NS_COMPONENT, &lim, &probe_xs, p);
	h = xs_header(p->conf->component, NULL, NULL);
	io_write(p->io, h, strlen(h));
	free(h);
	timer_add(loop_timers(p->loop), &p->t_step, p->conf->handshake_timeout * 1000ull);
}

static void
on_connected(void *arg, int err)
{
	struct probe *p = arg;
	char why[512];

	if (err) {
		connect_failed(p, "connect", "cannot connect to %s (%s): %s", p->server, cur_ip(p),
		    strerror(err));
		return;
	}
	step_line(p, "connected to %s port %d", cur_ip(p), p->nodes[p->cur].port);
	if (p->tls == NULL) {
		start_stream(p);
		return;
	}
	begin(p, STEP_TLS);
	if (tls_client(p->io, p->tls, conf_tls_name(p->conf), tls_alt(p), why, sizeof(why)) == -1) {
		step_line(p, "FAILED: TLS failure at %s: %s", p->server, why);
		node_failed(p, "tls");
	}
}

static void
on_secured(void *arg, int err)
{
	struct probe *p = arg;
	const char *alt = tls_alt(p);
	struct tls_info ti;

	tls_info(p->io, &ti);
	if (err) {
		step_line(
		    p, "FAILED: TLS failure at %s (%s): %s", p->server, cur_ip(p), tls_why(p->io));
		if (ti.version[0])
			more(p, "version %s", ti.version);
		print_chain(p, &ti);
		node_failed(p, "tls");
		return;
	}
	step_line(p, "%s, cipher %s", ti.version, ti.cipher);
	print_chain(p, &ti);
	more(p, "verified: the chain leads to a CA in %s, and the certificate is for %s%s%s",
	    p->conf->tls_ca ? p->conf->tls_ca : "the system's trust store", conf_tls_name(p->conf),
	    alt ? " or " : "", alt ? alt : "");
	start_stream(p);
}

static void
on_data(void *arg, const char *data, size_t len)
{
	struct probe *p = arg;

	if (p->xs != NULL)
		xs_feed(p->xs, data, len);
}

static void
on_closed(void *arg, int err)
{
	struct probe *p = arg;
	const char *why = p->tls ? tls_why(p->io) : "";

	if (p->step == STEP_CLOSE) {
		step_line(p, "the server closed the connection");
		node_passed(p);
		return;
	}
	/* TLS 1.3: a refused client certificate shows after our side of the handshake. */
	if (why[0] && (p->step == STEP_STREAM || p->step == STEP_HANDSHAKE)) {
		step_line(p, "FAILED: TLS failure at %s (%s): %s", p->server, cur_ip(p), why);
		more(p, "(with TLS 1.3 a server judges the client certificate after the TLS "
		        "step has passed, so its refusal shows here)");
		node_failed(p, "tls");
		return;
	}
	if (err)
		step_line(p, "FAILED: connection to %s (%s) lost: %s", p->server, cur_ip(p),
		    why[0] ? why : strerror(err));
	else
		step_line(p, "FAILED: connection closed by %s (%s) before the handshake completed",
		    p->server, cur_ip(p));
	node_failed(p, "closed");
}

static const struct io_handler probe_io = {on_connected, on_data, on_closed, on_secured};

/* Stream */

/*
 * Whether the running agent holds its session on this node: the status
 * file names the node, or its address and port (HOST given as an address).
 */
static int
agent_here(const struct probe *p)
{
	const char *srv = p->o.agent_server, *colon;
	char name[SRV_TARGET_MAX + 8];
	const struct pnode *n = &p->nodes[p->cur];

	if (srv == NULL)
		return 0;
	snprintf(name, sizeof(name), "%s:%d", n->target, n->port);
	if (strcasecmp(name, srv) == 0)
		return 1;
	colon = strrchr(srv, ':');
	return colon != NULL && atoi(colon + 1) == n->port && p->o.agent_address != NULL &&
	       strcmp(p->o.agent_address, cur_ip(p)) == 0;
}

static void
close_politely(struct probe *p)
{
	static const char end[] = "</stream:stream>";

	begin(p, STEP_CLOSE);
	io_write(p->io, end, sizeof(end) - 1);
	timer_add(loop_timers(p->loop), &p->t_step, CLOSE_WAIT_MS);
}

static int
send_handshake(struct probe *p, const char *id)
{
	char digest[DIGEST_HEXLEN + 1], *s;

	if (digest_handshake(id, p->conf->secret, digest) == -1) {
		step_line(p, "FAILED: cannot compute the handshake digest");
		node_failed(p, "stream");
		return -1;
	}
	s = xasprintf("<handshake>%s</handshake>", digest);
	io_write(p->io, s, strlen(s));
	util_wipe(s, strlen(s));
	free(s);
	util_wipe(digest, sizeof(digest));
	return 0;
}

static int
x_open(void *arg, const struct xs_elem *hdr)
{
	struct probe *p = arg;
	const char *id = xs_attr(hdr, "id"), *from = xs_attr(hdr, "from");

	if (id == NULL || *id == '\0') {
		step_line(p, "FAILED: %s sent a stream header without an id", p->server);
		node_failed(p, "stream");
		return -1;
	}
	step_line(p, "from %s, id %s", from ? from : "(no from)", id);
	begin(p, STEP_HANDSHAKE);
	if (agent_here(p)) {
		/* kick-new refuses a second session, kick-old drops the agent's: ask neither. */
		step_line(p, "not sent: the agent holds the session here");
		p->note = "the agent holds the session here";
		close_politely(p);
		return 0;
	}
	if (p->conf->secret == NULL) {
		step_line(p, "FAILED: not attempted: %s", p->o.secret_why);
		node_failed(p, "config");
		return -1;
	}
	return send_handshake(p, id);
}

static void
stream_error(struct probe *p, const struct xs_elem *e)
{
	const char *cond = NULL, *text = NULL;
	const struct xs_elem *c;

	xs_stream_error_parse(e, &cond, &text);
	cond = cond ? cond : "undefined-condition";
	if (strcmp(cond, "conflict") == 0 && agent_here(p)) {
		step_line(p, "conflict: the agent holds the session here");
		p->note = "the agent holds the session here";
		node_passed(p);
	} else if (strcmp(cond, "conflict") == 0) {
		step_line(p, "FAILED: conflict at %s: %s is already connected there%s%s%s",
		    p->server, p->conf->component, text ? " (" : "", text ? text : "",
		    text ? ")" : "");
		node_failed(p, "conflict");
	} else if (strcmp(cond, "not-authorized") == 0) {
		step_line(p, "FAILED: authentication failure at %s (not-authorized%s%s)", p->server,
		    text ? ": " : "", text ? text : "");
		node_failed(p, "auth");
	} else if ((c = xs_child(e, "see-other-host", XS_NS_STREAM_ERRORS)) != NULL) {
		step_line(p,
		    "FAILED: stream error from %s: see-other-host %s; the agent would try it next",
		    p->server, c->text ? c->text : "(no host)");
		node_failed(p, "stream");
	} else {
		step_line(p, "FAILED: stream error from %s: %s%s%s", p->server, cond,
		    text ? ": " : "", text ? text : "");
		node_failed(p, "stream");
	}
}

static int
x_stanza(void *arg, const struct xs_elem *e, const char *raw, size_t rawlen)
{
	struct probe *p = arg;

	(void)raw;
	(void)rawlen;
	if (strcmp(e->ns, XS_NS_STREAMS) == 0 && strcmp(e->name, "error") == 0) {
		if (p->step == STEP_CLOSE) {
			step_line(p, "the server ended with a stream error");
			node_passed(p);
		} else
			stream_error(p, e);
		return -1;
	}
	if (p->step == STEP_HANDSHAKE && strcmp(e->name, "handshake") == 0) {
		step_line(p, "accepted: %s is authenticated", p->conf->component);
		close_politely(p);
	}
	/* Anything else (a stanza routed to us meanwhile) is not the probe's business. */
	return 0;
}

static int
x_close(void *arg)
{
	struct probe *p = arg;

	if (p->step == STEP_CLOSE) {
		step_line(p, "the server closed its stream too");
		node_passed(p);
		return -1;
	}
	step_line(p, "FAILED: %s (%s) closed the stream before the handshake completed", p->server,
	    cur_ip(p));
	node_failed(p, "closed");
	return -1;
}

static void
x_error(void *arg, const char *cond, const char *text)
{
	struct probe *p = arg;

	if (p->step == STEP_CLOSE) {
		step_line(p, "the server ended with bad XML: %s (%s)", text, cond);
		node_passed(p);
		return;
	}
	step_line(p, "FAILED: %s sent bad XML: %s (%s)", p->server, text, cond);
	node_failed(p, "stream");
}

static const struct xs_handler probe_xs = {x_open, x_stanza, x_close, x_error};

/* Timeouts */

static void
srv_failed(struct probe *p, const char *code)
{
	print_section(p, code);
	p->srv_failed = 1;
	timer_add(loop_timers(p->loop), &p->t_next, 0);
}

static void add_node(struct probe *, const char *host, int port);

/* HOST given without a port, and the SRV records cannot tell its port. */
static void
host_at_conf_port(struct probe *p)
{
	more(p, "probing %s at the configured port %u", p->o.host, p->conf->port);
	add_node(p, p->o.host, (int)p->conf->port);
	p->cur = 0;
	node_start(p);
}

static void
step_expired(void *arg)
{
	struct probe *p = arg;
	const struct conf *c = p->conf;

	switch (p->step) {
	case STEP_SRV:
	case STEP_DNS:
		step_line(
		    p, "FAILED: no answer from the resolver within %d s", DNS_TIMEOUT_MS / 1000);
		if (p->q)
			dns_cancel(p->dns, p->q);
		p->q = NULL;
		dns_hint_cancel(p->dns, p->hint);
		p->hint = NULL;
		if (p->step == STEP_SRV && p->o.host != NULL)
			host_at_conf_port(p);
		else if (p->step == STEP_SRV)
			srv_failed(p, "dns");
		else
			node_failed(p, "dns");
		break;
	case STEP_CONNECT:
		connect_failed(p, "timeout", "no answer from %s (%s) within %u s (connect-timeout)",
		    p->server, cur_ip(p), c->connect_timeout);
		break;
	case STEP_TLS:
		connect_failed(p, "timeout",
		    "no TLS handshake with %s (%s) within %u s (connect-timeout, TLS included)",
		    p->server, cur_ip(p), c->connect_timeout);
		break;
	case STEP_STREAM:
	case STEP_HANDSHAKE:
		step_line(p, "FAILED: no %s from %s within %u s (handshake-timeout)",
		    p->step == STEP_STREAM ? "stream header" : "handshake", p->server,
		    c->handshake_timeout);
		node_failed(p, "timeout");
		break;
	case STEP_CLOSE:
		step_line(
		    p, "no answer to </stream:stream> within %d ms; closed anyway", CLOSE_WAIT_MS);
		node_passed(p);
		break;
	}
}

/* DNS */

static void
on_addrs(void *arg, const struct dns_addr_result *r)
{
	struct probe *p = arg;
	char list[512], msg[DNS_WHY_MAX + 300];
	size_t i, used = 0;

	p->q = NULL;
	timer_cancel(loop_timers(p->loop), &p->t_step);
	if (r->status != DNS_OK) {
		dns_addr_failure(r->name, r->why, msg, sizeof(msg));
		step_line(p, "FAILED: %s", msg);
		node_failed(p, r->status == DNS_BOGUS ? "dnssec" : "dns");
		return;
	}
	list[0] = '\0';
	for (i = 0; i < r->n && used < sizeof(list); i++)
		used += snprintf(
		    list + used, sizeof(list) - used, "%s%s", i ? ", " : "", r->addrs[i].ip);
	step_line(
	    p, "%s: %s (TTL %u s%s)", r->name, list, r->ttl, r->secure ? ", DNSSEC validated" : "");
	p->addrs = xcalloc(r->n, sizeof(*p->addrs));
	memcpy(p->addrs, r->addrs, r->n * sizeof(*p->addrs));
	p->naddrs = r->n;
	connect_addr(p);
}

static void
node_start(struct probe *p)
{
	struct pnode *n = &p->nodes[p->cur];
	struct dns_addr lit;

	node_name(n, p->server, sizeof(p->server));
	fprintf(p->out, "\nNode %zu of %zu: %s\n", p->cur + 1, p->nnodes, p->server);
	p->note = NULL;
	p->addr = 0;
	begin(p, STEP_DNS);
	if (dns_addr_literal(n->target, &lit) == 0) {
		p->addrs = xcalloc(1, sizeof(*p->addrs));
		p->addrs[0] = lit;
		p->naddrs = 1;
		step_line(p, "%s is an address: nothing to look up", n->target);
		connect_addr(p);
		return;
	}
	if (dns_addrs(p->dns, n->target, on_addrs, p, &p->q) == -1) {
		step_line(p, "FAILED: cannot ask for the addresses of %s", n->target);
		node_failed(p, "dns");
		return;
	}
	timer_add(loop_timers(p->loop), &p->t_step, DNS_TIMEOUT_MS);
}

static void
print_records(struct probe *p, const struct srv_rr *rrs, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		more(p, "priority %-5u weight %-5u port %-5u %s", rrs[i].priority, rrs[i].weight,
		    rrs[i].port, rrs[i].target);
}

/* What the usual misspellings of the SRV name hold; the SRV step has failed. */
static void
on_hint(void *arg, const struct dns_hint_result *h)
{
	struct probe *p = arg;
	char names[3 * SRV_TARGET_MAX];
	size_t i, used = 0;

	p->hint = NULL;
	timer_cancel(loop_timers(p->loop), &p->t_step);
	for (i = 0; i < h->nfound; i++) {
		step_line(p, "found %s instead: %s", h->found[i].v->name, h->found[i].v->why);
		print_records(p, h->found[i].rrs, h->found[i].n);
	}
	if (h->nfound == 0) {
		names[0] = '\0';
		for (i = 0; i < h->nasked && used < sizeof(names); i++)
			used += snprintf(names + used, sizeof(names) - used, "%s%s", i ? ", " : "",
			    h->asked[i].name);
		step_line(p, "no records under the usual misspellings either (%s)", names);
	}
	srv_failed(p, "dns");
}

/*
 * The SRV lookup failed. When the name has no records, look for them where
 * they are often published by mistake, before saying where to read.
 */
static void
srv_missing(struct probe *p, const struct dns_srv_result *r)
{
	const struct conf *c = p->conf;

	step_line(p, "FAILED: %s", r->why);
	if (r->status == DNS_NXDOMAIN || r->status == DNS_NODATA) {
		begin(p, STEP_SRV);
		if (dns_srv_hint(p->dns, c->service, c->domain, on_hint, p, &p->hint) == 0) {
			timer_add(loop_timers(p->loop), &p->t_step, DNS_TIMEOUT_MS);
			return;
		}
	}
	srv_failed(p, r->status == DNS_BOGUS ? "dnssec" : "dns");
}

/*
 * HOST given without a port: the port of each SRV record that names it, as
 * the agent would connect; the configuration's port when none does.
 */
static void
srv_host(struct probe *p, const struct dns_srv_result *r)
{
	const char *host = p->o.host;
	size_t i, j, hl = strlen(host);
	int dup;

	if (hl > 1 && host[hl - 1] == '.')
		hl--;
	for (i = 0; i < r->n; i++) {
		if (strlen(r->rrs[i].target) != hl || strncasecmp(r->rrs[i].target, host, hl) != 0)
			continue;
		for (dup = 0, j = 0; j < p->nnodes; j++)
			dup |= p->nodes[j].port == r->rrs[i].port;
		if (!dup)
			add_node(p, r->rrs[i].target, r->rrs[i].port);
	}
	if (p->nnodes > 0) {
		more(p, "%s is a target: probing the port%s of its record%s, as the agent would",
		    host, p->nnodes == 1 ? "" : "s", p->nnodes == 1 ? "" : "s");
		p->cur = 0;
		node_start(p);
	} else {
		more(p, "%s is not a target of these records", host);
		host_at_conf_port(p);
	}
}

static void
on_srv(void *arg, const struct dns_srv_result *r)
{
	struct probe *p = arg;
	size_t *order, i;

	p->q = NULL;
	timer_cancel(loop_timers(p->loop), &p->t_step);
	if (r->status != DNS_OK && p->o.host != NULL) {
		step_line(p, "%s", r->why);
		host_at_conf_port(p);
		return;
	}
	if (r->status != DNS_OK) {
		srv_missing(p, r);
		return;
	}
	step_line(p, "%s: %zu SRV record%s, TTL %u s%s%s", r->name, r->n, r->n == 1 ? "" : "s",
	    r->ttl, r->secure ? ", DNSSEC validated" : "",
	    r->nbad ? " (malformed records left out)" : "");
	print_records(p, r->rrs, r->n);
	if (p->o.host != NULL) {
		srv_host(p, r);
		return;
	}
	order = xcalloc(r->n, sizeof(*order));
	p->nnodes = srv_order(r->rrs, r->n, util_random_fn, NULL, order);
	p->nodes = xcalloc(p->nnodes ? p->nnodes : 1, sizeof(*p->nodes));
	for (i = 0; i < p->nnodes; i++) {
		snprintf(
		    p->nodes[i].target, sizeof(p->nodes[i].target), "%s", r->rrs[order[i]].target);
		p->nodes[i].port = r->rrs[order[i]].port;
	}
	free(order);
	more(p, "probed in an order the agent could try them (RFC 2782)");
	if (p->nnodes == 0) {
		more(p, "FAILED: no record names a node");
		srv_failed(p, "dns");
		return;
	}
	p->cur = 0;
	node_start(p);
}

/* Life cycle */

struct probe *
probe_new(struct loop *loop, const struct probe_opts *o, char *err, size_t errlen)
{
	const struct conf *c = o->conf;
	struct probe *p = xcalloc(1, sizeof(*p));

	p->loop = loop;
	p->o = *o;
	p->conf = c;
	p->out = o->out ? o->out : stdout;
	if (c->tls && (p->tls = tls_client_ctx(c->tls_ca, c->tls_cert, c->tls_key, c->tls_priority,
	                   err, errlen)) == NULL) {
		free(p);
		return NULL;
	}
	if ((p->dns = dns_new(loop, c->dns_server, c->trust_anchor, err, errlen)) == NULL) {
		tls_ctx_free(p->tls);
		free(p);
		return NULL;
	}
	timer_init(&p->t_step, step_expired, p);
	timer_init(&p->t_next, advance, p);
	return p;
}

static void
intro(struct probe *p)
{
	const struct conf *c = p->conf;

	fprintf(p->out, "Probing as %s (domain %s), configuration %s\n", c->component, c->domain,
	    c->path ? c->path : "(none)");
	if (c->tls)
		fprintf(p->out, "TLS: direct; the certificate must be for %s%s, CA %s\n",
		    conf_tls_name(c), c->tls_name ? "" : " or the node's name",
		    c->tls_ca ? c->tls_ca : "the system's trust store");
	else
		fprintf(p->out, "TLS: off (plain TCP)\n");
	if (p->o.agent_server)
		fprintf(p->out,
		    "Agent: connected to %s (%s); that node is not asked for a second session\n",
		    p->o.agent_server, p->o.agent_address ? p->o.agent_address : "?");
}

static void
add_node(struct probe *p, const char *host, int port)
{
	struct pnode *n;

	p->nodes = xrealloc(p->nodes, (p->nnodes + 1) * sizeof(*p->nodes));
	n = &p->nodes[p->nnodes++];
	memset(n, 0, sizeof(*n));
	snprintf(n->target, sizeof(n->target), "%s", host);
	n->port = port;
}

/* A server line's port, or the configuration's: for HOST given without one. */
static int
server_port(const struct conf *c, const char *host)
{
	size_t i;

	for (i = 0; i < c->nservers; i++)
		if (strcasecmp(c->servers[i].host, host) == 0 && c->servers[i].port)
			return c->servers[i].port;
	return (int)c->port;
}

void
probe_start(struct probe *p)
{
	const struct conf *c = p->conf;
	char *name;
	size_t i;

	intro(p);
	/* Without the SRV records: HOST:PORT, or the server list. */
	if ((p->o.host != NULL && p->o.port != 0) || c->nservers > 0) {
		if (p->o.host != NULL)
			add_node(p, p->o.host, p->o.port ? p->o.port : server_port(c, p->o.host));
		else {
			fprintf(p->out,
			    "Nodes: the server list of the configuration (no SRV lookup)\n");
			for (i = 0; i < c->nservers; i++)
				add_node(p, c->servers[i].host,
				    c->servers[i].port ? c->servers[i].port : (int)c->port);
		}
		p->cur = 0;
		node_start(p);
		return;
	}
	name = conf_srv_name(c);
	fprintf(p->out, "\nSRV records%s%s\n", p->o.host ? ", for the port of " : "",
	    p->o.host ? p->o.host : "");
	begin(p, STEP_SRV);
	if (dns_srv(p->dns, name, on_srv, p, &p->q) == -1) {
		step_line(p, "FAILED: cannot ask for the SRV records of %s", name);
		if (p->o.host != NULL)
			host_at_conf_port(p);
		else
			srv_failed(p, "dns");
	} else
		timer_add(loop_timers(p->loop), &p->t_step, DNS_TIMEOUT_MS);
	free(name);
}

int
probe_result(const struct probe *p)
{
	if (p->config_error)
		return PROBE_CONFIG;
	if (p->srv_failed || p->failed > 0 || p->passed == 0)
		return PROBE_FAILED;
	return PROBE_PASSED;
}

void
probe_free(struct probe *p)
{
	struct timerq *tq;

	if (p == NULL)
		return;
	tq = loop_timers(p->loop);
	timer_cancel(tq, &p->t_step);
	timer_cancel(tq, &p->t_next);
	if (p->q)
		dns_cancel(p->dns, p->q);
	dns_hint_cancel(p->dns, p->hint);
	io_free(p->io);
	xs_free(p->xs);
	free(p->addrs);
	free(p->nodes);
	dns_free(p->dns);
	tls_ctx_free(p->tls);
	free(p);
}

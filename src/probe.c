/*
 * probe: "xcomp probe" walks one attempt at each node the way the agent
 * makes it, with the same resolver, io, TLS, stream parser and digest, and
 * prints every step with its time. It runs inside the loop like the agent
 * (nothing blocks), one node after the other so that each step's time is
 * that step's alone. The attempt itself is connect.c's, as for the agent;
 * the probe words each step it reports. Node transitions go through a
 * zero-delay timer, so that the next node starts outside every callback.
 */
#include <sys/socket.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "connect.h"
#include "dns.h"
#include "probe.h"
#include "status.h"
#include "srv.h"
#include "tls.h"
#include "util.h"

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
	size_t naddrs;
	struct connect *cs;
	enum step step;
	uint64_t t0; /* when the current step began */
	char server[SRV_TARGET_MAX + 8];
	const char *note;            /* said with the node's result */
	struct timer t_step, t_next; /* the DNS steps' deadline; the next node */

	unsigned passed, failed;
	int srv_failed;
	int config_error;
};

static const struct connect_handler probe_session;
static void node_start(struct probe *);
static void probe_try_addr(struct probe *);

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
	/* Deferred when inside the session's own callback. */
	connect_free(p->cs);
	p->cs = NULL;
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

	if (!p->srv_failed && p->cur + 1 < p->nnodes) {
		p->cur++;
		node_start(p);
		return;
	}
	finish(p);
}

/* Connect and TLS */

/* The address connected to (the race's winner), or the first one before. */
static const char *
cur_ip(const struct probe *p)
{
	return p->cs ? connect_ip(p->cs) : p->addrs[0].ip;
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
	return conf_tls_alt(p->conf, p->nodes[p->cur].target);
}

/*
 * An attempt with the agent's session code (connect.c), its steps told as
 * they pass; the node's addresses raced as the agent races them.
 */
static void
probe_try_addr(struct probe *p)
{
	struct pnode *n = &p->nodes[p->cur];
	const struct conf *c = p->conf;
	struct connect_params cp;

	begin(p, STEP_CONNECT);
	memset(&cp, 0, sizeof(cp));
	cp.server = p->server;
	cp.addrs = p->addrs;
	cp.naddrs = p->naddrs;
	cp.port = n->port;
	cp.tls = p->tls;
	cp.tls_name = conf_tls_name(c);
	cp.tls_alt = tls_alt(p);
	cp.component = c->component;
	cp.secret = c->secret;
	cp.connect_timeout = c->connect_timeout;
	cp.handshake_timeout = c->handshake_timeout;
	cp.outmax = OUT_MAX;
	p->cs = connect_new(p->loop, &cp, &probe_session, p);
	if (p->cs == NULL) {
		step_line(p, "FAILED: cannot connect to %s: %s", p->server, strerror(errno));
		node_failed(p, "connect");
	}
}

static void
probe_connected(void *arg)
{
	struct probe *p = arg;

	step_line(p, "connected to %s port %d", cur_ip(p), p->nodes[p->cur].port);
	if (p->tls)
		begin(p, STEP_TLS);
}

static void
probe_secured(void *arg, const struct tls_info *ti)
{
	struct probe *p = arg;
	const char *alt = tls_alt(p);

	step_line(p, "%s, cipher %s", ti->version, ti->cipher);
	print_chain(p, ti);
	more(p, "verified: the chain leads to a CA in %s, and the certificate is for %s%s%s",
	    p->conf->tls_ca ? p->conf->tls_ca : "the system's trust store", conf_tls_name(p->conf),
	    alt ? " or " : "", alt ? alt : "");
}

static void
probe_opened(void *arg)
{
	begin(arg, STEP_STREAM);
}

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
	begin(p, STEP_CLOSE);
	connect_close(p->cs, CLOSE_WAIT_MS);
}

static void
probe_header(void *arg, const char *from, const char *id)
{
	struct probe *p = arg;

	if (id == NULL) {
		step_line(p, "FAILED: %s sent a stream header without an id", p->server);
		node_failed(p, "stream");
		return;
	}
	step_line(p, "from %s, id %s", from ? from : "(no from)", id);
	begin(p, STEP_HANDSHAKE);
	if (agent_here(p)) {
		/* kick-new refuses a second session, kick-old drops the agent's: ask neither. */
		step_line(p, "not sent: the agent holds the session here");
		p->note = "the agent holds the session here";
		close_politely(p);
	} else if (p->conf->secret == NULL) {
		step_line(p, "FAILED: not attempted: %s", p->o.secret_why);
		node_failed(p, "config");
	}
}

static void
probe_authenticated(void *arg)
{
	struct probe *p = arg;

	step_line(p, "accepted: %s is authenticated", p->conf->component);
	close_politely(p);
}

/* After our </stream:stream>, every end of the session is a pass. */
static void
probe_closed(struct probe *p, const struct connect_end *e)
{
	if (e->how == CONNECT_STREAM_END)
		step_line(p, "the server closed its stream too");
	else if (e->how == CONNECT_STREAM_ERROR)
		step_line(p, "the server ended with a stream error");
	else if (e->how == CONNECT_BAD_XML)
		step_line(p, "the server ended with bad XML: %s (%s)", e->detail, e->condition);
	else if (e->how == CONNECT_TIMEOUT)
		step_line(
		    p, "no answer to </stream:stream> within %d ms; closed anyway", CLOSE_WAIT_MS);
	else
		step_line(p, "the server closed the connection");
	node_passed(p);
}

/* The failure in the probe's words where they say more than connect.c's. */
static const char *
probe_words(const struct probe *p, const struct connect_end *e, char *buf, size_t len)
{
	const struct conf *c = p->conf;

	if (e->how == CONNECT_TIMEOUT && e->phase == CONNECT_TCP && p->naddrs > 1)
		return e->text; /* each address's fate */
	else if (e->how == CONNECT_TIMEOUT && e->phase == CONNECT_TCP)
		snprintf(buf, len, "no answer from %s (%s) within %u s (connect-timeout)",
		    p->server, cur_ip(p), c->connect_timeout);
	else if (e->how == CONNECT_TIMEOUT && e->phase == CONNECT_TLS)
		snprintf(buf, len,
		    "no TLS handshake with %s (%s) within %u s (connect-timeout, TLS included)",
		    p->server, cur_ip(p), c->connect_timeout);
	else if (e->how == CONNECT_TIMEOUT && e->phase == CONNECT_STREAM)
		snprintf(buf, len, "no stream header from %s within %u s (handshake-timeout)",
		    p->server, c->handshake_timeout);
	else if (e->how == CONNECT_LOST && e->err)
		snprintf(buf, len, "connection to %s (%s) lost: %s", p->server, cur_ip(p),
		    e->why[0] ? e->why : strerror(e->err));
	else if (e->how == CONNECT_STREAM_END)
		snprintf(buf, len, "%s (%s) closed the stream before the handshake completed",
		    p->server, cur_ip(p));
	else if (e->see_other_host)
		snprintf(buf, len, "%s; the agent would try it next", e->text);
	else
		return e->text;
	return buf;
}

static void
probe_ended(void *arg, const struct connect_end *e)
{
	struct probe *p = arg;
	char buf[1000];

	if (e->phase == CONNECT_CLOSING) {
		probe_closed(p, e);
		return;
	}
	if (strcmp(e->code, "conflict") == 0 && agent_here(p)) {
		step_line(p, "conflict: the agent holds the session here");
		p->note = "the agent holds the session here";
		node_passed(p);
		return;
	}
	step_line(p, "FAILED: %s", probe_words(p, e, buf, sizeof(buf)));
	if (e->tls && e->tls->version[0])
		more(p, "version %s", e->tls->version);
	if (e->tls)
		print_chain(p, e->tls);
	/* TLS 1.3: a refused client certificate shows after our side of the handshake. */
	if (e->how == CONNECT_TLS_FAILED && e->phase >= CONNECT_STREAM)
		more(p, "(with TLS 1.3 a server judges the client certificate after the TLS "
		        "step has passed, so its refusal shows here)");
	node_failed(p, e->code);
}

/* A race's attempts (a node with more than one address), as they start and end. */
static void
probe_attempt(void *arg, const struct connect_attempt *t)
{
	struct probe *p = arg;
	int port = p->nodes[p->cur].port;

	if (p->naddrs < 2)
		return;
	if (t->what == CONNECT_ATTEMPT_STARTED && t->pending)
		step_line(
		    p, "trying %s port %d (%s has not answered yet)", t->ip, port, t->pending);
	else if (t->what == CONNECT_ATTEMPT_STARTED)
		step_line(p, "trying %s port %d", t->ip, port);
	else if (t->what == CONNECT_ATTEMPT_FAILED)
		step_line(p, "%s port %d: %s", t->ip, port, strerror(t->err));
	else if (t->what == CONNECT_ATTEMPT_ABANDONED)
		step_line(p, "%s abandoned after %u ms without an answer: %s connected first",
		    t->ip, t->ms, t->winner);
}

static const struct connect_handler probe_session = {probe_connected, probe_secured, probe_opened,
    probe_header, probe_authenticated, NULL, NULL, probe_ended, probe_attempt};

/* DNS */

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

/* No answer from the resolver: SRV records or a node's addresses. */
static void
probe_dns_expired(void *arg)
{
	struct probe *p = arg;

	step_line(p, "FAILED: no answer from the resolver within %d s", DNS_TIMEOUT_MS / 1000);
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
}

static void
on_addrs(void *arg, const struct dns_addr_result *r)
{
	struct probe *p = arg;
	char list[512], msg[DNS_WHY_MAX + 300];
	size_t i, used = 0;

	p->q = NULL;
	timer_cancel(loop_timers(p->loop), &p->t_step);
	if (r->status != DNS_OK) {
		/* Records that were rejected are not missing records. */
		if (r->status == DNS_BOGUS)
			snprintf(msg, sizeof(msg), "%s", r->why);
		else
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
	probe_try_addr(p);
}

static void
node_start(struct probe *p)
{
	struct pnode *n = &p->nodes[p->cur];
	struct dns_addr lit;

	node_name(n, p->server, sizeof(p->server));
	fprintf(p->out, "\nNode %zu of %zu: %s\n", p->cur + 1, p->nnodes, p->server);
	p->note = NULL;
	begin(p, STEP_DNS);
	if (dns_addr_literal(n->target, &lit) == 0) {
		p->addrs = xcalloc(1, sizeof(*p->addrs));
		p->addrs[0] = lit;
		p->naddrs = 1;
		step_line(p, "%s is an address: nothing to look up", n->target);
		probe_try_addr(p);
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
	/* As the agent orders them, and as many: what is probed is what it may try. */
	p->nnodes = srv_order_max(r->rrs, r->n, SRV_USE_MAX, util_random_fn, NULL, order);
	p->nodes = xcalloc(p->nnodes ? p->nnodes : 1, sizeof(*p->nodes));
	for (i = 0; i < p->nnodes; i++) {
		snprintf(
		    p->nodes[i].target, sizeof(p->nodes[i].target), "%s", r->rrs[order[i]].target);
		p->nodes[i].port = r->rrs[order[i]].port;
	}
	free(order);
	more(p, "probed in an order the agent could try them (RFC 2782)");
	if (p->nnodes == SRV_USE_MAX && r->n > p->nnodes)
		more(p, "the agent tries at most %d nodes: the other %zu records are left out",
		    SRV_USE_MAX, r->n - p->nnodes);
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
	timer_init(&p->t_step, probe_dns_expired, p);
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
	return p->srv_failed || p->failed > 0 || p->passed == 0 ? -1 : 0;
}

int
probe_config_error(const struct probe *p)
{
	return p->config_error;
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
	connect_free(p->cs);
	free(p->addrs);
	free(p->nodes);
	dns_free(p->dns);
	tls_ctx_free(p->tls);
	free(p);
}

/*
 * dns: the thin shell around libunbound. The first half turns libunbound's
 * answers into results and does no I/O; the second half runs the queries
 * inside the loop.
 */
#include <sys/queue.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <unbound.h>

#include "dns.h"
#include "dnsreach.h"
#include "log.h"
#include "util.h"

#define DNS_TYPE_A 1
#define DNS_TYPE_AAAA 28
#define DNS_TYPE_SRV 33
/* How long a server that libunbound saw fail has to answer our own question. */
#define DNS_REACH_MS 1000
#define DNS_CLASS_IN 1

#define DNS_RCODE_NOERROR 0
#define DNS_RCODE_SERVFAIL 2
#define DNS_RCODE_NXDOMAIN 3

/*
 * libunbound answers names under these built-in zones with NXDOMAIN itself.
 * They are meant for names a local server may well serve (RFC 6761 test.,
 * RFC 8375 home.arpa.), so they are asked of the configured servers.
 * invalid., onion. and localhost. keep their built-in answers.
 */
static const char *dns_lifted_zones[] = {"test.", "home.arpa."};

const char *
dns_status_str(enum dns_status status)
{
	switch (status) {
	case DNS_OK:
		return "OK";
	case DNS_NODATA:
		return "NODATA";
	case DNS_NXDOMAIN:
		return "NXDOMAIN";
	case DNS_SERVFAIL:
		return "SERVFAIL";
	case DNS_BOGUS:
		return "BOGUS";
	case DNS_BADDATA:
		return "BADDATA";
	case DNS_NOSERVICE:
		return "NOSERVICE";
	}
	return "?";
}

static void dns_why(char *why, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
dns_why(char *why, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, DNS_WHY_MAX, fmt, ap);
	va_end(ap);
}

static const char *
dns_rcode_str(int rcode)
{
	switch (rcode) {
	case 1:
		return "FORMERR (format error)";
	case 2:
		return "SERVFAIL (server failure)";
	case 3:
		return "NXDOMAIN (no such domain)";
	case 4:
		return "NOTIMP (not implemented)";
	case 5:
		return "REFUSED (query refused)";
	}
	return "error";
}

/*
 * What an operator does about a validation failure, from libunbound's
 * reason: the reasons name the symptom (an expired signature), not the fix.
 */
static const char *
dns_bogus_advice(const char *reason)
{
	static const struct {
		const char *words, *advice;
	} a[] = {
	    {"expired", "the zone's signatures are out of date: re-sign the zone, or set this "
	                "host's clock"},
	    {"before inception", "the zone's signatures are not valid yet: set this host's clock"},
	    {"signature verification failed", "the records are not those that were signed: "
	                                      "changed after signing, or forged on the way"},
	    {"signature crypto failed", "the records are not those that were signed: "
	                                "changed after signing, or forged on the way"},
	    {"no DNSKEY", "the zone has no DNSKEY records: it is not signed, or dns-server "
	                  "strips DNSSEC records"},
	    {"no signatures", "the answer came without signatures: sign the zone, or use a "
	                      "dns-server that passes DNSSEC records"},
	    {"DS", "the zone's keys do not match the trust anchor: update the trust anchor "
	           "after a key rollover"},
	};
	size_t i;

	for (i = 0; i < nitems(a); i++)
		if (strstr(reason, a[i].words) != NULL)
			return a[i].advice;
	return "check the zone's signatures and the trust anchor";
}

/*
 * "DNSSEC validation failed for NAME TYPE: REASON (ADVICE)". libunbound's
 * reason starts by naming the query again, "validation failure <NAME. TYPE
 * IN>: ": the sentence has done that already.
 */
static void
dns_why_bogus(char *why, const char *name, const char *type, const char *reason)
{
	const char *p;

	if (reason == NULL)
		reason = "bogus answer";
	if (strncmp(reason, "validation failure <", 20) == 0 && (p = strstr(reason, ">: ")) != NULL)
		reason = p + 3;
	dns_why(why, "DNSSEC validation failed for %s %s: %s (%s)", name, type, reason,
	    dns_bogus_advice(reason));
}

/*
 * Everything about an answer except its records: DNS_OK means records are
 * there to parse. why is filled for any other status.
 */
static enum dns_status
dns_classify(const char *name, const char *type, int err, const struct ub_result *res, char *why)
{
	if (err != 0 || res == NULL) {
		dns_why(why, "%s %s: resolver error (%s)", name, type,
		    err != 0 ? ub_strerror(err) : "no result");
		return DNS_SERVFAIL;
	}
	/* A bogus answer may carry data: it must not be used. */
	if (res->bogus) {
		dns_why_bogus(why, name, type, res->why_bogus);
		return DNS_BOGUS;
	}
	if (res->rcode == DNS_RCODE_NXDOMAIN) {
		dns_why(why, "%s: %s", name, dns_rcode_str(res->rcode));
		return DNS_NXDOMAIN;
	}
	if (res->rcode != DNS_RCODE_NOERROR) {
		if (res->rcode >= 1 && res->rcode <= 5)
			dns_why(why, "%s %s: %s", name, type, dns_rcode_str(res->rcode));
		else
			dns_why(why, "%s %s: error rcode %d", name, type, res->rcode);
		return DNS_SERVFAIL;
	}
	/* libunbound leaves data NULL when it could not parse the answer. */
	if (!res->havedata || res->data == NULL || res->data[0] == NULL) {
		dns_why(why, "no %s records for %s", type, name);
		return DNS_NODATA;
	}
	return DNS_OK;
}

static uint32_t
dns_ttl(const struct ub_result *res)
{
	return res->ttl > 0 ? (uint32_t)res->ttl : 0;
}

static size_t
dns_count(const struct ub_result *res)
{
	size_t n = 0;

	while (res->data[n] != NULL)
		n++;
	return n;
}

int
dns_parse_addr(int qtype, const unsigned char *rdata, size_t len, char *ip, size_t iplen)
{
	int af;

	if (qtype == DNS_TYPE_A && len == 4)
		af = AF_INET;
	else if (qtype == DNS_TYPE_AAAA && len == 16)
		af = AF_INET6;
	else
		return -1;
	if (inet_ntop(af, rdata, ip, (socklen_t)iplen) == NULL)
		return -1;
	return 0;
}

int
dns_addr_literal(const char *host, struct dns_addr *a)
{
	unsigned char bin[16];

	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET6, host, bin) == 1)
		a->family = AF_INET6;
	else if (inet_pton(AF_INET, host, bin) == 1)
		a->family = AF_INET;
	else
		return -1;
	/* Written back in the canonical form, as an answer would be. */
	if (inet_ntop(a->family, bin, a->ip, sizeof(a->ip)) == NULL)
		return -1;
	return 0;
}

/* Parse the SRV records, leaving out the malformed ones. */
static void
dns_srv_records(const struct ub_result *res, struct dns_srv_result *r)
{
	const unsigned char *rdata;
	size_t i, n;

	n = dns_count(res);
	r->rrs = xcalloc(n, sizeof(*r->rrs));
	for (i = 0; i < n; i++) {
		rdata = (const unsigned char *)res->data[i];
		if (res->len[i] < 0 ||
		    srv_parse_rdata(rdata, (size_t)res->len[i], &r->rrs[r->n]) == -1) {
			r->nbad++;
			continue;
		}
		r->rrs[r->n++].ttl = r->ttl;
	}
}

void
dns_srv_result_make(
    const char *name, int err, const struct ub_result *res, struct dns_srv_result *r)
{
	memset(r, 0, sizeof(*r));
	r->name = name;
	r->status = dns_classify(name, "SRV", err, res, r->why);
	if (r->status != DNS_OK)
		return;
	r->ttl = dns_ttl(res);
	r->secure = res->secure;
	dns_srv_records(res, r);
	if (r->n == 0) {
		r->status = DNS_BADDATA;
		dns_why(r->why, "%s SRV: %zu malformed records and no usable one", name, r->nbad);
	} else if (srv_is_null(r->rrs, r->n)) {
		r->status = DNS_NOSERVICE;
		dns_why(r->why, "%s: the service is not offered (SRV target \".\")", name);
	}
}

void
dns_srv_result_clear(struct dns_srv_result *r)
{
	free(r->rrs);
	r->rrs = NULL;
	r->n = 0;
}

/* Record i of an address answer into a. */
static int
dns_addr_parse(int qtype, const struct ub_result *res, size_t i, struct dns_addr *a)
{
	const unsigned char *rdata = (const unsigned char *)res->data[i];

	if (res->len[i] < 0)
		return -1;
	a->family = qtype == DNS_TYPE_AAAA ? AF_INET6 : AF_INET;
	return dns_parse_addr(qtype, rdata, (size_t)res->len[i], a->ip, sizeof(a->ip));
}

/* Append the addresses of one answer (already classified DNS_OK). */
static void
dns_addr_records(int qtype, const struct ub_result *res, struct dns_addr_result *r)
{
	size_t i, n;

	n = dns_count(res);
	r->addrs = xrealloc(r->addrs, (r->n + n) * sizeof(*r->addrs));
	for (i = 0; i < n; i++) {
		if (dns_addr_parse(qtype, res, i, &r->addrs[r->n]) == -1)
			r->nbad++;
		else
			r->n++;
	}
}

/*
 * When neither family gave an address, the one failure to report: a
 * validation failure first, then a server failure, then the name's absence.
 */
static int
dns_addr_worse(enum dns_status a, enum dns_status b)
{
	static const enum dns_status rank[] = {
	    DNS_OK, DNS_NODATA, DNS_BADDATA, DNS_NXDOMAIN, DNS_SERVFAIL, DNS_BOGUS};
	size_t i, ra = 0, rb = 0;

	for (i = 0; i < nitems(rank); i++) {
		if (rank[i] == a)
			ra = i;
		if (rank[i] == b)
			rb = i;
	}
	return ra > rb;
}

/* One family's answer into r; returns its status. */
static enum dns_status
dns_addr_family(const char *host, int qtype, int err, const struct ub_result *res,
    struct dns_addr_result *r, char *why)
{
	const char *type = qtype == DNS_TYPE_AAAA ? "AAAA" : "A";
	enum dns_status status;
	size_t before = r->n;

	status = dns_classify(host, type, err, res, why);
	if (status != DNS_OK)
		return status;
	dns_addr_records(qtype, res, r);
	if (r->n == before) {
		dns_why(why, "%s %s: no well-formed records", host, type);
		return DNS_BADDATA;
	}
	if (before == 0 || dns_ttl(res) < r->ttl)
		r->ttl = dns_ttl(res);
	r->secure = (before == 0 || r->secure) && res->secure;
	return DNS_OK;
}

void
dns_addr_result_make(const char *host, int err6, const struct ub_result *res6, int err4,
    const struct ub_result *res4, struct dns_addr_result *r)
{
	char why6[DNS_WHY_MAX], why4[DNS_WHY_MAX];
	enum dns_status s6, s4;

	memset(r, 0, sizeof(*r));
	r->name = host;
	s6 = dns_addr_family(host, DNS_TYPE_AAAA, err6, res6, r, why6);
	s4 = dns_addr_family(host, DNS_TYPE_A, err4, res4, r, why4);
	dns_addr_interleave(r->addrs, r->n);
	if (r->n > 0)
		return;
	if (s6 == DNS_NODATA && s4 == DNS_NODATA) {
		r->status = DNS_NODATA;
		dns_why(r->why, "no A or AAAA records for %s", host);
	} else if (dns_addr_worse(s6, s4)) {
		r->status = s6;
		memcpy(r->why, why6, sizeof(r->why));
	} else {
		r->status = s4;
		memcpy(r->why, why4, sizeof(r->why));
	}
}

/* The next address of family af from a[*i] on (and *i past it), or NULL. */
static const struct dns_addr *
dns_addr_next(const struct dns_addr *a, size_t n, size_t *i, int af)
{
	while (*i < n && a[*i].family != af)
		(*i)++;
	return *i < n ? &a[(*i)++] : NULL;
}

void
dns_addr_interleave(struct dns_addr *a, size_t n)
{
	struct dns_addr *in;
	const struct dns_addr *x;
	size_t i, at[2] = {0, 0};
	int af[2], turn = 0;

	if (n < 2)
		return;
	in = xcalloc(n, sizeof(*in));
	memcpy(in, a, n * sizeof(*in));
	af[0] = in[0].family;
	af[1] = af[0] == AF_INET6 ? AF_INET : AF_INET6;
	for (i = 0; i < n; i++) {
		/* One family run out: the other's rest, in its order. */
		if ((x = dns_addr_next(in, n, &at[turn], af[turn])) == NULL) {
			turn ^= 1;
			x = dns_addr_next(in, n, &at[turn], af[turn]);
		}
		a[i] = *x;
		turn ^= 1;
	}
	free(in);
}

void
dns_addr_result_clear(struct dns_addr_result *r)
{
	free(r->addrs);
	r->addrs = NULL;
	r->n = 0;
}

void
dns_addr_failure(const char *host, const char *why, char *out, size_t len)
{
	size_t n = strlen(host);
	char generic[DNS_WHY_MAX];

	/* "HOST: NXDOMAIN ...", "HOST A: SERVFAIL ...": the sentence names HOST already. */
	if (strncmp(why, host, n) == 0 && (why[n] == ':' || why[n] == ' ')) {
		why += n + 1;
		why += *why == ' ';
	}
	/* Both families answered NODATA: the sentence says it all. */
	dns_why(generic, "no A or AAAA records for %s", host);
	if (strcmp(why, generic) == 0)
		why = "";
	snprintf(out, len, "no DNS A or AAAA records for %s%s%s%s", host, *why ? " (" : "", why,
	    *why ? ")" : "");
}

void
dns_reach_words(char *why, size_t len, const struct dnsreach_result *r)
{
	static const char servfail[] = "SERVFAIL (server failure)";
	char *at = strstr(why, servfail);
	size_t off;

	if (at == NULL || (r->answered && r->rcode != DNS_RCODE_SERVFAIL))
		return;
	off = (size_t)(at - why);
	if (r->answered)
		snprintf(at, len - off, "%s from the DNS server %s", servfail, r->servers);
	else
		snprintf(at, len - off,
		    "no answer from the DNS server%s %s (it is down, or the network to it drops "
		    "the packets)",
		    strchr(r->servers, ',') ? "s" : "", r->servers);
}

/* The shell: queries in flight inside the loop. */

/* One libunbound query; a dns_query holds one (SRV) or two (AAAA, A). */
struct dns_ask {
	struct dns_query *q;
	int qtype;
	int id;   /* libunbound's async id */
	int busy; /* the answer is still to come */
	int err;
	struct ub_result *res;
};

struct dns_query {
	TAILQ_ENTRY(dns_query) entry;
	struct dns *dns;
	char *name;
	struct dns_ask ask[2];
	int nask;
	int delivering;         /* its callback is running */
	struct dnsreach *reach; /* asking the servers ourselves (dns_reach) */
	int reached;            /* and reach_res holds what they said */
	struct dnsreach_result reach_res;
	dns_srv_cb *srv_cb;
	dns_addr_cb *addr_cb;
	void *arg;
};

/* One variant of a dns_hint: its SRV query, then its records. */
struct dns_hint_ask {
	struct dns_hint *h;
	struct dns_query *q; /* NULL once answered */
	struct srv_rr *rrs;
	size_t n;
};

struct dns_hint {
	TAILQ_ENTRY(dns_hint) entry;
	struct dns *dns;
	char *name;
	struct srv_variant v[SRV_VARIANT_MAX];
	struct dns_hint_ask ask[SRV_VARIANT_MAX];
	size_t nv;
	size_t pending;
	int delivering;
	dns_hint_cb *cb;
	void *arg;
};

struct dns {
	struct loop *loop;
	struct ub_ctx *ctx;
	char *forwarder; /* dns-server, or NULL for resolv.conf's */
	struct loop_fd *lfd;
	TAILQ_HEAD(, dns_query) queries;
	TAILQ_HEAD(, dns_hint) hints;
	int started;    /* libunbound's thread exists */
	int processing; /* inside ub_process */
	int dead;       /* dns_free ran inside ub_process: free after it */
	int failed;     /* the pipe from libunbound's thread broke */
	char *anchor;   /* the trust anchor file, or NULL */
};

static void
dns_query_free(struct dns_query *q)
{
	int i;

	for (i = 0; i < q->nask; i++)
		ub_resolve_free(q->ask[i].res);
	free(q->name);
	free(q);
}

/* A validation failure names the file it was checked against. */
static void
dns_why_anchor(const struct dns *d, char *why)
{
	size_t n = strlen(why);

	if (d->anchor != NULL)
		snprintf(why + n, DNS_WHY_MAX - n, "; trust anchor %s", d->anchor);
}

static void
dns_deliver_srv(struct dns_query *q)
{
	struct dns_srv_result r;

	dns_srv_result_make(q->name, q->ask[0].err, q->ask[0].res, &r);
	if (q->reached)
		dns_reach_words(r.why, sizeof(r.why), &q->reach_res);
	if (r.status == DNS_BOGUS)
		dns_why_anchor(q->dns, r.why);
	if (r.nbad > 0)
		log_warnx(
		    "%s: %zu malformed SRV records ignored (a target must be a host name of "
		    "at most 253 characters, labels of at most 63: letters, digits, '-', '_')",
		    q->name, r.nbad);
	q->srv_cb(q->arg, &r);
	dns_srv_result_clear(&r);
}

static void
dns_deliver_addrs(struct dns_query *q)
{
	struct dns_addr_result r;
	struct ub_result *res;
	char why[DNS_WHY_MAX];
	int i;

	dns_addr_result_make(
	    q->name, q->ask[0].err, q->ask[0].res, q->ask[1].err, q->ask[1].res, &r);
	if (q->reached)
		dns_reach_words(r.why, sizeof(r.why), &q->reach_res);
	if (r.status == DNS_BOGUS)
		dns_why_anchor(q->dns, r.why);
	/* An answer that failed validation was dropped quietly; say so. */
	for (i = 0; i < q->nask && r.status == DNS_OK; i++)
		if ((res = q->ask[i].res) != NULL && res->bogus) {
			dns_why_bogus(why, q->name, q->ask[i].qtype == DNS_TYPE_A ? "A" : "AAAA",
			    res->why_bogus);
			log_warnx("%s; using the other family", why);
		}
	if (r.nbad > 0)
		log_warnx("%s: %zu malformed address records ignored", q->name, r.nbad);
	q->addr_cb(q->arg, &r);
	dns_addr_result_clear(&r);
}

static void dns_deliver(struct dns_query *);

/* Did libunbound get a SERVFAIL (not fail by itself) for each of q's asks? */
static int
dns_servfail(const struct dns_query *q)
{
	int i;

	for (i = 0; i < q->nask; i++) {
		const struct ub_result *res = q->ask[i].res;

		if (q->ask[i].err != 0 || res == NULL || res->bogus ||
		    res->rcode != DNS_RCODE_SERVFAIL)
			return 0;
	}
	return 1;
}

static void
dns_reached(void *arg, const struct dnsreach_result *r)
{
	struct dns_query *q = arg;

	q->reach = NULL;
	q->reached = 1;
	q->reach_res = *r;
	dns_deliver(q);
}

/*
 * libunbound says SERVFAIL both for a server that said so and for one that
 * never answered: ask the servers once ourselves to tell which, then deliver.
 * 0 when the answer is to come.
 */
static int
dns_reach(struct dns_query *q)
{
	int qtype = q->ask[q->nask - 1].qtype;

	if (q->reached || q->dns->failed || !dns_servfail(q))
		return -1;
	q->reach = dnsreach_start(
	    q->dns->loop, q->dns->forwarder, q->name, qtype, DNS_REACH_MS, dns_reached, q);
	return q->reach != NULL ? 0 : -1;
}

/* Every answer of q is in: call back, then free q. */
static void
dns_deliver(struct dns_query *q)
{
	if (dns_reach(q) == 0)
		return;
	dnsreach_cancel(q->reach); /* the resolver failed meanwhile */
	q->reach = NULL;
	TAILQ_REMOVE(&q->dns->queries, q, entry);
	q->delivering = 1;
	if (q->srv_cb != NULL)
		dns_deliver_srv(q);
	else
		dns_deliver_addrs(q);
	dns_query_free(q);
}

/* libunbound's callback, from inside ub_process. */
static void
dns_answer(void *arg, int err, struct ub_result *res)
{
	struct dns_ask *a = arg;
	struct dns_query *q = a->q;
	int i;

	a->busy = 0;
	a->err = err;
	a->res = res;
	for (i = 0; i < q->nask; i++)
		if (q->ask[i].busy)
			return;
	dns_deliver(q);
}

static void
dns_destroy(struct dns *d)
{
	ub_ctx_delete(d->ctx);
	free(d->forwarder);
	free(d->anchor);
	free(d);
}

/* The pipe from libunbound's thread broke: fail every query, once. */
static void
dns_fail_all(struct dns *d, int err)
{
	struct dns_query *q;
	int i;

	log_warnx("dns: lost the resolver thread (%s)", ub_strerror(err));
	d->failed = 1;
	loop_del(d->loop, d->lfd);
	d->lfd = NULL;
	while (!d->dead && (q = TAILQ_FIRST(&d->queries)) != NULL) {
		for (i = 0; i < q->nask; i++) {
			if (!q->ask[i].busy)
				continue;
			q->ask[i].busy = 0;
			q->ask[i].err = err;
		}
		dns_deliver(q);
	}
}

static void
dns_readable(int fd, int revents, void *arg)
{
	struct dns *d = arg;
	int r;

	(void)fd;
	(void)revents;
	d->processing = 1;
	r = ub_process(d->ctx);
	if (r != 0 && !d->dead)
		dns_fail_all(d, r);
	d->processing = 0;
	if (d->dead)
		dns_destroy(d);
}

/*
 * Start one libunbound query. Its thread starts with the first query and
 * inherits the signal mask: block every signal meanwhile, so that signals
 * always reach the loop's thread.
 */
static int
dns_ask_start(struct dns *d, struct dns_ask *a)
{
	sigset_t all, old;
	int r;

	if (!d->started) {
		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old);
	}
	r = ub_resolve_async(d->ctx, a->q->name, a->qtype, DNS_CLASS_IN, a, dns_answer, &a->id);
	if (!d->started) {
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		d->started = (r == 0);
	}
	if (r != 0) {
		log_warnx("cannot resolve %s: %s", a->q->name, ub_strerror(r));
		return -1;
	}
	a->busy = 1;
	return 0;
}

static void
dns_cancel_asks(struct dns *d, struct dns_query *q)
{
	int i;

	for (i = 0; i < q->nask; i++)
		if (q->ask[i].busy)
			(void)ub_cancel(d->ctx, q->ask[i].id);
}

/* Start the queries of q; on failure nothing stays in flight. */
static int
dns_start(struct dns *d, struct dns_query *q)
{
	int i;

	if (d->failed) {
		log_warnx("cannot resolve %s: the resolver is not running", q->name);
		return -1;
	}
	for (i = 0; i < q->nask; i++) {
		if (dns_ask_start(d, &q->ask[i]) == -1) {
			dns_cancel_asks(d, q);
			return -1;
		}
	}
	TAILQ_INSERT_TAIL(&d->queries, q, entry);
	return 0;
}

static struct dns_query *
dns_query_new(struct dns *d, const char *name, const int *qtypes, int nask, void *arg)
{
	struct dns_query *q;
	int i;

	q = xcalloc(1, sizeof(*q));
	q->dns = d;
	q->name = xstrdup(name);
	q->nask = nask;
	q->arg = arg;
	for (i = 0; i < nask; i++) {
		q->ask[i].q = q;
		q->ask[i].qtype = qtypes[i];
	}
	return q;
}

int
dns_srv(struct dns *d, const char *name, dns_srv_cb *cb, void *arg, struct dns_query **qp)
{
	static const int qtypes[] = {DNS_TYPE_SRV};
	struct dns_query *q;

	q = dns_query_new(d, name, qtypes, 1, arg);
	q->srv_cb = cb;
	if (dns_start(d, q) == -1) {
		dns_query_free(q);
		return -1;
	}
	if (qp != NULL)
		*qp = q;
	return 0;
}

int
dns_addrs(struct dns *d, const char *host, dns_addr_cb *cb, void *arg, struct dns_query **qp)
{
	static const int qtypes[] = {DNS_TYPE_AAAA, DNS_TYPE_A};
	struct dns_query *q;

	q = dns_query_new(d, host, qtypes, 2, arg);
	q->addr_cb = cb;
	if (dns_start(d, q) == -1) {
		dns_query_free(q);
		return -1;
	}
	if (qp != NULL)
		*qp = q;
	return 0;
}

void
dns_cancel(struct dns *d, struct dns_query *q)
{
	if (q == NULL || q->delivering)
		return;
	dns_cancel_asks(d, q);
	dnsreach_cancel(q->reach);
	TAILQ_REMOVE(&d->queries, q, entry);
	dns_query_free(q);
}

/* Hints: the usual misspellings of an SRV name, asked together. */

static void
dns_hint_free(struct dns_hint *h)
{
	size_t i;

	for (i = 0; i < h->nv; i++) {
		if (h->ask[i].q != NULL)
			dns_cancel(h->dns, h->ask[i].q);
		free(h->ask[i].rrs);
	}
	free(h->name);
	free(h);
}

/* Every variant has answered: call back, then free h. */
static void
dns_hint_deliver(struct dns_hint *h)
{
	struct dns_hint_result r;
	size_t i;

	memset(&r, 0, sizeof(r));
	r.name = h->name;
	r.asked = h->v;
	r.nasked = h->nv;
	for (i = 0; i < h->nv; i++) {
		if (h->ask[i].n == 0)
			continue;
		r.found[r.nfound].v = &h->v[i];
		r.found[r.nfound].rrs = h->ask[i].rrs;
		r.found[r.nfound++].n = h->ask[i].n;
	}
	/* Off the list first: the callback may free the resolver. */
	TAILQ_REMOVE(&h->dns->hints, h, entry);
	h->delivering = 1;
	h->cb(h->arg, &r);
	dns_hint_free(h);
}

static void
dns_hint_answer(void *arg, const struct dns_srv_result *r)
{
	struct dns_hint_ask *a = arg;
	struct dns_hint *h = a->h;

	a->q = NULL;
	if (r->status == DNS_OK) {
		a->rrs = xcalloc(r->n, sizeof(*a->rrs));
		memcpy(a->rrs, r->rrs, r->n * sizeof(*a->rrs));
		a->n = r->n;
	}
	if (--h->pending == 0)
		dns_hint_deliver(h);
}

int
dns_srv_hint(struct dns *d, const char *service, const char *domain, dns_hint_cb *cb, void *arg,
    struct dns_hint **hp)
{
	struct dns_hint *h = xcalloc(1, sizeof(*h));
	size_t i;

	h->dns = d;
	h->name = xasprintf("%s.%s", service, domain);
	h->cb = cb;
	h->arg = arg;
	h->nv = srv_variants(service, domain, h->v);
	for (i = 0; i < h->nv; i++) {
		h->ask[i].h = h;
		/* One that cannot be asked finds nothing; the others still may. */
		if (dns_srv(d, h->v[i].name, dns_hint_answer, &h->ask[i], &h->ask[i].q) == 0)
			h->pending++;
	}
	if (h->pending == 0) {
		dns_hint_free(h);
		return -1;
	}
	TAILQ_INSERT_TAIL(&d->hints, h, entry);
	if (hp != NULL)
		*hp = h;
	return 0;
}

void
dns_hint_cancel(struct dns *d, struct dns_hint *h)
{
	if (h == NULL || h->delivering)
		return;
	TAILQ_REMOVE(&d->hints, h, entry);
	dns_hint_free(h);
}

void
dns_free(struct dns *d)
{
	struct dns_query *q;
	struct dns_hint *h;

	if (d == NULL)
		return;
	while ((h = TAILQ_FIRST(&d->hints)) != NULL)
		dns_hint_cancel(d, h);
	while ((q = TAILQ_FIRST(&d->queries)) != NULL)
		dns_cancel(d, q);
	if (d->lfd != NULL)
		loop_del(d->loop, d->lfd);
	d->lfd = NULL;
	/* ub_process is still running below us: it frees the context after. */
	if (d->processing) {
		d->dead = 1;
		return;
	}
	dns_destroy(d);
}

/* Configuration; on failure, err says what to fix. */

static int
dns_set_servers(struct ub_ctx *ctx, const char *forwarder, char *err, size_t errlen)
{
	int r;

	if (forwarder != NULL) {
		if ((r = ub_ctx_set_fwd(ctx, forwarder)) != 0) {
			snprintf(err, errlen, "dns-server %s: not an IP[@PORT] address (%s)",
			    forwarder, ub_strerror(r));
			return -1;
		}
		return 0;
	}
	if ((r = ub_ctx_resolvconf(ctx, NULL)) != 0) {
		snprintf(err, errlen, "/etc/resolv.conf: cannot use it (%s)", ub_strerror(r));
		return -1;
	}
	/* Without /etc/hosts the servers answer for those names too. */
	if ((r = ub_ctx_hosts(ctx, NULL)) != 0 && r != UB_READFILE)
		log_warnx("/etc/hosts: ignored (%s)", ub_strerror(r));
	return 0;
}

static int
dns_set_anchor(struct ub_ctx *ctx, const char *file, char *err, size_t errlen)
{
	int r;

	/* libunbound reads the file later and only says "initialization failure". */
	if (access(file, R_OK) == -1) {
		snprintf(err, errlen, "dnssec-trust-anchor %s: %s", file, strerror(errno));
		return -1;
	}
	if ((r = ub_ctx_add_ta_file(ctx, file)) != 0) {
		snprintf(err, errlen, "dnssec-trust-anchor %s: %s", file, ub_strerror(r));
		return -1;
	}
	return 0;
}

/* Zone changes finalize the context: they come after every other setting. */
static int
dns_lift_zones(struct ub_ctx *ctx, const char *anchor, char *err, size_t errlen)
{
	size_t i;
	int r;

	for (i = 0; i < nitems(dns_lifted_zones); i++) {
		if ((r = ub_ctx_zone_remove(ctx, dns_lifted_zones[i])) == 0)
			continue;
		if (anchor != NULL && r == UB_INITFAIL)
			snprintf(err, errlen,
			    "dnssec-trust-anchor %s: cannot load the trust anchors (%s)", anchor,
			    ub_strerror(r));
		else
			snprintf(
			    err, errlen, "dns: cannot set up the resolver (%s)", ub_strerror(r));
		return -1;
	}
	return 0;
}

static int
dns_setup(struct ub_ctx *ctx, const char *forwarder, const char *anchor, char *err, size_t errlen)
{
	int r;

	/* A thread, not the default helper process (which would fork us). */
	if ((r = ub_ctx_async(ctx, 1)) != 0) {
		snprintf(err, errlen, "dns: cannot use a resolver thread (%s)", ub_strerror(r));
		return -1;
	}
	if (dns_set_servers(ctx, forwarder, err, errlen) == -1)
		return -1;
	if (anchor != NULL && dns_set_anchor(ctx, anchor, err, errlen) == -1)
		return -1;
	return dns_lift_zones(ctx, anchor, err, errlen);
}

struct dns *
dns_new(
    struct loop *loop, const char *forwarder, const char *trust_anchor, char *err, size_t errlen)
{
	struct dns *d;
	int fd;

	d = xcalloc(1, sizeof(*d));
	d->loop = loop;
	d->forwarder = forwarder ? xstrdup(forwarder) : NULL;
	TAILQ_INIT(&d->queries);
	TAILQ_INIT(&d->hints);
	if ((d->ctx = ub_ctx_create()) == NULL) {
		snprintf(err, errlen, "dns: cannot create the resolver: %s", strerror(errno));
		free(d->forwarder);
		free(d);
		return NULL;
	}
	if (dns_setup(d->ctx, forwarder, trust_anchor, err, errlen) == -1) {
		dns_destroy(d);
		return NULL;
	}
	if ((fd = ub_fd(d->ctx)) == -1) {
		snprintf(err, errlen, "dns: the resolver has no descriptor to poll");
		dns_destroy(d);
		return NULL;
	}
	if (trust_anchor != NULL)
		d->anchor = xstrdup(trust_anchor);
	d->lfd = loop_add(loop, fd, POLLIN, dns_readable, d);
	return d;
}

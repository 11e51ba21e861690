/*
 * dns: asynchronous SRV and address lookups through libunbound, inside the
 * loop. libunbound resolves in a thread of its own and posts its answers on
 * a pipe that the loop watches; this file turns them into results that name
 * the query. Callbacks run from the loop: never from inside dns_srv or
 * dns_addrs, never after dns_cancel or dns_free.
 * Functions returning int return 0 on success and -1 on failure.
 */
#ifndef XCOMP_DNS_H
#define XCOMP_DNS_H

#include <stddef.h>
#include <stdint.h>

#include "loop.h"
#include "srv.h"

enum dns_status {
	DNS_OK,
	DNS_NODATA,   /* the name exists but has no records of the type */
	DNS_NXDOMAIN, /* no such name */
	DNS_SERVFAIL, /* SERVFAIL, another error rcode, or the resolver failed */
	DNS_BOGUS,    /* DNSSEC validation failed: the answer is rejected */
	DNS_BADDATA,  /* records came, none of them well-formed */
	DNS_NOSERVICE /* SRV: one record with target ".": no such service */
};

/* One line for a person, naming the query; empty when the status is DNS_OK. */
#define DNS_WHY_MAX 512

/* The result of dns_srv, valid only during the callback. */
struct dns_srv_result {
	enum dns_status status;
	const char *name; /* the name asked for */
	char why[DNS_WHY_MAX];
	struct srv_rr *rrs; /* as the server sent them; srv_order orders */
	size_t n;
	size_t nbad; /* malformed records left out */
	uint32_t ttl;
	int secure; /* DNSSEC validated */
};

/* Long enough for any IPv6 address (INET6_ADDRSTRLEN). */
#define DNS_IP_MAX 46

struct dns_addr {
	int family; /* AF_INET6 or AF_INET */
	char ip[DNS_IP_MAX];
};

/*
 * The result of dns_addrs, valid only during the callback. The addresses
 * come in the order to try them (dns_addr_interleave): IPv6 first (the
 * RFC 6724 default preference), then the families in turn, each in the
 * order of its answer. DNS_OK when either family gave an address; an
 * answer that fails DNSSEC validation counts as no answer.
 */
struct dns_addr_result {
	enum dns_status status;
	const char *name; /* the host asked for */
	char why[DNS_WHY_MAX];
	struct dns_addr *addrs;
	size_t n;
	size_t nbad;
	uint32_t ttl; /* the lower TTL of the families that gave addresses */
	int secure;   /* every family that gave addresses was validated */
};

struct dns;
struct dns_query;
typedef void dns_srv_cb(void *arg, const struct dns_srv_result *);
typedef void dns_addr_cb(void *arg, const struct dns_addr_result *);

/*
 * A resolver that sends every query to forwarder ("IP[@PORT]"), or, when it
 * is NULL, to the servers of /etc/resolv.conf, answering names of
 * /etc/hosts itself. Names under test. and home.arpa. are asked of those
 * servers too (libunbound would answer NXDOMAIN on its own). With
 * trust_anchor (a file of DS or DNSKEY records), answers are validated and
 * those that fail come back DNS_BOGUS. NULL with a message in err on
 * failure. Freed with dns_free.
 */
struct dns *dns_new(
    struct loop *, const char *forwarder, const char *trust_anchor, char *err, size_t errlen);

/* Cancel every query (no callback follows) and free; safe in a callback. */
void dns_free(struct dns *);

/*
 * Ask for the SRV records of name ("_xmpp-component._tcp.tptac9.com"); cb
 * is called once. When q is not NULL it receives a handle for dns_cancel,
 * valid until the callback starts.
 */
int dns_srv(struct dns *, const char *name, dns_srv_cb *cb, void *arg, struct dns_query **q);

/* Ask for the A and AAAA records of host in parallel; cb is called once. */
int dns_addrs(struct dns *, const char *host, dns_addr_cb *cb, void *arg, struct dns_query **q);

/* Forget a query: its callback will not be called. A no-op inside it. */
void dns_cancel(struct dns *, struct dns_query *);

/* One variant of an SRV name that has records, in a dns_hint_result. */
struct dns_hint_found {
	const struct srv_variant *v;
	struct srv_rr *rrs; /* as the server sent them */
	size_t n;
};

/* The result of dns_srv_hint, valid only during the callback. */
struct dns_hint_result {
	const char *name; /* the name that has no records: service.domain */
	const struct srv_variant *asked;
	size_t nasked;
	struct dns_hint_found found[SRV_VARIANT_MAX]; /* in the order of asked */
	size_t nfound;
};

struct dns_hint;
typedef void dns_hint_cb(void *arg, const struct dns_hint_result *);

/*
 * The SRV records of service.domain cannot be found: ask, all in parallel,
 * for the records of the names srv_variants lists (where they are often
 * published by mistake), and call cb once, when every answer is in. Only
 * well-formed records count as found; a query that fails finds nothing.
 * When h is not NULL it receives a handle for dns_hint_cancel, valid until
 * the callback starts; dns_free cancels the lookup too.
 */
int dns_srv_hint(struct dns *, const char *service, const char *domain, dns_hint_cb *cb, void *arg,
    struct dns_hint **h);

/* Forget a hint lookup: its callback will not be called. A no-op inside it. */
void dns_hint_cancel(struct dns *, struct dns_hint *);

/*
 * When host is an IPv4 or IPv6 address, not a name (an SRV target may be
 * one: "127.0.0.2"), fill a and return 0: there is nothing to look up.
 * -1 for a name.
 */
int dns_addr_literal(const char *host, struct dns_addr *a);

/* "NXDOMAIN", "SERVFAIL", ...: a short name for a status. */
const char *dns_status_str(enum dns_status);

/*
 * Pure functions that turn libunbound's answers into results, exposed for
 * the tests. err is libunbound's error code (0 when res is set).
 */
struct ub_result;

/* An A (qtype 1) or AAAA (qtype 28) rdata into ip. */
int dns_parse_addr(int qtype, const unsigned char *rdata, size_t len, char *ip, size_t iplen);

/* Freed with dns_srv_result_clear. */
void dns_srv_result_make(
    const char *name, int err, const struct ub_result *res, struct dns_srv_result *);
void dns_srv_result_clear(struct dns_srv_result *);

/* res6 is the AAAA answer, res4 the A answer. Freed with dns_addr_result_clear. */
void dns_addr_result_make(const char *host, int err6, const struct ub_result *res6, int err4,
    const struct ub_result *res4, struct dns_addr_result *);
void dns_addr_result_clear(struct dns_addr_result *);
/*
 * Order n addresses for Happy Eyeballs (RFC 8305 section 4, with a First
 * Address Family Count of 1): the family of a[0] first, then the other
 * family and the first in turn; each family keeps its own order, and when
 * one runs out the rest of the other follows.
 */
void dns_addr_interleave(struct dns_addr *a, size_t n);
/*
 * A failed address lookup in the seed's words, "no DNS A or AAAA records for
 * HOST (REASON)", where REASON is the result's why without the host name
 * that the sentence already gives: "(NXDOMAIN (no such domain))".
 */
void dns_addr_failure(const char *host, const char *why, char *out, size_t len);

struct dnsreach_result;
/*
 * A "SERVFAIL (server failure)" in why, said again with what the servers
 * said to our own question (dnsreach): that a server said so, or that none
 * answered at all. Anything else in why stays.
 */
void dns_reach_words(char *why, size_t len, const struct dnsreach_result *);

#endif

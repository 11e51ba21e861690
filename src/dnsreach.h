/*
 * dnsreach: does a DNS server answer at all? libunbound reports a server
 * that answers SERVFAIL and a server that never answers alike, as SERVFAIL
 * (the second after many seconds of retries). When it says SERVFAIL, dns.c
 * asks the servers once itself, the same question over UDP, and tells the
 * operator which of the two it was.
 * Functions returning int return 0 on success and -1 on failure.
 */
#ifndef XCOMP_DNSREACH_H
#define XCOMP_DNSREACH_H

#include <stddef.h>
#include <stdint.h>

#include "loop.h"

/* resolv.conf(5) uses at most three name servers. */
#define DNSREACH_MAX 3
/* "IP@PORT" of any address. */
#define DNSREACH_ADDR_MAX 64

struct dnsreach_result {
	int answered; /* a server replied */
	int rcode;    /* its rcode, when answered */
	/* Who replied, or every server asked ("127.0.0.1@53, ::1@53") when none did. */
	char servers[DNSREACH_MAX * (DNSREACH_ADDR_MAX + 2)];
};

struct dnsreach;
typedef void dnsreach_cb(void *arg, const struct dnsreach_result *);

/*
 * Ask forwarder ("IP[@PORT]"), or the name servers of /etc/resolv.conf
 * when it is NULL, for name and qtype, and call back once, within ms: the
 * first reply, or none. NULL when not a single server can be asked (no
 * servers, no socket); then the caller keeps what it knows.
 */
struct dnsreach *dnsreach_start(struct loop *, const char *forwarder, const char *name, int qtype,
    unsigned ms, dnsreach_cb *, void *arg);
/* Never calls back after this; NULL is fine. */
void dnsreach_cancel(struct dnsreach *);

/* Pure parts, for the tests. */

/* A query with recursion desired; its length, or 0 when it does not fit or name is bad. */
size_t dnsreach_query(unsigned char *buf, size_t len, uint16_t id, const char *name, int qtype);
/* 0 and the rcode when buf is a response to query id; -1 otherwise. */
int dnsreach_reply(const unsigned char *buf, size_t len, uint16_t id, int *rcode);
/* The "nameserver" addresses of a resolv.conf text, up to max; how many. */
int dnsreach_resolv_conf(const char *text, char out[][DNSREACH_ADDR_MAX], int max);

#endif

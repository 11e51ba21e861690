/*
 * srv: SRV records (RFC 2782) without I/O. Parse the rdata that libunbound
 * hands over, and put the records in the order a client must try them:
 * ascending priority, weighted random choice within one priority.
 * Functions returning int return 0 on success and -1 on failure.
 */
#ifndef XCOMP_SRV_H
#define XCOMP_SRV_H

#include <stddef.h>
#include <stdint.h>

/* Longest host name in presentation form (253 characters) plus the NUL. */
#define SRV_TARGET_MAX 256

struct srv_rr {
	uint16_t priority;
	uint16_t weight;
	uint16_t port;
	/* "a.tptac9.com", no trailing dot; "." for the root (no service). */
	char target[SRV_TARGET_MAX];
	uint32_t ttl;
};

/*
 * A uniform random integer in [0, bound), bound > 0. Production code wraps
 * util_random_below; tests pass a seeded generator.
 */
typedef uint32_t srv_random_fn(void *arg, uint32_t bound);

/*
 * Parse one SRV rdata in wire form (priority, weight, port, then the target
 * as uncompressed labels ending with the root label) into out; out->ttl is
 * set to 0 for the caller to fill. -1 when the rdata is truncated, has bytes
 * after the target, uses a compression pointer or an extended label type, is
 * longer than 255 octets, or a label holds anything but letters, digits, '-'
 * and '_'.
 */
int srv_parse_rdata(const unsigned char *rdata, size_t len, struct srv_rr *out);

/*
 * 1 when the records say the service is decidedly not available (exactly
 * one record, with the target "."), else 0.
 */
int srv_is_null(const struct srv_rr *rrs, size_t n);

/*
 * Write into order (room for n indices into rrs) the order in which to try
 * the records, and return how many were written. RFC 2782: ascending
 * priority; within a priority, weighted random selection without
 * replacement, weight-0 records placed first in the running sum (chosen
 * first with probability 1/(sum+1)); when only weight-0 records remain, a
 * uniform choice among them.
 * Records with the target "." are left out, and so is a target:port (names
 * compared without case) already placed: a node is tried once, at the first
 * place the ordering gives it. n is at most 65536 (a DNS message holds far
 * fewer), so that the sum of weights plus one fits in 32 bits.
 */
size_t srv_order(const struct srv_rr *rrs, size_t n, srv_random_fn *rnd, void *arg, size_t *order);

/*
 * The agent tries at most this many nodes from the SRV records: the first
 * ones of the order. More would only cost address lookups and status lines
 * (one DNS answer can carry some 2,600 records) and never be reached in time.
 */
#define SRV_USE_MAX 32

/*
 * srv_order, stopping once max nodes are placed: the same random choices
 * give the first max entries of srv_order's order, and the work done grows
 * with max, not with the square of n.
 */
size_t srv_order_max(
    const struct srv_rr *rrs, size_t n, size_t max, srv_random_fn *rnd, void *arg, size_t *order);

/*
 * The names where the SRV records of service.domain are often published
 * by mistake, for a person whose records cannot be found: the dot between
 * the service's two labels left out ("_xmpp-component_tcp.tptac9.com"),
 * the XMPP client service's records ("_xmpp-client._tcp.tptac9.com", only
 * for the service _xmpp-component), and the domain doubled by a zone-file
 * line without its trailing dot ("_xmpp-component._tcp.tptac9.com.tptac9.com").
 */
#define SRV_VARIANT_MAX 3
#define SRV_VARIANT_WHY_MAX 320

struct srv_variant {
	char name[SRV_TARGET_MAX];
	char why[SRV_VARIANT_WHY_MAX]; /* what went wrong and what to do */
};

/*
 * Fill out (room for SRV_VARIANT_MAX) with the variants of service
 * ("_xmpp-component._tcp") under domain, in that order, and return how
 * many. A variant whose name would be longer than 253 characters is left
 * out.
 */
size_t srv_variants(const char *service, const char *domain, struct srv_variant *out);

/*
 * One line for a person about name, which has no SRV records (status is
 * "NXDOMAIN" or "NODATA"), and a variant v that has some: "no SRV records
 * for NAME (NXDOMAIN); found V instead: WHY".
 */
void srv_variant_text(
    char *buf, size_t len, const char *name, const char *status, const struct srv_variant *v);

#endif

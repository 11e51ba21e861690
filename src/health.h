/*
 * health: which node the agent tries next, without I/O. Per-node health in
 * the manner of a load balancer's outlier ejection (Envoy's, for one): each
 * node keeps its own failure count and hold time, instead of "rounds" that
 * make every node wait for the slowest. Times are milliseconds on any
 * monotonic clock, passed in, so that tests drive it on a fake clock.
 *
 * The rules:
 * - A node that fails is held for a short, growing, jittered time: from a
 *   quarter of backoff-min (a node that is down: refused, timed out,
 *   dropped) or from backoff-min itself (a node that is up but refuses us:
 *   wrong secret, conflict, closed at once), doubling up to backoff-max.
 * - A session that stays up long enough clears its node's count
 *   (health_stable); so does a node that stayed quiet for backoff-max after
 *   its hold ended (it is "forgiven": its old failure no longer counts).
 * - Among the nodes not held, the one whose last failure is the oldest
 *   goes first (a node that never failed, or is forgiven, before any that
 *   failed), and among equals the first in RFC 2782 order (the order of the
 *   array). So a node that failed more recently never goes before one that
 *   has not failed since.
 * - Only when every node is held does the agent wait: until the earliest
 *   hold ends (health_next_free).
 */
#ifndef XCOMP_HEALTH_H
#define XCOMP_HEALTH_H

#include <stddef.h>
#include <stdint.h>

#include "backoff.h"

#define HEALTH_NONE ((size_t)-1)

struct health {
	unsigned fails;      /* failures since the last stable session or forgiveness */
	uint64_t failed_at;  /* when the last one happened; 0: none counts */
	uint64_t held_until; /* not tried before this */
};

struct health_policy {
	unsigned down_ms;    /* the first hold of a node that is down */
	unsigned refused_ms; /* the first hold of a node that refuses us */
	unsigned max_ms;     /* the longest hold; also the quiet time that forgives */
};

enum health_kind {
	HEALTH_DOWN,   /* connect refused or timed out, session dropped, no address */
	HEALTH_REFUSED /* the node is up but will not have us: auth, conflict, TLS */
};

/* From xcompd.conf's backoff-min and backoff-max, in seconds. */
void health_policy_init(struct health_policy *, unsigned backoff_min_s, unsigned backoff_max_s);

/* A node never tried. */
void health_init(struct health *);

/*
 * The node failed at now: count it, hold the node, and return the hold in
 * milliseconds (rnd as backoff_random_fn; equal jitter: in [step/2, step]).
 */
unsigned health_failed(struct health *, const struct health_policy *, enum health_kind,
    uint64_t now, backoff_random_fn *rnd, void *arg);

/* The node's session held: forget its failures. */
void health_stable(struct health *);

/* 1 while the node must not be tried. */
int health_held(const struct health *, uint64_t now);

/*
 * The node to try now among n (in RFC 2782 order), or HEALTH_NONE when
 * every node is held (or n is 0).
 */
size_t health_pick(const struct health *, size_t n, const struct health_policy *, uint64_t now);

/* When the first held node comes free: the earliest held_until of the n. */
uint64_t health_next_free(const struct health *, size_t n);

#endif

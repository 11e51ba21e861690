/*
 * health: per-node failure counts and holds, and the choice of the next
 * node (see health.h for the rules). Pure arithmetic; the agent keeps one
 * struct health per node and arms its own timers.
 */
#include "health.h"

#define HEALTH_FLOOR_MS 100 /* a backoff-min of 0 still holds a node a little */

void
health_policy_init(struct health_policy *p, unsigned backoff_min_s, unsigned backoff_max_s)
{
	struct backoff b;

	/* backoff_init caps both at a day and keeps max >= min. */
	backoff_init(&b, backoff_min_s, backoff_max_s);
	p->refused_ms = b.min_ms > HEALTH_FLOOR_MS ? b.min_ms : HEALTH_FLOOR_MS;
	p->down_ms = p->refused_ms / 4;
	p->max_ms = b.max_ms > p->refused_ms ? b.max_ms : p->refused_ms;
}

void
health_init(struct health *h)
{
	h->fails = 0;
	h->failed_at = 0;
	h->held_until = 0;
}

/* Quiet for max_ms since its hold ended: the old failures no longer count. */
static int
health_forgiven(const struct health *h, const struct health_policy *p, uint64_t now)
{
	return h->fails > 0 && now >= h->held_until + p->max_ms;
}

/* The step before jitter: first, doubled for each earlier failure, capped. */
static unsigned
health_step(unsigned first, unsigned fails, unsigned max)
{
	uint64_t step = first;

	while (--fails > 0 && step < max)
		step *= 2;
	return step < max ? (unsigned)step : max;
}

unsigned
health_failed(struct health *h, const struct health_policy *p, enum health_kind kind, uint64_t now,
    backoff_random_fn *rnd, void *arg)
{
	unsigned step, low, ms;

	if (health_forgiven(h, p, now))
		h->fails = 0;
	if (h->fails < 64)
		h->fails++;
	step =
	    health_step(kind == HEALTH_REFUSED ? p->refused_ms : p->down_ms, h->fails, p->max_ms);
	/* Equal jitter, as backoff.c: half the step fixed, half random. */
	low = step / 2;
	ms = low + rnd(arg, step - low + 1);
	h->failed_at = now;
	h->held_until = now + ms;
	return ms;
}

void
health_stable(struct health *h)
{
	health_init(h);
}

int
health_held(const struct health *h, uint64_t now)
{
	return h->held_until > now;
}

/* Orders nodes by their last failure: 0 for none (or forgiven), else its time + 1. */
static uint64_t
health_recency(const struct health *h, const struct health_policy *p, uint64_t now)
{
	if (h->fails == 0 || health_forgiven(h, p, now))
		return 0;
	return h->failed_at + 1;
}

size_t
health_pick(const struct health *h, size_t n, const struct health_policy *p, uint64_t now)
{
	size_t i, best = HEALTH_NONE;
	uint64_t key, best_key = 0;

	for (i = 0; i < n; i++) {
		if (health_held(&h[i], now))
			continue;
		key = health_recency(&h[i], p, now);
		/* Strictly older only: among equals the RFC 2782 order stands. */
		if (best == HEALTH_NONE || key < best_key) {
			best = i;
			best_key = key;
		}
	}
	return best;
}

uint64_t
health_next_free(const struct health *h, size_t n)
{
	uint64_t t = UINT64_MAX;
	size_t i;

	for (i = 0; i < n; i++)
		if (h[i].held_until < t)
			t = h[i].held_until;
	return n ? t : 0;
}

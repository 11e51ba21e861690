/*
 * backoff: the delays between attempts when there is no node to try (health.c
 * holds single nodes). Pure arithmetic; the caller arms the timer.
 */
#include "backoff.h"

#define BACKOFF_CAP_S 86400
#define BACKOFF_FIRST_MS 100

void
backoff_init(struct backoff *b, unsigned min_s, unsigned max_s)
{
	if (min_s > BACKOFF_CAP_S)
		min_s = BACKOFF_CAP_S;
	if (max_s > BACKOFF_CAP_S)
		max_s = BACKOFF_CAP_S;
	if (max_s < min_s)
		max_s = min_s;
	b->min_ms = min_s * 1000;
	b->max_ms = max_s * 1000;
	if (b->max_ms < BACKOFF_FIRST_MS)
		b->max_ms = BACKOFF_FIRST_MS;
	b->cur_ms = 0;
}

void
backoff_reset(struct backoff *b)
{
	b->cur_ms = 0;
}

/* min, then doubling, capped at max (backoff_init made max >= the first). */
static unsigned
backoff_step(const struct backoff *b)
{
	if (b->cur_ms == 0)
		return b->min_ms > 0 ? b->min_ms : BACKOFF_FIRST_MS;
	if (b->cur_ms > b->max_ms / 2)
		return b->max_ms;
	return b->cur_ms * 2;
}

unsigned
backoff_next(struct backoff *b, backoff_random_fn *rnd, void *arg)
{
	unsigned step, low;

	step = backoff_step(b);
	b->cur_ms = step;
	/* Equal jitter: half the step fixed, half random, never below min. */
	low = step / 2;
	if (low < b->min_ms)
		low = b->min_ms;
	return low + rnd(arg, step - low + 1);
}

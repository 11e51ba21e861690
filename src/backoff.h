/*
 * backoff: exponential backoff with jitter, without I/O. The delay doubles
 * from min to max; each delay is "equal jitter": half of the current step
 * fixed, the other half random, so retries of many agents spread out while
 * no delay is ever shorter than min or longer than max.
 */
#ifndef XCOMP_BACKOFF_H
#define XCOMP_BACKOFF_H

#include <stdint.h>

struct backoff {
	unsigned min_ms;
	unsigned max_ms;
	unsigned cur_ms; /* the last step, before jitter; 0 before the first */
};

/* A uniform random integer in [0, bound), bound > 0 (as srv_random_fn). */
typedef uint32_t backoff_random_fn(void *arg, uint32_t bound);

/*
 * Steps from min_s to max_s seconds. Both are capped at one day and max_s
 * below min_s counts as min_s. A 0 stands for 100 ms, so that the steps
 * still grow from a min_s of 0 and no retry comes at once.
 */
void backoff_init(struct backoff *, unsigned min_s, unsigned max_s);

/*
 * The next delay in milliseconds, in [max(step/2, min), step], where step is
 * min, then 2 min, 4 min, ... capped at max.
 */
unsigned backoff_next(struct backoff *, backoff_random_fn *rnd, void *arg);

/* Start again from min (after a success). */
void backoff_reset(struct backoff *);

#endif

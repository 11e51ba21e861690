/*
 * timer: one queue of monotonic deadlines (a binary heap). A timer is embedded
 * in its owner; timer_cancel on an unarmed timer is safe, so is cancelling twice.
 */
#ifndef XCOMP_TIMER_H
#define XCOMP_TIMER_H

#include <stddef.h>
#include <stdint.h>

struct timerq;
typedef void timer_cb(void *arg);

struct timer {
	uint64_t when; /* util_now_ms() deadline */
	size_t slot;   /* index in the heap + 1; 0 when not armed */
	timer_cb *cb;
	void *arg;
};

/* Freed with timerq_free. */
struct timerq *timerq_new(void);
void timerq_free(struct timerq *);

void timer_init(struct timer *, timer_cb *, void *arg);
/* Arm (or re-arm) to fire ms milliseconds from now. */
void timer_add(struct timerq *, struct timer *, uint64_t ms);
void timer_cancel(struct timerq *, struct timer *);
int timer_armed(const struct timer *);
/* Milliseconds until the earliest deadline, 0 if due, -1 if none. */
int timerq_timeout(struct timerq *, uint64_t now);
/* Run every timer whose deadline has passed; returns how many ran. */
int timerq_run(struct timerq *, uint64_t now);

#endif

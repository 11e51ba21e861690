/*
 * timer: a binary min-heap of deadlines. Each timer remembers its slot so
 * that cancelling is O(log n) and cancelling an unarmed timer is a no-op.
 */
#include <stdlib.h>

#include "timer.h"
#include "util.h"

struct timerq {
	struct timer **heap;
	size_t n, size;
};

struct timerq *
timerq_new(void)
{
	return xcalloc(1, sizeof(struct timerq));
}

void
timerq_free(struct timerq *q)
{
	size_t i;

	if (q == NULL)
		return;
	for (i = 0; i < q->n; i++)
		q->heap[i]->slot = 0;
	free(q->heap);
	free(q);
}

void
timer_init(struct timer *t, timer_cb *cb, void *arg)
{
	t->when = 0;
	t->slot = 0;
	t->cb = cb;
	t->arg = arg;
}

int
timer_armed(const struct timer *t)
{
	return t->slot != 0;
}

static void
place(struct timerq *q, size_t i, struct timer *t)
{
	q->heap[i] = t;
	t->slot = i + 1;
}

static void
sift_up(struct timerq *q, size_t i)
{
	struct timer *t = q->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (q->heap[parent]->when <= t->when)
			break;
		place(q, i, q->heap[parent]);
		i = parent;
	}
	place(q, i, t);
}

static void
sift_down(struct timerq *q, size_t i)
{
	struct timer *t = q->heap[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= q->n)
			break;
		if (c + 1 < q->n && q->heap[c + 1]->when < q->heap[c]->when)
			c++;
		if (t->when <= q->heap[c]->when)
			break;
		place(q, i, q->heap[c]);
		i = c;
	}
	place(q, i, t);
}

void
timer_cancel(struct timerq *q, struct timer *t)
{
	size_t i;
	struct timer *last;

	if (t->slot == 0)
		return;
	i = t->slot - 1;
	t->slot = 0;
	last = q->heap[--q->n];
	if (i == q->n)
		return;
	place(q, i, last);
	sift_down(q, i);
	sift_up(q, last->slot - 1);
}

void
timer_add(struct timerq *q, struct timer *t, uint64_t ms)
{
	timer_cancel(q, t);
	t->when = util_now_ms() + ms;
	if (q->n == q->size) {
		q->size = q->size ? q->size * 2 : 16;
		q->heap = xrealloc(q->heap, q->size * sizeof(*q->heap));
	}
	place(q, q->n++, t);
	sift_up(q, q->n - 1);
}

int
timerq_timeout(struct timerq *q, uint64_t now)
{
	uint64_t when;

	if (q->n == 0)
		return -1;
	when = q->heap[0]->when;
	if (when <= now)
		return 0;
	return when - now > 86400000 ? 86400000 : (int)(when - now);
}

int
timerq_run(struct timerq *q, uint64_t now)
{
	size_t max = q->n;
	int ran = 0;

	/*
	 * A callback may re-arm timers, even at 0 ms: run at most as many as
	 * were queued on entry so that such a timer cannot spin here.
	 */
	while (q->n > 0 && q->heap[0]->when <= now && (size_t)ran < max) {
		struct timer *t = q->heap[0];

		timer_cancel(q, t);
		t->cb(t->arg);
		ran++;
	}
	return ran;
}

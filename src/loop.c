/*
 * loop: one ppoll() loop, as ntpd's ntp.c: the pollfd array is rebuilt each
 * pass from the registered descriptors, the timeout is the earliest timer,
 * and signals are blocked except while ppoll waits, so a signal can never
 * slip in between the check of its flag and the wait.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "loop.h"
#include "util.h"

struct loop_fd {
	int fd;
	short events;
	int pending;
	int dead;
	loop_fd_cb *cb;
	void *arg;
};

struct sigwatch {
	int signo;
	loop_sig_cb *cb;
	void *arg;
};

struct loop {
	struct loop_fd **fds;
	size_t nfds, sizefds;
	struct pollfd *pfd;
	size_t sizepfd;
	struct timerq *timers;
	struct sigwatch sigs[8];
	size_t nsigs;
	sigset_t waitmask;
	int stop;
	int running;
};

static volatile sig_atomic_t sig_seen[65];

static void
sig_handler(int signo)
{
	if (signo > 0 && signo < 65)
		sig_seen[signo] = 1;
}

struct loop *
loop_new(void)
{
	struct loop *l = xcalloc(1, sizeof(*l));

	l->timers = timerq_new();
	sigprocmask(SIG_BLOCK, NULL, &l->waitmask);
	return l;
}

void
loop_free(struct loop *l)
{
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; i < l->nfds; i++)
		free(l->fds[i]);
	free(l->fds);
	free(l->pfd);
	timerq_free(l->timers);
	free(l);
}

struct loop_fd *
loop_add(struct loop *l, int fd, short events, loop_fd_cb *cb, void *arg)
{
	struct loop_fd *f = xcalloc(1, sizeof(*f));

	f->fd = fd;
	f->events = events;
	f->cb = cb;
	f->arg = arg;
	if (l->nfds == l->sizefds) {
		l->sizefds = l->sizefds ? l->sizefds * 2 : 16;
		l->fds = xrealloc(l->fds, l->sizefds * sizeof(*l->fds));
	}
	l->fds[l->nfds++] = f;
	return f;
}

void
loop_set_events(struct loop_fd *f, short events)
{
	f->events = events;
}

void
loop_set_pending(struct loop_fd *f, int pending)
{
	f->pending = pending;
}

/* Deleted entries are swept after the pass, so callbacks may delete any fd. */
void
loop_del(struct loop *l, struct loop_fd *f)
{
	size_t i;

	if (f == NULL)
		return;
	if (l->running) {
		f->dead = 1;
		return;
	}
	for (i = 0; i < l->nfds; i++)
		if (l->fds[i] == f) {
			l->fds[i] = l->fds[--l->nfds];
			break;
		}
	free(f);
}

static void
sweep(struct loop *l)
{
	size_t i = 0;

	while (i < l->nfds) {
		if (l->fds[i]->dead) {
			free(l->fds[i]);
			l->fds[i] = l->fds[--l->nfds];
		} else
			i++;
	}
}

void
loop_signal(struct loop *l, int signo, loop_sig_cb *cb, void *arg)
{
	struct sigaction sa;
	sigset_t block;

	if (l->nsigs == nitems(l->sigs) || signo <= 0 || signo >= 65)
		fatalx("loop_signal: cannot watch signal %d", signo);
	l->sigs[l->nsigs++] = (struct sigwatch){signo, cb, arg};
	sigemptyset(&block);
	sigaddset(&block, signo);
	sigprocmask(SIG_BLOCK, &block, NULL);
	sigdelset(&l->waitmask, signo);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sig_handler;
	sigemptyset(&sa.sa_mask);
	sigaction(signo, &sa, NULL);
}

struct timerq *
loop_timers(struct loop *l)
{
	return l->timers;
}

void
loop_break(struct loop *l)
{
	l->stop = 1;
}

static void
run_signals(struct loop *l)
{
	size_t i;

	for (i = 0; i < l->nsigs; i++)
		if (sig_seen[l->sigs[i].signo]) {
			sig_seen[l->sigs[i].signo] = 0;
			l->sigs[i].cb(l->sigs[i].signo, l->sigs[i].arg);
		}
}

/* Build the pollfd array; returns how many entries, and sets *pending. */
static size_t
build_pollfds(struct loop *l, int *pending)
{
	size_t i;

	if (l->sizepfd < l->nfds) {
		l->sizepfd = l->sizefds;
		l->pfd = xrealloc(l->pfd, l->sizepfd * sizeof(*l->pfd));
	}
	*pending = 0;
	for (i = 0; i < l->nfds; i++) {
		l->pfd[i].fd = l->fds[i]->fd;
		l->pfd[i].events = l->fds[i]->events;
		l->pfd[i].revents = 0;
		if (l->fds[i]->pending)
			*pending = 1;
	}
	return l->nfds;
}

static void
dispatch(struct loop *l, size_t n)
{
	size_t i;

	/* fds[] may grow during callbacks; only the first n were polled. */
	for (i = 0; i < n && !l->stop; i++) {
		struct loop_fd *f = l->fds[i];
		short rev = l->pfd[i].revents;

		if (f->pending && (f->events & POLLIN))
			rev |= POLLIN;
		if (rev == 0 || f->dead)
			continue;
		f->cb(f->fd, rev, f->arg);
	}
}

static int
timeout_ts(struct loop *l, int pending, struct timespec *ts)
{
	int ms = pending ? 0 : timerq_timeout(l->timers, util_now_ms());

	if (ms < 0)
		return 0;
	ts->tv_sec = ms / 1000;
	ts->tv_nsec = (long)(ms % 1000) * 1000000;
	return 1;
}

/* One pass: signals, due timers, poll (at most wait_ms when >= 0), callbacks. */
static int
run_pass(struct loop *l, int wait_ms)
{
	struct timespec ts, *tsp;
	size_t n;
	int pending, r;

	l->running = 1;
	run_signals(l);
	if (!l->stop)
		timerq_run(l->timers, util_now_ms());
	if (l->stop)
		goto done;
	n = build_pollfds(l, &pending);
	tsp = timeout_ts(l, pending, &ts) ? &ts : NULL;
	if (wait_ms >= 0 && (tsp == NULL || ts.tv_sec * 1000 + ts.tv_nsec / 1000000 > wait_ms)) {
		ts.tv_sec = wait_ms / 1000;
		ts.tv_nsec = (long)(wait_ms % 1000) * 1000000;
		tsp = &ts;
	}
	r = ppoll(l->pfd, n, tsp, &l->waitmask);
	if (r == -1 && errno != EINTR) {
		log_warn("ppoll");
		l->running = 0;
		return -1;
	}
	if (r > 0 || pending)
		dispatch(l, n);
done:
	l->running = 0;
	sweep(l);
	return 0;
}

int
loop_run(struct loop *l)
{
	l->stop = 0;
	while (!l->stop)
		if (run_pass(l, -1) == -1)
			return -1;
	return 0;
}

int
loop_run_once(struct loop *l, int wait_ms)
{
	l->stop = 0;
	return run_pass(l, wait_ms < 0 ? 0 : wait_ms);
}

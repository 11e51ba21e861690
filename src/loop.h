/*
 * loop: the single poll() loop. File descriptors register a callback; the
 * pollfd array is rebuilt each pass; the poll timeout is the earliest timer;
 * signals are blocked except inside ppoll, and their handlers only set flags
 * that the loop turns into callbacks.
 */
#ifndef XCOMP_LOOP_H
#define XCOMP_LOOP_H

#include "timer.h"

struct loop;
struct loop_fd;
typedef void loop_fd_cb(int fd, int revents, void *arg);
typedef void loop_sig_cb(int signo, void *arg);

/* Freed with loop_free. */
struct loop *loop_new(void);
void loop_free(struct loop *);

/* Watch fd for events (POLLIN/POLLOUT). Freed with loop_del. */
struct loop_fd *loop_add(struct loop *, int fd, short events, loop_fd_cb *, void *arg);
void loop_set_events(struct loop_fd *, short events);
/*
 * Mark data as already buffered above the socket (TLS records): the loop
 * calls back with POLLIN without waiting in poll.
 */
void loop_set_pending(struct loop_fd *, int pending);
void loop_del(struct loop *, struct loop_fd *);

/* Deliver signo to cb from the loop (not from the handler). */
void loop_signal(struct loop *, int signo, loop_sig_cb *, void *arg);

struct timerq *loop_timers(struct loop *);

/* Run until loop_break; 0, or -1 when poll fails. */
int loop_run(struct loop *);
void loop_break(struct loop *);
/*
 * One pass of the loop, waiting at most wait_ms for an event: for harnesses
 * (the fuzz targets) that drive the loop themselves. 0, or -1 when poll fails.
 */
int loop_run_once(struct loop *, int wait_ms);

#endif

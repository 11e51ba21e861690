/*
 * notify: tell the service manager (systemd's sd_notify protocol) that
 * xcompd is ready, what state it is in, that its loop still runs, and that
 * it stops. Every function does nothing when NOTIFY_SOCKET is not set, and
 * nothing at all in a build without libsystemd.
 */
#ifndef XCOMP_NOTIFY_H
#define XCOMP_NOTIFY_H

#include <stdint.h>

/* READY=1: the configuration is loaded and the loop runs. */
void notify_ready(void);
/* STATUS=words, when they differ from the last ones sent. */
void notify_status(const char *words);
/* STOPPING=1. */
void notify_stopping(void);
/*
 * The interval at which the manager wants WATCHDOG=1 (WatchdogSec=, through
 * WATCHDOG_USEC and WATCHDOG_PID), in microseconds; 0 when it wants none.
 */
uint64_t notify_watchdog_usec(void);
/* WATCHDOG=1. */
void notify_watchdog(void);

#endif

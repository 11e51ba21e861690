/*
 * notify: sd_notify(3) for xcompd. The agent calls these unconditionally;
 * whether libsystemd is there is decided here, once.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "log.h"
#include "notify.h"
#include "util.h"

#ifdef HAVE_LIBSYSTEMD
static char *last_status; /* the last STATUS= sent: the heartbeat rewrites repeat it */

/* sd_notify returns 0 without NOTIFY_SOCKET: nothing is sent then. */
static void
notify_send(const char *msg)
{
	int r;

	if ((r = sd_notify(0, msg)) < 0)
		log_debug("sd_notify %.20s: %s", msg, strerror(-r));
}

void
notify_ready(void)
{
	notify_send("READY=1");
}

void
notify_status(const char *words)
{
	char *msg;

	if (getenv("NOTIFY_SOCKET") == NULL)
		return;
	if (last_status != NULL && strcmp(last_status, words) == 0)
		return;
	free(last_status);
	last_status = xstrdup(words);
	msg = xasprintf("STATUS=%s", words);
	notify_send(msg);
	free(msg);
}

void
notify_stopping(void)
{
	notify_send("STOPPING=1");
}

uint64_t
notify_watchdog_usec(void)
{
	uint64_t usec = 0;

	if (getenv("NOTIFY_SOCKET") == NULL || sd_watchdog_enabled(0, &usec) <= 0)
		return 0;
	return usec;
}

void
notify_watchdog(void)
{
	notify_send("WATCHDOG=1");
}

#else /* built without libsystemd: the same calls, doing nothing */

void
notify_ready(void)
{
}

void
notify_status(const char *words)
{
	(void)words;
}

void
notify_stopping(void)
{
}

uint64_t
notify_watchdog_usec(void)
{
	return 0;
}

void
notify_watchdog(void)
{
}
#endif

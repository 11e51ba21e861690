/*
 * status: the agent's status file (its contract: STATUS FILE in
 * xcompd.conf(5)): one key=value a line, times in UTC ISO 8601, replaced
 * atomically. Formatting and parsing are pure; status_write is the only I/O.
 * Functions returning int return 0 on success and -1 on failure.
 */
#ifndef XCOMP_STATUS_H
#define XCOMP_STATUS_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

enum agent_state {
	STATUS_RESOLVING,
	STATUS_CONNECTING,
	STATUS_AUTHENTICATING,
	STATUS_CONNECTED,
	STATUS_BACKOFF,
	STATUS_STOPPED,
};

struct status_node {
	char target[256];
	int port;
	unsigned priority, weight;
	const char *result; /* "ok", "untried" or an error code */
};

struct status {
	enum agent_state state;
	time_t since;
	pid_t pid;
	const char *component, *domain;
	const char *server;  /* target:port in use, or NULL */
	const char *address; /* IP in use, or NULL */
	time_t connected_since;
	unsigned failovers;
	/* The time without a session from the last drop to the next session, once one ended. */
	int has_gap;
	unsigned long gap_ms;
	const char *last_error; /* code, or NULL if none yet */
	const char *last_error_text;
	time_t last_error_at;
	const struct status_node *nodes;
	size_t nnodes;
	/* While connected over TLS (tls = direct); tls_version NULL otherwise. */
	const char *tls_version; /* "TLS1.3" */
	const char *tls_cipher;
	const char *tls_peer; /* the server certificate's subject */
	const char *tls_issuer;
	time_t tls_expires;
	/* The relay: "off", "listening" or "connected"; stanzas waiting; bounced in all. */
	const char *relay;
	size_t relay_queued;
	unsigned long relay_bounced;
	int events; /* event-url is set */
	unsigned events_dropped;
};

const char *status_state_name(enum agent_state);

/*
 * The state in a few words for a service manager (systemctl status):
 * "connected to cb2.tptac9.com:5223 since 2026-12-07 20:10:00 UTC", or
 * "no session: " and the last error. Freed with free().
 */
char *status_words(const struct status *);
/* The file's text, "updated" set to now. Freed with free(). */
char *status_format(const struct status *, time_t now);

/* Write through a temporary file in the same directory, then rename. */
int status_write(const char *path, const char *text, char *err, size_t errlen);

/*
 * Keep a second agent off this status file: an fcntl lock on PATH.lock,
 * since the status file itself is replaced by rename. The lock's descriptor
 * (held open until exit, close to release), or -1 with err naming the pid
 * that holds it.
 */
int status_lock(const char *path, char *err, size_t errlen);

/* A parsed status file: its lines as key/value pairs, in order. */
struct status_kv {
	char *key, *value;
};
struct status_file {
	struct status_kv *kv;
	size_t n;
};

/*
 * Parse the text of a status file. -1 if a line is not key=value or the text
 * is larger than 1 MiB. Freed with status_file_free.
 */
int status_parse(const char *text, size_t len, struct status_file *);
void status_file_free(struct status_file *);
/* The first value for key, or NULL. */
const char *status_get(const struct status_file *, const char *key);
/* The section of xcomp-troubleshooting(7) for an error code: "auth" -> "AUTH". */
void status_section(const char *code, char *out, size_t len);
/* Parse "2026-11-26T08:12:31Z"; -1 if malformed. */
int status_parse_time(const char *, time_t *);

#endif

/*
 * status: the status file that the call bridge, scripts and "xcomp status"
 * read. The agent formats it from its state and replaces it atomically so a
 * reader never sees half a file.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "status.h"
#include "util.h"

#define STATUS_MAX (1u << 20)

static const char *const state_names[] = {
    "resolving", "connecting", "authenticating", "connected", "backoff", "stopped"};

const char *
status_state_name(enum agent_state s)
{
	return state_names[s];
}

char *
status_words(const struct status *s)
{
	char when[32];
	struct tm tm;

	if (s->state == STATUS_STOPPED)
		return xstrdup("stopped");
	if (s->state == STATUS_CONNECTED) {
		gmtime_r(&s->connected_since, &tm);
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
		return xasprintf("connected to %s since %s", s->server ? s->server : "?", when);
	}
	/* What went wrong says more than the step the agent is at now. */
	if (s->last_error != NULL)
		return xasprintf("no session: %s", s->last_error_text);
	if (s->state == STATUS_RESOLVING || s->state == STATUS_BACKOFF || s->server == NULL)
		return xasprintf("no session: %s", status_state_name(s->state));
	return xasprintf("no session: %s %s %s", status_state_name(s->state),
	    s->state == STATUS_CONNECTING ? "to" : "at", s->server);
}

static void
put(struct buf *b, const char *key, const char *value)
{
	char clean[1024];
	size_t i;

	/* A value is one line: anything that would break the format is replaced. */
	snprintf(clean, sizeof(clean), "%s", value);
	for (i = 0; clean[i]; i++)
		if ((unsigned char)clean[i] < 0x20 || clean[i] == 0x7f)
			clean[i] = ' ';
	buf_addstr(b, key);
	buf_addstr(b, "=");
	buf_addstr(b, clean);
	buf_addstr(b, "\n");
}

static void
put_time(struct buf *b, const char *key, time_t t)
{
	char iso[32];

	util_iso_time(t, iso, sizeof(iso));
	put(b, key, iso);
}

static void
put_uint(struct buf *b, const char *key, unsigned long v)
{
	char n[32];

	snprintf(n, sizeof(n), "%lu", v);
	put(b, key, n);
}

char *
status_format(const struct status *s, time_t now)
{
	char line[512];
	struct buf b;
	size_t i;

	buf_init(&b, STATUS_MAX);
	put(&b, "state", status_state_name(s->state));
	put_time(&b, "since", s->since);
	put_time(&b, "updated", now);
	put_uint(&b, "pid", (unsigned long)s->pid);
	put(&b, "component", s->component);
	put(&b, "domain", s->domain);
	if (s->server && s->state >= STATUS_CONNECTING && s->state <= STATUS_CONNECTED) {
		put(&b, "server", s->server);
		if (s->address)
			put(&b, "address", s->address);
	}
	if (s->state == STATUS_CONNECTED)
		put_time(&b, "connected-since", s->connected_since);
	if (s->state == STATUS_CONNECTED && s->tls_version) {
		put(&b, "tls", s->tls_version);
		put(&b, "tls-cipher", s->tls_cipher ? s->tls_cipher : "");
		put(&b, "tls-peer", s->tls_peer ? s->tls_peer : "");
		put(&b, "tls-issuer", s->tls_issuer ? s->tls_issuer : "");
		put_time(&b, "tls-expires", s->tls_expires);
	}
	put_uint(&b, "failovers", s->failovers);
	if (s->has_gap) {
		snprintf(line, sizeof(line), "%lu.%03lu", s->gap_ms / 1000, s->gap_ms % 1000);
		put(&b, "last-failover-gap", line);
	}
	put(&b, "relay", s->relay ? s->relay : "off");
	if (s->relay && strcmp(s->relay, "off") != 0) {
		put_uint(&b, "relay-queued", s->relay_queued);
		put_uint(&b, "relay-bounced", s->relay_bounced);
	}
	if (s->events)
		put_uint(&b, "events-dropped", s->events_dropped);
	if (s->last_error) {
		put(&b, "last-error", s->last_error);
		put(&b, "last-error-text", s->last_error_text ? s->last_error_text : "");
		put_time(&b, "last-error-at", s->last_error_at);
	}
	for (i = 0; i < s->nnodes; i++) {
		const struct status_node *n = &s->nodes[i];

		snprintf(line, sizeof(line), "%s:%d priority=%u weight=%u result=%s", n->target,
		    n->port, n->priority, n->weight, n->result);
		put(&b, "node", line);
	}
	buf_add(&b, "", 1);
	return b.data;
}

int
status_write(const char *path, const char *text, char *err, size_t errlen)
{
	/* Rewritten every few seconds: no fsync, a reader only needs it whole. */
	return util_write_file(path, text, strlen(text), 0644, 0, err, errlen);
}

/* Try the lock once: 0 and fd locked, -1 with err set, or 1 when it was freed meanwhile. */
static int
status_lock_try(int fd, const char *path, const char *lpath, char *err, size_t errlen)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};

	if (fcntl(fd, F_SETLK, &fl) == 0)
		return 0;
	if (errno != EACCES && errno != EAGAIN) {
		snprintf(err, errlen, "status-file %s: cannot lock %s: %s", path, lpath,
		    strerror(errno));
		return -1;
	}
	fl.l_type = F_WRLCK;
	if (fcntl(fd, F_GETLK, &fl) == -1) {
		snprintf(err, errlen, "status-file %s: cannot lock %s: %s", path, lpath,
		    strerror(errno));
		return -1;
	}
	if (fl.l_type == F_UNLCK)
		return 1; /* the holder has just exited */
	snprintf(err, errlen,
	    "status-file %s is in use by another xcompd (pid %ld holds %s); stop that one, or "
	    "give this one a status-file of its own",
	    path, (long)fl.l_pid, lpath);
	return -1;
}

int
status_lock(const char *path, char *err, size_t errlen)
{
	char *lpath = xasprintf("%s.lock", path);
	int fd, r = 1, tries;

	if ((fd = open(lpath, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) == -1) {
		snprintf(err, errlen, "status-file %s: cannot open %s: %s", path, lpath,
		    strerror(errno));
		free(lpath);
		return -1;
	}
	for (tries = 0; tries < 3 && r == 1; tries++)
		r = status_lock_try(fd, path, lpath, err, errlen);
	if (r == 1)
		snprintf(err, errlen,
		    "status-file %s: cannot lock %s: another xcompd keeps "
		    "taking and releasing it",
		    path, lpath);
	free(lpath);
	if (r != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int
status_parse(const char *text, size_t len, struct status_file *f)
{
	const char *p = text, *end = text + len, *nl, *eq;

	memset(f, 0, sizeof(*f));
	if (len > STATUS_MAX)
		return -1;
	while (p < end) {
		nl = memchr(p, '\n', end - p);
		if (nl == NULL)
			nl = end;
		if (nl > p) {
			eq = memchr(p, '=', nl - p);
			if (eq == NULL || eq == p || memchr(p, '\0', nl - p) != NULL) {
				status_file_free(f);
				return -1;
			}
			f->kv = xrealloc(f->kv, (f->n + 1) * sizeof(*f->kv));
			f->kv[f->n].key = xstrndup(p, eq - p);
			f->kv[f->n].value = xstrndup(eq + 1, nl - eq - 1);
			f->n++;
		}
		p = nl + 1;
	}
	return 0;
}

void
status_file_free(struct status_file *f)
{
	size_t i;

	for (i = 0; i < f->n; i++) {
		free(f->kv[i].key);
		free(f->kv[i].value);
	}
	free(f->kv);
	f->kv = NULL;
	f->n = 0;
}

const char *
status_get(const struct status_file *f, const char *key)
{
	size_t i;

	for (i = 0; i < f->n; i++)
		if (strcmp(f->kv[i].key, key) == 0)
			return f->kv[i].value;
	return NULL;
}

void
status_section(const char *code, char *out, size_t len)
{
	size_t i;

	for (i = 0; code[i] && i + 1 < len; i++)
		out[i] = toupper((unsigned char)code[i]);
	if (len > 0)
		out[i] = '\0';
}

int
status_parse_time(const char *s, time_t *t)
{
	struct tm tm;
	const char *end;

	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (end == NULL || *end != '\0')
		return -1;
	*t = timegm(&tm);
	return 0;
}

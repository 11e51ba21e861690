/*
 * metrics: the status file as Prometheus metrics for node_exporter's
 * textfile collector. The text comes from the status file's lines, which
 * anyone could have written: a missing or malformed value counts as 0, and
 * label values are escaped as the exposition format says.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "metrics.h"
#include "util.h"

#define METRICS_MAX (1u << 20)

/* One value of a label, between its quotes: backslash, quote and newline escaped. */
static void
metrics_label_value(struct buf *b, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\')
			buf_addstr(b, "\\\\");
		else if (*v == '"')
			buf_addstr(b, "\\\"");
		else if (*v == '\n')
			buf_addstr(b, "\\n");
		else
			buf_add(b, v, 1);
	}
}

static void
metrics_header(struct buf *b, const char *name, const char *type, const char *help)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/*
 * NAME{component="C"[,LABEL="VALUE"]...}: the component on every series, so
 * that several agents on one host (one file each) stay apart.
 */
static void
metrics_series(struct buf *b, const char *name, const char *component, const char *l1,
    const char *v1, const char *l2, const char *v2)
{
	buf_printf(b, "%s{component=\"", name);
	metrics_label_value(b, component);
	if (l1 != NULL) {
		buf_printf(b, "\",%s=\"", l1);
		metrics_label_value(b, v1);
	}
	if (l2 != NULL) {
		buf_printf(b, "\",%s=\"", l2);
		metrics_label_value(b, v2);
	}
	buf_addstr(b, "\"} ");
}

/* A count from the file: digits only, else 0. */
static unsigned long long
metrics_count(const char *v)
{
	if (v == NULL || *v == '\0' || strspn(v, "0123456789") != strlen(v) || strlen(v) > 19)
		return 0;
	return strtoull(v, NULL, 10);
}

/* Seconds from the file ("1.834"): a finite number >= 0, else 0. */
static double
metrics_seconds(const char *v)
{
	char *end;
	double d;

	if (v == NULL || *v == '\0' || strspn(v, "0123456789.") != strlen(v))
		return 0;
	d = strtod(v, &end);
	return *end == '\0' && isfinite(d) ? d : 0;
}

static void
metrics_counter(
    struct buf *b, const char *name, const char *help, const char *component, const char *value)
{
	metrics_header(b, name, "counter", help);
	metrics_series(b, name, component, NULL, NULL, NULL, NULL);
	buf_printf(b, "%llu\n", metrics_count(value));
}

/* The current session's age at the time the file was written; 0 without one. */
static long long
metrics_session_seconds(const struct status_file *f)
{
	const char *state = status_get(f, "state"), *up = status_get(f, "connected-since");
	const char *updated = status_get(f, "updated");
	time_t t_up, t_now;

	if (state == NULL || strcmp(state, "connected") != 0 || up == NULL || updated == NULL ||
	    status_parse_time(up, &t_up) == -1 || status_parse_time(updated, &t_now) == -1 ||
	    t_now < t_up)
		return 0;
	return (long long)(t_now - t_up);
}

/* xcomp_node_result: one series per node, the first line of a HOST:PORT only. */
static void
metrics_nodes(struct buf *b, const struct status_file *f, const char *component)
{
	char node[300], seen[300], result[32];
	size_t i, j;
	int dup;

	metrics_header(b, "xcomp_node_result", "gauge",
	    "The last result at each node the agent knows, in try order: ok, untried or an "
	    "error code (always 1).");
	for (i = 0; i < f->n; i++) {
		if (strcmp(f->kv[i].key, "node") != 0 ||
		    sscanf(f->kv[i].value, "%299s priority=%*u weight=%*u result=%31s", node,
		        result) != 2)
			continue;
		/* A repeated HOST:PORT would be a duplicate series, which the collector refuses. */
		for (j = 0, dup = 0; j < i && !dup; j++)
			dup = strcmp(f->kv[j].key, "node") == 0 &&
			      sscanf(f->kv[j].value, "%299s", seen) == 1 && strcmp(seen, node) == 0;
		if (dup)
			continue;
		metrics_series(b, "xcomp_node_result", component, "node", node, "result", result);
		buf_addstr(b, "1\n");
	}
}

char *
metrics_format(const struct status_file *f)
{
	const char *state = status_get(f, "state"), *component = status_get(f, "component");
	struct buf b;
	int i;

	if (state == NULL)
		state = "";
	if (component == NULL)
		component = "";
	buf_init(&b, METRICS_MAX);
	metrics_header(&b, "xcomp_connected", "gauge",
	    "Whether xcompd holds an authenticated component session (1) or not (0).");
	metrics_series(&b, "xcomp_connected", component, NULL, NULL, NULL, NULL);
	buf_printf(&b, "%d\n", strcmp(state, "connected") == 0);
	metrics_header(&b, "xcomp_state", "gauge", "The agent's state: 1 for the current one.");
	for (i = STATUS_RESOLVING; i <= STATUS_STOPPED; i++) {
		metrics_series(
		    &b, "xcomp_state", component, "state", status_state_name(i), NULL, NULL);
		buf_printf(&b, "%d\n", strcmp(state, status_state_name(i)) == 0);
	}
	metrics_counter(&b, "xcomp_failovers_total",
	    "Times the agent moved to another node after an established session dropped.",
	    component, status_get(f, "failovers"));
	metrics_header(&b, "xcomp_session_seconds", "gauge",
	    "Age of the current component session when the status was written; 0 without one.");
	metrics_series(&b, "xcomp_session_seconds", component, NULL, NULL, NULL, NULL);
	buf_printf(&b, "%lld\n", metrics_session_seconds(f));
	metrics_header(&b, "xcomp_last_failover_gap_seconds", "gauge",
	    "Time without a session from the last drop to the next session; 0 before the "
	    "first failover ended.");
	metrics_series(&b, "xcomp_last_failover_gap_seconds", component, NULL, NULL, NULL, NULL);
	buf_printf(&b, "%.3f\n", metrics_seconds(status_get(f, "last-failover-gap")));
	metrics_nodes(&b, f, component);
	if (status_get(f, "relay-queued") != NULL) {
		metrics_header(&b, "xcomp_relay_queued", "gauge",
		    "Stanzas the relay holds, waiting for a node.");
		metrics_series(&b, "xcomp_relay_queued", component, NULL, NULL, NULL, NULL);
		buf_printf(&b, "%llu\n", metrics_count(status_get(f, "relay-queued")));
	}
	if (status_get(f, "relay-bounced") != NULL)
		metrics_counter(&b, "xcomp_relay_bounced_total",
		    "Stanzas the relay bounced because its queue was full.", component,
		    status_get(f, "relay-bounced"));
	if (status_get(f, "events-dropped") != NULL)
		metrics_counter(&b, "xcomp_events_dropped_total",
		    "Events dropped because the queue to event-url was full.", component,
		    status_get(f, "events-dropped"));
	buf_add(&b, "", 1);
	return b.data;
}

int
metrics_write(const char *path, const char *status_text, char *err, size_t errlen)
{
	struct status_file f;
	char *text;
	int r;

	if (status_parse(status_text, strlen(status_text), &f) == -1) {
		snprintf(err, errlen, "%s: the status to write is not key=value lines", path);
		return -1;
	}
	text = metrics_format(&f);
	status_file_free(&f);
	/* Written with the status file: no fsync, the collector only needs it whole. */
	r = util_write_file(path, text, strlen(text), 0644, 0, err, errlen);
	free(text);
	return r;
}

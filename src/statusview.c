/*
 * statusview: the agent's status file in words for people and as JSON for
 * scripts ("xcomp status"), and the verdict: connected, not connected, or
 * stale. The text comes from a file anyone could have written: every key may
 * be missing or hold anything.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "probe.h"
#include "status.h"
#include "statusview.h"
#include "util.h"

/* "1 minute, 2 seconds" */
static void
ago(time_t secs, char *buf, size_t len)
{
	static const struct {
		const char *unit;
		time_t s;
	} units[] = {{"day", 86400}, {"hour", 3600}, {"minute", 60}, {"second", 1}};
	size_t i, used = 0;
	int parts = 0;

	if (secs < 0)
		secs = 0;
	buf[0] = '\0';
	for (i = 0; i < nitems(units) && parts < 2; i++) {
		time_t n = secs / units[i].s;

		if (n == 0 && !(i == nitems(units) - 1 && parts == 0))
			continue;
		secs -= n * units[i].s;
		used += snprintf(buf + used, len - used, "%s%lld %s%s", parts ? ", " : "",
		    (long long)n, units[i].unit, n == 1 ? "" : "s");
		parts++;
		if (used >= len)
			break;
	}
}

static const char *
error_words(const char *code)
{
	static const struct {
		const char *code, *words;
	} w[] = {{"dns", "DNS error"}, {"dnssec", "DNSSEC validation failure"},
	    {"connect", "connection failure"}, {"timeout", "timeout"}, {"tls", "TLS failure"},
	    {"auth", "authentication failure"},
	    {"conflict", "conflict (component already connected)"}, {"stream", "stream error"},
	    {"closed", "connection closed"}, {"config", "configuration error"}};
	size_t i;

	for (i = 0; i < nitems(w); i++)
		if (strcmp(code, w[i].code) == 0)
			return w[i].words;
	return code;
}

void
statusview_json_str(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(out, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(out, "\\u%04x", (unsigned char)*s);
		else
			fputc(*s, out);
	}
	fputc('"', out);
}

static void
json_node(FILE *out, const char *v)
{
	char target[300];
	unsigned prio = 0, weight = 0;
	char result[32] = "";
	int port = 0;
	const char *colon;

	/* target:port priority=P weight=W result=R */
	if (sscanf(v, "%299s priority=%u weight=%u result=%31s", target, &prio, &weight, result) !=
	        4 ||
	    (colon = strrchr(target, ':')) == NULL) {
		statusview_json_str(out, v);
		return;
	}
	port = atoi(colon + 1);
	target[colon - target] = '\0';
	fprintf(out, "{\"target\": ");
	statusview_json_str(out, target);
	fprintf(out, ", \"port\": %d, \"priority\": %u, \"weight\": %u, \"result\": ", port, prio,
	    weight);
	statusview_json_str(out, result);
	fprintf(out, "}");
}

void
statusview_json(FILE *out, const struct status_file *f, const char *verdict, const char *reason)
{
	size_t i, nodes = 0;

	fprintf(out, "{\n  \"verdict\": ");
	statusview_json_str(out, verdict);
	if (reason != NULL) {
		fprintf(out, ",\n  \"reason\": ");
		statusview_json_str(out, reason);
	}
	for (i = 0; i < f->n; i++) {
		const char *k = f->kv[i].key, *v = f->kv[i].value;

		if (strcmp(k, "node") == 0)
			continue;
		fprintf(out, ",\n  ");
		statusview_json_str(out, k);
		if (strcmp(k, "pid") == 0 || strcmp(k, "failovers") == 0)
			fprintf(out, ": %ld", strtol(v, NULL, 10));
		else {
			fprintf(out, ": ");
			statusview_json_str(out, v);
		}
	}
	fprintf(out, ",\n  \"nodes\": [");
	for (i = 0; i < f->n; i++)
		if (strcmp(f->kv[i].key, "node") == 0) {
			fprintf(out, "%s\n    ", nodes++ ? "," : "");
			json_node(out, f->kv[i].value);
		}
	fprintf(out, "%s]\n}\n", nodes ? "\n  " : "");
}

void
statusview_json_unknown(FILE *out, const char *path, const char *reason)
{
	fprintf(out, "{\n  \"verdict\": \"unknown\",\n  \"state\": \"unknown\",\n  \"reason\": ");
	statusview_json_str(out, reason);
	fprintf(out, ",\n  \"status-file\": ");
	statusview_json_str(out, path);
	fprintf(out, ",\n  \"nodes\": []\n}\n");
}

/*
 * The node the last error names: the first node= target that the error
 * text mentions, as the Meeting Server says "failed to connect to cb2...".
 */
static const char *
failed_node(const struct status_file *f)
{
	static char target[300];
	const char *text = status_get(f, "last-error-text");
	size_t i, n;

	for (i = 0; text && i < f->n; i++) {
		if (strcmp(f->kv[i].key, "node") != 0)
			continue;
		n = strcspn(f->kv[i].value, " ");
		if (n >= sizeof(target))
			continue;
		memcpy(target, f->kv[i].value, n);
		target[n] = '\0';
		if (strstr(text, target) != NULL)
			return target;
		/* Without the port: "no DNS A or AAAA records for cb2.tptac9.com" */
		if (strrchr(target, ':'))
			*strrchr(target, ':') = '\0';
		if (strstr(text, target) != NULL)
			return target;
	}
	return NULL;
}

/* The agent writes at most SRV_USE_MAX nodes; a file with more is not its. */
#define VIEW_NODES_MAX 64

/* A node whose last result is a failure. */
struct view_node {
	char target[300]; /* target:port */
	char code[32];
};

/* The nodes whose last result is a failure, in the status file's order: how many. */
static size_t
failed_nodes(const struct status_file *f, struct view_node *out, size_t max)
{
	unsigned prio, weight;
	size_t i, n = 0;

	for (i = 0; i < f->n && n < max; i++) {
		if (strcmp(f->kv[i].key, "node") != 0 ||
		    sscanf(f->kv[i].value, "%299s priority=%u weight=%u result=%31s", out[n].target,
		        &prio, &weight, out[n].code) != 4 ||
		    strcmp(out[n].code, "ok") == 0 || strcmp(out[n].code, "untried") == 0)
			continue;
		n++;
	}
	return n;
}

/* Whether nodes[i] is the first with its code: one line per code, in try order. */
static int
first_of_code(const struct view_node *v, size_t i)
{
	size_t j;

	for (j = 0; j < i; j++)
		if (strcmp(v[j].code, v[i].code) == 0)
			return 0;
	return 1;
}

static int
has_code(const struct view_node *v, size_t n, const char *code)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(v[i].code, code) == 0)
			return 1;
	return 0;
}

/* "a:5223, b:5223 and c:5223": the nodes that failed with code. */
static void
print_targets(FILE *out, const struct view_node *v, size_t n, const char *code)
{
	size_t i, k = 0, total = 0;
	const char *sep;

	for (i = 0; i < n; i++)
		total += strcmp(v[i].code, code) == 0;
	for (i = 0; i < n; i++)
		if (strcmp(v[i].code, code) == 0) {
			k++;
			sep = k == total ? " and " : ", ";
			fprintf(out, "%s%s", k == 1 ? "" : sep, v[i].target);
		}
}

/*
 * " to a:5223 due to authentication failure, to b:5223 and c:5223 due to
 * connection failure": every node's own failure, so that the one an
 * operator can fix is named even when another node was tried last.
 */
static void
print_failed_to(FILE *out, const struct view_node *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (!first_of_code(v, i))
			continue;
		fprintf(out, "%s to ", i ? "," : "");
		print_targets(out, v, n, v[i].code);
		fprintf(out, " due to %s", error_words(v[i].code));
	}
}

/* One line per failure code: the nodes, the words, the section to read. */
static void
print_failed_nodes(FILE *out, const struct view_node *v, size_t n)
{
	char section[16];
	size_t i, lines = 0;

	for (i = 0; i < n; i++) {
		if (!first_of_code(v, i))
			continue;
		fprintf(out, "%s", lines++ ? "                 " : "Failed nodes:    ");
		print_targets(out, v, n, v[i].code);
		status_section(v[i].code, section, sizeof(section));
		fprintf(out, ": %s. See xcomp-troubleshooting(7), section %s.\n",
		    error_words(v[i].code), section);
	}
}

/*
 * Whether the last error came before the session now up (history, not the
 * state): "::1 refused" then connected over 127.0.0.1 to the same node. The
 * times are to the second, and an error in the second the session began
 * belongs to the attempts that led to it; an error after that (a failed
 * re-resolve or reload while connected) is current.
 */
static int
error_is_earlier(const struct status_file *f, const char *verdict)
{
	const char *at = status_get(f, "last-error-at");
	const char *up = status_get(f, "connected-since");
	time_t t_at, t_up;

	if (strcmp(verdict, "connected") != 0 || at == NULL || up == NULL ||
	    status_parse_time(at, &t_at) == -1 || status_parse_time(up, &t_up) == -1)
		return 0;
	return t_at <= t_up;
}

const char *
statusview_stale_reason(
    const struct status_file *f, unsigned keepalive, time_t now, char *buf, size_t len)
{
	const char *state = status_get(f, "state"), *pid = status_get(f, "pid");
	const char *updated = status_get(f, "updated");
	time_t t;
	long p;

	if (state == NULL)
		snprintf(buf, len, "the file has no state");
	else if (updated == NULL || status_parse_time(updated, &t) == -1)
		snprintf(buf, len, "the file has no valid updated time");
	else if (strcmp(state, "stopped") == 0)
		return NULL; /* the agent said goodbye: its pid is gone for good */
	else if ((p = pid ? strtol(pid, NULL, 10) : 0) <= 0)
		snprintf(buf, len, "the file has no valid pid");
	else if (kill((pid_t)p, 0) == -1 && errno == ESRCH)
		snprintf(buf, len, "the agent (pid %ld) is not running", p);
	/* Written at least every keepalive seconds: allow two missed beats. */
	else if (now - t > (time_t)(2 * keepalive + 5))
		snprintf(buf, len,
		    "the agent (pid %ld) has not written its status since %s, %lld s ago; it "
		    "writes at least every %u s (keepalive)",
		    p, updated, (long long)(now - t), keepalive);
	else
		return NULL;
	return buf;
}

/* "connected", "not connected", "stale" (agent dead or silent). */
const char *
statusview_verdict(const struct status_file *f, unsigned keepalive, time_t now)
{
	const char *state = status_get(f, "state");
	char why[256];

	if (statusview_stale_reason(f, keepalive, now, why, sizeof(why)) != NULL)
		return "stale";
	return strcmp(state, "connected") == 0 ? "connected" : "not connected";
}

/* The TLS session the agent reports while connected over TLS (tls = direct). */
static void
print_tls(FILE *out, const struct status_file *f, time_t now)
{
	const char *version = status_get(f, "tls"), *cipher = status_get(f, "tls-cipher");
	const char *peer = status_get(f, "tls-peer"), *issuer = status_get(f, "tls-issuer");
	const char *expires = status_get(f, "tls-expires");
	char words[64] = "";
	time_t t;

	if (version == NULL)
		return;
	fprintf(out, "TLS:             %s%s%s\n", version, cipher && *cipher ? ", cipher " : "",
	    cipher && *cipher ? cipher : "");
	if (expires && status_parse_time(expires, &t) == 0)
		probe_expiry_words(t, now, words, sizeof(words));
	fprintf(out, "Certificate:     %s, issued by %s, valid until %s%s%s%s\n",
	    peer && *peer ? peer : "?", issuer && *issuer ? issuer : "?", expires ? expires : "?",
	    words[0] ? " (" : "", words, words[0] ? ")" : "");
}

/* The relay, when the agent runs one (relay-listen). */
static void
print_relay(FILE *out, const struct status_file *f)
{
	const char *relay = status_get(f, "relay"), *queued = status_get(f, "relay-queued");
	const char *bounced = status_get(f, "relay-bounced"), *dropped;

	if (relay != NULL && strcmp(relay, "off") != 0)
		fprintf(out, "Relay:           %s, %s stanza%s queued, %s bounced\n",
		    strcmp(relay, "connected") == 0 ? "local component connected"
		                                    : "listening, no local component",
		    queued ? queued : "0", queued && strcmp(queued, "1") == 0 ? "" : "s",
		    bounced ? bounced : "0");
	if ((dropped = status_get(f, "events-dropped")) != NULL && strcmp(dropped, "0") != 0)
		fprintf(
		    out, "Events:          %s dropped (the receiver was down too long)\n", dropped);
}

void
statusview_human(FILE *out, const struct status_file *f, const char *v, time_t now)
{
	const char *state = status_get(f, "state"), *server = status_get(f, "server");
	const char *err = status_get(f, "last-error"), *text = status_get(f, "last-error-text");
	const char *at = status_get(f, "last-error-at"), *since = status_get(f, "since");
	const char *node = err ? failed_node(f) : NULL; /* the node the error names */
	struct view_node fails[VIEW_NODES_MAX];
	size_t nfails = failed_nodes(f, fails, nitems(fails));
	char when[64] = "", up[64] = "", section[16];
	size_t i, nodes = 0;
	int earlier = err ? error_is_earlier(f, v) : 0;
	time_t t;

	if (at && status_parse_time(at, &t) == 0)
		ago(now - t, when, sizeof(when));
	if (since && status_parse_time(since, &t) == 0)
		ago(now - t, up, sizeof(up));
	if (strcmp(v, "stale") == 0)
		fprintf(out,
		    "XMPP connection: unknown: the agent (pid %s) is not running or has not "
		    "written its status since %s\n",
		    status_get(f, "pid") ? status_get(f, "pid") : "?",
		    status_get(f, "updated") ? status_get(f, "updated") : "?");
	else if (strcmp(v, "connected") == 0)
		fprintf(out, "XMPP connection: connected to %s (%s) for %s\n",
		    server ? server : "?",
		    status_get(f, "address") ? status_get(f, "address") : "?", up);
	else if (state && strcmp(state, "stopped") == 0)
		fprintf(out, "XMPP connection: stopped (%s ago)\n", up);
	else if (err && node && nfails > 0) {
		fprintf(out, "XMPP connection: %s; failed to connect", state);
		print_failed_to(out, fails, nfails);
		fprintf(out, " (%s ago)\n", when);
	} else if (err)
		fprintf(out, "XMPP connection: %s; failed to connect%s%s due to %s (%s ago)\n",
		    state, node ? " to " : "", node ? node : "", error_words(err), when);
	else
		fprintf(out, "XMPP connection: %s (for %s)\n", state ? state : "?", up);
	fprintf(out, "Component:       %s (domain %s)\n",
	    status_get(f, "component") ? status_get(f, "component") : "?",
	    status_get(f, "domain") ? status_get(f, "domain") : "?");
	fprintf(out, "State:           %s since %s\n", state ? state : "?", since ? since : "?");
	print_tls(out, f, now);
	print_relay(out, f);
	fprintf(out, "Failovers:       %s\n",
	    status_get(f, "failovers") ? status_get(f, "failovers") : "0");
	if (err && earlier)
		fprintf(out, "Earlier:         %s (%s ago, before this session)\n",
		    text ? text : err, when);
	else if (err) {
		fprintf(out, "Last error:      %s (%s ago)\n", text ? text : err, when);
		status_section(err, section, sizeof(section));
		/* A node's failure gets its section on the node's line below. */
		if (!has_code(fails, nfails, err))
			fprintf(out, "                 See xcomp-troubleshooting(7), section %s.\n",
			    section);
	}
	print_failed_nodes(out, fails, nfails);
	for (i = 0; i < f->n; i++)
		if (strcmp(f->kv[i].key, "node") == 0)
			fprintf(out, "%s  %s\n", nodes++ ? "" : "Nodes, in RFC 2782 order:\n",
			    f->kv[i].value);
}

/*
 * history: what happened overnight. The agent appends a line for each
 * transition (start, drop, connection, stop) to a file with a size cap;
 * "xcomp history" prints it and "xcomp status" sums the last 24 hours. The
 * file may hold anything (an older format, a hand edit, a torn line):
 * readers skip what does not parse.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "history.h"
#include "status.h"
#include "statusview.h"
#include "util.h"

static const char *const history_names[] = {"started", "dropped", "connected", "stopped"};

const char *
history_event_name(enum history_event e)
{
	return history_names[e];
}

/* One field: a tab, the value with tabs and control characters as spaces. */
static void
history_put(struct buf *b, const char *v)
{
	char c;

	buf_addstr(b, "\t");
	for (; *v; v++) {
		c = ((unsigned char)*v < 0x20 || *v == 0x7f) ? ' ' : *v;
		buf_add(b, &c, 1);
	}
}

char *
history_format(const struct history_entry *e)
{
	char iso[32], gap[32];
	struct buf b;

	buf_init(&b, 4096);
	util_iso_time(e->at, iso, sizeof(iso));
	buf_addstr(&b, iso);
	history_put(&b, history_event_name(e->event));
	switch (e->event) {
	case HISTORY_DROPPED:
		history_put(&b, e->node);
		history_put(&b, e->code);
		history_put(&b, e->text);
		break;
	case HISTORY_CONNECTED:
		snprintf(gap, sizeof(gap), "%" PRIu64 ".%03u", e->gap_ms / 1000,
		    (unsigned)(e->gap_ms % 1000));
		history_put(&b, e->node);
		history_put(&b, gap);
		break;
	case HISTORY_STOPPED:
		if (e->node[0])
			history_put(&b, e->node);
		break;
	case HISTORY_STARTED:
		break;
	}
	buf_add(&b, "\n", 2);
	return b.data;
}

#define HISTORY_FIELDS 5

/* Split line at tabs into at most HISTORY_FIELDS fields (copies into f); how many. */
static size_t
history_split(const char *line, size_t len, char f[HISTORY_FIELDS][600])
{
	size_t n = 0, start = 0, i, w;

	for (i = 0; i <= len && n < HISTORY_FIELDS; i++) {
		if (i < len && line[i] != '\t')
			continue;
		w = i - start;
		if (w >= sizeof(f[0]))
			w = sizeof(f[0]) - 1;
		memcpy(f[n], line + start, w);
		f[n][w] = '\0';
		n++;
		start = i + 1;
	}
	return n;
}

/* "12.345": whole seconds and up to three decimals, into ms. */
static int
history_parse_gap(const char *s, uint64_t *ms)
{
	char *end;
	unsigned long long secs;
	unsigned frac = 0, digits = 0;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	secs = strtoull(s, &end, 10);
	if (errno || secs > 100ull * 365 * 86400)
		return -1;
	if (*end == '.')
		for (end++; *end >= '0' && *end <= '9' && digits < 3; end++, digits++)
			frac = frac * 10 + (unsigned)(*end - '0');
	if (*end != '\0')
		return -1;
	for (; digits < 3; digits++)
		frac *= 10;
	*ms = secs * 1000 + frac;
	return 0;
}

int
history_parse_line(const char *line, size_t len, struct history_entry *e)
{
	char f[HISTORY_FIELDS][600];
	size_t n, i;

	memset(e, 0, sizeof(*e));
	if (memchr(line, '\0', len) != NULL)
		return -1;
	n = history_split(line, len, f);
	if (n < 2 || status_parse_time(f[0], &e->at) == -1)
		return -1;
	for (i = 0; i < nitems(history_names); i++)
		if (strcmp(f[1], history_names[i]) == 0)
			break;
	if (i == nitems(history_names))
		return -1;
	e->event = (enum history_event)i;
	if (n > 2)
		snprintf(e->node, sizeof(e->node), "%.299s", f[2]);
	switch (e->event) {
	case HISTORY_DROPPED:
		if (n < 4 || f[2][0] == '\0' || f[3][0] == '\0')
			return -1;
		snprintf(e->code, sizeof(e->code), "%.31s", f[3]);
		if (n > 4)
			snprintf(e->text, sizeof(e->text), "%s", f[4]);
		return 0;
	case HISTORY_CONNECTED:
		if (n < 4 || f[2][0] == '\0')
			return -1;
		return history_parse_gap(f[3], &e->gap_ms);
	case HISTORY_STARTED:
	case HISTORY_STOPPED:
		return 0;
	}
	return -1;
}

size_t
history_parse(const char *text, size_t len, struct history_entry **out)
{
	const char *p = text, *end = text + len, *nl;
	struct history_entry e;
	size_t n = 0, cap = 0;

	*out = NULL;
	for (; p < end; p = nl + 1) {
		if ((nl = memchr(p, '\n', end - p)) == NULL)
			nl = end; /* a last line without its newline: torn, or complete */
		if (history_parse_line(p, nl - p, &e) == -1)
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			*out = xrealloc(*out, cap * sizeof(**out));
		}
		(*out)[n++] = e;
	}
	return n;
}

size_t
history_trim(const char *text, size_t len, size_t add, size_t max)
{
	size_t target = max / 4 * 3, off = 0;
	const char *nl;

	if (add > target)
		return len;
	/* Drop whole lines from the front until the rest and the new line fit. */
	while (off < len && len - off + add > target) {
		if ((nl = memchr(text + off, '\n', len - off)) == NULL)
			return len;
		off = nl - text + 1;
	}
	return off;
}

/* The part of [from, to] (ms since the epoch) inside [lo, hi]. */
static uint64_t
history_overlap(int64_t from, int64_t to, int64_t lo, int64_t hi)
{
	if (from < lo)
		from = lo;
	if (to > hi)
		to = hi;
	return to > from ? (uint64_t)(to - from) : 0;
}

void
history_sums(const struct history_entry *e, size_t n, time_t now, time_t window,
    unsigned *failovers, uint64_t *without_ms)
{
	int64_t hi = (int64_t)now * 1000, lo = hi - (int64_t)window * 1000, at;
	size_t i;

	*failovers = 0;
	*without_ms = 0;
	for (i = 0; i < n; i++) {
		at = (int64_t)e[i].at * 1000;
		if (e[i].event == HISTORY_DROPPED && at >= lo && at <= hi)
			(*failovers)++;
		if (e[i].event == HISTORY_CONNECTED)
			*without_ms += history_overlap(at - (int64_t)e[i].gap_ms, at, lo, hi);
	}
	/* No connection yet since the last drop or start: that gap is still open. */
	if (n > 0 && (e[n - 1].event == HISTORY_DROPPED || e[n - 1].event == HISTORY_STARTED))
		*without_ms += history_overlap((int64_t)e[n - 1].at * 1000, hi, lo, hi);
}

void
history_duration(uint64_t ms, char *buf, size_t len)
{
	uint64_t s = ms / 1000;

	/* A failover takes milliseconds: "0.0 s" would hide it. */
	if (ms < 1000)
		snprintf(buf, len, "%" PRIu64 " ms", ms);
	else if (ms < 60000)
		snprintf(buf, len, "%" PRIu64 ".%" PRIu64 " s", s, ms % 1000 / 100);
	else if (s < 3600)
		snprintf(buf, len, "%" PRIu64 " min %" PRIu64 " s", s / 60, s % 60);
	else
		snprintf(buf, len, "%" PRIu64 " h %" PRIu64 " min", s / 3600, s % 3600 / 60);
}

/* A drop's reason in a few words: a session that times out missed its keepalive. */
static const char *
history_reason(const char *code)
{
	static const struct {
		const char *code, *words;
	} w[] = {{"timeout", "keepalive timeout"}, {"closed", "connection closed"},
	    {"stream", "stream error"}, {"connect", "connection failure"}, {"tls", "TLS failure"},
	    {"auth", "authentication failure"}, {"conflict", "conflict"},
	    {"reload", "configuration reloaded"}};
	size_t i;

	for (i = 0; i < nitems(w); i++)
		if (strcmp(code, w[i].code) == 0)
			return w[i].words;
	return code;
}

void
history_human(FILE *out, const struct history_entry *e, size_t n)
{
	char day[16], last[16] = "", clock[16], gap[32];
	struct tm tm;
	size_t i;

	if (n == 0)
		fprintf(out, "No transitions recorded.\n");
	for (i = 0; i < n; i++) {
		localtime_r(&e[i].at, &tm);
		strftime(day, sizeof(day), "%Y-%m-%d", &tm);
		strftime(clock, sizeof(clock), "%H:%M:%S", &tm);
		if (strcmp(day, last) != 0)
			fprintf(out, "%s\n", day);
		snprintf(last, sizeof(last), "%s", day);
		fprintf(out, "  %s ", clock);
		switch (e[i].event) {
		case HISTORY_STARTED:
			fprintf(out, "started\n");
			break;
		case HISTORY_DROPPED:
			fprintf(out, "dropped by %s (%s)\n", e[i].node, history_reason(e[i].code));
			break;
		case HISTORY_CONNECTED:
			history_duration(e[i].gap_ms, gap, sizeof(gap));
			fprintf(out, "connected to %s after %s\n", e[i].node, gap);
			break;
		case HISTORY_STOPPED:
			fprintf(out, "stopped%s%s\n", e[i].node[0] ? ", leaving " : "", e[i].node);
			break;
		}
	}
}

void
history_json(FILE *out, const char *path, const struct history_entry *e, size_t n, time_t now)
{
	char iso[32];
	unsigned failovers;
	uint64_t without;
	size_t i;

	history_sums(e, n, now, 86400, &failovers, &without);
	fprintf(out, "{\n  \"history-file\": ");
	statusview_json_str(out, path);
	fprintf(out,
	    ",\n  \"last-24h\": {\"failovers\": %u, \"without-session\": %" PRIu64 ".%03u},\n"
	    "  \"events\": [",
	    failovers, without / 1000, (unsigned)(without % 1000));
	for (i = 0; i < n; i++) {
		util_iso_time(e[i].at, iso, sizeof(iso));
		fprintf(out, "%s\n    {\"time\": \"%s\", \"event\": \"%s\"", i ? "," : "", iso,
		    history_event_name(e[i].event));
		if (e[i].node[0]) {
			fprintf(out, ", \"node\": ");
			statusview_json_str(out, e[i].node);
		}
		if (e[i].event == HISTORY_DROPPED) {
			fprintf(out, ", \"reason\": ");
			statusview_json_str(out, e[i].code);
			fprintf(out, ", \"text\": ");
			statusview_json_str(out, e[i].text);
		}
		if (e[i].event == HISTORY_CONNECTED)
			fprintf(out, ", \"gap\": %" PRIu64 ".%03u", e[i].gap_ms / 1000,
			    (unsigned)(e[i].gap_ms % 1000));
		fprintf(out, "}");
	}
	fprintf(out, "%s]\n}\n", n ? "\n  " : "");
}

void
history_status_line(FILE *out, const struct history_entry *e, size_t n, time_t now)
{
	unsigned failovers;
	uint64_t without;
	char d[32];

	history_sums(e, n, now, 86400, &failovers, &without);
	history_duration(without, d, sizeof(d));
	fprintf(out, "Last 24 hours:   %u failover%s, %s without a session\n", failovers,
	    failovers == 1 ? "" : "s", d);
}

char *
history_read(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "r");
	char *text;
	int e;

	if (fp == NULL)
		return NULL;
	text = xmalloc(HISTORY_MAX_MAX + 1);
	*len = fread(text, 1, HISTORY_MAX_MAX, fp);
	if (ferror(fp)) {
		e = errno;
		fclose(fp);
		free(text);
		errno = e;
		return NULL;
	}
	fclose(fp);
	text[*len] = '\0';
	return text;
}

/* Keep the newest lines and line, through a temporary file and rename. */
static int
history_rewrite(
    const char *path, size_t max, const char *line, size_t add, char *err, size_t errlen)
{
	size_t len, off;
	char *text;
	int r;

	if ((text = history_read(path, &len)) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	off = history_trim(text, len, add, max);
	/* The file now ends with the new line; the text buffer has room for it. */
	text = xrealloc(text, len + add + 1);
	memcpy(text + len, line, add);
	r = util_write_file(path, text + off, len - off + add, 0644, 0, err, errlen);
	free(text);
	return r;
}

int
history_append(const char *path, size_t max, const char *line, char *err, size_t errlen)
{
	size_t add = strlen(line);
	struct stat sb;
	ssize_t w;
	int fd;

	if ((fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)) == -1 ||
	    fstat(fd, &sb) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	if ((size_t)sb.st_size + add > max) {
		close(fd);
		return history_rewrite(path, max, line, add, err, errlen);
	}
	/* One write of a whole line: with O_APPEND a reader sees it whole or not at all. */
	w = write(fd, line, add);
	if (w != (ssize_t)add) {
		snprintf(err, errlen, "%s: %s", path, w == -1 ? strerror(errno) : "short write");
		close(fd);
		return -1;
	}
	return close(fd) == -1 ? util_fail(err, errlen, "%s: %s", path, strerror(errno)) : 0;
}

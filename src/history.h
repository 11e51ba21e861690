/*
 * history: the agent's last transitions (its contract: HISTORY FILE in
 * xcompd.conf(5)), one tab-separated line each, oldest first:
 *
 *   TIME started
 *   TIME dropped NODE CODE TEXT     a session ended: its node and why
 *   TIME connected NODE GAP         a session began; GAP: seconds without one
 *   TIME stopped [NODE]
 *
 * TIME is UTC ISO 8601, GAP seconds with three decimals. The file has a cap:
 * an append that would pass it drops the oldest lines and replaces the file
 * atomically. Formatting, parsing, trimming and the sums are pure;
 * history_append and history_read are the only I/O.
 * Functions returning int return 0 on success and -1 on failure.
 */
#ifndef XCOMP_HISTORY_H
#define XCOMP_HISTORY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

/* The default cap (history-max) in bytes, and the bounds the key takes. */
#define HISTORY_MAX_DEFAULT 65536u
#define HISTORY_MAX_MIN 1024u
#define HISTORY_MAX_MAX (16u << 20)

enum history_event {
	HISTORY_STARTED,
	HISTORY_DROPPED,
	HISTORY_CONNECTED,
	HISTORY_STOPPED,
};

struct history_entry {
	time_t at;
	enum history_event event;
	char node[300];  /* target:port, or "" */
	char code[32];   /* dropped: the error code ("timeout") */
	char text[600];  /* dropped: the error in words */
	uint64_t gap_ms; /* connected: time without a session before it */
};

const char *history_event_name(enum history_event);

/* One line, with its newline, for e; tabs and control characters in fields become spaces. Freed
 * with free(). */
char *history_format(const struct history_entry *);

/*
 * Parse one line (without its newline). -1 for anything that is not a
 * history line (unknown event, bad time, missing fields): readers skip it.
 */
int history_parse_line(const char *line, size_t len, struct history_entry *);

/*
 * Parse a whole file's text: the entries that parse, in order; other lines
 * are skipped. Returns how many; *out (NULL when none) is freed with free().
 */
size_t history_parse(const char *text, size_t len, struct history_entry **out);

/*
 * Where the text must start so that what is left, plus add more bytes, fits
 * in max: the offset of a line start (len when no line can stay). Trims to
 * three quarters of max, so that a full file is not rewritten on every
 * append.
 */
size_t history_trim(const char *text, size_t len, size_t add, size_t max);

/*
 * The last window seconds before now: failovers (sessions dropped) and the
 * time without a session (the gaps that connections ended, and the one still
 * open when the last entry is a drop or a start), clipped to the window.
 */
void history_sums(const struct history_entry *, size_t n, time_t now, time_t window,
    unsigned *failovers, uint64_t *without_ms);

/* "12 ms", "1.8 s", "2 min 5 s", "1 h 2 min" into buf. */
void history_duration(uint64_t ms, char *buf, size_t len);

/* The entries for a person, a date line whenever the (local) day changes. */
void history_human(FILE *, const struct history_entry *, size_t n);
/* The entries and the 24-hour sums as one JSON object. */
void history_json(FILE *, const char *path, const struct history_entry *, size_t n, time_t now);
/* The line "xcomp status" adds: "Last 24 hours:   1 failover, 1.8 s without a session". */
void history_status_line(FILE *, const struct history_entry *, size_t n, time_t now);

/*
 * Append line to the file at path (created 0644). When the file would pass
 * max bytes, keep its newest lines (history_trim) and replace it through a
 * temporary file and rename. -1 with err naming the file.
 */
int history_append(const char *path, size_t max, const char *line, char *err, size_t errlen);

/* Read the file's text (at most HISTORY_MAX_MAX bytes). NULL with errno set. Freed with free(). */
char *history_read(const char *path, size_t *len);

#endif

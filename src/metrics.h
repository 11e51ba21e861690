/*
 * metrics: the agent's status as Prometheus metrics, in the text format
 * that node_exporter's textfile collector reads (metrics-file in
 * xcompd.conf(5), "xcomp status --prometheus"). Both build the text from the
 * status file's lines with metrics_format, so they print the same.
 * Functions returning int return 0 on success and -1 on failure.
 */
#ifndef XCOMP_METRICS_H
#define XCOMP_METRICS_H

#include <stddef.h>

#include "status.h"

/*
 * The metrics of a parsed status file; times are measured from its
 * "updated" line, not the clock, so the text depends on the file alone.
 * Freed with free().
 */
char *metrics_format(const struct status_file *);
/* metrics_format of a status file's text, written through a temporary file and rename. */
int metrics_write(const char *path, const char *status_text, char *err, size_t errlen);

#endif

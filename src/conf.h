/*
 * conf: the reader for "key = value" files. '#' starts a comment, blank
 * lines are ignored, white space around key and value is trimmed. Each
 * key/value pair is handed to a callback; errors come back as
 * "file:line: message".
 * Functions returning int return 0 on success and -1 on failure.
 */
#ifndef XCOMP_CONF_H
#define XCOMP_CONF_H

#include <stddef.h>

#define CONF_LINE_MAX 4096

/*
 * Called for each pair. Return NULL to accept it, or a message (static, or
 * written into err of errlen bytes) that the reader prefixes with file:line.
 */
typedef const char *conf_pair_cb(void *arg, const char *key, const char *value,
    char *err, size_t errlen);

/* Parse the open file path; on error fill err with "path:line: message". */
int conf_parse_file(const char *path, conf_pair_cb *, void *arg, char *err, size_t errlen);
/* Parse a string (for -o KEY=VALUE and tests); name stands in for the file name. */
int conf_parse_string(const char *name, const char *text, conf_pair_cb *, void *arg,
    char *err, size_t errlen);

/* Value helpers: 0 and *out set, or -1. */
int conf_uint(const char *value, unsigned min, unsigned max, unsigned *out);
int conf_bool(const char *value, int *out);

#endif

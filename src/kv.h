/*
 * kv: the reader for "key = value" files. '#' starts a comment, blank
 * lines are ignored, white space around key and value is trimmed. Each
 * key/value pair is handed to a callback; errors come back as
 * "file:line: message".
 * Functions returning int return 0 on success and -1 on failure.
 */
#ifndef XCOMP_KV_H
#define XCOMP_KV_H

#include <stddef.h>

#define KV_LINE_MAX 4096

/*
 * Called for each pair. Return NULL to accept it, or a message (static, or
 * written into err of errlen bytes) that the reader prefixes with file:line.
 */
typedef const char *kv_pair_cb(
    void *arg, const char *key, const char *value, char *err, size_t errlen);

/* Parse the open file path; on error fill err with "path:line: message". */
int kv_parse_file(const char *path, kv_pair_cb *, void *arg, char *err, size_t errlen);
/* Parse a string (for -o KEY=VALUE and tests); name stands in for the file name. */
int kv_parse_string(
    const char *name, const char *text, kv_pair_cb *, void *arg, char *err, size_t errlen);

/* Value helpers: 0 and *out set, or -1. */
int kv_uint(const char *value, unsigned min, unsigned max, unsigned *out);
int kv_bool(const char *value, int *out);

#endif

/*
 * kv: the "key = value" reader shared by xcompd's configuration (conf.c)
 * and xcomp-server's state directory (server/state.c). It knows no keys:
 * each pair goes to the caller, which accepts it or says what is wrong, and
 * the reader adds the file and line.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"
#include "util.h"

struct kv_reader {
	const char *name;
	unsigned line;
	kv_pair_cb *cb;
	void *arg;
	char *err;
	size_t errlen;
};

static int kv_fail(struct kv_reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
kv_fail(struct kv_reader *r, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (r->line > 0)
		snprintf(r->err, r->errlen, "%s:%u: %s", r->name, r->line, msg);
	else
		snprintf(r->err, r->errlen, "%s: %s", r->name, msg);
	return -1;
}

static int
kv_valid_key(const char *k)
{
	if (*k == '\0')
		return 0;
	for (; *k; k++)
		if (!isalnum((unsigned char)*k) && *k != '-' && *k != '_' && *k != '.')
			return 0;
	return 1;
}

/* One line, without its newline. */
static int
kv_parse_line(struct kv_reader *r, char *line)
{
	char msg[512], *eq, *key, *value, *p;
	const char *why;

	for (p = line; *p; p++)
		if ((unsigned char)*p < 0x20 && *p != '\t')
			return kv_fail(r, "control character (0x%02x) in line", (unsigned char)*p);
	/* A '#' starts a comment only at the start of a line or after white space. */
	for (p = line; *p; p++)
		if (*p == '#' && (p == line || isspace((unsigned char)p[-1]))) {
			*p = '\0';
			break;
		}
	key = util_trim(line);
	if (*key == '\0')
		return 0;
	if ((eq = strchr(key, '=')) == NULL)
		return kv_fail(r, "expected \"key = value\", found \"%.60s\"", key);
	*eq = '\0';
	value = util_trim(eq + 1);
	key = util_trim(key);
	if (!kv_valid_key(key))
		return kv_fail(r, "bad key \"%.60s\"", key);
	if (*value == '\0')
		return kv_fail(r, "%s: missing value", key);
	msg[0] = '\0';
	if ((why = r->cb(r->arg, key, value, msg, sizeof(msg))) != NULL)
		return kv_fail(r, "%s", why);
	return 0;
}

/*
 * One line into line (KV_LINE_MAX + 1 bytes), without its newline: its
 * length, -1 at the end of the file, -2 if too long, -3 if it holds a NUL.
 */
static int
kv_read_line(FILE *fp, char *line)
{
	int c, n = 0, nul = 0;

	while ((c = getc(fp)) != EOF && c != '\n') {
		if (n == KV_LINE_MAX)
			return -2;
		if (c == '\0')
			nul = 1;
		line[n++] = (char)c;
	}
	if (c == EOF && n == 0)
		return -1;
	line[n] = '\0';
	return nul ? -3 : n;
}

static int
kv_parse_stream(struct kv_reader *r, FILE *fp)
{
	char line[KV_LINE_MAX + 1];
	int n;

	while ((n = kv_read_line(fp, line)) != -1) {
		r->line++;
		if (n == -2)
			return kv_fail(r, "line longer than %d bytes", KV_LINE_MAX);
		if (n == -3)
			return kv_fail(r, "NUL byte in line");
		if (n > 0 && line[n - 1] == '\r')
			line[--n] = '\0';
		if (kv_parse_line(r, line) == -1)
			return -1;
	}
	if (ferror(fp)) {
		r->line = 0;
		return kv_fail(r, "read error: %s", strerror(errno));
	}
	return 0;
}

int
kv_parse_file(const char *path, kv_pair_cb *cb, void *arg, char *err, size_t errlen)
{
	struct kv_reader r = {path, 0, cb, arg, err, errlen};
	FILE *fp;
	int rv;

	if ((fp = fopen(path, "r")) == NULL)
		return kv_fail(&r, "cannot open: %s", strerror(errno));
	rv = kv_parse_stream(&r, fp);
	fclose(fp);
	return rv;
}

int
kv_parse_string(
    const char *name, const char *text, kv_pair_cb *cb, void *arg, char *err, size_t errlen)
{
	struct kv_reader r = {name, 0, cb, arg, err, errlen};
	FILE *fp;
	int rv;

	if ((fp = fmemopen((void *)text, strlen(text), "r")) == NULL)
		return kv_fail(&r, "fmemopen: %s", strerror(errno));
	rv = kv_parse_stream(&r, fp);
	fclose(fp);
	return rv;
}

int
kv_uint(const char *value, unsigned min, unsigned max, unsigned *out)
{
	char *end;
	unsigned long v;

	if (!isdigit((unsigned char)*value))
		return -1;
	errno = 0;
	v = strtoul(value, &end, 10);
	if (errno || *end != '\0' || v < min || v > max)
		return -1;
	*out = (unsigned)v;
	return 0;
}

int
kv_bool(const char *value, int *out)
{
	if (strcmp(value, "on") == 0 || strcmp(value, "yes") == 0 || strcmp(value, "true") == 0)
		*out = 1;
	else if (strcmp(value, "off") == 0 || strcmp(value, "no") == 0 ||
	         strcmp(value, "false") == 0)
		*out = 0;
	else
		return -1;
	return 0;
}

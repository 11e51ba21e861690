/*
 * The status file as "xcomp status" reads it: the file may have been
 * written by anyone, cut short, or be something else entirely. Parsed, then
 * printed in words and as JSON. Checks: a parsed file gives back what its
 * lines said; the JSON output is one object whose strings hold no raw
 * control characters.
 */
#include <string.h>

#include "fuzz.h"
#include "status.h"
#include "statusview.h"

static FILE *devnull;

static void
check_json(const char *s, size_t len)
{
	size_t i;
	int in_str = 0;

	FUZZ_CHECK(len >= 2 && s[0] == '{' && s[len - 2] == '}' && s[len - 1] == '\n');
	for (i = 0; i < len; i++) {
		if (in_str && s[i] == '\\') {
			i++;
			continue;
		}
		if (s[i] == '"')
			in_str = !in_str;
		else if (in_str)
			FUZZ_CHECK((unsigned char)s[i] >= 0x20);
	}
	FUZZ_CHECK(!in_str);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct status_file f;
	const char *v;
	char *json = NULL, why[256];
	size_t jsonlen = 0, i;
	FILE *out;
	time_t now = 1795000000; /* 2026-11-18 */

	if (devnull == NULL)
		FUZZ_CHECK((devnull = fopen("/dev/null", "w")) != NULL);
	if (status_parse((const char *)data, size, &f) == -1)
		return 0;
	for (i = 0; i < f.n; i++) {
		FUZZ_CHECK(f.kv[i].key != NULL && f.kv[i].value != NULL);
		FUZZ_CHECK(
		    strchr(f.kv[i].key, '\n') == NULL && strchr(f.kv[i].value, '\n') == NULL);
		FUZZ_CHECK(status_get(&f, f.kv[i].key) != NULL);
	}
	v = statusview_verdict(&f, 30, now);
	statusview_human(devnull, &f, v, now);
	FUZZ_CHECK((out = open_memstream(&json, &jsonlen)) != NULL);
	statusview_json(out, &f, v, statusview_stale_reason(&f, 30, now, why, sizeof(why)));
	fclose(out);
	check_json(json, jsonlen);
	free(json);
	status_file_free(&f);
	return 0;
}

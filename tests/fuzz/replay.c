/*
 * A fuzz target without libFuzzer: runs the target on every file of its
 * corpus (tests/fuzz/corpus/NAME, seeds and the inputs of past findings),
 * or on the files and directories named. Built by every "make check", so
 * the corpora are regression tests under valgrind or the sanitizers.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

static int
run_file(const char *path)
{
	FILE *fp = fopen(path, "rb");
	uint8_t *data;
	size_t size;
	long len;

	if (fp == NULL || fseek(fp, 0, SEEK_END) == -1 || (len = ftell(fp)) < 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		if (fp)
			fclose(fp);
		return -1;
	}
	rewind(fp);
	size = (size_t)len;
	data = malloc(size ? size : 1);
	if (data == NULL || fread(data, 1, size, fp) != size) {
		fprintf(stderr, "%s: cannot read\n", path);
		free(data);
		fclose(fp);
		return -1;
	}
	fclose(fp);
	LLVMFuzzerTestOneInput(data, size);
	free(data);
	return 0;
}

static int
by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* Files run, or -1. */
static long
run_path(const char *path)
{
	struct dirent **names;
	struct stat sb;
	char sub[4096];
	long count = 0;
	int i, n, failed = 0;

	if (stat(path, &sb) == -1) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(sb.st_mode))
		return run_file(path) == 0 ? 1 : -1;
	if ((n = scandir(path, &names, NULL, by_name)) == -1) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	for (i = 0; i < n; i++) {
		snprintf(sub, sizeof(sub), "%s/%s", path, names[i]->d_name);
		if (names[i]->d_name[0] != '.' && stat(sub, &sb) == 0 && S_ISREG(sb.st_mode)) {
			if (run_file(sub) == -1)
				failed = 1;
			count++;
		}
		free(names[i]);
	}
	free(names);
	return failed ? -1 : count;
}

int
main(int argc, char **argv)
{
	const char *src = getenv("XCOMP_SRCDIR");
	char dir[4096];
	long n, total = 0;
	int i;

	if (argc < 2) {
		snprintf(dir, sizeof(dir), "%s/tests/fuzz/corpus/%s", src ? src : ".", FUZZ_NAME);
		if ((total = run_path(dir)) <= 0) {
			fprintf(stderr, "%s: no inputs\n", dir);
			return 1;
		}
	}
	for (i = 1; i < argc; i++) {
		if ((n = run_path(argv[i])) == -1)
			return 1;
		total += n;
	}
	/* One test, whatever the count: an input that fails aborts before this. */
	printf("%s: replayed %ld inputs\n1 passed, 0 failed\n", FUZZ_NAME, total);
	return 0;
}

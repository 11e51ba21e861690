/*
 * The configuration reader (xcompd.conf) and the secret file reader, fed
 * from a real file (a memfd, read through /proc/self/fd as xcompd reads a
 * path) or as a string (-o KEY=VALUE). The first byte chooses. Checks: an
 * error is one line that names where; a secret read back is exactly the
 * file's first line.
 */
#include <sys/mman.h>
#include <sys/stat.h>

#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "kv.h"
#include "fuzz.h"

static int
memfile(const uint8_t *data, size_t size, char *path, size_t pathlen)
{
	int fd = memfd_create("fuzz", MFD_CLOEXEC);

	FUZZ_CHECK(fd != -1);
	FUZZ_CHECK(fchmod(fd, 0600) == 0);
	FUZZ_CHECK(write(fd, data, size) == (ssize_t)size);
	snprintf(path, pathlen, "/proc/self/fd/%d", fd);
	return fd;
}

static void
check_error(const char *err, const char *where)
{
	FUZZ_CHECK(*err != '\0' && strchr(err, '\n') == NULL);
	FUZZ_CHECK(strncmp(err, where, strlen(where)) == 0);
}

static void
fuzz_config(const uint8_t *data, size_t size, int as_file)
{
	struct conf *c = conf_new();
	char path[64], err[512] = "", *text;
	int fd = -1, rv;

	if (as_file) {
		fd = memfile(data, size, path, sizeof(path));
		rv = conf_load(c, path, err, sizeof(err));
	} else {
		text = strndup((const char *)data, size);
		snprintf(path, sizeof(path), "-o");
		rv = kv_parse_string(path, text, conf_set, c, err, sizeof(err));
		free(text);
	}
	if (rv == -1)
		check_error(err, path);
	else {
		/* No files and no trust store: conf_check's TLS step loads them. */
		c->tls = 0;
		free(c->trust_anchor);
		c->trust_anchor = NULL;
		if (conf_check(c, err, sizeof(err)) == -1)
			check_error(err, as_file ? path : "configuration");
	}
	conf_free(c);
	if (fd != -1)
		close(fd);
}

static void
fuzz_secret(const uint8_t *data, size_t size)
{
	char path[64], err[512] = "", *secret;
	int fd = memfile(data, size, path, sizeof(path));
	size_t len;

	if (conf_read_secret(path, &secret, err, sizeof(err)) == 0) {
		len = strlen(secret);
		FUZZ_CHECK(len > 0 && len <= CONF_SECRET_MAX && len <= size);
		FUZZ_CHECK(memcmp(secret, data, len) == 0);
		FUZZ_CHECK(len == size || data[len] == '\n' || data[len] == '\r');
		conf_wipe_free(secret);
	} else {
		FUZZ_CHECK(secret == NULL);
		check_error(err, "secret-file ");
	}
	close(fd);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	switch (data[0] % 3) {
	case 0:
		fuzz_config(data + 1, size - 1, 1);
		break;
	case 1:
		fuzz_config(data + 1, size - 1, 0);
		break;
	default:
		fuzz_secret(data + 1, size - 1);
	}
	return 0;
}

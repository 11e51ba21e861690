/*
 * control: what "xcomp-server -d DIR status | cluster ..." does when the
 * server runs: one request, one answer, over DIR/control.sock.
 */
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control.h"

/* A connected socket to DIR/control.sock, or -1 with err set. */
static int
control_connect(const char *dir, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if ((size_t)snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/%s", dir, CONTROL_SOCK_NAME) >=
	    sizeof(sun.sun_path)) {
		snprintf(err, errlen, "not running for %s (%s/%s: path too long for a socket)", dir,
		    dir, CONTROL_SOCK_NAME);
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		snprintf(
		    err, errlen, "not running for %s (%s: %s)", dir, sun.sun_path, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	return fd;
}

int
control_running(const char *dir)
{
	char err[256];
	int fd;

	if ((fd = control_connect(dir, err, sizeof(err))) == -1)
		return 0;
	close(fd);
	return 1;
}

/* "status" and "cluster status" print their report whatever the status. */
static int
control_is_status(const char *line)
{
	return strcmp(line, "status") == 0 || strcmp(line, "cluster status") == 0;
}

/* The first line of an answer: a status from 0 to 255. */
static int
control_parse_status(const char *s, size_t len, int *status)
{
	size_t i;
	int v = 0;

	if (len == 0 || len > 3)
		return -1;
	for (i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (v > 255)
		return -1;
	*status = v;
	return 0;
}

/* A join or remove waits for the leader; the rest is answered at once. */
static int
control_timeout(const char *line)
{
	return strncmp(line, "cluster join ", 13) == 0 || strncmp(line, "cluster remove ", 15) == 0
	           ? CONTROL_WAIT_S
	           : CONTROL_TIMEOUT_S;
}

static int
control_broken(const char *dir, FILE *errout, int *status, const char *why)
{
	fprintf(errout, "xcomp-server: the server for %s (%s/%s) %s\n", dir, dir, CONTROL_SOCK_NAME,
	    why);
	*status = 2;
	return 0;
}

int
control_request(const char *dir, const char *line, FILE *out, FILE *errout, int *status, char *err,
    size_t errlen)
{
	struct timeval tv = {control_timeout(line), 0};
	char buf[4096], head[8];
	size_t nhead = 0;
	ssize_t n;
	char *nl;
	FILE *to = NULL;
	int fd;

	if ((fd = control_connect(dir, err, errlen)) == -1)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	snprintf(buf, sizeof(buf), "%s\n", line);
	/* MSG_NOSIGNAL: a server that closed already is an answer, not a SIGPIPE. */
	if (send(fd, buf, strlen(buf), MSG_NOSIGNAL) != (ssize_t)strlen(buf)) {
		close(fd);
		return control_broken(dir, errout, status, "did not take the request");
	}
	shutdown(fd, SHUT_WR);
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		if (to != NULL) {
			fwrite(buf, 1, n, to);
			continue;
		}
		nl = memchr(buf, '\n', n);
		if (nl == NULL || nhead + (nl - buf) > sizeof(head)) {
			if (nl == NULL && nhead + n <= sizeof(head)) {
				memcpy(head + nhead, buf, n);
				nhead += n;
				continue;
			}
			break;
		}
		memcpy(head + nhead, buf, nl - buf);
		nhead += nl - buf;
		if (control_parse_status(head, nhead, status) == -1)
			break;
		to = *status == 0 || control_is_status(line) ? out : errout;
		fwrite(nl + 1, 1, n - (nl + 1 - buf), to);
	}
	close(fd);
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		snprintf(buf, sizeof(buf),
		    "did not answer within %d s (is the process stopped, or stuck?)",
		    control_timeout(line));
		return control_broken(dir, errout, status, buf);
	}
	if (to == NULL)
		return control_broken(dir, errout, status, "gave no status line");
	fflush(to);
	return 0;
}

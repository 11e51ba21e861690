/*
 * dnsreach: one UDP question to each DNS server, to tell a server that
 * answers SERVFAIL from one that does not answer (see dnsreach.h). The
 * first half builds and reads the packets and does no I/O.
 */
#include <sys/socket.h>

#include <netdb.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dnsreach.h"
#include "log.h"
#include "util.h"

#define DNSREACH_HEADER 12
#define DNSREACH_PACKET_MAX 512

size_t
dnsreach_query(unsigned char *buf, size_t len, uint16_t id, const char *name, int qtype)
{
	size_t n = DNSREACH_HEADER, label;
	const char *p = name, *dot;

	if (len < DNSREACH_HEADER + 1 + 4 || *name == '\0')
		return 0;
	memset(buf, 0, DNSREACH_HEADER);
	buf[0] = id >> 8;
	buf[1] = id & 0xff;
	buf[2] = 0x01; /* RD */
	buf[5] = 1;    /* one question */
	while (*p != '\0') {
		dot = strchr(p, '.');
		label = dot ? (size_t)(dot - p) : strlen(p);
		if (label == 0 || label > 63 || n + 1 + label + 1 + 4 > len)
			return 0;
		buf[n++] = (unsigned char)label;
		memcpy(buf + n, p, label);
		n += label;
		p += label + (dot != NULL);
	}
	buf[n++] = 0;
	buf[n++] = (unsigned char)(qtype >> 8);
	buf[n++] = (unsigned char)qtype;
	buf[n++] = 0;
	buf[n++] = 1; /* IN */
	return n;
}

int
dnsreach_reply(const unsigned char *buf, size_t len, uint16_t id, int *rcode)
{
	if (len < DNSREACH_HEADER || buf[0] != id >> 8 || buf[1] != (id & 0xff))
		return -1;
	if (!(buf[2] & 0x80)) /* QR: a response */
		return -1;
	*rcode = buf[3] & 0x0f;
	return 0;
}

int
dnsreach_resolv_conf(const char *text, char out[][DNSREACH_ADDR_MAX], int max)
{
	const char *line = text, *end;
	char ip[DNSREACH_ADDR_MAX];
	int n = 0;

	for (; *line != '\0' && n < max; line = *end ? end + 1 : end) {
		end = line + strcspn(line, "\n");
		/* "nameserver ADDR", ADDR ending at blank or end of line. */
		if (sscanf(line, " nameserver %63[^ \t\n#;]", ip) == 1)
			snprintf(out[n++], DNSREACH_ADDR_MAX, "%s", ip);
	}
	return n;
}

/* The shell */

struct dnsreach_server {
	struct dnsreach *r;
	int fd;
	struct loop_fd *lfd;
	char name[DNSREACH_ADDR_MAX];
};

struct dnsreach {
	struct loop *loop;
	struct dnsreach_server s[DNSREACH_MAX];
	int n;
	uint16_t id;
	unsigned char query[DNSREACH_PACKET_MAX];
	size_t qlen;
	struct timer t;
	dnsreach_cb *cb;
	void *arg;
};

/* "IP[@PORT]" to a connected UDP socket; -1 when it cannot be. */
static int
dnsreach_socket(const char *spec, char *name, size_t namelen)
{
	char ip[DNSREACH_ADDR_MAX], *at;
	const char *port = "53";
	struct addrinfo hints, *ai;
	int fd;

	if ((size_t)snprintf(ip, sizeof(ip), "%s", spec) >= sizeof(ip))
		return -1;
	if ((at = strchr(ip, '@')) != NULL) {
		*at = '\0';
		port = at + 1;
	}
	if ((size_t)snprintf(name, namelen, "%s@%s", ip, port) >= namelen)
		return -1;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_DGRAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	if (getaddrinfo(ip, port, &hints, &ai) != 0)
		return -1;
	fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd != -1 && connect(fd, ai->ai_addr, ai->ai_addrlen) == -1) {
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

/* The servers to ask: forwarder, or resolv.conf's. */
static int
dnsreach_servers(const char *forwarder, char out[][DNSREACH_ADDR_MAX])
{
	char text[8192];
	size_t len;
	FILE *f;

	if (forwarder != NULL) {
		return (size_t)snprintf(out[0], DNSREACH_ADDR_MAX, "%s", forwarder) <
		       DNSREACH_ADDR_MAX;
	}
	/* libunbound read the same file; its first 8 KiB hold the servers. */
	if ((f = fopen("/etc/resolv.conf", "re")) == NULL)
		return 0;
	len = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[len] = '\0';
	return dnsreach_resolv_conf(text, out, DNSREACH_MAX);
}

static void
dnsreach_free(struct dnsreach *r)
{
	int i;

	timer_cancel(loop_timers(r->loop), &r->t);
	for (i = 0; i < r->n; i++) {
		loop_del(r->loop, r->s[i].lfd);
		close(r->s[i].fd);
	}
	free(r);
}

static void
dnsreach_finish(struct dnsreach *r, const struct dnsreach_result *res)
{
	r->cb(r->arg, res);
	dnsreach_free(r);
}

static void
dnsreach_readable(int fd, int revents, void *arg)
{
	struct dnsreach_server *s = arg;
	struct dnsreach_result res = {.answered = 1};
	unsigned char buf[DNSREACH_PACKET_MAX];
	ssize_t got;

	(void)revents;
	/* A refusal (ICMP) reads as an error: that server does not answer. */
	if ((got = recv(fd, buf, sizeof(buf), 0)) <= 0)
		return;
	if (dnsreach_reply(buf, (size_t)got, s->r->id, &res.rcode) == -1)
		return;
	snprintf(res.servers, sizeof(res.servers), "%s", s->name);
	dnsreach_finish(s->r, &res);
}

static void
dnsreach_expired(void *arg)
{
	struct dnsreach *r = arg;
	struct dnsreach_result res = {.answered = 0};
	size_t used = 0;
	int i;

	for (i = 0; i < r->n && used < sizeof(res.servers); i++)
		used += (size_t)snprintf(res.servers + used, sizeof(res.servers) - used, "%s%s",
		    i ? ", " : "", r->s[i].name);
	dnsreach_finish(r, &res);
}

struct dnsreach *
dnsreach_start(struct loop *loop, const char *forwarder, const char *name, int qtype, unsigned ms,
    dnsreach_cb *cb, void *arg)
{
	char servers[DNSREACH_MAX][DNSREACH_ADDR_MAX];
	struct dnsreach *r = xcalloc(1, sizeof(*r));
	int i, n, fd;

	r->loop = loop;
	r->cb = cb;
	r->arg = arg;
	util_random(&r->id, sizeof(r->id));
	timer_init(&r->t, dnsreach_expired, r);
	r->qlen = dnsreach_query(r->query, sizeof(r->query), r->id, name, qtype);
	n = r->qlen ? dnsreach_servers(forwarder, servers) : 0;
	for (i = 0; i < n; i++) {
		struct dnsreach_server *s = &r->s[r->n];

		if ((fd = dnsreach_socket(servers[i], s->name, sizeof(s->name))) == -1)
			continue;
		/* A send that fails now (no route) is a server that does not answer. */
		if (send(fd, r->query, r->qlen, 0) == -1)
			log_debug("dns: %s: %s", s->name, strerror(errno));
		s->r = r;
		s->fd = fd;
		s->lfd = loop_add(loop, fd, POLLIN, dnsreach_readable, s);
		r->n++;
	}
	if (r->n == 0) {
		free(r);
		return NULL;
	}
	timer_add(loop_timers(loop), &r->t, ms);
	return r;
}

void
dnsreach_cancel(struct dnsreach *r)
{
	if (r != NULL)
		dnsreach_free(r);
}

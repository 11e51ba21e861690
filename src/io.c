/*
 * io: buffered non-blocking socket I/O. One io owns one socket and its
 * capped write queue; bytes go through a transport (plain TCP here) so that
 * TLS can replace it without the owners noticing. An io closed with
 * io_close_after_flush lingers on its own: it writes what is queued, shuts
 * its side down and waits briefly for the peer's EOF, so that a final stream
 * error reaches the peer instead of being cut off by a reset.
 */
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io.h"
#include "log.h"
#include "util.h"

#define IO_READ_CHUNK 16384
#define IO_READS_PER_PASS 4
#define IO_LINGER_MS 2000

struct io {
	struct loop *loop;
	struct loop_fd *lfd;
	int fd;
	int connecting;
	int paused;
	int closing;     /* writing what is left, then shutting down */
	int busy;        /* inside an owner callback */
	int freed;       /* io_free during a callback */
	int err;         /* write error seen outside the loop, reported next pass */
	int done;        /* closed was reported: no more events */
	int handshaking; /* the transport's handshake runs */
	short hs_want;   /* POLLIN or POLLOUT for the next handshake step */
	struct buf out;
	const struct io_handler *h;
	void *arg;
	const struct io_ops *ops;
	void *ctx;
	struct timer linger;
	char peer[64];
};

static unsigned lingering; /* ios closing on their own */

static ssize_t
plain_read(struct io *io, void *p, size_t n)
{
	return read(io->fd, p, n);
}

static ssize_t
plain_write(struct io *io, const void *p, size_t n)
{
	return send(io->fd, p, n, MSG_NOSIGNAL);
}

static const struct io_ops plain_ops = {plain_read, plain_write, NULL, NULL, NULL};

static void io_event(int, int, void *);

static void
update_events(struct io *io)
{
	short ev = 0;

	if (io->done)
		ev = 0;
	else if (io->connecting)
		ev = POLLOUT;
	else if (io->handshaking)
		ev = io->hs_want;
	else {
		if (!io->paused)
			ev |= POLLIN;
		if (io->out.len > 0 || io->err)
			ev |= POLLOUT;
	}
	loop_set_events(io->lfd, ev);
	loop_set_pending(io->lfd, !io->done && !io->paused && !io->connecting && !io->handshaking &&
	                              io->ops->pending && io->ops->pending(io) > 0);
}

static void
destroy(struct io *io)
{
	if (io->closing)
		lingering--;
	timer_cancel(loop_timers(io->loop), &io->linger);
	loop_del(io->loop, io->lfd);
	if (io->ops->free)
		io->ops->free(io);
	if (io->fd != -1)
		close(io->fd);
	buf_free(&io->out);
	free(io);
}

static void
linger_expired(void *arg)
{
	destroy(arg);
}

struct io *
io_new(
    struct loop *loop, int fd, int connecting, size_t outmax, const struct io_handler *h, void *arg)
{
	struct io *io = xcalloc(1, sizeof(*io));
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int one = 1;

	io->loop = loop;
	io->fd = fd;
	io->connecting = connecting;
	io->h = h;
	io->arg = arg;
	io->ops = &plain_ops;
	buf_init(&io->out, outmax);
	timer_init(&io->linger, linger_expired, io);
	util_nonblock(fd);
	/* Stanzas are small and latency matters more than packet count. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (!connecting && getpeername(fd, (struct sockaddr *)&ss, &len) == 0)
		util_sockaddr_str(&ss, io->peer, sizeof(io->peer));
	io->lfd = loop_add(loop, fd, 0, io_event, io);
	update_events(io);
	return io;
}

/*
 * Bind fd to src, port 0, when src is of fd's family. IP_BIND_ADDRESS_NO_PORT
 * leaves the port to connect(), so that sources bound this way do not use up
 * the ephemeral ports on their own.
 */
static int
io_bind_source(int fd, int family, const char *src)
{
	struct sockaddr_storage ss;
	int sslen, one = 1;

	if (src == NULL || util_sockaddr(src, 0, &ss, &sslen) == -1 || ss.ss_family != family)
		return 0;
#ifdef IP_BIND_ADDRESS_NO_PORT
	(void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
#else
	(void)one;
#endif
	return bind(fd, (struct sockaddr *)&ss, sslen);
}

struct io *
io_connect_from(struct loop *loop, const char *src, const char *ip, int port, size_t outmax,
    const struct io_handler *h, void *arg)
{
	struct sockaddr_storage ss;
	struct io *io;
	int fd, sslen, e;

	if (util_sockaddr(ip, port, &ss, &sslen) == -1) {
		errno = EINVAL;
		return NULL;
	}
	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1)
		return NULL;
	if (io_bind_source(fd, ss.ss_family, src) == -1 ||
	    (connect(fd, (struct sockaddr *)&ss, sslen) == -1 && errno != EINPROGRESS)) {
		e = errno;
		close(fd);
		errno = e;
		return NULL;
	}
	io = io_new(loop, fd, 1, outmax, h, arg);
	util_sockaddr_str(&ss, io->peer, sizeof(io->peer));
	return io;
}

struct io *
io_connect(struct loop *loop, const char *ip, int port, size_t outmax, const struct io_handler *h,
    void *arg)
{
	return io_connect_from(loop, NULL, ip, port, outmax, h, arg);
}

/* Call into the owner; returns -1 if the owner freed the io meanwhile. */
#define CALLBACK(io, call)                                                                         \
	do {                                                                                       \
		(io)->busy++;                                                                      \
		call;                                                                              \
		(io)->busy--;                                                                      \
		if ((io)->freed && !(io)->busy) {                                                  \
			destroy(io);                                                               \
			return;                                                                    \
		}                                                                                  \
	} while (0)

static int
flush(struct io *io)
{
	ssize_t n;

	while (io->out.len > 0) {
		n = io->ops->write(io, buf_head(&io->out), io->out.len);
		if (n == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				return 0;
			return -1;
		}
		buf_consume(&io->out, n);
	}
	buf_shrink(&io->out);
	return 0;
}

static void
finish_closing(struct io *io)
{
	/* Our side is done; wait (bounded) for the peer to close its side. */
	shutdown(io->fd, SHUT_WR);
	loop_set_events(io->lfd, POLLIN);
	loop_set_pending(io->lfd, 0);
}

static void
closing_event(struct io *io, int revents)
{
	char scratch[4096];
	ssize_t n;

	if (io->out.len > 0) {
		if (flush(io) == -1) {
			destroy(io);
			return;
		}
		if (io->out.len > 0)
			return;
		finish_closing(io);
		return;
	}
	if (revents & (POLLIN | POLLHUP | POLLERR)) {
		n = read(io->fd, scratch, sizeof(scratch));
		if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR))
			destroy(io);
	}
}

static void
connect_event(struct io *io)
{
	socklen_t len = sizeof(int);
	int err = 0;

	if (getsockopt(io->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	io->connecting = 0;
	update_events(io);
	CALLBACK(io, io->h->connected(io->arg, err));
}

static void
handshake_event(struct io *io)
{
	int r = io->ops->handshake(io);

	if (r == IO_WANT_READ || r == IO_WANT_WRITE) {
		io->hs_want = r == IO_WANT_READ ? POLLIN : POLLOUT;
		update_events(io);
		return;
	}
	io->handshaking = 0;
	if (r != 0)
		io->done = 1;
	update_events(io);
	CALLBACK(io, io->h->secured(io->arg, r == 0 ? 0 : -1));
}

static void
read_event(struct io *io)
{
	char chunk[IO_READ_CHUNK];
	ssize_t n;
	int i, e;

	/* A few reads per pass keep one busy peer from starving the rest. */
	for (i = 0; i < IO_READS_PER_PASS && !io->paused && !io->closing; i++) {
		n = io->ops->read(io, chunk, sizeof(chunk));
		if (n > 0) {
			CALLBACK(io, io->h->data(io->arg, chunk, n));
			continue;
		}
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			break;
		e = n == 0 ? 0 : errno;
		io->done = 1;
		update_events(io);
		CALLBACK(io, io->h->closed(io->arg, e));
		return;
	}
	if (!io->closing)
		update_events(io);
}

static void
io_event(int fd, int revents, void *arg)
{
	struct io *io = arg;
	int e;

	(void)fd;
	if (io->closing) {
		closing_event(io, revents);
		return;
	}
	if (io->done)
		return;
	if (io->connecting) {
		connect_event(io);
		return;
	}
	if (io->handshaking) {
		handshake_event(io);
		return;
	}
	if ((revents & POLLOUT) || io->err) {
		if (io->err || flush(io) == -1) {
			e = io->err ? io->err : errno;
			io->err = 0;
			io->done = 1;
			update_events(io);
			CALLBACK(io, io->h->closed(io->arg, e));
			return;
		}
		update_events(io);
	}
	if (revents & (POLLIN | POLLHUP | POLLERR))
		read_event(io);
}

int
io_write(struct io *io, const void *p, size_t n)
{
	if (io->closing || buf_add(&io->out, p, n) == -1)
		return -1;
	/*
	 * No send here: the loop's next pass (POLLOUT) writes everything queued
	 * meanwhile in one call, so a burst of stanzas costs one syscall, not one
	 * each, for a few microseconds of latency.
	 */
	update_events(io);
	return 0;
}

int
io_flush(struct io *io)
{
	if (io->done || io->closing || io->connecting || io->handshaking || io->err ||
	    io->out.len == 0)
		return 0;
	if (flush(io) == -1) {
		io->err = errno;
		update_events(io);
		return -1;
	}
	update_events(io);
	return 0;
}

int
io_print(struct io *io, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (r == -1)
		fatal("vasprintf");
	r = io_write(io, s, strlen(s));
	free(s);
	return r;
}

size_t
io_queued(const struct io *io)
{
	return io->out.len;
}

void
io_close_after_flush(struct io *io)
{
	if (io->closing)
		return;
	io->closing = 1;
	io->paused = 1;
	lingering++;
	timer_add(loop_timers(io->loop), &io->linger, IO_LINGER_MS);
	if (io->out.len == 0 || io->err) {
		buf_free(&io->out);
		finish_closing(io);
	} else
		loop_set_events(io->lfd, POLLOUT);
	/* The owner lets go now; a pending free from a callback is moot. */
	io->h = NULL;
}

void
io_pause(struct io *io, int pause)
{
	io->paused = pause;
	update_events(io);
}

void
io_set_handler(struct io *io, const struct io_handler *h, void *arg)
{
	io->h = h;
	io->arg = arg;
}

int
io_fd(const struct io *io)
{
	return io->fd;
}

const char *
io_peer(const struct io *io)
{
	return io->peer;
}

void
io_start(struct io *io, const struct io_ops *ops, void *ctx)
{
	io->ops = ops ? ops : &plain_ops;
	io->ctx = ctx;
	/* The first step may write (a client hello): start on writability. */
	io->handshaking = io->ops->handshake != NULL;
	io->hs_want = POLLOUT;
	update_events(io);
}

void *
io_ops_ctx(const struct io *io)
{
	return io->ctx;
}

void
io_free(struct io *io)
{
	if (io == NULL || io->closing)
		return;
	if (io->busy) {
		io->freed = 1;
		return;
	}
	destroy(io);
}

unsigned
io_lingering(void)
{
	return lingering;
}

/*
 * io: buffered non-blocking socket I/O inside the loop. An io owns one
 * socket: it completes a non-blocking connect, reads and hands the bytes to
 * its owner, queues writes in a capped buffer and flushes them when the
 * socket can take them. The byte transport is a small table of operations:
 * plain TCP here, TLS from tls.c (io_start) under the same interface.
 *
 * Callbacks may call io_free on their own io: the free is deferred until the
 * callback returns.
 * Functions returning int return 0 on success and -1 on failure.
 */
#ifndef XCOMP_IO_H
#define XCOMP_IO_H

#include <sys/types.h>

#include "buf.h"
#include "loop.h"

struct io;

struct io_handler {
	/* Non-blocking connect finished (err 0) or failed (err = errno). */
	void (*connected)(void *arg, int err);
	/* Bytes arrived. */
	void (*data)(void *arg, const char *p, size_t n);
	/*
	 * The connection ended: err 0 for an orderly EOF from the peer, else an
	 * errno value (ECONNRESET, EPIPE, ...). The owner then frees the io.
	 */
	void (*closed)(void *arg, int err);
	/*
	 * The transport's handshake (TLS) started with io_start finished: err 0,
	 * or -1 with the reason from the transport (tls_why). May be NULL for an
	 * io that never starts one.
	 */
	void (*secured)(void *arg, int err);
};

/* What a transport's handshake step needs next. */
#define IO_WANT_READ 1
#define IO_WANT_WRITE 2

/* A byte transport (plain TCP, or tls.c's). Return like read(2)/write(2). */
struct io_ops {
	ssize_t (*read)(struct io *, void *, size_t);
	ssize_t (*write)(struct io *, const void *, size_t);
	/* Bytes already decrypted and waiting (TLS); NULL means none. */
	size_t (*pending)(struct io *);
	void (*free)(struct io *);
	/* One handshake step: 0 done, IO_WANT_READ, IO_WANT_WRITE, or -1 failed. NULL: none. */
	int (*handshake)(struct io *);
};

/*
 * Take ownership of a connected (or connecting, with connecting = 1) socket.
 * outmax caps the write queue. Freed with io_free.
 */
struct io *io_new(
    struct loop *, int fd, int connecting, size_t outmax, const struct io_handler *, void *arg);

/*
 * Start a non-blocking TCP connect to ip:port; handler->connected reports the
 * result. -1 with errno if the socket cannot even be created. Freed with io_free.
 */
struct io *io_connect(
    struct loop *, const char *ip, int port, size_t outmax, const struct io_handler *, void *arg);
/*
 * io_connect from a given source address (src, an IP of this host; NULL or
 * another address family than ip: the kernel's choice). -1 with errno also
 * when src cannot be bound (EADDRNOTAVAIL: not an address of this host).
 */
struct io *io_connect_from(struct loop *, const char *src, const char *ip, int port,
    size_t outmax, const struct io_handler *, void *arg);

/* Queue bytes; -1 (nothing queued) if the write queue would pass its cap. */
int io_write(struct io *, const void *, size_t);
int io_print(struct io *, const char *, ...) __attribute__((format(printf, 2, 3)));
/*
 * Write what is queued now instead of at the loop's next pass, as far as the
 * socket takes it; -1 when the write failed (reported as closed next pass).
 */
int io_flush(struct io *);
/* Bytes queued and not yet written. */
size_t io_queued(const struct io *);
/* Stop reading; close once the queue is flushed (or at once on error). */
void io_close_after_flush(struct io *);
/* Stop reading (1) or resume (0). */
void io_pause(struct io *, int);

/* Hand the io's events to another owner from now on (a connection race's winner). */
void io_set_handler(struct io *, const struct io_handler *, void *arg);

int io_fd(const struct io *);
/* Peer address as "ip:port". */
const char *io_peer(const struct io *);

/*
 * Replace the transport (TLS); ctx is the transport's state, freed by
 * ops->free. When ops has a handshake, the loop drives it and
 * handler->secured reports the end; writes queue until then.
 */
void io_start(struct io *, const struct io_ops *, void *ctx);
void *io_ops_ctx(const struct io *);

/* How many ios closed with io_close_after_flush are still flushing. */
unsigned io_lingering(void);

/* Close the socket and free; safe inside a callback. */
void io_free(struct io *);

#endif

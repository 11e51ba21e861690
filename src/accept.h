/*
 * accept: the accepting side of XEP-0114, once for every program that
 * accepts component streams (xcomp-server, and the agent's relay for its
 * local component). Listeners whose accept errors are logged and never spin;
 * a session per connection that optionally runs TLS first, answers the
 * stream header with a fresh stream id, verifies the handshake in constant
 * time, writes stream errors (its own header first when none went out),
 * times out a peer that does not authenticate, and bounces stanzas by one
 * rule: a stanza of type='error' is never bounced. What differs between
 * the programs (which names are served, their secrets, conflicts, routing)
 * comes in through struct accept_handler.
 * Functions returning int return 0 on success and -1 on failure.
 */
#ifndef XCOMP_ACCEPT_H
#define XCOMP_ACCEPT_H

#include <stddef.h>
#include <stdint.h>

#include "io.h"
#include "loop.h"
#include "xs.h"

struct accept_listener;
struct accept_session;
struct tls_ctx;

/* A connection was accepted: the callee owns fd (non-blocking, close-on-exec). */
typedef void accept_fn(void *arg, int fd);

/*
 * Listen on host:port (numeric; port 0 takes any free port) or on a Unix
 * socket at path (mode 0600; a stale socket there is replaced), and call fn
 * for every connection. NULL with err set ("ADDRESS: why"). Freed with
 * accept_listener_free, which leaves a Unix socket's file to the caller.
 */
struct accept_listener *accept_listen_tcp(struct loop *, const char *host, int port, int backlog,
    accept_fn *, void *arg, char *err, size_t errlen);
struct accept_listener *accept_listen_unix(
    struct loop *, const char *path, int backlog, accept_fn *, void *arg, char *err, size_t errlen);
/* The address listened on: "127.0.0.1:5347" (the real port for port 0), or the path. */
const char *accept_listener_name(const struct accept_listener *);
void accept_listener_free(struct accept_listener *);

/*
 * What differs between the programs. A callback may end the session it is
 * called for (accept_error) or any other session; ended sessions are freed
 * at once, so after ending its own it must not touch it.
 */
struct accept_handler {
	/*
	 * The stream header asks for 'to' (NULL when absent): the name to
	 * answer as ('from' of the reply header), or NULL after accept_error.
	 */
	const char *(*open)(void *arg, struct accept_session *, const char *to);
	/* The secret the handshake must prove, when it arrives; NULL: none any more. */
	const char *(*secret)(void *arg, struct accept_session *);
	/*
	 * The handshake was proven. 0 to answer <handshake/>; -1 after ending
	 * the session (a conflict).
	 */
	int (*authenticated)(void *arg, struct accept_session *);
	/*
	 * A depth-1 element after authentication (a stanza, or anything else in
	 * the content namespace); 0, or -1 after ending the session.
	 */
	int (*stanza)(void *arg, struct accept_session *, const struct xs_elem *, const char *raw,
	    size_t rawlen);
	/* The session ends, for any reason but accept_free; it is freed after this returns. */
	void (*closed)(void *arg, struct accept_session *);
};

/* How a session is run; the strings must outlive it. */
struct accept_conf {
	const char *domain; /* 'from' of a header written before the 'to' is accepted */
	const char *where;  /* the listener, for log lines */
	const char *prefix; /* before log lines: "" or "relay: " */
	/* After "started a TLS handshake on a plain listener", to say what to do; or NULL. */
	const char *tls_hint;
	const struct xs_limits *limits;
	int shallow;         /* stanzas are passed on raw: see xs_set_shallow */
	size_t outmax;       /* write queue cap */
	unsigned timeout_ms; /* to authenticate, TLS handshake included */
	struct tls_ctx *tls; /* TLS from the first byte, or NULL */
};

/*
 * A session on an accepted socket (owned from now on). NULL, logged, when
 * TLS cannot even start. Ends through accept_error, accept_shutdown or the
 * peer; or freed with accept_free.
 */
struct accept_session *accept_new(
    struct loop *, int fd, const struct accept_conf *, const struct accept_handler *, void *arg);
/*
 * End with a stream error (RFC 6120 4.9), text may be NULL; logged. The
 * handler's closed runs, and the session is freed once the error is written.
 */
void accept_error(struct accept_session *, const char *condition, const char *text);
/* The server stops: system-shutdown, or a plain close while TLS still runs. */
void accept_shutdown(struct accept_session *);
/* Drop at once, without closed; safe inside the session's own callbacks. */
void accept_free(struct accept_session *);

/* Queue bytes for the peer; -1 (nothing queued) when its write queue is full. */
int accept_write(struct accept_session *, const void *, size_t);
/* The same, saying in the log when the bytes were dropped. */
void accept_send(struct accept_session *, const void *, size_t);
/* Send the peer accept_stanza_error(e, type, condition); -1 if e is not to be bounced. */
int accept_bounce(
    struct accept_session *, const struct xs_elem *e, const char *type, const char *condition);

/* The component's name from the stream header ("unknown component" before it). */
const char *accept_name(const struct accept_session *);
/* The name from the stream header, or NULL before it. */
const char *accept_jid(const struct accept_session *);
const char *accept_peer(const struct accept_session *);
/* Whether the handshake was proven. */
int accept_online(const struct accept_session *);
/* The session's io, for what is not the session's business (TLS details, flushing). */
struct io *accept_io(const struct accept_session *);
/*
 * When the peer last sent anything (util_now_ms; the session's start before
 * that): every byte is a sign of life, for a keepalive.
 */
uint64_t accept_heard(const struct accept_session *);

/* A message, presence or iq in the component namespace. */
int accept_is_stanza(const struct xs_elem *);
/* type='error'. */
int accept_is_error(const struct xs_elem *);
/*
 * A stanza error in reply to e, from its 'to' back to its 'from', with an
 * <error type='TYPE'> holding the condition. NULL when e must not be bounced:
 * not a stanza, or an error itself (errors are never answered: no loops).
 * Freed with free().
 */
char *accept_stanza_error(const struct xs_elem *e, const char *type, const char *condition);

#endif

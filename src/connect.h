/*
 * connect: the client side of one XEP-0114 session to one node: the TCP
 * connect, optional TLS, the stream header, the handshake, and the stream
 * after it, with connect-timeout (TLS included) and handshake-timeout. The
 * node's addresses are raced as RFC 8305 (Happy Eyeballs v2) says: one
 * attempt after the other, each 250 ms after the one before or at once when
 * it failed, the first TCP connect to complete wins and the others are
 * closed; connect-timeout bounds the whole race and the winner's TLS. Each
 * step is reported to the user through a handler; the end, whatever it is,
 * once, as a status code ("connect", "timeout", "tls", "closed", "auth",
 * "conflict", "stream"), the facts and a line for the operator. Which node
 * to try, keepalives and what to say about a node stay with the user (the
 * agent, probe).
 * Functions returning int return 0 on success and -1 on failure.
 */
#ifndef XCOMP_CONNECT_H
#define XCOMP_CONNECT_H

#include <stddef.h>

#include "dns.h"
#include "loop.h"
#include "tls.h"
#include "xs.h"

struct connect;

/* Where a session is; each step begins when the one before has passed. */
enum connect_phase {
	CONNECT_TCP,       /* the TCP connect */
	CONNECT_TLS,       /* the TLS handshake */
	CONNECT_STREAM,    /* header sent, the server's awaited */
	CONNECT_HANDSHAKE, /* <handshake> sent, the server's <handshake/> awaited */
	CONNECT_SESSION,   /* authenticated */
	CONNECT_CLOSING,   /* </stream:stream> sent (connect_close), the server's end awaited */
};

/* How a session ended. */
enum connect_how {
	CONNECT_REFUSED,      /* every address's TCP connect failed: err (the last one's) */
	CONNECT_TIMEOUT,      /* connect-timeout (the race and TLS), handshake-timeout, or
	                         connect_close's wait */
	CONNECT_TLS_FAILED,   /* why; tls when the handshake itself failed */
	CONNECT_LOST,         /* the connection ended: err, 0 for an orderly EOF; why */
	CONNECT_STREAM_END,   /* the server sent </stream:stream> */
	CONNECT_STREAM_ERROR, /* the server sent <stream:error>: condition, detail, host */
	CONNECT_BAD_XML,      /* the server broke a rule: condition, detail (sent back to it) */
	CONNECT_NO_ID,        /* the server's header had no stream id */
	CONNECT_DIGEST,       /* the handshake digest could not be computed */
};

struct connect_end {
	enum connect_how how;
	enum connect_phase phase; /* the step that did not pass */
	/* "connect", "timeout", "tls", "closed", "auth", "conflict" or "stream" */
	const char *code;
	/*
	 * One line for the operator: "authentication failure at
	 * cb2.tptac9.com:5223 (not-authorized)". A see-other-host text stops
	 * after the host, and a conflict's after what the server said: what
	 * comes next is the user's.
	 */
	const char *text;
	int err;                    /* errno: CONNECT_REFUSED, CONNECT_LOST */
	const char *why;            /* the transport's reason (tls_why), or "" */
	const char *condition;      /* stream error or bad XML: the condition */
	const char *detail;         /* and its text, or NULL */
	int see_other_host;         /* a see-other-host stream error */
	const char *host;           /* the host it names, or NULL */
	const struct tls_info *tls; /* the TLS handshake failed: what was received */
};

/* One address's attempt in the race, as the handler's attempt callback hears of it. */
enum connect_attempt_what {
	CONNECT_ATTEMPT_STARTED,   /* its TCP connect began */
	CONNECT_ATTEMPT_FAILED,    /* its TCP connect failed: err */
	CONNECT_ATTEMPT_WON,       /* it connected first: the session goes on over it */
	CONNECT_ATTEMPT_ABANDONED, /* still unanswered when winner connected: closed */
};

struct connect_attempt {
	enum connect_attempt_what what;
	const char *ip;
	int err;          /* FAILED: errno */
	unsigned ms;      /* since this attempt started */
	unsigned race_ms; /* since the race's first attempt started */
	/* STARTED: an earlier attempt still waiting for its answer, or NULL */
	const char *pending;
	const char *winner; /* ABANDONED: the address that connected first */
};

struct connect_handler {
	/* Optional, each: TCP is up; TLS is done; the stream header has gone out. */
	void (*connected)(void *arg);
	void (*secured)(void *arg, const struct tls_info *);
	void (*opened)(void *arg);
	/*
	 * Optional: the server's header, id NULL when it has none. The
	 * handshake goes out when this returns, unless the user has called
	 * connect_close or connect_free. Without an id the session reads on
	 * (Prosody opens an early stream error with id='') and ends with
	 * CONNECT_NO_ID at the next element that is not an error.
	 */
	void (*header)(void *arg, const char *from, const char *id);
	/* Optional: the server accepted the handshake. */
	void (*authenticated)(void *arg);
	/*
	 * Optional: bytes arrived (before they are parsed), in any phase.
	 */
	void (*data)(void *arg);
	/* Optional: a stanza after authentication, with its raw bytes as received. */
	void (*stanza)(void *arg, const struct xs_elem *, const char *raw, size_t rawlen);
	/*
	 * The session ended (e is valid during the call); nothing follows.
	 * The user frees it, here or later.
	 */
	void (*ended)(void *arg, const struct connect_end *e);
	/*
	 * Optional: the race's attempts, each as it starts and ends (a failure
	 * that ends the whole race is said by ended too). WON comes before the
	 * ABANDONED ones, and those before connected.
	 */
	void (*attempt)(void *arg, const struct connect_attempt *);
};

struct connect_params {
	const char *server; /* the node in texts: "cb1.tptac9.com:5223" */
	/* The node's addresses, in the order to race them (dns_addrs gives RFC 8305's). */
	const struct dns_addr *addrs;
	size_t naddrs;
	int port;
	struct tls_ctx *tls;   /* NULL: plain TCP */
	const char *tls_name;  /* the name the certificate must carry (SNI) */
	const char *tls_alt;   /* or this one, or NULL */
	const char *component; /* the stream's to */
	/* Read when the server's header arrives: must live until then. */
	const char *secret;
	unsigned connect_timeout;   /* s, the race of TCP connects, and TLS */
	unsigned handshake_timeout; /* s, header sent to <handshake/> */
	size_t outmax;              /* the write queue's cap */
	size_t stanza_max;          /* 0: xs's default */
	int shallow;                /* stanzas are only passed on (xs_set_shallow) */
};

/*
 * Start connecting, from the loop's next pass (no callback runs inside
 * connect_new); the params' strings and addresses are copied, except
 * tls_name, tls_alt and secret. NULL with errno EINVAL without an address.
 * Freed with connect_free.
 */
struct connect *connect_new(
    struct loop *, const struct connect_params *, const struct connect_handler *, void *arg);
/* Queue bytes on the stream; -1 when the queue is full or the session has ended. */
int connect_write(struct connect *, const char *, size_t);
/*
 * Send </stream:stream> and wait up to ms for the server's end, which
 * ended reports in phase CONNECT_CLOSING (the wait's end as CONNECT_TIMEOUT).
 */
void connect_close(struct connect *, unsigned ms);
enum connect_phase connect_phase(const struct connect *);
/* The address connected to; before the race is won, the first one. */
const char *connect_ip(const struct connect *);
/* The socket (to tune it); -1 before the race is won. */
int connect_fd(const struct connect *);
/* Close and free; from inside the session's own callbacks too (deferred). */
void connect_free(struct connect *);

#endif

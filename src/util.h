/*
 * util: allocation wrappers that never return NULL, monotonic and wall-clock
 * time, random bytes from GnuTLS, and small string helpers.
 * Functions returning int return 0 on success and -1 on failure.
 */
#ifndef XCOMP_UTIL_H
#define XCOMP_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define nitems(a) (sizeof(a) / sizeof((a)[0]))

/* Allocation: out of memory is fatal. Results are freed with free(). */
void *xmalloc(size_t);
void *xcalloc(size_t, size_t);
void *xrealloc(void *, size_t);
char *xstrdup(const char *);
char *xstrndup(const char *, size_t);
char *xasprintf(const char *, ...) __attribute__((format(printf, 1, 2)));

/* Milliseconds on CLOCK_MONOTONIC. */
uint64_t util_now_ms(void);

/* UTC ISO 8601, "2026-11-26T08:12:31Z", into buf of at least 21 bytes. */
void util_iso_time(time_t, char *buf, size_t len);

/* Fill buf with len random bytes (gnutls_rnd, GNUTLS_RND_RANDOM). Fatal on failure. */
void util_random(void *buf, size_t len);

/* A uniformly random integer in [0, n) from util_random; n > 0. */
uint32_t util_random_below(uint32_t n);

/* util_random_below as the random source that srv, backoff and health take (arg unused). */
uint32_t util_random_fn(void *arg, uint32_t bound);

/* O_NONBLOCK and FD_CLOEXEC on fd. */
int util_nonblock(int fd);

/*
 * Let the kernel help find a dead peer on the TCP socket fd: keepalive
 * probes after idle_s seconds of silence, every probe_s seconds, two of
 * them; and TCP_USER_TIMEOUT, so that data left unacknowledged for
 * idle_s + probe_s seconds breaks the connection. Best effort.
 */
void util_tcp_keepalive(int fd, unsigned idle_s, unsigned probe_s);

/*
 * Replace path with text atomically: write path.tmp in the same directory
 * (created with mode), fsync it when sync is set, then rename. -1 with a
 * message naming the file in err.
 */
int util_write_file(const char *path, const char *text, size_t len, unsigned mode, int sync,
    char *err, size_t errlen);

/* Format a message for the operator into err; returns -1, for "return util_fail(...)". */
int util_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Zero memory the compiler may not elide (secrets). */
void util_wipe(void *, size_t);

/* Remove leading and trailing white space in place; returns s. */
char *util_trim(char *s);

/*
 * Parse "host[:port]", "[v6]:port" into host (NUL-terminated, brackets removed) and
 * port; port stays *port when absent. -1 on a malformed string or port out of range.
 */
int util_split_hostport(const char *s, char *host, size_t hostlen, int *port);

/* Resolve a numeric IPv4/IPv6 host and port into a sockaddr (no DNS). */
struct sockaddr_storage;
int util_sockaddr(const char *host, int port, struct sockaddr_storage *ss, int *sslen);

/* "127.0.0.1:5223" / "[::1]:5223" for a sockaddr, into buf. */
const char *util_sockaddr_str(const struct sockaddr_storage *, char *buf, size_t len);

#endif

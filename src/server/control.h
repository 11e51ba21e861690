/*
 * control: the client side of xcomp-server's control socket, DIR/control.sock
 * (a Unix stream socket). The client writes one request line ("status",
 * "cluster status", "cluster initialize", "cluster join HOST:PORT",
 * "cluster remove PEER", "cluster reload") and reads until end of file; the
 * server's answer is its exit status in decimal on the first line, then text
 * for the operator.
 * Functions returning int return 0 on success and -1 on failure.
 */
#ifndef XCOMP_CONTROL_H
#define XCOMP_CONTROL_H

#include <stddef.h>
#include <stdio.h>

#define CONTROL_SOCK_NAME "control.sock"
/* Longer than the server's 15 s for the outcome of a join or remove. */
#define CONTROL_WAIT_S 30
/* Everything else is answered at once: a server silent this long is stopped or stuck. */
#define CONTROL_TIMEOUT_S 5

/* 1 when a server answers on DIR/control.sock, else 0. */
int control_running(const char *dir);

/*
 * Send line (without its newline) to the server of DIR and copy the text
 * of its answer to out when the status is 0 or the request is a status
 * request, else to errout. *status is the server's status; an answer that
 * breaks the protocol or does not come in time (CONTROL_WAIT_S for a
 * join or remove, CONTROL_TIMEOUT_S for the rest) gives 2,
 * with a message on errout. -1, with "not running for DIR (...)" in err,
 * when no server answers on the socket.
 */
int control_request(const char *dir, const char *line, FILE *out, FILE *errout, int *status,
    char *err, size_t errlen);

#endif

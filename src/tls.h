/*
 * tls: GnuTLS under io's transport interface, for the agent (client) and
 * xcomp-server (server). The handshake runs inside the loop without
 * blocking; a failure is explained in the operator's words: untrusted
 * issuer, incomplete chain, name mismatch with the names the certificate
 * does carry, expired or not yet valid with the date, protocol or cipher
 * mismatch, no certificate from the peer, a plain-text peer.
 * Functions returning int return 0 on success and -1 on failure.
 */
#ifndef XCOMP_TLS_H
#define XCOMP_TLS_H

#include <stddef.h>
#include <time.h>

#include "io.h"

/* TLS 1.2 and 1.3 only. */
#define TLS_DEFAULT_PRIORITY "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

struct tls_ctx;

/*
 * Client credentials: ca (PEM bundle; NULL: the system's trust store),
 * optional client certificate and key, priority (NULL: the default).
 * NULL with err set on failure. Freed with tls_ctx_free.
 */
struct tls_ctx *tls_client_ctx(const char *ca, const char *cert, const char *key,
    const char *priority, char *err, size_t errlen);

/*
 * Server credentials: key, certificate and optional bundle (intermediates,
 * root last), sent together as the chain; with trust, client certificates are
 * required and verified against it. Freed with tls_ctx_free.
 */
struct tls_ctx *tls_server_ctx(const char *key, const char *cert, const char *bundle,
    const char *trust, const char *priority, char *err, size_t errlen);
void tls_ctx_free(struct tls_ctx *);

/*
 * Put io under TLS as client, verifying the server's certificate chain and
 * that it carries name, or alt when alt is not NULL (the node's own name:
 * the seed's certificate has the domain as CN and the nodes as SANs, and a
 * CN is not looked at when SANs exist). name goes out as SNI. io's
 * handler->secured reports the end of the handshake. ctx must outlive io.
 * With name NULL the chain is verified but no name is asked of it (a
 * cluster peer, trusted through a CA of the cluster's own).
 */
int tls_client(
    struct io *, struct tls_ctx *, const char *name, const char *alt, char *err, size_t errlen);
/* The same as server. */
int tls_server(struct io *, struct tls_ctx *, char *err, size_t errlen);

/* Why the handshake (or a record) failed, in words; "" if it did not. */
const char *tls_why(const struct io *);

/* One certificate, for people. */
struct tls_cert {
	char subject[256];
	char cn[128]; /* the subject's CN, "" without one */
	char issuer[256];
	char san[512]; /* "DNS:a.example, DNS:b.example, IP:10.0.0.1" */
	time_t not_before, not_after;
};

struct tls_info {
	char version[16]; /* "TLS1.3" */
	char cipher[128];
	int verified;             /* 1 when the peer's chain was verified */
	struct tls_cert chain[8]; /* as received, leaf first */
	size_t nchain;
};

/* What was negotiated and received, after the handshake (or its failure). */
int tls_info(const struct io *, struct tls_info *);

/*
 * The certificates in a PEM file that are not CA certificates
 * (basicConstraints CA:FALSE, or none): their subjects in names, "; " between
 * them. Returns how many, or -1 if the file does not load.
 */
int tls_file_non_ca(const char *path, char *names, size_t len);

/* Refuse a key file that group or others can read (like a secret file). */
int tls_check_key_file(const char *path, char *err, size_t errlen);

#endif

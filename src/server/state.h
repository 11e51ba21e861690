/*
 * state: xcomp-server's state directory. DIR/xcomp-server.conf holds the
 * domain, listeners, policies and the paths of the TLS files; DIR/callbridges
 * holds each call bridge's secret and is readable by its owner only. Both are
 * "key = value" files read with conf.c and replaced atomically when a command
 * changes them. The TLS files are checked when a command names them and again
 * when the server starts, not on every load: a state whose files went missing
 * must stay loadable so that "certs none" or new "certs" can repair it.
 * Functions returning int return 0 on success and -1 on failure; on failure
 * err holds a message for the operator.
 */
#ifndef XCOMP_STATE_H
#define XCOMP_STATE_H

#include <stddef.h>
#include <stdio.h>

#define STATE_MAX_LISTEN 16
#define STATE_NAME_MAX 63
#define STATE_SECRET_MAX 256
#define STATE_SECRET_LEN 20

enum conflict_policy { POLICY_KICK_NEW, POLICY_KICK_OLD, POLICY_ALLOW };

struct listen_addr {
	char host[64];
	int port;
	int tls; /* TLS from the first byte (the seed's XMPP port) */
};

struct callbridge {
	char name[STATE_NAME_MAX + 1];
	char *secret;
};

struct state {
	char *dir;
	char *domain; /* NULL until set */
	struct listen_addr listen[STATE_MAX_LISTEN];
	size_t nlisten;
	struct callbridge *cbs;
	size_t ncbs;
	enum conflict_policy policy;
	unsigned handshake_timeout; /* seconds */
	unsigned keepalive;         /* seconds of silence before a ping */
	unsigned keepalive_timeout; /* seconds for anything after the ping */
	unsigned max_stanza;        /* bytes */
	/* Absolute paths; NULL when not set. The bundle is optional. */
	char *tls_key, *tls_cert, *tls_bundle;
	char *tls_trust; /* set: TLS listeners require client certificates */
	/* The cluster ("cluster ..." commands). */
	int cluster_enabled;
	struct listen_addr cluster_listen; /* host "" until set; port 0: any free port */
	char *cluster_trust;               /* absolute path of the peers' CA bundle, or NULL */
	unsigned cluster_keepalive_ms;     /* heartbeat interval, default 200 */
	unsigned cluster_election_ms;      /* election timeout, default 1000 */
};

/* Load DIR (a missing directory or file is an empty state). Freed with state_free. */
int state_load(const char *dir, struct state *, char *err, size_t errlen);
/* Write both files atomically, creating DIR (mode 0700) when missing. */
int state_save(const struct state *, char *err, size_t errlen);
void state_free(struct state *);

/* The call bridge with this name, or NULL. */
struct callbridge *state_find(const struct state *, const char *name);
/* The call bridge whose component JID (NAME.DOMAIN) is jid, or NULL. */
struct callbridge *state_find_jid(const struct state *, const char *jid);

/* Checks with a message for the operator. */
int state_valid_name(const char *name, char *err, size_t errlen);
int state_valid_secret(const char *secret, char *err, size_t errlen);

/* A new random secret of STATE_SECRET_LEN letters and digits (GnuTLS random). */
void state_new_secret(char out[STATE_SECRET_LEN + 1]);

const char *state_policy_name(enum conflict_policy);

/* 1 when some listener is a TLS listener. */
int state_has_tls(const struct state *);

struct tls_ctx;
/*
 * The server's TLS credentials from the state's certs and trust, checked as
 * the "certs" command checks them (files readable, key for the certificate,
 * key file private). NULL with err set on failure. Freed with tls_ctx_free.
 */
struct tls_ctx *state_tls_ctx(const struct state *, char *err, size_t errlen);

/*
 * Run one state command (argv[0] is the command: "domain", "listen",
 * "callbridge", "conflict-policy", "certs", "trust", ...), printing to out and reading secrets
 * from in. 0, or -1 with the reason in err.
 */
int state_command(
    const char *dir, int argc, char **argv, FILE *in, FILE *out, char *err, size_t errlen);

#endif

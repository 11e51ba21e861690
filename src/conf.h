/*
 * conf: xcompd's configuration (xcompd.conf(5)), read with kv.c. Defaults
 * are set in conf_new and nowhere else.
 * Functions returning int return 0 on success and -1 on failure.
 */
#ifndef XCOMP_CONF_H
#define XCOMP_CONF_H

#include <stddef.h>

#include "log.h"

/*
 * xcompd's configuration when -f names none (xcomp probe's too): in a
 * directory of its own, beside the secrets and xcompd@NAME's NAME.conf.
 */
#define CONF_DEFAULT_PATH SYSCONFDIR "/xcomp/xcompd.conf"

#define CONF_MAX_SERVERS 32
#define CONF_SECRET_MAX 1024

struct conf_server {
	char host[256];
	int port; /* 0: the "port" key */
};

struct conf {
	char *path; /* the file read, for messages */
	char *name;
	char *domain;
	char *component; /* conf_finish sets NAME.DOMAIN when not given */
	char *secret_file;
	char *secret; /* the inline secret, or the one read from secret_file */
	int secret_inline;
	struct conf_server servers[CONF_MAX_SERVERS];
	size_t nservers;
	char *service;
	unsigned port;
	char *dns_server;
	char *trust_anchor;
	unsigned connect_timeout;
	unsigned handshake_timeout;
	unsigned keepalive;
	unsigned keepalive_timeout;
	unsigned backoff_min;
	unsigned backoff_max;
	char *status_file;
	/* NULL: no metrics */
	char *metrics_file;
	int tls;        /* "tls = direct": TLS from the first byte */
	char *tls_ca;   /* NULL: the system's trust store */
	char *tls_name; /* NULL: the domain */
	char *tls_cert, *tls_key;
	char *tls_priority;      /* NULL: TLS_DEFAULT_PRIORITY */
	char *relay_listen;      /* "IP:PORT" or "unix:PATH"; NULL: no relay */
	char *relay_secret_file; /* NULL: the upstream secret */
	char *relay_secret;      /* read by conf_finish */
	unsigned relay_queue;    /* bytes */
	int relay_replay;
	char *event_url; /* NULL: no events */
	char *event_ca;
	unsigned event_timeout; /* seconds */
	unsigned event_queue;   /* events */
	int log_syslog;
	enum log_level log_level;
	char *history;        /* NULL: STATUS-FILE.history; "none": no history */
	unsigned history_max; /* bytes */
	char *user;           /* NULL: keep the user xcompd was started as */
};

/* A configuration with every default. Freed with conf_free. */
struct conf *conf_new(void);
void conf_free(struct conf *);
/* Set one key (a kv_pair_cb: NULL when accepted, else the reason). */
const char *conf_set(void *conf, const char *key, const char *value, char *err, size_t errlen);
/* Read a file into conf. */
int conf_load(struct conf *, const char *path, char *err, size_t errlen);
/* Apply "-o KEY=VALUE". */
int conf_override(struct conf *, const char *kv, char *err, size_t errlen);
/*
 * Check what no single line can (required keys, secret vs secret-file,
 * backoff-min <= backoff-max), fill in the component default, and read the
 * secret file. Call it once, after conf_load and the overrides.
 */
int conf_finish(struct conf *, char *err, size_t errlen);
/* conf_finish without reading the secret file (xcomp probe reads it itself). */
int conf_check(struct conf *, char *err, size_t errlen);
/* The name the server certificate must carry: tls-name, or the domain. */
const char *conf_tls_name(const struct conf *);
/*
 * The second name a node's certificate may carry: the node's own target,
 * unless tls-name is set (then only that name counts).
 */
const char *conf_tls_alt(const struct conf *, const char *target);
/*
 * The history file: the "history" key, or the status file's path with
 * ".history" added; NULL when history is "none". Freed with free().
 */
char *conf_history_path(const struct conf *);
/* The SRV name: SERVICE.DOMAIN. Freed with free(). */
char *conf_srv_name(const struct conf *);
/*
 * Read the first line of a secret file, refusing one that group or others
 * can read. ${CREDENTIALS_DIRECTORY} in path is the environment's
 * (conf_expand_credentials). *secret is freed with conf_wipe_free.
 */
int conf_read_secret(const char *path, char **secret, char *err, size_t errlen);
/*
 * A secret file's path with ${CREDENTIALS_DIRECTORY} (or $CREDENTIALS_DIRECTORY)
 * replaced by credentials_dir, the directory where systemd puts what
 * LoadCredential= names. NULL (err set) when the path names it and
 * credentials_dir is NULL or empty. Freed with free().
 */
char *conf_expand_credentials(
    const char *path, const char *credentials_dir, char *err, size_t errlen);
/*
 * Something that passes every check but is almost surely a mistake (a
 * "server" that is an SRV name): the message, written into buf, or NULL.
 * For -t and the start; call it after conf_check.
 */
const char *conf_warning(const struct conf *, char *buf, size_t len);
/* 1 when key is one of xcompd.conf(5)'s keys, else 0. */
int conf_known_key(const char *key);
/*
 * The known key an unknown one was probably meant to be ("keep-alive":
 * "keepalive"): equal but for case, '-' and '_', or within one edit (keys
 * of up to 4 characters) or two; NULL when none is that close.
 */
const char *conf_suggest(const char *key);
/* Wipe a string, then free it. */
void conf_wipe_free(char *);
#endif

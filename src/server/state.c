/*
 * state: the state directory behind xcomp-server's commands, which mirror
 * the MMP commands of a Cisco Meeting Server (xmpp domain, xmpp listen,
 * xmpp callbridge add | add-secret | list | remove, xmpp certs); "trust"
 * borrows the name of xmpp cluster trust but is about components.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <netinet/in.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "kv.h"
#include "jid.h"
#include "state.h"
#include "tls.h"
#include "util.h"

#define CONF_FILE "xcomp-server.conf"
#define SECRETS_FILE "callbridges"

static const char *const policy_names[] = {"kick-new", "kick-old", "allow"};

const char *
state_policy_name(enum conflict_policy p)
{
	return policy_names[p];
}

static int
policy_parse(const char *s, enum conflict_policy *p)
{
	size_t i;

	for (i = 0; i < nitems(policy_names); i++)
		if (strcmp(s, policy_names[i]) == 0) {
			*p = (enum conflict_policy)i;
			return 0;
		}
	return -1;
}

int
state_valid_name(const char *name, char *err, size_t errlen)
{
	const char *p;

	if (*name == '\0' || strlen(name) > STATE_NAME_MAX)
		return util_fail(
		    err, errlen, "call bridge name must be 1 to %d characters", STATE_NAME_MAX);
	for (p = name; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
			return util_fail(err, errlen,
			    "call bridge name \"%s\": use letters, digits, "
			    "'-' and '_' only (it becomes the first label of NAME.DOMAIN)",
			    name);
	return 0;
}

int
state_valid_secret(const char *s, char *err, size_t errlen)
{
	const char *p;

	if (*s == '\0')
		return util_fail(err, errlen, "empty secret");
	if (strlen(s) > STATE_SECRET_MAX)
		return util_fail(err, errlen, "secret longer than %d characters", STATE_SECRET_MAX);
	if (*s == '#')
		return util_fail(err, errlen, "a secret must not start with '#'");
	for (p = s; *p; p++)
		if (!isgraph((unsigned char)*p))
			return util_fail(err, errlen,
			    "a secret may hold printable ASCII characters "
			    "only, no spaces or control characters");
	return 0;
}

void
state_new_secret(char out[STATE_SECRET_LEN + 1])
{
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	size_t i;

	for (i = 0; i < STATE_SECRET_LEN; i++)
		out[i] = alphabet[util_random_below(sizeof(alphabet) - 1)];
	out[STATE_SECRET_LEN] = '\0';
}

struct callbridge *
state_find(const struct state *st, const char *name)
{
	size_t i;

	for (i = 0; i < st->ncbs; i++)
		if (strcmp(st->cbs[i].name, name) == 0)
			return &st->cbs[i];
	return NULL;
}

struct callbridge *
state_find_jid(const struct state *st, const char *jid)
{
	size_t i, n;

	if (st->domain == NULL)
		return NULL;
	for (i = 0; i < st->ncbs; i++) {
		n = strlen(st->cbs[i].name);
		if (strncasecmp(jid, st->cbs[i].name, n) == 0 && jid[n] == '.' &&
		    strcasecmp(jid + n + 1, st->domain) == 0)
			return &st->cbs[i];
	}
	return NULL;
}

static void
add_cb(struct state *st, const char *name, const char *secret)
{
	struct callbridge *cb;

	st->cbs = xrealloc(st->cbs, (st->ncbs + 1) * sizeof(*st->cbs));
	cb = &st->cbs[st->ncbs++];
	snprintf(cb->name, sizeof(cb->name), "%s", name);
	cb->secret = xstrdup(secret);
}

static int
parse_listen(const char *value, struct listen_addr *la, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	int sslen, port = -1;

	if (util_split_hostport(value, la->host, sizeof(la->host), &port) == -1 || port < 0)
		return util_fail(err, errlen,
		    "listen \"%s\": expected ADDRESS:PORT, e.g. "
		    "127.0.0.1:5223",
		    value);
	if (util_sockaddr(la->host, port, &ss, &sslen) == -1)
		return util_fail(
		    err, errlen, "listen \"%s\": \"%s\" is not an IP address", value, la->host);
	la->port = port;
	la->tls = 0;
	return 0;
}

/* "ADDRESS:PORT" or "ADDRESS:PORT tls", as stored in xcomp-server.conf. */
static int
parse_listen_line(const char *value, struct listen_addr *la, char *err, size_t errlen)
{
	const char *sp = strpbrk(value, " \t");
	char addr[128];

	if (sp == NULL)
		return parse_listen(value, la, err, errlen);
	snprintf(addr, sizeof(addr), "%.*s", (int)(sp - value), value);
	sp += strspn(sp, " \t");
	if (strcmp(sp, "tls") != 0)
		return util_fail(err, errlen, "listen \"%s\": expected ADDRESS:PORT [tls]", value);
	if (parse_listen(addr, la, err, errlen) == -1)
		return -1;
	la->tls = 1;
	return 0;
}

/* "IP:PORT", or "[IP]:PORT" for IPv6, into buf. */
static const char *
state_addr_str(const struct listen_addr *la, char *buf, size_t len)
{
	snprintf(buf, len, strchr(la->host, ':') ? "[%s]:%d" : "%s:%d", la->host, la->port);
	return buf;
}

/*
 * The cluster listener's address is also the one the other members dial,
 * as DIR/cluster records it: it must be one IP address of this node, not
 * a name and not the wildcard.
 */
static int
parse_cluster_listen(const char *value, struct listen_addr *la, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	int sslen, port = -1;

	memset(la, 0, sizeof(*la));
	if (util_split_hostport(value, la->host, sizeof(la->host), &port) == -1 || port < 0)
		return util_fail(err, errlen,
		    "cluster listen \"%s\": expected IP:PORT, e.g. 127.0.0.1:5400", value);
	if (util_sockaddr(la->host, port, &ss, &sslen) == -1)
		return util_fail(err, errlen,
		    "cluster listen \"%s\": \"%s\" is not an IP address; give an IP address of "
		    "this node: the other members dial this address",
		    value, la->host);
	if ((ss.ss_family == AF_INET &&
	        ((struct sockaddr_in *)&ss)->sin_addr.s_addr == htonl(INADDR_ANY)) ||
	    (ss.ss_family == AF_INET6 &&
	        IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&ss)->sin6_addr)) ||
	    (ss.ss_family == AF_INET6 &&
	        IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6 *)&ss)->sin6_addr) &&
	        ((struct sockaddr_in6 *)&ss)->sin6_addr.s6_addr32[3] == htonl(INADDR_ANY)))
		return util_fail(err, errlen,
		    "cluster listen \"%s\": %s means every address; give one IP address of this "
		    "node: the other members dial this address",
		    value, la->host);
	la->port = port;
	return 0;
}

/* cluster-election-timeout must leave room for two missed keepalives. */
static int
check_cluster_timing(unsigned keepalive, unsigned election, char *err, size_t errlen)
{
	if (election > 2 * keepalive)
		return 0;
	return util_fail(err, errlen,
	    "the cluster election timeout (%u ms) must be more than twice the cluster keepalive "
	    "(%u ms), or one late keepalive starts an election",
	    election, keepalive);
}

/* A TLS file's path from the state file: absolute, as the commands store it. */
static const char *
set_tls_path(char **field, const char *key, const char *value, char *err, size_t errlen)
{
	if (value[0] != '/') {
		snprintf(err, errlen, "%s: expected an absolute path", key);
		return err;
	}
	free(*field);
	*field = xstrdup(value);
	return NULL;
}

static const char *
state_conf_pair(void *arg, const char *key, const char *value, char *err, size_t errlen)
{
	struct state *st = arg;

	if (strcmp(key, "domain") == 0) {
		if (!jid_valid_domain(value))
			return "domain: not a valid domain name";
		free(st->domain);
		st->domain = xstrdup(value);
	} else if (strcmp(key, "listen") == 0) {
		if (st->nlisten == STATE_MAX_LISTEN)
			return "listen: too many listeners";
		if (parse_listen_line(value, &st->listen[st->nlisten], err, errlen) == -1)
			return err;
		st->nlisten++;
	} else if (strcmp(key, "conflict-policy") == 0) {
		if (policy_parse(value, &st->policy) == -1)
			return "conflict-policy: expected kick-new, kick-old or allow";
	} else if (strcmp(key, "handshake-timeout") == 0) {
		if (kv_uint(value, 1, 3600, &st->handshake_timeout) == -1)
			return "handshake-timeout: expected seconds from 1 to 3600";
	} else if (strcmp(key, "keepalive") == 0) {
		if (kv_uint(value, 1, 3600, &st->keepalive) == -1)
			return "keepalive: expected seconds from 1 to 3600";
	} else if (strcmp(key, "keepalive-timeout") == 0) {
		if (kv_uint(value, 1, 300, &st->keepalive_timeout) == -1)
			return "keepalive-timeout: expected seconds from 1 to 300";
	} else if (strcmp(key, "max-stanza") == 0) {
		if (kv_uint(value, 1024, 64 << 20, &st->max_stanza) == -1)
			return "max-stanza: expected bytes from 1024 to 67108864";
	} else if (strcmp(key, "tls-key") == 0) {
		return set_tls_path(&st->tls_key, key, value, err, errlen);
	} else if (strcmp(key, "tls-cert") == 0) {
		return set_tls_path(&st->tls_cert, key, value, err, errlen);
	} else if (strcmp(key, "tls-bundle") == 0) {
		return set_tls_path(&st->tls_bundle, key, value, err, errlen);
	} else if (strcmp(key, "tls-trust") == 0) {
		return set_tls_path(&st->tls_trust, key, value, err, errlen);
	} else if (strcmp(key, "cluster-enabled") == 0) {
		if (kv_bool(value, &st->cluster_enabled) == -1)
			return "cluster-enabled: expected yes or no";
	} else if (strcmp(key, "cluster-listen") == 0) {
		if (parse_cluster_listen(value, &st->cluster_listen, err, errlen) == -1)
			return err;
	} else if (strcmp(key, "cluster-trust") == 0) {
		return set_tls_path(&st->cluster_trust, key, value, err, errlen);
	} else if (strcmp(key, "cluster-keepalive") == 0) {
		if (kv_uint(value, 20, 10000, &st->cluster_keepalive_ms) == -1)
			return "cluster-keepalive: expected milliseconds from 20 to 10000";
	} else if (strcmp(key, "cluster-election-timeout") == 0) {
		if (kv_uint(value, 100, 60000, &st->cluster_election_ms) == -1)
			return "cluster-election-timeout: expected milliseconds from 100 to 60000";
	} else {
		snprintf(err, errlen, "unknown key \"%s\"", key);
		return err;
	}
	return NULL;
}

static const char *
state_secret_pair(void *arg, const char *key, const char *value, char *err, size_t errlen)
{
	struct state *st = arg;

	if (state_valid_name(key, err, errlen) == -1 ||
	    state_valid_secret(value, err, errlen) == -1)
		return err;
	if (state_find(st, key) != NULL) {
		snprintf(err, errlen, "call bridge \"%s\" listed twice", key);
		return err;
	}
	add_cb(st, key, value);
	return NULL;
}

/* Refuse a secrets file that others could read, as OpenBSD's check_file_secrecy. */
static int
check_secrecy(const char *path, char *err, size_t errlen)
{
	struct stat sb;

	if (stat(path, &sb) == -1)
		return errno == ENOENT ? 1
		                       : util_fail(err, errlen, "%s: %s", path, strerror(errno));
	if (sb.st_mode & (S_IRWXG | S_IRWXO))
		return util_fail(err, errlen,
		    "%s: readable by group or others (mode %03o); "
		    "run: chmod 600 %s",
		    path, (unsigned)(sb.st_mode & 0777), path);
	return 0;
}

static void
state_defaults(struct state *st, const char *dir)
{
	memset(st, 0, sizeof(*st));
	st->dir = xstrdup(dir);
	st->policy = POLICY_KICK_NEW;
	st->handshake_timeout = 10;
	/* The agent's defaults: a dead session is gone within 40 s. */
	st->keepalive = 10;
	st->keepalive_timeout = 5;
	st->max_stanza = 256 * 1024;
	/* Raft's usual ratio: several heartbeats fit in one election timeout. */
	st->cluster_keepalive_ms = 200;
	st->cluster_election_ms = 1000;
}

int
state_load(const char *dir, struct state *st, char *err, size_t errlen)
{
	char *path;
	int r = 0;

	state_defaults(st, dir);
	path = xasprintf("%s/%s", dir, CONF_FILE);
	if (access(path, F_OK) == 0)
		r = kv_parse_file(path, state_conf_pair, st, err, errlen);
	/* The two keys may come in either order: checked together once read. */
	if (r == 0 && check_cluster_timing(
	                  st->cluster_keepalive_ms, st->cluster_election_ms, err, errlen) == -1) {
		char msg[512];

		snprintf(msg, sizeof(msg), "%s", err);
		util_fail(err, errlen, "%s: %s", path, msg);
		r = -1;
	}
	free(path);
	if (r == -1)
		return -1;
	path = xasprintf("%s/%s", dir, SECRETS_FILE);
	if ((r = check_secrecy(path, err, errlen)) == 0)
		r = kv_parse_file(path, state_secret_pair, st, err, errlen);
	free(path);
	return r == -1 ? -1 : 0;
}

void
state_free(struct state *st)
{
	size_t i;

	for (i = 0; i < st->ncbs; i++) {
		util_wipe(st->cbs[i].secret, strlen(st->cbs[i].secret));
		free(st->cbs[i].secret);
	}
	free(st->cbs);
	free(st->domain);
	free(st->dir);
	free(st->tls_key);
	free(st->tls_cert);
	free(st->tls_bundle);
	free(st->tls_trust);
	free(st->cluster_trust);
	memset(st, 0, sizeof(*st));
}

/* Write text to DIR/name through a temporary file, synced, then rename. */
static int
write_atomic(
    const char *dir, const char *name, const char *text, mode_t mode, char *err, size_t errlen)
{
	char *path = xasprintf("%s/%s", dir, name);
	int r;

	r = util_write_file(path, text, strlen(text), mode, 1, err, errlen);
	free(path);
	return r;
}

static void
add_path_line(struct buf *b, const char *key, const char *path)
{
	if (path == NULL)
		return;
	buf_addstr(b, key);
	buf_addstr(b, " = ");
	buf_addstr(b, path);
	buf_addstr(b, "\n");
}

static char *
state_conf_text(const struct state *st)
{
	struct buf b;
	char line[256];
	size_t i;

	buf_init(&b, 1 << 20);
	buf_addstr(&b, "# xcomp-server state: change it with xcomp-server commands.\n");
	if (st->domain) {
		snprintf(line, sizeof(line), "domain = %s\n", st->domain);
		buf_addstr(&b, line);
	}
	for (i = 0; i < st->nlisten; i++) {
		snprintf(line, sizeof(line),
		    strchr(st->listen[i].host, ':') ? "listen = [%s]:%d%s\n" : "listen = %s:%d%s\n",
		    st->listen[i].host, st->listen[i].port, st->listen[i].tls ? " tls" : "");
		buf_addstr(&b, line);
	}
	add_path_line(&b, "tls-key", st->tls_key);
	add_path_line(&b, "tls-cert", st->tls_cert);
	add_path_line(&b, "tls-bundle", st->tls_bundle);
	add_path_line(&b, "tls-trust", st->tls_trust);
	snprintf(line, sizeof(line),
	    "conflict-policy = %s\nhandshake-timeout = %u\n"
	    "keepalive = %u\nkeepalive-timeout = %u\n"
	    "max-stanza = %u\n",
	    state_policy_name(st->policy), st->handshake_timeout, st->keepalive,
	    st->keepalive_timeout, st->max_stanza);
	buf_addstr(&b, line);
	snprintf(line, sizeof(line), "cluster-enabled = %s\n", st->cluster_enabled ? "yes" : "no");
	buf_addstr(&b, line);
	if (st->cluster_listen.host[0] != '\0') {
		buf_addstr(&b, "cluster-listen = ");
		buf_addstr(&b, state_addr_str(&st->cluster_listen, line, sizeof(line)));
		buf_addstr(&b, "\n");
	}
	add_path_line(&b, "cluster-trust", st->cluster_trust);
	snprintf(line, sizeof(line), "cluster-keepalive = %u\ncluster-election-timeout = %u\n",
	    st->cluster_keepalive_ms, st->cluster_election_ms);
	buf_addstr(&b, line);
	buf_add(&b, "", 1);
	return b.data;
}

static char *
state_secrets_text(const struct state *st)
{
	struct buf b;
	size_t i;

	buf_init(&b, 64 << 20);
	buf_addstr(&b, "# call bridge = secret; readable by its owner only.\n");
	for (i = 0; i < st->ncbs; i++) {
		buf_addstr(&b, st->cbs[i].name);
		buf_addstr(&b, " = ");
		buf_addstr(&b, st->cbs[i].secret);
		buf_addstr(&b, "\n");
	}
	buf_add(&b, "", 1);
	return b.data;
}

int
state_save(const struct state *st, char *err, size_t errlen)
{
	char *text;
	int r;

	if (mkdir(st->dir, 0700) == -1 && errno != EEXIST)
		return util_fail(err, errlen, "%s: %s", st->dir, strerror(errno));
	text = state_conf_text(st);
	r = write_atomic(st->dir, CONF_FILE, text, 0644, err, errlen);
	free(text);
	if (r == -1)
		return -1;
	text = state_secrets_text(st);
	r = write_atomic(st->dir, SECRETS_FILE, text, 0600, err, errlen);
	util_wipe(text, strlen(text));
	free(text);
	return r;
}

static int
cmd_domain(struct state *st, int argc, char **argv, FILE *out, char *err, size_t errlen)
{
	if (argc == 1) {
		fprintf(out, "%s\n", st->domain ? st->domain : "(not set)");
		return 0;
	}
	if (argc != 2)
		return util_fail(err, errlen, "usage: domain [DOMAIN]");
	if (!jid_valid_domain(argv[1]))
		return util_fail(err, errlen, "\"%s\" is not a valid domain name", argv[1]);
	free(st->domain);
	st->domain = xstrdup(argv[1]);
	return state_save(st, err, errlen);
}

static int
cmd_listen(struct state *st, int argc, char **argv, FILE *out, char *err, size_t errlen)
{
	struct listen_addr la;
	size_t i;

	if (argc == 1) {
		for (i = 0; i < st->nlisten; i++)
			fprintf(out, strchr(st->listen[i].host, ':') ? "[%s]:%d%s\n" : "%s:%d%s\n",
			    st->listen[i].host, st->listen[i].port,
			    st->listen[i].tls ? " tls" : "");
		return 0;
	}
	if (argc == 2 && strcmp(argv[1], "none") == 0) {
		st->nlisten = 0;
		return state_save(st, err, errlen);
	}
	if (argc != 2 && (argc != 3 || strcmp(argv[2], "tls") != 0))
		return util_fail(err, errlen, "usage: listen [ADDRESS:PORT [tls] | none]");
	if (parse_listen(argv[1], &la, err, errlen) == -1)
		return -1;
	la.tls = argc == 3;
	/* Port 0 is a fresh free port each time, so it never collides. */
	for (i = 0; i < st->nlisten && la.port != 0; i++)
		if (strcmp(st->listen[i].host, la.host) == 0 && st->listen[i].port == la.port)
			return util_fail(err, errlen, "already listening on %s", argv[1]);
	if (st->nlisten == STATE_MAX_LISTEN)
		return util_fail(err, errlen, "at most %d listeners", STATE_MAX_LISTEN);
	st->listen[st->nlisten++] = la;
	if (state_save(st, err, errlen) == -1)
		return -1;
	if (la.tls && st->tls_key == NULL)
		fprintf(out,
		    "note: a TLS listener needs certs before run: "
		    "xcomp-server -d %s certs KEY CERT [BUNDLE]\n",
		    st->dir);
	return 0;
}

static int
cmd_policy(struct state *st, int argc, char **argv, FILE *out, char *err, size_t errlen)
{
	if (argc == 1) {
		fprintf(out, "%s\n", state_policy_name(st->policy));
		return 0;
	}
	if (argc != 2 || policy_parse(argv[1], &st->policy) == -1)
		return util_fail(err, errlen, "usage: conflict-policy kick-new | kick-old | allow");
	return state_save(st, err, errlen);
}

static int
cmd_number(struct state *st, int argc, char **argv, FILE *out, char *err, size_t errlen,
    unsigned *field, unsigned min, unsigned max)
{
	if (argc == 1) {
		fprintf(out, "%u\n", *field);
		return 0;
	}
	if (argc != 2 || kv_uint(argv[1], min, max, field) == -1)
		return util_fail(err, errlen, "usage: %s [%u..%u]", argv[0], min, max);
	return state_save(st, err, errlen);
}

/* TLS files */

int
state_has_tls(const struct state *st)
{
	size_t i;

	for (i = 0; i < st->nlisten; i++)
		if (st->listen[i].tls)
			return 1;
	return 0;
}

/* A regular file we can read: a clearer message than GnuTLS's "Error while reading file". */
static int
check_readable(const char *what, const char *path, char *err, size_t errlen)
{
	struct stat sb;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return util_fail(err, errlen, "%s %s: %s", what, path, strerror(errno));
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return util_fail(err, errlen, "%s %s: not a regular file", what, path);
	}
	close(fd);
	return 0;
}

/*
 * A bundle must hold PEM certificates: appended to the chain, text that is
 * not one would be skipped without a word.
 */
static int
check_pem_certs(const char *what, const char *path, char *err, size_t errlen)
{
	struct tls_ctx *c;
	char e[512];

	if (check_readable(what, path, err, errlen) == -1)
		return -1;
	if ((c = tls_client_ctx(path, NULL, NULL, NULL, e, sizeof(e))) == NULL)
		return util_fail(err, errlen, "%s %s", what, e);
	tls_ctx_free(c);
	return 0;
}

/* Credentials from these files, each checked with a message naming it. */
static struct tls_ctx *
server_ctx(const char *key, const char *cert, const char *bundle, const char *trust, char *err,
    size_t errlen)
{
	if (check_readable("key", key, err, errlen) == -1 ||
	    tls_check_key_file(key, err, errlen) == -1 ||
	    check_readable("certificate", cert, err, errlen) == -1 ||
	    (bundle && check_pem_certs("CA bundle", bundle, err, errlen) == -1) ||
	    (trust && check_pem_certs("trust bundle", trust, err, errlen) == -1))
		return NULL;
	return tls_server_ctx(key, cert, bundle, trust, NULL, err, errlen);
}

struct tls_ctx *
state_tls_ctx(const struct state *st, char *err, size_t errlen)
{
	if (st->tls_key == NULL || st->tls_cert == NULL) {
		util_fail(err, errlen,
		    "a TLS listener needs certs: xcomp-server -d %s certs KEY CERT "
		    "[BUNDLE]",
		    st->dir);
		return NULL;
	}
	return server_ctx(st->tls_key, st->tls_cert, st->tls_bundle, st->tls_trust, err, errlen);
}

static void
set_path(char **field, char *value)
{
	free(*field);
	*field = value;
}

/* The absolute path of an existing file, for the state file. Freed with free. */
static char *
abs_path(const char *what, const char *path, char *err, size_t errlen)
{
	char *p;

	if ((p = realpath(path, NULL)) == NULL) {
		util_fail(err, errlen, "%s %s: %s", what, path, strerror(errno));
		return NULL;
	}
	/* What xcomp-server.conf could not give back as it was written. */
	if (strpbrk(p, "\n\r") || strstr(p, " #") || strstr(p, "\t#") ||
	    isspace((unsigned char)p[strlen(p) - 1])) {
		util_fail(err, errlen,
		    "%s %s: the path cannot hold a line break, \" #\" or trailing white "
		    "space; move or link the file",
		    what, p);
		free(p);
		return NULL;
	}
	return p;
}

/* As "xmpp" prints them on a Meeting Server. */
static void
print_trust(const struct state *st, FILE *out)
{
	fprintf(out, "Trust bundle     : %s\n",
	    st->tls_trust ? st->tls_trust : "(none: client certificates not requested)");
}

static void
print_certs(const struct state *st, FILE *out)
{
	fprintf(out, "Key file         : %s\n", st->tls_key ? st->tls_key : "(not set)");
	fprintf(out, "Certificate file : %s\n", st->tls_cert ? st->tls_cert : "(not set)");
	fprintf(out, "CA Bundle file   : %s\n", st->tls_bundle ? st->tls_bundle : "(none)");
	print_trust(st, out);
}

/*
 * certs KEY CERT [BUNDLE], as "xmpp certs": the files must load together
 * now, so that a typo shows here rather than when the server starts.
 */
static int
cmd_certs(struct state *st, int argc, char **argv, FILE *out, char *err, size_t errlen)
{
	static const char *const what[] = {"key", "certificate", "CA bundle"};
	char *p[3] = {NULL, NULL, NULL};
	struct tls_ctx *ctx;
	int i, r = -1;

	if (argc == 1) {
		print_certs(st, out);
		return 0;
	}
	if (argc == 2 && strcmp(argv[1], "none") == 0) {
		if (st->cluster_enabled)
			return util_fail(err, errlen,
			    "the cluster is enabled and its links use these certs; run first: "
			    "xcomp-server -d %s cluster disable",
			    st->dir);
		set_path(&st->tls_key, NULL);
		set_path(&st->tls_cert, NULL);
		set_path(&st->tls_bundle, NULL);
		return state_save(st, err, errlen);
	}
	if (argc != 3 && argc != 4)
		return util_fail(err, errlen, "usage: certs [KEY CERT [BUNDLE] | none]");
	for (i = 0; i < argc - 1; i++)
		if ((p[i] = abs_path(what[i], argv[i + 1], err, errlen)) == NULL)
			goto done;
	/* The trust bundle has its own command and its own check. */
	if ((ctx = server_ctx(p[0], p[1], p[2], NULL, err, errlen)) == NULL)
		goto done;
	tls_ctx_free(ctx);
	set_path(&st->tls_key, p[0]);
	set_path(&st->tls_cert, p[1]);
	set_path(&st->tls_bundle, p[2]);
	p[0] = p[1] = p[2] = NULL;
	r = state_save(st, err, errlen);
done:
	for (i = 0; i < 3; i++)
		free(p[i]);
	return r;
}

/*
 * A certificate in the trust bundle that is not a CA is taken (GnuTLS then
 * accepts that very certificate and nothing it issued), with a warning: the
 * seed's "xmpp cluster trust" bundle is the nodes' own certificates, and an
 * operator who copies it here would lock out every component.
 */
static void
trust_warn_leaves(const char *what, const char *path, const char *advice)
{
	char names[512];

	if (tls_file_non_ca(path, names, sizeof(names)) <= 0)
		return;
	fprintf(stderr,
	    "xcomp-server: warning: %s %s: not a CA certificate (basicConstraints "
	    "CA:FALSE or absent): %s\n"
	    "xcomp-server: warning: %s\n",
	    what, path, names, advice);
}

/*
 * trust BUNDLE, named after "xmpp cluster trust" but not that: client
 * certificates from components, issued by these CAs, are required.
 */
static int
cmd_trust(struct state *st, int argc, char **argv, FILE *out, char *err, size_t errlen)
{
	char *p;

	if (argc == 1) {
		print_trust(st, out);
		return 0;
	}
	if (argc != 2)
		return util_fail(err, errlen, "usage: trust [BUNDLE | none]");
	if (strcmp(argv[1], "none") == 0) {
		set_path(&st->tls_trust, NULL);
		return state_save(st, err, errlen);
	}
	if ((p = abs_path("trust bundle", argv[1], err, errlen)) == NULL)
		return -1;
	if (check_pem_certs("trust bundle", p, err, errlen) == -1) {
		free(p);
		return -1;
	}
	trust_warn_leaves("trust bundle", p,
	    "such a certificate admits only a component that presents that very certificate, "
	    "none issued by it; trust takes the CA certificates that issue the components' "
	    "client certificates");
	set_path(&st->tls_trust, p);
	return state_save(st, err, errlen);
}

/* The cluster's settings ("cluster ..."); the server takes them on "cluster reload". */

static void
cluster_print(const struct state *st, FILE *out)
{
	char addr[128];

	fprintf(out, "Enabled            : %s\n", st->cluster_enabled ? "yes" : "no");
	fprintf(out, "Listen             : %s\n",
	    st->cluster_listen.host[0] ? state_addr_str(&st->cluster_listen, addr, sizeof(addr))
	                               : "(not set)");
	fprintf(
	    out, "Trust bundle       : %s\n", st->cluster_trust ? st->cluster_trust : "(not set)");
	fprintf(out, "Keepalive          : %u ms\n", st->cluster_keepalive_ms);
	fprintf(out, "Election timeout   : %u ms\n", st->cluster_election_ms);
}

static int
cluster_listen(struct state *st, int argc, char **argv, FILE *out, char *err, size_t errlen)
{
	struct listen_addr la;
	char addr[128];
	size_t i;

	if (argc == 1) {
		fprintf(out, "%s\n",
		    st->cluster_listen.host[0]
		        ? state_addr_str(&st->cluster_listen, addr, sizeof(addr))
		        : "(not set)");
		return 0;
	}
	if (argc != 2)
		return util_fail(err, errlen, "usage: cluster listen [IP:PORT]");
	if (parse_cluster_listen(argv[1], &la, err, errlen) == -1)
		return -1;
	for (i = 0; i < st->nlisten && la.port != 0; i++)
		if (strcmp(st->listen[i].host, la.host) == 0 && st->listen[i].port == la.port)
			return util_fail(err, errlen,
			    "cluster listen %s: a component listener has that address already "
			    "(listen)",
			    argv[1]);
	st->cluster_listen = la;
	return state_save(st, err, errlen);
}

static int
cluster_trust(struct state *st, int argc, char **argv, FILE *out, char *err, size_t errlen)
{
	char *p;

	if (argc == 1) {
		fprintf(out, "%s\n", st->cluster_trust ? st->cluster_trust : "(not set)");
		return 0;
	}
	if (argc != 2)
		return util_fail(err, errlen, "usage: cluster trust [BUNDLE | none]");
	if (strcmp(argv[1], "none") == 0) {
		if (st->cluster_enabled)
			return util_fail(err, errlen,
			    "the cluster is enabled and needs its trust bundle; run first: "
			    "xcomp-server -d %s cluster disable",
			    st->dir);
		set_path(&st->cluster_trust, NULL);
		return state_save(st, err, errlen);
	}
	if ((p = abs_path("cluster trust bundle", argv[1], err, errlen)) == NULL)
		return -1;
	if (check_pem_certs("cluster trust bundle", p, err, errlen) == -1) {
		free(p);
		return -1;
	}
	trust_warn_leaves("cluster trust bundle", p,
	    "such a certificate admits only a peer that presents that very certificate, none "
	    "issued by it; list every node's certificate in the bundle, or better the CA that "
	    "issues them");
	set_path(&st->cluster_trust, p);
	return state_save(st, err, errlen);
}

/* Enabling names everything missing at once, each with the command that sets it. */
static int
cluster_enable(struct state *st, int on, char *err, size_t errlen)
{
	char missing[1024] = "";
	size_t n;

	if (!on) {
		st->cluster_enabled = 0;
		return state_save(st, err, errlen);
	}
	if (st->tls_key == NULL || st->tls_cert == NULL)
		snprintf(missing + strlen(missing), sizeof(missing) - strlen(missing),
		    "\n  certs (this node's key and certificate): xcomp-server -d %s certs KEY "
		    "CERT [BUNDLE]",
		    st->dir);
	if (st->cluster_trust == NULL)
		snprintf(missing + strlen(missing), sizeof(missing) - strlen(missing),
		    "\n  cluster trust (the CAs of the peers' certificates): xcomp-server -d %s "
		    "cluster trust BUNDLE",
		    st->dir);
	if (st->cluster_listen.host[0] == '\0')
		snprintf(missing + strlen(missing), sizeof(missing) - strlen(missing),
		    "\n  cluster listen (the address peers dial): xcomp-server -d %s cluster "
		    "listen IP:PORT",
		    st->dir);
	if ((n = strlen(missing)) > 0)
		return util_fail(err, errlen, "cannot enable the cluster: it needs%s", missing);
	st->cluster_enabled = 1;
	return state_save(st, err, errlen);
}

static int
cluster_ms(struct state *st, int argc, char **argv, FILE *out, char *err, size_t errlen,
    unsigned *field, unsigned min, unsigned max)
{
	unsigned v, keepalive, election;

	if (argc == 1) {
		fprintf(out, "%u\n", *field);
		return 0;
	}
	if (argc != 2 || kv_uint(argv[1], min, max, &v) == -1)
		return util_fail(err, errlen, "usage: cluster %s [MS], from %u to %u milliseconds",
		    argv[0], min, max);
	keepalive = field == &st->cluster_keepalive_ms ? v : st->cluster_keepalive_ms;
	election = field == &st->cluster_election_ms ? v : st->cluster_election_ms;
	if (check_cluster_timing(keepalive, election, err, errlen) == -1) {
		char msg[512];

		snprintf(msg, sizeof(msg), "%s", err);
		return util_fail(err, errlen, "cluster %s %s: %s; %s first", argv[0], argv[1], msg,
		    field == &st->cluster_keepalive_ms ? "raise cluster election-timeout"
		                                       : "lower cluster keepalive");
	}
	*field = v;
	return state_save(st, err, errlen);
}

static int
cmd_cluster(struct state *st, int argc, char **argv, FILE *out, char *err, size_t errlen)
{
	if (argc == 1) {
		cluster_print(st, out);
		return 0;
	}
	argc--;
	argv++;
	if (strcmp(argv[0], "listen") == 0)
		return cluster_listen(st, argc, argv, out, err, errlen);
	if (strcmp(argv[0], "trust") == 0)
		return cluster_trust(st, argc, argv, out, err, errlen);
	if (strcmp(argv[0], "enable") == 0 || strcmp(argv[0], "disable") == 0) {
		if (argc != 1)
			return util_fail(err, errlen, "usage: cluster %s", argv[0]);
		return cluster_enable(st, strcmp(argv[0], "enable") == 0, err, errlen);
	}
	if (strcmp(argv[0], "keepalive") == 0)
		return cluster_ms(
		    st, argc, argv, out, err, errlen, &st->cluster_keepalive_ms, 20, 10000);
	if (strcmp(argv[0], "election-timeout") == 0)
		return cluster_ms(
		    st, argc, argv, out, err, errlen, &st->cluster_election_ms, 100, 60000);
	return util_fail(err, errlen,
	    "unknown cluster command \"%s\"; the cluster commands are listen, trust, enable, "
	    "disable, keepalive, election-timeout (settings) and initialize, join, remove, "
	    "status (on the running server)",
	    argv[0]);
}

/* One line from in, without its newline; the prompt goes to stderr for a terminal. */
static int
read_secret(FILE *in, char *secret, size_t len, char *err, size_t errlen)
{
	size_t n;

	if (isatty(fileno(in)))
		fprintf(stderr, "Enter callbridge secret\n");
	if (fgets(secret, len, in) == NULL)
		return util_fail(err, errlen, "no secret on standard input");
	n = strlen(secret);
	if (n > 0 && secret[n - 1] == '\n')
		secret[--n] = '\0';
	else if (!feof(in))
		return util_fail(err, errlen, "secret longer than %d characters", STATE_SECRET_MAX);
	if (n > 0 && secret[n - 1] == '\r')
		secret[--n] = '\0';
	return state_valid_secret(secret, err, errlen);
}

static void
list_callbridges(const struct state *st, FILE *out)
{
	size_t i;

	/* The seed article's "xmpp callbridge list" format. */
	for (i = 0; i < st->ncbs; i++)
		fprintf(out, "***\nCallbridge : %s\nDomain     : %s\nSecret     : %s\n",
		    st->cbs[i].name, st->domain ? st->domain : "(not set)", st->cbs[i].secret);
}

static void
remove_cb(struct state *st, struct callbridge *cb)
{
	size_t i = cb - st->cbs;

	util_wipe(cb->secret, strlen(cb->secret));
	free(cb->secret);
	memmove(&st->cbs[i], &st->cbs[i + 1], (st->ncbs - i - 1) * sizeof(*cb));
	st->ncbs--;
}

static int
cmd_callbridge(
    struct state *st, int argc, char **argv, FILE *in, FILE *out, char *err, size_t errlen)
{
	char secret[STATE_SECRET_MAX + 2];
	struct callbridge *cb;
	int r;

	if (argc == 2 && strcmp(argv[1], "list") == 0) {
		list_callbridges(st, out);
		return 0;
	}
	if (argc != 3 ||
	    (strcmp(argv[1], "add") && strcmp(argv[1], "add-secret") && strcmp(argv[1], "remove")))
		return util_fail(err, errlen,
		    "usage: callbridge add NAME | add-secret NAME | "
		    "list | remove NAME");
	if (state_valid_name(argv[2], err, errlen) == -1)
		return -1;
	cb = state_find(st, argv[2]);
	if (strcmp(argv[1], "remove") == 0) {
		if (cb == NULL)
			return util_fail(err, errlen, "no call bridge named \"%s\"", argv[2]);
		remove_cb(st, cb);
		return state_save(st, err, errlen);
	}
	if (strcmp(argv[1], "add") == 0) {
		if (cb != NULL)
			return util_fail(err, errlen,
			    "call bridge \"%s\" exists already; use "
			    "add-secret to change its secret",
			    argv[2]);
		state_new_secret(secret);
	} else if (read_secret(in, secret, sizeof(secret), err, errlen) == -1)
		return -1;
	if (cb != NULL) {
		/* A new secret for a known call bridge keeps its place in the list. */
		util_wipe(cb->secret, strlen(cb->secret));
		free(cb->secret);
		cb->secret = xstrdup(secret);
	} else
		add_cb(st, argv[2], secret);
	r = state_save(st, err, errlen);
	if (r == 0 && strcmp(argv[1], "add") == 0)
		fprintf(out, "Callbridge : %s\nDomain     : %s\nSecret     : %s\n", argv[2],
		    st->domain ? st->domain : "(not set)", secret);
	util_wipe(secret, sizeof(secret));
	return r;
}

int
state_command(const char *dir, int argc, char **argv, FILE *in, FILE *out, char *err, size_t errlen)
{
	struct state st;
	int r;

	if (state_load(dir, &st, err, errlen) == -1) {
		state_free(&st);
		return -1;
	}
	if (strcmp(argv[0], "domain") == 0)
		r = cmd_domain(&st, argc, argv, out, err, errlen);
	else if (strcmp(argv[0], "listen") == 0)
		r = cmd_listen(&st, argc, argv, out, err, errlen);
	else if (strcmp(argv[0], "callbridge") == 0)
		r = cmd_callbridge(&st, argc, argv, in, out, err, errlen);
	else if (strcmp(argv[0], "conflict-policy") == 0)
		r = cmd_policy(&st, argc, argv, out, err, errlen);
	else if (strcmp(argv[0], "certs") == 0)
		r = cmd_certs(&st, argc, argv, out, err, errlen);
	else if (strcmp(argv[0], "trust") == 0)
		r = cmd_trust(&st, argc, argv, out, err, errlen);
	else if (strcmp(argv[0], "cluster") == 0)
		r = cmd_cluster(&st, argc, argv, out, err, errlen);
	else if (strcmp(argv[0], "handshake-timeout") == 0)
		r = cmd_number(&st, argc, argv, out, err, errlen, &st.handshake_timeout, 1, 3600);
	else if (strcmp(argv[0], "keepalive") == 0)
		r = cmd_number(&st, argc, argv, out, err, errlen, &st.keepalive, 1, 3600);
	else if (strcmp(argv[0], "keepalive-timeout") == 0)
		r = cmd_number(&st, argc, argv, out, err, errlen, &st.keepalive_timeout, 1, 300);
	else if (strcmp(argv[0], "max-stanza") == 0)
		r = cmd_number(&st, argc, argv, out, err, errlen, &st.max_stanza, 1024, 64 << 20);
	else
		r = util_fail(err, errlen, "unknown command \"%s\" (see xcomp-server -h)", argv[0]);
	state_free(&st);
	return r;
}

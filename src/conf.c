/*
 * conf: xcompd's configuration (xcompd.conf(5)): the keys, their checks and
 * defaults, the secret file, and what no single line can check. The files
 * are read by kv.c.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "history.h"
#include "kv.h"
#include "jid.h"
#include "tls.h"
#include "util.h"

/* xcompd's keys. */

struct conf *
conf_new(void)
{
	struct conf *c = xcalloc(1, sizeof(*c));

	c->service = xstrdup("_xmpp-component._tcp");
	c->port = 5347;
	c->connect_timeout = 5;
	c->handshake_timeout = 10;
	c->keepalive = 10;
	c->keepalive_timeout = 5;
	c->backoff_min = 1;
	c->backoff_max = 60;
	c->status_file = xstrdup("/run/xcomp/status");
	c->history_max = HISTORY_MAX_DEFAULT;
	c->log_level = LOG_LEVEL_INFO;
	c->relay_queue = 1 << 20;
	c->event_timeout = 5;
	c->event_queue = 256;
	return c;
}

void
conf_wipe_free(char *s)
{
	if (s == NULL)
		return;
	util_wipe(s, strlen(s));
	free(s);
}

void
conf_free(struct conf *c)
{
	if (c == NULL)
		return;
	free(c->path);
	free(c->name);
	free(c->domain);
	free(c->component);
	free(c->secret_file);
	conf_wipe_free(c->secret);
	free(c->service);
	free(c->dns_server);
	free(c->trust_anchor);
	free(c->status_file);
	free(c->history);
	free(c->metrics_file);
	free(c->user);
	free(c->tls_ca);
	free(c->tls_name);
	free(c->tls_cert);
	free(c->tls_key);
	free(c->tls_priority);
	free(c->event_url);
	free(c->event_ca);
	free(c->relay_listen);
	free(c->relay_secret_file);
	conf_wipe_free(c->relay_secret);
	free(c);
}

static void
set_str(char **field, const char *value)
{
	free(*field);
	*field = xstrdup(value);
}

static const char *
set_name(struct conf *c, const char *value, char *err, size_t errlen)
{
	const char *p;

	(void)err;
	(void)errlen;
	if (strlen(value) > 63)
		return "name: at most 63 characters";
	for (p = value; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
			return "name: use letters, digits, '-' and '_' (e.g. cb1)";
	set_str(&c->name, value);
	return NULL;
}

static const char *
set_servers(struct conf *c, const char *value, char *err, size_t errlen)
{
	char *copy = xstrdup(value), *w, *save = NULL;
	const char *why = NULL;

	c->nservers = 0;
	for (w = strtok_r(copy, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
		struct conf_server *s = &c->servers[c->nservers];

		if (c->nservers == CONF_MAX_SERVERS) {
			snprintf(err, errlen, "server: more than %d entries", CONF_MAX_SERVERS);
			why = err;
			break;
		}
		s->port = -1;
		if (util_split_hostport(w, s->host, sizeof(s->host), &s->port) == -1 ||
		    s->port == 0 || (!jid_valid_domain(s->host) && strchr(s->host, ':') == NULL)) {
			snprintf(err, errlen, "server: \"%s\" is not host[:port]", w);
			why = err;
			break;
		}
		if (s->port == -1)
			s->port = 0; /* the "port" key */
		c->nservers++;
	}
	free(copy);
	return why;
}

static int
valid_service(const char *s)
{
	/* Two labels, each starting with '_': _xmpp-component._tcp */
	const char *dot = strchr(s, '.');

	return s[0] == '_' && dot != NULL && dot[1] == '_' && strchr(dot + 1, '.') == NULL &&
	       jid_valid_domain(s + 1);
}

static int
valid_dns_server(const char *s)
{
	char ip[64];
	const char *at = strchr(s, '@');
	size_t n = at ? (size_t)(at - s) : strlen(s);
	struct sockaddr_storage ss;
	unsigned port;
	int len;

	if (n == 0 || n >= sizeof(ip))
		return 0;
	memcpy(ip, s, n);
	ip[n] = '\0';
	if (util_sockaddr(ip, 53, &ss, &len) == -1)
		return 0;
	return at == NULL || kv_uint(at + 1, 1, 65535, &port) == 0;
}

static int
valid_relay_listen(const char *s)
{
	struct sockaddr_storage ss;
	char host[64];
	int port = -1, len;

	if (strncmp(s, "unix:", 5) == 0)
		return s[5] == '/' && strlen(s + 5) < 100;
	return util_split_hostport(s, host, sizeof(host), &port) == 0 && port > 0 &&
	       util_sockaddr(host, port, &ss, &len) == 0;
}

struct numkey {
	const char *key;
	size_t off;
	unsigned min, max;
};

static const struct numkey numkeys[] = {
    {"port", offsetof(struct conf, port), 1, 65535},
    {"connect-timeout", offsetof(struct conf, connect_timeout), 1, 300},
    {"handshake-timeout", offsetof(struct conf, handshake_timeout), 1, 300},
    {"keepalive", offsetof(struct conf, keepalive), 1, 3600},
    {"keepalive-timeout", offsetof(struct conf, keepalive_timeout), 1, 300},
    {"backoff-min", offsetof(struct conf, backoff_min), 1, 3600},
    {"backoff-max", offsetof(struct conf, backoff_max), 1, 86400},
    {"relay-queue", offsetof(struct conf, relay_queue), 4096, 1u << 30},
    {"event-timeout", offsetof(struct conf, event_timeout), 1, 300},
    {"event-queue", offsetof(struct conf, event_queue), 1, 100000},
    {"history-max", offsetof(struct conf, history_max), HISTORY_MAX_MIN, HISTORY_MAX_MAX},
};

static const char *
set_number(struct conf *c, const struct numkey *k, const char *value, char *err, size_t errlen)
{
	unsigned *field = (unsigned *)((char *)c + k->off);

	if (kv_uint(value, k->min, k->max, field) == -1) {
		snprintf(err, errlen, "%s: expected a whole number from %u to %u, found \"%.40s\"",
		    k->key, k->min, k->max, value);
		return err;
	}
	return NULL;
}

static int
valid_url(const char *s)
{
	return strncasecmp(s, "http://", 7) == 0 || strncasecmp(s, "https://", 8) == 0;
}

/* node_exporter's textfile collector reads only DIR/NAME.prom. */
static int
valid_metrics_file(const char *s)
{
	const char *base = strrchr(s, '/') ? strrchr(s, '/') + 1 : s;
	size_t n = strlen(base);

	return n > 5 && strcmp(base + n - 5, ".prom") == 0;
}

/*
 * Keys that hold one string: where it goes, and the check of its value
 * (none: any value), with what to say when it fails: why, or for a name,
 * '"VALUE" is not a NOUN name'.
 */
struct strkey {
	const char *key;
	size_t off;
	int (*valid)(const char *);
	const char *why;
	const char *noun;
};

#define FIELD(f) offsetof(struct conf, f)

/* A user name as useradd(8) takes it; whether it exists is xcompd's check (privdrop). */
static int
valid_user(const char *s)
{
	size_t i;

	if (s[0] == '\0' || s[0] == '-' || strlen(s) > 32)
		return 0;
	for (i = 0; s[i]; i++)
		if (!isalnum((unsigned char)s[i]) && strchr("._-$", s[i]) == NULL)
			return 0;
	return 1;
}

static const struct strkey strkeys[] = {
    {"domain", FIELD(domain), jid_valid_domain, NULL, "domain"},
    {"component", FIELD(component), jid_valid_domain, NULL, "domain"},
    {"secret-file", FIELD(secret_file), NULL, NULL, NULL},
    {"service", FIELD(service), valid_service,
        "service: expected two labels like _xmpp-component._tcp", NULL},
    {"dns-server", FIELD(dns_server), valid_dns_server,
        "dns-server: expected an IP address, optionally @PORT (127.0.0.1@5353)", NULL},
    {"dnssec-trust-anchor", FIELD(trust_anchor), NULL, NULL, NULL},
    {"tls-ca", FIELD(tls_ca), NULL, NULL, NULL},
    {"tls-name", FIELD(tls_name), jid_valid_domain, NULL, "host"},
    {"tls-cert", FIELD(tls_cert), NULL, NULL, NULL},
    {"tls-key", FIELD(tls_key), NULL, NULL, NULL},
    {"tls-priority", FIELD(tls_priority), NULL, NULL, NULL},
    {"event-url", FIELD(event_url), valid_url, "event-url: expected an http:// or https:// URL",
        NULL},
    {"event-ca", FIELD(event_ca), NULL, NULL, NULL},
    {"relay-listen", FIELD(relay_listen), valid_relay_listen,
        "relay-listen: expected IP:PORT (127.0.0.1:5347) or unix:PATH", NULL},
    {"relay-secret-file", FIELD(relay_secret_file), NULL, NULL, NULL},
    {"status-file", FIELD(status_file), NULL, NULL, NULL},
    {"history", FIELD(history), NULL, NULL, NULL},
    {"user", FIELD(user), valid_user, NULL, "user"},
    {"metrics-file", FIELD(metrics_file), valid_metrics_file,
        "metrics-file: expected a file name ending in .prom, the files node_exporter's "
        "textfile collector reads (/var/lib/prometheus/node-exporter/xcomp.prom)",
        NULL},
};

static const char *
set_string(struct conf *c, const struct strkey *k, const char *value, char *err, size_t errlen)
{
	if (k->valid != NULL && !k->valid(value)) {
		if (k->why != NULL)
			return k->why;
		snprintf(err, errlen, "%s: \"%.60s\" is not a %s name", k->key, value, k->noun);
		return err;
	}
	set_str((char **)((char *)c + k->off), value);
	return NULL;
}

static const char *
set_secret(struct conf *c, const char *value, char *err, size_t errlen)
{
	if (strlen(value) > CONF_SECRET_MAX) {
		snprintf(err, errlen, "secret: longer than %d characters", CONF_SECRET_MAX);
		return err;
	}
	conf_wipe_free(c->secret);
	c->secret = xstrdup(value);
	c->secret_inline = 1;
	return NULL;
}

static const char *
set_tls(struct conf *c, const char *value, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	if (strcmp(value, "off") && strcmp(value, "direct"))
		return "tls: expected off or direct";
	c->tls = strcmp(value, "direct") == 0;
	return NULL;
}

static const char *
set_relay_replay(struct conf *c, const char *value, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	return kv_bool(value, &c->relay_replay) == -1 ? "relay-replay: expected on or off" : NULL;
}

static const char *
set_log(struct conf *c, const char *value, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	if (strcmp(value, "stderr") && strcmp(value, "syslog"))
		return "log: expected stderr or syslog";
	c->log_syslog = strcmp(value, "syslog") == 0;
	return NULL;
}

static const char *
set_log_level(struct conf *c, const char *value, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	if (log_level_parse(value, &c->log_level) == -1)
		return "log-level: expected error, warning, info or debug";
	return NULL;
}

/* The other keys: each sets what it sets itself. */
struct setkey {
	const char *key;
	const char *(*set)(struct conf *, const char *value, char *err, size_t errlen);
};

static const struct setkey setkeys[] = {
    {"name", set_name},
    {"secret", set_secret},
    {"server", set_servers},
    {"tls", set_tls},
    {"relay-replay", set_relay_replay},
    {"log", set_log},
    {"log-level", set_log_level},
};

const char *
conf_set(void *arg, const char *key, const char *value, char *err, size_t errlen)
{
	struct conf *c = arg;
	const char *near;
	size_t i;

	for (i = 0; i < nitems(numkeys); i++)
		if (strcmp(key, numkeys[i].key) == 0)
			return set_number(c, &numkeys[i], value, err, errlen);
	for (i = 0; i < nitems(strkeys); i++)
		if (strcmp(key, strkeys[i].key) == 0)
			return set_string(c, &strkeys[i], value, err, errlen);
	for (i = 0; i < nitems(setkeys); i++)
		if (strcmp(key, setkeys[i].key) == 0)
			return setkeys[i].set(c, value, err, errlen);
	if ((near = conf_suggest(key)) != NULL)
		snprintf(err, errlen,
		    "unknown key \"%.60s\"; did you mean \"%s\"? (see xcompd.conf(5))", key, near);
	else
		snprintf(err, errlen, "unknown key \"%.60s\" (see xcompd.conf(5))", key);
	return err;
}

#define CONF_SUGGEST_MAX 64

/*
 * Optimal string alignment distance (Damerau-Levenshtein without repeated
 * edits of one substring), case folded: a transposed pair ("lgo") costs one
 * edit, as a typist makes it. Strings longer than CONF_SUGGEST_MAX are far
 * from everything.
 */
static size_t
conf_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j, d[3][CONF_SUGGEST_MAX + 1];
	size_t *prev2 = d[0], *prev = d[1], *cur = d[2], *t;

	if (la > CONF_SUGGEST_MAX || lb > CONF_SUGGEST_MAX)
		return SIZE_MAX;
	for (j = 0; j <= lb; j++)
		prev[j] = j;
	for (i = 1; i <= la; i++) {
		cur[0] = i;
		for (j = 1; j <= lb; j++) {
			int ca = tolower((unsigned char)a[i - 1]),
			    cb = tolower((unsigned char)b[j - 1]);
			size_t v = prev[j - 1] + (ca != cb);

			if (prev[j] + 1 < v)
				v = prev[j] + 1;
			if (cur[j - 1] + 1 < v)
				v = cur[j - 1] + 1;
			if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
			    cb == tolower((unsigned char)a[i - 2]) && prev2[j - 2] + 1 < v)
				v = prev2[j - 2] + 1;
			cur[j] = v;
		}
		t = prev2;
		prev2 = prev;
		prev = cur;
		cur = t;
	}
	return prev[lb];
}

/* The same key but for case, '-' and '_': "secret_file", "statusfile", "Log-Level". */
static int
conf_same_letters(const char *a, const char *b)
{
	for (;; a++, b++) {
		while (*a == '-' || *a == '_')
			a++;
		while (*b == '-' || *b == '_')
			b++;
		if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
			return 0;
		if (*a == '\0')
			return 1;
	}
}

#define CONF_NKEYS (nitems(numkeys) + nitems(strkeys) + nitems(setkeys))

/* The i-th of every key conf_set takes, i < CONF_NKEYS. */
static const char *
conf_key_at(size_t i)
{
	if (i < nitems(numkeys))
		return numkeys[i].key;
	i -= nitems(numkeys);
	return i < nitems(strkeys) ? strkeys[i].key : setkeys[i - nitems(strkeys)].key;
}

int
conf_known_key(const char *key)
{
	size_t i;

	for (i = 0; i < CONF_NKEYS; i++)
		if (strcmp(key, conf_key_at(i)) == 0)
			return 1;
	return 0;
}

const char *
conf_suggest(const char *key)
{
	/* One edit in a short key, two in a longer one: "lag" is "log", "to" is nothing. */
	size_t i, d, best = strlen(key) <= 4 ? 1 : 2;
	const char *near = NULL;

	for (i = 0; i < CONF_NKEYS; i++)
		if (conf_same_letters(key, conf_key_at(i)))
			return conf_key_at(i);
	for (i = 0; i < CONF_NKEYS; i++)
		if ((d = conf_distance(key, conf_key_at(i))) <= best &&
		    (near == NULL || d < best)) {
			near = conf_key_at(i);
			best = d;
		}
	return near;
}

int
conf_load(struct conf *c, const char *path, char *err, size_t errlen)
{
	set_str(&c->path, path);
	return kv_parse_file(path, conf_set, c, err, errlen);
}

int
conf_override(struct conf *c, const char *kv, char *err, size_t errlen)
{
	char *line;
	int r;

	if (strchr(kv, '=') == NULL) {
		snprintf(err, errlen, "-o %s: expected KEY=VALUE", kv);
		return -1;
	}
	line = xasprintf("%s\n", kv);
	r = kv_parse_string("-o", line, conf_set, c, err, errlen);
	conf_wipe_free(line);
	return r;
}

#define CRED_VAR "CREDENTIALS_DIRECTORY"

static int conf_read_secret_file(const char *, char **, char *, size_t);

char *
conf_expand_credentials(const char *path, const char *credentials_dir, char *err, size_t errlen)
{
	struct buf b;
	const char *p = path;
	char *out;
	size_t n;

	buf_init(&b, 4096); /* PATH_MAX */
	while (*p) {
		if (strncmp(p, "${" CRED_VAR "}", sizeof(CRED_VAR) + 2) == 0)
			n = sizeof(CRED_VAR) + 2;
		else if (strncmp(p, "$" CRED_VAR, sizeof(CRED_VAR)) == 0 &&
		         !isalnum((unsigned char)p[sizeof(CRED_VAR)]) && p[sizeof(CRED_VAR)] != '_')
			n = sizeof(CRED_VAR);
		else {
			if (buf_add(&b, p++, 1) == -1)
				goto toolong;
			continue;
		}
		if (credentials_dir == NULL || credentials_dir[0] == '\0') {
			snprintf(err, errlen,
			    "secret-file %s: " CRED_VAR " is not set (systemd sets it for a unit "
			    "with LoadCredential=; outside one, name the file itself)",
			    path);
			buf_free(&b);
			return NULL;
		}
		if (buf_addstr(&b, credentials_dir) == -1)
			goto toolong;
		p += n;
	}
	out = xstrndup(buf_head(&b), b.len);
	buf_free(&b);
	return out;
toolong:
	snprintf(err, errlen, "secret-file %s: the path is too long", path);
	buf_free(&b);
	return NULL;
}

int
conf_read_secret(const char *spec, char **secret, char *err, size_t errlen)
{
	char *path;
	int r;

	*secret = NULL;
	if ((path = conf_expand_credentials(spec, getenv(CRED_VAR), err, errlen)) == NULL)
		return -1;
	r = conf_read_secret_file(path, secret, err, errlen);
	free(path);
	return r;
}

static int
conf_read_secret_file(const char *path, char **secret, char *err, size_t errlen)
{
	char line[CONF_SECRET_MAX + 2];
	struct stat sb;
	ssize_t n;
	size_t len;
	int fd;

	*secret = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1 || fstat(fd, &sb) == -1) {
		snprintf(err, errlen, "secret-file %s: %s", path, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	if (sb.st_mode & (S_IRGRP | S_IROTH)) {
		snprintf(err, errlen,
		    "secret-file %s: readable by group or others (mode %03o); "
		    "run: chmod 600 %s",
		    path, (unsigned)(sb.st_mode & 0777), path);
		close(fd);
		return -1;
	}
	n = read(fd, line, sizeof(line) - 1);
	close(fd);
	if (n < 0) {
		snprintf(err, errlen, "secret-file %s: %s", path, strerror(errno));
		return -1;
	}
	line[n] = '\0';
	/* Not strcspn: a NUL inside the first line must be seen, not end it. */
	for (len = 0; len < (size_t)n && line[len] != '\n' && line[len] != '\r'; len++)
		;
	if (len > CONF_SECRET_MAX) {
		util_wipe(line, sizeof(line));
		snprintf(err, errlen,
		    "secret-file %s: the secret is longer than %d characters; use a shorter one",
		    path, CONF_SECRET_MAX);
		return -1;
	}
	if (len == 0 || memchr(line, '\0', len) != NULL) {
		util_wipe(line, sizeof(line));
		snprintf(err, errlen, "secret-file %s: the first line is %s", path,
		    len == 0 ? "empty" : "binary (it holds a NUL byte)");
		return -1;
	}
	*secret = xstrndup(line, len);
	util_wipe(line, sizeof(line));
	return 0;
}

/* The TLS files exist and load, so that -t finds what the agent would. */
static int
conf_check_tls(const struct conf *c, const char *file, char *err, size_t errlen)
{
	char why[512];
	struct tls_ctx *t;

	t = tls_client_ctx(c->tls_ca, c->tls_cert, c->tls_key, c->tls_priority, why, sizeof(why));
	if (t == NULL) {
		snprintf(err, errlen, "%s: %s", file, why);
		return -1;
	}
	tls_ctx_free(t);
	return 0;
}

int
conf_check(struct conf *c, char *err, size_t errlen)
{
	const char *file = c->path ? c->path : "configuration";

	if (c->name == NULL || c->domain == NULL) {
		snprintf(err, errlen, "%s: \"%s\" is required", file, c->name ? "domain" : "name");
		return -1;
	}
	if ((c->secret_file != NULL) == c->secret_inline) {
		snprintf(err, errlen,
		    "%s: set exactly one of \"secret-file\" (preferred) and "
		    "\"secret\"",
		    file);
		return -1;
	}
	if (c->backoff_min > c->backoff_max) {
		snprintf(err, errlen, "%s: backoff-min (%u) is larger than backoff-max (%u)", file,
		    c->backoff_min, c->backoff_max);
		return -1;
	}
	if (c->trust_anchor != NULL && access(c->trust_anchor, R_OK) == -1) {
		snprintf(err, errlen, "%s: dnssec-trust-anchor %s: %s", file, c->trust_anchor,
		    strerror(errno));
		return -1;
	}
	if ((c->tls_cert != NULL) != (c->tls_key != NULL)) {
		snprintf(
		    err, errlen, "%s: a client certificate needs both tls-cert and tls-key", file);
		return -1;
	}
	if (c->tls && conf_check_tls(c, file, err, errlen) == -1)
		return -1;
	if (c->metrics_file != NULL && strcmp(c->metrics_file, c->status_file) == 0) {
		snprintf(err, errlen, "%s: metrics-file and status-file are the same file, %s",
		    file, c->status_file);
		return -1;
	}
	if (c->component == NULL)
		c->component = xasprintf("%s.%s", c->name, c->domain);
	/* The server's own domain is not a component name (ejabberd answers conflict). */
	if (strcasecmp(c->component, c->domain) == 0) {
		snprintf(err, errlen,
		    "%s: component %s is the domain itself; a component needs a "
		    "name of its own, such as %s.%s",
		    file, c->component, c->name, c->domain);
		return -1;
	}
	return 0;
}

int
conf_finish(struct conf *c, char *err, size_t errlen)
{
	if (conf_check(c, err, errlen) == -1)
		return -1;
	if (c->secret_file != NULL) {
		conf_wipe_free(c->secret);
		c->secret = NULL;
		if (conf_read_secret(c->secret_file, &c->secret, err, errlen) == -1)
			return -1;
	}
	if (c->relay_listen != NULL) {
		conf_wipe_free(c->relay_secret);
		c->relay_secret = NULL;
		if (c->relay_secret_file == NULL)
			c->relay_secret = xstrdup(c->secret);
		else if (conf_read_secret(c->relay_secret_file, &c->relay_secret, err, errlen) ==
		         -1)
			return -1;
	}
	return 0;
}

const char *
conf_tls_name(const struct conf *c)
{
	return c->tls_name ? c->tls_name : c->domain;
}

const char *
conf_tls_alt(const struct conf *c, const char *target)
{
	return c->tls_name ? NULL : target;
}

char *
conf_history_path(const struct conf *c)
{
	if (c->history == NULL)
		return xasprintf("%s.history", c->status_file);
	return strcmp(c->history, "none") == 0 ? NULL : xstrdup(c->history);
}

char *
conf_srv_name(const struct conf *c)
{
	return xasprintf("%s.%s", c->service, c->domain);
}

/*
 * An SRV owner name rather than a host: a "_service" label followed by
 * "_tcp" or "_udp", as in _xmpp-component._tcp.tptac9.com. No node has such
 * a name, so its address lookup can only fail.
 */
static int
conf_srv_like(const char *host)
{
	const char *p = host, *dot;

	for (; p != NULL && *p != '\0'; p = dot ? dot + 1 : NULL) {
		dot = strchr(p, '.');
		if (*p == '_' && dot != NULL &&
		    (strncasecmp(dot + 1, "_tcp", 4) == 0 ||
		        strncasecmp(dot + 1, "_udp", 4) == 0) &&
		    (dot[5] == '.' || dot[5] == '\0'))
			return 1;
	}
	return 0;
}

const char *
conf_warning(const struct conf *c, char *buf, size_t len)
{
	const char *file = c->path ? c->path : "configuration";
	char *srv;
	size_t i;

	for (i = 0; i < c->nservers; i++) {
		if (!conf_srv_like(c->servers[i].host))
			continue;
		srv = conf_srv_name(c);
		snprintf(buf, len,
		    "%s: server %s is an SRV name, not a host; remove \"server\" and the agent "
		    "looks up the SRV records (%s) itself, or list the nodes' own host names",
		    file, c->servers[i].host, srv);
		free(srv);
		return buf;
	}
	return NULL;
}

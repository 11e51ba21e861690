/*
 * xcomp: the operator's tool. "xcomp status" reads the agent's status file
 * and says in words what is going on and where to read about it; "xcomp
 * resolve" shows the SRV records and the order the agent would try; "xcomp
 * probe" walks one attempt at each node step by step (the work is in
 * probe.c).
 */
#include <sys/socket.h>

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "dns.h"
#include "jid.h"
#include "log.h"
#include "loop.h"
#include "probe.h"
#include "srv.h"
#include "status.h"
#include "util.h"

#define EXIT_NOT_CONNECTED 1
#define EXIT_NO_STATUS 3
#define STATUS_READ_MAX (1u << 20)

static void __attribute__((noreturn)) usage(int status)
{
	fprintf(status ? stderr : stdout,
	    "usage: xcomp status [-f CONFIG] [-s FILE] [--json]\n"
	    "       xcomp resolve [-f CONFIG] [--dns-server IP[@PORT]] [--service NAME]\n"
	    "                     [--samples N] [DOMAIN]\n"
	    "       xcomp probe [-f CONFIG] [HOST[:PORT]]\n"
	    "                   (CONFIG: default " SYSCONFDIR "/xcompd.conf)\n"
	    "See xcomp(1).\n");
	exit(status);
}

/* "1 minute, 2 seconds" */
static void
ago(time_t secs, char *buf, size_t len)
{
	static const struct {
		const char *unit;
		time_t s;
	} units[] = {{"day", 86400}, {"hour", 3600}, {"minute", 60}, {"second", 1}};
	size_t i, used = 0;
	int parts = 0;

	if (secs < 0)
		secs = 0;
	buf[0] = '\0';
	for (i = 0; i < nitems(units) && parts < 2; i++) {
		time_t n = secs / units[i].s;

		if (n == 0 && !(i == nitems(units) - 1 && parts == 0))
			continue;
		secs -= n * units[i].s;
		used += snprintf(buf + used, len - used, "%s%lld %s%s", parts ? ", " : "",
		    (long long)n, units[i].unit, n == 1 ? "" : "s");
		parts++;
		if (used >= len)
			break;
	}
}

static const char *
error_words(const char *code)
{
	static const struct {
		const char *code, *words;
	} w[] = {{"dns", "DNS error"}, {"dnssec", "DNSSEC validation failure"},
	    {"connect", "connection failure"}, {"timeout", "timeout"}, {"tls", "TLS failure"},
	    {"auth", "authentication failure"},
	    {"conflict", "conflict (component already connected)"}, {"stream", "stream error"},
	    {"closed", "connection closed"}, {"config", "configuration error"}};
	size_t i;

	for (i = 0; i < nitems(w); i++)
		if (strcmp(code, w[i].code) == 0)
			return w[i].words;
	return code;
}

static char *
read_text(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "r");
	char *text;

	if (fp == NULL)
		return NULL;
	text = xmalloc(STATUS_READ_MAX + 1);
	*len = fread(text, 1, STATUS_READ_MAX + 1, fp);
	fclose(fp);
	if (*len > STATUS_READ_MAX) {
		free(text);
		errno = EFBIG;
		return NULL;
	}
	text[*len] = '\0';
	return text;
}

static void
json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", (unsigned char)*s);
		else
			putchar(*s);
	}
	putchar('"');
}

static void
json_node(const char *v)
{
	char target[300];
	unsigned prio = 0, weight = 0;
	char result[32] = "";
	int port = 0;
	const char *colon;

	/* target:port priority=P weight=W result=R */
	if (sscanf(v, "%299s priority=%u weight=%u result=%31s", target, &prio, &weight, result) !=
	        4 ||
	    (colon = strrchr(target, ':')) == NULL) {
		json_str(v);
		return;
	}
	port = atoi(colon + 1);
	target[colon - target] = '\0';
	printf("{\"target\": ");
	json_str(target);
	printf(
	    ", \"port\": %d, \"priority\": %u, \"weight\": %u, \"result\": ", port, prio, weight);
	json_str(result);
	printf("}");
}

static void
print_json(const struct status_file *f, const char *verdict)
{
	size_t i, nodes = 0;

	printf("{\n  \"verdict\": ");
	json_str(verdict);
	for (i = 0; i < f->n; i++) {
		const char *k = f->kv[i].key, *v = f->kv[i].value;

		if (strcmp(k, "node") == 0)
			continue;
		printf(",\n  ");
		json_str(k);
		if (strcmp(k, "pid") == 0 || strcmp(k, "failovers") == 0)
			printf(": %ld", strtol(v, NULL, 10));
		else {
			printf(": ");
			json_str(v);
		}
	}
	printf(",\n  \"nodes\": [");
	for (i = 0; i < f->n; i++)
		if (strcmp(f->kv[i].key, "node") == 0) {
			printf("%s\n    ", nodes++ ? "," : "");
			json_node(f->kv[i].value);
		}
	printf("%s]\n}\n", nodes ? "\n  " : "");
}

/*
 * The node the last error names: the first node= target that the error
 * text mentions, as the Meeting Server says "failed to connect to cb2...".
 */
static const char *
failed_node(const struct status_file *f)
{
	static char target[300];
	const char *text = status_get(f, "last-error-text");
	size_t i, n;

	for (i = 0; text && i < f->n; i++) {
		if (strcmp(f->kv[i].key, "node") != 0)
			continue;
		n = strcspn(f->kv[i].value, " ");
		if (n >= sizeof(target))
			continue;
		memcpy(target, f->kv[i].value, n);
		target[n] = '\0';
		if (strstr(text, target) != NULL)
			return target;
		/* Without the port: "no DNS A or AAAA records for cb2.tptac9.com" */
		if (strrchr(target, ':'))
			*strrchr(target, ':') = '\0';
		if (strstr(text, target) != NULL)
			return target;
	}
	return NULL;
}

/* "connected", "not connected", "stale" (agent dead or silent). */
static const char *
verdict(const struct status_file *f, unsigned keepalive, time_t now)
{
	const char *state = status_get(f, "state"), *pid = status_get(f, "pid");
	const char *updated = status_get(f, "updated");
	time_t t;
	long p;

	if (state == NULL || updated == NULL || status_parse_time(updated, &t) == -1)
		return "stale";
	if (strcmp(state, "stopped") == 0)
		return "not connected";
	p = pid ? strtol(pid, NULL, 10) : 0;
	if (p <= 0 || (kill((pid_t)p, 0) == -1 && errno == ESRCH))
		return "stale";
	/* Written at least every keepalive seconds: allow two missed beats. */
	if (now - t > (time_t)(2 * keepalive + 5))
		return "stale";
	return strcmp(state, "connected") == 0 ? "connected" : "not connected";
}

/* The TLS session the agent reports while connected over TLS (tls = direct). */
static void
print_tls(const struct status_file *f, time_t now)
{
	const char *version = status_get(f, "tls"), *cipher = status_get(f, "tls-cipher");
	const char *peer = status_get(f, "tls-peer"), *issuer = status_get(f, "tls-issuer");
	const char *expires = status_get(f, "tls-expires");
	char words[64] = "";
	time_t t;

	if (version == NULL)
		return;
	printf("TLS:             %s%s%s\n", version, cipher && *cipher ? ", cipher " : "",
	    cipher && *cipher ? cipher : "");
	if (expires && status_parse_time(expires, &t) == 0)
		probe_expiry_words(t, now, words, sizeof(words));
	printf("Certificate:     %s, issued by %s, valid until %s%s%s%s\n",
	    peer && *peer ? peer : "?", issuer && *issuer ? issuer : "?", expires ? expires : "?",
	    words[0] ? " (" : "", words, words[0] ? ")" : "");
}

/* The relay, when the agent runs one (relay-listen). */
static void
print_relay(const struct status_file *f)
{
	const char *relay = status_get(f, "relay"), *queued = status_get(f, "relay-queued");
	const char *bounced = status_get(f, "relay-bounced"), *dropped;

	if (relay != NULL && strcmp(relay, "off") != 0)
		printf("Relay:           %s, %s stanza%s queued, %s bounced\n",
		    strcmp(relay, "connected") == 0 ? "local component connected"
		                                    : "listening, no local component",
		    queued ? queued : "0", queued && strcmp(queued, "1") == 0 ? "" : "s",
		    bounced ? bounced : "0");
	if ((dropped = status_get(f, "events-dropped")) != NULL && strcmp(dropped, "0") != 0)
		printf("Events:          %s dropped (the receiver was down too long)\n", dropped);
}

static void
print_human(const struct status_file *f, const char *v, time_t now)
{
	const char *state = status_get(f, "state"), *server = status_get(f, "server");
	const char *err = status_get(f, "last-error"), *text = status_get(f, "last-error-text");
	const char *at = status_get(f, "last-error-at"), *since = status_get(f, "since");
	char when[64] = "", up[64] = "", section[16];
	size_t i, nodes = 0;
	time_t t;

	if (at && status_parse_time(at, &t) == 0)
		ago(now - t, when, sizeof(when));
	if (since && status_parse_time(since, &t) == 0)
		ago(now - t, up, sizeof(up));
	if (strcmp(v, "stale") == 0)
		printf("XMPP connection: unknown: the agent (pid %s) is not running or has not "
		       "written its status since %s\n",
		    status_get(f, "pid") ? status_get(f, "pid") : "?",
		    status_get(f, "updated") ? status_get(f, "updated") : "?");
	else if (strcmp(v, "connected") == 0)
		printf("XMPP connection: connected to %s (%s) for %s\n", server ? server : "?",
		    status_get(f, "address") ? status_get(f, "address") : "?", up);
	else if (state && strcmp(state, "stopped") == 0)
		printf("XMPP connection: stopped (%s ago)\n", up);
	else if (err)
		printf("XMPP connection: %s; failed to connect%s%s due to %s (%s ago)\n", state,
		    failed_node(f) ? " to " : "", failed_node(f) ? failed_node(f) : "",
		    error_words(err), when);
	else
		printf("XMPP connection: %s (for %s)\n", state ? state : "?", up);
	printf("Component:       %s (domain %s)\n",
	    status_get(f, "component") ? status_get(f, "component") : "?",
	    status_get(f, "domain") ? status_get(f, "domain") : "?");
	printf("State:           %s since %s\n", state ? state : "?", since ? since : "?");
	print_tls(f, now);
	print_relay(f);
	printf(
	    "Failovers:       %s\n", status_get(f, "failovers") ? status_get(f, "failovers") : "0");
	if (err) {
		printf("Last error:      %s (%s ago)\n", text ? text : err, when);
		status_section(err, section, sizeof(section));
		printf("                 See xcomp-troubleshooting(7), section %s.\n", section);
	}
	for (i = 0; i < f->n; i++)
		if (strcmp(f->kv[i].key, "node") == 0)
			printf("%s  %s\n", nodes++ ? "" : "Nodes, in the order tried:\n",
			    f->kv[i].value);
}

static int
cmd_status(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	const char *path = NULL, *cpath = NULL, *v;
	struct status_file f;
	struct conf *c = conf_new();
	unsigned keepalive = c->keepalive;
	char err[512], *text;
	size_t len;
	int ch, json = 0;
	time_t now = time(NULL);

	while ((ch = getopt_long(argc, argv, "f:hs:", longopts, NULL)) != -1) {
		switch (ch) {
		case 'f':
			cpath = optarg;
			break;
		case 'j':
			json = 1;
			break;
		case 's':
			path = optarg;
			break;
		case 'h':
			usage(0);
		default:
			usage(2);
		}
	}
	if (optind != argc)
		usage(2);
	if (cpath && conf_load(c, cpath, err, sizeof(err)) == -1) {
		fprintf(stderr, "xcomp: %s\n", err);
		conf_free(c);
		return 2;
	}
	keepalive = c->keepalive;
	if (path == NULL)
		path = c->status_file;
	if ((text = read_text(path, &len)) == NULL) {
		fprintf(stderr,
		    "xcomp: cannot read the status file %s: %s\n"
		    "Is xcompd running? (see xcompd(8); -s names another status file)\n",
		    path, strerror(errno));
		conf_free(c);
		return EXIT_NO_STATUS;
	}
	if (status_parse(text, len, &f) == -1) {
		fprintf(stderr, "xcomp: %s is not a status file (a line is not key=value)\n", path);
		free(text);
		conf_free(c);
		return EXIT_NO_STATUS;
	}
	free(text);
	conf_free(c);
	v = verdict(&f, keepalive, now);
	if (json)
		print_json(&f, v);
	else
		print_human(&f, v, now);
	status_file_free(&f);
	if (strcmp(v, "stale") == 0)
		return EXIT_NO_STATUS;
	return strcmp(v, "connected") == 0 ? 0 : EXIT_NOT_CONNECTED;
}

struct resolve {
	struct loop *loop;
	struct dns *dns;
	struct srv_rr *rrs;
	size_t n;
	uint32_t ttl;
	char **addrs; /* per record: "127.0.0.1 ::1" or a reason */
	uint32_t *addr_ttl;
	size_t pending;
	int status;
};

struct addr_req {
	struct resolve *r;
	size_t i;
};

static uint32_t
rnd(void *arg, uint32_t bound)
{
	(void)arg;
	return util_random_below(bound);
}

static void
print_resolve(struct resolve *r, unsigned samples)
{
	size_t *order = xcalloc(r->n, sizeof(*order)), i, k, m;
	unsigned *first = xcalloc(r->n, sizeof(*first)), s;

	printf("  %-8s %-6s %-5s %-30s %-6s %s\n", "priority", "weight", "port", "target", "TTL",
	    "addresses");
	for (i = 0; i < r->n; i++)
		printf("  %-8u %-6u %-5u %-30s %-6u %s\n", r->rrs[i].priority, r->rrs[i].weight,
		    r->rrs[i].port, r->rrs[i].target, r->addr_ttl[i], r->addrs[i]);
	m = srv_order(r->rrs, r->n, rnd, NULL, order);
	printf("Order the agent would try now (priority ascending, weighted random within one "
	       "priority):\n");
	for (k = 0; k < m; k++)
		printf("  %zu. %s:%u\n", k + 1, r->rrs[order[k]].target, r->rrs[order[k]].port);
	if (samples > 0 && m > 0) {
		for (s = 0; s < samples; s++) {
			srv_order(r->rrs, r->n, rnd, NULL, order);
			first[order[0]]++;
		}
		printf("First choice over %u orders:\n", samples);
		for (i = 0; i < r->n; i++)
			printf("  %-36s %6u  %5.1f %%\n", r->rrs[i].target, first[i],
			    100.0 * first[i] / samples);
	}
	free(order);
	free(first);
}

static void
on_addr(void *arg, const struct dns_addr_result *res)
{
	struct addr_req *q = arg;
	struct resolve *r = q->r;
	struct buf b;
	size_t i;

	buf_init(&b, 1 << 16);
	if (res->status != DNS_OK)
		buf_addstr(&b, res->why);
	for (i = 0; i < res->n; i++) {
		if (i)
			buf_addstr(&b, " ");
		buf_addstr(&b, res->addrs[i].ip);
	}
	buf_add(&b, "", 1);
	r->addrs[q->i] = b.data;
	r->addr_ttl[q->i] = res->ttl;
	free(q);
	if (--r->pending == 0)
		loop_break(r->loop);
}

static void
on_srv(void *arg, const struct dns_srv_result *res)
{
	struct resolve *r = arg;
	size_t i;

	if (res->status != DNS_OK) {
		printf("%s\n", res->why);
		r->status = 1;
		loop_break(r->loop);
		return;
	}
	printf("%s: %zu SRV record%s, TTL %u s%s%s\n", res->name, res->n, res->n == 1 ? "" : "s",
	    res->ttl, res->secure ? ", DNSSEC validated" : "",
	    res->nbad ? " (malformed records left out)" : "");
	r->rrs = xcalloc(res->n, sizeof(*r->rrs));
	memcpy(r->rrs, res->rrs, res->n * sizeof(*r->rrs));
	r->n = res->n;
	r->addrs = xcalloc(res->n, sizeof(*r->addrs));
	r->addr_ttl = xcalloc(res->n, sizeof(*r->addr_ttl));
	r->pending = res->n;
	for (i = 0; i < res->n; i++) {
		struct addr_req *q = xcalloc(1, sizeof(*q));

		q->r = r;
		q->i = i;
		if (dns_addrs(r->dns, r->rrs[i].target, on_addr, q, NULL) == -1) {
			r->addrs[i] = xstrdup("(lookup failed)");
			free(q);
			r->pending--;
		}
	}
	if (r->pending == 0)
		loop_break(r->loop);
}

static int
cmd_resolve(int argc, char **argv)
{
	static const struct option longopts[] = {{"dns-server", required_argument, NULL, 'd'},
	    {"service", required_argument, NULL, 'S'}, {"samples", required_argument, NULL, 'n'},
	    {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	struct conf *c = conf_new();
	struct resolve r;
	char err[512], *name;
	unsigned samples = 0;
	const char *why;
	size_t i;
	int ch;

	memset(&r, 0, sizeof(r));
	while ((ch = getopt_long(argc, argv, "f:h", longopts, NULL)) != -1) {
		why = NULL;
		switch (ch) {
		case 'f':
			if (conf_load(c, optarg, err, sizeof(err)) == -1)
				why = err;
			break;
		case 'd':
			why = conf_set(c, "dns-server", optarg, err, sizeof(err));
			break;
		case 'S':
			why = conf_set(c, "service", optarg, err, sizeof(err));
			break;
		case 'n':
			if (conf_uint(optarg, 1, 10000000, &samples) == -1)
				why = "--samples: expected a number from 1 to 10000000";
			break;
		case 'h':
			usage(0);
		default:
			usage(2);
		}
		if (why) {
			fprintf(stderr, "xcomp: %s\n", why);
			conf_free(c);
			return 2;
		}
	}
	if (optind < argc && conf_set(c, "domain", argv[optind++], err, sizeof(err)) != NULL) {
		fprintf(stderr, "xcomp: %s\n", err);
		conf_free(c);
		return 2;
	}
	if (optind != argc || c->domain == NULL)
		usage(2);
	r.loop = loop_new();
	if ((r.dns = dns_new(r.loop, c->dns_server, c->trust_anchor, err, sizeof(err))) == NULL) {
		fprintf(stderr, "xcomp: resolver: %s\n", err);
		loop_free(r.loop);
		conf_free(c);
		return 2;
	}
	name = conf_srv_name(c);
	dns_srv(r.dns, name, on_srv, &r, NULL);
	loop_run(r.loop);
	if (r.status == 0)
		print_resolve(&r, samples);
	for (i = 0; i < r.n; i++)
		free(r.addrs[i]);
	free(r.addrs);
	free(r.addr_ttl);
	free(r.rrs);
	free(name);
	dns_free(r.dns);
	loop_free(r.loop);
	conf_free(c);
	return r.status;
}

/*
 * conf_finish, except that a secret file that cannot be read stops each
 * node only before its handshake: the steps before it need no secret, and
 * an operator who may not read the agent's secret still sees them. why then
 * says what is wrong with the file, and conf->secret stays NULL.
 */
static int
probe_conf(struct conf *c, char *why, size_t whylen, char *err, size_t errlen)
{
	char *file = c->secret_file;

	why[0] = '\0';
	/* A secret file it cannot read is the handshake step's failure, not the whole run's. */
	if (conf_check(c, err, errlen) == -1)
		return -1;
	if (file != NULL && !c->secret_inline &&
	    conf_read_secret(file, &c->secret, why, whylen) == -1)
		c->secret = NULL;
	return 0;
}

/* The node where the running agent holds its session, per its status file. */
static void
agent_session(const struct conf *c, char **server, char **address)
{
	struct status_file f;
	const char *s, *a;
	char *text;
	size_t len;

	*server = *address = NULL;
	if ((text = read_text(c->status_file, &len)) == NULL)
		return;
	if (status_parse(text, len, &f) == 0) {
		s = status_get(&f, "server");
		a = status_get(&f, "address");
		if (s && strcmp(verdict(&f, c->keepalive, time(NULL)), "connected") == 0) {
			*server = xstrdup(s);
			*address = a ? xstrdup(a) : NULL;
		}
		status_file_free(&f);
	}
	free(text);
}

static int
valid_host(const char *host)
{
	struct sockaddr_storage ss;
	int len;

	return jid_valid_domain(host) || util_sockaddr(host, 1, &ss, &len) == 0;
}

static int
probe_run(const struct probe_opts *o)
{
	struct loop *loop = loop_new();
	struct probe *p;
	char err[512];
	int r;

	if ((p = probe_new(loop, o, err, sizeof(err))) == NULL) {
		fprintf(stderr, "xcomp: %s\n", err);
		fprintf(stderr, "See xcomp-troubleshooting(7), section CONFIG.\n");
		loop_free(loop);
		return PROBE_CONFIG;
	}
	probe_start(p);
	r = loop_run(loop) == -1 ? PROBE_CONFIG : probe_result(p);
	probe_free(p);
	loop_free(loop);
	return r;
}

static int
cmd_probe(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	const char *cpath = SYSCONFDIR "/xcompd.conf";
	char err[1024], why[512], host[SRV_TARGET_MAX];
	char *server = NULL, *address = NULL;
	struct probe_opts o;
	struct conf *c;
	int ch, given = 0, port, r;

	while ((ch = getopt_long(argc, argv, "f:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'f':
			cpath = optarg;
			given = 1;
			break;
		case 'h':
			usage(0);
		default:
			usage(2);
		}
	}
	if (argc - optind > 1)
		usage(2);
	c = conf_new();
	if (conf_load(c, cpath, err, sizeof(err)) == -1 ||
	    probe_conf(c, why, sizeof(why), err, sizeof(err)) == -1) {
		fprintf(stderr, "xcomp: %s\n", err);
		if (!given && access(cpath, F_OK) == -1)
			fprintf(stderr, "xcomp: that is xcompd's default configuration file; "
			                "name the agent's with -f CONFIG\n");
		fprintf(stderr, "See xcomp-troubleshooting(7), section CONFIG.\n");
		conf_free(c);
		return PROBE_CONFIG;
	}
	memset(&o, 0, sizeof(o));
	if (optind < argc) {
		port = (int)c->port;
		if (util_split_hostport(argv[optind], host, sizeof(host), &port) == -1 ||
		    !valid_host(host)) {
			fprintf(stderr, "xcomp: \"%s\" is not HOST[:PORT]\n", argv[optind]);
			conf_free(c);
			return PROBE_CONFIG;
		}
		o.host = host;
		o.port = port;
	}
	agent_session(c, &server, &address);
	o.conf = c;
	o.secret_why = why;
	o.agent_server = server;
	o.agent_address = address;
	o.out = stdout;
	/* Line by line, so that a probe piped into tee or a log shows each step as it ends. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	r = probe_run(&o);
	free(server);
	free(address);
	conf_free(c);
	return r;
}

int
main(int argc, char **argv)
{
	char name[64];

	log_init("xcomp", 0, LOG_LEVEL_WARNING);
	if (argc >= 2) {
		/* getopt names argv[0] in its messages: "xcomp status: invalid option" */
		snprintf(name, sizeof(name), "xcomp %s", argv[1]);
		argv[1] = name;
	}
	if (argc < 2)
		usage(2);
	if (strcmp(name, "xcomp -h") == 0 || strcmp(name, "xcomp --help") == 0 ||
	    strcmp(name, "xcomp help") == 0)
		usage(0);
	if (strcmp(name, "xcomp status") == 0)
		return cmd_status(argc - 1, argv + 1);
	if (strcmp(name, "xcomp resolve") == 0)
		return cmd_resolve(argc - 1, argv + 1);
	if (strcmp(name, "xcomp probe") == 0)
		return cmd_probe(argc - 1, argv + 1);
	fprintf(stderr, "xcomp: unknown command \"%s\"\n", name + 6);
	usage(2);
}

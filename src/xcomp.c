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
#include "kv.h"
#include "dns.h"
#include "history.h"
#include "jid.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "probe.h"
#include "srv.h"
#include "status.h"
#include "statusview.h"
#include "util.h"

#define EXIT_NOT_CONNECTED 1
#define EXIT_NO_STATUS 3
/* xcomp probe: a node (or the SRV lookup) failed; a configuration error. */
#define EXIT_PROBE_FAILED 1
#define EXIT_PROBE_CONFIG 2
#define STATUS_READ_MAX (1u << 20)

static void __attribute__((noreturn)) usage(int status)
{
	fprintf(status ? stderr : stdout,
	    "usage: xcomp status [-f CONFIG] [-s FILE] [--json | --prometheus]\n"
	    "       xcomp history [-f CONFIG] [-s FILE] [-H HISTORY] [--json]\n"
	    "       xcomp resolve [-f CONFIG] [--dns-server IP[@PORT]] [--service NAME]\n"
	    "                     [--samples N] [DOMAIN]\n"
	    "       xcomp probe [-f CONFIG] [HOST[:PORT]]\n"
	    "                   (CONFIG: default " CONF_DEFAULT_PATH ")\n"
	    "See xcomp(1).\n");
	exit(status);
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
	/* A directory opens, then fails to read (EISDIR): that is no empty status. */
	if (ferror(fp) || *len > STATUS_READ_MAX) {
		int e = ferror(fp) ? errno : EFBIG;

		fclose(fp);
		free(text);
		errno = e;
		return NULL;
	}
	fclose(fp);
	text[*len] = '\0';
	return text;
}

/* No status to show: scripts still get one JSON object, people the reason. */
static void
no_status(const char *path, const char *why, const char *hint, int json)
{
	if (json)
		statusview_json_unknown(stdout, path, why);
	else
		fprintf(stderr, "xcomp: %s\n%s", why, hint);
}

/*
 * The history file for a status file: the configuration's "history" key,
 * else the status file's path with ".history". NULL when history is "none".
 */
static char *
xcomp_history_path(struct conf *c, const char *status_path)
{
	char err[512], *copy;

	/* status_path may be c's own status-file, which conf_set frees first. */
	if (status_path != NULL) {
		copy = xstrdup(status_path);
		conf_set(c, "status-file", copy, err, sizeof(err));
		free(copy);
	}
	return conf_history_path(c);
}

/* "Last 24 hours: ..." from the history file, when there is one to read. */
static void
xcomp_status_history(const char *path, time_t now)
{
	struct history_entry *e;
	size_t len, n;
	char *text;

	if (path == NULL || (text = history_read(path, &len)) == NULL)
		return;
	n = history_parse(text, len, &e);
	history_status_line(stdout, e, n, now);
	free(e);
	free(text);
}

/*
 * The metrics-file's text from the status file, as the agent writes it; a
 * stale file's values are printed all the same (they are the file's), and
 * why they are stale goes to stderr.
 */
static void
print_metrics(const struct status_file *f, const char *verdict, unsigned keepalive, time_t now)
{
	char *text = metrics_format(f), why[256];

	fputs(text, stdout);
	free(text);
	if (strcmp(verdict, "stale") == 0 &&
	    statusview_stale_reason(f, keepalive, now, why, sizeof(why)) != NULL)
		fprintf(stderr, "xcomp: the status is stale: %s\n", why);
}

static int
cmd_status(int argc, char **argv)
{
	static const struct option longopts[] = {{"json", no_argument, NULL, 'j'},
	    {"prometheus", no_argument, NULL, 'p'}, {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	const char *path = NULL, *cpath = NULL, *v;
	struct status_file f;
	struct conf *c = conf_new();
	unsigned keepalive = c->keepalive;
	char err[512], *text, *hpath;
	size_t len;
	int ch, json = 0, prom = 0;
	time_t now = time(NULL);

	while ((ch = getopt_long(argc, argv, "f:hs:", longopts, NULL)) != -1) {
		switch (ch) {
		case 'f':
			cpath = optarg;
			break;
		case 'j':
			json = 1;
			break;
		case 'p':
			prom = 1;
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
	if (optind != argc || (json && prom))
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
		snprintf(
		    err, sizeof(err), "cannot read the status file %s: %s", path, strerror(errno));
		no_status(path, err,
		    "Is xcompd running? (see xcompd(8); -s names another status file)\n", json);
		conf_free(c);
		return EXIT_NO_STATUS;
	}
	if (status_parse(text, len, &f) == -1) {
		snprintf(
		    err, sizeof(err), "%s is not a status file (a line is not key=value)", path);
		no_status(path, err, "", json);
		free(text);
		conf_free(c);
		return EXIT_NO_STATUS;
	}
	free(text);
	hpath = xcomp_history_path(c, path);
	conf_free(c);
	v = statusview_verdict(&f, keepalive, now);
	if (json)
		statusview_json(
		    stdout, &f, v, statusview_stale_reason(&f, keepalive, now, err, sizeof(err)));
	else if (prom)
		print_metrics(&f, v, keepalive, now);
	else {
		statusview_human(stdout, &f, v, now);
		xcomp_status_history(hpath, now);
	}
	free(hpath);
	status_file_free(&f);
	if (strcmp(v, "stale") == 0)
		return EXIT_NO_STATUS;
	return strcmp(v, "connected") == 0 ? 0 : EXIT_NOT_CONNECTED;
}

static int
cmd_history(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	const char *spath = NULL, *cpath = NULL, *given = NULL;
	struct conf *c = conf_new();
	struct history_entry *e;
	char err[512], *text, *path;
	size_t len, n;
	int ch, json = 0;

	while ((ch = getopt_long(argc, argv, "f:hH:s:", longopts, NULL)) != -1) {
		switch (ch) {
		case 'f':
			cpath = optarg;
			break;
		case 'H':
			given = optarg;
			break;
		case 'j':
			json = 1;
			break;
		case 's':
			spath = optarg;
			break;
		case 'h':
			conf_free(c);
			usage(0);
		default:
			conf_free(c);
			usage(2);
		}
	}
	if (optind != argc) {
		conf_free(c);
		usage(2);
	}
	if (cpath && conf_load(c, cpath, err, sizeof(err)) == -1) {
		fprintf(stderr, "xcomp: %s\n", err);
		conf_free(c);
		return 2;
	}
	path = given ? xstrdup(given) : xcomp_history_path(c, spath);
	conf_free(c);
	if (path == NULL) {
		fprintf(
		    stderr, "xcomp: the configuration turns the history off (history = none)\n");
		return EXIT_NO_STATUS;
	}
	if ((text = history_read(path, &len)) == NULL) {
		fprintf(stderr,
		    "xcomp: cannot read the history file %s: %s\n"
		    "Is xcompd running? (see xcompd.conf(5), history; -H names another file)\n",
		    path, strerror(errno));
		free(path);
		return EXIT_NO_STATUS;
	}
	n = history_parse(text, len, &e);
	if (json)
		history_json(stdout, path, e, n, time(NULL));
	else {
		history_human(stdout, e, n);
		history_status_line(stdout, e, n, time(NULL));
	}
	free(e);
	free(text);
	free(path);
	return 0;
}

struct resolve {
	struct loop *loop;
	struct dns *dns;
	struct srv_rr *rrs;
	size_t n;
	uint32_t ttl;
	char **addrs;       /* per record: "127.0.0.1 ::1" or a reason */
	uint32_t *addr_ttl; /* TTL_NONE: an address, or no answer */
	size_t pending;
	size_t bogus; /* targets whose addresses failed DNSSEC validation */
	int status;
};

#define TTL_NONE UINT32_MAX

struct addr_req {
	struct resolve *r;
	size_t i;
};

static void
print_resolve(struct resolve *r, unsigned samples)
{
	size_t *order = xcalloc(r->n, sizeof(*order)), i, k, m;
	unsigned *first = xcalloc(r->n, sizeof(*first)), s;
	char ttl[16];

	printf("  %-8s %-6s %-5s %-30s %-6s %s\n", "priority", "weight", "port", "target", "TTL",
	    "addresses");
	for (i = 0; i < r->n; i++) {
		if (r->addr_ttl[i] == TTL_NONE)
			snprintf(ttl, sizeof(ttl), "-");
		else
			snprintf(ttl, sizeof(ttl), "%u", r->addr_ttl[i]);
		printf("  %-8u %-6u %-5u %-30s %-6s %s\n", r->rrs[i].priority, r->rrs[i].weight,
		    r->rrs[i].port, r->rrs[i].target, ttl, r->addrs[i]);
	}
	m = srv_order_max(r->rrs, r->n, SRV_USE_MAX, util_random_fn, NULL, order);
	printf("Order the agent would try now (priority ascending, weighted random within one "
	       "priority):\n");
	for (k = 0; k < m; k++)
		printf("  %zu. %s:%u\n", k + 1, r->rrs[order[k]].target, r->rrs[order[k]].port);
	if (m == SRV_USE_MAX && r->n > m)
		printf("  (the agent tries at most %d nodes: the other %zu records are left out)\n",
		    SRV_USE_MAX, r->n - m);
	if (samples > 0 && m > 0) {
		/* The first choice only: the same draws as a whole order's first. */
		for (s = 0; s < samples; s++) {
			srv_order_max(r->rrs, r->n, 1, util_random_fn, NULL, order);
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
	r->bogus += res->status == DNS_BOGUS;
	for (i = 0; i < res->n; i++) {
		if (i)
			buf_addstr(&b, " ");
		buf_addstr(&b, res->addrs[i].ip);
	}
	buf_add(&b, "", 1);
	r->addrs[q->i] = b.data;
	r->addr_ttl[q->i] = res->status == DNS_OK ? res->ttl : TTL_NONE;
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
		struct addr_req *q;
		struct dns_addr lit;

		/* An address needs no lookup (asked for, it would be NXDOMAIN). */
		if (dns_addr_literal(r->rrs[i].target, &lit) == 0) {
			r->addrs[i] = xasprintf("%s (an address: nothing to look up)", lit.ip);
			r->addr_ttl[i] = TTL_NONE;
			r->pending--;
			continue;
		}
		q = xcalloc(1, sizeof(*q));
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
			if (kv_uint(optarg, 1, 10000000, &samples) == -1)
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
	/* Forged or unsigned records under the trust anchor: the agent rejects them. */
	if (r.status == 0 && r.bogus > 0) {
		printf("DNSSEC validation failed for the addresses of %zu target%s: the agent will "
		       "not connect there\n",
		    r.bogus, r.bogus == 1 ? "" : "s");
		r.status = 1;
	}
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
xcomp_probe_conf(struct conf *c, char *why, size_t whylen, char *err, size_t errlen)
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
xcomp_agent_session(const struct conf *c, char **server, char **address)
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
		if (s &&
		    strcmp(statusview_verdict(&f, c->keepalive, time(NULL)), "connected") == 0) {
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
xcomp_probe_run(const struct probe_opts *o)
{
	struct loop *loop = loop_new();
	struct probe *p;
	char err[512];
	int r;

	if ((p = probe_new(loop, o, err, sizeof(err))) == NULL) {
		fprintf(stderr, "xcomp: %s\n", err);
		fprintf(stderr, "See xcomp-troubleshooting(7), section CONFIG.\n");
		loop_free(loop);
		return EXIT_PROBE_CONFIG;
	}
	probe_start(p);
	if (loop_run(loop) == -1 || probe_config_error(p))
		r = EXIT_PROBE_CONFIG;
	else
		r = probe_result(p) == -1 ? EXIT_PROBE_FAILED : 0;
	probe_free(p);
	loop_free(loop);
	return r;
}

static int
cmd_probe(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	const char *cpath = CONF_DEFAULT_PATH;
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
	    xcomp_probe_conf(c, why, sizeof(why), err, sizeof(err)) == -1) {
		fprintf(stderr, "xcomp: %s\n", err);
		if (!given && access(cpath, F_OK) == -1)
			fprintf(stderr, "xcomp: that is xcompd's default configuration file; "
			                "name the agent's with -f CONFIG\n");
		fprintf(stderr, "See xcomp-troubleshooting(7), section CONFIG.\n");
		conf_free(c);
		return EXIT_PROBE_CONFIG;
	}
	memset(&o, 0, sizeof(o));
	if (optind < argc) {
		/* 0 when not given: the probe takes it from the SRV records or the config. */
		port = 0;
		if (util_split_hostport(argv[optind], host, sizeof(host), &port) == -1 ||
		    !valid_host(host)) {
			fprintf(stderr, "xcomp: \"%s\" is not HOST[:PORT]\n", argv[optind]);
			conf_free(c);
			return EXIT_PROBE_CONFIG;
		}
		o.host = host;
		o.port = port;
	}
	xcomp_agent_session(c, &server, &address);
	o.conf = c;
	o.secret_why = why;
	o.agent_server = server;
	o.agent_address = address;
	o.out = stdout;
	/* Line by line, so that a probe piped into tee or a log shows each step as it ends. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	r = xcomp_probe_run(&o);
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
	if (strcmp(name, "xcomp history") == 0)
		return cmd_history(argc - 1, argv + 1);
	if (strcmp(name, "xcomp resolve") == 0)
		return cmd_resolve(argc - 1, argv + 1);
	if (strcmp(name, "xcomp probe") == 0)
		return cmd_probe(argc - 1, argv + 1);
	fprintf(stderr, "xcomp: unknown command \"%s\"\n", name + 6);
	usage(2);
}

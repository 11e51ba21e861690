/*
 * xcomp-server: a minimal XEP-0114 server for tests and demos, plain or over
 * TLS, configured with commands that mirror the MMP commands of a Cisco
 * Meeting Server.
 */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "control.h"
#include "log.h"
#include "members.h"
#include "serve.h"
#include "state.h"
#include "util.h"

static void __attribute__((noreturn)) usage(int status)
{
	fprintf(status ? stderr : stdout,
	    "usage: xcomp-server [-hv] -d DIR COMMAND [ARGUMENTS]\n"
	    "  -d DIR       the state directory\n"
	    "  -v           with run: log each connection and stream\n"
	    "  -h, --help   this help\n"
	    "\n"
	    "commands (the state lives in DIR):\n"
	    "  domain [DOMAIN]                  the XMPP domain served\n"
	    "  listen [ADDRESS:PORT [tls] | none]\n"
	    "                                   add a listener (port 0: any free port)\n"
	    "  callbridge add NAME              add a call bridge with a new secret\n"
	    "  callbridge add-secret NAME       add or change one, secret from stdin\n"
	    "  callbridge list                  list call bridges and secrets\n"
	    "  callbridge remove NAME           remove one\n"
	    "  conflict-policy [kick-new | kick-old | allow]\n"
	    "  certs [KEY CERT [BUNDLE] | none] the TLS key, certificate and CA bundle\n"
	    "  trust [BUNDLE | none]            require client certificates from these CAs\n"
	    "  handshake-timeout [SECONDS]      time allowed for the handshake\n"
	    "  keepalive [SECONDS]              silence before the server pings a component\n"
	    "  keepalive-timeout [SECONDS]      time for a reply before the session is dropped\n"
	    "  max-stanza [BYTES]               largest stanza accepted\n"
	    "  run                              serve until SIGTERM\n"
	    "  status                           connected components of a running server\n"
	    "  reset                            forget the whole state (server stopped)\n"
	    "\n"
	    "cluster settings (a running server takes them at once):\n"
	    "  cluster                          all the cluster settings\n"
	    "  cluster listen [IP:PORT]         where this node takes links from its peers\n"
	    "  cluster trust [BUNDLE | none]    the CAs of the peers' certificates\n"
	    "  cluster enable | disable         (enable needs certs, cluster trust, cluster "
	    "listen)\n"
	    "  cluster keepalive [MS]           heartbeat interval (default 200)\n"
	    "  cluster election-timeout [MS]    silence before an election (default 1000)\n"
	    "cluster commands (on the running server):\n"
	    "  cluster initialize               a one-node cluster at this node\n"
	    "  cluster join HOST:PORT           join the cluster of the node listening there\n"
	    "  cluster remove PEER              take a member out, by IP:PORT or id\n"
	    "  cluster status                   leader, members and their components\n"
	    "\n"
	    "See xcomp-server(8).\n");
	exit(status);
}

static int
run(const char *dir, int verbose)
{
	struct state st;
	struct server *srv;
	char err[1024];
	int r = 1;

	log_init("xcomp-server", 0, verbose ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
	/*
	 * Write queues grow and empty with every burst (buf_shrink frees them):
	 * without this, glibc gives the heap's top back to the kernel and takes
	 * it again each time, and the page-table flushes of brk cost a cluster
	 * node a tenth of its time under load (perf, bench/cluster.py c).
	 */
	mallopt(M_TRIM_THRESHOLD, 16 << 20);
	mallopt(M_MMAP_THRESHOLD, 4 << 20);
	if (state_load(dir, &st, err, sizeof(err)) == -1) {
		fprintf(stderr, "xcomp-server: %s\n", err);
		state_free(&st);
		return 1;
	}
	/* Exit status 1 for a state that cannot be served, 2 when serving fails. */
	if ((srv = serve_new(&st)) != NULL) {
		r = serve_run(srv) == -1 ? 2 : 0;
		serve_free(srv);
	}
	state_free(&st);
	return r;
}

/*
 * One request to the running server; its status is ours, and 3 when it
 * does not run.
 */
static int
server_request(const char *dir, const char *line)
{
	char err[1024];
	int status;

	if (control_request(dir, line, stdout, stderr, &status, err, sizeof(err)) == -1) {
		fprintf(
		    stderr, "xcomp-server: %s: start it with xcomp-server -d %s run\n", err, dir);
		return 3;
	}
	return status;
}

/* cluster initialize | join HOST:PORT | remove PEER | status, as one request line. */
static int
server_cluster_request(const char *dir, int argc, char **argv)
{
	static const struct {
		const char *name, *usage;
		int argc;
	} cmds[] = {{"initialize", "cluster initialize", 2}, {"join", "cluster join HOST:PORT", 3},
	    {"remove", "cluster remove PEER", 3}, {"status", "cluster status", 2}};
	struct buf line;
	size_t i;
	int j, r;

	for (i = 0; strcmp(argv[1], cmds[i].name) != 0; i++)
		;
	/* One line, words separated by spaces: nothing else fits the protocol. */
	for (j = 2; j < argc && argc == cmds[i].argc; j++)
		if (argv[j][0] == '\0' || strpbrk(argv[j], " \t\r\n") != NULL)
			break;
	if (argc != cmds[i].argc || j < argc) {
		fprintf(stderr, "xcomp-server: usage: %s\n", cmds[i].usage);
		return 1;
	}
	buf_init(&line, 1024);
	buf_addstr(&line, "cluster");
	for (j = 1; j < argc; j++) {
		buf_addstr(&line, " ");
		buf_addstr(&line, argv[j]);
	}
	buf_add(&line, "", 1);
	r = server_request(dir, line.data);
	free(line.data);
	return r;
}

static int
server_cluster(const char *dir, int argc, char **argv)
{
	static const char *const control[] = {"initialize", "join", "remove", "status"};
	char err[1024];
	size_t i;
	int status;

	for (i = 0; argc >= 2 && i < nitems(control); i++)
		if (strcmp(argv[1], control[i]) == 0)
			return server_cluster_request(dir, argc, argv);
	if (state_command(dir, argc, argv, stdin, stdout, err, sizeof(err)) == -1) {
		fprintf(stderr, "xcomp-server: %s\n", err);
		return 1;
	}
	/* A setting changed: a running server takes it now, and says how. */
	if (argc < 3 && (argc < 2 || (strcmp(argv[1], "enable") && strcmp(argv[1], "disable"))))
		return 0;
	fflush(stdout);
	if (control_request(dir, "cluster reload", stdout, stderr, &status, err, sizeof(err)) == -1)
		return 0; /* not running: the next run reads it */
	return status;
}

/*
 * reset, as the seed's "xmpp reset": the whole state goes, with the server
 * stopped. A member that goes without leaving stays in the others' list and
 * counts against their majority until one of them removes it; say so.
 */
static void
server_reset_warn(const char *dir)
{
	struct members ms;
	struct member *self;
	char err[1024], addr[MEMBERS_ADDR_MAX + 16];
	size_t others;

	if (members_load(dir, &ms, err, sizeof(err)) == -1) {
		fprintf(stderr, "xcomp-server: warning: %s (removed all the same)\n", err);
		return;
	}
	self = members_by_id(&ms, ms.self);
	others = ms.n - (self != NULL);
	if (ms.self == 0 || others == 0)
		return;
	if (self != NULL)
		snprintf(addr, sizeof(addr), "%s", self->addr);
	else
		snprintf(addr, sizeof(addr), "%08" PRIx32, ms.self);
	fprintf(stderr,
	    "xcomp-server: warning: this node (%s, id %08" PRIx32 ") is a member of a cluster with "
	    "%zu other member%s; reset does not take it out, and the others count it against "
	    "their majority until it is removed: on another member, run\n",
	    addr, ms.self, others, others == 1 ? "" : "s");
	printf("xcomp-server -d <other node's DIR> cluster remove %s\n", addr);
	fflush(stdout);
}

static int
server_reset(const char *dir)
{
	static const char *const files[] = {"xcomp-server.conf", "callbridges", "cluster",
	    "listening", "xcomp-server.conf.tmp", "callbridges.tmp", "cluster.tmp"};
	char path[4096];
	size_t i;
	int r = 0;

	if (control_running(dir)) {
		fprintf(stderr,
		    "xcomp-server: the server for %s is running: stop it first, then reset\n", dir);
		return 1;
	}
	server_reset_warn(dir);
	for (i = 0; i < nitems(files); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		if (unlink(path) == -1 && errno != ENOENT) {
			fprintf(stderr, "xcomp-server: %s: %s\n", path, strerror(errno));
			r = 1;
		}
	}
	return r;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	const char *dir = NULL;
	char err[1024];
	int ch, verbose = 0;

	while ((ch = getopt_long(argc, argv, "+d:hv", longopts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			dir = optarg;
			break;
		case 'h':
			usage(0);
		case 'v':
			verbose = 1;
			break;
		default:
			usage(1);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc > 0 && strcmp(argv[0], "help") == 0)
		usage(0);
	if (dir == NULL || argc == 0)
		usage(1);
	if (strcmp(argv[0], "run") == 0) {
		if (argc != 1)
			usage(1);
		return run(dir, verbose);
	}
	if (strcmp(argv[0], "reset") == 0) {
		if (argc != 1)
			usage(1);
		return server_reset(dir);
	}
	if (strcmp(argv[0], "cluster") == 0)
		return server_cluster(dir, argc, argv);
	if (strcmp(argv[0], "status") == 0) {
		int st;

		if (argc != 1)
			usage(1);
		if (control_request(dir, "status", stdout, stderr, &st, err, sizeof(err)) == -1) {
			fprintf(stderr, "xcomp-server: %s\n", err);
			return 1;
		}
		return st;
	}
	if (state_command(dir, argc, argv, stdin, stdout, err, sizeof(err)) == -1) {
		fprintf(stderr, "xcomp-server: %s\n", err);
		return 1;
	}
	return 0;
}

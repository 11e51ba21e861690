/*
 * xcomp-server: a minimal XEP-0114 server for tests and demos, plain or over
 * TLS, configured with commands that mirror the MMP commands of a Cisco
 * Meeting Server.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "serve.h"
#include "state.h"

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
	if (strcmp(argv[0], "status") == 0) {
		if (serve_status(dir, stdout, err, sizeof(err)) == -1) {
			fprintf(stderr, "xcomp-server: %s\n", err);
			return 1;
		}
		return 0;
	}
	if (state_command(dir, argc, argv, stdin, stdout, err, sizeof(err)) == -1) {
		fprintf(stderr, "xcomp-server: %s\n", err);
		return 1;
	}
	return 0;
}

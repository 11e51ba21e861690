/*
 * xcompd: the agent beside a call bridge. Options, configuration, signals
 * and wiring; the work is in agent.c.
 */
#include "config.h"

#include <sys/prctl.h>
#include <sys/stat.h>

#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "conf.h"
#include "log.h"
#include "loop.h"
#include "status.h"
#include "util.h"

struct opts {
	const char *path;
	char **overrides;
	int noverrides;
};

static void __attribute__((noreturn)) usage(int status)
{
	fprintf(status ? stderr : stdout,
	    "usage: xcompd [-htV] [-f CONFIG] [-o KEY=VALUE]...\n"
	    "  -f CONFIG     configuration file (default %s/xcompd.conf)\n"
	    "  -o KEY=VALUE  override one configuration key (repeatable)\n"
	    "  -t            check the configuration and exit\n"
	    "  -V, --version print the version and exit\n"
	    "  -h, --help    this help\n"
	    "See xcompd(8) and xcompd.conf(5).\n",
	    SYSCONFDIR);
	exit(status);
}

/* The configuration from the file and the overrides; NULL with err set. */
static struct conf *
read_conf(const struct opts *o, char *err, size_t errlen)
{
	struct conf *c = conf_new();
	int i;

	if (conf_load(c, o->path, err, errlen) == -1)
		goto fail;
	for (i = 0; i < o->noverrides; i++)
		if (conf_override(c, o->overrides[i], err, errlen) == -1)
			goto fail;
	if (conf_finish(c, err, errlen) == -1)
		goto fail;
	return c;
fail:
	conf_free(c);
	return NULL;
}

/*
 * The status file's directory must exist, or be creatable (one level, like
 * /run/xcomp), and be writable. The agent creates it; -t only checks. Both
 * say the same words when it cannot be.
 */
static int
check_status_dir(const char *path, int create, char *err, size_t errlen)
{
	char *copy = xstrdup(path), *dir = dirname(copy), *pcopy = xstrdup(dir);
	struct stat sb;
	int r = -1;

	if (stat(dir, &sb) == 0) {
		if (!S_ISDIR(sb.st_mode))
			snprintf(err, errlen, "status-file %s: %s is not a directory", path, dir);
		else if (access(dir, W_OK) == -1)
			snprintf(err, errlen, "status-file %s: cannot write in %s: %s", path, dir,
			    strerror(errno));
		else
			r = 0;
	} else if (errno != ENOENT) {
		snprintf(
		    err, errlen, "status-file %s: directory %s: %s", path, dir, strerror(errno));
	} else if ((create ? mkdir(dir, 0755) : access(dirname(pcopy), W_OK)) == 0) {
		r = 0; /* created, or the agent will be able to */
	} else if (errno == ENOENT) {
		/* Its parent is missing too: one level is all the agent makes. */
		snprintf(err, errlen,
		    "status-file %s: directory %s does not exist; create it (mkdir -p %s) or set "
		    "status-file",
		    path, dir, dir);
	} else {
		snprintf(err, errlen,
		    "status-file %s: directory %s does not exist and cannot be created (%s); "
		    "create it (mkdir -p %s) or set status-file",
		    path, dir, strerror(errno), dir);
	}
	free(pcopy);
	free(copy);
	return r;
}

struct ctx {
	struct opts *opts;
	struct agent *agent;
	char *status_file; /* the one locked */
	int lock;          /* status_lock's descriptor */
};

/* Move the lock to a status file that a reload names; the old one stays until then. */
static int
relock(struct ctx *x, const char *path, char *err, size_t errlen)
{
	int fd;

	if (strcmp(path, x->status_file) == 0)
		return 0;
	if (check_status_dir(path, 1, err, errlen) == -1 ||
	    (fd = status_lock(path, err, errlen)) == -1)
		return -1;
	close(x->lock);
	x->lock = fd;
	free(x->status_file);
	x->status_file = xstrdup(path);
	return 0;
}

static void
on_stop(int signo, void *arg)
{
	struct ctx *x = arg;

	log_info("%s: stopping", strsignal(signo));
	agent_stop(x->agent);
}

static void
on_hup(int signo, void *arg)
{
	struct ctx *x = arg;
	struct conf *c;
	char err[1024];

	(void)signo;
	if ((c = read_conf(x->opts, err, sizeof(err))) == NULL) {
		agent_config_error(x->agent, err);
		return;
	}
	if (relock(x, c->status_file, err, sizeof(err)) == -1) {
		agent_config_error(x->agent, err);
		conf_free(c);
		return;
	}
	if (conf_warning(c, err, sizeof(err)) != NULL)
		log_warnx("%s", err);
	agent_reload(x->agent, c);
}

/* Check or run with the options read; the exit status. */
static int
run(struct opts *o, int check)
{
	struct ctx x = {o, NULL, NULL, -1};
	struct loop *loop;
	struct conf *c;
	char err[1024];
	int r;

	if ((c = read_conf(o, err, sizeof(err))) == NULL) {
		fprintf(stderr, "xcompd: %s\n", err);
		return 1;
	}
	if (check && check_status_dir(c->status_file, 0, err, sizeof(err)) == -1) {
		fprintf(stderr, "xcompd: %s\n", err);
		conf_free(c);
		return 1;
	}
	if (check && conf_warning(c, err, sizeof(err)) != NULL)
		fprintf(stderr, "xcompd: warning: %s\n", err);
	if (check) {
		printf("xcompd: configuration %s OK (component %s, %s)\n", o->path, c->component,
		    c->nservers ? "fixed servers" : "SRV records");
		conf_free(c);
		return 0;
	}
	/* Two agents writing one status file would each hide the other. */
	if (check_status_dir(c->status_file, 1, err, sizeof(err)) == -1 ||
	    (x.lock = status_lock(c->status_file, err, sizeof(err))) == -1) {
		fprintf(stderr, "xcompd: %s\n", err);
		conf_free(c);
		return 1;
	}
	x.status_file = xstrdup(c->status_file);
	/* The secret is in memory: keep it out of core dumps. */
	prctl(PR_SET_DUMPABLE, 0);
	log_init("xcompd", c->log_syslog, c->log_level);
	if (conf_warning(c, err, sizeof(err)) != NULL)
		log_warnx("%s", err);
	signal(SIGPIPE, SIG_IGN);
	loop = loop_new();
	if ((x.agent = agent_new(loop, c, err, sizeof(err))) == NULL) {
		log_error("cannot start: %s", err);
		conf_free(c);
		loop_free(loop);
		free(x.status_file);
		close(x.lock);
		return 2;
	}
	loop_signal(loop, SIGTERM, on_stop, &x);
	loop_signal(loop, SIGINT, on_stop, &x);
	loop_signal(loop, SIGHUP, on_hup, &x);
	agent_start(x.agent);
	r = loop_run(loop) == -1 ? 2 : 0;
	agent_free(x.agent);
	loop_free(loop);
	free(x.status_file);
	close(x.lock);
	return r;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {{"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'}, {NULL, 0, NULL, 0}};
	struct opts o = {SYSCONFDIR "/xcompd.conf", NULL, 0};
	int ch, check = 0, r;

	/* argv outlives everything here: the overrides point into it. */
	o.overrides = xcalloc(argc, sizeof(char *));
	while ((ch = getopt_long(argc, argv, "f:ho:tV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'f':
			o.path = optarg;
			break;
		case 'o':
			o.overrides[o.noverrides++] = optarg;
			break;
		case 't':
			check = 1;
			break;
		case 'V':
			printf("xcompd %s\n", PACKAGE_VERSION);
			free(o.overrides);
			return 0;
		default:
			free(o.overrides);
			usage(ch == 'h' ? 0 : 1);
		}
	}
	if (optind != argc) {
		free(o.overrides);
		usage(1);
	}
	r = run(&o, check);
	free(o.overrides);
	return r;
}

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
#include "notify.h"
#include "privdrop.h"
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
	    "  -f CONFIG     configuration file (default %s)\n"
	    "  -o KEY=VALUE  override one configuration key (repeatable)\n"
	    "  -t            check the configuration and exit\n"
	    "  -V, --version print the version and exit\n"
	    "  -h, --help    this help\n"
	    "See xcompd(8) and xcompd.conf(5).\n",
	    CONF_DEFAULT_PATH);
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
check_status_dir(const char *path, int create, int *made, char *err, size_t errlen)
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
		if (made != NULL)
			*made = create;
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
	struct loop *loop;
	struct timer t_ready;    /* READY=1 from inside the loop */
	struct timer t_watchdog; /* WATCHDOG=1 while the loop turns */
	uint64_t watchdog_ms;
	char *user; /* the "user" of the start, or NULL */
};

/* Move the lock to a status file that a reload names; the old one stays until then. */
static int
relock(struct ctx *x, const char *path, char *err, size_t errlen)
{
	int fd;

	if (strcmp(path, x->status_file) == 0)
		return 0;
	if (check_status_dir(path, 1, NULL, err, errlen) == -1 ||
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
	notify_stopping();
	timer_cancel(loop_timers(x->loop), &x->t_watchdog);
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
	/* Root is gone by now: the user of the start stays. */
	if ((c->user == NULL) != (x->user == NULL) ||
	    (c->user != NULL && strcmp(c->user, x->user) != 0))
		log_warnx("user: the change to %s takes effect at the next start",
		    c->user ? c->user : "none");
	agent_reload(x->agent, c);
}

/* Half of WatchdogSec=, as sd_watchdog_enabled(3) advises: a late pass is not a hung loop. */
static void
watchdog_tick(void *arg)
{
	struct ctx *x = arg;

	notify_watchdog();
	timer_add(loop_timers(x->loop), &x->t_watchdog, x->watchdog_ms);
}

static void
ready(void *arg)
{
	struct ctx *x = arg;
	uint64_t usec = notify_watchdog_usec();

	notify_ready();
	if (usec > 0) {
		x->watchdog_ms = usec / 2000 ? usec / 2000 : 1;
		log_debug("watchdog: every %llu ms", (unsigned long long)x->watchdog_ms);
		watchdog_tick(x);
	}
}

/*
 * With "user" set: refuse early when that user does not exist, or when a
 * user other than root was asked to become someone else. 0 when the start
 * can go on; *uid and *gid are the user's.
 */
static int
check_user(const struct conf *c, uid_t *uid, gid_t *gid, char *err, size_t errlen)
{
	if (privdrop_lookup(c->user, uid, gid, err, errlen) == -1)
		return -1;
	if (geteuid() != 0 && geteuid() != *uid) {
		snprintf(err, errlen,
		    "%s: user %s: xcompd runs as uid %ld, not root, and cannot become %s; "
		    "start it as root, or remove the user key",
		    c->path ? c->path : "configuration", c->user, (long)geteuid(), c->user);
		return -1;
	}
	return 0;
}

/* Check or run with the options read; the exit status. */
static int
run(struct opts *o, int check)
{
	struct ctx x = {o, NULL, NULL, -1, NULL, {0}, {0}, 0, NULL};
	struct loop *loop;
	struct conf *c;
	char err[1024];
	int r, made = 0;
	uid_t uid = 0;
	gid_t gid = 0;

	if ((c = read_conf(o, err, sizeof(err))) == NULL) {
		fprintf(stderr, "xcompd: %s\n", err);
		return 1;
	}
	if ((check && check_status_dir(c->status_file, 0, NULL, err, sizeof(err)) == -1) ||
	    /* -t may be run by anyone: whether the user exists is its question. */
	    (c->user != NULL && (check ? privdrop_lookup(c->user, &uid, &gid, err, sizeof(err))
	                               : check_user(c, &uid, &gid, err, sizeof(err))) == -1)) {
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
	if (check_status_dir(c->status_file, 1, &made, err, sizeof(err)) == -1 ||
	    (x.lock = status_lock(c->status_file, err, sizeof(err))) == -1) {
		fprintf(stderr, "xcompd: %s\n", err);
		conf_free(c);
		return 1;
	}
	/* A status directory made here for the user is the user's to write in. */
	if (made && c->user != NULL && geteuid() == 0) {
		char *copy = xstrdup(c->status_file);

		if (chown(dirname(copy), uid, gid) == -1)
			log_warn("status-file %s: chown of its directory", c->status_file);
		free(copy);
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
	/* Root was for the files above, the status lock and the agent's listeners. */
	if (c->user != NULL && privdrop(c->user, err, sizeof(err)) == -1) {
		log_error("cannot start: %s", err);
		r = 2;
		goto out;
	}
	if (c->user != NULL && check_status_dir(c->status_file, 0, NULL, err, sizeof(err)) == -1) {
		log_error("cannot start as user %s: %s", c->user, err);
		r = 1;
		goto out;
	}
	x.loop = loop;
	x.user = c->user ? xstrdup(c->user) : NULL;
	timer_init(&x.t_ready, ready, &x);
	timer_init(&x.t_watchdog, watchdog_tick, &x);
	loop_signal(loop, SIGTERM, on_stop, &x);
	loop_signal(loop, SIGINT, on_stop, &x);
	loop_signal(loop, SIGHUP, on_hup, &x);
	agent_start(x.agent);
	timer_add(loop_timers(loop), &x.t_ready, 0);
	r = loop_run(loop) == -1 ? 2 : 0;
	timer_cancel(loop_timers(loop), &x.t_watchdog);
out:
	agent_free(x.agent);
	loop_free(loop);
	free(x.status_file);
	free(x.user);
	close(x.lock);
	return r;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {{"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'}, {NULL, 0, NULL, 0}};
	struct opts o = {CONF_DEFAULT_PATH, NULL, 0};
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

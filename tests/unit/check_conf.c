/* Unit tests for conf.c: the "key = value" reader and its error messages. */
#include <sys/stat.h>

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "kv.h"
#include "unit.h"

struct seen {
	char text[1024];
	int n;
};

static const char *
collect(void *arg, const char *key, const char *value, char *err, size_t errlen)
{
	struct seen *s = arg;

	if (strcmp(key, "bad") == 0) {
		snprintf(err, errlen, "bad: \"%s\" is not allowed", value);
		return err;
	}
	if (strcmp(key, "static") == 0)
		return "static message";
	snprintf(
	    s->text + strlen(s->text), sizeof(s->text) - strlen(s->text), "[%s=%s]", key, value);
	s->n++;
	return NULL;
}

static int
parse(const char *text, struct seen *s, char *err)
{
	memset(s, 0, sizeof(*s));
	err[0] = '\0';
	return kv_parse_string("test.conf", text, collect, s, err, 512);
}

START_TEST(test_pairs)
{
	struct seen s;
	char err[512];

	ck_assert_int_eq(parse("# comment\n\n  name = cb1  \nkeepalive=30\r\n"
	                       "domain = tptac9.com # trailing comment\nsecret = a#b\n",
	                     &s, err),
	    0);
	ck_assert_str_eq(s.text, "[name=cb1][keepalive=30][domain=tptac9.com][secret=a#b]");
	ck_assert_int_eq(s.n, 4);
}
END_TEST

START_TEST(test_value_with_spaces_and_equals)
{
	struct seen s;
	char err[512];

	ck_assert_int_eq(parse("server = a.test:5223 b.test = c\n", &s, err), 0);
	ck_assert_str_eq(s.text, "[server=a.test:5223 b.test = c]");
}
END_TEST

START_TEST(test_no_final_newline)
{
	struct seen s;
	char err[512];

	ck_assert_int_eq(parse("a = 1\nb = 2", &s, err), 0);
	ck_assert_str_eq(s.text, "[a=1][b=2]");
}
END_TEST

static void
expect_error(const char *text, const char *message)
{
	struct seen s;
	char err[512];

	ck_assert_int_eq(parse(text, &s, err), -1);
	ck_assert_str_eq(err, message);
}

START_TEST(test_errors)
{
	expect_error("a = 1\njust words\n", "test.conf:2: expected \"key = value\", found "
	                                    "\"just words\"");
	expect_error("= 1\n", "test.conf:1: bad key \"\"");
	expect_error("my key = 1\n", "test.conf:1: bad key \"my key\"");
	expect_error("\n\nname =   \n", "test.conf:3: name: missing value");
	expect_error("a = 1\nbad = x\n", "test.conf:2: bad: \"x\" is not allowed");
	expect_error("static = x\n", "test.conf:1: static message");
	expect_error("a = b\001c\n", "test.conf:1: control character (0x01) in line");
}
END_TEST

/* "a = xxx...", n bytes long, after a first line "b = 1". */
static char *
long_line(size_t n)
{
	char *text = malloc(n + 8);

	ck_assert_ptr_nonnull(text);
	memcpy(text, "b = 1\na = ", 10);
	memset(text + 10, 'x', n - 4);
	strcpy(text + 6 + n, "\n");
	return text;
}

START_TEST(test_long_line)
{
	struct seen s;
	char err[512], *text;

	/* The limit itself passes; one byte more names the file and line. */
	text = long_line(KV_LINE_MAX);
	ck_assert_int_eq(parse(text, &s, err), 0);
	ck_assert_int_eq(s.n, 2);
	free(text);
	text = long_line(KV_LINE_MAX + 1);
	ck_assert_int_eq(parse(text, &s, err), -1);
	ck_assert_str_eq(err, "test.conf:2: line longer than 4096 bytes");
	free(text);
	text = long_line(100000);
	ck_assert_int_eq(parse(text, &s, err), -1);
	ck_assert_str_eq(err, "test.conf:2: line longer than 4096 bytes");
	free(text);
}
END_TEST

START_TEST(test_nul_byte)
{
	static const char text[] = "a = 1\nb = x\0y\n";
	char path[] = "/tmp/check_conf.XXXXXX", err[512];
	struct seen s;
	FILE *fp;
	int fd;

	fd = mkstemp(path);
	ck_assert_int_ne(fd, -1);
	fp = fdopen(fd, "w");
	fwrite(text, 1, sizeof(text) - 1, fp);
	fclose(fp);
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(kv_parse_file(path, collect, &s, err, sizeof(err)), -1);
	unlink(path);
	ck_assert_ptr_nonnull(strstr(err, ":2: NUL byte in line"));
}
END_TEST

START_TEST(test_missing_file)
{
	struct seen s;
	char err[512];

	ck_assert_int_eq(
	    kv_parse_file("/nonexistent/xcompd.conf", collect, &s, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "/nonexistent/xcompd.conf: cannot open: No such file or directory");
}
END_TEST

START_TEST(test_file_line_numbers)
{
	char path[] = "/tmp/check_conf.XXXXXX", err[512], *expect;
	struct seen s;
	FILE *fp;
	int fd;

	fd = mkstemp(path);
	fp = fdopen(fd, "w");
	fputs("# header\nname = cb1\n\nbad = 7\n", fp);
	fclose(fp);
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(kv_parse_file(path, collect, &s, err, sizeof(err)), -1);
	expect = malloc(strlen(path) + 64);
	sprintf(expect, "%s:4: bad: \"7\" is not allowed", path);
	ck_assert_str_eq(err, expect);
	ck_assert_str_eq(s.text, "[name=cb1]");
	free(expect);
	unlink(path);
}
END_TEST

START_TEST(test_uint)
{
	unsigned v = 99;

	ck_assert_int_eq(kv_uint("30", 1, 60, &v), 0);
	ck_assert_uint_eq(v, 30);
	ck_assert_int_eq(kv_uint("0", 1, 60, &v), -1);
	ck_assert_int_eq(kv_uint("61", 1, 60, &v), -1);
	ck_assert_int_eq(kv_uint("-1", 0, 60, &v), -1);
	ck_assert_int_eq(kv_uint("3s", 0, 60, &v), -1);
	ck_assert_int_eq(kv_uint("", 0, 60, &v), -1);
	ck_assert_int_eq(kv_uint(" 3", 0, 60, &v), -1);
	ck_assert_int_eq(kv_uint("99999999999999999999", 0, 60, &v), -1);
	ck_assert_uint_eq(v, 30);
}
END_TEST

START_TEST(test_bool)
{
	int b = -1;

	ck_assert_int_eq(kv_bool("on", &b), 0);
	ck_assert_int_eq(b, 1);
	ck_assert_int_eq(kv_bool("off", &b), 0);
	ck_assert_int_eq(b, 0);
	ck_assert_int_eq(kv_bool("maybe", &b), -1);
}
END_TEST

/* xcompd's keys */

static char tmpdir[64];

static const char *
write_file(const char *name, const char *text, int mode)
{
	static char path[128];
	FILE *fp;

	if (tmpdir[0] == '\0') {
		strcpy(tmpdir, "/tmp/check_conf.XXXXXX");
		ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	}
	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	fputs(text, fp);
	fclose(fp);
	chmod(path, mode);
	return path;
}

static void
remove_tmpdir(void)
{
	char cmd[128];

	if (tmpdir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		ck_assert_int_eq(system(cmd), 0);
		tmpdir[0] = '\0';
	}
}

START_TEST(test_defaults)
{
	struct conf *c = conf_new();
	char err[512];

	ck_assert_str_eq(c->service, "_xmpp-component._tcp");
	ck_assert_uint_eq(c->port, 5347);
	ck_assert_uint_eq(c->connect_timeout, 5);
	ck_assert_uint_eq(c->handshake_timeout, 10);
	ck_assert_uint_eq(c->keepalive, 10);
	ck_assert_uint_eq(c->keepalive_timeout, 5);
	ck_assert_uint_eq(c->backoff_min, 1);
	ck_assert_uint_eq(c->backoff_max, 60);
	ck_assert_str_eq(c->status_file, "/run/xcomp/status");
	ck_assert_int_eq(c->log_syslog, 0);
	ck_assert_int_eq(c->log_level, LOG_LEVEL_INFO);
	ck_assert_ptr_null(c->dns_server);
	ck_assert_ptr_null(c->metrics_file);
	ck_assert_int_eq(kv_parse_string("t", "name = cb1\ndomain = tptac9.com\nsecret = x\n",
	                     conf_set, c, err, sizeof(err)),
	    0);
	ck_assert_int_eq(conf_finish(c, err, sizeof(err)), 0);
	ck_assert_str_eq(c->component, "cb1.tptac9.com");
	ck_assert_str_eq(c->secret, "x");
	ck_assert_int_eq(c->tls, 0);
	ck_assert_str_eq(conf_tls_name(c), "tptac9.com");
	ck_assert_ptr_null(c->relay_listen);
	ck_assert_uint_eq(c->relay_queue, 1 << 20);
	ck_assert_int_eq(c->relay_replay, 0);
	ck_assert_uint_eq(c->event_timeout, 5);
	ck_assert_uint_eq(c->event_queue, 256);
	conf_free(c);
}

START_TEST(test_relay_secret_default)
{
	struct conf *c = conf_new();
	char err[512];

	ck_assert_int_eq(kv_parse_string("t",
	                     "name = cb1\ndomain = tptac9.com\nsecret = up\n"
	                     "relay-listen = unix:/run/xcomp/relay\nrelay-replay = on\n",
	                     conf_set, c, err, sizeof(err)),
	    0);
	ck_assert_int_eq(conf_finish(c, err, sizeof(err)), 0);
	ck_assert_str_eq(c->relay_secret, "up");
	ck_assert_int_eq(c->relay_replay, 1);
	conf_free(c);
	c = conf_new();
	ck_assert_int_eq(kv_parse_string("t",
	                     "name = x\ndomain = tptac9.com\nsecret = up\n"
	                     "component = tptac9.com\n",
	                     conf_set, c, err, sizeof(err)),
	    0);
	ck_assert_int_eq(conf_finish(c, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "configuration: component tptac9.com is the domain itself; a "
	                      "component needs a name of its own, such as x.tptac9.com");
	conf_free(c);
}
END_TEST
END_TEST

START_TEST(test_all_keys)
{
	struct conf *c = conf_new();
	char err[512], *srv, text[1024];
	const char *ta = write_file("ta", ". IN DS 20326 8 2 E06D44B80B8F1D39\n", 0644);

	snprintf(text, sizeof(text),
	    "name = cb2\ndomain = tptac9.com\ncomponent = bridge.tptac9.com\nsecret = s\n"
	    "server = a.tptac9.com:5223 10.0.0.3 [::1]:5224\nservice = _xmpp-component._tcp\n"
	    "port = 5275\ndns-server = 127.0.0.1@5353\ndnssec-trust-anchor = %s\n"
	    "connect-timeout = 2\nhandshake-timeout = 3\nkeepalive = 4\nkeepalive-timeout = 5\n"
	    "backoff-min = 6\nbackoff-max = 7\nstatus-file = /tmp/s\nlog = syslog\n"
	    "log-level = debug\nmetrics-file = /tmp/xcomp.prom\n",
	    ta);
	ck_assert_int_eq(kv_parse_string("t", text, conf_set, c, err, sizeof(err)), 0);
	ck_assert_int_eq(conf_finish(c, err, sizeof(err)), 0);
	ck_assert_str_eq(c->component, "bridge.tptac9.com");
	ck_assert_uint_eq(c->nservers, 3);
	ck_assert_str_eq(c->servers[0].host, "a.tptac9.com");
	ck_assert_int_eq(c->servers[0].port, 5223);
	ck_assert_str_eq(c->servers[1].host, "10.0.0.3");
	ck_assert_int_eq(c->servers[1].port, 0);
	ck_assert_str_eq(c->servers[2].host, "::1");
	ck_assert_uint_eq(c->port, 5275);
	ck_assert_str_eq(c->dns_server, "127.0.0.1@5353");
	ck_assert_uint_eq(c->keepalive_timeout, 5);
	ck_assert_uint_eq(c->backoff_max, 7);
	ck_assert_int_eq(c->log_syslog, 1);
	ck_assert_int_eq(c->log_level, LOG_LEVEL_DEBUG);
	ck_assert_str_eq(c->metrics_file, "/tmp/xcomp.prom");
	srv = conf_srv_name(c);
	ck_assert_str_eq(srv, "_xmpp-component._tcp.tptac9.com");
	free(srv);
	conf_free(c);
	remove_tmpdir();
}
END_TEST

static void
key_error(const char *line, const char *message)
{
	struct conf *c = conf_new();
	char err[512];

	ck_assert_int_eq(kv_parse_string("xcompd.conf", line, conf_set, c, err, sizeof(err)), -1);
	ck_assert_str_eq(err, message);
	conf_free(c);
}

START_TEST(test_key_errors)
{
	key_error("colour = blue\n", "xcompd.conf:1: unknown key \"colour\" (see xcompd.conf(5))");
	key_error("name = cb1\nkeepalive = 0\n", "xcompd.conf:2: keepalive: expected a whole "
	                                         "number from 1 to 3600, found \"0\"");
	key_error("port = 70000\n", "xcompd.conf:1: port: expected a whole number from 1 to "
	                            "65535, found \"70000\"");
	key_error("connect-timeout = 5s\n", "xcompd.conf:1: connect-timeout: expected a whole "
	                                    "number from 1 to 300, found \"5s\"");
	key_error("name = cb 1\n", "xcompd.conf:1: name: use letters, digits, '-' and '_' (e.g. "
	                           "cb1)");
	key_error("domain = tptac9..com/x\n", "xcompd.conf:1: domain: \"tptac9..com/x\" is not a "
	                                      "domain name");
	key_error("server = a.example:0\n", "xcompd.conf:1: server: \"a.example:0\" is not "
	                                    "host[:port]");
	key_error("server = a b:x\n", "xcompd.conf:1: server: \"b:x\" is not host[:port]");
	key_error("server = a1 a2 a3 a4 a5 a6 a7 a8 a9 a10 a11 a12 a13 a14 a15 a16 a17 a18 a19 a20 "
	          "a21 a22 a23 a24 a25 a26 a27 a28 a29 a30 a31 a32 a33\n",
	    "xcompd.conf:1: server: more than 32 entries");
	key_error("service = xmpp-component.tcp\n", "xcompd.conf:1: service: expected two labels "
	                                            "like _xmpp-component._tcp");
	key_error("dns-server = dns.example\n", "xcompd.conf:1: dns-server: expected an IP "
	                                        "address, optionally @PORT (127.0.0.1@5353)");
	key_error("dns-server = 127.0.0.1@99999\n", "xcompd.conf:1: dns-server: expected an IP "
	                                            "address, optionally @PORT (127.0.0.1@5353)");
	key_error("log = file\n", "xcompd.conf:1: log: expected stderr or syslog");
	key_error("tls = starttls\n", "xcompd.conf:1: tls: expected off or direct");
	key_error("relay-listen = localhost:5347\n", "xcompd.conf:1: relay-listen: expected "
	                                             "IP:PORT (127.0.0.1:5347) or unix:PATH");
	key_error("relay-listen = unix:relative\n", "xcompd.conf:1: relay-listen: expected "
	                                            "IP:PORT (127.0.0.1:5347) or unix:PATH");
	key_error("relay-replay = sometimes\n", "xcompd.conf:1: relay-replay: expected on or off");
	key_error("relay-queue = 100\n", "xcompd.conf:1: relay-queue: expected a whole number from "
	                                 "4096 to 1073741824, found \"100\"");
	key_error("event-url = ftp://x\n", "xcompd.conf:1: event-url: expected an http:// or "
	                                   "https:// URL");
	key_error("event-queue = 0\n", "xcompd.conf:1: event-queue: expected a whole number from 1 "
	                               "to 100000, found \"0\"");
	key_error("tls-name = bad/name\n", "xcompd.conf:1: tls-name: \"bad/name\" is not a host "
	                                   "name");
	key_error("metrics-file = /var/lib/prometheus/node-exporter/xcomp.txt\n",
	    "xcompd.conf:1: metrics-file: expected a file name ending in .prom, the files "
	    "node_exporter's textfile collector reads "
	    "(/var/lib/prometheus/node-exporter/xcomp.prom)");
	key_error("metrics-file = /var/lib/.prom\n",
	    "xcompd.conf:1: metrics-file: expected a file name ending in .prom, the files "
	    "node_exporter's textfile collector reads "
	    "(/var/lib/prometheus/node-exporter/xcomp.prom)");
	key_error("log-level = loud\n", "xcompd.conf:1: log-level: expected error, warning, info "
	                                "or debug");
}
END_TEST

static void
finish_error(const char *text, const char *message)
{
	struct conf *c = conf_new();
	char err[512];

	ck_assert_int_eq(kv_parse_string("t", text, conf_set, c, err, sizeof(err)), 0);
	ck_assert_int_eq(conf_finish(c, err, sizeof(err)), -1);
	ck_assert_str_eq(err, message);
	conf_free(c);
}

START_TEST(test_finish_errors)
{
	char text[256], expect[512];
	const char *path;

	finish_error("domain = tptac9.com\nsecret = x\n", "configuration: \"name\" is required");
	finish_error("name = cb1\nsecret = x\n", "configuration: \"domain\" is required");
	finish_error("name = cb1\ndomain = d.com\n", "configuration: set exactly one of "
	                                             "\"secret-file\" (preferred) and \"secret\"");
	finish_error("name = cb1\ndomain = d.com\nsecret = x\nsecret-file = /x\n",
	    "configuration: set exactly one of \"secret-file\" (preferred) and \"secret\"");
	finish_error("name = cb1\ndomain = d.com\nsecret = x\nbackoff-min = 9\nbackoff-max = 8\n",
	    "configuration: backoff-min (9) is larger than backoff-max (8)");
	finish_error("name = cb1\ndomain = d.com\nsecret-file = /nonexistent/secret\n",
	    "secret-file /nonexistent/secret: No such file or directory");
	finish_error("name = cb1\ndomain = d.com\nsecret = x\nstatus-file = /run/x.prom\n"
	             "metrics-file = /run/x.prom\n",
	    "configuration: metrics-file and status-file are the same file, /run/x.prom");
	finish_error(
	    "name = cb1\ndomain = d.com\nsecret = x\ndnssec-trust-anchor = /nonexistent/ta\n",
	    "configuration: dnssec-trust-anchor /nonexistent/ta: No such file or directory");
	path = write_file("open-secret", "s3cret\n", 0644);
	snprintf(text, sizeof(text), "name = cb1\ndomain = d.com\nsecret-file = %s\n", path);
	snprintf(expect, sizeof(expect),
	    "secret-file %s: readable by group or others (mode 644); "
	    "run: chmod 600 %s",
	    path, path);
	finish_error(text, expect);
	path = write_file("empty-secret", "\nsecond line\n", 0600);
	snprintf(text, sizeof(text), "name = cb1\ndomain = d.com\nsecret-file = %s\n", path);
	snprintf(expect, sizeof(expect), "secret-file %s: the first line is empty", path);
	finish_error(text, expect);
	remove_tmpdir();
}
END_TEST

START_TEST(test_secret_file)
{
	struct conf *c = conf_new();
	char text[256], err[512];
	const char *path = write_file("secret", "kvgP1SRzWVabhiPVAb1\r\nignored\n", 0600);

	snprintf(text, sizeof(text), "name = cb1\ndomain = d.com\nsecret-file = %s\n", path);
	ck_assert_int_eq(kv_parse_string("t", text, conf_set, c, err, sizeof(err)), 0);
	ck_assert_int_eq(conf_finish(c, err, sizeof(err)), 0);
	ck_assert_str_eq(c->secret, "kvgP1SRzWVabhiPVAb1");
	conf_free(c);
	remove_tmpdir();
}
END_TEST

/* The secret, inline or in its file: 1024 characters at most, and text. */
START_TEST(test_secret_limits)
{
	char text[1200], expect[512], err[512], *secret;
	const char *path;
	struct conf *c;
	FILE *fp;

	memset(text, 'k', 1025);
	strcpy(text + 1025, "\n");
	path = write_file("long-secret", text, 0600);
	ck_assert_int_eq(conf_read_secret(path, &secret, err, sizeof(err)), -1);
	snprintf(expect, sizeof(expect),
	    "secret-file %s: the secret is longer than 1024 characters; use a shorter one", path);
	ck_assert_str_eq(err, expect);
	ck_assert_ptr_null(secret);
	strcpy(text + 1024, "\nsecond line, longer than the limit ....................\n");
	path = write_file("longest-secret", text, 0600);
	ck_assert_int_eq(conf_read_secret(path, &secret, err, sizeof(err)), 0);
	ck_assert_uint_eq(strlen(secret), 1024);
	conf_wipe_free(secret);

	path = write_file("nul-secret", "", 0600);
	fp = fopen(path, "w");
	fwrite("ab\0cd\n", 1, 6, fp);
	fclose(fp);
	ck_assert_int_eq(conf_read_secret(path, &secret, err, sizeof(err)), -1);
	snprintf(expect, sizeof(expect),
	    "secret-file %s: the first line is binary (it holds a NUL byte)", path);
	ck_assert_str_eq(err, expect);

	c = conf_new();
	memcpy(text, "secret = ", 9);
	memset(text + 9, 'k', 1024);
	strcpy(text + 9 + 1024, "\n");
	ck_assert_int_eq(kv_parse_string("t", text, conf_set, c, err, sizeof(err)), 0);
	ck_assert_uint_eq(strlen(c->secret), 1024);
	strcpy(text + 9 + 1024, "k\n");
	ck_assert_int_eq(kv_parse_string("t", text, conf_set, c, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "t:1: secret: longer than 1024 characters");
	conf_free(c);
	remove_tmpdir();
}
END_TEST

START_TEST(test_override)
{
	struct conf *c = conf_new();
	char err[512];

	ck_assert_int_eq(conf_override(c, "keepalive=7", err, sizeof(err)), 0);
	ck_assert_uint_eq(c->keepalive, 7);
	ck_assert_int_eq(conf_override(c, "keepalive", err, sizeof(err)), -1);
	ck_assert_str_eq(err, "-o keepalive: expected KEY=VALUE");
	ck_assert_int_eq(conf_override(c, "keepalive=x", err, sizeof(err)), -1);
	ck_assert_str_eq(err, "-o:1: keepalive: expected a whole number from 1 to 3600, found "
	                      "\"x\"");
	conf_free(c);
}
END_TEST

START_TEST(test_contrib_example)
{
	struct conf *c = conf_new();
	char err[512], path[512];
	const char *src = getenv("XCOMP_SRCDIR");

	snprintf(path, sizeof(path), "%s/contrib/xcompd.conf", src ? src : ".");
	ck_assert_msg(conf_load(c, path, err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(c->name, "cb1");
	ck_assert_str_eq(c->domain, "tptac9.com");
	ck_assert_str_eq(c->secret_file, "/etc/xcomp/xcompd.secret");
	conf_free(c);
}
END_TEST

START_TEST(test_suggest)
{
	/* Equal but for case, '-' and '_'. */
	ck_assert_str_eq(conf_suggest("keep-alive"), "keepalive");
	ck_assert_str_eq(conf_suggest("secret_file"), "secret-file");
	ck_assert_str_eq(conf_suggest("statusfile"), "status-file");
	ck_assert_str_eq(conf_suggest("Log_Level"), "log-level");
	/* One or two edits, a transposed pair counting as one. */
	ck_assert_str_eq(conf_suggest("keepalive-timout"), "keepalive-timeout");
	ck_assert_str_eq(conf_suggest("handshake-timeuot"), "handshake-timeout");
	ck_assert_str_eq(conf_suggest("servers"), "server");
	ck_assert_str_eq(conf_suggest("domian"), "domain");
	ck_assert_str_eq(conf_suggest("lgo"), "log");
	ck_assert_str_eq(conf_suggest("prot"), "port");
	ck_assert_str_eq(conf_suggest("backof-max"), "backoff-max");
	/* Too far, or too short for two edits to mean anything. */
	ck_assert_ptr_null(conf_suggest("colour"));
	ck_assert_ptr_null(conf_suggest("to"));
	ck_assert_ptr_null(conf_suggest("ab"));
	ck_assert_ptr_null(conf_suggest("keepalive-seconds"));
	ck_assert_ptr_null(conf_suggest("x"));
	/* Longer than any key: no suggestion, no overflow. */
	ck_assert_ptr_null(conf_suggest("status-file-status-file-status-file-status-file-status-"
	                                "file-status-file"));
}
END_TEST

START_TEST(test_unknown_key_suggests)
{
	struct conf *c = conf_new();
	char err[512];

	key_error("keep-alive = 30\n", "xcompd.conf:1: unknown key \"keep-alive\"; did you mean "
	                               "\"keepalive\"? (see xcompd.conf(5))");
	key_error("name = cb1\nstatus_file = /tmp/s\n",
	    "xcompd.conf:2: unknown key \"status_file\"; did you mean \"status-file\"? (see "
	    "xcompd.conf(5))");
	ck_assert_int_eq(conf_override(c, "keep-alive=5", err, sizeof(err)), -1);
	ck_assert_str_eq(err, "-o:1: unknown key \"keep-alive\"; did you mean \"keepalive\"? (see "
	                      "xcompd.conf(5))");
	conf_free(c);
}
END_TEST

/*
 * The keys conf_suggest knows are the keys conf_set takes and the keys
 * xcompd.conf(5) documents: a key added in one place only fails here.
 */
START_TEST(test_known_keys_match_the_man_page)
{
	const char *src = getenv("XCOMP_SRCDIR");
	char path[512], line[512], key[64], err[512], *p;
	int documented = 0;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/man/xcompd.conf.5", src ? src : ".");
	fp = fopen(path, "r");
	ck_assert_msg(fp != NULL, "%s", path);
	/* ".It Cm keepalive No = Ar seconds", ".It Cm tls-cert No = Ar file , Cm tls-key No = ..."
	 */
	while (fgets(line, sizeof(line), fp) != NULL) {
		if (strncmp(line, ".It Cm ", 7) != 0)
			continue;
		for (p = line; (p = strstr(p, "Cm ")) != NULL; p += 3) {
			struct conf *c;
			const char *why;

			if (sscanf(p, "Cm %63s", key) != 1 ||
			    strncmp(p + 3 + strlen(key), " No =", 5) != 0)
				continue;
			documented++;
			ck_assert_msg(conf_known_key(key), "%s is documented but not known", key);
			/* conf_set takes it: any complaint but "unknown key". */
			c = conf_new();
			why = conf_set(c, key, "x", err, sizeof(err));
			ck_assert_msg(
			    why == NULL || strstr(why, "unknown key") == NULL, "%s: %s", key, why);
			conf_free(c);
		}
	}
	fclose(fp);
	/* As many as numkeys and strkeys hold: a new key raises both counts. */
	ck_assert_int_eq(documented, 37);
	ck_assert_int_eq(conf_known_key("keep-alive"), 0);
}
END_TEST

/* secret-file under systemd's LoadCredential=: the variable, and nothing else, expanded. */
START_TEST(test_expand_credentials)
{
	char err[512], *p;

	ck_assert_str_eq(p = conf_expand_credentials("${CREDENTIALS_DIRECTORY}/secret",
	                     "/run/credentials/xcompd.service", err, sizeof(err)),
	    "/run/credentials/xcompd.service/secret");
	free(p);
	ck_assert_str_eq(
	    p = conf_expand_credentials("$CREDENTIALS_DIRECTORY/s", "/c", err, sizeof(err)),
	    "/c/s");
	free(p);
	/* Other variables, and longer names, stay as they are. */
	ck_assert_str_eq(p = conf_expand_credentials(
	                     "/etc/$HOME/${X}/$CREDENTIALS_DIRECTORY_X", "/c", err, sizeof(err)),
	    "/etc/$HOME/${X}/$CREDENTIALS_DIRECTORY_X");
	free(p);
	ck_assert_str_eq(p = conf_expand_credentials("/etc/xcomp/secret", NULL, err, sizeof(err)),
	    "/etc/xcomp/secret");
	free(p);
	ck_assert_ptr_null(
	    conf_expand_credentials("${CREDENTIALS_DIRECTORY}/secret", NULL, err, sizeof(err)));
	ck_assert_str_eq(err,
	    "secret-file ${CREDENTIALS_DIRECTORY}/secret: CREDENTIALS_DIRECTORY is not set "
	    "(systemd sets it for a unit with LoadCredential=; outside one, name the file itself)");
	ck_assert_ptr_null(
	    conf_expand_credentials("${CREDENTIALS_DIRECTORY}/secret", "", err, sizeof(err)));
}
END_TEST

START_TEST(test_user_key)
{
	struct conf *c = conf_new();
	char err[512];

	ck_assert_ptr_null(c->user);
	ck_assert_ptr_null(conf_set(c, "user", "xcomp", err, sizeof(err)));
	ck_assert_str_eq(c->user, "xcomp");
	ck_assert_ptr_nonnull(conf_set(c, "user", "-x", err, sizeof(err)));
	ck_assert_ptr_nonnull(conf_set(c, "user", "a b", err, sizeof(err)));
	ck_assert_ptr_nonnull(conf_set(c, "user", "a/b", err, sizeof(err)));
	conf_free(c);
}
END_TEST

START_TEST(test_history_path)
{
	struct conf *c = conf_new();
	char err[512], *p;

	/* Beside the status file unless set; "none" turns it off. */
	ck_assert_ptr_null(conf_set(c, "status-file", "/run/x/status", err, sizeof(err)));
	ck_assert_str_eq(p = conf_history_path(c), "/run/x/status.history");
	free(p);
	ck_assert_uint_eq(c->history_max, 65536);
	ck_assert_ptr_null(conf_set(c, "history", "/var/lib/x/h", err, sizeof(err)));
	ck_assert_str_eq(p = conf_history_path(c), "/var/lib/x/h");
	free(p);
	ck_assert_ptr_null(conf_set(c, "history", "none", err, sizeof(err)));
	ck_assert_ptr_null(conf_history_path(c));
	ck_assert_ptr_nonnull(conf_set(c, "history-max", "100", err, sizeof(err)));
	ck_assert_ptr_null(conf_set(c, "history-max", "4096", err, sizeof(err)));
	ck_assert_uint_eq(c->history_max, 4096);
	conf_free(c);
}
END_TEST

START_TEST(test_warning_srv_name_as_server)
{
	struct conf *c = conf_new();
	char err[512], warn[512];

	ck_assert_int_eq(kv_parse_string("t",
	                     "name = cb1\ndomain = tptac9.com\nsecret = s\n"
	                     "server = cb1.tptac9.com:5223 _xmpp-component._tcp.tptac9.com:5223\n",
	                     conf_set, c, err, sizeof(err)),
	    0);
	ck_assert_int_eq(conf_check(c, err, sizeof(err)), 0);
	ck_assert_ptr_nonnull(conf_warning(c, warn, sizeof(warn)));
	ck_assert_str_eq(warn, "configuration: server _xmpp-component._tcp.tptac9.com is an SRV "
	                       "name, not a host; remove \"server\" and the agent looks up the SRV "
	                       "records (_xmpp-component._tcp.tptac9.com) itself, or list the "
	                       "nodes' own host names");
	/* _udp too, and any service label. */
	ck_assert_int_eq(
	    conf_set(c, "server", "_xmpp-server._UDP.example.net", err, sizeof(err)) == NULL, 1);
	ck_assert_ptr_nonnull(conf_warning(c, warn, sizeof(warn)));
	/* Host names with underscores that are not SRV names pass. */
	ck_assert_int_eq(
	    conf_set(c, "server", "cb_1.tptac9.com _a.tptac9.com _x._tcpx.com 10.0.0.1", err,
	        sizeof(err)) == NULL,
	    1);
	ck_assert_ptr_null(conf_warning(c, warn, sizeof(warn)));
	/* No server at all: SRV records, nothing to say. */
	c->nservers = 0;
	ck_assert_ptr_null(conf_warning(c, warn, sizeof(warn)));
	conf_free(c);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("conf");
	TCase *tc = tcase_create("conf");

	tcase_add_test(tc, test_pairs);
	tcase_add_test(tc, test_value_with_spaces_and_equals);
	tcase_add_test(tc, test_no_final_newline);
	tcase_add_test(tc, test_errors);
	tcase_add_test(tc, test_long_line);
	tcase_add_test(tc, test_nul_byte);
	tcase_add_test(tc, test_missing_file);
	tcase_add_test(tc, test_file_line_numbers);
	tcase_add_test(tc, test_uint);
	tcase_add_test(tc, test_bool);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_relay_secret_default);
	tcase_add_test(tc, test_all_keys);
	tcase_add_test(tc, test_key_errors);
	tcase_add_test(tc, test_finish_errors);
	tcase_add_test(tc, test_secret_file);
	tcase_add_test(tc, test_secret_limits);
	tcase_add_test(tc, test_override);
	tcase_add_test(tc, test_contrib_example);
	tcase_add_test(tc, test_suggest);
	tcase_add_test(tc, test_unknown_key_suggests);
	tcase_add_test(tc, test_known_keys_match_the_man_page);
	tcase_add_test(tc, test_history_path);
	tcase_add_test(tc, test_expand_credentials);
	tcase_add_test(tc, test_user_key);
	tcase_add_test(tc, test_warning_srv_name_as_server);
	suite_add_tcase(s, tc);
	return unit_run(s);
}

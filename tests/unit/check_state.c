/* Unit tests for server/state.c: xcomp-server's state directory commands. */
#include <sys/stat.h>

#include <check.h>
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/state.h"
#include "tls.h"
#include "unit.h"

static char dir[64];
static char out[8192], err[1024];
/* Certificates made once with certtool for the TLS tests: ca, node (signed by ca), other. */
static char pki[64];

static void
setup(void)
{
	unit_tmpdir(dir, sizeof(dir), "check_state");
}

static void
teardown(void)
{
	unit_rmtree(dir);
}

/* Run a command given as a string of words; stdin text for add-secret. */
static int
run(const char *input, const char *words)
{
	char copy[512], *argv[16], *w;
	FILE *in, *fo;
	int argc = 0, r;

	snprintf(copy, sizeof(copy), "%s", words);
	for (w = strtok(copy, " "); w && argc < 15; w = strtok(NULL, " "))
		argv[argc++] = w;
	argv[argc] = NULL;
	in = fmemopen((void *)(input ? input : ""), input ? strlen(input) : 0, "r");
	memset(out, 0, sizeof(out));
	fo = fmemopen(out, sizeof(out) - 1, "w");
	err[0] = '\0';
	r = state_command(dir, argc, argv, in, fo, err, sizeof(err));
	fclose(fo);
	fclose(in);
	return r;
}

START_TEST(test_domain)
{
	ck_assert_int_eq(run(NULL, "domain"), 0);
	ck_assert_str_eq(out, "(not set)\n");
	ck_assert_int_eq(run(NULL, "domain tptac9.com"), 0);
	ck_assert_int_eq(run(NULL, "domain"), 0);
	ck_assert_str_eq(out, "tptac9.com\n");
	ck_assert_int_eq(run(NULL, "domain bad/domain"), -1);
	ck_assert_str_eq(err, "\"bad/domain\" is not a valid domain name");
}
END_TEST

START_TEST(test_list_format)
{
	struct state st;
	char expect[512];

	ck_assert_int_eq(run(NULL, "domain tptac9.com"), 0);
	ck_assert_int_eq(run(NULL, "callbridge add cb1"), 0);
	ck_assert_int_eq(run("uBiLLdIU8vVqj86CAb1\n", "callbridge add-secret cb2"), 0);
	ck_assert_int_eq(state_load(dir, &st, err, sizeof(err)), 0);
	ck_assert_uint_eq(st.ncbs, 2);
	ck_assert_uint_eq(strlen(st.cbs[0].secret), STATE_SECRET_LEN);
	snprintf(expect, sizeof(expect),
	    "***\nCallbridge : cb1\nDomain     : tptac9.com\nSecret     : %s\n"
	    "***\nCallbridge : cb2\nDomain     : tptac9.com\nSecret     : uBiLLdIU8vVqj86CAb1\n",
	    st.cbs[0].secret);
	state_free(&st);
	ck_assert_int_eq(run(NULL, "callbridge list"), 0);
	ck_assert_str_eq(out, expect);
}
END_TEST

START_TEST(test_add_prints_secret)
{
	struct state st;
	char expect[256];

	ck_assert_int_eq(run(NULL, "domain tptac9.com"), 0);
	ck_assert_int_eq(run(NULL, "callbridge add cb1"), 0);
	ck_assert_int_eq(state_load(dir, &st, err, sizeof(err)), 0);
	snprintf(expect, sizeof(expect),
	    "Callbridge : cb1\nDomain     : tptac9.com\n"
	    "Secret     : %s\n",
	    st.cbs[0].secret);
	state_free(&st);
	ck_assert_str_eq(out, expect);
}
END_TEST

START_TEST(test_add_twice_remove)
{
	ck_assert_int_eq(run(NULL, "callbridge add cb1"), 0);
	ck_assert_int_eq(run(NULL, "callbridge add cb1"), -1);
	ck_assert_str_eq(err, "call bridge \"cb1\" exists already; use add-secret to change "
	                      "its secret");
	ck_assert_int_eq(run(NULL, "callbridge remove cb1"), 0);
	ck_assert_int_eq(run(NULL, "callbridge remove cb1"), -1);
	ck_assert_str_eq(err, "no call bridge named \"cb1\"");
	ck_assert_int_eq(run(NULL, "callbridge list"), 0);
	ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(test_add_secret_replaces_and_checks)
{
	struct state st;

	ck_assert_int_eq(run("first\n", "callbridge add-secret cb1"), 0);
	ck_assert_int_eq(run("second\r\n", "callbridge add-secret cb1"), 0);
	ck_assert_int_eq(state_load(dir, &st, err, sizeof(err)), 0);
	ck_assert_uint_eq(st.ncbs, 1);
	ck_assert_str_eq(st.cbs[0].secret, "second");
	state_free(&st);
	ck_assert_int_eq(run("", "callbridge add-secret cb1"), -1);
	ck_assert_str_eq(err, "no secret on standard input");
	ck_assert_int_eq(run("with space\n", "callbridge add-secret cb1"), -1);
	ck_assert_str_eq(err, "a secret may hold printable ASCII characters only, no spaces or "
	                      "control characters");
	ck_assert_int_eq(run("#hash\n", "callbridge add-secret cb1"), -1);
	ck_assert_int_eq(run("x\n", "callbridge add-secret bad.name"), -1);
	ck_assert_ptr_nonnull(strstr(err, "use letters, digits"));
}
END_TEST

/* A secret of STATE_SECRET_MAX characters is stored; one more is refused. */
START_TEST(test_secret_length)
{
	char in[STATE_SECRET_MAX + 3];
	struct state st;

	memset(in, 's', STATE_SECRET_MAX);
	strcpy(in + STATE_SECRET_MAX, "\n");
	ck_assert_int_eq(run(in, "callbridge add-secret cb1"), 0);
	ck_assert_int_eq(state_load(dir, &st, err, sizeof(err)), 0);
	ck_assert_uint_eq(strlen(st.cbs[0].secret), STATE_SECRET_MAX);
	state_free(&st);
	strcpy(in + STATE_SECRET_MAX, "s\n");
	ck_assert_int_eq(run(in, "callbridge add-secret cb1"), -1);
	ck_assert_str_eq(err, "secret longer than 256 characters");
	/* Without a newline the same. */
	in[STATE_SECRET_MAX + 1] = '\0';
	ck_assert_int_eq(run(in, "callbridge add-secret cb1"), -1);
	ck_assert_str_eq(err, "secret longer than 256 characters");
}
END_TEST

START_TEST(test_secrets_file_mode)
{
	char path[128];
	struct stat sb;
	struct state st;

	ck_assert_int_eq(run(NULL, "callbridge add cb1"), 0);
	snprintf(path, sizeof(path), "%s/callbridges", dir);
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 0777, 0600);
	chmod(path, 0644);
	ck_assert_int_eq(run(NULL, "callbridge list"), -1);
	ck_assert_ptr_nonnull(
	    strstr(err, "readable by group or others (mode 644); run: chmod 600"));
	ck_assert_int_eq(state_load(dir, &st, err, sizeof(err)), -1);
	state_free(&st);
}
END_TEST

START_TEST(test_listen)
{
	ck_assert_int_eq(run(NULL, "listen 127.0.0.1:5223"), 0);
	ck_assert_int_eq(run(NULL, "listen [::1]:5224"), 0);
	ck_assert_int_eq(run(NULL, "listen 127.0.0.1:5223"), -1);
	ck_assert_str_eq(err, "already listening on 127.0.0.1:5223");
	ck_assert_int_eq(run(NULL, "listen host.example:5223"), -1);
	ck_assert_str_eq(
	    err, "listen \"host.example:5223\": \"host.example\" is not an IP address");
	ck_assert_int_eq(run(NULL, "listen 127.0.0.1"), -1);
	ck_assert_int_eq(run(NULL, "listen 127.0.0.1:70000"), -1);
	ck_assert_int_eq(run(NULL, "listen"), 0);
	ck_assert_str_eq(out, "127.0.0.1:5223\n[::1]:5224\n");
	ck_assert_int_eq(run(NULL, "listen none"), 0);
	ck_assert_int_eq(run(NULL, "listen"), 0);
	ck_assert_str_eq(out, "");
}
END_TEST

/* pki/name, resolved as the state stores it. */
static const char *
pki_path(const char *name)
{
	static char paths[4][PATH_MAX];
	static int turn;
	char rel[PATH_MAX];
	char *p = paths[turn++ % 4];

	snprintf(rel, sizeof(rel), "%s/%s", pki, name);
	ck_assert_ptr_nonnull(realpath(rel, p));
	return p;
}

static void
make_pki(void)
{
	char cmd[2048];
	FILE *fp;

	strcpy(pki, "/tmp/check_state_pki.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(pki));
	snprintf(cmd, sizeof(cmd), "%s/ca.tmpl", pki);
	ck_assert_ptr_nonnull(fp = fopen(cmd, "w"));
	fputs("cn = \"check_state CA\"\nca\ncert_signing_key\nexpiration_days = 3650\n", fp);
	fclose(fp);
	snprintf(cmd, sizeof(cmd), "%s/node.tmpl", pki);
	ck_assert_ptr_nonnull(fp = fopen(cmd, "w"));
	fputs("cn = \"tptac9.test\"\ndns_name = \"xs1.tptac9.test\"\ntls_www_server\n"
	      "signing_key\nexpiration_days = 365\n",
	    fp);
	fclose(fp);
	snprintf(cmd, sizeof(cmd),
	    "cd '%s' && exec >/dev/null 2>&1 && "
	    "certtool --generate-privkey --key-type ecdsa --outfile ca.key && "
	    "certtool --generate-self-signed --load-privkey ca.key --template ca.tmpl "
	    "--outfile ca.pem && "
	    "certtool --generate-privkey --key-type ecdsa --outfile node.key && "
	    "certtool --generate-certificate --load-privkey node.key --load-ca-privkey ca.key "
	    "--load-ca-certificate ca.pem --template node.tmpl --outfile node.pem && "
	    "certtool --generate-privkey --key-type ecdsa --outfile other.key && "
	    "chmod 600 ca.key node.key other.key && "
	    "printf 'not a certificate\\n' > junk.pem",
	    pki);
	ck_assert_int_eq(system(cmd), 0);
}

static void
remove_pki(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", pki);
	ck_assert_int_eq(system(cmd), 0);
}

START_TEST(test_certs_stored_absolute)
{
	char cwd[PATH_MAX], expect[4 * PATH_MAX], conf[4096], path[128];
	struct state st;
	FILE *fp;
	size_t n;

	ck_assert_int_eq(run(NULL, "certs"), 0);
	ck_assert_str_eq(out, "Key file         : (not set)\n"
	                      "Certificate file : (not set)\n"
	                      "CA Bundle file   : (none)\n"
	                      "Trust bundle     : (none: client certificates not requested)\n");
	/* Relative names, as an operator types them in the certificates' directory. */
	ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
	ck_assert_int_eq(chdir(pki), 0);
	ck_assert_int_eq(run(NULL, "certs node.key node.pem ca.pem"), 0);
	ck_assert_int_eq(chdir(cwd), 0);
	ck_assert_str_eq(err, "");
	snprintf(expect, sizeof(expect),
	    "Key file         : %s\nCertificate file : %s\nCA Bundle file   : %s\n"
	    "Trust bundle     : (none: client certificates not requested)\n",
	    pki_path("node.key"), pki_path("node.pem"), pki_path("ca.pem"));
	ck_assert_int_eq(run(NULL, "certs"), 0);
	ck_assert_str_eq(out, expect);
	snprintf(path, sizeof(path), "%s/xcomp-server.conf", dir);
	ck_assert_ptr_nonnull(fp = fopen(path, "r"));
	n = fread(conf, 1, sizeof(conf) - 1, fp);
	conf[n] = '\0';
	fclose(fp);
	snprintf(expect, sizeof(expect), "tls-key = %s\ntls-cert = %s\ntls-bundle = %s\n",
	    pki_path("node.key"), pki_path("node.pem"), pki_path("ca.pem"));
	ck_assert_ptr_nonnull(strstr(conf, expect));
	ck_assert_int_eq(state_load(dir, &st, err, sizeof(err)), 0);
	ck_assert_str_eq(st.tls_key, pki_path("node.key"));
	ck_assert_str_eq(st.tls_cert, pki_path("node.pem"));
	ck_assert_str_eq(st.tls_bundle, pki_path("ca.pem"));
	ck_assert_ptr_null(st.tls_trust);
	state_free(&st);
	/* Without the optional bundle. */
	snprintf(expect, sizeof(expect), "certs %s %s", pki_path("node.key"), pki_path("node.pem"));
	ck_assert_int_eq(run(NULL, expect), 0);
	ck_assert_int_eq(run(NULL, "certs"), 0);
	ck_assert_ptr_nonnull(strstr(out, "CA Bundle file   : (none)\n"));
}
END_TEST

START_TEST(test_certs_none)
{
	char cmd[3 * PATH_MAX];
	struct state st;

	snprintf(cmd, sizeof(cmd), "certs %s %s %s", pki_path("node.key"), pki_path("node.pem"),
	    pki_path("ca.pem"));
	ck_assert_int_eq(run(NULL, cmd), 0);
	ck_assert_int_eq(run(NULL, "certs none"), 0);
	ck_assert_int_eq(state_load(dir, &st, err, sizeof(err)), 0);
	ck_assert_ptr_null(st.tls_key);
	ck_assert_ptr_null(st.tls_cert);
	ck_assert_ptr_null(st.tls_bundle);
	state_free(&st);
	ck_assert_int_eq(run(NULL, "certs"), 0);
	ck_assert_ptr_nonnull(strstr(out, "Key file         : (not set)\n"));
	ck_assert_int_eq(run(NULL, "certs a"), -1);
	ck_assert_str_eq(err, "usage: certs [KEY CERT [BUNDLE] | none]");
}
END_TEST

/* certs with these three words fails with a message that contains want. */
static void
certs_fails(const char *key, const char *cert, const char *bundle, const char *want)
{
	char cmd[3 * PATH_MAX + 16];
	struct state st;

	snprintf(cmd, sizeof(cmd), "certs %s %s%s%s", key, cert, bundle ? " " : "",
	    bundle ? bundle : "");
	ck_assert_int_eq(run(NULL, cmd), -1);
	ck_assert_msg(strstr(err, want) != NULL, "\"%s\": got \"%s\", want \"%s\"", cmd, err, want);
	/* Nothing was stored. */
	ck_assert_int_eq(state_load(dir, &st, err, sizeof(err)), 0);
	ck_assert_ptr_null(st.tls_key);
	state_free(&st);
}

START_TEST(test_certs_bad_files)
{
	char key[PATH_MAX], cert[PATH_MAX], want[2 * PATH_MAX];

	snprintf(key, sizeof(key), "%s", pki_path("node.key"));
	snprintf(cert, sizeof(cert), "%s", pki_path("node.pem"));
	certs_fails(key, "/nonexistent/node.pem", NULL,
	    "certificate /nonexistent/node.pem: No such file or directory");
	certs_fails("/nonexistent/node.key", cert, NULL,
	    "key /nonexistent/node.key: No such file or directory");
	/* The key of another certificate. */
	certs_fails(pki_path("other.key"), cert, NULL, "do not match");
	/* A certificate file that holds no certificate. */
	certs_fails(key, pki_path("junk.pem"), NULL, pki_path("junk.pem"));
	/* A bundle that holds no certificate. */
	snprintf(
	    want, sizeof(want), "CA bundle %s: no PEM certificate in it", pki_path("junk.pem"));
	certs_fails(key, cert, pki_path("junk.pem"), want);
	certs_fails(key, cert, pki, "not a regular file");
}
END_TEST

START_TEST(test_certs_key_mode)
{
	char key[PATH_MAX], want[3 * PATH_MAX];

	snprintf(key, sizeof(key), "%s", pki_path("node.key"));
	ck_assert_int_eq(chmod(key, 0644), 0);
	snprintf(want, sizeof(want),
	    "%s: key readable by group or others (mode 644); run: chmod 600 %s", key, key);
	certs_fails(key, pki_path("node.pem"), NULL, want);
	ck_assert_int_eq(chmod(key, 0600), 0);
}
END_TEST

START_TEST(test_listen_tls)
{
	struct state st;

	ck_assert_int_eq(run(NULL, "listen 127.0.0.1:5223 tls"), 0);
	ck_assert_ptr_nonnull(strstr(out, "a TLS listener needs certs"));
	ck_assert_int_eq(run(NULL, "listen 127.0.0.1:5222"), 0);
	ck_assert_str_eq(out, "");
	ck_assert_int_eq(run(NULL, "listen [::1]:5223 tls"), 0);
	/* One port is plain or TLS, not both. */
	ck_assert_int_eq(run(NULL, "listen 127.0.0.1:5223"), -1);
	ck_assert_str_eq(err, "already listening on 127.0.0.1:5223");
	ck_assert_int_eq(run(NULL, "listen 127.0.0.1:5222 tls"), -1);
	/* Port 0 is a new free port each time. */
	ck_assert_int_eq(run(NULL, "listen 127.0.0.1:0 tls"), 0);
	ck_assert_int_eq(run(NULL, "listen 127.0.0.1:0"), 0);
	ck_assert_int_eq(run(NULL, "listen 127.0.0.1:5224 ssl"), -1);
	ck_assert_str_eq(err, "usage: listen [ADDRESS:PORT [tls] | none]");
	ck_assert_int_eq(run(NULL, "listen"), 0);
	ck_assert_str_eq(out, "127.0.0.1:5223 tls\n127.0.0.1:5222\n[::1]:5223 tls\n"
	                      "127.0.0.1:0 tls\n127.0.0.1:0\n");
	ck_assert_int_eq(state_load(dir, &st, err, sizeof(err)), 0);
	ck_assert_uint_eq(st.nlisten, 5);
	ck_assert_int_eq(st.listen[0].tls, 1);
	ck_assert_int_eq(st.listen[1].tls, 0);
	ck_assert_int_eq(st.listen[2].tls, 1);
	ck_assert_str_eq(st.listen[2].host, "::1");
	ck_assert_int_eq(state_has_tls(&st), 1);
	state_free(&st);
	ck_assert_int_eq(run(NULL, "listen none"), 0);
	ck_assert_int_eq(run(NULL, "listen 127.0.0.1:5222"), 0);
	ck_assert_int_eq(state_load(dir, &st, err, sizeof(err)), 0);
	ck_assert_int_eq(state_has_tls(&st), 0);
	state_free(&st);
}
END_TEST

START_TEST(test_trust)
{
	char cmd[PATH_MAX + 16], expect[PATH_MAX + 64];
	struct state st;

	ck_assert_int_eq(run(NULL, "trust"), 0);
	ck_assert_str_eq(out, "Trust bundle     : (none: client certificates not requested)\n");
	snprintf(cmd, sizeof(cmd), "trust %s", pki_path("ca.pem"));
	ck_assert_int_eq(run(NULL, cmd), 0);
	snprintf(expect, sizeof(expect), "Trust bundle     : %s\n", pki_path("ca.pem"));
	ck_assert_int_eq(run(NULL, "trust"), 0);
	ck_assert_str_eq(out, expect);
	ck_assert_int_eq(run(NULL, "certs"), 0);
	ck_assert_ptr_nonnull(strstr(out, expect));
	ck_assert_int_eq(state_load(dir, &st, err, sizeof(err)), 0);
	ck_assert_str_eq(st.tls_trust, pki_path("ca.pem"));
	state_free(&st);
	snprintf(cmd, sizeof(cmd), "trust %s", pki_path("junk.pem"));
	ck_assert_int_eq(run(NULL, cmd), -1);
	ck_assert_ptr_nonnull(strstr(err, "no PEM certificate in it"));
	ck_assert_int_eq(run(NULL, "trust /nonexistent/ca.pem"), -1);
	ck_assert_str_eq(err, "trust bundle /nonexistent/ca.pem: No such file or directory");
	ck_assert_int_eq(run(NULL, "trust none"), 0);
	ck_assert_int_eq(run(NULL, "trust"), 0);
	ck_assert_str_eq(out, "Trust bundle     : (none: client certificates not requested)\n");
	ck_assert_int_eq(run(NULL, "trust a b"), -1);
}
END_TEST

START_TEST(test_cluster_trust_enable)
{
	char cmd[3 * PATH_MAX], expect[PATH_MAX + 64];
	struct state st;

	snprintf(cmd, sizeof(cmd), "cluster trust %s", pki_path("junk.pem"));
	ck_assert_int_eq(run(NULL, cmd), -1);
	ck_assert_ptr_nonnull(strstr(err, "cluster trust bundle"));
	ck_assert_ptr_nonnull(strstr(err, "no PEM certificate in it"));
	ck_assert_int_eq(run(NULL, "cluster trust /nonexistent/ca.pem"), -1);
	ck_assert_str_eq(
	    err, "cluster trust bundle /nonexistent/ca.pem: No such file or directory");
	/* Stored absolute, whatever the working directory was. */
	ck_assert_int_eq(chdir(pki), 0);
	ck_assert_int_eq(run(NULL, "cluster trust ./ca.pem"), 0);
	ck_assert_int_eq(chdir("/"), 0);
	ck_assert_int_eq(run(NULL, "cluster trust"), 0);
	snprintf(expect, sizeof(expect), "%s\n", pki_path("ca.pem"));
	ck_assert_str_eq(out, expect);
	/* Not the components' trust. */
	ck_assert_int_eq(run(NULL, "trust"), 0);
	ck_assert_str_eq(out, "Trust bundle     : (none: client certificates not requested)\n");

	/* Missing: certs and cluster listen, not the trust. */
	ck_assert_int_eq(run(NULL, "cluster enable"), -1);
	snprintf(expect, sizeof(expect),
	    "cannot enable the cluster: it needs\n"
	    "  certs (this node's key and certificate): xcomp-server -d %s certs KEY CERT "
	    "[BUNDLE]\n"
	    "  cluster listen (the address peers dial): xcomp-server -d %s cluster listen "
	    "IP:PORT",
	    dir, dir);
	ck_assert_str_eq(err, expect);
	snprintf(cmd, sizeof(cmd), "certs %s %s", pki_path("node.key"), pki_path("node.pem"));
	ck_assert_int_eq(run(NULL, cmd), 0);
	ck_assert_int_eq(run(NULL, "cluster listen 127.0.0.1:5400"), 0);
	ck_assert_int_eq(run(NULL, "cluster enable"), 0);
	ck_assert_int_eq(state_load(dir, &st, err, sizeof(err)), 0);
	ck_assert_int_eq(st.cluster_enabled, 1);
	ck_assert_str_eq(st.cluster_trust, pki_path("ca.pem"));
	state_free(&st);
	/* What the enabled cluster needs stays until it is disabled. */
	ck_assert_int_eq(run(NULL, "cluster trust none"), -1);
	ck_assert_ptr_nonnull(strstr(err, "cluster disable"));
	ck_assert_int_eq(run(NULL, "certs none"), -1);
	ck_assert_ptr_nonnull(strstr(err, "cluster disable"));
	ck_assert_int_eq(run(NULL, "cluster disable"), 0);
	ck_assert_int_eq(run(NULL, "cluster trust none"), 0);
	ck_assert_int_eq(run(NULL, "cluster trust"), 0);
	ck_assert_str_eq(out, "(not set)\n");
	ck_assert_int_eq(run(NULL, "cluster"), 0);
	ck_assert_ptr_nonnull(strstr(out, "Enabled            : no\n"));
	ck_assert_int_eq(run(NULL, "cluster trust a b"), -1);
	ck_assert_str_eq(err, "usage: cluster trust [BUNDLE | none]");
}
END_TEST

/* What "run" builds: refused without certs, with a key opened up, or with a file gone. */
START_TEST(test_tls_ctx)
{
	char cmd[3 * PATH_MAX], key[PATH_MAX], want[256];
	struct tls_ctx *ctx;
	struct state st;

	ck_assert_int_eq(run(NULL, "listen 127.0.0.1:5223 tls"), 0);
	ck_assert_int_eq(state_load(dir, &st, err, sizeof(err)), 0);
	ck_assert_ptr_null(state_tls_ctx(&st, err, sizeof(err)));
	snprintf(want, sizeof(want),
	    "a TLS listener needs certs: xcomp-server -d %s certs KEY CERT [BUNDLE]", dir);
	ck_assert_str_eq(err, want);
	state_free(&st);

	snprintf(key, sizeof(key), "%s", pki_path("node.key"));
	snprintf(cmd, sizeof(cmd), "certs %s %s %s", key, pki_path("node.pem"), pki_path("ca.pem"));
	ck_assert_int_eq(run(NULL, cmd), 0);
	snprintf(cmd, sizeof(cmd), "trust %s", pki_path("ca.pem"));
	ck_assert_int_eq(run(NULL, cmd), 0);
	ck_assert_int_eq(state_load(dir, &st, err, sizeof(err)), 0);
	ck_assert_ptr_nonnull(ctx = state_tls_ctx(&st, err, sizeof(err)));
	tls_ctx_free(ctx);

	ck_assert_int_eq(chmod(key, 0640), 0);
	ck_assert_ptr_null(state_tls_ctx(&st, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "(mode 640); run: chmod 600"));
	ck_assert_int_eq(chmod(key, 0600), 0);

	/* A trust bundle that went away. */
	free(st.tls_trust);
	st.tls_trust = strdup("/nonexistent/trust.pem");
	ck_assert_ptr_null(state_tls_ctx(&st, err, sizeof(err)));
	ck_assert_str_eq(err, "trust bundle /nonexistent/trust.pem: No such file or directory");
	state_free(&st);
}
END_TEST

START_TEST(test_tls_conf_paths)
{
	char path[128];
	FILE *fp;

	/* The state file holds absolute paths only: a relative one would depend on the cwd. */
	snprintf(path, sizeof(path), "%s/xcomp-server.conf", dir);
	ck_assert_ptr_nonnull(fp = fopen(path, "w"));
	fputs("tls-key = node.key\n", fp);
	fclose(fp);
	ck_assert_int_eq(run(NULL, "certs"), -1);
	ck_assert_ptr_nonnull(
	    strstr(err, "xcomp-server.conf:1: tls-key: expected an absolute path"));
	ck_assert_ptr_nonnull(fp = fopen(path, "w"));
	fputs("listen = 127.0.0.1:5223 dtls\n", fp);
	fclose(fp);
	ck_assert_int_eq(run(NULL, "listen"), -1);
	ck_assert_ptr_nonnull(strstr(err, "expected ADDRESS:PORT [tls]"));
	/* A state whose files are gone still loads, so that "certs none" can mend it. */
	ck_assert_ptr_nonnull(fp = fopen(path, "w"));
	fputs("listen = 127.0.0.1:5223 tls\ntls-key = /nonexistent/k\ntls-cert = /nonexistent/c\n",
	    fp);
	fclose(fp);
	ck_assert_int_eq(run(NULL, "certs none"), 0);
	ck_assert_int_eq(run(NULL, "listen"), 0);
	ck_assert_str_eq(out, "127.0.0.1:5223 tls\n");
}
END_TEST

START_TEST(test_policy_and_numbers)
{
	ck_assert_int_eq(run(NULL, "conflict-policy"), 0);
	ck_assert_str_eq(out, "kick-new\n");
	ck_assert_int_eq(run(NULL, "conflict-policy allow"), 0);
	ck_assert_int_eq(run(NULL, "conflict-policy"), 0);
	ck_assert_str_eq(out, "allow\n");
	ck_assert_int_eq(run(NULL, "conflict-policy sometimes"), -1);
	ck_assert_int_eq(run(NULL, "handshake-timeout 2"), 0);
	ck_assert_int_eq(run(NULL, "handshake-timeout"), 0);
	ck_assert_str_eq(out, "2\n");
	ck_assert_int_eq(run(NULL, "handshake-timeout 0"), -1);
	ck_assert_int_eq(run(NULL, "keepalive"), 0);
	ck_assert_str_eq(out, "10\n");
	ck_assert_int_eq(run(NULL, "keepalive-timeout"), 0);
	ck_assert_str_eq(out, "5\n");
	ck_assert_int_eq(run(NULL, "keepalive 5"), 0);
	ck_assert_int_eq(run(NULL, "keepalive-timeout 3"), 0);
	ck_assert_int_eq(run(NULL, "keepalive"), 0);
	ck_assert_str_eq(out, "5\n");
	ck_assert_int_eq(run(NULL, "keepalive-timeout"), 0);
	ck_assert_str_eq(out, "3\n");
	ck_assert_int_eq(run(NULL, "keepalive 0"), -1);
	ck_assert_str_eq(err, "usage: keepalive [1..3600]");
	ck_assert_int_eq(run(NULL, "keepalive-timeout 301"), -1);
	ck_assert_str_eq(err, "usage: keepalive-timeout [1..300]");
	ck_assert_int_eq(run(NULL, "max-stanza 10"), -1);
	ck_assert_int_eq(run(NULL, "frobnicate"), -1);
	ck_assert_str_eq(err, "unknown command \"frobnicate\" (see xcomp-server -h)");
}
END_TEST

START_TEST(test_bad_conf_file)
{
	char path[128];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/xcomp-server.conf", dir);
	fp = fopen(path, "w");
	fputs("domain = tptac9.com\nlisten = nowhere\n", fp);
	fclose(fp);
	ck_assert_int_eq(run(NULL, "domain"), -1);
	ck_assert_ptr_nonnull(strstr(err, "xcomp-server.conf:2: listen \"nowhere\""));
	fp = fopen(path, "w");
	fputs("colour = blue\n", fp);
	fclose(fp);
	ck_assert_int_eq(run(NULL, "domain"), -1);
	ck_assert_ptr_nonnull(strstr(err, "xcomp-server.conf:1: unknown key \"colour\""));
}
END_TEST

START_TEST(test_cluster_settings)
{
	struct state st;

	ck_assert_int_eq(run(NULL, "cluster"), 0);
	ck_assert_str_eq(out, "Enabled            : no\n"
	                      "Listen             : (not set)\n"
	                      "Trust bundle       : (not set)\n"
	                      "Keepalive          : 200 ms\n"
	                      "Election timeout   : 1000 ms\n");
	ck_assert_int_eq(run(NULL, "cluster listen"), 0);
	ck_assert_str_eq(out, "(not set)\n");
	/* Peers dial this address: one IP of this node, no wildcard, no name. */
	ck_assert_int_eq(run(NULL, "cluster listen 0.0.0.0:5400"), -1);
	ck_assert_str_eq(err, "cluster listen \"0.0.0.0:5400\": 0.0.0.0 means every address; "
	                      "give one IP address of this node: the other members dial this "
	                      "address");
	ck_assert_int_eq(run(NULL, "cluster listen [::]:5400"), -1);
	ck_assert_ptr_nonnull(strstr(err, ":: means every address"));
	ck_assert_int_eq(run(NULL, "cluster listen [::ffff:0.0.0.0]:5400"), -1);
	ck_assert_ptr_nonnull(strstr(err, "means every address"));
	ck_assert_int_eq(run(NULL, "cluster listen node1:5400"), -1);
	ck_assert_str_eq(err, "cluster listen \"node1:5400\": \"node1\" is not an IP address; "
	                      "give an IP address of this node: the other members dial this "
	                      "address");
	ck_assert_int_eq(run(NULL, "cluster listen 127.0.0.1"), -1);
	ck_assert_str_eq(
	    err, "cluster listen \"127.0.0.1\": expected IP:PORT, e.g. 127.0.0.1:5400");
	ck_assert_int_eq(run(NULL, "listen 127.0.0.1:5223"), 0);
	ck_assert_int_eq(run(NULL, "cluster listen 127.0.0.1:5223"), -1);
	ck_assert_ptr_nonnull(strstr(err, "a component listener has that address already"));
	ck_assert_int_eq(run(NULL, "cluster listen 127.0.0.1:0"), 0);
	ck_assert_int_eq(run(NULL, "cluster listen [::1]:5400"), 0);
	ck_assert_int_eq(run(NULL, "cluster listen"), 0);
	ck_assert_str_eq(out, "[::1]:5400\n");
	ck_assert_int_eq(run(NULL, "cluster listen 127.0.0.2:5400 extra"), -1);
	ck_assert_str_eq(err, "usage: cluster listen [IP:PORT]");

	/* Timing: in range, and the election timeout more than twice the keepalive. */
	ck_assert_int_eq(run(NULL, "cluster keepalive"), 0);
	ck_assert_str_eq(out, "200\n");
	ck_assert_int_eq(run(NULL, "cluster election-timeout"), 0);
	ck_assert_str_eq(out, "1000\n");
	ck_assert_int_eq(run(NULL, "cluster keepalive 19"), -1);
	ck_assert_str_eq(err, "usage: cluster keepalive [MS], from 20 to 10000 milliseconds");
	ck_assert_int_eq(run(NULL, "cluster election-timeout 60001"), -1);
	ck_assert_str_eq(
	    err, "usage: cluster election-timeout [MS], from 100 to 60000 milliseconds");
	ck_assert_int_eq(run(NULL, "cluster keepalive 500"), -1);
	ck_assert_str_eq(err, "cluster keepalive 500: the cluster election timeout (1000 ms) must "
	                      "be more than twice the cluster keepalive (500 ms), or one late "
	                      "keepalive starts an election; raise cluster election-timeout first");
	ck_assert_int_eq(run(NULL, "cluster election-timeout 400"), -1);
	ck_assert_ptr_nonnull(strstr(err, "lower cluster keepalive first"));
	ck_assert_int_eq(run(NULL, "cluster keepalive 499"), 0);
	ck_assert_int_eq(run(NULL, "cluster election-timeout 3000"), 0);
	ck_assert_int_eq(run(NULL, "cluster keepalive 1000"), 0);

	/* Enable names everything missing, each with its command. */
	ck_assert_int_eq(run(NULL, "cluster enable"), -1);
	ck_assert_ptr_null(strstr(err, "cluster listen IP:PORT"));
	ck_assert_ptr_nonnull(strstr(err, "cannot enable the cluster: it needs\n  certs"));
	ck_assert_ptr_nonnull(strstr(err, "cluster trust BUNDLE"));
	ck_assert_int_eq(run(NULL, "cluster disable"), 0);
	ck_assert_int_eq(run(NULL, "cluster enable now"), -1);
	ck_assert_str_eq(err, "usage: cluster enable");
	ck_assert_int_eq(run(NULL, "cluster frob"), -1);
	ck_assert_str_eq(err, "unknown cluster command \"frob\"; the cluster commands are listen, "
	                      "trust, enable, disable, keepalive, election-timeout (settings) and "
	                      "initialize, join, remove, status (on the running server)");

	ck_assert_int_eq(state_load(dir, &st, err, sizeof(err)), 0);
	ck_assert_int_eq(st.cluster_enabled, 0);
	ck_assert_str_eq(st.cluster_listen.host, "::1");
	ck_assert_int_eq(st.cluster_listen.port, 5400);
	ck_assert_uint_eq(st.cluster_keepalive_ms, 1000);
	ck_assert_uint_eq(st.cluster_election_ms, 3000);
	ck_assert_ptr_null(st.cluster_trust);
	state_free(&st);
}
END_TEST

static void
write_conf(const char *text)
{
	char path[128];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/xcomp-server.conf", dir);
	ck_assert_ptr_nonnull(fp = fopen(path, "w"));
	fputs(text, fp);
	fclose(fp);
}

START_TEST(test_cluster_conf_file)
{
	struct state st;
	char want[256];

	write_conf("cluster-election-timeout = 5000\ncluster-keepalive = 2000\n"
	           "cluster-enabled = yes\ncluster-listen = 127.0.0.3:5400\n"
	           "cluster-trust = /etc/cluster-ca.pem\n");
	ck_assert_int_eq(state_load(dir, &st, err, sizeof(err)), 0);
	ck_assert_int_eq(st.cluster_enabled, 1);
	ck_assert_str_eq(st.cluster_listen.host, "127.0.0.3");
	ck_assert_uint_eq(st.cluster_keepalive_ms, 2000);
	ck_assert_uint_eq(st.cluster_election_ms, 5000);
	ck_assert_str_eq(st.cluster_trust, "/etc/cluster-ca.pem");
	state_free(&st);
	write_conf("cluster-keepalive = 600\n");
	ck_assert_int_eq(state_load(dir, &st, err, sizeof(err)), -1);
	state_free(&st);
	snprintf(want, sizeof(want),
	    "%s/xcomp-server.conf: the cluster election timeout (1000 ms) must be more than "
	    "twice the cluster keepalive (600 ms), or one late keepalive starts an election",
	    dir);
	ck_assert_str_eq(err, want);
	write_conf("cluster-enabled = maybe\n");
	ck_assert_int_eq(run(NULL, "cluster"), -1);
	ck_assert_ptr_nonnull(strstr(err, ":1: cluster-enabled: expected yes or no"));
	write_conf("\ncluster-listen = 0.0.0.0:5400\n");
	ck_assert_int_eq(run(NULL, "cluster"), -1);
	ck_assert_ptr_nonnull(strstr(err, ":2: cluster listen \"0.0.0.0:5400\": 0.0.0.0 means"));
	write_conf("cluster-trust = cluster-ca.pem\n");
	ck_assert_int_eq(run(NULL, "cluster"), -1);
	ck_assert_ptr_nonnull(strstr(err, ":1: cluster-trust: expected an absolute path"));
	write_conf("cluster-keepalive = 10\n");
	ck_assert_int_eq(run(NULL, "cluster"), -1);
	ck_assert_ptr_nonnull(strstr(err, ":1: cluster-keepalive: expected milliseconds from 20"));
	write_conf("cluster-election-timeout = 99\n");
	ck_assert_int_eq(run(NULL, "cluster"), -1);
	ck_assert_ptr_nonnull(strstr(err, ":1: cluster-election-timeout: expected milliseconds"));
}
END_TEST

START_TEST(test_find_jid)
{
	struct state st;

	ck_assert_int_eq(run(NULL, "domain tptac9.com"), 0);
	ck_assert_int_eq(run(NULL, "callbridge add cb1"), 0);
	ck_assert_int_eq(state_load(dir, &st, err, sizeof(err)), 0);
	ck_assert_ptr_nonnull(state_find_jid(&st, "cb1.tptac9.com"));
	ck_assert_ptr_nonnull(state_find_jid(&st, "CB1.TPTAC9.com"));
	ck_assert_ptr_null(state_find_jid(&st, "cb1.tptac9.co"));
	ck_assert_ptr_null(state_find_jid(&st, "cb1"));
	ck_assert_ptr_null(state_find_jid(&st, "cb2.tptac9.com"));
	ck_assert_ptr_null(state_find_jid(&st, "tptac9.com"));
	state_free(&st);
}
END_TEST

START_TEST(test_new_secret)
{
	char a[STATE_SECRET_LEN + 1], b[STATE_SECRET_LEN + 1];
	int i;

	state_new_secret(a);
	state_new_secret(b);
	ck_assert_uint_eq(strlen(a), STATE_SECRET_LEN);
	ck_assert_str_ne(a, b);
	for (i = 0; i < STATE_SECRET_LEN; i++)
		ck_assert(isalnum((unsigned char)a[i]));
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("state");
	TCase *tc = tcase_create("state");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_domain);
	tcase_add_test(tc, test_list_format);
	tcase_add_test(tc, test_add_prints_secret);
	tcase_add_test(tc, test_add_twice_remove);
	tcase_add_test(tc, test_add_secret_replaces_and_checks);
	tcase_add_test(tc, test_secret_length);
	tcase_add_test(tc, test_secrets_file_mode);
	tcase_add_test(tc, test_listen);
	tcase_add_test(tc, test_policy_and_numbers);
	tcase_add_test(tc, test_bad_conf_file);
	tcase_add_test(tc, test_cluster_settings);
	tcase_add_test(tc, test_cluster_conf_file);
	tcase_add_test(tc, test_find_jid);
	tcase_add_test(tc, test_new_secret);
	suite_add_tcase(s, tc);

	tc = tcase_create("tls");
	tcase_add_unchecked_fixture(tc, make_pki, remove_pki);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_certs_stored_absolute);
	tcase_add_test(tc, test_certs_none);
	tcase_add_test(tc, test_certs_bad_files);
	tcase_add_test(tc, test_certs_key_mode);
	tcase_add_test(tc, test_listen_tls);
	tcase_add_test(tc, test_trust);
	tcase_add_test(tc, test_cluster_trust_enable);
	tcase_add_test(tc, test_tls_ctx);
	tcase_add_test(tc, test_tls_conf_paths);
	suite_add_tcase(s, tc);
	return unit_run(s);
}

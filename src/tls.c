/*
 * tls: GnuTLS sessions as an io transport. The handshake is one
 * non-blocking step per loop event (GnuTLS says which direction it waits
 * for); when it fails, the reason is worked out from GnuTLS's error, the
 * verification status and the chain the peer sent, and put in words an
 * operator can act on.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <arpa/inet.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "log.h"
#include "tls.h"
#include "util.h"

#define PEEK_LEN 16

struct tls_ctx {
	gnutls_certificate_credentials_t cred;
	gnutls_priority_t prio;
	int server;
	int verify_peer; /* server: client certificates required */
	char ca[256];    /* for messages: the trust file, or "the system's trust store" */
};

struct tls_conn {
	gnutls_session_t s;
	struct tls_ctx *ctx;
	struct io *io;
	char name[256];
	char alt[256]; /* a second acceptable name, or "" */
	char why[600];
	unsigned char first[PEEK_LEN]; /* the peer's first bytes, to spot plain text */
	size_t nfirst;
	int done;     /* handshake finished */
	int got_data; /* application data arrived after the handshake */
	int generic;  /* why holds GnuTLS's own words for a transport error */
};

int
tls_check_key_file(const char *path, char *err, size_t errlen)
{
	struct stat sb;

	if (stat(path, &sb) == -1)
		return util_fail(err, errlen, "%s: %s", path, strerror(errno));
	if (sb.st_mode & (S_IRGRP | S_IROTH))
		return util_fail(err, errlen,
		    "%s: key readable by group or others (mode %03o); run: "
		    "chmod 600 %s",
		    path, (unsigned)(sb.st_mode & 0777), path);
	return 0;
}

int
tls_file_non_ca(const char *path, char *names, size_t len)
{
	gnutls_datum_t data = {NULL, 0}, dn;
	gnutls_x509_crt_t *crts = NULL;
	unsigned n = 0, i, critical;
	size_t used = 0;
	int found = 0;

	if (len > 0)
		names[0] = '\0';
	if (gnutls_load_file(path, &data) < 0)
		return -1;
	if (gnutls_x509_crt_list_import2(&crts, &n, &data, GNUTLS_X509_FMT_PEM, 0) < 0) {
		gnutls_free(data.data);
		return -1;
	}
	for (i = 0; i < n; i++) {
		/* > 0: a CA; 0: CA:FALSE; < 0: no basicConstraints (or unreadable). */
		if (gnutls_x509_crt_get_basic_constraints(crts[i], &critical, NULL, NULL) <= 0) {
			found++;
			if (gnutls_x509_crt_get_dn3(crts[i], &dn, 0) == 0) {
				if (used < len)
					used += snprintf(names + used, len - used, "%s%s",
					    used ? "; " : "", (char *)dn.data);
				gnutls_free(dn.data);
			}
		}
		gnutls_x509_crt_deinit(crts[i]);
	}
	gnutls_free(crts);
	gnutls_free(data.data);
	return found;
}

static struct tls_ctx *
ctx_new(const char *priority, char *err, size_t errlen)
{
	struct tls_ctx *c = xcalloc(1, sizeof(*c));
	const char *where = NULL;
	int r;

	if ((r = gnutls_certificate_allocate_credentials(&c->cred)) < 0)
		fatalx("gnutls_certificate_allocate_credentials: %s", gnutls_strerror(r));
	if ((r = gnutls_priority_init(
	         &c->prio, priority ? priority : TLS_DEFAULT_PRIORITY, &where)) < 0) {
		util_fail(err, errlen, "tls-priority \"%s\": %s%s%s", priority, gnutls_strerror(r),
		    where ? " at " : "", where ? where : "");
		gnutls_certificate_free_credentials(c->cred);
		free(c);
		return NULL;
	}
	return c;
}

void
tls_ctx_free(struct tls_ctx *c)
{
	if (c == NULL)
		return;
	gnutls_priority_deinit(c->prio);
	gnutls_certificate_free_credentials(c->cred);
	free(c);
}

static int
load_trust(struct tls_ctx *c, const char *file, char *err, size_t errlen)
{
	int r;

	if (file == NULL) {
		snprintf(c->ca, sizeof(c->ca), "the system's trust store");
		r = gnutls_certificate_set_x509_system_trust(c->cred);
		return r < 0 ? util_fail(err, errlen, "system trust store: %s", gnutls_strerror(r))
		             : 0;
	}
	snprintf(c->ca, sizeof(c->ca), "%s", file);
	r = gnutls_certificate_set_x509_trust_file(c->cred, file, GNUTLS_X509_FMT_PEM);
	if (r < 0)
		return util_fail(err, errlen, "%s: %s", file, gnutls_strerror(r));
	if (r == 0)
		return util_fail(err, errlen, "%s: no PEM certificate in it", file);
	return 0;
}

struct tls_ctx *
tls_client_ctx(const char *ca, const char *cert, const char *key, const char *priority, char *err,
    size_t errlen)
{
	struct tls_ctx *c;
	int r;

	if ((cert == NULL) != (key == NULL)) {
		util_fail(err, errlen, "a client certificate needs both tls-cert and tls-key");
		return NULL;
	}
	if (key && tls_check_key_file(key, err, errlen) == -1)
		return NULL;
	if ((c = ctx_new(priority, err, errlen)) == NULL)
		return NULL;
	if (load_trust(c, ca, err, errlen) == -1)
		goto bad;
	if (cert && (r = gnutls_certificate_set_x509_key_file2(
	                 c->cred, cert, key, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0) {
		util_fail(
		    err, errlen, "tls-cert %s / tls-key %s: %s", cert, key, gnutls_strerror(r));
		goto bad;
	}
	return c;
bad:
	tls_ctx_free(c);
	return NULL;
}

/* The certificate followed by the bundle, as one PEM chain. */
static int
load_chain(const char *cert, const char *bundle, gnutls_datum_t *out, char *err, size_t errlen)
{
	gnutls_datum_t a = {NULL, 0}, b = {NULL, 0};
	int r;

	if ((r = gnutls_load_file(cert, &a)) < 0)
		return util_fail(err, errlen, "%s: %s", cert, gnutls_strerror(r));
	if (bundle && (r = gnutls_load_file(bundle, &b)) < 0) {
		gnutls_free(a.data);
		return util_fail(err, errlen, "%s: %s", bundle, gnutls_strerror(r));
	}
	out->size = a.size + 1 + b.size;
	out->data = xmalloc(out->size + 1);
	memcpy(out->data, a.data, a.size);
	out->data[a.size] = '\n';
	if (b.size)
		memcpy(out->data + a.size + 1, b.data, b.size);
	out->data[out->size] = '\0';
	gnutls_free(a.data);
	gnutls_free(b.data);
	return 0;
}

struct tls_ctx *
tls_server_ctx(const char *key, const char *cert, const char *bundle, const char *trust,
    const char *priority, char *err, size_t errlen)
{
	gnutls_datum_t chain = {NULL, 0}, k = {NULL, 0};
	struct tls_ctx *c;
	int r;

	if (tls_check_key_file(key, err, errlen) == -1)
		return NULL;
	if ((c = ctx_new(priority, err, errlen)) == NULL)
		return NULL;
	c->server = 1;
	if (load_chain(cert, bundle, &chain, err, errlen) == -1)
		goto bad;
	if ((r = gnutls_load_file(key, &k)) < 0) {
		util_fail(err, errlen, "%s: %s", key, gnutls_strerror(r));
		goto bad;
	}
	r = gnutls_certificate_set_x509_key_mem2(c->cred, &chain, &k, GNUTLS_X509_FMT_PEM, NULL, 0);
	util_wipe(k.data, k.size);
	gnutls_free(k.data);
	free(chain.data);
	chain.data = NULL;
	if (r < 0) {
		util_fail(
		    err, errlen, "key %s with certificate %s: %s", key, cert, gnutls_strerror(r));
		goto bad;
	}
	if (trust) {
		if (load_trust(c, trust, err, errlen) == -1)
			goto bad;
		c->verify_peer = 1;
	}
	return c;
bad:
	free(chain.data);
	tls_ctx_free(c);
	return NULL;
}

/* Transport */

static void set_why(struct tls_conn *, const char *, ...) __attribute__((format(printf, 2, 3)));

static void
set_why(struct tls_conn *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(t->why, sizeof(t->why), fmt, ap);
	va_end(ap);
}

static ssize_t
pull(gnutls_transport_ptr_t p, void *buf, size_t len)
{
	struct tls_conn *t = p;
	ssize_t n = recv(io_fd(t->io), buf, len, 0);
	size_t k;

	/* Keep the first bytes: a '<' there means the peer speaks plain XML. */
	if (n > 0 && t->nfirst < PEEK_LEN) {
		k = (size_t)n < PEEK_LEN - t->nfirst ? (size_t)n : PEEK_LEN - t->nfirst;
		memcpy(t->first + t->nfirst, buf, k);
		t->nfirst += k;
	}
	return n;
}

static ssize_t
push(gnutls_transport_ptr_t p, const void *buf, size_t len)
{
	struct tls_conn *t = p;

	return send(io_fd(t->io), buf, len, MSG_NOSIGNAL);
}

static void explain(struct tls_conn *, int);

static int
retry(int r)
{
	return r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED;
}

static ssize_t
tls_read(struct io *io, void *buf, size_t len)
{
	struct tls_conn *t = io_ops_ctx(io);
	ssize_t r = gnutls_record_recv(t->s, buf, len);

	if (r > 0)
		t->got_data = 1;
	if (r >= 0)
		return r;
	if (retry(r)) {
		errno = EAGAIN;
		return -1;
	}
	/* A peer that closes without close_notify (killed, or Prosody) ends the stream. */
	if (r == GNUTLS_E_PREMATURE_TERMINATION)
		return 0;
	/* TLS 1.3: a server refuses a client certificate after our side finished. */
	if (r == GNUTLS_E_FATAL_ALERT_RECEIVED)
		explain(t, (int)r);
	else {
		set_why(t, "TLS: %s", gnutls_strerror(r));
		t->generic = 1;
	}
	errno = EPROTO;
	return -1;
}

static ssize_t
tls_write(struct io *io, const void *buf, size_t len)
{
	struct tls_conn *t = io_ops_ctx(io);
	ssize_t r = gnutls_record_send(t->s, buf, len);

	if (r >= 0)
		return r;
	if (retry(r)) {
		errno = EAGAIN;
		return -1;
	}
	set_why(t, "TLS: %s", gnutls_strerror(r));
	t->generic = 1;
	errno = EPIPE;
	return -1;
}

static size_t
tls_pending(struct io *io)
{
	struct tls_conn *t = io_ops_ctx(io);

	return t->done ? gnutls_record_check_pending(t->s) : 0;
}

static void
tls_free(struct io *io)
{
	struct tls_conn *t = io_ops_ctx(io);

	gnutls_deinit(t->s);
	free(t);
}

/* Explaining a failure */

static void
fmt_date(time_t t, char *buf, size_t len)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

static void
cert_describe(gnutls_x509_crt_t crt, struct tls_cert *c)
{
	gnutls_datum_t d;
	char name[300], ip[INET6_ADDRSTRLEN];
	size_t size, used = 0;
	unsigned i;
	int type;

	memset(c, 0, sizeof(*c));
	if (gnutls_x509_crt_get_dn3(crt, &d, 0) == 0) {
		snprintf(c->subject, sizeof(c->subject), "%s", (char *)d.data);
		gnutls_free(d.data);
	}
	size = sizeof(c->cn);
	if (gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, c->cn, &size) < 0)
		c->cn[0] = '\0';
	if (gnutls_x509_crt_get_issuer_dn3(crt, &d, 0) == 0) {
		snprintf(c->issuer, sizeof(c->issuer), "%s", (char *)d.data);
		gnutls_free(d.data);
	}
	c->not_before = gnutls_x509_crt_get_activation_time(crt);
	c->not_after = gnutls_x509_crt_get_expiration_time(crt);
	for (i = 0; used < sizeof(c->san) - 1; i++) {
		size = sizeof(name) - 1;
		type = gnutls_x509_crt_get_subject_alt_name(crt, i, name, &size, NULL);
		if (type == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE || type < 0)
			break;
		if (type == GNUTLS_SAN_DNSNAME) {
			name[size] = '\0';
			used += snprintf(c->san + used, sizeof(c->san) - used, "%sDNS:%s",
			    used ? ", " : "", name);
		} else if (type == GNUTLS_SAN_IPADDRESS && (size == 4 || size == 16)) {
			inet_ntop(size == 4 ? AF_INET : AF_INET6, name, ip, sizeof(ip));
			used += snprintf(
			    c->san + used, sizeof(c->san) - used, "%sIP:%s", used ? ", " : "", ip);
		}
	}
}

/* The peer's chain as received; returns how many. */
static size_t
peer_chain(gnutls_session_t s, struct tls_cert *out, size_t max)
{
	const gnutls_datum_t *der;
	gnutls_x509_crt_t crt;
	unsigned n = 0, i;

	der = gnutls_certificate_get_peers(s, &n);
	for (i = 0; der && i < n && i < max; i++) {
		if (gnutls_x509_crt_init(&crt) < 0)
			break;
		if (gnutls_x509_crt_import(crt, &der[i], GNUTLS_X509_FMT_DER) == 0)
			cert_describe(crt, &out[i]);
		gnutls_x509_crt_deinit(crt);
	}
	return der ? (i < n ? i : n) : 0;
}

/* Whether subjectAltNames as cert_describe writes them ("DNS:a, IP:b") hold name. */
static int
san_has_dns(const char *san, const char *name)
{
	size_t n = strlen(name);
	const char *p;

	for (p = san; (p = strstr(p, "DNS:")) != NULL;) {
		p += 4;
		if (strncasecmp(p, name, n) == 0 && (p[n] == '\0' || p[n] == ','))
			return 1;
	}
	return 0;
}

/*
 * The names the certificate carries, against the ones wanted. With
 * subjectAltNames a client matches those alone and ignores the CN (RFC 6125,
 * 6.4.4, as GnuTLS does): a CN that is not also a subjectAltName is said not
 * to count, or "for CN=tptac9.com ... not tptac9.com" contradicts itself.
 */
static void
name_mismatch(struct tls_conn *t, const struct tls_cert *leaf)
{
	char want[600], cn[300] = "";

	snprintf(want, sizeof(want), "not %s%s%s", t->name, t->alt[0] ? " nor " : "", t->alt);
	if (leaf->san[0] == '\0') {
		set_why(t,
		    "name mismatch: the certificate is for %s%s (it has no subjectAltName), %s",
		    leaf->cn[0] ? "CN=" : "no name at all", leaf->cn, want);
		return;
	}
	if (leaf->cn[0] && !san_has_dns(leaf->san, leaf->cn))
		snprintf(cn, sizeof(cn),
		    "; its CN=%s does not count: with subjectAltNames present, a client "
		    "ignores the CN (RFC 6125, 6.4.4)",
		    leaf->cn);
	set_why(t, "name mismatch: the certificate is for %s only (its subjectAltNames), %s%s",
	    leaf->san, want, cn);
}

/* With two acceptable names GnuTLS checked the chain only: check the names here. */
static int
check_names(struct tls_conn *t)
{
	const gnutls_datum_t *der;
	gnutls_x509_crt_t crt;
	struct tls_cert leaf;
	unsigned n = 0;
	int ok = 0;

	if ((der = gnutls_certificate_get_peers(t->s, &n)) == NULL || n == 0 ||
	    gnutls_x509_crt_init(&crt) < 0)
		return -1;
	if (gnutls_x509_crt_import(crt, &der[0], GNUTLS_X509_FMT_DER) == 0) {
		ok = gnutls_x509_crt_check_hostname(crt, t->name) ||
		     gnutls_x509_crt_check_hostname(crt, t->alt);
		if (!ok) {
			cert_describe(crt, &leaf);
			name_mismatch(t, &leaf);
		}
	}
	gnutls_x509_crt_deinit(crt);
	return ok ? 0 : -1;
}

static void
explain_verify(struct tls_conn *t)
{
	unsigned status = gnutls_session_get_verify_cert_status(t->s);
	struct tls_cert chain[8];
	size_t n = peer_chain(t->s, chain, nitems(chain)), i;
	time_t now = time(NULL);
	char date[64];
	gnutls_datum_t out;
	const char *who = t->ctx->server ? "client" : "server";

	if (n == 0) {
		set_why(t, "the %s sent no certificate", who);
		return;
	}
	if (status & GNUTLS_CERT_UNEXPECTED_OWNER) {
		name_mismatch(t, &chain[0]);
		return;
	}
	for (i = 0; i < n && (status & (GNUTLS_CERT_EXPIRED | GNUTLS_CERT_NOT_ACTIVATED)); i++) {
		if ((status & GNUTLS_CERT_EXPIRED) && chain[i].not_after < now) {
			fmt_date(chain[i].not_after, date, sizeof(date));
			set_why(t, "certificate expired on %s (%s)", date, chain[i].subject);
			return;
		}
		if ((status & GNUTLS_CERT_NOT_ACTIVATED) && chain[i].not_before > now) {
			fmt_date(chain[i].not_before, date, sizeof(date));
			set_why(t, "certificate not valid before %s (%s)", date, chain[i].subject);
			return;
		}
	}
	if (status & GNUTLS_CERT_SIGNER_NOT_FOUND) {
		if (n == 1 && strcmp(chain[0].subject, chain[0].issuer) != 0)
			set_why(t,
			    "incomplete chain: the %s sent only its "
			    "own certificate, issued by %s, which is not in %s; add the "
			    "intermediate certificates to the %s's bundle (root last)",
			    who, chain[0].issuer, t->ctx->ca, who);
		else
			set_why(t,
			    "untrusted issuer: the chain ends at %s, "
			    "which is not in %s",
			    chain[n - 1].issuer, t->ctx->ca);
		return;
	}
	if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &out, 0) == 0) {
		set_why(t, "certificate not accepted: %s", (char *)out.data);
		gnutls_free(out.data);
	} else
		set_why(t, "certificate not accepted (status 0x%x)", status);
}

/* Alerts a peer sends about the certificate we showed it (or did not). */
static int
certificate_alert(int alert)
{
	switch (alert) {
	case GNUTLS_A_CERTIFICATE_REQUIRED:
	case GNUTLS_A_BAD_CERTIFICATE:
	case GNUTLS_A_UNSUPPORTED_CERTIFICATE:
	case GNUTLS_A_CERTIFICATE_REVOKED:
	case GNUTLS_A_CERTIFICATE_EXPIRED:
	case GNUTLS_A_CERTIFICATE_UNKNOWN:
	case GNUTLS_A_UNKNOWN_CA:
	case GNUTLS_A_ACCESS_DENIED:
		return 1;
	}
	return 0;
}

/*
 * The server refused our client certificate, or its absence: with its alert
 * (alert names it), or by hanging up (NULL). Which certificate went out, if
 * any, tells the operator where to look.
 */
static void
explain_refused_certificate(struct tls_conn *t, const char *alert)
{
	const gnutls_datum_t *ours = gnutls_certificate_get_ours(t->s);
	const char *closed = ": it asked for one and closed the connection";
	gnutls_x509_crt_t crt;
	struct tls_cert c;
	char how[160];

	if (alert)
		snprintf(how, sizeof(how), " (alert: %s)", alert);
	else
		snprintf(how, sizeof(how), "%s", closed);
	if (ours == NULL) {
		set_why(t,
		    "the server requires a client certificate, and none is set (tls-cert, "
		    "tls-key)%s",
		    how);
		return;
	}
	memset(&c, 0, sizeof(c));
	if (gnutls_x509_crt_init(&crt) == 0) {
		if (gnutls_x509_crt_import(crt, ours, GNUTLS_X509_FMT_DER) == 0)
			cert_describe(crt, &c);
		gnutls_x509_crt_deinit(crt);
	}
	set_why(t,
	    "the server refused our client certificate %s, issued by %s%s; it requires one "
	    "from a CA it trusts (tls-cert, tls-key)",
	    c.subject[0] ? c.subject : "?", c.issuer[0] ? c.issuer : "?", how);
}

/*
 * A TLS 1.2 server (OpenSSL's) answers a missing client certificate with
 * handshake_failure; having asked for one, it had agreed on version and cipher.
 */
static int
missing_certificate_alert(struct tls_conn *t, int alert)
{
	return alert == GNUTLS_A_HANDSHAKE_FAILURE &&
	       gnutls_certificate_client_get_request_status(t->s) &&
	       gnutls_certificate_get_ours(t->s) == NULL;
}

static void
explain_alert(struct tls_conn *t, int alert)
{
	const char *who = t->ctx->server ? "client" : "server";
	const char *name = gnutls_alert_get_name(alert);

	if (!t->ctx->server && (certificate_alert(alert) || missing_certificate_alert(t, alert)))
		explain_refused_certificate(t, name);
	else if (certificate_alert(alert))
		set_why(t, "the client refused this server's certificate (alert: %s)", name);
	else if (alert == GNUTLS_A_PROTOCOL_VERSION || alert == GNUTLS_A_HANDSHAKE_FAILURE ||
	         alert == GNUTLS_A_INSUFFICIENT_SECURITY)
		set_why(t,
		    "protocol or cipher mismatch: the %s refused the handshake (alert: %s); "
		    "check tls-priority on both sides",
		    who, name);
	else
		set_why(t, "the %s refused the handshake (alert: %s)", who, name);
}

static void
explain(struct tls_conn *t, int r)
{
	const char *who = t->ctx->server ? "client" : "server";

	if (t->nfirst > 0 && t->first[0] == '<') {
		set_why(t,
		    "the %s does not speak TLS here: it sent plain "
		    "XML (\"%.*s...\")%s",
		    who, (int)t->nfirst, t->first,
		    t->ctx->server ? "" : "; use the node's TLS port, or tls = off");
		return;
	}
	switch (r) {
	case GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR:
		explain_verify(t);
		return;
	case GNUTLS_E_NO_CERTIFICATE_FOUND:
	case GNUTLS_E_CERTIFICATE_REQUIRED:
		set_why(t, "the %s sent no certificate", who);
		return;
	case GNUTLS_E_FATAL_ALERT_RECEIVED:
		explain_alert(t, gnutls_alert_get(t->s));
		return;
	case GNUTLS_E_UNSUPPORTED_VERSION_PACKET:
	case GNUTLS_E_NO_CIPHER_SUITES:
	case GNUTLS_E_INSUFFICIENT_SECURITY:
	case GNUTLS_E_NO_COMMON_KEY_SHARE:
	case GNUTLS_E_UNKNOWN_CIPHER_SUITE:
		set_why(t,
		    "protocol or cipher mismatch: %s; check "
		    "tls-priority on both sides",
		    gnutls_strerror(r));
		return;
	case GNUTLS_E_PREMATURE_TERMINATION:
	case GNUTLS_E_PULL_ERROR:
	case GNUTLS_E_PUSH_ERROR:
		/* TLS 1.2: a hang-up after asking for our certificate, its alert lost. */
		if (!t->ctx->server && gnutls_certificate_client_get_request_status(t->s)) {
			explain_refused_certificate(t, NULL);
			return;
		}
		set_why(t,
		    "the %s closed the connection during the TLS "
		    "handshake",
		    who);
		return;
	default:
		set_why(t, "TLS handshake failed: %s", gnutls_strerror(r));
	}
}

static int
tls_handshake(struct io *io)
{
	struct tls_conn *t = io_ops_ctx(io);
	int r = gnutls_handshake(t->s);

	if (r == 0) {
		t->done = 1;
		return t->alt[0] && check_names(t) == -1 ? -1 : 0;
	}
	if (retry(r) || !gnutls_error_is_fatal(r))
		return gnutls_record_get_direction(t->s) ? IO_WANT_WRITE : IO_WANT_READ;
	explain(t, r);
	/* Tell the peer why, so that its operator sees a reason too (best effort). */
	gnutls_alert_send_appropriate(t->s, r);
	return -1;
}

static const struct io_ops tls_ops = {tls_read, tls_write, tls_pending, tls_free, tls_handshake};

static int
start(
    struct io *io, struct tls_ctx *ctx, const char *name, const char *alt, char *err, size_t errlen)
{
	struct tls_conn *t = xcalloc(1, sizeof(*t));
	struct sockaddr_storage ss;
	int r, len;

	t->ctx = ctx;
	t->io = io;
	r = gnutls_init(&t->s, (ctx->server ? GNUTLS_SERVER : GNUTLS_CLIENT) | GNUTLS_NONBLOCK);
	if (r < 0) {
		free(t);
		return util_fail(err, errlen, "gnutls_init: %s", gnutls_strerror(r));
	}
	gnutls_priority_set(t->s, ctx->prio);
	gnutls_credentials_set(t->s, GNUTLS_CRD_CERTIFICATE, ctx->cred);
	if (name != NULL) {
		snprintf(t->name, sizeof(t->name), "%s", name);
		/* SNI names hosts, never addresses (RFC 6066 3). */
		if (util_sockaddr(name, 1, &ss, &len) == -1)
			gnutls_server_name_set(t->s, GNUTLS_NAME_DNS, name, strlen(name));
		if (alt != NULL && strcasecmp(alt, name) != 0) {
			snprintf(t->alt, sizeof(t->alt), "%s", alt);
			gnutls_session_set_verify_cert(t->s, NULL, 0); /* names: check_names */
		} else
			gnutls_session_set_verify_cert(t->s, name, 0);
	} else if (!ctx->server) {
		/* A cluster peer: its chain must lead to the trust bundle; no name is asked of it.
		 */
		gnutls_session_set_verify_cert(t->s, NULL, 0);
	} else if (ctx->verify_peer) {
		gnutls_certificate_server_set_request(t->s, GNUTLS_CERT_REQUIRE);
		/*
		 * Name no CAs: a client then sends whatever certificate it has, and a
		 * wrong one is refused with a reason instead of not sent at all.
		 */
		gnutls_certificate_send_x509_rdn_sequence(t->s, 1);
		gnutls_session_set_verify_cert(t->s, NULL, 0);
	}
	gnutls_transport_set_ptr(t->s, t);
	gnutls_transport_set_pull_function(t->s, pull);
	gnutls_transport_set_push_function(t->s, push);
	io_start(io, &tls_ops, t);
	return 0;
}

int
tls_client(
    struct io *io, struct tls_ctx *ctx, const char *name, const char *alt, char *err, size_t errlen)
{
	return start(io, ctx, name, alt, err, errlen);
}

int
tls_server(struct io *io, struct tls_ctx *ctx, char *err, size_t errlen)
{
	return start(io, ctx, NULL, NULL, err, errlen);
}

/*
 * A TLS 1.3 server judges the client certificate after our side of the
 * handshake is done: one that asked for a certificate and hung up before
 * sending a byte refused ours, whether its alert arrived or was lost to the
 * reset that our first write provoked.
 */
static int
refused_after_handshake(struct tls_conn *t)
{
	return t->done && !t->ctx->server && !t->got_data &&
	       gnutls_certificate_client_get_request_status(t->s);
}

const char *
tls_why(const struct io *io)
{
	struct tls_conn *t = io_ops_ctx(io);

	if (t == NULL)
		return "";
	if ((t->why[0] == '\0' || t->generic) && refused_after_handshake(t)) {
		t->generic = 0;
		explain_refused_certificate(t, NULL);
	}
	return t->why;
}

int
tls_info(const struct io *io, struct tls_info *info)
{
	struct tls_conn *t = io_ops_ctx(io);
	const char *v;
	char *desc;

	memset(info, 0, sizeof(*info));
	if (t == NULL)
		return -1;
	if ((v = gnutls_protocol_get_name(gnutls_protocol_get_version(t->s))) != NULL)
		snprintf(info->version, sizeof(info->version), "%s", v);
	if (t->done && (desc = gnutls_session_get_desc(t->s)) != NULL) {
		snprintf(info->cipher, sizeof(info->cipher), "%s", desc);
		gnutls_free(desc);
	}
	info->verified = t->done && (t->name[0] || t->ctx->verify_peer);
	info->nchain = peer_chain(t->s, info->chain, nitems(info->chain));
	return 0;
}

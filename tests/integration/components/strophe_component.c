/*
 * An XEP-0114 component on libstrophe (xmpp_connect_component), driven line
 * by line; the integration tests compile it at run time:
 *
 *     cc -o strophe_component strophe_component.c \
 *         -DSTROPHE_VERSION="\"$(pkg-config --modversion libstrophe)\"" \
 *         $(pkg-config --cflags --libs libstrophe)
 *     XCOMP_SECRET=... ./strophe_component HOST PORT JID DOMAIN < commands
 *
 * The secret comes from the environment, not the argument list. Events on
 * standard output, one a line:
 *     online                      the handshake succeeded (XMPP_CONN_CONNECT)
 *     got ping from JID           a ping arrived (answered with xmpp_stanza_reply)
 *     pong from JID               the result of our ping arrived
 *     ping error: TYPE            our ping got something else
 *     message from JID: BODY      a message arrived
 *     error: ...                  what libstrophe reported: the connection
 *                                 event, its error code and the stream error
 *     disconnected                the connection is gone; the program exits
 * Commands on standard input, one a line:
 *     ping JID                    XEP-0199 ping from our JID
 *     message JID BODY            a message from our JID
 *     quit                        close the stream and exit (as does EOF)
 * Exit status: 0 after quit or EOF while online, 1 when the session failed.
 * XCOMP_DEBUG=1 turns on libstrophe's debug log (standard error).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <strophe.h>

static const char *const se_names[] = {"bad-format", "bad-namespace-prefix", "conflict",
    "connection-timeout", "host-gone", "host-unknown", "improper-addressing",
    "internal-server-error", "invalid-from", "invalid-id", "invalid-namespace", "invalid-xml",
    "not-authorized", "policy-violation", "remote-connection-failed", "resource-constraint",
    "restricted-xml", "see-other-host", "system-shutdown", "undefined-condition",
    "unsupported-encoding", "unsupported-stanza-type", "unsupported-version", "not-well-formed"};

static const char *const event_names[] = {
    "XMPP_CONN_CONNECT", "XMPP_CONN_RAW_CONNECT", "XMPP_CONN_DISCONNECT", "XMPP_CONN_FAIL"};

struct state {
	xmpp_ctx_t *ctx;
	xmpp_conn_t *conn;
	const char *jid;
	int online;   /* XMPP_CONN_CONNECT seen */
	int quitting; /* quit or EOF */
	int done;     /* the connection is over */
	int failed;
	unsigned serial;
};

/* STROPHE_VERSION: pkg-config --modversion libstrophe, given by the test at build time. */
static int
sm_state_workaround(void)
{
#ifdef STROPHE_VERSION
	return strncmp(STROPHE_VERSION, "0.12.", 5) == 0;
#else
	return 0;
#endif
}

static int
ping_handler(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *arg)
{
	struct state *st = arg;
	xmpp_stanza_t *reply;

	printf("got ping from %s\n", xmpp_stanza_get_from(stanza));
	reply = xmpp_stanza_reply(stanza);
	xmpp_stanza_set_type(reply, "result");
	/* xmpp_stanza_reply drops 'from' (it is made for clients): a component names itself. */
	if (xmpp_stanza_get_from(reply) == NULL)
		xmpp_stanza_set_from(reply, st->jid);
	xmpp_send(conn, reply);
	xmpp_stanza_release(reply);
	return 1;
}

static int
pong_handler(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *arg)
{
	const char *type = xmpp_stanza_get_type(stanza);

	(void)conn;
	(void)arg;
	if (type && strcmp(type, "result") == 0)
		printf("pong from %s\n", xmpp_stanza_get_from(stanza));
	else
		printf("ping error: %s\n", type ? type : "(no type)");
	return 0; /* one answer per id */
}

static int
message_handler(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *arg)
{
	char *body = xmpp_message_get_body(stanza);

	(void)conn;
	(void)arg;
	printf("message from %s: %s\n", xmpp_stanza_get_from(stanza), body ? body : "");
	xmpp_free(xmpp_stanza_get_context(stanza), body);
	return 1;
}

static void
conn_handler(
    xmpp_conn_t *conn, xmpp_conn_event_t event, int error, xmpp_stream_error_t *se, void *arg)
{
	struct state *st = arg;

	(void)conn;
	if (event == XMPP_CONN_CONNECT) {
		st->online = 1;
		printf("online\n");
		return;
	}
	if (se != NULL || error != 0 || event == XMPP_CONN_FAIL || !st->quitting) {
		printf("error: %s error=%d", event_names[event], error);
		if (error != 0)
			printf(" (%s)", strerror(error));
		if (se != NULL)
			printf(" stream_error=%s text=%s",
			    se->type <= XMPP_SE_XML_NOT_WELL_FORMED ? se_names[se->type] : "?",
			    se->text ? se->text : "(none)");
		printf("\n");
		st->failed = 1;
	}
	printf("disconnected\n");
	st->done = 1;
}

static void
send_ping(struct state *st, const char *to)
{
	char id[32];
	xmpp_stanza_t *iq, *ping;

	snprintf(id, sizeof(id), "strophe-ping-%u", ++st->serial);
	iq = xmpp_iq_new(st->ctx, "get", id);
	xmpp_stanza_set_to(iq, to);
	xmpp_stanza_set_from(iq, st->jid);
	ping = xmpp_stanza_new(st->ctx);
	xmpp_stanza_set_name(ping, "ping");
	xmpp_stanza_set_ns(ping, "urn:xmpp:ping");
	xmpp_stanza_add_child(iq, ping);
	xmpp_stanza_release(ping);
	xmpp_id_handler_add(st->conn, pong_handler, id, st);
	xmpp_send(st->conn, iq);
	xmpp_stanza_release(iq);
}

static void
send_message(struct state *st, const char *to, const char *body)
{
	char id[32];
	xmpp_stanza_t *m;

	snprintf(id, sizeof(id), "strophe-msg-%u", ++st->serial);
	m = xmpp_message_new(st->ctx, "chat", to, id);
	xmpp_stanza_set_from(m, st->jid);
	xmpp_message_set_body(m, body);
	xmpp_send(st->conn, m);
	xmpp_stanza_release(m);
}

static void
quit(struct state *st)
{
	if (st->quitting)
		return;
	st->quitting = 1;
	if (st->online)
		xmpp_disconnect(st->conn);
	else
		st->done = 1;
}

static void
command(struct state *st, char *line)
{
	char *verb = strtok(line, " \t"), *arg = strtok(NULL, " \t"), *rest = strtok(NULL, "");

	if (verb == NULL)
		return;
	if (strcmp(verb, "ping") == 0 && arg != NULL && rest == NULL)
		send_ping(st, arg);
	else if (strcmp(verb, "message") == 0 && arg != NULL && rest != NULL)
		send_message(st, arg, rest);
	else if (strcmp(verb, "quit") == 0)
		quit(st);
	else
		printf("error: unknown command %s\n", verb);
}

/* Commands from standard input, without blocking the loop; EOF means quit. */
static void
read_stdin(struct state *st, char *buf, size_t size, size_t *len)
{
	struct pollfd p = {0, POLLIN, 0};
	char *nl;
	ssize_t n;

	if (st->quitting || poll(&p, 1, 0) != 1)
		return;
	n = read(0, buf + *len, size - 1 - *len);
	if (n <= 0) {
		if (n == 0 || errno != EINTR)
			quit(st);
		return;
	}
	*len += (size_t)n;
	buf[*len] = '\0';
	while ((nl = strchr(buf, '\n')) != NULL) {
		*nl = '\0';
		command(st, buf);
		*len -= (size_t)(nl + 1 - buf);
		memmove(buf, nl + 1, *len + 1);
	}
	if (*len == size - 1) /* a line too long: drop it */
		*len = 0;
}

int
main(int argc, char **argv)
{
	struct state st;
	const char *secret = getenv("XCOMP_SECRET");
	char buf[4096];
	size_t len = 0;
	long port;

	if (argc != 5 || secret == NULL) {
		fprintf(stderr, "usage: XCOMP_SECRET=... %s HOST PORT JID DOMAIN\n", argv[0]);
		return 2;
	}
	port = strtol(argv[2], NULL, 10);
	setvbuf(stdout, NULL, _IOLBF, 0);
	memset(&st, 0, sizeof(st));
	st.jid = argv[3];
	xmpp_initialize();
	st.ctx = xmpp_ctx_new(
	    NULL, getenv("XCOMP_DEBUG") ? xmpp_get_default_logger(XMPP_LEVEL_DEBUG) : NULL);
	st.conn = xmpp_conn_new(st.ctx);
	xmpp_conn_set_jid(st.conn, st.jid);
	xmpp_conn_set_pass(st.conn, secret);
	xmpp_handler_add(st.conn, ping_handler, "urn:xmpp:ping", "iq", "get", &st);
	xmpp_handler_add(st.conn, message_handler, NULL, "message", NULL, &st);
	if (xmpp_connect_component(st.conn, argv[1], (unsigned short)port, conn_handler, &st) !=
	    XMPP_EOK) {
		printf("error: xmpp_connect_component failed\n");
		st.failed = 1;
		st.done = 1;
	} else if (sm_state_workaround())
		/*
		 * libstrophe 0.12.x allocates conn->sm_state (XEP-0198 state) only in
		 * xmpp_connect_client, but reads conn->sm_state->sm_enabled after every
		 * stanza it receives (conn.c, _handle_stream_stanza): a component
		 * connection dereferences NULL on its first stanza, the <handshake/>,
		 * whatever the server. xmpp_connect_client on the connecting conn
		 * allocates the state, then returns XMPP_EINVOP before it touches the
		 * connection (_conn_connect refuses a conn that is not disconnected).
		 */
		(void)xmpp_connect_client(
		    st.conn, argv[1], (unsigned short)port, conn_handler, &st);
	while (!st.done) {
		read_stdin(&st, buf, sizeof(buf), &len);
		xmpp_run_once(st.ctx, 10);
	}
	xmpp_conn_release(st.conn);
	xmpp_ctx_free(st.ctx);
	xmpp_shutdown();
	return st.failed ? 1 : 0;
}

/*
 * connect.c driven against a scripted server on loopback: each end of a
 * session reported once, with its code and words, and the session freed
 * from inside its own callbacks (valgrind watches the deferred free).
 */
#include <sys/socket.h>

#include <netinet/in.h>

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "connect.h"
#include "io.h"
#include "unit.h"
#include "util.h"

#define HEADER(id)                                                                                 \
	"<stream:stream xmlns='jabber:component:accept' "                                          \
	"xmlns:stream='http://etherx.jabber.org/streams' from='cb1.example' id='" id "'>"

/* The server: it accepts one connection and answers the client's header with reply. */
struct peer {
	struct loop *loop;
	int lfd, port;
	struct loop_fd *lf;
	struct io *io;
	const char *reply;
	char got[4096];
	size_t ngot;
};

/* The user: what the session reported, and when to free it. */
struct user {
	struct loop *loop;
	struct connect *c;
	int free_at_stanza; /* free the session from inside the first stanza callback */
	int free_at_won;    /* free it from inside the race's WON */
	char attempts[512]; /* the race as told: "S:ip F:ip W:ip A:ip" */
	int headers, authenticated, stanzas, ended;
	char header_id[64];
	struct connect_end end;
	char text[800], condition[64];
};

static void
peer_data(void *arg, const char *p, size_t n)
{
	struct peer *pe = arg;
	int first = strstr(pe->got, "<stream:stream") == NULL;

	if (n > sizeof(pe->got) - 1 - pe->ngot)
		n = sizeof(pe->got) - 1 - pe->ngot;
	memcpy(pe->got + pe->ngot, p, n);
	pe->ngot += n;
	pe->got[pe->ngot] = '\0';
	if (first && strstr(pe->got, "<stream:stream") != NULL)
		io_write(pe->io, pe->reply, strlen(pe->reply));
}

static void
peer_closed(void *arg, int err)
{
	struct peer *pe = arg;

	(void)err;
	io_free(pe->io);
	pe->io = NULL;
}

static const struct io_handler peer_io = {NULL, peer_data, peer_closed, NULL};

static void
peer_accept(int fd, int revents, void *arg)
{
	struct peer *pe = arg;
	int s = accept(fd, NULL, NULL);

	(void)revents;
	ck_assert_int_ge(s, 0);
	ck_assert_ptr_null(pe->io);
	pe->io = io_new(pe->loop, s, 0, 65536, &peer_io, pe);
}

static void
peer_start(struct peer *pe, struct loop *l, const char *reply)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	memset(pe, 0, sizeof(*pe));
	pe->loop = l;
	pe->reply = reply;
	pe->lfd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(pe->lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(pe->lfd, 1), 0);
	ck_assert_int_eq(getsockname(pe->lfd, (struct sockaddr *)&sin, &len), 0);
	pe->port = ntohs(sin.sin_port);
	pe->lf = loop_add(l, pe->lfd, POLLIN, peer_accept, pe);
}

static void
peer_stop(struct peer *pe)
{
	io_free(pe->io);
	loop_del(pe->loop, pe->lf);
	close(pe->lfd);
}

static void
user_header(void *arg, const char *from, const char *id)
{
	struct user *u = arg;

	(void)from;
	u->headers++;
	snprintf(u->header_id, sizeof(u->header_id), "%s", id ? id : "(none)");
}

static void
user_authenticated(void *arg)
{
	((struct user *)arg)->authenticated++;
}

static void
user_stanza(void *arg, const struct xs_elem *e, const char *raw, size_t rawlen)
{
	struct user *u = arg;

	(void)e;
	(void)raw;
	(void)rawlen;
	u->stanzas++;
	if (u->free_at_stanza) {
		connect_free(u->c);
		u->c = NULL;
		loop_break(u->loop);
	}
}

static void
user_ended(void *arg, const struct connect_end *e)
{
	struct user *u = arg;

	u->ended++;
	u->end = *e;
	snprintf(u->text, sizeof(u->text), "%s", e->text);
	snprintf(u->condition, sizeof(u->condition), "%s", e->condition ? e->condition : "");
	connect_free(u->c);
	u->c = NULL;
	loop_break(u->loop);
}

static void
user_attempt(void *arg, const struct connect_attempt *t)
{
	struct user *u = arg;
	size_t n = strlen(u->attempts);

	snprintf(u->attempts + n, sizeof(u->attempts) - n, "%s%c:%s", n ? " " : "", "SFWA"[t->what],
	    t -> ip);
	if (t->what == CONNECT_ATTEMPT_WON && u->free_at_won) {
		connect_free(u->c);
		u->c = NULL;
		loop_break(u->loop);
	}
}

static const struct connect_handler user_handler = {
    NULL, NULL, NULL, user_header, user_authenticated, NULL, user_stanza, user_ended, user_attempt};

static void
give_up(void *arg)
{
	loop_break(arg);
}

/*
 * One session against a server on 127.0.0.1 that answers reply, raced over
 * the addresses ips; returns when it ends (or 5 s).
 */
static void
session_at(struct user *u, const char *reply, int refused, const char *const *ips)
{
	struct loop *l = loop_new();
	struct connect_params p;
	struct dns_addr addrs[4];
	struct peer pe;
	struct timer t;
	size_t n;

	memset(addrs, 0, sizeof(addrs));
	for (n = 0; ips[n] != NULL; n++) {
		addrs[n].family = AF_INET;
		snprintf(addrs[n].ip, sizeof(addrs[n].ip), "%s", ips[n]);
	}

	peer_start(&pe, l, reply);
	if (refused) {
		loop_del(l, pe.lf);
		close(pe.lfd);
		pe.lf = NULL;
	}
	u->loop = l;
	memset(&p, 0, sizeof(p));
	p.server = "cb1.example:5347";
	p.addrs = addrs;
	p.naddrs = n;
	p.port = pe.port;
	p.component = "bridge.example";
	p.secret = "s3cret";
	p.connect_timeout = 5;
	p.handshake_timeout = 5;
	p.outmax = 65536;
	u->c = connect_new(l, &p, &user_handler, u);
	ck_assert_ptr_nonnull(u->c);
	timer_init(&t, give_up, l);
	timer_add(loop_timers(l), &t, 5000);
	loop_run(l);
	timer_cancel(loop_timers(l), &t);
	connect_free(u->c);
	if (!refused)
		peer_stop(&pe);
	/* Let deferred frees and flushes finish. */
	loop_run_once(l, 0);
	loop_free(l);
}

static void
session(struct user *u, const char *reply, int refused)
{
	const char *const one[] = {"127.0.0.1", NULL};

	session_at(u, reply, refused, one);
}

START_TEST(test_not_authorized)
{
	struct user u;

	memset(&u, 0, sizeof(u));
	session(&u,
	    HEADER("abc") "<stream:error><not-authorized "
	                  "xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
	    0);
	ck_assert_int_eq(u.headers, 1);
	ck_assert_str_eq(u.header_id, "abc");
	ck_assert_int_eq(u.ended, 1);
	ck_assert_int_eq(u.end.how, CONNECT_STREAM_ERROR);
	ck_assert_int_eq(u.end.phase, CONNECT_HANDSHAKE);
	ck_assert_str_eq(u.end.code, "auth");
	ck_assert_str_eq(u.text, "authentication failure at cb1.example:5347 (not-authorized)");
	ck_assert_str_eq(u.attempts, "S:127.0.0.1 W:127.0.0.1");
}
END_TEST

/* Prosody's early error: a header with id='', then the error itself is reported. */
START_TEST(test_no_id_then_error)
{
	struct user u;

	memset(&u, 0, sizeof(u));
	session(&u,
	    HEADER("") "<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
	               "<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>no such host</text>"
	               "</stream:error>",
	    0);
	ck_assert_str_eq(u.header_id, "(none)");
	ck_assert_int_eq(u.ended, 1);
	ck_assert_str_eq(u.end.code, "stream");
	ck_assert_str_eq(u.condition, "host-unknown");
	ck_assert_str_eq(u.text, "stream error from cb1.example:5347: host-unknown: no such host");
}
END_TEST

START_TEST(test_no_id_then_stanza)
{
	struct user u;

	memset(&u, 0, sizeof(u));
	session(&u, HEADER("") "<message/>", 0);
	ck_assert_int_eq(u.ended, 1);
	ck_assert_int_eq(u.end.how, CONNECT_NO_ID);
	ck_assert_str_eq(u.text, "cb1.example:5347 sent a stream header without an id");
}
END_TEST

START_TEST(test_see_other_host)
{
	struct user u;

	memset(&u, 0, sizeof(u));
	session(&u,
	    HEADER(
	        "abc") "<stream:error><see-other-host xmlns='urn:ietf:params:xml:ns:xmpp-streams'>"
	               "cb2.example:5347</see-other-host></stream:error>",
	    0);
	ck_assert_int_eq(u.end.see_other_host, 1);
	ck_assert_str_eq(
	    u.text, "stream error from cb1.example:5347: see-other-host cb2.example:5347");
}
END_TEST

/* Freed from inside the first stanza: nothing more is reported, nothing leaks. */
START_TEST(test_free_inside_stanza)
{
	struct user u;

	memset(&u, 0, sizeof(u));
	u.free_at_stanza = 1;
	session(
	    &u, HEADER("abc") "<handshake/><message id='1'/><message id='2'/></stream:stream>", 0);
	ck_assert_int_eq(u.authenticated, 1);
	ck_assert_int_eq(u.stanzas, 1);
	ck_assert_int_eq(u.ended, 0);
}
END_TEST

START_TEST(test_stream_end_after_authentication)
{
	struct user u;

	memset(&u, 0, sizeof(u));
	session(&u, HEADER("abc") "<handshake/><message/></stream:stream>", 0);
	ck_assert_int_eq(u.stanzas, 1);
	ck_assert_int_eq(u.end.how, CONNECT_STREAM_END);
	ck_assert_int_eq(u.end.phase, CONNECT_SESSION);
	ck_assert_str_eq(u.end.code, "closed");
	ck_assert_str_eq(u.text, "cb1.example:5347 (127.0.0.1) closed the stream");
}
END_TEST

START_TEST(test_refused)
{
	struct user u;

	memset(&u, 0, sizeof(u));
	session(&u, "", 1);
	ck_assert_int_eq(u.end.how, CONNECT_REFUSED);
	ck_assert_str_eq(u.end.code, "connect");
	ck_assert_str_eq(
	    u.text, "cannot connect to cb1.example:5347 (127.0.0.1): Connection refused");
}
END_TEST

/* io_connect_from: the connection comes from the source asked for (the cluster's links). */
START_TEST(test_io_connect_from)
{
	struct loop *l = loop_new();
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	struct peer pe;
	struct io *io;
	char ip[INET_ADDRSTRLEN];
	int s;

	peer_start(&pe, l, "");
	loop_del(l, pe.lf); /* accepted here, not by the loop */
	pe.lf = NULL;
	io = io_connect_from(l, "127.0.0.2", "127.0.0.1", pe.port, 4096, &peer_io, &pe);
	ck_assert_ptr_nonnull(io);
	ck_assert_int_ge(s = accept(pe.lfd, (struct sockaddr *)&sin, &len), 0);
	ck_assert_str_eq(inet_ntop(AF_INET, &sin.sin_addr, ip, sizeof(ip)), "127.0.0.2");
	close(s);
	io_free(io);
	/* Not an address of this host: refused before any packet, with the reason. */
	errno = 0;
	ck_assert_ptr_null(
	    io_connect_from(l, "192.0.2.1", "127.0.0.1", pe.port, 4096, &peer_io, &pe));
	ck_assert_int_eq(errno, EADDRNOTAVAIL);
	/* Another family than the destination's: the kernel's choice, as io_connect. */
	io = io_connect_from(l, "::1", "127.0.0.1", pe.port, 4096, &peer_io, &pe);
	ck_assert_ptr_nonnull(io);
	ck_assert_int_ge(s = accept(pe.lfd, (struct sockaddr *)&sin, &len), 0);
	ck_assert_str_eq(inet_ntop(AF_INET, &sin.sin_addr, ip, sizeof(ip)), "127.0.0.1");
	close(s);
	io_free(io);
	close(pe.lfd);
	loop_free(l);
}
END_TEST

/*
 * RFC 8305: 127.0.0.2 refuses (the peer listens on 127.0.0.1 only), and the
 * next attempt starts at once, not after the 250 ms Connection Attempt Delay.
 */
START_TEST(test_race_refused_then_next)
{
	const char *const ips[] = {"127.0.0.2", "127.0.0.1", NULL};
	struct user u;
	uint64_t t0 = util_now_ms();

	memset(&u, 0, sizeof(u));
	session_at(&u, HEADER("abc") "<handshake/></stream:stream>", 0, ips);
	ck_assert_int_eq(u.authenticated, 1);
	ck_assert_str_eq(u.attempts, "S:127.0.0.2 F:127.0.0.2 S:127.0.0.1 W:127.0.0.1");
	ck_assert_str_eq(u.text, "cb1.example:5347 (127.0.0.1) closed the stream");
	ck_assert_uint_lt(util_now_ms() - t0, 200);
}
END_TEST

START_TEST(test_race_all_refused)
{
	const char *const ips[] = {"127.0.0.2", "127.0.0.3", NULL};
	struct user u;

	memset(&u, 0, sizeof(u));
	session_at(&u, "", 1, ips);
	ck_assert_int_eq(u.end.how, CONNECT_REFUSED);
	ck_assert_int_eq(u.end.phase, CONNECT_TCP);
	ck_assert_str_eq(u.end.code, "connect");
	ck_assert_str_eq(u.attempts, "S:127.0.0.2 F:127.0.0.2 S:127.0.0.3 F:127.0.0.3");
	ck_assert_str_eq(u.text, "cannot connect to cb1.example:5347 at any address: 127.0.0.2 "
	                         "(Connection refused), 127.0.0.3 (Connection refused)");
}
END_TEST

/* Freed from inside the race's WON: nothing more is reported, nothing leaks. */
START_TEST(test_race_free_inside_won)
{
	const char *const ips[] = {"127.0.0.2", "127.0.0.1", NULL};
	struct user u;

	memset(&u, 0, sizeof(u));
	u.free_at_won = 1;
	session_at(&u, HEADER("abc") "<handshake/>", 0, ips);
	ck_assert_str_eq(u.attempts, "S:127.0.0.2 F:127.0.0.2 S:127.0.0.1 W:127.0.0.1");
	ck_assert_int_eq(u.headers, 0);
	ck_assert_int_eq(u.ended, 0);
}
END_TEST

START_TEST(test_no_address)
{
	struct loop *l = loop_new();
	struct connect_params p;

	memset(&p, 0, sizeof(p));
	p.server = "cb1.example:5347";
	p.component = "bridge.example";
	ck_assert_ptr_null(connect_new(l, &p, &user_handler, NULL));
	loop_free(l);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("connect");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_not_authorized);
	tcase_add_test(tc, test_no_id_then_error);
	tcase_add_test(tc, test_no_id_then_stanza);
	tcase_add_test(tc, test_see_other_host);
	tcase_add_test(tc, test_free_inside_stanza);
	tcase_add_test(tc, test_stream_end_after_authentication);
	tcase_add_test(tc, test_refused);
	tcase_add_test(tc, test_io_connect_from);
	tcase_add_test(tc, test_race_refused_then_next);
	tcase_add_test(tc, test_race_all_refused);
	tcase_add_test(tc, test_race_free_inside_won);
	tcase_add_test(tc, test_no_address);
	suite_add_tcase(s, tc);
	return unit_run(s);
}

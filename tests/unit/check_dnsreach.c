/*
 * dnsreach: the question and reply packets, resolv.conf's servers, the
 * words dns.c puts on a SERVFAIL, and one question each to a UDP server on
 * loopback that answers and to one that does not.
 */
#include <sys/socket.h>

#include <netinet/in.h>

#include <unistd.h>

#include "dns.h"
#include "dnsreach.h"
#include "loop.h"
#include "unit.h"

START_TEST(test_query)
{
	static const unsigned char want[] = {0x12, 0x34, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0, 2, 'c',
	    'b', 4, 't', 'e', 's', 't', 0, 0, 33, 0, 1};
	unsigned char buf[512];

	ck_assert_uint_eq(dnsreach_query(buf, sizeof(buf), 0x1234, "cb.test", 33), sizeof(want));
	ck_assert_mem_eq(buf, want, sizeof(want));
	/* A trailing dot is the same name. */
	ck_assert_uint_eq(dnsreach_query(buf, sizeof(buf), 0x1234, "cb.test.", 33), sizeof(want));
	ck_assert_mem_eq(buf, want, sizeof(want));
}
END_TEST

START_TEST(test_query_refused)
{
	unsigned char buf[512];
	char label[70];

	memset(label, 'a', 64);
	label[64] = '\0';
	ck_assert_uint_eq(dnsreach_query(buf, sizeof(buf), 1, "", 1), 0);
	ck_assert_uint_eq(dnsreach_query(buf, sizeof(buf), 1, "a..b", 1), 0);
	ck_assert_uint_eq(dnsreach_query(buf, sizeof(buf), 1, label, 1), 0);
	ck_assert_uint_eq(dnsreach_query(buf, 20, 1, "cb.tptac9.test", 1), 0);
}
END_TEST

START_TEST(test_reply)
{
	unsigned char r[12] = {0x12, 0x34, 0x81, 0x82};
	int rcode = -1;

	ck_assert_int_eq(dnsreach_reply(r, sizeof(r), 0x1234, &rcode), 0);
	ck_assert_int_eq(rcode, 2);
	ck_assert_int_eq(dnsreach_reply(r, sizeof(r), 0x1235, &rcode), -1);
	ck_assert_int_eq(dnsreach_reply(r, 11, 0x1234, &rcode), -1);
	r[2] = 0x01; /* a question, not a response */
	ck_assert_int_eq(dnsreach_reply(r, sizeof(r), 0x1234, &rcode), -1);
}
END_TEST

START_TEST(test_resolv_conf)
{
	char out[DNSREACH_MAX][DNSREACH_ADDR_MAX];
	const char *text = "# generated\n"
	                   "search example.org\n"
	                   "nameserver 192.0.2.1\n"
	                   "options edns0\n"
	                   "  nameserver\t2001:db8::53 # the second\n"
	                   ";nameserver 192.0.2.9\n"
	                   "nameserver 192.0.2.3\n"
	                   "nameserver 192.0.2.4\n";

	ck_assert_int_eq(dnsreach_resolv_conf(text, out, DNSREACH_MAX), 3);
	ck_assert_str_eq(out[0], "192.0.2.1");
	ck_assert_str_eq(out[1], "2001:db8::53");
	ck_assert_str_eq(out[2], "192.0.2.3");
	ck_assert_int_eq(dnsreach_resolv_conf("search x\n", out, DNSREACH_MAX), 0);
}
END_TEST

START_TEST(test_words)
{
	struct dnsreach_result none = {.answered = 0, .servers = "127.0.0.1@53"};
	struct dnsreach_result two = {.answered = 0, .servers = "192.0.2.1@53, 192.0.2.3@53"};
	struct dnsreach_result said = {.answered = 1, .rcode = 2, .servers = "127.0.0.1@53"};
	struct dnsreach_result fine = {.answered = 1, .rcode = 0, .servers = "127.0.0.1@53"};
	char why[DNS_WHY_MAX];

	snprintf(why, sizeof(why), "x.test SRV: SERVFAIL (server failure)");
	dns_reach_words(why, sizeof(why), &none);
	ck_assert_str_eq(why, "x.test SRV: no answer from the DNS server 127.0.0.1@53 (it is "
	                      "down, or the network to it drops the packets)");
	snprintf(why, sizeof(why), "x.test SRV: SERVFAIL (server failure)");
	dns_reach_words(why, sizeof(why), &two);
	ck_assert_ptr_nonnull(strstr(why, "no answer from the DNS servers 192.0.2.1@53, "));
	snprintf(why, sizeof(why), "x.test A: SERVFAIL (server failure)");
	dns_reach_words(why, sizeof(why), &said);
	ck_assert_str_eq(
	    why, "x.test A: SERVFAIL (server failure) from the DNS server 127.0.0.1@53");
	/* The server answers now: what libunbound said stands. */
	snprintf(why, sizeof(why), "x.test A: SERVFAIL (server failure)");
	dns_reach_words(why, sizeof(why), &fine);
	ck_assert_str_eq(why, "x.test A: SERVFAIL (server failure)");
	snprintf(why, sizeof(why), "x.test: NXDOMAIN (no such name)");
	dns_reach_words(why, sizeof(why), &none);
	ck_assert_str_eq(why, "x.test: NXDOMAIN (no such name)");
}
END_TEST

/* The shell, against a UDP socket on loopback. */

static struct dnsreach_result got;
static int calls;

static void
reached(void *arg, const struct dnsreach_result *r)
{
	(void)arg;
	got = *r;
	calls++;
}

static int
udp_server(char *spec, size_t len)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sin);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	snprintf(spec, len, "127.0.0.1@%d", ntohs(sin.sin_port));
	return fd;
}

/* Run the loop until the callback came or ms passed. */
static void
run_until_called(struct loop *l, int ms)
{
	int i;

	for (i = 0; i < ms / 10 && calls == 0; i++)
		loop_run_once(l, 10);
}

START_TEST(test_silent_server)
{
	struct loop *l = loop_new();
	char spec[64], want[80];
	int fd = udp_server(spec, sizeof(spec));

	calls = 0;
	ck_assert_ptr_nonnull(dnsreach_start(l, spec, "cb.test", 33, 100, reached, NULL));
	run_until_called(l, 2000);
	ck_assert_int_eq(calls, 1);
	ck_assert_int_eq(got.answered, 0);
	snprintf(want, sizeof(want), "%s", spec);
	ck_assert_str_eq(got.servers, want);
	close(fd);
	loop_free(l);
}
END_TEST

START_TEST(test_answering_server)
{
	struct loop *l = loop_new();
	unsigned char buf[512];
	struct sockaddr_in peer;
	socklen_t pl = sizeof(peer);
	char spec[64];
	int fd = udp_server(spec, sizeof(spec));
	ssize_t n;

	calls = 0;
	ck_assert_ptr_nonnull(dnsreach_start(l, spec, "cb.test", 33, 2000, reached, NULL));
	n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&peer, &pl);
	ck_assert_int_gt(n, 12);
	buf[2] |= 0x80;
	buf[3] = 0x80 | 2;
	ck_assert_int_eq(sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&peer, pl), n);
	run_until_called(l, 2000);
	ck_assert_int_eq(calls, 1);
	ck_assert_int_eq(got.answered, 1);
	ck_assert_int_eq(got.rcode, 2);
	ck_assert_str_eq(got.servers, spec);
	close(fd);
	loop_free(l);
}
END_TEST

START_TEST(test_cancel)
{
	struct loop *l = loop_new();
	struct dnsreach *r;
	char spec[64];
	int fd = udp_server(spec, sizeof(spec));

	calls = 0;
	r = dnsreach_start(l, spec, "cb.test", 33, 20, reached, NULL);
	ck_assert_ptr_nonnull(r);
	dnsreach_cancel(r);
	run_until_called(l, 200);
	ck_assert_int_eq(calls, 0);
	/* Nothing to ask: the caller keeps what it knows. */
	ck_assert_ptr_null(dnsreach_start(l, "not-an-address", "cb.test", 33, 20, reached, NULL));
	close(fd);
	loop_free(l);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("dnsreach");
	TCase *tc = tcase_create("dnsreach");

	tcase_add_test(tc, test_query);
	tcase_add_test(tc, test_query_refused);
	tcase_add_test(tc, test_reply);
	tcase_add_test(tc, test_resolv_conf);
	tcase_add_test(tc, test_words);
	tcase_add_test(tc, test_silent_server);
	tcase_add_test(tc, test_answering_server);
	tcase_add_test(tc, test_cancel);
	suite_add_tcase(s, tc);
	return unit_run(s);
}

/*
 * Unit tests for srv.c (SRV rdata parsing, RFC 2782 ordering) and for the
 * pure half of dns.c (turning libunbound's answers into results). The rdata
 * below was captured from libunbound 1.17 asking unbound for the records of
 * NOTES.md's test zone.
 */
#include <arpa/inet.h>
#include <sys/socket.h>

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unbound.h>

#include "dns.h"
#include "srv.h"
#include "util.h"
#include "unit.h"

/* Each literal's terminating NUL is the root label that ends the target. */
/* 10 60 5347 a.tptac9.test. */
static const unsigned char rr_a[] = "\x00\x0a\x00\x3c\x14\xe3\x01"
                                    "a\x06tptac9\x04test";
/* 10 30 5348 b.tptac9.test. */
static const unsigned char rr_b[] = "\x00\x0a\x00\x1e\x14\xe4\x01"
                                    "b\x06tptac9\x04test";
/* 20 0 5347 c.tptac9.test. */
static const unsigned char rr_c[] = "\x00\x14\x00\x00\x14\xe3\x01"
                                    "c\x06tptac9\x04test";
/* 0 0 0 . (the service is not offered) */
static const unsigned char rr_null[] = {0, 0, 0, 0, 0, 0, 0};

#define SRVNAME "_xmpp-component._tcp.tptac9.test"

/*
 * A seeded generator (xorshift32) so the statistics are reproducible. Hot
 * loops test with plain if: every passing ck_assert records its location,
 * which is slow over millions of calls.
 */
static uint32_t
test_rnd(void *arg, uint32_t bound)
{
	uint32_t *x = arg;

	if (bound == 0)
		ck_abort_msg("random number asked for with bound 0");
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return (uint32_t)(((uint64_t)*x * bound) >> 32);
}

static struct srv_rr
mkrr(uint16_t priority, uint16_t weight, uint16_t port, const char *target)
{
	struct srv_rr rr;

	memset(&rr, 0, sizeof(rr));
	rr.priority = priority;
	rr.weight = weight;
	rr.port = port;
	strcpy(rr.target, target);
	return rr;
}

/* Build rdata "1 2 3" + the given wire name. */
static size_t
mkrdata(unsigned char *buf, const unsigned char *name, size_t namelen)
{
	static const unsigned char fixed[] = {0, 1, 0, 2, 0, 3};

	memcpy(buf, fixed, sizeof(fixed));
	memcpy(buf + sizeof(fixed), name, namelen);
	return sizeof(fixed) + namelen;
}

static int
parse_name(const unsigned char *name, size_t namelen, struct srv_rr *rr)
{
	unsigned char buf[600];

	return srv_parse_rdata(buf, mkrdata(buf, name, namelen), rr);
}

START_TEST(test_parse_captured)
{
	struct srv_rr rr;

	ck_assert_int_eq(srv_parse_rdata(rr_a, sizeof(rr_a), &rr), 0);
	ck_assert_uint_eq(rr.priority, 10);
	ck_assert_uint_eq(rr.weight, 60);
	ck_assert_uint_eq(rr.port, 5347);
	ck_assert_str_eq(rr.target, "a.tptac9.test");
	ck_assert_uint_eq(rr.ttl, 0);
	ck_assert_int_eq(srv_parse_rdata(rr_c, sizeof(rr_c), &rr), 0);
	ck_assert_uint_eq(rr.priority, 20);
	ck_assert_uint_eq(rr.weight, 0);
	ck_assert_str_eq(rr.target, "c.tptac9.test");
}
END_TEST

START_TEST(test_parse_high_values)
{
	static const unsigned char rd[] = {0xff, 0xff, 0xff, 0xfe, 0xff, 0xfd, 1, 'X', 0};
	struct srv_rr rr;

	ck_assert_int_eq(srv_parse_rdata(rd, sizeof(rd), &rr), 0);
	ck_assert_uint_eq(rr.priority, 65535);
	ck_assert_uint_eq(rr.weight, 65534);
	ck_assert_uint_eq(rr.port, 65533);
	ck_assert_str_eq(rr.target, "X");
}
END_TEST

START_TEST(test_parse_root)
{
	struct srv_rr rr;

	ck_assert_int_eq(srv_parse_rdata(rr_null, sizeof(rr_null), &rr), 0);
	ck_assert_str_eq(rr.target, ".");
	ck_assert_uint_eq(rr.port, 0);
}
END_TEST

START_TEST(test_parse_truncated)
{
	struct srv_rr rr;
	size_t len;

	for (len = 0; len < sizeof(rr_a); len++)
		ck_assert_msg(srv_parse_rdata(rr_a, len, &rr) == -1, "accepted %zu of %zu bytes",
		    len, sizeof(rr_a));
	for (len = 0; len < sizeof(rr_null); len++)
		ck_assert_int_eq(srv_parse_rdata(rr_null, len, &rr), -1);
}
END_TEST

START_TEST(test_parse_trailing)
{
	unsigned char buf[64];
	struct srv_rr rr;

	memcpy(buf, rr_a, sizeof(rr_a));
	buf[sizeof(rr_a)] = 0;
	ck_assert_int_eq(srv_parse_rdata(buf, sizeof(rr_a) + 1, &rr), -1);
	buf[sizeof(rr_a)] = 1;
	ck_assert_int_eq(srv_parse_rdata(buf, sizeof(rr_a) + 1, &rr), -1);
}
END_TEST

START_TEST(test_parse_pointer_and_label_types)
{
	static const unsigned char ptr[] = {0xc0, 0x0c};
	static const unsigned char after[] = {1, 'a', 0xc0, 0x0c};
	static const unsigned char ext40[] = {0x41, 'a', 0};
	static const unsigned char ext80[] = {0x81, 'a', 0};
	struct srv_rr rr;

	ck_assert_int_eq(parse_name(ptr, sizeof(ptr), &rr), -1);
	ck_assert_int_eq(parse_name(after, sizeof(after), &rr), -1);
	ck_assert_int_eq(parse_name(ext40, sizeof(ext40), &rr), -1);
	ck_assert_int_eq(parse_name(ext80, sizeof(ext80), &rr), -1);
}
END_TEST

START_TEST(test_parse_label_past_end)
{
	static const unsigned char name[] = {5, 'a', 'b', 0};
	struct srv_rr rr;

	ck_assert_int_eq(parse_name(name, sizeof(name), &rr), -1);
}
END_TEST

START_TEST(test_parse_characters)
{
	static const char good[] = "Az09-_";
	static const char bad[] = {
	    ' ', '.', '*', '/', '\\', '"', '@', ':', '\0', '\n', '\x7f', (char)0x80, (char)0xff};
	unsigned char name[4] = {1, 'x', 0};
	struct srv_rr rr;
	size_t i;

	for (i = 0; i < strlen(good); i++) {
		name[1] = (unsigned char)good[i];
		ck_assert_int_eq(parse_name(name, 3, &rr), 0);
		ck_assert_int_eq(rr.target[0], good[i]);
		ck_assert_int_eq(rr.target[1], '\0');
	}
	for (i = 0; i < sizeof(bad); i++) {
		name[1] = (unsigned char)bad[i];
		ck_assert_msg(
		    parse_name(name, 3, &rr) == -1, "accepted byte 0x%02x", (unsigned char)bad[i]);
	}
}
END_TEST

/* Labels of the given lengths, in wire form, into buf; returns its length. */
static size_t
mkname(unsigned char *buf, const size_t *labels, size_t n)
{
	size_t i, off = 0;

	for (i = 0; i < n; i++) {
		buf[off++] = (unsigned char)labels[i];
		memset(buf + off, 'a' + (int)i, labels[i]);
		off += labels[i];
	}
	buf[off++] = 0;
	return off;
}

START_TEST(test_parse_lengths)
{
	static const size_t max[] = {63, 63, 63, 61};  /* 255 octets */
	static const size_t over[] = {63, 63, 63, 62}; /* 256 octets */
	static const size_t label64[] = {64};
	static const size_t label63[] = {63};
	unsigned char name[600];
	struct srv_rr rr;
	size_t len;

	len = mkname(name, max, 4);
	ck_assert_uint_eq(len, 255);
	ck_assert_int_eq(parse_name(name, len, &rr), 0);
	ck_assert_uint_eq(strlen(rr.target), 253);
	len = mkname(name, over, 4);
	ck_assert_int_eq(parse_name(name, len, &rr), -1);
	len = mkname(name, label63, 1);
	ck_assert_int_eq(parse_name(name, len, &rr), 0);
	ck_assert_uint_eq(strlen(rr.target), 63);
	len = mkname(name, label64, 1);
	ck_assert_int_eq(parse_name(name, len, &rr), -1);
}
END_TEST

START_TEST(test_parse_empty_label_inside)
{
	/* A 0 label ends the name: what follows is trailing garbage. */
	static const unsigned char name[] = {1, 'a', 0, 1, 'b', 0};
	struct srv_rr rr;

	ck_assert_int_eq(parse_name(name, sizeof(name), &rr), -1);
}
END_TEST

START_TEST(test_is_null)
{
	struct srv_rr rrs[2];

	rrs[0] = mkrr(0, 0, 0, ".");
	rrs[1] = mkrr(10, 10, 5347, "a.test");
	ck_assert_int_eq(srv_is_null(rrs, 1), 1);
	ck_assert_int_eq(srv_is_null(rrs, 2), 0);
	ck_assert_int_eq(srv_is_null(rrs, 0), 0);
	ck_assert_int_eq(srv_is_null(rrs + 1, 1), 0);
}
END_TEST

/* Random record sets: priorities ascend, every record appears once. */
START_TEST(test_order_invariants)
{
	struct srv_rr rrs[40];
	size_t order[40], seen[40], i, n, got;
	uint32_t seed = 12345;
	int round;
	char target[32];

	for (round = 0; round < 2000; round++) {
		n = test_rnd(&seed, 40) + 1;
		for (i = 0; i < n; i++) {
			snprintf(target, sizeof(target), "n%zu.test", i);
			rrs[i] = mkrr((uint16_t)(test_rnd(&seed, 4) * 10),
			    (uint16_t)(test_rnd(&seed, 3) == 0 ? 0 : test_rnd(&seed, 65536)), 5347,
			    target);
		}
		got = srv_order(rrs, n, test_rnd, &seed, order);
		ck_assert_uint_eq(got, n);
		memset(seen, 0, sizeof(seen));
		for (i = 0; i < n; i++) {
			if (order[i] >= n || seen[order[i]])
				ck_abort_msg(
				    "round %d: index %zu twice or out of range", round, order[i]);
			seen[order[i]] = 1;
			if (i > 0 && rrs[order[i - 1]].priority > rrs[order[i]].priority)
				ck_abort_msg("round %d: priorities out of order", round);
		}
	}
}
END_TEST

START_TEST(test_order_priority_beats_weight)
{
	struct srv_rr rrs[3];
	size_t order[3];
	uint32_t seed = 1;
	int i;

	rrs[0] = mkrr(30, 65535, 1, "c.test");
	rrs[1] = mkrr(10, 0, 1, "a.test");
	rrs[2] = mkrr(20, 65535, 1, "b.test");
	for (i = 0; i < 100; i++) {
		ck_assert_uint_eq(srv_order(rrs, 3, test_rnd, &seed, order), 3);
		ck_assert_uint_eq(order[0], 1);
		ck_assert_uint_eq(order[1], 2);
		ck_assert_uint_eq(order[2], 0);
	}
}
END_TEST

/* How often each of n records comes first, over draws orderings. */
static void
first_counts(const struct srv_rr *rrs, size_t n, int draws, uint32_t seed, int *counts)
{
	size_t order[16];
	int i;

	memset(counts, 0, n * sizeof(*counts));
	for (i = 0; i < draws; i++) {
		if (srv_order(rrs, n, test_rnd, &seed, order) != n)
			ck_abort_msg("a record went missing");
		counts[order[0]]++;
	}
}

/*
 * Over 100000 draws a frequency near 0.5 has a standard deviation of 0.0016:
 * 0.005 is three of them, and the seeds are fixed, so the test is exact.
 */
#define DRAWS 100000
#define TOLERANCE 0.005

static void
assert_frequency(int count, double expect)
{
	double got = (double)count / DRAWS;

	ck_assert_msg(got > expect - TOLERANCE && got < expect + TOLERANCE,
	    "frequency %.4f, expected %.4f", got, expect);
}

START_TEST(test_order_weights)
{
	struct srv_rr rrs[3];
	int counts[3];

	rrs[0] = mkrr(10, 10, 1, "c.test");
	rrs[1] = mkrr(10, 60, 1, "a.test");
	rrs[2] = mkrr(10, 30, 1, "b.test");
	first_counts(rrs, 3, DRAWS, 42, counts);
	/*
	 * RFC 2782 draws from [0, sum] inclusive, running sums 10, 70, 100: the
	 * first record in the list also wins on 0, 11 chances in 101.
	 */
	assert_frequency(counts[0], 11.0 / 101);
	assert_frequency(counts[1], 60.0 / 101);
	assert_frequency(counts[2], 30.0 / 101);
}
END_TEST

/* After the first pick, the rest are weighted among themselves. */
START_TEST(test_order_second_choice)
{
	struct srv_rr rrs[3];
	size_t order[3];
	uint32_t seed = 7;
	int i, b_after_a = 0, a_first = 0;

	rrs[0] = mkrr(10, 60, 1, "a.test");
	rrs[1] = mkrr(10, 30, 1, "b.test");
	rrs[2] = mkrr(10, 10, 1, "c.test");
	for (i = 0; i < DRAWS; i++) {
		srv_order(rrs, 3, test_rnd, &seed, order);
		if (order[0] != 0)
			continue;
		a_first++;
		if (order[1] == 1)
			b_after_a++;
	}
	/* Of b and c (sum 40): b wins on 0..30, 31 chances in 41. */
	ck_assert_msg((double)b_after_a / a_first > 31.0 / 41 - TOLERANCE &&
	                  (double)b_after_a / a_first < 31.0 / 41 + TOLERANCE,
	    "b second in %d of %d", b_after_a, a_first);
}
END_TEST

START_TEST(test_order_weight_zero_rare_not_never)
{
	struct srv_rr rrs[2];
	int counts[2];

	rrs[0] = mkrr(10, 100, 1, "heavy.test");
	rrs[1] = mkrr(10, 0, 1, "zero.test");
	first_counts(rrs, 2, DRAWS, 99, counts);
	ck_assert_int_gt(counts[1], 0);
	assert_frequency(counts[1], 1.0 / 101);
	rrs[0].weight = 10;
	first_counts(rrs, 2, DRAWS, 100, counts);
	assert_frequency(counts[1], 1.0 / 11);
}
END_TEST

START_TEST(test_order_all_zero_uniform)
{
	struct srv_rr rrs[4];
	int counts[4], i;

	rrs[0] = mkrr(5, 0, 1, "a.test");
	rrs[1] = mkrr(5, 0, 1, "b.test");
	rrs[2] = mkrr(5, 0, 1, "c.test");
	rrs[3] = mkrr(5, 0, 1, "d.test");
	first_counts(rrs, 4, DRAWS, 2024, counts);
	for (i = 0; i < 4; i++)
		assert_frequency(counts[i], 0.25);
}
END_TEST

START_TEST(test_order_duplicates)
{
	struct srv_rr rrs[5];
	size_t order[5], n;
	uint32_t seed = 3;

	rrs[0] = mkrr(20, 10, 5347, "a.test");
	rrs[1] = mkrr(10, 10, 5347, "A.Test"); /* same node, lower priority */
	rrs[2] = mkrr(10, 10, 5348, "a.test"); /* another port: another node */
	rrs[3] = mkrr(30, 10, 5347, "b.test");
	rrs[4] = mkrr(30, 10, 5347, "b.test");
	n = srv_order(rrs, 5, test_rnd, &seed, order);
	ck_assert_uint_eq(n, 3);
	ck_assert(order[0] == 1 || order[0] == 2);
	ck_assert(order[1] == 1 || order[1] == 2);
	ck_assert_uint_eq(order[2], 3);
}
END_TEST

START_TEST(test_order_root_target_left_out)
{
	struct srv_rr rrs[3];
	size_t order[3];
	uint32_t seed = 5;

	rrs[0] = mkrr(0, 0, 0, ".");
	rrs[1] = mkrr(10, 0, 5347, "a.test");
	ck_assert_uint_eq(srv_order(rrs, 2, test_rnd, &seed, order), 1);
	ck_assert_uint_eq(order[0], 1);
	ck_assert_uint_eq(srv_order(rrs, 1, test_rnd, &seed, order), 0);
	ck_assert_uint_eq(srv_order(rrs, 0, test_rnd, &seed, order), 0);
}
END_TEST

/* A generator that must not be called: one record needs no choice. */
static uint32_t
no_rnd(void *arg, uint32_t bound)
{
	(void)arg;
	(void)bound;
	ck_abort_msg("random number drawn for a single record");
	return 0;
}

START_TEST(test_order_single)
{
	struct srv_rr rr = mkrr(1, 1, 1, "a.test");
	size_t order[1];

	ck_assert_uint_eq(srv_order(&rr, 1, no_rnd, NULL, order), 1);
	ck_assert_uint_eq(order[0], 0);
}
END_TEST

/*
 * The cap: with the same random numbers, srv_order_max gives the first max
 * entries of srv_order's order, over record sets with every kind of record
 * (weight 0, ".", duplicates).
 */
START_TEST(test_order_max_is_prefix)
{
	static const size_t maxes[] = {0, 1, 2, 5, 32, 300};
	struct srv_rr rrs[300];
	size_t full[300], capped[300], i, m, n, nfull, ncapped;
	uint32_t seed = 777, s1, s2;
	char target[32];
	int round;

	for (round = 0; round < 300; round++) {
		n = test_rnd(&seed, 300) + 1;
		for (i = 0; i < n; i++) {
			snprintf(target, sizeof(target), "n%u.test", test_rnd(&seed, 200));
			rrs[i] = mkrr((uint16_t)test_rnd(&seed, 5),
			    (uint16_t)(test_rnd(&seed, 3) == 0 ? 0 : test_rnd(&seed, 100)), 5347,
			    test_rnd(&seed, 50) == 0 ? "." : target);
		}
		for (m = 0; m < nitems(maxes); m++) {
			s1 = s2 = seed;
			nfull = srv_order(rrs, n, test_rnd, &s1, full);
			ncapped = srv_order_max(rrs, n, maxes[m], test_rnd, &s2, capped);
			if (ncapped != (nfull < maxes[m] ? nfull : maxes[m]))
				ck_abort_msg("round %d, max %zu: %zu placed of %zu", round,
				    maxes[m], ncapped, nfull);
			if (memcmp(full, capped, ncapped * sizeof(*full)) != 0)
				ck_abort_msg("round %d, max %zu: not a prefix", round, maxes[m]);
		}
	}
}
END_TEST

/* Counts the random numbers drawn: one per weighted choice. */
static uint32_t
counting_rnd(void *arg, uint32_t bound)
{
	(*(unsigned *)arg)++;
	return bound / 2;
}

/*
 * 10,000 records of one priority: the first 32 cost 32 choices, where the
 * whole order costs 9,999, so a huge answer does not slow the agent.
 */
START_TEST(test_order_max_work)
{
	enum { N = 10000 };
	struct srv_rr *rrs = calloc(N, sizeof(*rrs));
	size_t *order = calloc(N, sizeof(*order)), i, j;
	unsigned draws = 0;
	char target[32];

	ck_assert_ptr_nonnull(rrs);
	ck_assert_ptr_nonnull(order);
	for (i = 0; i < N; i++) {
		snprintf(target, sizeof(target), "n%zu.test", i);
		rrs[i] = mkrr((uint16_t)(10 + i % 3), (uint16_t)(i % 100), 5347, target);
	}
	ck_assert_uint_eq(srv_order_max(rrs, N, SRV_USE_MAX, counting_rnd, &draws, order), 32);
	ck_assert_uint_eq(draws, 32);
	for (i = 0; i < 32; i++) {
		ck_assert_uint_eq(rrs[order[i]].priority, 10);
		for (j = 0; j < i; j++)
			ck_assert_uint_ne(order[i], order[j]);
	}
	draws = 0;
	ck_assert_uint_eq(srv_order(rrs, N, counting_rnd, &draws, order), N);
	ck_assert_uint_eq(draws, N - 3);
	free(rrs);
	free(order);
}
END_TEST

/* libunbound results built by hand, as ub_resolve_async delivers them. */
struct fake {
	struct ub_result res;
	char *data[8];
	int len[8];
};

static struct ub_result *
fake_result(struct fake *f, int rcode, const unsigned char **rdata, const size_t *lens, size_t n)
{
	size_t i;

	memset(f, 0, sizeof(*f));
	for (i = 0; i < n; i++) {
		f->data[i] = (char *)rdata[i];
		f->len[i] = (int)lens[i];
	}
	f->res.data = f->data;
	f->res.len = f->len;
	f->res.rcode = rcode;
	f->res.havedata = n > 0;
	f->res.nxdomain = rcode == 3;
	f->res.ttl = 60;
	return &f->res;
}

START_TEST(test_dns_parse_addr)
{
	static const unsigned char v4[] = {127, 0, 0, 2};
	static const unsigned char v6[] = {
	    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
	char ip[DNS_IP_MAX];

	ck_assert_int_eq(dns_parse_addr(1, v4, 4, ip, sizeof(ip)), 0);
	ck_assert_str_eq(ip, "127.0.0.2");
	ck_assert_int_eq(dns_parse_addr(28, v6, 16, ip, sizeof(ip)), 0);
	ck_assert_str_eq(ip, "2001:db8::1");
	ck_assert_int_eq(dns_parse_addr(1, v4, 3, ip, sizeof(ip)), -1);
	ck_assert_int_eq(dns_parse_addr(1, v6, 16, ip, sizeof(ip)), -1);
	ck_assert_int_eq(dns_parse_addr(28, v4, 4, ip, sizeof(ip)), -1);
	ck_assert_int_eq(dns_parse_addr(33, v4, 4, ip, sizeof(ip)), -1);
	ck_assert_int_eq(dns_parse_addr(1, v4, 4, ip, 4), -1);
}
END_TEST

START_TEST(test_dns_srv_ok)
{
	const unsigned char *rd[] = {rr_b, rr_c, rr_a};
	const size_t len[] = {sizeof(rr_b), sizeof(rr_c), sizeof(rr_a)};
	struct dns_srv_result r;
	struct fake f;

	dns_srv_result_make(SRVNAME, 0, fake_result(&f, 0, rd, len, 3), &r);
	ck_assert_int_eq(r.status, DNS_OK);
	ck_assert_str_eq(r.why, "");
	ck_assert_str_eq(r.name, SRVNAME);
	ck_assert_uint_eq(r.n, 3);
	ck_assert_uint_eq(r.nbad, 0);
	ck_assert_uint_eq(r.ttl, 60);
	ck_assert_str_eq(r.rrs[0].target, "b.tptac9.test");
	ck_assert_uint_eq(r.rrs[0].port, 5348);
	ck_assert_uint_eq(r.rrs[2].ttl, 60);
	dns_srv_result_clear(&r);
	ck_assert_ptr_null(r.rrs);
}
END_TEST

START_TEST(test_dns_srv_nxdomain)
{
	struct dns_srv_result r;
	struct fake f;

	dns_srv_result_make(SRVNAME, 0, fake_result(&f, 3, NULL, NULL, 0), &r);
	ck_assert_int_eq(r.status, DNS_NXDOMAIN);
	ck_assert_str_eq(r.why, SRVNAME ": NXDOMAIN (no such domain)");
	dns_srv_result_clear(&r);
}
END_TEST

START_TEST(test_dns_srv_nodata)
{
	struct dns_srv_result r;
	struct fake f;

	dns_srv_result_make(SRVNAME, 0, fake_result(&f, 0, NULL, NULL, 0), &r);
	ck_assert_int_eq(r.status, DNS_NODATA);
	ck_assert_str_eq(r.why, "no SRV records for " SRVNAME);
	dns_srv_result_clear(&r);
}
END_TEST

START_TEST(test_dns_srv_servfail)
{
	struct dns_srv_result r;
	struct fake f;
	struct ub_result *res;

	/* What libunbound gave for an unparsable answer: rcode 2, data NULL. */
	res = fake_result(&f, 2, NULL, NULL, 0);
	res->data = NULL;
	dns_srv_result_make(SRVNAME, 0, res, &r);
	ck_assert_int_eq(r.status, DNS_SERVFAIL);
	ck_assert_str_eq(r.why, SRVNAME " SRV: SERVFAIL (server failure)");
	dns_srv_result_clear(&r);
	dns_srv_result_make(SRVNAME, 0, fake_result(&f, 5, NULL, NULL, 0), &r);
	ck_assert_int_eq(r.status, DNS_SERVFAIL);
	ck_assert_str_eq(r.why, SRVNAME " SRV: REFUSED (query refused)");
	dns_srv_result_clear(&r);
	dns_srv_result_make(SRVNAME, 0, fake_result(&f, 9, NULL, NULL, 0), &r);
	ck_assert_str_eq(r.why, SRVNAME " SRV: error rcode 9");
	dns_srv_result_clear(&r);
	dns_srv_result_make(SRVNAME, UB_NOMEM, NULL, &r);
	ck_assert_int_eq(r.status, DNS_SERVFAIL);
	ck_assert_str_eq(r.why, SRVNAME " SRV: resolver error (out of memory)");
	dns_srv_result_clear(&r);
}
END_TEST

START_TEST(test_dns_srv_bogus)
{
	const unsigned char *rd[] = {rr_a};
	const size_t len[] = {sizeof(rr_a)};
	struct dns_srv_result r;
	struct ub_result *res;
	struct fake f;

	/* libunbound hands over the data of a bogus answer too. */
	res = fake_result(&f, 0, rd, len, 1);
	res->bogus = 1;
	res->why_bogus = "validation failure <" SRVNAME ". SRV IN>: no DNSKEY rrset from 127.0.0.1";
	dns_srv_result_make(SRVNAME, 0, res, &r);
	ck_assert_int_eq(r.status, DNS_BOGUS);
	ck_assert_uint_eq(r.n, 0);
	/* The query is named once; what to do follows libunbound's reason. */
	ck_assert_str_eq(r.why, "DNSSEC validation failed for " SRVNAME " SRV: no DNSKEY rrset "
	                        "from 127.0.0.1 (the zone has no DNSKEY records: it is not signed, "
	                        "or dns-server strips DNSSEC records)");
	dns_srv_result_clear(&r);
	res->why_bogus = "validation failure <" SRVNAME ". SRV IN>: no keys have a DS with "
	                 "algorithm ECDSAP256SHA256 from 127.0.0.1 for trust anchor tptac9.com. "
	                 "while building chain of trust";
	dns_srv_result_make(SRVNAME, 0, res, &r);
	ck_assert_str_eq(r.why, "DNSSEC validation failed for " SRVNAME " SRV: no keys have a DS "
	                        "with algorithm ECDSAP256SHA256 from 127.0.0.1 for trust anchor "
	                        "tptac9.com. while building chain of trust (the zone's keys do not "
	                        "match the trust anchor: update the trust anchor after a key "
	                        "rollover)");
	dns_srv_result_clear(&r);
	res->why_bogus = NULL;
	dns_srv_result_make(SRVNAME, 0, res, &r);
	ck_assert_str_eq(r.why, "DNSSEC validation failed for " SRVNAME " SRV: bogus answer (check "
	                        "the zone's signatures and the trust anchor)");
	dns_srv_result_clear(&r);
}
END_TEST

START_TEST(test_dns_srv_baddata)
{
	static const unsigned char bad[] = {0, 1, 0, 2, 0, 3, 2};
	const unsigned char *rd[] = {bad, rr_a, bad};
	const size_t len[] = {sizeof(bad), sizeof(rr_a), sizeof(bad)};
	struct dns_srv_result r;
	struct fake f;

	dns_srv_result_make(SRVNAME, 0, fake_result(&f, 0, rd, len, 3), &r);
	ck_assert_int_eq(r.status, DNS_OK);
	ck_assert_uint_eq(r.n, 1);
	ck_assert_uint_eq(r.nbad, 2);
	ck_assert_str_eq(r.rrs[0].target, "a.tptac9.test");
	dns_srv_result_clear(&r);
	dns_srv_result_make(SRVNAME, 0, fake_result(&f, 0, rd, len, 1), &r);
	ck_assert_int_eq(r.status, DNS_BADDATA);
	ck_assert_uint_eq(r.n, 0);
	ck_assert_str_eq(r.why, SRVNAME " SRV: 1 malformed records and no usable one");
	dns_srv_result_clear(&r);
}
END_TEST

START_TEST(test_dns_srv_null_target)
{
	const unsigned char *rd[] = {rr_null};
	const size_t len[] = {sizeof(rr_null)};
	struct dns_srv_result r;
	struct fake f;

	dns_srv_result_make(SRVNAME, 0, fake_result(&f, 0, rd, len, 1), &r);
	ck_assert_int_eq(r.status, DNS_NOSERVICE);
	ck_assert_uint_eq(r.n, 1);
	ck_assert_str_eq(r.rrs[0].target, ".");
	ck_assert_str_eq(r.why, SRVNAME ": the service is not offered (SRV target \".\")");
	dns_srv_result_clear(&r);
}
END_TEST

static const unsigned char a1[] = {127, 0, 0, 1};
static const unsigned char a2[] = {127, 0, 0, 2};
static const unsigned char aaaa1[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};

START_TEST(test_dns_addrs_both)
{
	const unsigned char *rd4[] = {a1, a2}, *rd6[] = {aaaa1};
	const size_t len4[] = {4, 4}, len6[] = {16};
	struct dns_addr_result r;
	struct fake f4, f6;
	struct ub_result *res4, *res6;

	res4 = fake_result(&f4, 0, rd4, len4, 2);
	res6 = fake_result(&f6, 0, rd6, len6, 1);
	res4->ttl = 30;
	res4->secure = 1;
	dns_addr_result_make("b.test", 0, res6, 0, res4, &r);
	ck_assert_int_eq(r.status, DNS_OK);
	ck_assert_uint_eq(r.n, 3);
	ck_assert_str_eq(r.addrs[0].ip, "::1");
	ck_assert_int_eq(r.addrs[0].family, AF_INET6);
	ck_assert_str_eq(r.addrs[1].ip, "127.0.0.1");
	ck_assert_int_eq(r.addrs[1].family, AF_INET);
	ck_assert_str_eq(r.addrs[2].ip, "127.0.0.2");
	ck_assert_uint_eq(r.ttl, 30);
	ck_assert_int_eq(r.secure, 0);
	dns_addr_result_clear(&r);
	res6->secure = 1;
	dns_addr_result_make("b.test", 0, res6, 0, res4, &r);
	ck_assert_int_eq(r.secure, 1);
	dns_addr_result_clear(&r);
}
END_TEST

/* Addresses "6:ip" or "4:ip" into a; their count. */
static size_t
addrs_of(struct dns_addr *a, const char *const *spec)
{
	size_t n;

	for (n = 0; spec[n] != NULL; n++) {
		a[n].family = spec[n][0] == '6' ? AF_INET6 : AF_INET;
		snprintf(a[n].ip, sizeof(a[n].ip), "%s", spec[n] + 2);
	}
	return n;
}

/* The ips of a, space separated, into buf. */
static const char *
ips_of(const struct dns_addr *a, size_t n, char *buf, size_t len)
{
	size_t i, used = 0;

	buf[0] = '\0';
	for (i = 0; i < n; i++)
		used += snprintf(buf + used, len - used, "%s%s", i ? " " : "", a[i].ip);
	return buf;
}

static void
check_interleave(const char *const *spec, const char *want)
{
	struct dns_addr a[8];
	char got[512];
	size_t n = addrs_of(a, spec);

	dns_addr_interleave(a, n);
	ck_assert_str_eq(ips_of(a, n, got, sizeof(got)), want);
}

/* RFC 8305 section 4: the families in turn, the first one's first, each in its order. */
START_TEST(test_dns_addr_interleave)
{
	const char *const two[] = {"6:::1", "4:127.0.0.1", NULL};
	const char *const many[] = {
	    "6:2001:db8::1", "6:2001:db8::2", "6:2001:db8::3", "4:192.0.2.1", "4:192.0.2.2", NULL};
	const char *const more4[] = {
	    "6:2001:db8::1", "4:192.0.2.1", "4:192.0.2.2", "4:192.0.2.3", NULL};
	const char *const v4first[] = {"4:192.0.2.1", "4:192.0.2.2", "6:2001:db8::1", NULL};
	const char *const one[] = {"6:::1", NULL};
	const char *const only4[] = {"4:192.0.2.1", "4:192.0.2.2", NULL};

	check_interleave(two, "::1 127.0.0.1");
	check_interleave(many, "2001:db8::1 192.0.2.1 2001:db8::2 192.0.2.2 2001:db8::3");
	check_interleave(more4, "2001:db8::1 192.0.2.1 192.0.2.2 192.0.2.3");
	check_interleave(v4first, "192.0.2.1 2001:db8::1 192.0.2.2");
	check_interleave(one, "::1");
	check_interleave(only4, "192.0.2.1 192.0.2.2");
	dns_addr_interleave(NULL, 0);
}
END_TEST

/* dns_addrs' result comes interleaved: IPv6, IPv4, then the rest. */
START_TEST(test_dns_addrs_interleaved)
{
	const unsigned char *rd4[] = {a1, a2}, *rd6[] = {aaaa1, aaaa1};
	const size_t len4[] = {4, 4}, len6[] = {16, 16};
	struct dns_addr_result r;
	struct fake f4, f6;
	char got[512];

	dns_addr_result_make("b.test", 0, fake_result(&f6, 0, rd6, len6, 2), 0,
	    fake_result(&f4, 0, rd4, len4, 2), &r);
	ck_assert_str_eq(ips_of(r.addrs, r.n, got, sizeof(got)), "::1 127.0.0.1 ::1 127.0.0.2");
	dns_addr_result_clear(&r);
}
END_TEST

START_TEST(test_dns_addrs_one_family)
{
	const unsigned char *rd4[] = {a1};
	const size_t len4[] = {4};
	struct dns_addr_result r;
	struct fake f4, f6;
	struct ub_result *res6;

	dns_addr_result_make("a.test", 0, fake_result(&f6, 0, NULL, NULL, 0), 0,
	    fake_result(&f4, 0, rd4, len4, 1), &r);
	ck_assert_int_eq(r.status, DNS_OK);
	ck_assert_uint_eq(r.n, 1);
	ck_assert_str_eq(r.addrs[0].ip, "127.0.0.1");
	dns_addr_result_clear(&r);
	/* A failed or bogus AAAA answer does not spoil a good A answer. */
	res6 = fake_result(&f6, 2, NULL, NULL, 0);
	dns_addr_result_make("a.test", 0, res6, 0, fake_result(&f4, 0, rd4, len4, 1), &r);
	ck_assert_int_eq(r.status, DNS_OK);
	ck_assert_uint_eq(r.n, 1);
	dns_addr_result_clear(&r);
	res6 = fake_result(&f6, 0, (const unsigned char *[]){aaaa1}, (const size_t[]){16}, 1);
	res6->bogus = 1;
	dns_addr_result_make("a.test", 0, res6, 0, fake_result(&f4, 0, rd4, len4, 1), &r);
	ck_assert_int_eq(r.status, DNS_OK);
	ck_assert_uint_eq(r.n, 1);
	ck_assert_str_eq(r.addrs[0].ip, "127.0.0.1");
	dns_addr_result_clear(&r);
}
END_TEST

START_TEST(test_dns_addrs_failures)
{
	struct dns_addr_result r;
	struct fake f4, f6;
	struct ub_result *res4;

	dns_addr_result_make("x.test", 0, fake_result(&f6, 0, NULL, NULL, 0), 0,
	    fake_result(&f4, 0, NULL, NULL, 0), &r);
	ck_assert_int_eq(r.status, DNS_NODATA);
	ck_assert_str_eq(r.why, "no A or AAAA records for x.test");
	dns_addr_result_clear(&r);
	dns_addr_result_make("x.test", 0, fake_result(&f6, 3, NULL, NULL, 0), 0,
	    fake_result(&f4, 3, NULL, NULL, 0), &r);
	ck_assert_int_eq(r.status, DNS_NXDOMAIN);
	ck_assert_str_eq(r.why, "x.test: NXDOMAIN (no such domain)");
	dns_addr_result_clear(&r);
	dns_addr_result_make("x.test", 0, fake_result(&f6, 0, NULL, NULL, 0), 0,
	    fake_result(&f4, 2, NULL, NULL, 0), &r);
	ck_assert_int_eq(r.status, DNS_SERVFAIL);
	ck_assert_str_eq(r.why, "x.test A: SERVFAIL (server failure)");
	dns_addr_result_clear(&r);
	res4 = fake_result(&f4, 0, (const unsigned char *[]){a1}, (const size_t[]){4}, 1);
	res4->bogus = 1;
	res4->why_bogus = "signature expired";
	dns_addr_result_make("x.test", UB_PIPE, NULL, 0, res4, &r);
	ck_assert_int_eq(r.status, DNS_BOGUS);
	ck_assert_str_eq(r.why, "DNSSEC validation failed for x.test A: signature expired (the "
	                        "zone's signatures are out of date: re-sign the zone, or set this "
	                        "host's clock)");
	ck_assert_uint_eq(r.n, 0);
	dns_addr_result_clear(&r);
}
END_TEST

START_TEST(test_dns_addrs_baddata)
{
	struct dns_addr_result r;
	struct fake f4, f6;

	dns_addr_result_make("x.test", 0, fake_result(&f6, 0, NULL, NULL, 0), 0,
	    fake_result(&f4, 0, (const unsigned char *[]){aaaa1}, (const size_t[]){16}, 1), &r);
	ck_assert_int_eq(r.status, DNS_BADDATA);
	ck_assert_uint_eq(r.nbad, 1);
	ck_assert_str_eq(r.why, "x.test A: no well-formed records");
	dns_addr_result_clear(&r);
}
END_TEST

/* The agent's and probe's sentence names the host once, whatever the why says. */
static void
addr_failure(const char *host, const char *why, const char *expect)
{
	char out[DNS_WHY_MAX + 300];

	dns_addr_failure(host, why, out, sizeof(out));
	ck_assert_str_eq(out, expect);
}

START_TEST(test_dns_addr_failure)
{
	addr_failure("_xmpp-component._tcp.tptac9.com",
	    "_xmpp-component._tcp.tptac9.com: NXDOMAIN (no such domain)",
	    "no DNS A or AAAA records for _xmpp-component._tcp.tptac9.com (NXDOMAIN (no such "
	    "domain))");
	addr_failure("x.test", "x.test A: SERVFAIL (server failure)",
	    "no DNS A or AAAA records for x.test (A: SERVFAIL (server failure))");
	addr_failure("x.test", "x.test A: DNSSEC validation failed (signature expired)",
	    "no DNS A or AAAA records for x.test (A: DNSSEC validation failed (signature "
	    "expired))");
	addr_failure(
	    "x.test", "no A or AAAA records for x.test", "no DNS A or AAAA records for x.test");
	addr_failure("x.test", "", "no DNS A or AAAA records for x.test");
	/* Another host's name is not the one the sentence gives. */
	addr_failure("x.test", "x.testing: NXDOMAIN (no such domain)",
	    "no DNS A or AAAA records for x.test (x.testing: NXDOMAIN (no such domain))");
}
END_TEST

START_TEST(test_dns_status_str)
{
	ck_assert_str_eq(dns_status_str(DNS_OK), "OK");
	ck_assert_str_eq(dns_status_str(DNS_NXDOMAIN), "NXDOMAIN");
	ck_assert_str_eq(dns_status_str(DNS_NOSERVICE), "NOSERVICE");
}
END_TEST

START_TEST(test_variants_default_service)
{
	struct srv_variant v[SRV_VARIANT_MAX];
	char text[600];

	ck_assert_uint_eq(srv_variants("_xmpp-component._tcp", "tptac9.test", v), 3);
	ck_assert_str_eq(v[0].name, "_xmpp-component_tcp.tptac9.test");
	ck_assert_str_eq(v[0].why, "the dot between _xmpp-component and _tcp is missing; "
	                           "rename the record");
	ck_assert_str_eq(v[1].name, "_xmpp-client._tcp.tptac9.test");
	ck_assert_ptr_nonnull(strstr(v[1].why, "XMPP client records (port 5222)"));
	ck_assert_ptr_nonnull(strstr(v[1].why, "publish _xmpp-component._tcp records"));
	ck_assert_str_eq(v[2].name, "_xmpp-component._tcp.tptac9.test.tptac9.test");
	ck_assert_ptr_nonnull(strstr(v[2].why, "without the trailing dot"));
	ck_assert_ptr_nonnull(strstr(v[2].why, "_xmpp-component._tcp.tptac9.test. (with the dot)"));
	srv_variant_text(text, sizeof(text), SRVNAME, "NXDOMAIN", &v[0]);
	ck_assert_str_eq(text, "no SRV records for _xmpp-component._tcp.tptac9.test (NXDOMAIN); "
	                       "found _xmpp-component_tcp.tptac9.test instead: the dot between "
	                       "_xmpp-component and _tcp is missing; rename the record");
}
END_TEST

START_TEST(test_variants_other_service)
{
	struct srv_variant v[SRV_VARIANT_MAX];

	/* Not _xmpp-component: no client records to mistake for it. */
	ck_assert_uint_eq(srv_variants("_cb._udp", "example.com.", v), 2);
	ck_assert_str_eq(v[0].name, "_cb_udp.example.com");
	ck_assert_str_eq(v[0].why, "the dot between _cb and _udp is missing; rename the record");
	ck_assert_str_eq(v[1].name, "_cb._udp.example.com.example.com");
	/* The service's case is kept; the client variant is found whatever it. */
	ck_assert_uint_eq(srv_variants("_XMPP-Component._TCP", "a.b", v), 3);
	ck_assert_str_eq(v[1].name, "_xmpp-client._TCP.a.b");
}
END_TEST

START_TEST(test_variants_long_names)
{
	struct srv_variant v[SRV_VARIANT_MAX];
	char domain[260];
	size_t i;

	/* 120 characters: doubled, the name would be longer than 253. */
	for (i = 0; i < 120; i++)
		domain[i] = i % 10 == 9 ? '.' : 'a';
	domain[120] = '\0';
	ck_assert_uint_eq(srv_variants("_xmpp-component._tcp", domain, v), 2);
	ck_assert_uint_eq(strncmp(v[0].name, "_xmpp-component_tcp.", 20), 0);
	ck_assert_uint_eq(strncmp(v[1].name, "_xmpp-client._tcp.", 18), 0);
	/* 234 characters: only the client service's name (252) fits. */
	for (i = 0; i < 234; i++)
		domain[i] = i % 10 == 9 ? '.' : 'a';
	domain[234] = '\0';
	ck_assert_uint_eq(srv_variants("_xmpp-component._tcp", domain, v), 1);
	ck_assert_uint_eq(strncmp(v[0].name, "_xmpp-client._tcp.", 18), 0);
	ck_assert_uint_eq(strlen(v[0].name), 252);
	/* 233: the name without the dot is 253 characters long, and kept. */
	domain[233] = '\0';
	ck_assert_uint_eq(srv_variants("_xmpp-component._tcp", domain, v), 2);
	ck_assert_uint_eq(strlen(v[0].name), 253);
}
END_TEST

START_TEST(test_dns_addr_literal)
{
	struct dns_addr a;

	ck_assert_int_eq(dns_addr_literal("127.0.0.2", &a), 0);
	ck_assert_int_eq(a.family, AF_INET);
	ck_assert_str_eq(a.ip, "127.0.0.2");
	ck_assert_int_eq(dns_addr_literal("2001:DB8:0:0::1", &a), 0);
	ck_assert_int_eq(a.family, AF_INET6);
	ck_assert_str_eq(a.ip, "2001:db8::1");
	ck_assert_int_eq(dns_addr_literal("::ffff:127.0.0.1", &a), 0);
	ck_assert_int_eq(a.family, AF_INET6);
	ck_assert_int_eq(dns_addr_literal("a.tptac9.test", &a), -1);
	ck_assert_int_eq(dns_addr_literal("127.1", &a), -1);
	ck_assert_int_eq(dns_addr_literal("127.0.0.2.", &a), -1);
	ck_assert_int_eq(dns_addr_literal("", &a), -1);
}
END_TEST

static Suite *
srv_suite(void)
{
	Suite *s = suite_create("srv");
	TCase *parse = tcase_create("parse");
	TCase *order = tcase_create("order");
	TCase *dns = tcase_create("dns results");

	tcase_add_test(parse, test_parse_captured);
	tcase_add_test(parse, test_parse_high_values);
	tcase_add_test(parse, test_parse_root);
	tcase_add_test(parse, test_parse_truncated);
	tcase_add_test(parse, test_parse_trailing);
	tcase_add_test(parse, test_parse_pointer_and_label_types);
	tcase_add_test(parse, test_parse_label_past_end);
	tcase_add_test(parse, test_parse_characters);
	tcase_add_test(parse, test_parse_lengths);
	tcase_add_test(parse, test_parse_empty_label_inside);
	tcase_add_test(parse, test_is_null);
	tcase_add_test(parse, test_variants_default_service);
	tcase_add_test(parse, test_variants_other_service);
	tcase_add_test(parse, test_variants_long_names);
	suite_add_tcase(s, parse);

	/* 100000 orderings per test take seconds under valgrind. */
	tcase_set_timeout(order, 60);
	tcase_add_test(order, test_order_invariants);
	tcase_add_test(order, test_order_priority_beats_weight);
	tcase_add_test(order, test_order_weights);
	tcase_add_test(order, test_order_second_choice);
	tcase_add_test(order, test_order_weight_zero_rare_not_never);
	tcase_add_test(order, test_order_all_zero_uniform);
	tcase_add_test(order, test_order_duplicates);
	tcase_add_test(order, test_order_root_target_left_out);
	tcase_add_test(order, test_order_single);
	tcase_add_test(order, test_order_max_is_prefix);
	tcase_add_test(order, test_order_max_work);
	suite_add_tcase(s, order);

	tcase_add_test(dns, test_dns_parse_addr);
	tcase_add_test(dns, test_dns_srv_ok);
	tcase_add_test(dns, test_dns_srv_nxdomain);
	tcase_add_test(dns, test_dns_srv_nodata);
	tcase_add_test(dns, test_dns_srv_servfail);
	tcase_add_test(dns, test_dns_srv_bogus);
	tcase_add_test(dns, test_dns_srv_baddata);
	tcase_add_test(dns, test_dns_srv_null_target);
	tcase_add_test(dns, test_dns_addrs_both);
	tcase_add_test(dns, test_dns_addr_interleave);
	tcase_add_test(dns, test_dns_addrs_interleaved);
	tcase_add_test(dns, test_dns_addrs_one_family);
	tcase_add_test(dns, test_dns_addrs_failures);
	tcase_add_test(dns, test_dns_addrs_baddata);
	tcase_add_test(dns, test_dns_addr_failure);
	tcase_add_test(dns, test_dns_status_str);
	tcase_add_test(dns, test_dns_addr_literal);
	suite_add_tcase(s, dns);
	return s;
}

int
main(void)
{
	return unit_run(srv_suite());
}

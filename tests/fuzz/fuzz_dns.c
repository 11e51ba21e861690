/*
 * DNS answers as libunbound hands them over (struct ub_result): SRV rdata
 * and A/AAAA rdata from a server the agent does not control. The input
 * describes one answer: flags, rcode, TTL, then records as a 1-byte length
 * and that many bytes. Checks: whatever comes back is printable (targets end
 * up in the status file and the log, one per line), an address parses back,
 * counts add up, and srv_order gives each usable record a place once.
 */
#include <arpa/inet.h>
#include <string.h>
#include <unbound.h>

#include "dns.h"
#include "fuzz.h"
#include "srv.h"

#define MAX_RECORDS 300

struct answer {
	struct ub_result res;
	char *data[MAX_RECORDS + 1];
	int len[MAX_RECORDS + 1];
	int err;
};

/* flags: bit 0 havedata, 1 nxdomain, 2 secure, 3 bogus, 4 resolver error */
static const uint8_t *
answer_make(struct answer *a, const uint8_t *p, const uint8_t *end, const char *qname, int qtype)
{
	size_t n = 0, len;
	uint8_t flags;

	memset(a, 0, sizeof(*a));
	if (end - p < 6)
		return end;
	flags = p[0];
	a->res.qname = (char *)qname;
	a->res.qtype = qtype;
	a->res.qclass = 1;
	a->res.rcode = p[1] & 0x1f;
	a->res.ttl = (int)((uint32_t)p[2] << 24 | (uint32_t)p[3] << 16 | p[4] << 8 | p[5]);
	a->res.havedata = flags & 1;
	a->res.nxdomain = (flags >> 1) & 1;
	a->res.secure = (flags >> 2) & 1;
	a->res.bogus = (flags >> 3) & 1;
	a->res.why_bogus = a->res.bogus ? (char *)"signature expired" : NULL;
	a->err = (flags >> 4) & 1 ? UB_SERVFAIL : 0;
	p += 6;
	/* A zero length ends the list: the next answer (AAAA then A) follows. */
	while (p < end && n < MAX_RECORDS && (len = *p++) != 0) {
		if (len > (size_t)(end - p))
			len = (size_t)(end - p);
		a->data[n] = (char *)p;
		a->len[n++] = (int)len;
		p += len;
	}
	a->res.data = a->data;
	a->res.len = a->len;
	return p;
}

static void
check_text(const char *s)
{
	for (; *s; s++)
		FUZZ_CHECK(*s > ' ' && *s < 0x7f);
}

static uint32_t
rnd(void *arg, uint32_t bound)
{
	uint32_t *x = arg;

	*x = *x * 1103515245u + 12345u;
	return (*x >> 8) % bound;
}

static void
fuzz_srv(const uint8_t *p, const uint8_t *end)
{
	struct answer a;
	struct dns_srv_result r;
	size_t order[MAX_RECORDS], placed, i, j;
	uint32_t seed = 1;

	answer_make(&a, p, end, "_xmpp-component._tcp.example.com", 33);
	dns_srv_result_make(a.res.qname, a.err, a.err ? NULL : &a.res, &r);
	FUZZ_CHECK(r.n <= MAX_RECORDS && (r.status == DNS_OK) == (r.why[0] == '\0'));
	FUZZ_CHECK(strchr(r.why, '\n') == NULL);
	for (i = 0; i < r.n; i++) {
		check_text(r.rrs[i].target);
		FUZZ_CHECK(strlen(r.rrs[i].target) <= 254);
	}
	if (r.status == DNS_OK) {
		placed = srv_order(r.rrs, r.n, rnd, &seed, order);
		FUZZ_CHECK(placed <= r.n);
		for (i = 0; i < placed; i++) {
			FUZZ_CHECK(order[i] < r.n);
			for (j = 0; j < i; j++)
				FUZZ_CHECK(order[j] != order[i]);
		}
	}
	dns_srv_result_clear(&r);
}

static void
fuzz_addr(const uint8_t *p, const uint8_t *end)
{
	struct answer a6, a4;
	struct dns_addr_result r;
	unsigned char bin[16];
	size_t i, j;

	p = answer_make(&a6, p, end, "node.example.com", 28);
	answer_make(&a4, p, end, "node.example.com", 1);
	dns_addr_result_make(
	    a6.res.qname, a6.err, a6.err ? NULL : &a6.res, a4.err, a4.err ? NULL : &a4.res, &r);
	FUZZ_CHECK((r.status == DNS_OK) == (r.n > 0));
	FUZZ_CHECK(strchr(r.why, '\n') == NULL);
	for (i = 0; i < r.n; i++) {
		FUZZ_CHECK(r.addrs[i].family == AF_INET || r.addrs[i].family == AF_INET6);
		FUZZ_CHECK(inet_pton(r.addrs[i].family, r.addrs[i].ip, bin) == 1);
		/* RFC 8305: IPv6 first, then the families alternate until one runs out. */
		if (i == 0 && r.addrs[0].family == AF_INET)
			for (j = 1; j < r.n; j++)
				FUZZ_CHECK(r.addrs[j].family == AF_INET);
		if (i > 0 && r.addrs[i].family == r.addrs[i - 1].family)
			for (j = i + 1; j < r.n; j++)
				FUZZ_CHECK(r.addrs[j].family == r.addrs[i].family);
	}
	dns_addr_result_clear(&r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1)
		fuzz_addr(data + 1, data + size);
	else
		fuzz_srv(data + 1, data + size);
	return 0;
}

/*
 * srv: parsing SRV rdata and ordering SRV records as RFC 2782 prescribes.
 * No I/O: the resolver fetches, this file decides.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "srv.h"
#include "util.h"

/* RFC 1035 limits: 63 octets per label, 255 octets per name in wire form. */
#define SRV_LABEL_MAX 63
#define SRV_WIRE_MAX 255

/* Host names: letters, digits and '-'; '_' for service labels. */
static int
srv_label_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

/* Append one label to name (which has room for SRV_TARGET_MAX bytes). */
static int
srv_add_label(char *name, size_t *n, const unsigned char *label, size_t len)
{
	size_t i;

	if (*n > 0)
		name[(*n)++] = '.';
	for (i = 0; i < len; i++) {
		if (!srv_label_char(label[i]))
			return -1;
		name[(*n)++] = (char)label[i];
	}
	return 0;
}

/*
 * Uncompressed wire-form name filling exactly len bytes, into presentation
 * form without the trailing dot ("." for the root).
 */
static int
srv_parse_name(const unsigned char *p, size_t len, char *name)
{
	size_t off = 0, n = 0, lab;

	for (;;) {
		if (off >= len)
			return -1;
		lab = p[off++];
		if (lab == 0)
			break;
		/* 0xC0 is a compression pointer, 0x40 and 0x80 extended labels. */
		if (lab > SRV_LABEL_MAX)
			return -1;
		if (lab > len - off)
			return -1;
		/* The name with this label and the root label still to come. */
		if (off + lab + 1 > SRV_WIRE_MAX)
			return -1;
		if (srv_add_label(name, &n, p + off, lab) == -1)
			return -1;
		off += lab;
	}
	if (off != len)
		return -1;
	if (n == 0)
		name[n++] = '.';
	name[n] = '\0';
	return 0;
}

static uint16_t
srv_get16(const unsigned char *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

int
srv_parse_rdata(const unsigned char *rdata, size_t len, struct srv_rr *out)
{
	if (len < 7)
		return -1;
	out->priority = srv_get16(rdata);
	out->weight = srv_get16(rdata + 2);
	out->port = srv_get16(rdata + 4);
	out->ttl = 0;
	return srv_parse_name(rdata + 6, len - 6, out->target);
}

static int
srv_target_is_root(const struct srv_rr *rr)
{
	return strcmp(rr->target, ".") == 0;
}

int
srv_is_null(const struct srv_rr *rrs, size_t n)
{
	return n == 1 && srv_target_is_root(&rrs[0]);
}

/* Move idx[j] to idx[0], keeping the others in their order. */
static void
srv_move_front(size_t *idx, size_t j)
{
	size_t chosen = idx[j];

	memmove(idx + 1, idx, j * sizeof(*idx));
	idx[0] = chosen;
}

static int
srv_key_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * The indices by ascending priority, the weight-0 records first within a
 * priority, each group in the order received (the index is the last part
 * of the key, which makes qsort stable). O(n log n): the records of one
 * answer may number thousands.
 */
static void
srv_sort(const struct srv_rr *rrs, size_t n, size_t *idx)
{
	uint64_t *key = xcalloc(n > 0 ? n : 1, sizeof(*key));
	size_t i;

	for (i = 0; i < n; i++)
		key[i] = (uint64_t)rrs[i].priority << 33 | (uint64_t)(rrs[i].weight != 0) << 32 | i;
	qsort(key, n, sizeof(*key), srv_key_cmp);
	for (i = 0; i < n; i++)
		idx[i] = (size_t)(key[i] & 0xffffffffu);
	free(key);
}

/*
 * RFC 2782: a uniform number in [0, sum] inclusive, and the first record
 * whose running sum is at least that number. A weight-0 record at the
 * front wins only on 0. With every weight 0 the RFC would always pick the
 * first record; pick uniformly instead.
 */
static size_t
srv_pick(const struct srv_rr *rrs, size_t n, const size_t *idx, srv_random_fn *rnd, void *arg)
{
	uint32_t sum = 0, run = 0, r;
	size_t i;

	for (i = 0; i < n; i++)
		sum += rrs[idx[i]].weight;
	if (sum == 0)
		return rnd(arg, (uint32_t)n);
	r = rnd(arg, sum + 1);
	for (i = 0; i < n; i++) {
		run += rrs[idx[i]].weight;
		if (run >= r)
			return i;
	}
	return n - 1;
}

static int
srv_same_node(const struct srv_rr *a, const struct srv_rr *b)
{
	return a->port == b->port && strcasecmp(a->target, b->target) == 0;
}

/* Is record i a node to try: not ".", and not among the kept ones? */
static int
srv_is_new(const struct srv_rr *rrs, const size_t *kept, size_t nkept, size_t i)
{
	size_t j;

	if (srv_target_is_root(&rrs[i]))
		return 0;
	for (j = 0; j < nkept; j++)
		if (srv_same_node(&rrs[kept[j]], &rrs[i]))
			return 0;
	return 1;
}

/*
 * Order one priority's records (idx, n of them) by weighted selection
 * without replacement, appending each new node to order, which holds
 * *kept already, until max are kept. order ends at or before idx, so an
 * entry is written only where one was already placed.
 */
static void
srv_order_group(const struct srv_rr *rrs, size_t n, size_t *idx, size_t *order, size_t *kept,
    size_t max, srv_random_fn *rnd, void *arg)
{
	size_t k;

	for (k = 0; k < n && *kept < max; k++) {
		if (k + 1 < n)
			srv_move_front(idx + k, srv_pick(rrs, n - k, idx + k, rnd, arg));
		if (srv_is_new(rrs, order, *kept, idx[k]))
			order[(*kept)++] = idx[k];
	}
}

size_t
srv_order_max(
    const struct srv_rr *rrs, size_t n, size_t max, srv_random_fn *rnd, void *arg, size_t *order)
{
	size_t start, end, kept = 0;

	srv_sort(rrs, n, order);
	for (start = 0; start < n && kept < max; start = end) {
		end = start + 1;
		while (end < n && rrs[order[end]].priority == rrs[order[start]].priority)
			end++;
		srv_order_group(rrs, end - start, order + start, order, &kept, max, rnd, arg);
	}
	return kept;
}

size_t
srv_order(const struct srv_rr *rrs, size_t n, srv_random_fn *rnd, void *arg, size_t *order)
{
	return srv_order_max(rrs, n, n, rnd, arg, order);
}

/* A host name in presentation form: at most 253 characters. */
#define SRV_NAME_MAX 253

/* Keep the variant just written when its name (namelen long) fits a host name. */
static void
srv_variant_keep(size_t *n, int namelen)
{
	if (namelen > 0 && namelen <= SRV_NAME_MAX)
		(*n)++;
}

size_t
srv_variants(const char *service, const char *domain, struct srv_variant *out)
{
	const char *dot = strchr(service, '.'), *proto;
	char first[SRV_TARGET_MAX], zone[SRV_TARGET_MAX];
	size_t n = 0, len;
	int namelen;

	/* "tptac9.com." and "tptac9.com" are the same zone. */
	snprintf(zone, sizeof(zone), "%s", domain);
	if ((len = strlen(zone)) > 1 && zone[len - 1] == '.')
		zone[len - 1] = '\0';
	/* conf accepts two labels; with one there is no dot to leave out. */
	if (dot != NULL && (size_t)(dot - service) < sizeof(first)) {
		snprintf(first, sizeof(first), "%.*s", (int)(dot - service), service);
		proto = dot + 1;
		namelen = snprintf(out[n].name, sizeof(out[n].name), "%s%s.%s", first, proto, zone);
		snprintf(out[n].why, sizeof(out[n].why),
		    "the dot between %s and %s is missing; rename the record", first, proto);
		srv_variant_keep(&n, namelen);
		if (strcasecmp(first, "_xmpp-component") == 0) {
			namelen = snprintf(
			    out[n].name, sizeof(out[n].name), "_xmpp-client.%s.%s", proto, zone);
			snprintf(out[n].why, sizeof(out[n].why),
			    "those are the XMPP client records (port 5222), not for components; "
			    "publish %s records with the port the nodes accept components on",
			    service);
			srv_variant_keep(&n, namelen);
		}
	}
	/* In a zone file, a name without its trailing dot gets the zone's name appended. */
	namelen = snprintf(out[n].name, sizeof(out[n].name), "%s.%s.%s", service, zone, zone);
	snprintf(out[n].why, sizeof(out[n].why),
	    "the record was written in a zone file without the trailing dot, which appends the "
	    "zone's name again; write its name as %s.%s. (with the dot)",
	    service, zone);
	srv_variant_keep(&n, namelen);
	return n;
}

void
srv_variant_text(
    char *buf, size_t len, const char *name, const char *status, const struct srv_variant *v)
{
	snprintf(buf, len, "no SRV records for %s (%s); found %s instead: %s", name, status,
	    v->name, v->why);
}

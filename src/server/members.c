/*
 * members: DIR/cluster, the membership, term and vote of this node, and the
 * leader's decision on a join. Loading and saving are the only I/O; the
 * rest works on the struct alone so that tests drive it directly.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "kv.h"
#include "members.h"
#include "util.h"

#define MEMBERS_FILE "cluster"

static int members_say(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
members_say(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* A member id: 1 to 8 hex digits, not 0. */
static int
members_parse_id(const char *s, uint32_t *id)
{
	char *end;
	unsigned long v;
	size_t n = strlen(s);

	if (n == 0 || n > 8 || strspn(s, "0123456789abcdefABCDEF") != n)
		return -1;
	errno = 0;
	v = strtoul(s, &end, 16);
	if (errno || *end != '\0' || v == 0 || v > UINT32_MAX)
		return -1;
	*id = (uint32_t)v;
	return 0;
}

static int
members_parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end != '\0')
		return -1;
	*out = v;
	return 0;
}

/* "IP:PORT" with a numeric address and a port a peer can dial (not 0). */
static int
members_valid_addr(const char *addr)
{
	struct sockaddr_storage ss;
	char host[64];
	int sslen, port = -1;

	if (strlen(addr) >= MEMBERS_ADDR_MAX ||
	    util_split_hostport(addr, host, sizeof(host), &port) == -1 || port <= 0)
		return 0;
	return util_sockaddr(host, port, &ss, &sslen) == 0;
}

/* "member = ID IP:PORT" */
static const char *
members_parse_member(struct members *ms, const char *value, char *err, size_t errlen)
{
	char idtext[16];
	const char *sp = strpbrk(value, " \t"), *addr;
	uint32_t id;

	if (sp == NULL || (size_t)(sp - value) >= sizeof(idtext))
		return "member: expected ID IP:PORT, e.g. member = 1a2b3c4d 127.0.0.1:5400";
	snprintf(idtext, sizeof(idtext), "%.*s", (int)(sp - value), value);
	addr = sp + strspn(sp, " \t");
	if (members_parse_id(idtext, &id) == -1) {
		snprintf(
		    err, errlen, "member: \"%s\" is not an id (1 to 8 hex digits, not 0)", idtext);
		return err;
	}
	if (!members_valid_addr(addr)) {
		snprintf(err, errlen, "member %s: \"%s\" is not IP:PORT", idtext, addr);
		return err;
	}
	if (members_by_addr(ms, addr) != NULL) {
		snprintf(err, errlen, "member %s: address %s listed twice", idtext, addr);
		return err;
	}
	if (members_by_id(ms, id) != NULL) {
		snprintf(err, errlen, "member %s listed twice", idtext);
		return err;
	}
	if (members_add(ms, id, addr) == -1)
		return "member: too many members";
	return NULL;
}

static const char *
members_pair(void *arg, const char *key, const char *value, char *err, size_t errlen)
{
	struct members *ms = arg;

	if (strcmp(key, "id") == 0) {
		if (members_parse_id(value, &ms->self) == -1)
			return "id: expected 1 to 8 hex digits, not 0";
	} else if (strcmp(key, "epoch") == 0) {
		if (members_parse_u64(value, &ms->epoch) == -1)
			return "epoch: expected a number";
	} else if (strcmp(key, "term") == 0) {
		if (members_parse_u64(value, &ms->term) == -1)
			return "term: expected a number";
	} else if (strcmp(key, "voted-for") == 0) {
		/* 0 is "no vote", unlike an id. */
		if (strcmp(value, "0") == 0)
			ms->voted_for = 0;
		else if (members_parse_id(value, &ms->voted_for) == -1)
			return "voted-for: expected an id in hex, or 0";
	} else if (strcmp(key, "member") == 0) {
		return members_parse_member(ms, value, err, errlen);
	} else {
		snprintf(err, errlen, "unknown key \"%s\"", key);
		return err;
	}
	return NULL;
}

int
members_load(const char *dir, struct members *ms, char *err, size_t errlen)
{
	char *path = xasprintf("%s/%s", dir, MEMBERS_FILE);
	int r = 0;

	memset(ms, 0, sizeof(*ms));
	if (access(path, F_OK) == 0)
		r = kv_parse_file(path, members_pair, ms, err, errlen);
	else if (errno != ENOENT)
		r = members_say(err, errlen, "%s: %s", path, strerror(errno));
	free(path);
	return r;
}

static char *
members_text(const struct members *ms)
{
	struct buf b;
	char line[160];
	size_t i;

	buf_init(&b, 64 << 10);
	buf_addstr(
	    &b, "# xcomp-server cluster membership, term and vote: written by the server.\n");
	snprintf(line, sizeof(line),
	    "id = %08" PRIx32 "\nepoch = %" PRIu64 "\nterm = %" PRIu64 "\n", ms->self, ms->epoch,
	    ms->term);
	buf_addstr(&b, line);
	if (ms->voted_for)
		snprintf(line, sizeof(line), "voted-for = %08" PRIx32 "\n", ms->voted_for);
	else
		snprintf(line, sizeof(line), "voted-for = 0\n");
	buf_addstr(&b, line);
	for (i = 0; i < ms->n; i++) {
		snprintf(
		    line, sizeof(line), "member = %08" PRIx32 " %s\n", ms->m[i].id, ms->m[i].addr);
		buf_addstr(&b, line);
	}
	buf_add(&b, "", 1);
	return b.data;
}

/*
 * The rename is durable only once the directory entry is: Raft's vote
 * must survive a power cut as well as a crash.
 */
static int
members_sync_dir(const char *dir, char *err, size_t errlen)
{
	int fd, r = 0;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return members_say(err, errlen, "%s: %s", dir, strerror(errno));
	if (fsync(fd) == -1)
		r = members_say(err, errlen, "%s: fsync: %s", dir, strerror(errno));
	close(fd);
	return r;
}

int
members_save(const char *dir, const struct members *ms, char *err, size_t errlen)
{
	char *path, *text;
	int r;

	if (mkdir(dir, 0700) == -1 && errno != EEXIST)
		return members_say(err, errlen, "%s: %s", dir, strerror(errno));
	path = xasprintf("%s/%s", dir, MEMBERS_FILE);
	text = members_text(ms);
	r = util_write_file(path, text, strlen(text), 0600, 1, err, errlen);
	free(text);
	free(path);
	if (r == -1)
		return -1;
	return members_sync_dir(dir, err, errlen);
}

uint32_t
members_new_id(void)
{
	uint32_t id;

	do
		util_random(&id, sizeof(id));
	while (id == 0);
	return id;
}

struct member *
members_by_id(struct members *ms, uint32_t id)
{
	size_t i;

	for (i = 0; i < ms->n; i++)
		if (ms->m[i].id == id)
			return &ms->m[i];
	return NULL;
}

struct member *
members_by_addr(struct members *ms, const char *addr)
{
	size_t i;

	for (i = 0; i < ms->n; i++)
		if (strcmp(ms->m[i].addr, addr) == 0)
			return &ms->m[i];
	return NULL;
}

int
members_add(struct members *ms, uint32_t id, const char *addr)
{
	struct member *m;

	if (id == 0 || ms->n == MEMBERS_MAX || members_by_id(ms, id) != NULL ||
	    strlen(addr) >= MEMBERS_ADDR_MAX)
		return -1;
	m = &ms->m[ms->n++];
	m->id = id;
	snprintf(m->addr, sizeof(m->addr), "%s", addr);
	return 0;
}

int
members_del(struct members *ms, uint32_t id)
{
	struct member *m = members_by_id(ms, id);
	size_t i;

	if (m == NULL)
		return -1;
	/* Keep the order: cluster status lists members as they joined. */
	i = m - ms->m;
	memmove(&ms->m[i], &ms->m[i + 1], (ms->n - i - 1) * sizeof(*m));
	ms->n--;
	return 0;
}

uint32_t
members_resolve(const struct members *ms, const char *peer)
{
	uint32_t id;
	size_t i;

	/* An id has no ':'; every IP:PORT has one. */
	if (strchr(peer, ':') != NULL) {
		for (i = 0; i < ms->n; i++)
			if (strcmp(ms->m[i].addr, peer) == 0)
				return ms->m[i].id;
		return 0;
	}
	if (members_parse_id(peer, &id) == -1)
		return 0;
	for (i = 0; i < ms->n; i++)
		if (ms->m[i].id == id)
			return id;
	return 0;
}

/*
 * The address decides first: one address is one node, and a node reset
 * without leaving comes back from its old address under a new id (the
 * seed's scenario 3). This node, the leader deciding, is always alive.
 */
enum members_join
members_join_verdict(const struct members *ms, uint32_t id, const char *addr,
    int (*alive)(void *arg, uint32_t id), void *arg, uint32_t *other)
{
	size_t i;

	for (i = 0; i < ms->n; i++) {
		if (strcmp(ms->m[i].addr, addr) != 0)
			continue;
		if (ms->m[i].id == id)
			return MEMBERS_JOIN_AGAIN;
		*other = ms->m[i].id;
		if (ms->m[i].id == ms->self || alive(arg, ms->m[i].id))
			return MEMBERS_JOIN_LIVE;
		return MEMBERS_JOIN_REPLACE;
	}
	for (i = 0; i < ms->n; i++)
		if (ms->m[i].id == id)
			return MEMBERS_JOIN_AGAIN;
	return ms->n == MEMBERS_MAX ? MEMBERS_JOIN_FULL : MEMBERS_JOIN_ADD;
}

#define MEMBERS_TERM_SHIFT 20

uint64_t
members_next_epoch(uint64_t epoch, uint64_t term)
{
	uint64_t floor = term << MEMBERS_TERM_SHIFT;

	return epoch + 1 > floor ? epoch + 1 : floor;
}

int
members_merge(struct members *mine, const struct members *theirs)
{
	if (theirs->epoch <= mine->epoch)
		return 0;
	memcpy(mine->m, theirs->m, sizeof(mine->m));
	mine->n = theirs->n;
	mine->epoch = theirs->epoch;
	return 1;
}

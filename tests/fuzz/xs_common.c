/*
 * The XMPP stream layer (xs.c) under fuzz, shared by the server-stream and
 * component-stream targets. The input is fed in pieces of any size. Beyond
 * "no crash, no leak, no undefined behaviour" it checks what the code
 * promises:
 * - the error callback comes at most once, and nothing comes after it;
 * - every element handed out is a sound tree (names, attribute pairs);
 * - a stanza serialised again (as xcomp-server and the agent write their
 *   own stanzas) parses back, in a stream of its own, to the same bytes when
 *   serialised a second time: what the server writes, a peer reads.
 */
#include <string.h>

#include "buf.h"
#include "fuzz.h"
#include "xs.h"
#include "xs_common.h"

#define REPARSE_HEADER                                                                             \
	"<stream:stream xmlns='jabber:component:accept' "                                          \
	"xmlns:stream='http://etherx.jabber.org/streams' to='c.example' id='1'>"

struct seen {
	int opened, closed, errors, stopped;
	unsigned stanzas;
	int deep; /* the stanzas are built whole */
};

static size_t
walk(const struct xs_elem *e)
{
	size_t n = 0, i;

	for (; e != NULL; e = e->next) {
		FUZZ_CHECK(e->name != NULL && e->ns != NULL);
		n += strlen(e->name) + strlen(e->ns);
		for (i = 0; e->attrs != NULL && e->attrs[i] != NULL; i += 2) {
			FUZZ_CHECK(e->attrs[i + 1] != NULL);
			n += strlen(e->attrs[i]) + strlen(e->attrs[i + 1]);
		}
		if (e->text != NULL)
			FUZZ_CHECK(e->headlen <= strlen(e->text));
		n += e->tail != NULL ? strlen(e->tail) : 0;
		n += walk(e->child);
	}
	return n;
}

/* One stanza, reparsed on its own. */
struct again {
	struct buf out;
	int stanzas, errors;
};

static int
again_open(void *arg, const struct xs_elem *h)
{
	(void)arg;
	(void)h;
	return 0;
}

static int
again_stanza(void *arg, const struct xs_elem *e, const char *raw, size_t len)
{
	struct again *a = arg;

	(void)raw;
	(void)len;
	a->stanzas++;
	FUZZ_CHECK(xs_serialize(e, XS_NS_COMPONENT, &a->out) == 0);
	return 0;
}

static int
again_close(void *arg)
{
	(void)arg;
	return 0;
}

static void
again_error(void *arg, const char *cond, const char *text)
{
	struct again *a = arg;

	fprintf(stderr, "reparse: %s: %s\n", cond, text);
	a->errors++;
}

static const struct xs_handler again_h = {again_open, again_stanza, again_close, again_error};

static void
round_trip(const struct xs_elem *e)
{
	struct xs_limits lim;
	struct buf first;
	struct again a = {{0}, 0, 0};
	struct xs *x;

	buf_init(&first, 4u << 20);
	if (xs_serialize(e, XS_NS_COMPONENT, &first) == -1) {
		buf_free(&first);
		return;
	}
	/* Serialising may declare prefixes the raw bytes did not: room for them. */
	xs_limits_default(&lim);
	lim.stanza = 8u << 20;
	buf_init(&a.out, 8u << 20);
	x = xs_new(XS_NS_COMPONENT, &lim, &again_h, &a);
	FUZZ_CHECK(xs_feed(x, REPARSE_HEADER, strlen(REPARSE_HEADER)) == 0);
	if (xs_feed(x, buf_head(&first), first.len) == -1 || a.errors) {
		fprintf(stderr, "does not parse back: %.*s\n", (int)first.len, buf_head(&first));
		abort();
	}
	FUZZ_CHECK(a.stanzas == 1);
	if (a.out.len != first.len || memcmp(buf_head(&a.out), buf_head(&first), first.len) != 0) {
		fprintf(stderr, "first:  %.*s\nsecond: %.*s\n", (int)first.len, buf_head(&first),
		    (int)a.out.len, buf_head(&a.out));
		abort();
	}
	xs_free(x);
	buf_free(&a.out);
	buf_free(&first);
}

static int
on_open(void *arg, const struct xs_elem *h)
{
	struct seen *s = arg;

	FUZZ_CHECK(!s->opened && !s->errors);
	s->opened = 1;
	FUZZ_CHECK(strcmp(h->name, "stream") == 0 && strcmp(h->ns, XS_NS_STREAMS) == 0);
	walk(h);
	(void)xs_attr(h, "id");
	(void)xs_attr(h, "from");
	return 0;
}

static int
on_stanza(void *arg, const struct xs_elem *e, const char *raw, size_t len)
{
	struct seen *s = arg;
	const char *cond, *text;

	FUZZ_CHECK(s->opened && !s->closed && !s->errors);
	FUZZ_CHECK(raw != NULL && len > 0 && raw[0] == '<');
	s->stanzas++;
	walk(e);
	if (strcmp(e->ns, XS_NS_STREAMS) == 0 && strcmp(e->name, "error") == 0) {
		xs_stream_error_parse(e, &cond, &text);
		return 0;
	}
	(void)xs_child(e, "ping", XS_NS_PING);
	if (s->deep)
		round_trip(e);
	/* A handler may stop the stream: do so now and then. */
	if (len % 251 == 250) {
		s->stopped = 1;
		return -1;
	}
	return 0;
}

static int
on_close(void *arg)
{
	struct seen *s = arg;

	FUZZ_CHECK(s->opened && !s->closed && !s->errors);
	s->closed = 1;
	return 0;
}

static void
on_error(void *arg, const char *cond, const char *text)
{
	struct seen *s = arg;

	FUZZ_CHECK(cond != NULL && *cond != '\0' && text != NULL);
	FUZZ_CHECK(!s->errors);
	s->errors++;
}

static const struct xs_handler handler = {on_open, on_stanza, on_close, on_error};

void
fuzz_xs_stream(const uint8_t *data, size_t size, int shallow)
{
	struct fuzz_split split;
	struct xs_limits lim;
	struct seen s = {0, 0, 0, 0, 0, !shallow};
	struct xs *x;
	size_t n;
	int dead = 0;

	fuzz_split_init(&split, &data, &size);
	xs_limits_default(&lim);
	/* Small limits, so that the fuzzer reaches them. */
	lim.stanza = 4096;
	lim.header = 1024;
	x = xs_new(XS_NS_COMPONENT, &lim, &handler, &s);
	xs_set_shallow(x, shallow);
	while (size > 0 && !dead) {
		n = fuzz_split_next(&split, size);
		dead = xs_feed(x, (const char *)data, n) == -1;
		FUZZ_CHECK(!dead || s.errors == 1 || s.stopped);
		data += n;
		size -= n;
	}
	/* Once dead, it stays dead and says nothing more. */
	if (dead)
		FUZZ_CHECK(xs_feed(x, "<a/>", 4) == -1);
	FUZZ_CHECK(s.errors <= 1);
	xs_free(x);
}

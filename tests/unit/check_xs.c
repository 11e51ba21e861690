/*
 * Unit tests for xs, the XMPP stream parser. Most inputs are parsed whole,
 * one byte at a time and split in two at every offset, and every way must
 * report the same events: a peer's TCP segments may cut the stream anywhere.
 */

#include <check.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "util.h"
#include "xs.h"
#include "unit.h"

#define NS_DECLS "xmlns:stream='" XS_NS_STREAMS "' xmlns='" XS_NS_COMPONENT "'"
#define HDR "<stream:stream " NS_DECLS " to='cb1.example.com' id='3BF96D32'>"
#define END "</stream:stream>"

#define HANDSHAKE "<handshake>aaee83c26aeeafcbabeabfcbcd50df997e0a2a1e</handshake>"
/* Nested children, an entity, a character reference and a literal UTF-8 character. */
#define MESSAGE                                                                                    \
	"<message from='a@example.com/r' to='b@cb1.example.com' type='chat' xml:lang='en'>"        \
	"<body>Hi &amp; &lt;bye&gt; \xe2\x98\xba&#x263A;</body>"                                   \
	"<x xmlns='jabber:x:data' type='form'><field var='a'><value>1</value></field>"             \
	"<p:extra xmlns:p='urn:example:p' p:flag='yes'/></x></message>"
#define IQ                                                                                         \
	"<iq type='get' id='ping1' from='example.com' to='cb1.example.com'>"                       \
	"<ping xmlns='urn:xmpp:ping'/></iq>"

/* Billion laughs: ten levels of entities, each ten times the one below. */
#define LAUGHS                                                                                     \
	"<?xml version='1.0'?>\n<!DOCTYPE lolz [<!ENTITY lol 'lol'>"                               \
	"<!ENTITY lol1 '&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;'>"                      \
	"<!ENTITY lol2 '&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;'>"            \
	"<!ENTITY lol3 '&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;'>"            \
	"<!ENTITY lol4 '&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;'>"            \
	"<!ENTITY lol5 '&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;'>"            \
	"<!ENTITY lol6 '&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;'>"            \
	"<!ENTITY lol7 '&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;'>"            \
	"<!ENTITY lol8 '&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;'>"            \
	"<!ENTITY lol9 '&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;'>"            \
	"]>" HDR "<message><body>&lol9;</body></message>"

#define ERR_NS "urn:ietf:params:xml:ns:xmpp-streams"
#define PROSODY_ERROR                                                                              \
	"<stream:error><not-authorized xmlns='" ERR_NS "'/><text xmlns='" ERR_NS "'>"              \
	"Given token does not match calculated token</text></stream:error></stream:stream>"
#define EJABBERD_ERROR "<stream:error><not-authorized xmlns='" ERR_NS "'/></stream:error>"

/*
 * What a parse reported, as text that runs can be compared by: one line per
 * event, stanzas serialised and followed by their raw bytes.
 */
struct rec {
	/* Set by the test before a run; copied into each run. */
	int stop_open;   /* open returns -1 */
	int stop_stanza; /* the stanza with this number (from 1) returns -1 */
	int stop_close;  /* close returns -1 */
	void (*hook)(struct rec *, const struct xs_elem *, const char *, size_t);
	void (*error_hook)(struct rec *);
	void *ctx;

	/* Results. */
	char *log;
	size_t len;
	int nopen, nstanza, nclose, nerror;
	char *cond, *text;   /* of the last error */
	int dead;            /* a feed returned -1 */
	int rc;              /* of the last feed */
	size_t fed;          /* bytes given to xs_feed, the current call included */
	size_t delivered[8]; /* fed when stanza i + 1 came */
	size_t closed_at;
	size_t error_at;
};

static void
logadd(struct rec *r, const char *s, size_t n)
{
	r->log = xrealloc(r->log, r->len + n + 1);
	memcpy(r->log + r->len, s, n);
	r->len += n;
	r->log[r->len] = '\0';
}

static void
logstr(struct rec *r, const char *s)
{
	logadd(r, s, strlen(s));
}

static void
logelem(struct rec *r, const struct xs_elem *e)
{
	struct buf b;

	buf_init(&b, 1 << 20);
	ck_assert_int_eq(xs_serialize(e, XS_NS_COMPONENT, &b), 0);
	logadd(r, buf_head(&b), b.len);
	buf_free(&b);
}

static int
on_open(void *arg, const struct xs_elem *e)
{
	struct rec *r = arg;

	r->nopen++;
	logstr(r, "open ");
	logelem(r, e);
	logstr(r, "\n");
	return r->stop_open ? -1 : 0;
}

static int
on_stanza(void *arg, const struct xs_elem *e, const char *raw, size_t rawlen)
{
	struct rec *r = arg;

	if ((size_t)r->nstanza < nitems(r->delivered))
		r->delivered[r->nstanza] = r->fed;
	r->nstanza++;
	logstr(r, "stanza ");
	logelem(r, e);
	logstr(r, "\nraw ");
	logadd(r, raw, rawlen);
	logstr(r, "\n");
	if (r->hook != NULL)
		r->hook(r, e, raw, rawlen);
	return r->stop_stanza == r->nstanza ? -1 : 0;
}

static int
on_close(void *arg)
{
	struct rec *r = arg;

	r->nclose++;
	r->closed_at = r->fed;
	logstr(r, "close\n");
	return r->stop_close ? -1 : 0;
}

static void
on_error(void *arg, const char *condition, const char *text)
{
	struct rec *r = arg;

	r->nerror++;
	r->error_at = r->fed;
	free(r->cond);
	free(r->text);
	r->cond = xstrdup(condition);
	r->text = xstrdup(text);
	logstr(r, "error ");
	logstr(r, condition);
	logstr(r, ": ");
	logstr(r, text);
	logstr(r, "\n");
	if (r->error_hook != NULL)
		r->error_hook(r);
}

static const struct xs_handler handler = {on_open, on_stanza, on_close, on_error};

static void
rec_free(struct rec *r)
{
	free(r->log);
	free(r->cond);
	free(r->text);
	r->log = r->cond = r->text = NULL;
}

static int
nevents(const struct rec *r)
{
	return r->nopen + r->nstanza + r->nclose + r->nerror;
}

/*
 * Feed one piece; once the stream is dead, feeds fail and report nothing.
 * The piece is fed from a copy that is wiped afterwards, as a network
 * buffer would be reused: whatever xs needs of it later it must have kept.
 */
static void
feed(struct xs *x, struct rec *r, const char *p, size_t n)
{
	int before = nevents(r);
	char *copy;

	copy = xmalloc(n);
	memcpy(copy, p, n);
	r->fed += n;
	r->rc = xs_feed(x, copy, n);
	memset(copy, '#', n);
	free(copy);
	if (r->dead) {
		ck_assert_int_eq(r->rc, -1);
		ck_assert_int_eq(nevents(r), before);
	}
	if (r->rc == -1) {
		/* -1 means an error or a stop, never nothing. */
		ck_assert(r->nerror == 1 || r->stop_open || r->stop_stanza || r->stop_close);
		r->dead = 1;
	}
}

/* A parser for a component stream with limits l (NULL: the defaults), reporting to r. */
static struct xs *
new_xs(const struct xs_limits *l, struct rec *r)
{
	struct xs_limits def;

	if (l == NULL) {
		xs_limits_default(&def);
		l = &def;
	}
	return xs_new(XS_NS_COMPONENT, l, &handler, r);
}

/*
 * Parse in with the configuration in cfg: in two pieces cut at offset at
 * when step is 0, else in pieces of step bytes. The results go to out,
 * whose log ends with the last feed's return value.
 */
static void
run(const char *in, size_t len, const struct xs_limits *l, size_t step, size_t at,
    const struct rec *cfg, struct rec *out)
{
	struct xs *x;
	size_t off, n;
	char rc[16];

	memset(out, 0, sizeof(*out));
	out->stop_open = cfg->stop_open;
	out->stop_stanza = cfg->stop_stanza;
	out->stop_close = cfg->stop_close;
	out->hook = cfg->hook;
	out->error_hook = cfg->error_hook;
	out->ctx = cfg->ctx;
	logstr(out, "");

	x = new_xs(l, out);
	if (step == 0) {
		feed(x, out, in, at);
		feed(x, out, in + at, len - at);
	} else {
		for (off = 0; off < len; off += n) {
			n = len - off < step ? len - off : step;
			feed(x, out, in + off, n);
		}
	}
	xs_free(x);
	ck_assert_int_le(out->nerror, 1);
	snprintf(rc, sizeof(rc), "rc %d\n", out->rc);
	logstr(out, rc);
}

/*
 * Parse in whole, byte by byte and cut in two at every offset; assert that
 * all give the same log and return the whole parse's results in r.
 */
static void
parse_all(
    const char *in, size_t len, const struct xs_limits *l, const struct rec *cfg, struct rec *r)
{
	struct rec other;
	size_t at;

	run(in, len, l, len > 0 ? len : 1, 0, cfg, r);

	run(in, len, l, 1, 0, cfg, &other);
	ck_assert_msg(
	    strcmp(other.log, r->log) == 0, "byte by byte:\n%s\nwhole:\n%s", other.log, r->log);
	rec_free(&other);

	for (at = 0; at <= len; at++) {
		run(in, len, l, 0, at, cfg, &other);
		ck_assert_msg(strcmp(other.log, r->log) == 0, "cut at %zu:\n%s\nwhole:\n%s", at,
		    other.log, r->log);
		rec_free(&other);
	}
}

static void
parse_str(const char *in, const struct xs_limits *l, struct rec *r)
{
	struct rec cfg;

	memset(&cfg, 0, sizeof(cfg));
	parse_all(in, strlen(in), l, &cfg, r);
}

/* The error a whole parse of in reports, asserting it is the same every way. */
static void
expect_error(const char *in, const struct xs_limits *l, const char *condition, const char *text)
{
	struct rec r;

	parse_str(in, l, &r);
	ck_assert_msg(r.nerror == 1, "no error for %s:\n%s", in, r.log);
	ck_assert_str_eq(r.cond, condition);
	if (text != NULL)
		ck_assert_msg(
		    strstr(r.text, text) != NULL, "error text \"%s\" lacks \"%s\"", r.text, text);
	ck_assert_int_eq(r.rc, -1);
	ck_assert_int_eq(r.nclose, 0);
	rec_free(&r);
}

/* The start of in up to and including the first occurrence of s. */
static size_t
end_of(const char *in, const char *s)
{
	const char *p = strstr(in, s);

	ck_assert_ptr_nonnull(p);
	return (size_t)(p - in) + strlen(s);
}

START_TEST(test_component_stream)
{
	const char *in = "<?xml version='1.0'?>\n" HDR "\n" HANDSHAKE " \t\r\n" MESSAGE "\n" IQ END;
	const char *want =
	    "open <stream xmlns='" XS_NS_STREAMS "' to='cb1.example.com' id='3BF96D32'/>\n"
	    "stanza <handshake>aaee83c26aeeafcbabeabfcbcd50df997e0a2a1e</handshake>\n"
	    "raw " HANDSHAKE "\n"
	    "stanza <message from='a@example.com/r' to='b@cb1.example.com' type='chat' "
	    "xml:lang='en'><body>Hi &amp; &lt;bye&gt; \xe2\x98\xba\xe2\x98\xba</body>"
	    "<x xmlns='jabber:x:data' type='form'><field var='a'><value>1</value></field>"
	    "<extra xmlns='urn:example:p' xmlns:ns0='urn:example:p' ns0:flag='yes'/></x>"
	    "</message>\n"
	    "raw " MESSAGE "\n"
	    "stanza <iq type='get' id='ping1' from='example.com' to='cb1.example.com'>"
	    "<ping xmlns='urn:xmpp:ping'/></iq>\n"
	    "raw " IQ "\n"
	    "close\n"
	    "rc 0\n";
	struct rec r;

	parse_str(in, NULL, &r);
	ck_assert_str_eq(r.log, want);
	rec_free(&r);
}
END_TEST

static void
odd_hook(struct rec *r, const struct xs_elem *e, const char *raw, size_t rawlen)
{
	(void)r;
	(void)raw;
	(void)rawlen;
	if (strcmp(e->name, "iq") == 0)
		return;
	ck_assert_str_eq(e->name, "message");
	ck_assert_str_eq(e->ns, XS_NS_COMPONENT);
	ck_assert_str_eq(xs_attr(e, "to"), "x@y");
	ck_assert_str_eq(xs_attr(e, "from"), "z");
	ck_assert_ptr_null(xs_attr(e, "type"));
	ck_assert_str_eq(e->text, "<not a tag> & &<\n");
	ck_assert_ptr_nonnull(xs_child(e, "a", XS_NS_COMPONENT));
	ck_assert_ptr_nonnull(xs_child(e, "b", "urn:b"));
	ck_assert_ptr_null(xs_child(e, "b", XS_NS_COMPONENT));
	ck_assert_ptr_nonnull(xs_child(e, "b", NULL));
	ck_assert_ptr_null(xs_child(e, "c", NULL));
	ck_assert_ptr_null(xs_child(e, "a", NULL)->text);
}

/* Raw bytes are the input from '<' to '>', however odd the markup inside. */
START_TEST(test_raw_bytes)
{
#define ODD                                                                                        \
	"<message\n  to = \"x@y\"\tfrom='z'\r\n><![CDATA[<not a tag> & ]]>&amp;&#60;<a\n/>"        \
	"\n<b xmlns=\"urn:b\"></b ></message\n>"
	const char *in = HDR "  " ODD "\n" IQ END;
	struct rec cfg, r;
	const char *raw;

	memset(&cfg, 0, sizeof(cfg));
	cfg.hook = odd_hook;
	parse_all(in, strlen(in), NULL, &cfg, &r);
	ck_assert_int_eq(r.nstanza, 2);
	ck_assert_int_eq(r.nerror, 0);
	raw = strstr(r.log, "\nraw ");
	ck_assert_ptr_nonnull(raw);
	ck_assert_mem_eq(raw + 5, ODD "\n", strlen(ODD) + 1);
	ck_assert_ptr_nonnull(strstr(r.log, "stanza <message to='x@y' from='z'>&lt;not a tag&gt; "
	                                    "&amp; &amp;&lt;<a/>\n<b xmlns='urn:b'/></message>\n"));
	rec_free(&r);
#undef ODD
}
END_TEST

/*
 * Each stanza comes as soon as its last byte does, even when it ends with a
 * long token that arrived one byte at a time (expat's reparse deferral
 * would hold such a stanza until more input came).
 */
START_TEST(test_delivered_when_complete)
{
	char attr[2000], *in, *msg;
	struct rec cfg, r;

	memset(attr, 'v', sizeof(attr) - 1);
	attr[sizeof(attr) - 1] = '\0';
	msg = xasprintf("<message id='%s'/>", attr);
	in = xasprintf("%s%s\n%s%s%s", HDR, HANDSHAKE, msg, IQ, END);

	memset(&cfg, 0, sizeof(cfg));
	run(in, strlen(in), NULL, 1, 0, &cfg, &r);
	ck_assert_int_eq(r.nstanza, 3);
	ck_assert_uint_eq(r.delivered[0], end_of(in, HANDSHAKE));
	ck_assert_uint_eq(r.delivered[1], end_of(in, msg));
	ck_assert_uint_eq(r.delivered[2], end_of(in, IQ));
	ck_assert_uint_eq(r.closed_at, strlen(in));
	rec_free(&r);

	/* The same in two pieces cut just before the last byte of the long stanza. */
	run(in, strlen(in), NULL, 0, end_of(in, msg) - 1, &cfg, &r);
	ck_assert_int_eq(r.nstanza, 3);
	ck_assert_uint_eq(r.delivered[0], end_of(in, msg) - 1);
	ck_assert_uint_eq(r.delivered[1], strlen(in));
	rec_free(&r);
	free(msg);
	free(in);
}
END_TEST

/*
 * A stream holding one stanza of exactly size bytes, made of prefix, filler
 * and suffix, then an <iq/>. 300 bytes of white space come before each: more
 * than the limits the tests set, which keepalives must not count against.
 */
static char *
sized_stream(const char *prefix, const char *suffix, size_t size)
{
	size_t fill = size - strlen(prefix) - strlen(suffix);
	char *stanza, *in, ws[301];

	stanza = xmalloc(size + 1);
	memcpy(stanza, prefix, strlen(prefix));
	memset(stanza + strlen(prefix), 'A', fill);
	memcpy(stanza + strlen(prefix) + fill, suffix, strlen(suffix) + 1);
	ck_assert_uint_eq(strlen(stanza), size);
	memset(ws, ' ', 300);
	ws[299] = '\n';
	ws[300] = '\0';
	in = xasprintf("%s%s%s%s%s%s", HDR, ws, stanza, ws, IQ, END);
	free(stanza);
	return in;
}

START_TEST(test_stanza_limit_exact)
{
	struct xs_limits l;
	struct rec r;
	char *in;

	xs_limits_default(&l);
	l.stanza = 200;

	/* A long text and a long attribute value (one token for expat). */
	in = sized_stream("<message to='x'><body>", "</body></message>", 200);
	parse_str(in, &l, &r);
	ck_assert_int_eq(r.nerror, 0);
	ck_assert_int_eq(r.nstanza, 2);
	ck_assert_int_eq(r.nclose, 1);
	rec_free(&r);
	free(in);

	in = sized_stream("<message id='", "'/>", 200);
	parse_str(in, &l, &r);
	ck_assert_int_eq(r.nerror, 0);
	ck_assert_int_eq(r.nstanza, 2);
	rec_free(&r);
	free(in);

	in = sized_stream("<message to='x'><body>", "</body></message>", 201);
	expect_error(in, &l, "policy-violation", "stanza larger than 200 bytes");
	free(in);

	in = sized_stream("<message id='", "'/>", 201);
	expect_error(in, &l, "policy-violation", "stanza larger than 200 bytes");
	free(in);

	/*
	 * Broken past the limit too (a duplicate attribute, seen at the end
	 * of the tag): the size is found first, whether expat was given the
	 * whole tag at once or not.
	 */
	in = sized_stream("<message id='", "' id='b'/>", 260);
	expect_error(in, &l, "policy-violation", "stanza larger than 200 bytes");
	free(in);
}
END_TEST

/* The default limit, 256 KiB, fed whole and in pieces of various sizes. */
START_TEST(test_stanza_limit_default)
{
	static const size_t steps[] = {0, 1000, 4095, 4096, 4097, 65536};
	struct rec cfg, r;
	size_t i, len;
	char *in;

	memset(&cfg, 0, sizeof(cfg));
	for (i = 0; i < nitems(steps); i++) {
		in = sized_stream("<message><body>", "</body></message>", 262144);
		len = strlen(in);
		run(in, len, NULL, steps[i] != 0 ? steps[i] : len, 0, &cfg, &r);
		ck_assert_msg(r.nerror == 0, "step %zu: %s", steps[i], r.cond);
		ck_assert_int_eq(r.nstanza, 2);
		rec_free(&r);
		free(in);

		in = sized_stream("<message><body>", "</body></message>", 262145);
		len = strlen(in);
		run(in, len, NULL, steps[i] != 0 ? steps[i] : len, 0, &cfg, &r);
		ck_assert_int_eq(r.nerror, 1);
		ck_assert_str_eq(r.cond, "policy-violation");
		ck_assert_str_eq(r.text, "stanza larger than 262144 bytes");
		ck_assert_int_eq(r.nstanza, 0);
		rec_free(&r);
		free(in);
	}
}
END_TEST

/* Bytes the C library has handed out, or 0 where that is not known (valgrind). */
static size_t
heap_in_use(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
}

struct heap_probe {
	size_t before;
	size_t at_error;
};

static void
probe_heap(struct rec *r)
{
	struct heap_probe *hp = r->ctx;

	hp->at_error = heap_in_use();
}

/*
 * An attribute value that never ends is one token expat keeps buffering;
 * the stream must fail about when it passes the stanza limit, holding
 * about that much, not when the peer stops sending.
 */
START_TEST(test_stanza_limit_unterminated)
{
	const size_t total = 10 * 1024 * 1024, limit = 256 * 1024;
	struct heap_probe hp;
	struct rec cfg, r;
	struct xs *x;
	char *in, *junk;
	size_t off, hdrlen;

	memset(&cfg, 0, sizeof(cfg));
	cfg.error_hook = probe_heap;
	cfg.ctx = &hp;
	in = xmalloc(total);
	hdrlen = strlen(HDR "<message to='");
	memcpy(in, HDR "<message to='", hdrlen);
	memset(in + hdrlen, 'a', total - hdrlen);

	/* In pieces: the error comes within a piece of the limit. */
	r = cfg;
	x = new_xs(NULL, &r);
	for (off = 0; off < total && !r.dead; off += 1000)
		feed(x, &r, in + off, 1000);
	ck_assert_int_eq(r.nerror, 1);
	ck_assert_str_eq(r.cond, "policy-violation");
	ck_assert_str_eq(r.text, "stanza larger than 262144 bytes");
	ck_assert_uint_le(r.error_at, strlen(HDR) + limit + 1000);
	ck_assert_uint_gt(r.error_at, strlen(HDR) + limit);
	xs_free(x);
	rec_free(&r);

	/* All ten megabytes in one call: still refused, without buffering them. */
	junk = xmalloc(1024 * 1024);
	memset(junk, 0, 1024 * 1024);
	free(junk);
	hp.before = heap_in_use();
	hp.at_error = 0;
	r = cfg;
	x = new_xs(NULL, &r);
	/* Not through feed(), whose copy of the input would be counted. */
	ck_assert_int_eq(xs_feed(x, in, total), -1);
	ck_assert_str_eq(r.cond, "policy-violation");
	if (hp.before != 0 || hp.at_error != 0)
		ck_assert_msg(hp.at_error - hp.before < 6 * limit, "held %zu bytes at the error",
		    hp.at_error - hp.before);
	else
		fprintf(stderr, "check_xs: heap size unknown (valgrind?), memory not measured\n");
	xs_free(x);
	rec_free(&r);
	free(in);
}
END_TEST

START_TEST(test_header_limit)
{
	struct xs_limits l;
	struct rec r;
	char *in, *pad;
	size_t fill;

	xs_limits_default(&l);
	l.header = 200;

	/* The header counts from the first byte, an XML declaration included. */
	fill = 200 - strlen("<?xml version='1.0'?><stream:stream " NS_DECLS " to=''>");
	pad = xmalloc(fill + 1);
	memset(pad, 'h', fill);
	pad[fill] = '\0';
	in = xasprintf(
	    "<?xml version='1.0'?><stream:stream " NS_DECLS " to='%s'>%s%s", pad, IQ, END);
	ck_assert_uint_eq(end_of(in, "'>"), 200);
	parse_str(in, &l, &r);
	ck_assert_int_eq(r.nerror, 0);
	ck_assert_int_eq(r.nopen, 1);
	ck_assert_int_eq(r.nstanza, 1);
	rec_free(&r);
	free(in);

	in = xasprintf(
	    "<?xml version='1.0'?><stream:stream " NS_DECLS " to='%sh'>%s%s", pad, IQ, END);
	expect_error(in, &l, "policy-violation", "stream header larger than 200 bytes");
	free(in);

	/* Too big and in the wrong namespace: the same error however it is cut. */
	in = xasprintf("<stream:stream xmlns:stream='" XS_NS_STREAMS "' xmlns='jabber:client' "
	               "to='%shhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhh'>%s",
	    pad, END);
	expect_error(in, &l, "policy-violation", "stream header larger than 200 bytes");
	free(in);
	free(pad);

	/* A header that never ends fails once it has passed the limit. */
	pad = xmalloc(100000);
	memset(pad, ' ', 100000);
	memcpy(pad, "<stream:stream to='", strlen("<stream:stream to='"));
	run(pad, 100000, &l, 1, 0, &(struct rec){0}, &r);
	ck_assert_int_eq(r.nerror, 1);
	ck_assert_str_eq(r.cond, "policy-violation");
	ck_assert_uint_eq(r.error_at, 201);
	rec_free(&r);
	free(pad);
}
END_TEST

START_TEST(test_restricted_xml)
{
	static const struct {
		const char *in;
		const char *text;
		int nopen, nstanza; /* reported before the error */
	} cases[] = {
	    {"<!DOCTYPE stream>" HDR END, "DTDs are not allowed", 0, 0},
	    {LAUGHS, "DTDs are not allowed", 0, 0},
	    {"<!DOCTYPE s [<!ENTITY xxe SYSTEM 'file:///etc/passwd'>]>" HDR
	     "<message><body>&xxe;</body></message>",
	        "DTDs are not allowed", 0, 0},
	    {"<!DOCTYPE s [<!ENTITY x 'y'>]>" HDR END, "DTDs are not allowed", 0, 0},
	    {"<!DOCTYPE s SYSTEM 'http://example.com/s.dtd'>" HDR END, "DTDs are not allowed", 0,
	        0},
	    {"<?xml version='1.0'?><?foo bar?>" HDR END, "processing instructions", 0, 0},
	    {"<!-- before -->" HDR END, "comments are not allowed", 0, 0},
	    {HDR "<?foo bar?>" IQ END, "processing instructions", 1, 0},
	    {HDR IQ "<!-- between -->" IQ END, "comments are not allowed", 1, 1},
	    {HDR "<message><body><!-- inside --></body></message>" END, "comments", 1, 0},
	    {HDR "<message><?foo?></message>" END, "processing instructions", 1, 0},
	    {HDR "<message>&foo;</message>" END, "undefined entity", 1, 0},
	};
	struct rec r;
	size_t i;

	for (i = 0; i < nitems(cases); i++) {
		parse_str(cases[i].in, NULL, &r);
		ck_assert_msg(r.nerror == 1 && strcmp(r.cond, "restricted-xml") == 0,
		    "case %zu: %s", i, r.log);
		ck_assert_msg(strstr(r.text, cases[i].text) != NULL, "case %zu: %s", i, r.text);
		ck_assert_int_eq(r.nopen, cases[i].nopen);
		ck_assert_int_eq(r.nstanza, cases[i].nstanza);
		rec_free(&r);
	}
}
END_TEST

START_TEST(test_xml_declaration)
{
	struct rec r;

	parse_str("<?xml version='1.0'?>" HDR IQ END, NULL, &r);
	ck_assert_int_eq(r.nerror, 0);
	ck_assert_int_eq(r.nstanza, 1);
	ck_assert_int_eq(r.nclose, 1);
	rec_free(&r);

	parse_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n" HDR IQ END, NULL, &r);
	ck_assert_int_eq(r.nerror, 0);
	ck_assert_int_eq(r.nclose, 1);
	rec_free(&r);

	expect_error("<?xml version='1.0' encoding='ISO-8859-1'?>" HDR END, NULL,
	    "unsupported-encoding", "ISO-8859-1");
	/* Only at the very start. */
	expect_error(HDR "<?xml version='1.0'?>" END, NULL, "not-well-formed", NULL);
	expect_error(" <?xml version='1.0'?>" HDR END, NULL, "not-well-formed", NULL);
}
END_TEST

static void
payload_hook(struct rec *r, const struct xs_elem *e, const char *raw, size_t rawlen)
{
	const struct xs_elem *foo;

	(void)r;
	(void)raw;
	(void)rawlen;
	foo = xs_child(e, "foo", "urn:x");
	ck_assert_ptr_nonnull(foo);
	ck_assert_str_eq(xs_attr(foo, "urn:x attr"), "1");
	ck_assert_str_eq(xs_attr(foo, "plain"), "2");
	ck_assert_ptr_null(xs_attr(foo, "attr"));
	ck_assert_ptr_nonnull(xs_child(foo, "bar", "urn:x"));
	ck_assert_ptr_nonnull(xs_child(foo, "baz", XS_NS_COMPONENT));
	ck_assert_ptr_nonnull(xs_child(e, "none", ""));
}

START_TEST(test_namespaces)
{
	struct rec cfg, r;
	const char *in;

	/* Any prefix may stand for the streams namespace. */
	parse_str("<s:stream xmlns:s='" XS_NS_STREAMS "' xmlns='" XS_NS_COMPONENT "' to='c'>" IQ
	          "</s:stream>",
	    NULL, &r);
	ck_assert_int_eq(r.nerror, 0);
	ck_assert_int_eq(r.nopen, 1);
	ck_assert_int_eq(r.nstanza, 1);
	ck_assert_int_eq(r.nclose, 1);
	rec_free(&r);

	expect_error("<stream:stream xmlns:stream='" XS_NS_STREAMS "' xmlns='jabber:client'>" END,
	    NULL, "invalid-namespace", "default namespace is not jabber:component:accept");
	expect_error("<stream:stream xmlns:stream='" XS_NS_STREAMS "'>" END, NULL,
	    "invalid-namespace", "default namespace");
	expect_error(
	    "<stream:stream xmlns:stream='http://example.com/streams' xmlns='" XS_NS_COMPONENT
	    "'>" END,
	    NULL, "invalid-namespace", "not in namespace " XS_NS_STREAMS);
	expect_error(
	    "<stream xmlns='" XS_NS_STREAMS "'></stream>", NULL, "invalid-namespace", NULL);
	expect_error("<stream:features " NS_DECLS "/>", NULL, "invalid-namespace", "<features>");
	expect_error("<handshake xmlns='" XS_NS_COMPONENT "'/>", NULL, "invalid-namespace", NULL);

	/* Prefixes must be bound, on the header as in stanzas. */
	expect_error("<stream:stream xmlns='" XS_NS_COMPONENT "'>" END, NULL, "not-well-formed",
	    "unbound prefix");
	expect_error(
	    HDR "<message><y:foo/></message>" END, NULL, "not-well-formed", "unbound prefix");
	expect_error(HDR "<message y:a='1'/>" END, NULL, "not-well-formed", "unbound prefix");

	in = HDR "<message><x:foo xmlns:x='urn:x' x:attr='1' plain='2'><x:bar/><baz/></x:foo>"
	         "<none xmlns=''/></message>" END;
	memset(&cfg, 0, sizeof(cfg));
	cfg.hook = payload_hook;
	parse_all(in, strlen(in), NULL, &cfg, &r);
	ck_assert_int_eq(r.nerror, 0);
	ck_assert_int_eq(r.nstanza, 1);
	ck_assert_ptr_nonnull(
	    strstr(r.log, "stanza <message><foo xmlns='urn:x' xmlns:ns0='urn:x' "
	                  "ns0:attr='1' plain='2'><bar/><baz xmlns='" XS_NS_COMPONENT
	                  "'/></foo><none xmlns=''/></message>\n"));
	rec_free(&r);
}
END_TEST

struct want_error {
	const char *condition;
	const char *text;
};

static void
stream_error_hook(struct rec *r, const struct xs_elem *e, const char *raw, size_t rawlen)
{
	const struct want_error *w = r->ctx;
	const char *condition, *text;

	(void)raw;
	(void)rawlen;
	ck_assert_str_eq(e->name, "error");
	ck_assert_str_eq(e->ns, XS_NS_STREAMS);
	xs_stream_error_parse(e, &condition, &text);
	ck_assert_pstr_eq(condition, w->condition);
	ck_assert_pstr_eq(text, w->text);
}

static void
expect_stream_error(const char *in, const char *condition, const char *text)
{
	struct want_error w = {condition, text};
	struct rec cfg, r;

	memset(&cfg, 0, sizeof(cfg));
	cfg.hook = stream_error_hook;
	cfg.ctx = &w;
	parse_all(in, strlen(in), NULL, &cfg, &r);
	ck_assert_int_eq(r.nerror, 0);
	ck_assert_int_eq(r.nstanza, 1);
	rec_free(&r);
}

START_TEST(test_stream_error_parse)
{
	/* Prosody 0.12, wrong secret. */
	expect_stream_error(
	    HDR PROSODY_ERROR, "not-authorized", "Given token does not match calculated token");
	/* ejabberd 23.01, wrong secret. */
	expect_stream_error(HDR EJABBERD_ERROR, "not-authorized", NULL);
	/* <text/> first, an application condition, an empty <text/>. */
	expect_stream_error(HDR "<stream:error><text xmlns='" ERR_NS "'>why</text>"
	                        "<bad xmlns='urn:example:app'/><conflict xmlns='" ERR_NS
	                        "'/></stream:error>",
	    "conflict", "why");
	expect_stream_error(HDR "<stream:error><host-unknown xmlns='" ERR_NS
	                        "'/><text xmlns='" ERR_NS "'/></stream:error>",
	    "host-unknown", "");
	expect_stream_error(HDR "<stream:error/>", NULL, NULL);
}
END_TEST

START_TEST(test_stream_error_output)
{
	const char *text = "stanza larger than 5 bytes & <more> 'quoted'";
	struct want_error w = {"policy-violation", text};
	struct rec cfg, r;
	char *s, *in;

	s = xs_stream_error("not-authorized", NULL);
	ck_assert_str_eq(
	    s, "<stream:error><not-authorized xmlns='" ERR_NS "'/></stream:error></stream:stream>");
	free(s);

	s = xs_stream_error("policy-violation", text);
	ck_assert_str_eq(s,
	    "<stream:error><policy-violation xmlns='" ERR_NS "'/><text xmlns='" ERR_NS
	    "'>stanza larger than 5 bytes &amp; &lt;more&gt; &apos;quoted&apos;</text>"
	    "</stream:error></stream:stream>");

	/* What we send parses back, and ends the stream. */
	in = xasprintf("%s%s", HDR, s);
	memset(&cfg, 0, sizeof(cfg));
	cfg.hook = stream_error_hook;
	cfg.ctx = &w;
	parse_all(in, strlen(in), NULL, &cfg, &r);
	ck_assert_int_eq(r.nstanza, 1);
	ck_assert_int_eq(r.nclose, 1);
	ck_assert_int_eq(r.nerror, 0);
	rec_free(&r);
	free(in);
	free(s);
}
END_TEST

START_TEST(test_not_well_formed)
{
	static const struct {
		const char *in;
		const char *text;
	} cases[] = {
	    {HDR "<message></iq>" END, "mismatched tag"},
	    {HDR "<message to='a' to='b'/>" END, "duplicate attribute"},
	    {HDR "<message>\xff</message>" END, "not well-formed"},
	    {HDR "<message>\xc3</message>" END, "not well-formed"},
	    {HDR "<message to=a/>" END, "not well-formed"},
	    {HDR "<message>a & b</message>" END, "not well-formed"},
	    {HDR "<message/ >" END, "not well-formed"},
	    {"hello" HDR END, "not well-formed"},
	    {HDR "<message xmlns:p=''/>" END, ""},
	};
	struct rec r;
	struct xs *x;
	size_t i;

	for (i = 0; i < nitems(cases); i++)
		expect_error(cases[i].in, NULL, "not-well-formed", cases[i].text);

	/* Reported once; the stream stays dead. */
	memset(&r, 0, sizeof(r));
	x = new_xs(NULL, &r);
	feed(x, &r, HDR, strlen(HDR));
	ck_assert_int_eq(r.rc, 0);
	feed(x, &r, "<a></b>", 7);
	ck_assert_int_eq(r.rc, -1);
	ck_assert_int_eq(r.nerror, 1);
	ck_assert_str_eq(r.cond, "not-well-formed");
	/* expat's words and where: the column is expat's choice, the line is not. */
	ck_assert_msg(strncmp(r.text, "mismatched tag at line 1, column ", 33) == 0, "%s", r.text);
	feed(x, &r, IQ, strlen(IQ));
	feed(x, &r, "</b>", 4);
	ck_assert_int_eq(xs_feed(x, "", 0), -1);
	ck_assert_int_eq(r.nerror, 1);
	ck_assert_int_eq(r.nstanza, 0);
	xs_free(x);
	rec_free(&r);
}
END_TEST

/* "<message>" with depth - 1 levels of <a> in it. */
static char *
nested(unsigned depth)
{
	char *in = xstrdup(HDR "<message>"), *t;
	unsigned i;

	for (i = 1; i < depth; i++) {
		t = xasprintf("%s<a>", in);
		free(in);
		in = t;
	}
	for (i = 1; i < depth; i++) {
		t = xasprintf("%s</a>", in);
		free(in);
		in = t;
	}
	t = xasprintf("%s</message>%s", in, END);
	free(in);
	return t;
}

START_TEST(test_depth_limit)
{
	struct rec r;
	char *in;

	in = nested(32);
	parse_str(in, NULL, &r);
	ck_assert_int_eq(r.nerror, 0);
	ck_assert_int_eq(r.nstanza, 1);
	rec_free(&r);
	free(in);

	in = nested(33);
	expect_error(in, NULL, "policy-violation", "elements nested deeper than 32 levels");
	free(in);
}
END_TEST

/* A stanza with n attributes, the first in a declared namespace when ns is set. */
static char *
with_attrs(unsigned n, int ns)
{
	char *in = xstrdup(HDR "<message"), *t;
	unsigned i;

	for (i = 0; i < n; i++) {
		if (ns && i == 0)
			t = xasprintf("%s xmlns:p='urn:p' p:a0='v'", in);
		else
			t = xasprintf("%s a%u='v'", in, i);
		free(in);
		in = t;
	}
	t = xasprintf("%s/>%s", in, END);
	free(in);
	return t;
}

START_TEST(test_attrs_limit)
{
	struct rec r;
	char *in;

	in = with_attrs(64, 0);
	parse_str(in, NULL, &r);
	ck_assert_int_eq(r.nerror, 0);
	ck_assert_int_eq(r.nstanza, 1);
	rec_free(&r);
	free(in);

	in = with_attrs(65, 0);
	expect_error(in, NULL, "policy-violation", "more than 64 attributes on one element");
	free(in);

	/* Namespace declarations count: 63 attributes and one xmlns:p pass, 64 and one do not. */
	in = with_attrs(63, 1);
	parse_str(in, NULL, &r);
	ck_assert_int_eq(r.nerror, 0);
	rec_free(&r);
	free(in);
	in = with_attrs(64, 1);
	expect_error(in, NULL, "policy-violation", "more than 64 attributes");
	free(in);
}
END_TEST

/* A stanza whose <x/> declares n namespaces: a default one, then prefixes. */
static char *
with_nsdecls(unsigned n)
{
	char *in = xstrdup(HDR "<message><x"), *t;
	unsigned i;

	for (i = 0; i < n; i++) {
		if (i == 0)
			t = xasprintf("%s xmlns='urn:x'", in);
		else
			t = xasprintf("%s xmlns:p%u='urn:p%u'", in, i, i);
		free(in);
		in = t;
	}
	t = xasprintf("%s/></message>%s", in, END);
	free(in);
	return t;
}

START_TEST(test_nsdecls_limit)
{
	struct xs_limits l;
	struct rec r;
	char *in;

	/* The default: 16 declarations on one element pass, 17 do not. */
	in = with_nsdecls(16);
	parse_str(in, NULL, &r);
	ck_assert_int_eq(r.nerror, 0);
	ck_assert_int_eq(r.nstanza, 1);
	rec_free(&r);
	free(in);
	in = with_nsdecls(17);
	expect_error(
	    in, NULL, "policy-violation", "more than 16 namespace declarations on one element");
	free(in);

	/* Counted per element: 3 on each of two nested elements pass a limit of 3. */
	xs_limits_default(&l);
	l.nsdecls = 3;
	parse_str(HDR "<message xmlns:a='urn:a' xmlns:b='urn:b' xmlns:c='urn:c'>"
	              "<x xmlns='urn:x' xmlns:d='urn:d' xmlns:e='urn:e'/></message>" END,
	    &l, &r);
	ck_assert_int_eq(r.nerror, 0);
	ck_assert_int_eq(r.nstanza, 1);
	rec_free(&r);
	expect_error(HDR "<message xmlns:a='urn:a' xmlns:b='urn:b' xmlns:c='urn:c' "
	                 "xmlns:d='urn:d'/>" END,
	    &l, "policy-violation", "more than 3 namespace declarations on one element");

	/* The stream header declares two already. */
	l.nsdecls = 2;
	parse_str(HDR IQ END, &l, &r);
	ck_assert_int_eq(r.nerror, 0);
	rec_free(&r);
	expect_error("<stream:stream " NS_DECLS " xmlns:db='jabber:server:dialback'>" END, &l,
	    "policy-violation", "more than 2 namespace declarations on one element");
}
END_TEST

/* "<message to='...'/>" with a value of n bytes, after entities are expanded. */
static char *
with_value(size_t n, const char *unit, size_t unitlen)
{
	char *in = xstrdup(HDR "<message to='"), *t;
	size_t i;

	for (i = 0; i < n; i += unitlen) {
		t = xasprintf("%s%s", in, unit);
		free(in);
		in = t;
	}
	t = xasprintf("%s'/>%s", in, END);
	free(in);
	return t;
}

START_TEST(test_attrlen_limit)
{
	struct xs_limits l;
	struct rec r;
	char *in, *uri;

	xs_limits_default(&l);
	l.attrlen = 40;
	in = with_value(40, "x", 1);
	parse_str(in, &l, &r);
	ck_assert_int_eq(r.nerror, 0);
	ck_assert_int_eq(r.nstanza, 1);
	rec_free(&r);
	free(in);
	in = with_value(41, "x", 1);
	expect_error(in, &l, "policy-violation", "value of attribute to longer than 40 bytes");
	free(in);

	/* The parsed value counts: 40 "&amp;" are 200 bytes sent but 40 held. */
	in = with_value(40, "&amp;", 1);
	parse_str(in, &l, &r);
	ck_assert_int_eq(r.nerror, 0);
	rec_free(&r);
	free(in);

	/* A qualified attribute is named by its local name. */
	expect_error(HDR "<message xmlns:p='urn:p' p:flag='" /* 41 bytes */
	                 "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy'/>" END,
	    &l, "policy-violation", "value of attribute flag longer than 40 bytes");
	/* In the stream header too. */
	expect_error("<stream:stream " NS_DECLS
	             " id='zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz'>" END,
	    &l, "policy-violation", "value of attribute id longer than 40 bytes");

	/* A namespace name is an attribute value as well. */
	uri = xasprintf("urn:%s", "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"); /* 41 bytes */
	ck_assert_uint_eq(strlen(uri), 41);
	in = xasprintf(HDR "<message><x xmlns='%s'/></message>" END, uri);
	expect_error(in, &l, "policy-violation", "namespace name longer than 40 bytes");
	free(in);
	in = xasprintf(HDR "<message xmlns:q='%s'/>" END, uri);
	expect_error(in, &l, "policy-violation", "namespace name longer than 40 bytes");
	free(in);
	free(uri);
}
END_TEST

START_TEST(test_between_stanzas)
{
	struct rec r;

	/* Keepalives, also as character references and CDATA. */
	parse_str(
	    HDR "\n \t" HANDSHAKE "   \r\n\r\n&#32;&#x9;<![CDATA[ \n]]>" IQ "\n" END, NULL, &r);
	ck_assert_int_eq(r.nerror, 0);
	ck_assert_int_eq(r.nstanza, 2);
	ck_assert_int_eq(r.nclose, 1);
	rec_free(&r);

	expect_error(HDR HANDSHAKE "hello" IQ END, NULL, "bad-format", "text outside stanzas");
	expect_error(HDR "\n x" END, NULL, "bad-format", "text outside stanzas");
	expect_error(HDR "<![CDATA[x]]>" END, NULL, "bad-format", NULL);
	expect_error(HDR "&#65;" END, NULL, "bad-format", NULL);
}
END_TEST

START_TEST(test_after_close)
{
	struct rec r;
	struct xs *x;

	/* Whatever follows </stream:stream> is ignored, even garbage. */
	parse_str(HDR IQ END "<<garbage & \xff", NULL, &r);
	ck_assert_int_eq(r.nerror, 0);
	ck_assert_int_eq(r.nclose, 1);
	ck_assert_int_eq(r.rc, 0);
	rec_free(&r);

	memset(&r, 0, sizeof(r));
	x = new_xs(NULL, &r);
	feed(x, &r, HDR END, strlen(HDR END));
	ck_assert_int_eq(r.rc, 0);
	feed(x, &r, IQ, strlen(IQ));
	ck_assert_int_eq(r.rc, 0);
	ck_assert_int_eq(nevents(&r), 2);
	xs_free(x);
	rec_free(&r);
}
END_TEST

START_TEST(test_handler_stop)
{
	const char *in = HDR HANDSHAKE IQ END;
	struct rec cfg, r;

	memset(&cfg, 0, sizeof(cfg));
	cfg.stop_stanza = 1;
	parse_all(in, strlen(in), NULL, &cfg, &r);
	ck_assert_int_eq(r.nstanza, 1);
	ck_assert_int_eq(r.nclose, 0);
	ck_assert_int_eq(r.nerror, 0);
	ck_assert_int_eq(r.rc, -1);
	rec_free(&r);

	/* Stopping in the same piece as a following empty element. */
	memset(&cfg, 0, sizeof(cfg));
	cfg.stop_stanza = 1;
	run(HDR "<a/><b/>" END, strlen(HDR "<a/><b/>" END), NULL, 1000, 0, &cfg, &r);
	ck_assert_int_eq(r.nstanza, 1);
	ck_assert_int_eq(r.rc, -1);
	rec_free(&r);

	memset(&cfg, 0, sizeof(cfg));
	cfg.stop_open = 1;
	parse_all(in, strlen(in), NULL, &cfg, &r);
	ck_assert_int_eq(r.nopen, 1);
	ck_assert_int_eq(r.nstanza, 0);
	ck_assert_int_eq(r.nerror, 0);
	ck_assert_int_eq(r.rc, -1);
	rec_free(&r);

	memset(&cfg, 0, sizeof(cfg));
	cfg.stop_close = 1;
	parse_all(in, strlen(in), NULL, &cfg, &r);
	ck_assert_int_eq(r.nstanza, 2);
	ck_assert_int_eq(r.nclose, 1);
	ck_assert_int_eq(r.nerror, 0);
	ck_assert_int_eq(r.rc, -1);
	rec_free(&r);
}
END_TEST

START_TEST(test_escape)
{
	char *s;

	s = xs_escape("a&b<c>d'e\"f");
	ck_assert_str_eq(s, "a&amp;b&lt;c&gt;d&apos;e&quot;f");
	free(s);
	s = xs_escape("");
	ck_assert_str_eq(s, "");
	free(s);
	s = xs_escape("plain \xe2\x98\xba\t\n");
	ck_assert_str_eq(s, "plain \xe2\x98\xba\t\n");
	free(s);
	s = xs_escape("&&");
	ck_assert_str_eq(s, "&amp;&amp;");
	free(s);
}
END_TEST

START_TEST(test_header)
{
	struct rec r;
	char *s, *in;

	s = xs_header("cb1.example.com", NULL, "a'b");
	ck_assert_str_eq(s, "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' "
	                    "xmlns:stream='http://etherx.jabber.org/streams' to='cb1.example.com' "
	                    "id='a&apos;b'>");
	free(s);
	s = xs_header(NULL, "example.com", NULL);
	ck_assert_str_eq(s, "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' "
	                    "xmlns:stream='http://etherx.jabber.org/streams' from='example.com'>");
	free(s);
	s = xs_header(NULL, NULL, NULL);
	ck_assert_str_eq(s, "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' "
	                    "xmlns:stream='http://etherx.jabber.org/streams'>");
	free(s);

	/* What we send is what we accept. */
	s = xs_header("c<1>", "d&", "x\"y");
	in = xasprintf("%s%s", s, END);
	parse_str(in, NULL, &r);
	ck_assert_str_eq(r.log, "open <stream xmlns='" XS_NS_STREAMS "' to='c&lt;1&gt;' "
	                        "from='d&amp;' id='x&quot;y'/>\nclose\nrc 0\n");
	rec_free(&r);
	free(in);
	free(s);
}
END_TEST

START_TEST(test_limits_default)
{
	struct xs_limits l;

	xs_limits_default(&l);
	ck_assert_uint_eq(l.stanza, 262144);
	ck_assert_uint_eq(l.header, 4096);
	ck_assert_uint_eq(l.depth, 32);
	ck_assert_uint_eq(l.attrs, 64);
	ck_assert_uint_eq(l.nsdecls, 16);
	ck_assert_uint_eq(l.attrlen, 8192);
}
END_TEST

/* A deep copy of a tree, to compare after the parser has freed it. */
static struct xs_elem *
elem_dup(const struct xs_elem *e)
{
	struct xs_elem *c;
	size_t i, n;

	if (e == NULL)
		return NULL;
	c = xcalloc(1, sizeof(*c));
	c->name = xstrdup(e->name);
	c->ns = xstrdup(e->ns);
	for (n = 0; e->attrs[n] != NULL; n++)
		;
	c->attrs = xcalloc(n + 1, sizeof(char *));
	for (i = 0; i < n; i++)
		c->attrs[i] = xstrdup(e->attrs[i]);
	c->text = e->text != NULL ? xstrdup(e->text) : NULL;
	c->headlen = e->headlen;
	c->tail = e->tail != NULL ? xstrdup(e->tail) : NULL;
	c->child = elem_dup(e->child);
	c->next = elem_dup(e->next);
	return c;
}

static void
elem_free(struct xs_elem *e)
{
	size_t i;

	if (e == NULL)
		return;
	elem_free(e->child);
	elem_free(e->next);
	for (i = 0; e->attrs[i] != NULL; i++)
		free(e->attrs[i]);
	free(e->attrs);
	free(e->name);
	free(e->ns);
	free(e->text);
	free(e->tail);
	free(e);
}

static void
elem_assert_equal(const struct xs_elem *a, const struct xs_elem *b)
{
	size_t i;

	for (; a != NULL || b != NULL; a = a->next, b = b->next) {
		ck_assert_ptr_nonnull(a);
		ck_assert_ptr_nonnull(b);
		ck_assert_str_eq(a->name, b->name);
		ck_assert_str_eq(a->ns, b->ns);
		ck_assert_pstr_eq(a->text, b->text);
		for (i = 0; a->attrs[i] != NULL && b->attrs[i] != NULL; i++)
			ck_assert_str_eq(a->attrs[i], b->attrs[i]);
		ck_assert_ptr_eq(a->attrs[i], b->attrs[i]);
		elem_assert_equal(a->child, b->child);
	}
}

static void
keep_hook(struct rec *r, const struct xs_elem *e, const char *raw, size_t rawlen)
{
	struct xs_elem **kept = r->ctx;

	(void)raw;
	(void)rawlen;
	elem_free(*kept);
	*kept = elem_dup(e);
}

/* Parse one stanza inside a stream; its tree, freed with elem_free. */
static struct xs_elem *
parse_stanza(const char *stanza)
{
	struct xs_elem *kept = NULL;
	struct rec cfg, r;
	char *in;

	memset(&cfg, 0, sizeof(cfg));
	cfg.hook = keep_hook;
	cfg.ctx = &kept;
	in = xasprintf("%s%s%s", HDR, stanza, END);
	run(in, strlen(in), NULL, strlen(in), 0, &cfg, &r);
	ck_assert_msg(r.nerror == 0 && r.nstanza == 1, "%s", r.log);
	rec_free(&r);
	free(in);
	return kept;
}

static char *
serialize(const struct xs_elem *e)
{
	struct buf b;
	char *s;

	buf_init(&b, 1 << 20);
	ck_assert_int_eq(xs_serialize(e, XS_NS_COMPONENT, &b), 0);
	s = xstrndup(buf_head(&b), b.len);
	buf_free(&b);
	return s;
}

START_TEST(test_serialize_round_trip)
{
	const char *in =
	    "<message to='a&amp;b' xml:lang='en' x:k='1' y:k='2' x:j='3' xmlns:x='urn:x' "
	    "xmlns:y='urn:y' note='tab&#9;nl&#10;cr&#13;'>"
	    "<body>line1&#13;&#10;line2 &lt;&gt;&amp;&apos;&quot;</body>"
	    "<nons xmlns=''><in xmlns='jabber:component:accept'/></nons>"
	    "<z:deep xmlns:z='urn:z'><z:deeper z:a='b'/></z:deep>"
	    "mixed text</message>";
	const char *want =
	    "<message to='a&amp;b' xml:lang='en' xmlns:ns2='urn:x' ns2:k='1' xmlns:ns3='urn:y' "
	    "ns3:k='2' ns2:j='3' note='tab&#9;nl&#10;cr&#13;'>"
	    "<body>line1&#13;\nline2 &lt;&gt;&amp;&apos;&quot;</body>"
	    "<nons xmlns=''><in xmlns='jabber:component:accept'/></nons>"
	    "<deep xmlns='urn:z'><deeper xmlns:ns0='urn:z' ns0:a='b'/></deep>mixed text</message>";
	struct xs_elem *first, *second;
	char *s1, *s2;

	first = parse_stanza(in);
	ck_assert_str_eq(first->text, "mixed text");
	ck_assert_str_eq(xs_attr(first, "note"), "tab\tnl\ncr\r");
	ck_assert_str_eq(xs_attr(first, XS_NS_XML " lang"), "en");
	s1 = serialize(first);
	ck_assert_str_eq(s1, want);

	second = parse_stanza(s1);
	elem_assert_equal(first, second);
	s2 = serialize(second);
	ck_assert_str_eq(s2, s1);

	free(s1);
	free(s2);
	elem_free(first);
	elem_free(second);
}
END_TEST

struct mixed_out {
	int n;
	char text[512];
	char ptext[64];
};

static int
mixed_open(void *arg, const struct xs_elem *hdr)
{
	(void)arg;
	(void)hdr;
	return 0;
}

static int
mixed_stanza(void *arg, const struct xs_elem *e, const char *raw, size_t rawlen)
{
	struct mixed_out *o = arg;
	struct buf b;

	(void)raw;
	(void)rawlen;
	buf_init(&b, 4096);
	ck_assert_int_eq(xs_serialize(e, XS_NS_COMPONENT, &b), 0);
	buf_add(&b, "", 1);
	snprintf(o->text, sizeof(o->text), "%s", b.data);
	/* text keeps its contract: all direct character data, concatenated */
	ck_assert_str_eq(e->child->text, "Hello ! end");
	buf_free(&b);
	o->n++;
	return 0;
}

static int
mixed_close(void *arg)
{
	(void)arg;
	return 0;
}

static void
mixed_error(void *arg, const char *cond, const char *text)
{
	(void)arg;
	ck_abort_msg("error %s: %s", cond, text);
}

static const struct xs_handler mixed_handler = {mixed_open, mixed_stanza, mixed_close, mixed_error};

/* Text after a child stays after it: <p>Hello <b>world</b>!</p> */
START_TEST(test_mixed_content_order)
{
	static const char stream[] =
	    "<stream:stream xmlns='jabber:component:accept' "
	    "xmlns:stream='http://etherx.jabber.org/streams' to='a'>"
	    "<message to='b' from='a'><p>Hello <b>world</b>! <i>x</i>end</p></message>";
	static const char want[] = "<message to='b' from='a'><p>Hello <b>world</b>! "
	                           "<i>x</i>end</p></message>";
	struct mixed_out out = {0};
	struct xs_limits lim;
	struct xs *x;

	xs_limits_default(&lim);
	x = xs_new(XS_NS_COMPONENT, &lim, &mixed_handler, &out);
	ck_assert_int_eq(xs_feed(x, stream, sizeof(stream) - 1), 0);
	xs_free(x);
	ck_assert_int_eq(out.n, 1);
	ck_assert_str_eq(out.text, want);
}
END_TEST

START_TEST(test_serialize_built)
{
	char *pattrs[] = {"type", "unavailable", XS_NS_XML " lang", "fr", NULL};
	char *none[] = {NULL};
	struct xs_elem status = {
	    .name = "status", .ns = XS_NS_COMPONENT, .attrs = none, .text = "bye <3"};
	struct xs_elem presence = {
	    .name = "presence", .ns = XS_NS_COMPONENT, .attrs = pattrs, .child = &status};
	struct xs_elem bare = {.name = "x", .ns = "", .attrs = none};
	const char *want = "<presence type='unavailable' xml:lang='fr'><status>bye &lt;3</status>"
	                   "</presence>";
	struct buf b;
	size_t len = strlen(want);

	/* Exactly enough room, then one byte short: nothing of the element is left. */
	buf_init(&b, len + 3);
	ck_assert_int_eq(buf_addstr(&b, "abc"), 0);
	ck_assert_int_eq(xs_serialize(&presence, XS_NS_COMPONENT, &b), 0);
	ck_assert_uint_eq(b.len, len + 3);
	ck_assert_mem_eq(buf_head(&b) + 3, want, len);
	buf_free(&b);

	buf_init(&b, len + 2);
	ck_assert_int_eq(buf_addstr(&b, "abc"), 0);
	ck_assert_int_eq(xs_serialize(&presence, XS_NS_COMPONENT, &b), -1);
	ck_assert_uint_eq(b.len, 3);
	ck_assert_mem_eq(buf_head(&b), "abc", 3);
	ck_assert_int_eq(buf_addstr(&b, "d"), 0);
	ck_assert_mem_eq(buf_head(&b), "abcd", 4);
	buf_free(&b);

	/* The top element is compared with the content namespace given. */
	buf_init(&b, 1024);
	ck_assert_int_eq(xs_serialize(&presence, "jabber:server", &b), 0);
	ck_assert_int_eq(xs_serialize(&bare, XS_NS_COMPONENT, &b), 0);
	ck_assert_int_eq(xs_serialize(&bare, "", &b), 0);
	ck_assert_int_eq(buf_add(&b, "", 1), 0);
	ck_assert_str_eq(buf_head(&b),
	    "<presence xmlns='jabber:component:accept' type='unavailable' xml:lang='fr'>"
	    "<status>bye &lt;3</status></presence><x xmlns=''/><x/>");
	buf_free(&b);
}
END_TEST

/* The content of an element as received: past a '>' inside a quoted value, up to the end tag. */
START_TEST(test_raw_content)
{
	static const char a[] =
	    "<f j='a>b' k=\"it's\"><message to='x'><body>1 &lt; 2</body></message></f>";
	static const char b[] = "<f j='x'/>";
	static const char c[] = "<f></f>";
	static const char d[] = "<f j='a' ";
	size_t start, end;

	ck_assert_int_eq(xs_raw_content(a, strlen(a), &start, &end), 0);
	ck_assert_int_eq(
	    (int)(end - start), (int)strlen("<message to='x'><body>1 &lt; 2</body></message>"));
	ck_assert_int_eq(
	    strncmp(a + start, "<message to='x'><body>1 &lt; 2</body></message>", end - start), 0);
	ck_assert_int_eq(xs_raw_content(b, strlen(b), &start, &end), -1);
	ck_assert_int_eq(xs_raw_content(c, strlen(c), &start, &end), 0);
	ck_assert_uint_eq(end - start, 0);
	ck_assert_int_eq(xs_raw_content(d, strlen(d), &start, &end), -1);
}
END_TEST

START_TEST(test_ping_form)
{
	char *s = xs_ping("xcomp-ping-1", "cb1.example.com", "example.com");

	ck_assert_str_eq(s, "<iq type='get' id='xcomp-ping-1' from='cb1.example.com' "
	                    "to='example.com'><ping xmlns='urn:xmpp:ping'/></iq>");
	free(s);
	s = xs_ping("a'b", "x<y", "z&");
	ck_assert_str_eq(s, "<iq type='get' id='a&apos;b' from='x&lt;y' to='z&amp;'>"
	                    "<ping xmlns='urn:xmpp:ping'/></iq>");
	free(s);
}
END_TEST

/* xs_free from inside each callback: nothing follows, the feed returns -1. */
struct freer {
	struct xs *s;
	int where; /* 1 open, 2 stanza, 3 close, 4 error */
	int calls; /* callbacks seen, the freeing one included */
	int after; /* callbacks after the free */
	int freed;
};

static void
freer_hit(struct freer *f, int where)
{
	f->calls++;
	if (f->freed)
		f->after++;
	if (where == f->where && !f->freed) {
		f->freed = 1;
		xs_free(f->s);
	}
}

static int
freer_open(void *arg, const struct xs_elem *e)
{
	(void)e;
	freer_hit(arg, 1);
	return 0;
}

static int
freer_stanza(void *arg, const struct xs_elem *e, const char *raw, size_t len)
{
	(void)e;
	(void)raw;
	(void)len;
	freer_hit(arg, 2);
	return 0;
}

static int
freer_close(void *arg)
{
	freer_hit(arg, 3);
	return 0;
}

static void
freer_error(void *arg, const char *cond, const char *text)
{
	(void)cond;
	(void)text;
	freer_hit(arg, 4);
}

START_TEST(test_free_inside_callbacks)
{
	static const struct xs_handler h = {freer_open, freer_stanza, freer_close, freer_error};
	static const char *input[] = {
	    HDR IQ IQ END,
	    HDR IQ IQ END,
	    HDR END IQ,
	    HDR "<iq><!-- no --></iq>" IQ,
	};
	struct xs_limits lim;
	struct freer f;
	int where;

	xs_limits_default(&lim);
	for (where = 1; where <= 4; where++) {
		memset(&f, 0, sizeof(f));
		f.where = where;
		f.s = xs_new(XS_NS_COMPONENT, &lim, &h, &f);
		ck_assert_int_eq(xs_feed(f.s, input[where - 1], strlen(input[where - 1])), -1);
		ck_assert_msg(f.freed, "callback %d never came", where);
		ck_assert_int_eq(f.after, 0);
		ck_assert_int_eq(f.calls, where == 1 ? 1 : where == 2 ? 2 : 2);
	}
}
END_TEST

static Suite *
xs_suite(void)
{
	Suite *s = suite_create("xs");
	TCase *tc = tcase_create("xs");

	/* Every input is parsed once per byte of it; valgrind makes that slow. */
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_component_stream);
	tcase_add_test(tc, test_raw_bytes);
	tcase_add_test(tc, test_delivered_when_complete);
	tcase_add_test(tc, test_stanza_limit_exact);
	tcase_add_test(tc, test_stanza_limit_default);
	tcase_add_test(tc, test_stanza_limit_unterminated);
	tcase_add_test(tc, test_header_limit);
	tcase_add_test(tc, test_restricted_xml);
	tcase_add_test(tc, test_xml_declaration);
	tcase_add_test(tc, test_namespaces);
	tcase_add_test(tc, test_stream_error_parse);
	tcase_add_test(tc, test_stream_error_output);
	tcase_add_test(tc, test_not_well_formed);
	tcase_add_test(tc, test_depth_limit);
	tcase_add_test(tc, test_attrs_limit);
	tcase_add_test(tc, test_nsdecls_limit);
	tcase_add_test(tc, test_attrlen_limit);
	tcase_add_test(tc, test_between_stanzas);
	tcase_add_test(tc, test_after_close);
	tcase_add_test(tc, test_handler_stop);
	tcase_add_test(tc, test_escape);
	tcase_add_test(tc, test_header);
	tcase_add_test(tc, test_limits_default);
	tcase_add_test(tc, test_serialize_round_trip);
	tcase_add_test(tc, test_serialize_built);
	tcase_add_test(tc, test_mixed_content_order);
	tcase_add_test(tc, test_free_inside_callbacks);
	tcase_add_test(tc, test_ping_form);
	tcase_add_test(tc, test_raw_content);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return unit_run(xs_suite());
}

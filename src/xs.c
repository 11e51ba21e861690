/*
 * xs: the XMPP stream layer. expat does the XML; this file adds what RFC 6120
 * asks on top of it (the stream header and its namespaces, restricted XML,
 * limits on what a peer may make us hold), builds a small tree of each
 * depth-1 element and keeps that element's bytes as received, so that a
 * router can pass stanzas on without serialising them again.
 */

#include "config.h"

#include <expat.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "log.h"
#include "util.h"
#include "xs.h"

/*
 * expat reports names as "URI local". A space cannot occur in a local name,
 * and expat refuses a namespace URI that contains the separator.
 */
#define XS_SEP ' '

/*
 * expat copies whatever XML_Parse is given into its own buffer before it
 * parses it. Handing it the input in pieces of this size keeps that buffer
 * near one piece plus the token it is waiting to complete, which our limits
 * bound, however much the caller passes at once.
 */
#define XS_PIECE 4096

/* Which characters an escaper replaces. */
enum xs_esc {
	XS_ESC_BASIC, /* & < > ' " (xs_escape's contract) */
	XS_ESC_TEXT,  /* and CR, which a parser would read back as LF */
	XS_ESC_ATTR   /* and TAB, LF, CR, which a parser turns into spaces */
};

/* An element of a tree under construction. */
struct xs_node {
	struct xs_elem e; /* first: the struct xs_elem * handed out is the node */
	struct xs_node *parent;
	struct xs_elem *last; /* last child, to append in document order */
	size_t textlen;
	size_t textsize;
};

struct xs {
	XML_Parser parser; /* NULL once the stream is over */
	char *content_ns;
	struct xs_limits limits;
	struct xs_handler handler;
	void *arg;

	int dead;          /* error reported, or a handler asked to stop */
	int feeding;       /* xs_feed is on the stack */
	int free_asked;    /* xs_free was called meanwhile: free on the way out */
	int closed;        /* </stream:stream> received */
	unsigned depth;    /* open elements, the stream's own included */
	unsigned nsdecls;  /* xmlns attributes of the element being opened */
	int default_ns_ok; /* the header declared content_ns as default */
	int shallow;       /* build only each stanza's own element (xs_set_shallow) */
	unsigned skipped;  /* open elements not built (shallow) */

	struct xs_node *root; /* the stanza being read */
	struct xs_node *cur;

	/*
	 * Offsets count bytes from the start of the stream, as expat's
	 * XML_GetCurrentByteIndex does. raw holds the input from offset base
	 * on: the part of the current stanza that came in earlier pieces, or
	 * a token expat has not completed between stanzas (the start of the
	 * next one). piece is the input expat is parsing now.
	 */
	uint64_t fed;
	uint64_t stanza_start;
	struct buf raw;
	uint64_t base;
	const char *piece;
	uint64_t piece_start;
};

static int xs_parse(struct xs *, const char *, size_t);
static void xs_release(struct xs *);
static void xs_vfail(struct xs *, const char *, const char *, va_list)
    __attribute__((format(printf, 3, 0)));
static void xs_fail(struct xs *, const char *, const char *, ...)
    __attribute__((format(printf, 3, 4)));
static void xs_abort(struct xs *, const char *, const char *, ...)
    __attribute__((format(printf, 3, 4)));
static void xs_stop(struct xs *);
static void xs_expat_error(struct xs *);
static uint64_t xs_pos(struct xs *);
static uint64_t xs_endpos(struct xs *);
static void xs_discard(struct xs *, uint64_t);
static int xs_keep(struct xs *, uint64_t);
static int xs_toobig(struct xs *, uint64_t);
static int xs_attrs_ok(struct xs *, const char **, unsigned);
static void xs_header_start(struct xs *, const char *, const char **, unsigned);
static void xs_deliver(struct xs *, uint64_t);

static void XMLCALL xs_start(void *, const XML_Char *, const XML_Char **);
static void XMLCALL xs_end(void *, const XML_Char *);
static void XMLCALL xs_text(void *, const XML_Char *, int);
static void XMLCALL xs_nsdecl(void *, const XML_Char *, const XML_Char *);
static void XMLCALL xs_xmldecl(void *, const XML_Char *, const XML_Char *, int);
static void XMLCALL xs_doctype(void *, const XML_Char *, const XML_Char *, const XML_Char *, int);
static void XMLCALL xs_entitydecl(void *, const XML_Char *, int, const XML_Char *, int,
    const XML_Char *, const XML_Char *, const XML_Char *, const XML_Char *);
static void XMLCALL xs_pi(void *, const XML_Char *, const XML_Char *);
static void XMLCALL xs_comment(void *, const XML_Char *);

static struct xs_node *node_new(const char *, const char **, struct xs_node *);
static void node_free(struct xs_elem *);
static void node_addtext(struct xs_node *, const char *, size_t);
static void tail_add(struct xs_elem *, const char *, size_t);

static const char *esc_one(char, enum xs_esc);
static int ser_escape(struct buf *, const char *, size_t, enum xs_esc);
static int ser_elem(const struct xs_elem *, const char *, struct buf *);
static char *opt_attr(const char *, const char *);

void
xs_limits_default(struct xs_limits *l)
{
	l->stanza = 256 * 1024;
	l->header = 4096;
	l->depth = 32;
	l->attrs = 64;
	l->nsdecls = 16;
	l->attrlen = 8192;
}

struct xs *
xs_new(const char *content_ns, const struct xs_limits *limits, const struct xs_handler *handler,
    void *arg)
{
	struct xs *s;

	s = xcalloc(1, sizeof(*s));
	s->content_ns = xstrdup(content_ns != NULL ? content_ns : "");
	if (limits != NULL)
		s->limits = *limits;
	else
		xs_limits_default(&s->limits);
	s->handler = *handler;
	s->arg = arg;
	buf_init(&s->raw, s->limits.stanza);

	/*
	 * RFC 6120 11.6: the stream is UTF-8. Naming the encoding here makes
	 * expat ignore what an XML declaration says; xs_xmldecl refuses
	 * anything else.
	 */
	s->parser = XML_ParserCreateNS("UTF-8", XS_SEP);
	/* expat fails only when out of memory, which is fatal as in xmalloc. */
	if (s->parser == NULL)
		fatalx("%s: out of memory", __func__);
	XML_SetUserData(s->parser, s);
	XML_SetElementHandler(s->parser, xs_start, xs_end);
	XML_SetCharacterDataHandler(s->parser, xs_text);
	XML_SetStartNamespaceDeclHandler(s->parser, xs_nsdecl);
	XML_SetXmlDeclHandler(s->parser, xs_xmldecl);
	XML_SetStartDoctypeDeclHandler(s->parser, xs_doctype);
	XML_SetEntityDeclHandler(s->parser, xs_entitydecl);
	XML_SetProcessingInstructionHandler(s->parser, xs_pi);
	XML_SetCommentHandler(s->parser, xs_comment);
	/* Never read an external DTD; xs_doctype refuses the DOCTYPE anyway. */
	XML_SetParamEntityParsing(s->parser, XML_PARAM_ENTITY_PARSING_NEVER);
	/*
	 * Reparse deferral (expat 2.6, backported to Debian 12's 2.5.0) may
	 * hold a token that was split across calls until much more input
	 * arrives: a complete stanza would wait for the peer's next one.
	 */
#ifdef HAVE_XML_SETREPARSEDEFERRALENABLED
	XML_SetReparseDeferralEnabled(s->parser, XML_FALSE);
#endif
	return s;
}

/* xs_feed's work, with s certain to outlive it. */
static int
xs_feed_pieces(struct xs *s, const char *data, size_t len)
{
	uint64_t left;
	size_t n;

	if (s->dead)
		return -1;
	while (len > 0 && !s->closed) {
		n = len < XS_PIECE ? len : XS_PIECE;
		/*
		 * Never show expat more than one byte past the limit that
		 * applies. Then the byte that breaks a limit is found by the
		 * same bytes, hence reported the same way, however the input
		 * was cut, and expat holds no more than the limit either.
		 */
		if (s->depth == 0) {
			/* The header may end in this piece and a stanza begin. */
			left = s->limits.header - s->fed;
			if (left > s->limits.stanza)
				left = s->limits.stanza;
		} else
			left = s->limits.stanza - (s->fed - s->base);
		if (left < n)
			n = (size_t)left + 1;
		if (xs_parse(s, data, n) == -1)
			return -1;
		data += n;
		len -= n;
	}
	/* Bytes after </stream:stream> are not part of the stream: ignore them. */
	return 0;
}

static void
xs_destroy(struct xs *s)
{
	xs_release(s);
	free(s->content_ns);
	free(s);
}

int
xs_feed(struct xs *s, const char *data, size_t len)
{
	int r;

	if (s->feeding) /* from inside a handler: the input would be out of order */
		return -1;
	s->feeding = 1;
	r = xs_feed_pieces(s, data, len);
	s->feeding = 0;
	if (s->free_asked) {
		xs_destroy(s);
		return -1;
	}
	return r;
}

void
xs_free(struct xs *s)
{
	if (s == NULL)
		return;
	if (s->feeding) {
		/* A handler is on the stack, and expat under it: stop, free on return. */
		s->free_asked = 1;
		if (!s->dead) {
			s->dead = 1;
			if (s->parser != NULL)
				XML_StopParser(s->parser, XML_FALSE);
		}
		return;
	}
	xs_destroy(s);
}

/* Parse one piece; check the limits that expat's callbacks cannot see. */
static int
xs_parse(struct xs *s, const char *data, size_t len)
{
	s->piece = data;
	s->piece_start = s->fed;
	s->fed += len;
	if (XML_Parse(s->parser, data, (int)len, 0) == XML_STATUS_ERROR && !s->dead && !s->closed)
		xs_expat_error(s);

	/*
	 * What expat has not turned into callbacks yet is an incomplete token
	 * (an attribute value without its closing quote, say), which it keeps
	 * in its own buffer. Keeping a copy in raw, capped at the stanza
	 * limit, both bounds it and gives us the start of the next stanza,
	 * whose first bytes may have come in an earlier piece.
	 */
	if (!s->dead && !s->closed) {
		if (s->depth == 0) {
			if (s->fed > s->limits.header)
				xs_fail(s, "policy-violation",
				    "stream header larger than %zu bytes", s->limits.header);
		} else if (xs_keep(s, s->fed) == -1)
			xs_fail(s, "policy-violation", "stanza larger than %zu bytes",
			    s->limits.stanza);
	}
	s->piece = NULL;

	if (s->dead || s->closed) {
		xs_release(s);
		return s->dead ? -1 : 0;
	}
	/* Between stanzas an idle stream holds no buffer of ours. */
	if (s->raw.len == 0)
		buf_shrink(&s->raw);
	return 0;
}

/* The stream is over: free what it held. Only outside XML_Parse. */
static void
xs_release(struct xs *s)
{
	if (s->parser == NULL)
		return;
	XML_ParserFree(s->parser);
	s->parser = NULL;
	if (s->root != NULL)
		node_free(&s->root->e);
	s->root = s->cur = NULL;
	buf_free(&s->raw);
}

/* Report an error, once, and mark the stream dead. */
static void
xs_vfail(struct xs *s, const char *condition, const char *fmt, va_list ap)
{
	char text[256];

	if (s->dead)
		return;
	s->dead = 1;
	vsnprintf(text, sizeof(text), fmt, ap);
	if (s->handler.error != NULL)
		s->handler.error(s->arg, condition, text);
}

static void
xs_fail(struct xs *s, const char *condition, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	xs_vfail(s, condition, fmt, ap);
	va_end(ap);
}

/* xs_fail from inside an expat callback: expat must stop too. */
static void
xs_abort(struct xs *s, const char *condition, const char *fmt, ...)
{
	va_list ap;

	if (s->dead)
		return;
	va_start(ap, fmt);
	xs_vfail(s, condition, fmt, ap);
	va_end(ap);
	XML_StopParser(s->parser, XML_FALSE);
}

/* A handler returned -1: stop without reporting an error. */
static void
xs_stop(struct xs *s)
{
	s->dead = 1;
	XML_StopParser(s->parser, XML_FALSE);
}

/* expat found the input malformed. */
static void
xs_expat_error(struct xs *s)
{
	enum XML_Error code;
	const char *condition = "not-well-formed";

	code = XML_GetErrorCode(s->parser);
	/*
	 * Without a DTD any entity but the five predefined ones is undefined,
	 * and RFC 6120 11.1 names references to them restricted XML.
	 */
	if (code == XML_ERROR_UNDEFINED_ENTITY)
		condition = "restricted-xml";
	xs_fail(s, condition, "%s at line %llu, column %llu", XML_ErrorString(code),
	    (unsigned long long)XML_GetCurrentLineNumber(s->parser),
	    (unsigned long long)XML_GetCurrentColumnNumber(s->parser) + 1);
}

/*
 * Offset of the first byte of the event expat is reporting. Debian's expat
 * counts in a long, 32 bits on some systems, and a component's stream can
 * outlive 2 GiB: take its index only as the distance back from s->fed,
 * which is small, and that distance modulo the width of a long.
 */
static uint64_t
xs_pos(struct xs *s)
{
	unsigned long back;

	back = (unsigned long)s->fed - (unsigned long)XML_GetCurrentByteIndex(s->parser);
	return s->fed - back;
}

/*
 * Offset just past the event. For an empty element's end expat reports the
 * end of the tag with a count of 0, so this is right for both callbacks.
 */
static uint64_t
xs_endpos(struct xs *s)
{
	return xs_pos(s) + (uint64_t)XML_GetCurrentByteCount(s->parser);
}

/* Bytes before offset upto are no longer needed. */
static void
xs_discard(struct xs *s, uint64_t upto)
{
	if (upto <= s->base)
		return;
	/*
	 * When upto lies past what raw holds, the bytes of the current piece
	 * before it are not needed either: raw then starts at upto.
	 */
	buf_consume(&s->raw, upto - s->base);
	s->base = upto;
}

/* Copy the bytes of the current piece up to offset upto into raw. */
static int
xs_keep(struct xs *s, uint64_t upto)
{
	uint64_t end = s->base + s->raw.len;

	if (upto <= end)
		return 0;
	return buf_add(&s->raw, s->piece + (end - s->piece_start), upto - end);
}

/* Has the stanza reached past its limit at offset pos? */
static int
xs_toobig(struct xs *s, uint64_t pos)
{
	if (pos - s->stanza_start <= s->limits.stanza)
		return 0;
	xs_abort(s, "policy-violation", "stanza larger than %zu bytes", s->limits.stanza);
	return 1;
}

/* Does an element's attribute list keep to the limits? Reports when not. */
static int
xs_attrs_ok(struct xs *s, const char **atts, unsigned nattrs)
{
	const char *name;
	size_t i;

	if (nattrs > s->limits.attrs) {
		xs_abort(s, "policy-violation", "more than %u attributes on one element",
		    s->limits.attrs);
		return 0;
	}
	for (i = 0; atts[i] != NULL; i += 2) {
		if (strlen(atts[i + 1]) <= s->limits.attrlen)
			continue;
		/* A qualified name is "URI local": name the local part. */
		name = strrchr(atts[i], XS_SEP);
		name = name != NULL ? name + 1 : atts[i];
		xs_abort(s, "policy-violation", "value of attribute %.64s longer than %zu bytes",
		    name, s->limits.attrlen);
		return 0;
	}
	return 1;
}

static void XMLCALL
xs_start(void *arg, const XML_Char *name, const XML_Char **atts)
{
	struct xs *s = arg;
	struct xs_node *n;
	unsigned nattrs;

	if (s->dead || s->closed)
		return;
	/* Namespace declarations are attributes too, and cost expat as much. */
	for (nattrs = 0; atts[2 * nattrs] != NULL; nattrs++)
		;
	nattrs += s->nsdecls;
	s->nsdecls = 0;

	if (s->depth == 0) {
		xs_header_start(s, name, atts, nattrs);
		return;
	}
	/* s->depth counts the stream: it is this element's level below it. */
	if (s->depth > s->limits.depth) {
		xs_abort(s, "policy-violation", "elements nested deeper than %u levels",
		    s->limits.depth);
		return;
	}
	if (!xs_attrs_ok(s, atts, nattrs))
		return;
	if (s->depth == 1) {
		s->stanza_start = xs_pos(s);
		xs_discard(s, s->stanza_start);
	}
	if (xs_toobig(s, xs_endpos(s)))
		return;
	/* Shallow: a stanza's children are not built, except in a stream error. */
	if (s->shallow && s->depth >= 2 && strcmp(s->root->e.ns, XS_NS_STREAMS) != 0) {
		s->skipped++;
		s->depth++;
		return;
	}

	n = node_new(name, atts, s->cur);
	if (s->cur == NULL)
		s->root = n;
	else {
		if (s->cur->last == NULL)
			s->cur->e.child = &n->e;
		else
			s->cur->last->next = &n->e;
		s->cur->last = &n->e;
	}
	s->cur = n;
	s->depth++;
}

/*
 * The stream header. The streams namespace is matched by URI, so any prefix
 * (or none) is accepted for it, as XML namespaces require.
 */
static void
xs_header_start(struct xs *s, const char *name, const char **atts, unsigned nattrs)
{
	struct xs_node *n;
	uint64_t end;
	int rc = 0;

	if (strcmp(name, XS_NS_STREAMS " stream") != 0) {
		if (strncmp(name, XS_NS_STREAMS " ", sizeof(XS_NS_STREAMS)) != 0)
			xs_abort(s, "invalid-namespace", "stream element not in namespace %s",
			    XS_NS_STREAMS);
		else
			xs_abort(s, "invalid-namespace", "first element is <%s>, not <stream>",
			    name + sizeof(XS_NS_STREAMS));
		return;
	}
	if (!s->default_ns_ok) {
		xs_abort(s, "invalid-namespace", "default namespace is not %s", s->content_ns);
		return;
	}
	/* Counted from the first byte, an XML declaration included. */
	end = xs_endpos(s);
	if (end > s->limits.header) {
		xs_abort(
		    s, "policy-violation", "stream header larger than %zu bytes", s->limits.header);
		return;
	}
	if (!xs_attrs_ok(s, atts, nattrs))
		return;

	s->depth = 1;
	/* From here on raw follows the input; it starts after the header. */
	s->base = end;
	n = node_new(name, atts, NULL);
	if (s->handler.open != NULL)
		rc = s->handler.open(s->arg, &n->e);
	node_free(&n->e);
	if (rc == -1)
		xs_stop(s);
}

static void XMLCALL
xs_end(void *arg, const XML_Char *name)
{
	struct xs *s = arg;
	uint64_t end;

	(void)name;
	if (s->dead || s->closed)
		return;
	if (s->depth == 1) {
		s->depth = 0;
		s->closed = 1;
		XML_StopParser(s->parser, XML_FALSE);
		if (s->handler.close != NULL && s->handler.close(s->arg) == -1)
			s->dead = 1;
		return;
	}
	end = xs_endpos(s);
	if (xs_toobig(s, end))
		return;
	if (s->skipped > 0) {
		s->skipped--;
		s->depth--;
		return;
	}
	s->cur = s->cur->parent;
	if (--s->depth == 1)
		xs_deliver(s, end);
}

/* The stanza ended at offset end: hand it over and forget it. */
static void
xs_deliver(struct xs *s, uint64_t end)
{
	struct xs_node *root = s->root;
	const char *raw;
	size_t rawlen = end - s->stanza_start;
	int rc = 0;

	if (s->raw.len == 0 && s->stanza_start >= s->piece_start)
		/* All of it is in this piece: no copy. */
		raw = s->piece + (s->stanza_start - s->piece_start);
	else {
		if (xs_keep(s, end) == -1) {
			xs_abort(s, "policy-violation", "stanza larger than %zu bytes",
			    s->limits.stanza);
			return;
		}
		raw = buf_head(&s->raw) + (s->stanza_start - s->base);
	}
	s->root = NULL;
	if (s->handler.stanza != NULL)
		rc = s->handler.stanza(s->arg, &root->e, raw, rawlen);
	node_free(&root->e);
	xs_discard(s, end);
	if (rc == -1)
		xs_stop(s);
}

/*
 * Character data inside a stanza belongs to the current element. Between
 * stanzas only white space is allowed (keepalives, RFC 6120 11.7); other
 * text there is well-formed XML with no meaning in XMPP, which RFC 6120
 * 4.9.3.1 calls bad-format.
 */
static void XMLCALL
xs_text(void *arg, const XML_Char *text, int len)
{
	struct xs *s = arg;
	int i;

	if (s->dead || s->closed || s->depth == 0)
		return;
	if (s->depth == 1) {
		for (i = 0; i < len; i++) {
			if (text[i] != ' ' && text[i] != '\t' && text[i] != '\n' &&
			    text[i] != '\r') {
				xs_abort(s, "bad-format", "text outside stanzas");
				return;
			}
		}
		xs_discard(s, xs_endpos(s));
		return;
	}
	if (xs_toobig(s, xs_endpos(s)))
		return;
	if (s->skipped > 0)
		return;
	node_addtext(s->cur, text, (size_t)len);
	/* Mixed content keeps its order: text after a child is that child's tail. */
	if (s->cur->last == NULL)
		s->cur->e.headlen += (size_t)len;
	else
		tail_add(s->cur->last, text, (size_t)len);
}

/*
 * Called before xs_start for the same element. expat keeps a binding for
 * each declaration while its element is open: their number and size are
 * limited here, where they are seen first.
 */
static void XMLCALL
xs_nsdecl(void *arg, const XML_Char *prefix, const XML_Char *uri)
{
	struct xs *s = arg;

	if (s->dead || s->closed)
		return;
	if (++s->nsdecls > s->limits.nsdecls) {
		xs_abort(s, "policy-violation",
		    "more than %u namespace declarations on one element", s->limits.nsdecls);
		return;
	}
	if (uri != NULL && strlen(uri) > s->limits.attrlen) {
		xs_abort(s, "policy-violation", "namespace name longer than %zu bytes",
		    s->limits.attrlen);
		return;
	}
	if (s->depth == 0 && prefix == NULL)
		s->default_ns_ok = uri != NULL && strcmp(uri, s->content_ns) == 0;
}

static void XMLCALL
xs_xmldecl(void *arg, const XML_Char *version, const XML_Char *encoding, int standalone)
{
	struct xs *s = arg;

	(void)version;
	(void)standalone;
	if (s->dead)
		return;
	if (encoding != NULL && strcasecmp(encoding, "UTF-8") != 0)
		xs_abort(s, "unsupported-encoding", "encoding %s is not UTF-8", encoding);
}

/*
 * RFC 6120 11.1 forbids DTDs. Refusing the DOCTYPE as soon as expat sees it
 * means no entity is ever declared, so none can expand (billion laughs) or
 * be fetched (external entities).
 */
static void XMLCALL
xs_doctype(void *arg, const XML_Char *name, const XML_Char *sysid, const XML_Char *pubid,
    int has_internal_subset)
{
	(void)name;
	(void)sysid;
	(void)pubid;
	(void)has_internal_subset;
	xs_abort(arg, "restricted-xml", "DTDs are not allowed");
}

/* Unreachable while xs_doctype refuses every DTD; here should that change. */
static void XMLCALL
xs_entitydecl(void *arg, const XML_Char *name, int is_param, const XML_Char *value, int len,
    const XML_Char *base, const XML_Char *sysid, const XML_Char *pubid, const XML_Char *notation)
{
	(void)name;
	(void)is_param;
	(void)value;
	(void)len;
	(void)base;
	(void)sysid;
	(void)pubid;
	(void)notation;
	xs_abort(arg, "restricted-xml", "entity declarations are not allowed");
}

/* The XML declaration is not a processing instruction to expat: it stays allowed. */
static void XMLCALL
xs_pi(void *arg, const XML_Char *target, const XML_Char *data)
{
	(void)target;
	(void)data;
	xs_abort(arg, "restricted-xml", "processing instructions are not allowed");
}

static void XMLCALL
xs_comment(void *arg, const XML_Char *data)
{
	(void)data;
	xs_abort(arg, "restricted-xml", "comments are not allowed");
}

/*
 * A node, its attribute array and its strings in one allocation; freed by
 * node_free. Most elements share their parent's namespace and point at the
 * parent's copy of it, so a stanza of many small children in a long
 * namespace does not hold that namespace once per child.
 */
static struct xs_node *
node_new(const char *qname, const char **atts, struct xs_node *parent)
{
	struct xs_node *n;
	const char *sep, *local;
	char **ap, *p;
	size_t natts, nslen, size, i;
	int share;

	sep = strrchr(qname, XS_SEP);
	local = sep != NULL ? sep + 1 : qname;
	nslen = sep != NULL ? (size_t)(sep - qname) : 0;
	share = parent != NULL && strlen(parent->e.ns) == nslen &&
	        memcmp(parent->e.ns, qname, nslen) == 0;

	for (natts = 0; atts[natts] != NULL; natts++)
		;
	size = sizeof(*n) + (natts + 1) * sizeof(char *) + strlen(local) + 1;
	if (!share)
		size += nslen + 1;
	for (i = 0; i < natts; i++)
		size += strlen(atts[i]) + 1;

	n = xmalloc(size);
	memset(n, 0, sizeof(*n));
	ap = (char **)(n + 1);
	p = (char *)(ap + natts + 1);
	for (i = 0; i < natts; i++) {
		ap[i] = p;
		p = stpcpy(p, atts[i]) + 1;
	}
	ap[natts] = NULL;
	n->e.attrs = ap;
	n->e.name = p;
	p = stpcpy(p, local) + 1;
	if (share)
		n->e.ns = parent->e.ns;
	else {
		memcpy(p, qname, nslen);
		p[nslen] = '\0';
		n->e.ns = p;
	}
	n->parent = parent;
	return n;
}

/* Free an element, its children and its following siblings. */
static void
node_free(struct xs_elem *e)
{
	struct xs_elem *next;

	for (; e != NULL; e = next) {
		next = e->next;
		node_free(e->child);
		free(e->text);
		free(e->tail);
		free(e);
	}
}

static void
tail_add(struct xs_elem *e, const char *text, size_t len)
{
	size_t have = e->tail ? strlen(e->tail) : 0;

	e->tail = xrealloc(e->tail, have + len + 1);
	memcpy(e->tail + have, text, len);
	e->tail[have + len] = '\0';
}

static void
node_addtext(struct xs_node *n, const char *text, size_t len)
{
	size_t need = n->textlen + len + 1;

	if (need > n->textsize) {
		n->textsize = n->textsize * 2 > need ? n->textsize * 2 : need;
		n->e.text = xrealloc(n->e.text, n->textsize);
	}
	memcpy(n->e.text + n->textlen, text, len);
	n->textlen += len;
	n->e.text[n->textlen] = '\0';
}

void
xs_set_shallow(struct xs *s, int on)
{
	s->shallow = on;
}

const char *
xs_attr(const struct xs_elem *e, const char *name)
{
	size_t i;

	if (e->attrs == NULL)
		return NULL;
	for (i = 0; e->attrs[i] != NULL; i += 2)
		if (strcmp(e->attrs[i], name) == 0)
			return e->attrs[i + 1];
	return NULL;
}

const struct xs_elem *
xs_child(const struct xs_elem *e, const char *name, const char *ns)
{
	const struct xs_elem *c;

	for (c = e->child; c != NULL; c = c->next)
		if (strcmp(c->name, name) == 0 && (ns == NULL || strcmp(c->ns, ns) == 0))
			return c;
	return NULL;
}

/* The replacement for c, or NULL if c stands for itself. */
static const char *
esc_one(char c, enum xs_esc mode)
{
	switch (c) {
	case '&':
		return "&amp;";
	case '<':
		return "&lt;";
	case '>':
		return "&gt;";
	case '\'':
		return "&apos;";
	case '"':
		return "&quot;";
	case '\r':
		return mode != XS_ESC_BASIC ? "&#13;" : NULL;
	case '\n':
		return mode == XS_ESC_ATTR ? "&#10;" : NULL;
	case '\t':
		return mode == XS_ESC_ATTR ? "&#9;" : NULL;
	default:
		return NULL;
	}
}

char *
xs_escape(const char *s)
{
	const char *p, *rep;
	char *out, *o;
	size_t len = 0;

	for (p = s; *p != '\0'; p++)
		len += (rep = esc_one(*p, XS_ESC_BASIC)) != NULL ? strlen(rep) : 1;
	o = out = xmalloc(len + 1);
	for (p = s; *p != '\0'; p++) {
		if ((rep = esc_one(*p, XS_ESC_BASIC)) != NULL)
			o = stpcpy(o, rep);
		else
			*o++ = *p;
	}
	*o = '\0';
	return out;
}

/* Append len bytes of s to b, escaped. */
static int
ser_escape(struct buf *b, const char *s, size_t len, enum xs_esc mode)
{
	const char *run, *rep, *end = s + len;

	for (run = s; s < end; s++) {
		if ((rep = esc_one(*s, mode)) == NULL)
			continue;
		if (buf_add(b, run, (size_t)(s - run)) == -1 || buf_addstr(b, rep) == -1)
			return -1;
		run = s + 1;
	}
	return buf_add(b, run, (size_t)(s - run));
}

int
xs_serialize(const struct xs_elem *e, const char *content_ns, struct buf *b)
{
	size_t len = b->len;

	if (ser_elem(e, content_ns != NULL ? content_ns : "", b) == -1) {
		/*
		 * Take back the part written: half an element in an output
		 * queue would break the stream for good.
		 */
		b->len = len;
		return -1;
	}
	return 0;
}

/*
 * Elements are written in the default namespace, declared where it changes.
 * Qualified attributes get a prefix declared on their element, ns<i> after
 * the first attribute in that namespace, except xml:, which is predeclared.
 */
static int
ser_elem(const struct xs_elem *e, const char *parent_ns, struct buf *b)
{
	const struct xs_elem *c;
	const char *ns = e->ns != NULL ? e->ns : "";
	const char *name, *sep;
	char prefix[32];
	size_t i, j, urilen;

	if (buf_addstr(b, "<") == -1 || buf_addstr(b, e->name) == -1)
		return -1;
	if (strcmp(ns, parent_ns) != 0 &&
	    (buf_addstr(b, " xmlns='") == -1 || ser_escape(b, ns, strlen(ns), XS_ESC_ATTR) == -1 ||
	        buf_addstr(b, "'") == -1))
		return -1;

	for (i = 0; e->attrs != NULL && e->attrs[i] != NULL; i += 2) {
		name = e->attrs[i];
		if ((sep = strrchr(name, XS_SEP)) == NULL) {
			if (buf_addstr(b, " ") == -1 || buf_addstr(b, name) == -1)
				return -1;
		} else if ((size_t)(sep - name) == sizeof(XS_NS_XML) - 1 &&
		           strncmp(name, XS_NS_XML, sizeof(XS_NS_XML) - 1) == 0) {
			if (buf_addstr(b, " xml:") == -1 || buf_addstr(b, sep + 1) == -1)
				return -1;
		} else {
			urilen = (size_t)(sep - name);
			for (j = 0; j < i; j += 2)
				if (strncmp(e->attrs[j], name, urilen + 1) == 0)
					break;
			snprintf(prefix, sizeof(prefix), "ns%zu", j / 2);
			if (j == i) {
				if (buf_addstr(b, " xmlns:") == -1 || buf_addstr(b, prefix) == -1 ||
				    buf_addstr(b, "='") == -1 ||
				    ser_escape(b, name, urilen, XS_ESC_ATTR) == -1 ||
				    buf_addstr(b, "'") == -1)
					return -1;
			}
			if (buf_addstr(b, " ") == -1 || buf_addstr(b, prefix) == -1 ||
			    buf_addstr(b, ":") == -1 || buf_addstr(b, sep + 1) == -1)
				return -1;
		}
		if (buf_addstr(b, "='") == -1 ||
		    ser_escape(b, e->attrs[i + 1], strlen(e->attrs[i + 1]), XS_ESC_ATTR) == -1 ||
		    buf_addstr(b, "'") == -1)
			return -1;
	}

	if (e->child == NULL && (e->text == NULL || e->text[0] == '\0'))
		return buf_addstr(b, "/>");
	if (buf_addstr(b, ">") == -1)
		return -1;
	/* Text before the first child, then each child followed by its tail. */
	if (e->text != NULL &&
	    ser_escape(b, e->text, e->child ? e->headlen : strlen(e->text), XS_ESC_TEXT) == -1)
		return -1;
	for (c = e->child; c != NULL; c = c->next)
		if (ser_elem(c, ns, b) == -1 ||
		    (c->tail && ser_escape(b, c->tail, strlen(c->tail), XS_ESC_TEXT) == -1))
			return -1;
	if (buf_addstr(b, "</") == -1 || buf_addstr(b, e->name) == -1 || buf_addstr(b, ">") == -1)
		return -1;
	return 0;
}

/* " name='escaped value'", or "" when value is NULL. Freed with free(). */
static char *
opt_attr(const char *name, const char *value)
{
	char *esc, *s;

	if (value == NULL)
		return xstrdup("");
	esc = xs_escape(value);
	s = xasprintf(" %s='%s'", name, esc);
	free(esc);
	return s;
}

char *
xs_header(const char *to, const char *from, const char *id)
{
	char *a, *b, *c, *s;

	a = opt_attr("to", to);
	b = opt_attr("from", from);
	c = opt_attr("id", id);
	s = xasprintf("<?xml version='1.0'?><stream:stream xmlns='%s' xmlns:stream='%s'%s%s%s>",
	    XS_NS_COMPONENT, XS_NS_STREAMS, a, b, c);
	free(a);
	free(b);
	free(c);
	return s;
}

char *
xs_ping(const char *id, const char *from, const char *to)
{
	char *eid = xs_escape(id), *efrom = xs_escape(from), *eto = xs_escape(to), *s;

	s = xasprintf("<iq type='get' id='%s' from='%s' to='%s'><ping xmlns='" XS_NS_PING
	              "'/></iq>",
	    eid, efrom, eto);
	free(eid);
	free(efrom);
	free(eto);
	return s;
}

char *
xs_stream_error(const char *condition, const char *text)
{
	char *esc, *s;

	if (text == NULL)
		return xasprintf("<stream:error><%s xmlns='%s'/></stream:error></stream:stream>",
		    condition, XS_NS_STREAM_ERRORS);
	esc = xs_escape(text);
	s = xasprintf("<stream:error><%s xmlns='%s'/><text xmlns='%s'>%s</text></stream:error>"
	              "</stream:stream>",
	    condition, XS_NS_STREAM_ERRORS, XS_NS_STREAM_ERRORS, esc);
	free(esc);
	return s;
}

/*
 * The condition is the first child in the stream errors namespace other than
 * <text/>, wherever <text/> comes; elements in other namespaces are
 * application-specific conditions (RFC 6120 4.9.4) and are skipped.
 */
void
xs_stream_error_parse(const struct xs_elem *e, const char **condition, const char **text)
{
	const struct xs_elem *c;

	*condition = NULL;
	*text = NULL;
	for (c = e->child; c != NULL; c = c->next) {
		if (strcmp(c->ns, XS_NS_STREAM_ERRORS) != 0)
			continue;
		if (strcmp(c->name, "text") == 0) {
			if (*text == NULL)
				*text = c->text != NULL ? c->text : "";
		} else if (*condition == NULL)
			*condition = c->name;
	}
}

int
xs_raw_content(const char *raw, size_t len, size_t *start, size_t *end)
{
	char quote = 0;
	size_t i;

	for (i = 1; i < len; i++) {
		if (quote) {
			if (raw[i] == quote)
				quote = 0;
		} else if (raw[i] == '\'' || raw[i] == '"')
			quote = raw[i];
		else if (raw[i] == '>')
			break;
	}
	if (i >= len || raw[i - 1] == '/')
		return -1;
	*start = i + 1;
	for (*end = len; *end > *start && raw[*end - 1] != '<'; (*end)--)
		;
	if (*end <= *start)
		return -1;
	(*end)--;
	return 0;
}

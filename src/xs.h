/*
 * xs: the XMPP stream layer on expat. Bytes of one direction of an XEP-0114
 * stream go in, in pieces of any size; out come the stream header, each
 * complete depth-1 element (a stanza, <handshake/>, <stream:error/>) as a small
 * tree plus its raw bytes, and the end of the stream. XML that RFC 6120
 * forbids (DOCTYPE, entity declarations, processing instructions, comments)
 * and elements over the limits end the stream with the condition to send.
 * Nothing is buffered without bound.
 * Functions returning int return 0 on success and -1 on failure.
 */
#ifndef XCOMP_XS_H
#define XCOMP_XS_H

#include <stddef.h>

#include "buf.h"

#define XS_NS_STREAMS "http://etherx.jabber.org/streams"
#define XS_NS_COMPONENT "jabber:component:accept"
#define XS_NS_STREAM_ERRORS "urn:ietf:params:xml:ns:xmpp-streams"
#define XS_NS_STANZA_ERRORS "urn:ietf:params:xml:ns:xmpp-stanzas"
#define XS_NS_PING "urn:xmpp:ping"
#define XS_NS_XML "http://www.w3.org/XML/1998/namespace"

struct xs;

/* One element of a parsed stanza. Owned by the parser; valid during the callback. */
struct xs_elem {
	char *name; /* local name */
	char *ns;   /* namespace URI, "" when none */
	/*
	 * NULL-terminated name/value pairs. Unqualified attributes by their
	 * local name ("to"); qualified ones as "URI local" ("http://www.w3.org/XML/1998/namespace
	 * lang").
	 */
	char **attrs;
	char *text;            /* character data directly inside, concatenated; NULL if none */
	size_t headlen;        /* bytes of text that come before the first child */
	char *tail;            /* character data after this element, inside its parent; or NULL */
	struct xs_elem *child; /* first child */
	struct xs_elem *next;  /* next sibling */
};

/*
 * What a peer may make the parser hold. Exceeding any of them ends the
 * stream with policy-violation and a text that names the limit.
 */
struct xs_limits {
	size_t stanza;    /* raw bytes of one depth-1 element */
	size_t header;    /* raw bytes of the stream header */
	unsigned depth;   /* element nesting below the stream */
	unsigned attrs;   /* attributes on one element, namespace declarations included */
	unsigned nsdecls; /* namespace declarations on one element */
	size_t attrlen;   /* bytes of one attribute value or namespace name, as parsed */
};

/* stanza 256 KiB, header 4 KiB, depth 32, attrs 64, nsdecls 16, attrlen 8 KiB. */
void xs_limits_default(struct xs_limits *);

/*
 * Callbacks return 0 to go on, -1 to stop parsing: xs_feed then returns -1
 * at once, without calling error. They must not free the xs.
 */
struct xs_handler {
	/* The stream header, an element named "stream" in XS_NS_STREAMS. */
	int (*open)(void *arg, const struct xs_elem *header);
	/* A complete depth-1 element, with its raw bytes as received. */
	int (*stanza)(void *arg, const struct xs_elem *, const char *raw, size_t rawlen);
	/* The peer sent </stream:stream>. */
	int (*close)(void *arg);
	/*
	 * The input broke a rule; condition is the RFC 6120 stream error to send
	 * ("not-well-formed", "restricted-xml", "policy-violation",
	 * "invalid-namespace", "bad-format"); text says what was wrong in words.
	 */
	void (*error)(void *arg, const char *condition, const char *text);
};

/*
 * A parser for one incoming stream whose content namespace must be
 * content_ns (XS_NS_COMPONENT). Freed with xs_free.
 */
struct xs *xs_new(
    const char *content_ns, const struct xs_limits *, const struct xs_handler *, void *arg);
/* Parse more bytes. -1 after an error (reported once) or a stop; the stream is then dead. */
int xs_feed(struct xs *, const char *, size_t);
/*
 * Free the parser. May be called from inside one of its own callbacks: no
 * callback follows, and the parser is freed when xs_feed returns (-1).
 */
void xs_free(struct xs *);

/*
 * Shallow mode, for stanzas that are only passed on (raw bytes): each
 * stanza's own element is built with its attributes and direct text, its
 * children are not (a <stream:error> is still built whole). Limits hold.
 */
void xs_set_shallow(struct xs *, int);

/*
 * The content of an element as received (raw from the stanza callback):
 * *start is past the start tag's '>' (a '>' may stand unescaped in an
 * attribute value), *end at the end tag's '<'. -1 for an empty element.
 */
int xs_raw_content(const char *raw, size_t len, size_t *start, size_t *end);
/* Attribute value, or NULL. */
const char *xs_attr(const struct xs_elem *, const char *name);
/* First child with this name (and namespace, unless ns is NULL), or NULL. */
const struct xs_elem *xs_child(const struct xs_elem *, const char *name, const char *ns);

/*
 * Serialise an element (and its children) as well-formed XML for a stream
 * whose default namespace is content_ns: xmlns is written where an
 * element's namespace differs from its parent's. -1 if b's cap is reached.
 */
int xs_serialize(const struct xs_elem *, const char *content_ns, struct buf *b);

/* Escape for attribute values and text (& < > ' "). Freed with free(). */
char *xs_escape(const char *);

/*
 * The opening of a component stream, with the attributes that are not
 * NULL. Freed with free().
 */
char *xs_header(const char *to, const char *from, const char *id);

/*
 * An XEP-0199 ping: <iq type='get' id=ID from=FROM to=TO><ping/></iq>, the
 * attributes escaped. The one form the agent, its relay and xcomp-server
 * send. Freed with free().
 */
char *xs_ping(const char *id, const char *from, const char *to);

/*
 * <stream:error> with condition (and a <text/> when text is not NULL),
 * followed by </stream:stream>. Freed with free().
 */
char *xs_stream_error(const char *condition, const char *text);

/*
 * For a received <stream:error>: the condition element's name and the
 * <text/>, either NULL when absent.
 */
void xs_stream_error_parse(const struct xs_elem *, const char **condition, const char **text);

#endif

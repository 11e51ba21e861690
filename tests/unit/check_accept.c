/*
 * accept's stanza errors: the exact bounce on the wire, and the rule that
 * an error (or anything that is not a stanza) is never bounced.
 */
#include <stdlib.h>
#include <string.h>

#include "accept.h"
#include "unit.h"
#include "xs.h"

#define HEADER                                                                                     \
	"<stream:stream xmlns='jabber:component:accept' "                                          \
	"xmlns:stream='http://etherx.jabber.org/streams' to='cb1.example'>"

struct parsed {
	char *bounce; /* accept_stanza_error of the last element, or NULL */
	const char *type, *condition;
};

static int
p_open(void *arg, const struct xs_elem *h)
{
	(void)arg;
	(void)h;
	return 0;
}

static int
p_stanza(void *arg, const struct xs_elem *e, const char *raw, size_t len)
{
	struct parsed *p = arg;

	(void)raw;
	(void)len;
	free(p->bounce);
	p->bounce = accept_stanza_error(e, p->type, p->condition);
	return 0;
}

static int
p_close(void *arg)
{
	(void)arg;
	return 0;
}

static void
p_error(void *arg, const char *cond, const char *text)
{
	(void)arg;
	ck_abort_msg("%s: %s", cond, text);
}

static const struct xs_handler handler = {p_open, p_stanza, p_close, p_error};

/* accept_stanza_error of one element given as XML; freed with free(). */
static char *
bounce_of(const char *xml, const char *type, const char *condition)
{
	struct parsed p = {NULL, type, condition};
	struct xs_limits lim;
	struct xs *xs;

	xs_limits_default(&lim);
	xs = xs_new(XS_NS_COMPONENT, &lim, &handler, &p);
	ck_assert_int_eq(xs_feed(xs, HEADER, strlen(HEADER)), 0);
	ck_assert_int_eq(xs_feed(xs, xml, strlen(xml)), 0);
	xs_free(xs);
	return p.bounce;
}

START_TEST(test_bounce_wire_form)
{
	char *s = bounce_of("<message from='a@cb1.example/r' to='b@cb2.example' id='m&amp;1'>"
	                    "<body>hi</body></message>",
	    "cancel", "service-unavailable");

	ck_assert_str_eq(s, "<message from='b@cb2.example' to='a@cb1.example/r' type='error' "
	                    "id='m&amp;1'><error type='cancel'><service-unavailable "
	                    "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>");
	free(s);
}
END_TEST

START_TEST(test_bounce_without_id_or_addresses)
{
	char *s =
	    bounce_of("<iq type='get'><q xmlns='urn:x'/></iq>", "wait", "resource-constraint");

	ck_assert_str_eq(s,
	    "<iq from='' to='' type='error'><error type='wait'><resource-constraint "
	    "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>");
	free(s);
}
END_TEST

START_TEST(test_errors_never_bounced)
{
	ck_assert_ptr_null(bounce_of(
	    "<message from='a@x' to='b@y' type='error'/>", "cancel", "service-unavailable"));
	ck_assert_ptr_null(bounce_of(
	    "<iq from='a@x' to='b@y' type='error' id='1'/>", "wait", "resource-constraint"));
}
END_TEST

START_TEST(test_non_stanzas_never_bounced)
{
	ck_assert_ptr_null(bounce_of("<handshake>00</handshake>", "cancel", "service-unavailable"));
	ck_assert_ptr_null(
	    bounce_of("<message xmlns='urn:other' from='a@x' to='b@y'/>", "cancel", "x"));
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("accept");
	TCase *tc = tcase_create("stanza errors");

	tcase_add_test(tc, test_bounce_wire_form);
	tcase_add_test(tc, test_bounce_without_id_or_addresses);
	tcase_add_test(tc, test_errors_never_bounced);
	tcase_add_test(tc, test_non_stanzas_never_bounced);
	suite_add_tcase(s, tc);
	return unit_run(s);
}

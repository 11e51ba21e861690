/*
 * The relay (relay.c) as the agent runs it: a local component connects over
 * a real Unix socket, authenticates, and sends whatever the input says; the
 * upstream node comes and goes, answers acknowledgement pings, and sends
 * stanzas down. The loop is driven one pass at a time.
 *
 * Input: byte 0 = flags (bit 0: replay on; bit 1: skip the handshake, so the
 * bytes meet the relay before authentication), then operations, each one
 * byte and, for data, a length byte and the data:
 *   0 local bytes   1 upstream stanza bytes   2 upstream up   3 upstream down
 *   4 ping reply    5 local component reconnects (three times at most:
 *   each costs a handshake, and the fuzzer would rather spend its time on
 *   what follows)
 * Checks: every byte the relay sends upstream, and every byte it sends the
 * local component, is a well-formed XEP-0114 stream (each parsed as the
 * other side would); upstream gets nothing while down.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "digest.h"
#include "fuzz.h"
#include "io.h"
#include "log.h"
#include "loop.h"
#include "relay.h"
#include "xs.h"

#define COMPONENT "bridge.fuzz.example"
#define SECRET "fuzz-secret"
#define UP_HEADER                                                                                  \
	"<stream:stream xmlns='jabber:component:accept' "                                          \
	"xmlns:stream='http://etherx.jabber.org/streams' to='fuzz.example'>"
#define DOWN_HEADER                                                                                \
	"<stream:stream xmlns='jabber:component:accept' "                                          \
	"xmlns:stream='http://etherx.jabber.org/streams' from='fuzz.example' id='u1'>"

struct harness {
	struct loop *loop;
	struct relay *relay;
	int up, client;
	char ping[64];
	struct xs *up_reader;   /* the node reading what the relay sends it */
	struct xs *down_reader; /* the local component reading what it is sent */
	struct xs *down_writer; /* splits upstream input into stanzas for the relay */
	char local_out[8192];   /* the start of what the local component got */
	size_t local_outlen;
	int down_dead;
};

static char sock_path[108];

static int
nop_open(void *arg, const struct xs_elem *h)
{
	(void)arg;
	(void)h;
	return 0;
}

static int
nop_stanza(void *arg, const struct xs_elem *e, const char *raw, size_t len)
{
	(void)arg;
	(void)e;
	(void)raw;
	(void)len;
	return 0;
}

static int
nop_close(void *arg)
{
	(void)arg;
	return 0;
}

static void
bad_output(void *arg, const char *cond, const char *text)
{
	fprintf(
	    stderr, "%s: the relay wrote a broken stream: %s: %s\n", (const char *)arg, cond, text);
	abort();
}

static const struct xs_handler up_h = {nop_open, nop_stanza, nop_close, bad_output};

/* What the local component receives may end with a stream error: then stop reading. */
static int
down_stanza(void *arg, const struct xs_elem *e, const char *raw, size_t len)
{
	(void)arg;
	(void)raw;
	(void)len;
	return strcmp(e->ns, XS_NS_STREAMS) == 0 ? -1 : 0;
}

static int
down_close(void *arg)
{
	(void)arg;
	return -1;
}

static const struct xs_handler down_h = {nop_open, down_stanza, down_close, bad_output};

static int
up_send(void *arg, const char *p, size_t n)
{
	struct harness *h = arg;

	if (!h->up)
		return -1;
	FUZZ_CHECK(xs_feed(h->up_reader, p, n) == 0);
	return 0;
}

static void
up_ping(void *arg, const char *id)
{
	struct harness *h = arg;

	FUZZ_CHECK(h->up && relay_ping_id(id));
	snprintf(h->ping, sizeof(h->ping), "%s", id);
}

static void
up_changed(void *arg)
{
	(void)arg;
}

static const struct relay_upstream upstream = {up_send, up_ping, up_changed};

static int
relay_stanza(void *arg, const struct xs_elem *e, const char *raw, size_t len)
{
	struct harness *h = arg;

	relay_from_upstream(h->relay, e, raw, len);
	return 0;
}

static void
relay_error(void *arg, const char *cond, const char *text)
{
	(void)arg;
	(void)cond;
	(void)text;
}

static const struct xs_handler split_h = {nop_open, relay_stanza, nop_close, relay_error};

static void
pump(struct harness *h)
{
	char buf[4096];
	ssize_t n;
	int i;

	for (i = 0; i < 4; i++) {
		FUZZ_CHECK(loop_run_once(h->loop, 0) == 0);
		while (h->client != -1 && (n = read(h->client, buf, sizeof(buf))) > 0) {
			if (h->local_outlen + (size_t)n < sizeof(h->local_out)) {
				memcpy(h->local_out + h->local_outlen, buf, (size_t)n);
				h->local_outlen += (size_t)n;
				h->local_out[h->local_outlen] = '\0';
			}
			if (!h->down_dead && xs_feed(h->down_reader, buf, (size_t)n) == -1)
				h->down_dead = 1;
		}
	}
}

static void
local_write(struct harness *h, const void *p, size_t n)
{
	if (h->client != -1 && send(h->client, p, n, MSG_NOSIGNAL) != (ssize_t)n)
		FUZZ_CHECK(errno == EPIPE || errno == ECONNRESET || errno == EAGAIN);
	pump(h);
}

static void
local_connect(struct harness *h, int handshake)
{
	static const char hello[] =
	    "<stream:stream xmlns='jabber:component:accept' "
	    "xmlns:stream='http://etherx.jabber.org/streams' to='" COMPONENT "'>";
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct xs_limits lim;
	char digest[DIGEST_HEXLEN + 1], msg[64], id[64] = "";
	const char *p;

	if (h->client != -1)
		close(h->client);
	if (h->down_reader)
		xs_free(h->down_reader);
	xs_limits_default(&lim);
	lim.stanza = 1u << 20;
	h->down_reader = xs_new(XS_NS_COMPONENT, &lim, &down_h, "to the local component");
	h->down_dead = 0;
	h->local_outlen = 0;
	FUZZ_CHECK((h->client = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0)) != -1);
	memcpy(sun.sun_path, sock_path, strlen(sock_path));
	FUZZ_CHECK(connect(h->client, (struct sockaddr *)&sun, sizeof(sun)) == 0);
	pump(h);
	if (!handshake)
		return;
	local_write(h, hello, sizeof(hello) - 1);
	FUZZ_CHECK((p = strstr(h->local_out, " id='")) != NULL);
	FUZZ_CHECK(sscanf(p, " id='%63[^']'", id) == 1);
	FUZZ_CHECK(digest_handshake(id, SECRET, digest) == 0);
	snprintf(msg, sizeof(msg), "<handshake>%s</handshake>", digest);
	local_write(h, msg, strlen(msg));
	FUZZ_CHECK(strstr(h->local_out, "<handshake/>") != NULL);
}

static void
harness_init(struct harness *h, int replay)
{
	struct relay_conf rc = {NULL, COMPONENT, SECRET, 4096, replay};
	struct xs_limits lim;
	char listen[128], err[256];

	memset(h, 0, sizeof(*h));
	h->client = -1;
	h->loop = loop_new();
	snprintf(listen, sizeof(listen), "unix:%s", sock_path);
	rc.listen = listen;
	h->relay = relay_new(h->loop, &rc, &upstream, h, err, sizeof(err));
	if (h->relay == NULL) {
		fprintf(stderr, "relay_new: %s\n", err);
		abort();
	}
	xs_limits_default(&lim);
	lim.stanza = 1u << 20;
	h->up_reader = xs_new(XS_NS_COMPONENT, &lim, &up_h, "upstream");
	FUZZ_CHECK(xs_feed(h->up_reader, UP_HEADER, strlen(UP_HEADER)) == 0);
	xs_limits_default(&lim);
	h->down_writer = xs_new(XS_NS_COMPONENT, &lim, &split_h, h);
	FUZZ_CHECK(xs_feed(h->down_writer, DOWN_HEADER, strlen(DOWN_HEADER)) == 0);
}

static void
harness_free(struct harness *h)
{
	int i;

	/* Sessions that ended close on their own once the peer is gone. */
	if (h->client != -1)
		close(h->client);
	h->client = -1;
	for (i = 0; i < 100 && io_lingering() > 0; i++)
		FUZZ_CHECK(loop_run_once(h->loop, i < 10 ? 0 : 1) == 0);
	FUZZ_CHECK(io_lingering() == 0);
	relay_free(h->relay);
	loop_free(h->loop);
	xs_free(h->up_reader);
	xs_free(h->down_writer);
	if (h->down_reader)
		xs_free(h->down_reader);
}

static void
once(void)
{
	char tmpl[] = "/tmp/xcomp-fuzz-relay-XXXXXX";

	if (sock_path[0])
		return;
	FUZZ_CHECK(mkdtemp(tmpl) != NULL);
	snprintf(sock_path, sizeof(sock_path), "%s/relay.sock", tmpl);
	log_init("fuzz_relay", 0, LOG_LEVEL_ERROR);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct harness h;
	const uint8_t *p = data, *end = data + size;
	unsigned reconnects = 0;
	size_t n;
	uint8_t op;

	if (size < 1)
		return 0;
	once();
	harness_init(&h, *p & 1);
	local_connect(&h, !(*p++ & 2));
	while (p < end) {
		op = *p++ % 6;
		n = 0;
		if (op <= 1 && p < end) {
			n = *p++;
			n = n < (size_t)(end - p) ? n : (size_t)(end - p);
		}
		switch (op) {
		case 0:
			local_write(&h, p, n);
			break;
		case 1:
			xs_feed(h.down_writer, (const char *)p, n);
			pump(&h);
			break;
		case 2:
			if (!h.up) {
				h.up = 1;
				relay_upstream_up(h.relay);
			}
			pump(&h);
			break;
		case 3:
			if (h.up) {
				h.up = 0;
				relay_upstream_down(h.relay);
			}
			pump(&h);
			break;
		case 4:
			if (h.ping[0])
				relay_ping_reply(h.relay, h.ping);
			pump(&h);
			break;
		default:
			if (reconnects++ < 3)
				local_connect(&h, 1);
		}
		p += n;
	}
	harness_free(&h);
	return 0;
}

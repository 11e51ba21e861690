/*
 * event: the agent's events as JSON, and their delivery by HTTP POST. The
 * first half (the JSON and the queue) does no I/O. The second half drives
 * libcurl's multi interface from the loop, as curl's multi-event.c example:
 * libcurl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION) and when
 * to wake it (CURLMOPT_TIMERFUNCTION); those callbacks only change what the
 * loop watches, and every call into libcurl comes from a loop callback.
 */
#include <sys/queue.h>

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>

#include "config.h"
#include "backoff.h"
#include "buf.h"
#include "event.h"
#include "log.h"
#include "util.h"

/* Answers are not read, only counted: past this the transfer is cut. */
#define EVENT_BODY_MAX (64 * 1024)
#define EVENT_BACKOFF_MIN_S 1
#define EVENT_BACKOFF_MAX_S 60

/* ------------------------------------------------------------------ JSON */

/* event_json's input is cut so that its output always fits: this cannot fail. */
static void
json_add(struct buf *b, const void *p, size_t n)
{
	if (buf_add(b, p, n) == -1)
		fatalx("event_json: more than %d bytes", EVENT_JSON_MAX);
}

/* Length of the well-formed UTF-8 character at s, 0 if it is not one. */
static size_t
utf8_len(const unsigned char *s)
{
	uint32_t c;
	size_t n, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		c = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 3;
		c = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		c = s[0] & 0x07;
	} else
		return 0;
	/* A NUL ends the string and is no continuation byte either. */
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	/* Overlong forms, UTF-16 surrogates and code points past U+10FFFF. */
	if ((n == 3 && c < 0x800) || (n == 4 && c < 0x10000) || (c >= 0xd800 && c <= 0xdfff) ||
	    c > 0x10ffff)
		return 0;
	return n;
}

static void
json_char(struct buf *b, unsigned char c)
{
	char esc[8];

	switch (c) {
	case '"':
		json_add(b, "\\\"", 2);
		break;
	case '\\':
		json_add(b, "\\\\", 2);
		break;
	case '\b':
		json_add(b, "\\b", 2);
		break;
	case '\f':
		json_add(b, "\\f", 2);
		break;
	case '\n':
		json_add(b, "\\n", 2);
		break;
	case '\r':
		json_add(b, "\\r", 2);
		break;
	case '\t':
		json_add(b, "\\t", 2);
		break;
	default:
		if (c < 0x20) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			json_add(b, esc, 6);
		} else
			json_add(b, &c, 1);
	}
}

/* A JSON string, or null; cut at EVENT_FIELD_MAX input bytes. */
static void
json_string(struct buf *b, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, n;

	if (str == NULL) {
		json_add(b, "null", 4);
		return;
	}
	json_add(b, "\"", 1);
	while (s[i] != '\0') {
		n = utf8_len(s + i);
		if (i + (n > 0 ? n : 1) > EVENT_FIELD_MAX)
			break;
		if (n == 0) {
			/* A receiver may reject the whole object for one bad byte. */
			json_add(b, "\xef\xbf\xbd", 3);
			i++;
		} else if (n == 1) {
			json_char(b, s[i]);
			i++;
		} else {
			json_add(b, s + i, n);
			i += n;
		}
	}
	json_add(b, "\"", 1);
}

static void
json_member(struct buf *b, const char *key, const char *value, int first)
{
	if (!first)
		json_add(b, ",", 1);
	json_string(b, key);
	json_add(b, ":", 1);
	json_string(b, value);
}

char *
event_json(const struct event_fields *f)
{
	struct buf b;
	char since[32];

	if (f->since != 0)
		util_iso_time(f->since, since, sizeof(since));
	buf_init(&b, EVENT_JSON_MAX);
	json_add(&b, "{", 1);
	json_member(&b, "event", f->event, 1);
	json_member(&b, "component", f->component, 0);
	json_member(&b, "state", f->state, 0);
	json_member(&b, "server", f->server, 0);
	json_member(&b, "address", f->address, 0);
	json_member(&b, "since", f->since != 0 ? since : NULL, 0);
	json_member(&b, "last-error", f->last_error, 0);
	json_member(&b, "last-error-text", f->last_error_text, 0);
	json_add(&b, "}", 2); /* and the NUL */
	return b.data;
}

/* ----------------------------------------------------------------- queue */

static size_t
queue_slot(const struct event_queue *q, size_t i)
{
	return (q->first + i) % (q->max + 1);
}

void
event_queue_init(struct event_queue *q, size_t max)
{
	memset(q, 0, sizeof(*q));
	q->max = max > 0 ? max : 1;
	q->ev = xcalloc(q->max + 1, sizeof(*q->ev));
}

void
event_queue_push(struct event_queue *q, char *json)
{
	size_t busy = q->busy && q->n > 0;
	size_t victim;

	if (q->n - busy == q->max) {
		/*
		 * Drop the oldest waiting event. Behind a busy head, the head
		 * moves into the victim's slot so that the ring stays whole.
		 */
		victim = queue_slot(q, busy);
		free(q->ev[victim]);
		q->ev[victim] = busy ? q->ev[q->first] : NULL;
		q->ev[q->first] = NULL;
		q->first = queue_slot(q, 1);
		q->n--;
		q->dropped++;
	}
	q->ev[queue_slot(q, q->n)] = json;
	q->n++;
}

const char *
event_queue_head(const struct event_queue *q)
{
	return q->n > 0 ? q->ev[q->first] : NULL;
}

void
event_queue_pop(struct event_queue *q)
{
	q->busy = 0;
	if (q->n == 0)
		return;
	free(q->ev[q->first]);
	q->ev[q->first] = NULL;
	q->first = queue_slot(q, 1);
	q->n--;
}

void
event_queue_clear(struct event_queue *q)
{
	while (q->n > 0)
		event_queue_pop(q);
	free(q->ev);
	memset(q, 0, sizeof(*q));
}

/* ------------------------------------------------------------------ sink */

/* A socket libcurl asked us to watch. */
struct event_sock {
	LIST_ENTRY(event_sock) entry;
	struct event_sink *sink;
	curl_socket_t fd;
	struct loop_fd *lfd;
};

enum event_state {
	EVENT_IDLE,    /* nothing to send, or wake is armed at 0 ms */
	EVENT_SENDING, /* the easy handle is in the multi handle */
	EVENT_BACKOFF, /* the head failed; wake is armed */
};

struct event_sink {
	struct loop *loop;
	struct timerq *tq;
	CURLM *multi;
	CURL *easy; /* reused, so that a kept-alive connection is too */
	struct curl_slist *headers;
	char *where; /* the URL without credentials or query, for the log */
	char *agent;
	struct event_queue q;
	struct backoff bo;
	enum event_state state;
	unsigned failures; /* in a row */
	struct timer wake; /* send the head: at once, or after the backoff */
	struct timer curl; /* CURLMOPT_TIMERFUNCTION's timeout */
	size_t body;       /* answer bytes seen */
	int cut_said;      /* an answer over EVENT_BODY_MAX was logged */
	LIST_HEAD(, event_sock) socks;
	char errbuf[CURL_ERROR_SIZE];
};

static void event_send(struct event_sink *);

static uint32_t
event_random(void *arg, uint32_t bound)
{
	(void)arg;
	return util_random_below(bound);
}

/* curl_global_init is not thread-safe: once, before the first handle. */
static int
event_global_init(char *err, size_t errlen)
{
	static int done;
	CURLcode rc;

	if (done)
		return 0;
	if ((rc = curl_global_init(CURL_GLOBAL_DEFAULT)) != CURLE_OK) {
		snprintf(err, errlen, "libcurl: %s", curl_easy_strerror(rc));
		return -1;
	}
	done = 1;
	return 0;
}

static const char *
event_urlerr(CURLUcode rc)
{
#if LIBCURL_VERSION_NUM >= 0x075000
	return curl_url_strerror(rc);
#else
	(void)rc;
	return "malformed";
#endif
}

/* The parts of a parsed URL that are safe to log: scheme://host[:port]/path. */
static char *
event_where(CURLU *u)
{
	char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *w;

	curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
	curl_url_get(u, CURLUPART_HOST, &host, 0);
	curl_url_get(u, CURLUPART_PORT, &port, 0);
	curl_url_get(u, CURLUPART_PATH, &path, 0);
	w = xasprintf("%s://%s%s%s%s", scheme, host, port != NULL ? ":" : "",
	    port != NULL ? port : "", path != NULL ? path : "/");
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(path);
	return w;
}

/*
 * http and https only, checked before libcurl parses the rest: libcurl
 * would accept ftp:// or file:// as well.
 */
static int
event_check_url(const char *url, char **where, char *err, size_t errlen)
{
	const char *sep;
	CURLU *u;
	CURLUcode rc;
	char *host = NULL;
	int ret = -1;

	if (url == NULL || *url == '\0') {
		snprintf(err, errlen, "event URL: empty");
		return -1;
	}
	if ((sep = strstr(url, "://")) == NULL) {
		snprintf(err, errlen, "event URL: not an http:// or https:// URL");
		return -1;
	}
	if (!((sep - url == 4 && strncasecmp(url, "http", 4) == 0) ||
	        (sep - url == 5 && strncasecmp(url, "https", 5) == 0))) {
		snprintf(err, errlen, "event URL: scheme \"%.*s\" is not http or https",
		    (int)(sep - url < 16 ? sep - url : 16), url);
		return -1;
	}
	if ((u = curl_url()) == NULL)
		fatalx("curl_url: out of memory");
	if ((rc = curl_url_set(u, CURLUPART_URL, url, 0)) != CURLUE_OK)
		snprintf(err, errlen, "event URL: %s", event_urlerr(rc));
	else if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || *host == '\0')
		snprintf(err, errlen, "event URL: no host");
	else {
		*where = event_where(u);
		ret = 0;
	}
	curl_free(host);
	curl_url_cleanup(u);
	return ret;
}

/* ---- libcurl's callbacks: they change what the loop watches, nothing else. */

static struct event_sock *
event_sock_find(struct event_sink *s, curl_socket_t fd)
{
	struct event_sock *es;

	for (es = LIST_FIRST(&s->socks); es != NULL; es = LIST_NEXT(es, entry))
		if (es->fd == fd)
			return es;
	return NULL;
}

static void
event_sock_del(struct event_sink *s, struct event_sock *es)
{
	LIST_REMOVE(es, entry);
	loop_del(s->loop, es->lfd);
	free(es);
}

static void event_fd_cb(int, int, void *);

static int
event_socket_cb(CURL *easy, curl_socket_t fd, int what, void *arg, void *sockp)
{
	struct event_sink *s = arg;
	struct event_sock *es = event_sock_find(s, fd);
	short events = 0;

	(void)easy;
	(void)sockp;
	if (what == CURL_POLL_REMOVE) {
		if (es != NULL)
			event_sock_del(s, es);
		return 0;
	}
	if (what & CURL_POLL_IN)
		events |= POLLIN;
	if (what & CURL_POLL_OUT)
		events |= POLLOUT;
	if (es != NULL) {
		loop_set_events(es->lfd, events);
		return 0;
	}
	es = xcalloc(1, sizeof(*es));
	es->sink = s;
	es->fd = fd;
	es->lfd = loop_add(s->loop, fd, events, event_fd_cb, es);
	LIST_INSERT_HEAD(&s->socks, es, entry);
	return 0;
}

/* A 0 ms timeout is honoured on the loop's next pass, never from here. */
static int
event_timer_cb(CURLM *multi, long ms, void *arg)
{
	struct event_sink *s = arg;

	(void)multi;
	if (ms < 0)
		timer_cancel(s->tq, &s->curl);
	else
		timer_add(s->tq, &s->curl, (uint64_t)ms);
	return 0;
}

static size_t
event_body_cb(char *data, size_t size, size_t n, void *arg)
{
	struct event_sink *s = arg;
	size_t len = size * n;

	(void)data;
	if (len > EVENT_BODY_MAX - s->body) {
		s->body = EVENT_BODY_MAX + 1;
		return 0; /* CURLE_WRITE_ERROR ends the transfer */
	}
	s->body += len;
	return len;
}

/* ---- the loop's callbacks: the only places that call into libcurl. */

/* Send the head now unless a POST or a backoff is under way. */
static void
event_kick(struct event_sink *s)
{
	if (s->state == EVENT_IDLE && s->q.n > 0 && !timer_armed(&s->wake))
		timer_add(s->tq, &s->wake, 0);
}

static void
event_delivered(struct event_sink *s, long code)
{
	event_queue_pop(&s->q);
	backoff_reset(&s->bo);
	if (s->failures > 0)
		log_info("events: %s accepts events again (HTTP %ld) after %u failed POST%s",
		    s->where, code, s->failures, s->failures == 1 ? "" : "s");
	else
		log_debug("events: delivered to %s (HTTP %ld)", s->where, code);
	s->failures = 0;
	event_kick(s);
}

/* The head stays; the first failure of a run is a warning, the others debug. */
static void
event_failed(struct event_sink *s, CURLcode rc, long code)
{
	unsigned ms = backoff_next(&s->bo, event_random, NULL);
	char why[CURL_ERROR_SIZE + 128];

	if (code != 0)
		snprintf(why, sizeof(why), "HTTP %ld", code);
	else if (s->errbuf[0] != '\0')
		snprintf(why, sizeof(why), "%s (%s)", curl_easy_strerror(rc), s->errbuf);
	else
		snprintf(why, sizeof(why), "%s", curl_easy_strerror(rc));
	if (s->failures++ == 0)
		log_warnx("events: POST to %s failed: %s; retrying in %.1f s", s->where, why,
		    ms / 1000.0);
	else
		log_debug("events: POST to %s failed again: %s; retrying in %.1f s", s->where, why,
		    ms / 1000.0);
	s->state = EVENT_BACKOFF;
	timer_add(s->tq, &s->wake, ms);
}

/*
 * A received 2xx delivers the event even if the answer's body then fails
 * (too long, cut off): the receiver has it, and a retry would repeat it.
 */
static void
event_finish(struct event_sink *s, CURLcode rc)
{
	long code = 0;

	curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &code);
	curl_multi_remove_handle(s->multi, s->easy);
	s->q.busy = 0;
	s->state = EVENT_IDLE;
	if (s->body > EVENT_BODY_MAX && !s->cut_said) {
		s->cut_said = 1;
		log_warnx("events: %s answers with more than %d KiB; the agent reads no further "
		          "(a 2xx answer still delivers the event); the answer needs no body",
		    s->where, EVENT_BODY_MAX / 1024);
	}
	if (code >= 200 && code <= 299)
		event_delivered(s, code);
	else
		event_failed(s, rc, code);
}

static void
event_check_done(struct event_sink *s)
{
	CURLMsg *m;
	CURLcode rc;
	int left;

	while ((m = curl_multi_info_read(s->multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE || m->easy_handle != s->easy)
			continue;
		/* m does not survive curl_multi_remove_handle. */
		rc = m->data.result;
		event_finish(s, rc);
	}
}

static void
event_fd_cb(int fd, int revents, void *arg)
{
	struct event_sock *es = arg;
	struct event_sink *s = es->sink; /* es may be freed by socket_action */
	int mask = 0, running;

	if (revents & (POLLIN | POLLHUP))
		mask |= CURL_CSELECT_IN;
	if (revents & POLLOUT)
		mask |= CURL_CSELECT_OUT;
	if (revents & (POLLERR | POLLNVAL))
		mask |= CURL_CSELECT_ERR;
	curl_multi_socket_action(s->multi, fd, mask, &running);
	event_check_done(s);
}

static void
event_curl_timeout(void *arg)
{
	struct event_sink *s = arg;
	int running;

	curl_multi_socket_action(s->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	event_check_done(s);
}

static void
event_wake(void *arg)
{
	struct event_sink *s = arg;

	s->state = EVENT_IDLE;
	event_send(s);
}

static void
event_send(struct event_sink *s)
{
	const char *json = event_queue_head(&s->q);
	CURLMcode mc;

	if (json == NULL)
		return;
	s->body = 0;
	s->errbuf[0] = '\0';
	/* The queue keeps the head in place while it is busy: no copy. */
	curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(json));
	curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, json);
	if ((mc = curl_multi_add_handle(s->multi, s->easy)) != CURLM_OK) {
		snprintf(s->errbuf, sizeof(s->errbuf), "%s", curl_multi_strerror(mc));
		event_failed(s, CURLE_FAILED_INIT, 0);
		return;
	}
	s->q.busy = 1;
	s->state = EVENT_SENDING;
}

/* ---- setup */

static int
event_setup_easy(struct event_sink *s, const char *url, const char *ca_file, unsigned timeout_s)
{
	CURL *e = s->easy;

	/*
	 * No proxy: an events receiver is configured by its URL, and a proxy
	 * that a daemon inherits from its environment is an accident.
	 */
	if (curl_easy_setopt(e, CURLOPT_URL, url) != CURLE_OK ||
#if LIBCURL_VERSION_NUM >= 0x075500
	    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
#else
	    curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS)) !=
	        CURLE_OK ||
#endif
	    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_PROXY, "") != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_USERAGENT, s->agent) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_HTTPHEADER, s->headers) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_POST, 1L) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_s * 1000) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, event_body_cb) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_WRITEDATA, s) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, s->errbuf) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK)
		return -1;
	if (ca_file != NULL && curl_easy_setopt(e, CURLOPT_CAINFO, ca_file) != CURLE_OK)
		return -1;
#if LIBCURL_VERSION_NUM >= 0x075700
	/*
	 * A transfer that ends (timeout, event_free) while the threaded
	 * resolver still waits on a slow DNS server would otherwise join that
	 * thread and block the loop. With this libcurl detaches it instead,
	 * and the thread frees its own data when getaddrinfo returns.
	 */
	if (curl_easy_setopt(e, CURLOPT_QUICK_EXIT, 1L) != CURLE_OK)
		return -1;
#endif
	return 0;
}

static int
event_setup_multi(struct event_sink *s)
{
	if (curl_multi_setopt(s->multi, CURLMOPT_SOCKETFUNCTION, event_socket_cb) != CURLM_OK ||
	    curl_multi_setopt(s->multi, CURLMOPT_SOCKETDATA, s) != CURLM_OK ||
	    curl_multi_setopt(s->multi, CURLMOPT_TIMERFUNCTION, event_timer_cb) != CURLM_OK ||
	    curl_multi_setopt(s->multi, CURLMOPT_TIMERDATA, s) != CURLM_OK)
		return -1;
	return 0;
}

static int
event_check_args(
    const char *ca_file, unsigned timeout_s, unsigned queue_max, char *err, size_t errlen)
{
	if (timeout_s == 0) {
		snprintf(err, errlen, "event timeout: must be at least 1 second");
		return -1;
	}
	if (queue_max == 0) {
		snprintf(err, errlen, "event queue: must hold at least 1 event");
		return -1;
	}
	if (ca_file != NULL && access(ca_file, R_OK) == -1) {
		snprintf(err, errlen, "event CA file %s: %s", ca_file, strerror(errno));
		return -1;
	}
	return 0;
}

struct event_sink *
event_new(struct loop *loop, const char *url, const char *ca_file, unsigned timeout_s,
    unsigned queue_max, char *err, size_t errlen)
{
	struct event_sink *s;
	char *where = NULL;

	if (event_check_url(url, &where, err, errlen) == -1 ||
	    event_check_args(ca_file, timeout_s, queue_max, err, errlen) == -1 ||
	    event_global_init(err, errlen) == -1) {
		free(where);
		return NULL;
	}
	s = xcalloc(1, sizeof(*s));
	s->loop = loop;
	s->tq = loop_timers(loop);
	s->where = where;
	s->agent = xasprintf("xcompd/%s", PACKAGE_VERSION);
	LIST_INIT(&s->socks);
	event_queue_init(&s->q, queue_max);
	backoff_init(&s->bo, EVENT_BACKOFF_MIN_S, EVENT_BACKOFF_MAX_S);
	timer_init(&s->wake, event_wake, s);
	timer_init(&s->curl, event_curl_timeout, s);
	/* "Expect:" off: a short body is not worth a round trip. */
	s->headers = curl_slist_append(NULL, "Content-Type: application/json");
	if (s->headers != NULL)
		s->headers = curl_slist_append(s->headers, "Expect:");
	if (s->headers == NULL || (s->easy = curl_easy_init()) == NULL ||
	    (s->multi = curl_multi_init()) == NULL)
		fatalx("libcurl: out of memory");
	if (event_setup_easy(s, url, ca_file, timeout_s) == -1 || event_setup_multi(s) == -1) {
		snprintf(err, errlen, "libcurl refused an option (%s)", curl_version());
		event_free(s);
		return NULL;
	}
	return s;
}

void
event_set_backoff(struct event_sink *s, unsigned min_s, unsigned max_s)
{
	backoff_init(&s->bo, min_s, max_s);
}

void
event_post(struct event_sink *s, const char *json)
{
	size_t len = strlen(json);
	unsigned dropped = s->q.dropped;

	if (len >= EVENT_JSON_MAX) {
		s->q.dropped++;
		log_warnx("events: dropped an event of %zu bytes (the limit is %d)", len,
		    EVENT_JSON_MAX - 1);
		return;
	}
	event_queue_push(&s->q, xstrdup(json));
	if (s->q.dropped != dropped)
		log_warnx("events: %zu waiting for %s, dropped the oldest", s->q.max, s->where);
	event_kick(s);
}

unsigned
event_dropped(const struct event_sink *s)
{
	return s->q.dropped;
}

size_t
event_queued(const struct event_sink *s)
{
	return s->q.n;
}

/*
 * libcurl may still call event_socket_cb while it cleans up: the sink
 * stays whole until curl_multi_cleanup returns.
 */
void
event_free(struct event_sink *s)
{
	struct event_sock *es;

	if (s == NULL)
		return;
	if (s->multi != NULL && s->easy != NULL && s->state == EVENT_SENDING)
		curl_multi_remove_handle(s->multi, s->easy);
	if (s->easy != NULL)
		curl_easy_cleanup(s->easy);
	if (s->multi != NULL)
		curl_multi_cleanup(s->multi);
	while ((es = LIST_FIRST(&s->socks)) != NULL)
		event_sock_del(s, es);
	timer_cancel(s->tq, &s->wake);
	timer_cancel(s->tq, &s->curl);
	curl_slist_free_all(s->headers);
	event_queue_clear(&s->q);
	free(s->where);
	free(s->agent);
	free(s);
}

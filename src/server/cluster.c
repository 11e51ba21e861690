/*
 * cluster: the running side of the xcomp-server cluster. Each node dials
 * every other member over TLS, both sides proving a certificate that leads
 * to the cluster's trust bundle, and keeps that link up; what a node has
 * to say to a member goes on its own link to it, or on the member's link
 * to it while its own is down. On the links: Raft's messages (raft.c), a
 * keep-alive, the node's online components, forwarded stanzas, and the
 * leader's member list, joins and removals.
 *
 * The wire is an XML stream in a namespace of its own, parsed by xs.c
 * with its limits; a forwarded stanza travels inside <f/> in the component
 * namespace, ready to be written to the component as it is.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "accept.h"
#include "cluster_impl.h"
#include "io.h"
#include "jid.h"
#include "log.h"
#include "members.h"
#include "raft.h"
#include "tls.h"
#include "util.h"

#define REQUEST_TIMEOUT_MS 15000
#define RETRY_MIN_MS 50
#define RETRY_MAX_MS 1000
#define HOPS_MAX 2

static void peer_dial(void *);
static void peer_recheck_routes(struct cluster *, struct peer *);
static void cluster_raft_after(struct cluster *, struct raft_out *);
static void cluster_arm_raft(struct cluster *);
static void cluster_join_check(struct cluster *);
static const char *cluster_shown_state(struct cluster *, uint64_t now, uint32_t *leader);

/* Helpers */

const char *
cluster_hex_id(uint32_t id, char buf[9])
{
	snprintf(buf, 9, "%08x", id);
	return buf;
}

uint32_t
cluster_parse_id(const char *s)
{
	char *end;
	unsigned long v;

	if (s == NULL || *s == '\0')
		return 0;
	errno = 0;
	v = strtoul(s, &end, 16);
	return errno || *end || v > UINT32_MAX ? 0 : (uint32_t)v;
}

uint64_t
cluster_parse_u64(const char *s)
{
	return s ? strtoull(s, NULL, 10) : 0;
}

static void
wall_time(time_t t, char *buf, size_t len)
{
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(buf, len, "%Y-%b-%d %H:%M:%S", &tm);
}

static void cluster_event(struct cluster *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

/* Logged, and kept for cluster status. */
static void
cluster_event(struct cluster *cl, const char *fmt, ...)
{
	char text[250], when[32];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	log_info("cluster: %s", text);
	if (cl->nevents == EVENTS_MAX) {
		memmove(cl->events[0], cl->events[1], sizeof(cl->events[0]) * (EVENTS_MAX - 1));
		cl->nevents--;
	}
	wall_time(time(NULL), when, sizeof(when));
	snprintf(cl->events[cl->nevents++], sizeof(cl->events[0]), "%s %s", when, text);
}

static struct peer *
peer_by_id(struct cluster *cl, uint32_t id)
{
	size_t i;

	for (i = 0; i < cl->npeers; i++)
		if (cl->peers[i].id == id)
			return &cl->peers[i];
	return NULL;
}

static const char *
member_addr(struct cluster *cl, uint32_t id)
{
	struct member *mb = members_by_id(&cl->m, id);

	return mb ? mb->addr : "?";
}

static int
peer_alive(const struct cluster *cl, const struct peer *p, uint64_t now)
{
	return p->heard != 0 && now - p->heard < cl->set.election_ms;
}

/* Members in sight, this node included. */
static size_t
cluster_in_sight(const struct cluster *cl, uint64_t now)
{
	size_t i, n = cl->in_raft;

	for (i = 0; i < cl->npeers; i++)
		n += peer_alive(cl, &cl->peers[i], now);
	return n;
}

static int
cluster_majority(const struct cluster *cl, uint64_t now)
{
	return cl->in_raft && cluster_in_sight(cl, now) >= cl->m.n / 2 + 1;
}

/* Sending */

/* A link to a member that can carry a message now: ours first, else its to us. */
static struct link *
cluster_link_to(struct cluster *cl, uint32_t id)
{
	struct peer *p = peer_by_id(cl, id);
	struct link *l;

	if (p && p->out && p->out->secured)
		return p->out;
	for (l = cl->links; l; l = l->next)
		if (!l->outgoing && l->secured && l->id == id)
			return l;
	return NULL;
}

static int
cluster_send(struct cluster *cl, uint32_t id, const char *s)
{
	return link_send(cluster_link_to(cl, id), s, strlen(s));
}

static void
cluster_send_all(struct cluster *cl, const char *s)
{
	size_t i;

	for (i = 0; i < cl->npeers; i++)
		cluster_send(cl, cl->peers[i].id, s);
}

/*
 * <ms e='EPOCH'>ID@ADDR ID@ADDR</ms>: the member list. Every message on a
 * link is one flat element, attributes and text, so that the links parse
 * shallow: a forwarded stanza inside <f/> is passed on as received.
 * attrs: more attributes (" ok='1'"), or "".
 */
static char *
members_message(const struct cluster *cl, const char *name, const char *attrs)
{
	struct buf b;
	char id[9], *s;
	size_t i;

	buf_init(&b, 1 << 20);
	buf_printf(&b, "<%s e='%llu'%s>", name, (unsigned long long)cl->m.epoch, attrs);
	for (i = 0; i < cl->m.n; i++) {
		s = xs_escape(cl->m.m[i].addr);
		buf_printf(&b, "%s%s@%s", i ? " " : "", cluster_hex_id(cl->m.m[i].id, id), s);
		free(s);
	}
	buf_printf(&b, "</%s>", name);
	buf_add(&b, "", 1);
	s = xstrdup(buf_head(&b));
	buf_free(&b);
	return s;
}

static void send_routes(struct cluster *cl, struct link *l);

/* Routes */

static void
peer_clear_routes(struct peer *p)
{
	size_t i;

	for (i = 0; i < p->nroutes; i++)
		free(p->routes[i]);
	free(p->routes);
	p->routes = NULL;
	p->nroutes = 0;
}

static int
peer_has_route(const struct peer *p, const char *jid)
{
	size_t i;

	for (i = 0; i < p->nroutes; i++)
		if (strcasecmp(p->routes[i], jid) == 0)
			return 1;
	return 0;
}

/* Call fn for each word of a space-separated list (NULL: none). */
static void
words_each(const char *text, void (*fn)(void *, const char *), void *arg)
{
	char *copy, *p, *w;

	if (text == NULL)
		return;
	copy = p = xstrdup(text);
	while ((w = strsep(&p, " ")) != NULL)
		if (*w != '\0')
			fn(arg, w);
	free(copy);
}

static void peer_route(struct peer *p, const char *jid, int up);

static void
peer_route_up(void *arg, const char *jid)
{
	peer_route(arg, jid, 1);
}

static void
peer_route(struct peer *p, const char *jid, int up)
{
	size_t i;

	for (i = 0; i < p->nroutes; i++)
		if (strcasecmp(p->routes[i], jid) == 0) {
			if (!up) {
				free(p->routes[i]);
				p->routes[i] = p->routes[--p->nroutes];
			}
			return;
		}
	if (up) {
		p->routes = xrealloc(p->routes, (p->nroutes + 1) * sizeof(*p->routes));
		p->routes[p->nroutes++] = xstrdup(jid);
		/* Two sessions where one was meant (a race, a healed partition): the lower id keeps
		 * its. */
		p->cl->h.remote_up(p->cl->h.arg, jid, p->addr, p->id < p->cl->m.self);
	}
}

#define ROUTES_CHUNK (64u << 10)

struct route_acc {
	struct buf b;
	struct link *l;
	int first;
};

static void
route_chunk_end(struct route_acc *r)
{
	buf_addstr(&r->b, r->first ? "</rs>" : "</ra>");
	link_send(r->l, buf_head(&r->b), r->b.len);
	buf_consume(&r->b, r->b.len);
	r->first = 0;
}

/* In chunks: <rs>JID JID</rs> replaces what the peer knew, <ra>JID</ra> adds. */
static void
add_route(void *arg, const char *jid)
{
	struct route_acc *r = arg;
	char *s = xs_escape(jid);

	if (r->b.len > ROUTES_CHUNK) {
		route_chunk_end(r);
		buf_addstr(&r->b, "<ra>");
	}
	buf_printf(&r->b, " %s", s);
	free(s);
}

/* Every component online here, for a member that just linked. */
static void
send_routes(struct cluster *cl, struct link *l)
{
	struct route_acc r;

	buf_init(&r.b, 1u << 20);
	r.l = l;
	r.first = 1;
	buf_addstr(&r.b, "<rs>");
	cl->h.each_local(cl->h.arg, add_route, &r);
	route_chunk_end(&r);
	buf_free(&r.b);
}

static void
cluster_local_change(struct cluster *cl, const char *jid, int up)
{
	char *s = xs_escape(jid), *msg;

	msg = xasprintf("<c j='%s' u='%d'/>", s, up);
	cluster_send_all(cl, msg);
	free(msg);
	free(s);
}

void
cluster_local_up(struct cluster *cl, const char *jid)
{
	cluster_local_change(cl, jid, 1);
}

void
cluster_local_down(struct cluster *cl, const char *jid)
{
	cluster_local_change(cl, jid, 0);
}

/* The member that holds jid and can take a stanza now, or NULL. */
static struct peer *
cluster_find_holder(struct cluster *cl, const char *jid, uint32_t except)
{
	uint64_t now = util_now_ms();
	struct peer *best = NULL;
	size_t i;

	if (!cluster_majority(cl, now))
		return NULL;
	for (i = 0; i < cl->npeers; i++) {
		struct peer *p = &cl->peers[i];

		if (p->id == except || !peer_alive(cl, p, now) || !peer_has_route(p, jid))
			continue;
		if (best == NULL || (p->out && p->out->secured))
			best = p;
	}
	return best;
}

const char *
cluster_holder(struct cluster *cl, const char *jid)
{
	struct peer *p = cluster_find_holder(cl, jid, RAFT_NONE);

	return p ? p->addr : NULL;
}

/*
 * <f xmlns='jabber:component:accept' j='JID' h='HOPS'>STANZA</f>: the
 * stanza in the component namespace, ready for the component's stream.
 * Straight to the holder, or through the leader when our link to the
 * holder is down. NULL when no node can take it.
 */
static struct link *
cluster_route_link(struct cluster *cl, const char *jid, unsigned hops, uint32_t except)
{
	struct peer *p = cluster_find_holder(cl, jid, except);
	struct link *l;

	if (p == NULL || hops > HOPS_MAX)
		return NULL;
	if ((l = cluster_link_to(cl, p->id)) == NULL && hops < HOPS_MAX &&
	    cl->leader != cl->m.self && cl->leader != p->id)
		l = cluster_link_to(cl, cl->leader);
	return l;
}

/* The frame's head into cl->scratch (emptied first); the stanza follows it. */
static void
frame_head(struct cluster *cl, const char *jid, unsigned hops)
{
	char *j = strpbrk(jid, "&<>'\"") ? xs_escape(jid) : NULL;

	buf_consume(&cl->scratch, cl->scratch.len);
	buf_printf(
	    &cl->scratch, "<f xmlns='" XS_NS_COMPONENT "' j='%s' h='%u'>", j ? j : jid, hops);
	free(j);
}

/* One write a stanza: the head, the stanza, the tail. */
static int
frame_send(struct cluster *cl, struct link *l)
{
	int r;

	if (buf_addstr(&cl->scratch, "</f>") == -1)
		return -1;
	r = link_send(l, buf_head(&cl->scratch), cl->scratch.len);
	buf_consume(&cl->scratch, cl->scratch.len);
	return r;
}

static int
cluster_forward_raw(struct cluster *cl, const char *jid, const char *stanza, size_t len,
    unsigned hops, uint32_t except)
{
	struct link *l = cluster_route_link(cl, jid, hops, except);

	if (l == NULL)
		return -1;
	frame_head(cl, jid, hops);
	if (buf_add(&cl->scratch, stanza, len) == -1)
		return -1;
	return frame_send(cl, l);
}

int
cluster_forward(struct cluster *cl, const char *jid, const struct xs_elem *stanza)
{
	struct link *l = cluster_route_link(cl, jid, 1, RAFT_NONE);

	if (l == NULL)
		return -1;
	frame_head(cl, jid, 1);
	if (xs_serialize(stanza, XS_NS_COMPONENT, &cl->scratch) == -1)
		return -1;
	return frame_send(cl, l);
}

void
cluster_kick(struct cluster *cl, const char *jid)
{
	char *j = xs_escape(jid), *w = xs_escape(cl->name), *msg;
	size_t i;

	msg = xasprintf("<k j='%s' w='%s'/>", j, w);
	for (i = 0; i < cl->npeers; i++)
		if (peer_has_route(&cl->peers[i], jid))
			cluster_send(cl, cl->peers[i].id, msg);
	free(msg);
	free(w);
	free(j);
}

struct bounce {
	struct cluster *cl;
	char *err;
	char dom[1024];
};

static int
bounce_stanza(void *arg, const struct xs_elem *st, const char *raw, size_t len)
{
	struct bounce *b = arg;
	const char *from = xs_attr(st, "from");

	(void)raw;
	(void)len;
	if (b->err == NULL && from && jid_domain(from, b->dom, sizeof(b->dom)) == 0)
		b->err = accept_stanza_error(st, "cancel", "service-unavailable");
	return 0;
}

static int
bounce_open(void *arg, const struct xs_elem *header)
{
	(void)arg;
	(void)header;
	return 0;
}

/*
 * A forwarded stanza whose component went meanwhile: its sender gets
 * service-unavailable, as on one node. Rare, so the stanza is parsed only
 * here.
 */
static void
cluster_bounce(struct cluster *cl, const char *stanza, size_t len)
{
	static const struct xs_handler h = {bounce_open, bounce_stanza, NULL, NULL};
	static const char header[] =
	    "<stream:stream xmlns='" XS_NS_COMPONENT "' xmlns:stream='" XS_NS_STREAMS "'>";
	struct bounce b = {cl, NULL, ""};
	struct xs *x = xs_new(XS_NS_COMPONENT, &cl->limits, &h, &b);

	if (xs_feed(x, header, strlen(header)) == 0)
		(void)xs_feed(x, stanza, len);
	xs_free(x);
	if (b.err == NULL)
		return;
	if (cl->h.deliver(cl->h.arg, b.dom, b.err, strlen(b.err)) == -1)
		cluster_forward_raw(cl, b.dom, b.err, strlen(b.err), 1, RAFT_NONE);
	free(b.err);
}

/* A forwarded stanza arrived: deliver it here, pass it on, or bounce it. */
static void
cluster_on_forward(
    struct cluster *cl, struct link *l, const struct xs_elem *e, const char *raw, size_t len)
{
	const char *jid = xs_attr(e, "j");
	unsigned hops = (unsigned)cluster_parse_u64(xs_attr(e, "h"));
	size_t start, end;

	if (jid == NULL || xs_raw_content(raw, len, &start, &end) == -1)
		return;
	if (cl->h.deliver(cl->h.arg, jid, raw + start, end - start) == 0 ||
	    cluster_forward_raw(cl, jid, raw + start, end - start, hops + 1, l->id) == 0)
		return;
	cluster_bounce(cl, raw + start, end - start);
}

/* Raft */

static const char *const raft_type_names[] = {"pv", "pvr", "v", "vr", "hb", "hbr"};

static void
cluster_send_raft(struct cluster *cl, const struct raft_msg *m)
{
	char a[9], b[9], *s;

	s = xasprintf("<r t='%s' n='%llu' f='%s' o='%s' x='%d'/>", raft_type_names[m->type],
	    (unsigned long long)m->term, cluster_hex_id(m->from, a), cluster_hex_id(m->to, b),
	    m->reject);
	cluster_send(cl, m->to, s);
	free(s);
}

static void
cluster_on_raft(struct cluster *cl, const struct xs_elem *e)
{
	const char *t = xs_attr(e, "t");
	struct raft_msg m;
	struct raft_out out;
	size_t i;

	if (!cl->in_raft || t == NULL)
		return;
	memset(&m, 0, sizeof(m));
	for (i = 0; i < nitems(raft_type_names); i++)
		if (strcmp(t, raft_type_names[i]) == 0)
			break;
	if (i == nitems(raft_type_names))
		return;
	m.type = (enum raft_msg_type)i;
	m.term = cluster_parse_u64(xs_attr(e, "n"));
	m.from = cluster_parse_id(xs_attr(e, "f"));
	m.to = cluster_parse_id(xs_attr(e, "o"));
	m.reject = xs_attr(e, "x") && strcmp(xs_attr(e, "x"), "1") == 0;
	out.n = 0;
	raft_step(&cl->raft, util_now_ms(), &m, &out);
	cluster_raft_after(cl, &out);
}

/* Say what changed: the leader, this node's role, a lost or regained majority. */
static void
cluster_note_role(struct cluster *cl)
{
	uint64_t now = util_now_ms();
	int maj = cluster_majority(cl, now);
	uint32_t shown_leader;
	const char *shown = cluster_shown_state(cl, now, &shown_leader);

	if (shown != cl->shown || shown_leader != cl->shown_leader) {
		cl->shown = shown;
		cl->shown_leader = shown_leader;
		cl->changed_at = time(NULL);
	}
	if (cl->raft.role != cl->role || cl->raft.leader != cl->leader) {
		/* A leader that steps down says why: CheckQuorum keeps the term, a newer one does
		 * not. */
		if (cl->role == RAFT_LEADER && cl->raft.role != RAFT_LEADER)
			log_warnx("cluster: this node is no longer the leader (term %llu): %s",
			    (unsigned long long)cl->term,
			    cl->raft.term == cl->term
			        ? "no majority answered within the election timeout"
			        : "a newer term");
		cl->role = cl->raft.role;
		cl->leader = cl->raft.leader;
		cl->term = cl->raft.term;
		if (cl->role == RAFT_LEADER)
			log_info("cluster: this node is the leader (term %llu)",
			    (unsigned long long)cl->raft.term);
		else if (cl->leader != RAFT_NONE)
			log_info("cluster: leader is %s (term %llu)", member_addr(cl, cl->leader),
			    (unsigned long long)cl->raft.term);
	}
	if (maj != cl->had_majority && cl->in_raft) {
		if (maj)
			log_info("cluster: a majority is in sight (%zu of %zu members)",
			    cluster_in_sight(cl, now), cl->m.n);
		else
			log_warnx("cluster: no quorum: %zu of %zu members in sight, routing among "
			          "this node's components only",
			    cluster_in_sight(cl, now), cl->m.n);
		cl->had_majority = maj;
	}
	cluster_join_check(cl);
}

/* After a Raft call: term and vote on disk first, then the messages. */
static void
cluster_raft_after(struct cluster *cl, struct raft_out *out)
{
	char err[1024];
	size_t i;

	if (cl->raft.term != cl->m.term || cl->raft.voted_for != cl->m.voted_for) {
		cl->m.term = cl->raft.term;
		cl->m.voted_for = cl->raft.voted_for;
		if (members_save(cl->st->dir, &cl->m, err, sizeof(err)) == -1) {
			/* Sending a vote that is not on disk could elect two leaders. */
			log_warnx("cluster: %s: Raft messages not sent", err);
			out->n = 0;
		}
	}
	for (i = 0; i < out->n; i++)
		cluster_send_raft(cl, &out->msg[i]);
	cluster_note_role(cl);
	cluster_arm_raft(cl);
}

static void
cluster_raft_tick(void *arg)
{
	struct cluster *cl = arg;
	struct raft_out out;

	out.n = 0;
	raft_tick(&cl->raft, util_now_ms(), &out);
	cluster_raft_after(cl, &out);
}

static void
cluster_arm_raft(struct cluster *cl)
{
	uint64_t now = util_now_ms(), due;

	if (!cl->in_raft) {
		timer_cancel(loop_timers(cl->loop), &cl->raft_timer);
		return;
	}
	due = raft_next_deadline(&cl->raft);
	timer_add(loop_timers(cl->loop), &cl->raft_timer, due > now ? due - now : 0);
}

/* Membership */

static void
peer_free(struct cluster *cl, struct peer *p)
{
	struct link *l, *next;

	timer_cancel(loop_timers(cl->loop), &p->retry);
	for (l = cl->links; l; l = next) {
		next = l->next;
		if (l->id == p->id && !l->joining) {
			/* What we said last (its removal) goes out before the link. */
			link_flush(l);
			/* l->next may go with l's peer's other link: start over. */
			link_free(l);
			next = cl->links;
		}
	}
	peer_clear_routes(p);
}

/* The peers follow the member list: new members dialed, gone ones dropped. */
static void
cluster_sync_peers(struct cluster *cl)
{
	struct peer old[MEMBERS_MAX], *p;
	size_t nold = cl->npeers, i, j;
	uint32_t ids[MEMBERS_MAX];
	int armed[MEMBERS_MAX];

	/* The timer queue points into the array: take the timers out before moving peers. */
	for (i = 0; i < nold; i++) {
		armed[i] = timer_armed(&cl->peers[i].retry);
		timer_cancel(loop_timers(cl->loop), &cl->peers[i].retry);
	}
	memcpy(old, cl->peers, sizeof(old));
	cl->npeers = 0;
	for (i = 0; i < cl->m.n; i++) {
		if (cl->m.m[i].id == cl->m.self)
			continue;
		p = &cl->peers[cl->npeers++];
		for (j = 0; j < nold; j++)
			if (old[j].id == cl->m.m[i].id && strcmp(old[j].addr, cl->m.m[i].addr) == 0)
				break;
		if (j < nold) {
			*p = old[j];
			old[j].id = RAFT_NONE;
			timer_init(&p->retry, peer_dial, p);
			if (armed[j])
				timer_add(loop_timers(cl->loop), &p->retry, 0);
			continue;
		}
		memset(p, 0, sizeof(*p));
		p->cl = cl;
		p->id = cl->m.m[i].id;
		snprintf(p->addr, sizeof(p->addr), "%s", cl->m.m[i].addr);
		timer_init(&p->retry, peer_dial, p);
		timer_add(loop_timers(cl->loop), &p->retry, 0);
	}
	/* Peers no longer members: their links go. */
	for (i = 0; i < nold; i++)
		if (old[i].id != RAFT_NONE)
			peer_free(cl, &old[i]);
	cl->in_raft = cl->m.self != RAFT_NONE && members_by_id(&cl->m, cl->m.self) != NULL;
	/* A node that just initialized or joined has its id now. */
	if (cl->raft.id != cl->m.self)
		raft_init(&cl->raft, cl->m.self, &cl->set, cl->m.term, cl->m.voted_for,
		    util_now_ms(), util_random_fn, NULL);
	for (i = 0; i < cl->m.n; i++)
		ids[i] = cl->m.m[i].id;
	raft_set_members(&cl->raft, ids, cl->m.n, util_now_ms());
	cluster_arm_raft(cl);
}

static int
cluster_save(struct cluster *cl)
{
	char err[1024];

	if (members_save(cl->st->dir, &cl->m, err, sizeof(err)) == -1) {
		log_warnx("cluster: %s", err);
		return -1;
	}
	return 0;
}

/* ID@ADDR */
static void
member_word(void *arg, const char *w)
{
	const char *at = strchr(w, '@');
	char id[9];

	if (at == NULL || at - w > 8 || strlen(at + 1) >= MEMBERS_ADDR_MAX)
		return;
	snprintf(id, sizeof(id), "%.*s", (int)(at - w), w);
	if (cluster_parse_id(id) != RAFT_NONE)
		members_add(arg, cluster_parse_id(id), at + 1);
}

/* A member list (members_merge): taken when it is newer than ours. */
static void
cluster_on_members(struct cluster *cl, const struct xs_elem *e)
{
	struct members m;
	int was_in = cl->in_raft;

	memset(&m, 0, sizeof(m));
	m.epoch = cluster_parse_u64(xs_attr(e, "e"));
	words_each(e->text, member_word, &m);
	if (!members_merge(&cl->m, &m))
		return;
	/* Removed: a node out of the list forgets the others (and stops dialing them). */
	if (cl->m.self == RAFT_NONE || members_by_id(&cl->m, cl->m.self) == NULL)
		cl->m.n = 0;
	cluster_save(cl);
	cluster_sync_peers(cl);
	if (was_in && !cl->in_raft)
		cluster_event(cl, "this node was removed from the cluster");
	cluster_note_role(cl);
}

static void
cluster_broadcast_members(struct cluster *cl, uint32_t also)
{
	char *msg = members_message(cl, "ms", "");

	cluster_send_all(cl, msg);
	if (also != RAFT_NONE && peer_by_id(cl, also) == NULL)
		cluster_send(cl, also, msg);
	free(msg);
}

/* The leader may change the member list only while it sees a majority. */
static int
cluster_may_change(struct cluster *cl)
{
	return cl->raft.role == RAFT_LEADER && cluster_majority(cl, util_now_ms());
}

static int
leader_alive_cb(void *arg, uint32_t id)
{
	struct cluster *cl = arg;
	struct peer *p = peer_by_id(cl, id);

	return id == cl->m.self || (p && peer_alive(cl, p, util_now_ms()));
}

/*
 * The leader decides a join: a new member, a member back under a new
 * address, or one that replaces a member reset without leaving. The
 * answer, <jr/>, carries the member list.
 */
static char *
leader_join(struct cluster *cl, uint32_t id, const char *addr)
{
	char why[400], a[9], *attrs, *s, *r;
	uint32_t other = 0;
	enum members_join v;
	struct member *mb;

	if (!cluster_may_change(cl))
		return xstrdup("<jr ok='0' why='the cluster has no leader (no majority)'/>");
	v = members_join_verdict(&cl->m, id, addr, leader_alive_cb, cl, &other);
	switch (v) {
	case MEMBERS_JOIN_LIVE:
		snprintf(why, sizeof(why), "a live member already has the address %s (id %s)", addr,
		    cluster_hex_id(other, a));
		break;
	case MEMBERS_JOIN_FULL:
		snprintf(why, sizeof(why), "the cluster has %d members already", MEMBERS_MAX);
		break;
	case MEMBERS_JOIN_REPLACE:
		members_del(&cl->m, other);
		if ((mb = members_by_id(&cl->m, id)) != NULL)
			snprintf(mb->addr, sizeof(mb->addr), "%s", addr);
		else
			members_add(&cl->m, id, addr);
		cluster_event(cl,
		    "replaced the stale member %s at %s: it was reset without leaving the cluster",
		    cluster_hex_id(other, a), addr);
		break;
	case MEMBERS_JOIN_AGAIN:
		if ((mb = members_by_id(&cl->m, id)) != NULL)
			snprintf(mb->addr, sizeof(mb->addr), "%s", addr);
		cluster_event(cl, "%s joined again", addr);
		break;
	case MEMBERS_JOIN_ADD:
		members_add(&cl->m, id, addr);
		cluster_event(cl, "%s joined", addr);
		break;
	}
	if (v == MEMBERS_JOIN_LIVE || v == MEMBERS_JOIN_FULL) {
		s = xs_escape(why);
		r = xasprintf("<jr ok='0' why='%s'/>", s);
		free(s);
		return r;
	}
	cl->m.epoch = members_next_epoch(cl->m.epoch, cl->raft.term);
	cluster_save(cl);
	cluster_sync_peers(cl);
	cluster_broadcast_members(cl, RAFT_NONE);
	s = xs_escape(cl->name);
	attrs = xasprintf(" ok='1' l='%s'", s);
	r = members_message(cl, "jr", attrs);
	free(attrs);
	free(s);
	return r;
}

static void
cluster_on_join(struct cluster *cl, struct link *l, const struct xs_elem *e)
{
	uint32_t id = cluster_parse_id(xs_attr(e, "i")), via = cluster_parse_id(xs_attr(e, "v"));
	const char *addr = xs_attr(e, "a");
	char *msg, *a, vid[9];

	if (id == RAFT_NONE || addr == NULL || strlen(addr) >= MEMBERS_ADDR_MAX)
		return;
	if (cl->role == RAFT_LEADER) {
		msg = leader_join(cl, id, addr);
		if (via == RAFT_NONE) {
			link_send(l, msg, strlen(msg));
		} else {
			/* Back through the member that asked: <jr v='JOINER' .../>, passed on as
			 * is. */
			char *wrapped = xasprintf("<jr v='%s'%s", cluster_hex_id(id, vid), msg + 3);

			cluster_send(cl, via, wrapped);
			free(wrapped);
		}
		free(msg);
		return;
	}
	if (via != RAFT_NONE)
		return; /* not the leader any more: the joiner times out and says so */
	if (cl->leader == RAFT_NONE || cluster_link_to(cl, cl->leader) == NULL) {
		msg = "<jr ok='0' why='the cluster has no leader (no majority)'/>";
		link_send(l, msg, strlen(msg));
		return;
	}
	a = xs_escape(addr);
	msg = xasprintf("<j i='%s' a='%s' v='%s'/>", cluster_hex_id(id, vid), a,
	    cluster_hex_id(cl->m.self, (char[9]){0}));
	cluster_send(cl, cl->leader, msg);
	free(msg);
	free(a);
}

/* The leader's answer to a join we passed on: to the joiner's link, as received. */
static void
cluster_on_join_relay(struct cluster *cl, const struct xs_elem *e, const char *raw, size_t len)
{
	uint32_t id = cluster_parse_id(xs_attr(e, "v"));
	struct link *l;

	for (l = cl->links; l; l = l->next)
		if (!l->outgoing && l->id == id)
			break;
	if (l != NULL)
		link_send(l, raw, len);
}

/* Control requests */

static void
request_done(struct cluster *cl, int status, const char *text)
{
	struct request *r = &cl->req;
	cluster_reply_fn *fn = r->fn;
	void *arg = r->arg;

	if (r->kind == REQ_NONE)
		return;
	timer_cancel(loop_timers(cl->loop), &r->timeout);
	if (r->link) {
		struct link *l = r->link;

		r->link = NULL;
		link_free(l);
	}
	r->kind = REQ_NONE;
	fn(arg, status, text);
}

static void
request_timeout(void *arg)
{
	struct cluster *cl = arg;
	const char *fmt = "cannot join: no answer from %s within %d s\n";
	char *s;

	if (cl->req.kind == REQ_JOINED)
		fmt = "joined the cluster at %s, but no leader was heard within %d s: "
		      "see cluster status\n";
	else if (cl->req.kind == REQ_REMOVE)
		fmt = "cannot remove %s: no answer from the leader within %d s\n";
	s = xasprintf(fmt, cl->req.target, REQUEST_TIMEOUT_MS / 1000);

	request_done(cl, 1, s);
	free(s);
}

/* A join is done when this node follows the leader. */
static void
cluster_join_check(struct cluster *cl)
{
	char *s;

	if (cl->req.kind != REQ_JOINED || cl->raft.leader == RAFT_NONE)
		return;
	s = xasprintf("joined the cluster at %s: leader %s, %zu members\n", cl->req.target,
	    member_addr(cl, cl->raft.leader), cl->m.n);
	request_done(cl, 0, s);
	free(s);
}

/* The answer to our join request. */
static void
cluster_on_join_result(struct cluster *cl, const struct xs_elem *e)
{
	const char *ok = xs_attr(e, "ok"), *why = xs_attr(e, "why"), *leader = xs_attr(e, "l");
	char *s;

	if (cl->req.kind != REQ_JOIN)
		return;
	if (ok == NULL || strcmp(ok, "1") != 0) {
		s = xasprintf("cannot join: %s\n", why ? why : "refused");
		request_done(cl, 1, s);
		free(s);
		return;
	}
	/* Whatever our list's epoch was, this one is the cluster's. */
	cl->m.epoch = 0;
	cluster_on_members(cl, e);
	cluster_event(
	    cl, "joined the cluster at %s (leader %s)", cl->req.target, leader ? leader : "?");
	cl->req.kind = REQ_JOINED;
	if (cl->req.link) {
		struct link *l = cl->req.link;

		cl->req.link = NULL;
		link_free(l);
	}
	cluster_join_check(cl);
}

static void
leader_remove(struct cluster *cl, uint32_t id, char *text, size_t len)
{
	char a[9], addr[MEMBERS_ADDR_MAX];
	struct member *mb = members_by_id(&cl->m, id);

	if (!cluster_may_change(cl)) {
		snprintf(text, len, "cannot remove: the cluster has no leader (no majority)");
		return;
	}
	if (mb == NULL) {
		snprintf(text, len, "cannot remove: %s is not a member", cluster_hex_id(id, a));
		return;
	}
	snprintf(addr, sizeof(addr), "%s", mb->addr);
	members_del(&cl->m, id);
	cl->m.epoch = members_next_epoch(cl->m.epoch, cl->raft.term);
	cluster_save(cl);
	/* The member removed hears it too, before its links go. */
	cluster_broadcast_members(cl, RAFT_NONE);
	if (id != cl->m.self) {
		char *msg = members_message(cl, "ms", "");

		cluster_send(cl, id, msg);
		free(msg);
	}
	cluster_sync_peers(cl);
	cluster_event(cl, "%s removed", addr);
	snprintf(
	    text, len, "removed %s (id %s): %zu members", addr, cluster_hex_id(id, a), cl->m.n);
}

static void
cluster_on_remove(struct cluster *cl, const struct xs_elem *e)
{
	uint32_t id = cluster_parse_id(xs_attr(e, "i")), origin = cluster_parse_id(xs_attr(e, "o"));
	char text[400], *s, *msg;

	if (cl->role != RAFT_LEADER)
		snprintf(
		    text, sizeof(text), "cannot remove: the leader changed meanwhile; try again");
	else
		leader_remove(cl, id, text, sizeof(text));
	s = xs_escape(text);
	msg = xasprintf("<rr q='%s' ok='%d' t='%s'/>", xs_attr(e, "q") ? xs_attr(e, "q") : "0",
	    strncmp(text, "removed", 7) == 0, s);
	cluster_send(cl, origin, msg);
	free(msg);
	free(s);
}

static void
cluster_on_remove_result(struct cluster *cl, const struct xs_elem *e)
{
	const char *ok = xs_attr(e, "ok"), *t = xs_attr(e, "t");
	char *s;

	if (cl->req.kind != REQ_REMOVE || cluster_parse_u64(xs_attr(e, "q")) != cl->req.seq)
		return;
	s = xasprintf("%s\n", t ? t : "?");
	request_done(cl, ok && strcmp(ok, "1") == 0 ? 0 : 1, s);
	free(s);
}

/* Links */

/* A member behind on the list gets ours (members_merge, on its side). */
static void
cluster_on_keepalive(struct cluster *cl, struct peer *p, const struct xs_elem *e)
{
	char *msg;

	if (xs_attr(e, "e") == NULL || cluster_parse_u64(xs_attr(e, "e")) >= cl->m.epoch)
		return;
	msg = members_message(cl, "ms", "");
	cluster_send(cl, p->id, msg);
	free(msg);
}

/* Links (link.c) */

static void
peer_schedule(struct cluster *cl, struct peer *p)
{
	unsigned ms = RETRY_MIN_MS << (p->fails < 5 ? p->fails : 5);

	if (ms > RETRY_MAX_MS)
		ms = RETRY_MAX_MS;
	p->fails++;
	timer_add(loop_timers(cl->loop), &p->retry, ms);
}

static void
peer_dial(void *arg)
{
	struct peer *p = arg;
	struct cluster *cl = p->cl;
	char why[300];

	if (p->out != NULL)
		return;
	if ((p->out = link_dial(cl, p->addr, why, sizeof(why))) == NULL) {
		log_warnx("cluster: %s", why);
		peer_schedule(cl, p);
		return;
	}
	p->out->id = p->id;
}

/*
 * No link with p is up any more: its process died or the network between
 * us did. It is unreachable now rather than after the election timeout,
 * and a follower that lost its leader so campaigns at once
 * (raft_leader_lost).
 */
static void
cluster_link_lost(struct cluster *cl, struct peer *p, const struct link *gone)
{
	struct link *o;

	for (o = cl->links; o; o = o->next)
		if (o != gone && o->id == p->id && o->secured && !o->joining)
			return;
	p->heard = 0;
	if (p->was_alive) {
		p->was_alive = 0;
		p->lost_at = time(NULL);
		log_warnx("cluster: %s is unreachable (its links closed)", p->addr);
	}
	if (cl->raft.leader == p->id && cl->raft.role == RAFT_FOLLOWER) {
		raft_leader_lost(&cl->raft, util_now_ms());
		cluster_arm_raft(cl);
	}
}

/* A link ends: its peer's routes go with the last link from it, ours is dialed again. */
void
cluster_link_gone(struct link *l)
{
	struct cluster *cl = l->cl;
	struct peer *p = l->id ? peer_by_id(cl, l->id) : NULL;
	struct link *o;
	int others = 0;

	if (cl->req.link == l)
		cl->req.link = NULL;
	if (p && p->out == l) {
		p->out = NULL;
		peer_schedule(cl, p);
	}
	if (p && !l->outgoing) {
		for (o = cl->links; o; o = o->next)
			others += o != l && !o->outgoing && o->id == l->id;
		if (!others)
			peer_clear_routes(p);
	}
	if (p && l->secured)
		cluster_link_lost(cl, p, l);
}

/* A link failed before it was up: say why (a join reports it to the operator). */
void
cluster_link_failed(struct link *l, const char *why)
{
	struct cluster *cl = l->cl;
	struct peer *p = l->outgoing && l->id ? peer_by_id(cl, l->id) : NULL;
	char *s;

	if (l->joining && cl->req.kind == REQ_JOIN) {
		s = xasprintf("cannot join: %s\n", why);
		request_done(cl, 1, s); /* frees l */
		free(s);
		return;
	}
	if (p && strcmp(p->why, why) != 0) {
		log_warnx("cluster: link to %s: %s", p->addr, why);
		snprintf(p->why, sizeof(p->why), "%s", why);
	} else if (p == NULL && !l->outgoing)
		log_warnx("cluster: link from %s: %s", l->addr, why);
	link_free(l);
}

/* Our hello went out: a join asks now; a member hears what is online here. */
void
cluster_link_up(struct link *l)
{
	struct cluster *cl = l->cl;
	struct peer *p;
	char id[9], *a, *s;

	if (l->joining) {
		a = xs_escape(cl->name);
		s = xasprintf("<j i='%s' a='%s'/>", cluster_hex_id(cl->m.self, id), a);
		link_send(l, s, strlen(s));
		free(s);
		free(a);
		return;
	}
	if (l->outgoing && (p = peer_by_id(cl, l->id)) != NULL) {
		if (p->why[0])
			log_info("cluster: link to %s is up", p->addr);
		p->why[0] = '\0';
		p->fails = 0;
		send_routes(cl, l);
	}
}

/* A member behind on the list gets ours at once. */
void
cluster_on_hello(struct link *l, uint32_t id, uint64_t epoch)
{
	struct cluster *cl = l->cl;
	char *msg;

	if (peer_by_id(cl, id) && epoch < cl->m.epoch) {
		msg = members_message(cl, "ms", "");
		cluster_send(cl, id, msg);
		free(msg);
	}
}

int
cluster_on_message(struct link *l, const struct xs_elem *e, const char *raw, size_t rawlen)
{
	struct cluster *cl = l->cl;
	struct peer *p;
	const char *n = e->name;
	uint64_t now;
	int back;

	if (strcmp(n, "jr") == 0 && l->joining) {
		cluster_on_join_result(cl, e);
		return -1; /* the link is gone */
	}
	if (strcmp(n, "j") == 0) {
		cluster_on_join(cl, l, e);
		return 0;
	}
	/* Everything else only from members. */
	if ((p = peer_by_id(cl, l->id)) == NULL)
		return 0;
	now = util_now_ms();
	back = !peer_alive(cl, p, now);
	p->heard = now;
	if (back)
		peer_recheck_routes(cl, p);
	if (strcmp(n, "r") == 0)
		cluster_on_raft(cl, e);
	else if (strcmp(n, "f") == 0)
		cluster_on_forward(cl, l, e, raw, rawlen);
	else if (strcmp(n, "c") == 0 && xs_attr(e, "j"))
		peer_route(
		    p, xs_attr(e, "j"), xs_attr(e, "u") && strcmp(xs_attr(e, "u"), "1") == 0);
	else if (strcmp(n, "rs") == 0 || strcmp(n, "ra") == 0) {
		if (n[1] == 's')
			peer_clear_routes(p);
		words_each(e->text, peer_route_up, p);
	} else if (strcmp(n, "k") == 0 && xs_attr(e, "j"))
		cl->h.kick(cl->h.arg, xs_attr(e, "j"), xs_attr(e, "w") ? xs_attr(e, "w") : p->addr);
	else if (strcmp(n, "ms") == 0)
		cluster_on_members(cl, e);
	else if (strcmp(n, "jr") == 0 && xs_attr(e, "v"))
		cluster_on_join_relay(cl, e, raw, rawlen);
	else if (strcmp(n, "rm") == 0)
		cluster_on_remove(cl, e);
	else if (strcmp(n, "rr") == 0)
		cluster_on_remove_result(cl, e);
	else if (strcmp(n, "ka") == 0)
		cluster_on_keepalive(cl, p, e);
	/* Anything newer: heard, nothing more. */
	return 0;
}

/*
 * A member heard again after a silence (a pause, a partition), at its
 * first message: its components may have come online here meanwhile; the
 * policy decides again, as for a route that arrives now. Both sides apply
 * the same rule, so one session stays whichever side hears first.
 */
static void
peer_recheck_routes(struct cluster *cl, struct peer *p)
{
	char addr[MEMBERS_ADDR_MAX], **jids;
	int theirs_wins = p->id < cl->m.self;
	size_t i, n = p->nroutes;

	/* A kick may end a link and so p's routes: work on a copy. */
	snprintf(addr, sizeof(addr), "%s", p->addr);
	jids = xcalloc(n + 1, sizeof(*jids));
	for (i = 0; i < n; i++)
		jids[i] = xstrdup(p->routes[i]);
	for (i = 0; i < n; i++) {
		cl->h.remote_up(cl->h.arg, jids[i], addr, theirs_wins);
		free(jids[i]);
	}
	free(jids);
}

/* Keep-alive: every member hears from every other at the heartbeat interval. */
static void
cluster_keepalive(void *arg)
{
	struct cluster *cl = arg;
	uint64_t now = util_now_ms();
	char *ka;
	size_t i;

	ka = xasprintf("<ka e='%llu'/>", (unsigned long long)cl->m.epoch);
	cluster_send_all(cl, ka);
	free(ka);
	for (i = 0; i < cl->npeers; i++) {
		struct peer *p = &cl->peers[i];
		int alive = peer_alive(cl, p, now);

		if (alive && !p->was_alive) {
			p->lost_at = 0;
			log_info("cluster: %s is reachable", p->addr);
		} else if (!alive && (p->was_alive || p->lost_at == 0)) {
			p->lost_at = time(NULL);
			if (p->was_alive)
				log_warnx("cluster: %s is unreachable", p->addr);
		}
		p->was_alive = alive;
	}
	cluster_note_role(cl);
	timer_add(loop_timers(cl->loop), &cl->ka_timer, cl->set.heartbeat_ms);
}

/* Control */

static void
status_components(struct buf *b, char **routes, size_t n)
{
	size_t i;

	if (n == 0)
		return;
	buf_addstr(b, ", components:");
	for (i = 0; i < n; i++)
		buf_printf(b, " %s", routes[i]);
}

struct local_list {
	char **v;
	size_t n;
};

static void
collect_local(void *arg, const char *jid)
{
	struct local_list *ll = arg;

	ll->v = xrealloc(ll->v, (ll->n + 1) * sizeof(*ll->v));
	ll->v[ll->n++] = xstrdup(jid);
}

static const char *
base_name(const char *path)
{
	const char *s = path ? strrchr(path, '/') : NULL;

	return path == NULL ? "(none)" : s ? s + 1 : path;
}

static void
status_files(const struct state *st, struct buf *b, const char *when)
{
	buf_printf(b,
	    "Last state change: %s\nKey file           : %s\nCertificate file   : %s\n"
	    "Trust bundle       : %s\n",
	    when, base_name(st->tls_key), base_name(st->tls_cert), base_name(st->cluster_trust));
}

void
cluster_status_disabled(const struct state *st, struct buf *b)
{
	buf_addstr(b, "State: DISABLED\nList of peers\n");
	status_files(st, b, "-");
	buf_printf(b, "\nThe cluster is disabled: xcomp-server -d %s cluster enable\n", st->dir);
}

static const char *status_state(const struct raft_status *rs, int quorum);

/* The State that cluster status shows now (its Last state change). */
static const char *
cluster_shown_state(struct cluster *cl, uint64_t now, uint32_t *leader)
{
	struct raft_status rs;
	int quorum;

	raft_state(&cl->raft, now, &rs);
	quorum = cl->in_raft && rs.quorum;
	*leader = quorum ? rs.leader : RAFT_NONE;
	return status_state(&rs, quorum);
}

static const char *
status_state(const struct raft_status *rs, int quorum)
{
	if (rs->role == RAFT_LEADER && quorum)
		return "LEADER";
	if (rs->role != RAFT_LEADER && quorum && rs->leader != RAFT_NONE)
		return "FOLLOWER";
	return "NO QUORUM";
}

/* The seed's lines, then the members in detail. Status 0 with a leader. */
static int
cluster_status(struct cluster *cl, struct buf *b)
{
	uint64_t now = util_now_ms();
	struct raft_status rs;
	struct local_list ll = {NULL, 0};
	char when[32], id[9];
	size_t i;
	int quorum;

	raft_state(&cl->raft, now, &rs);
	quorum = cl->in_raft && rs.quorum;
	buf_printf(b, "State: %s\nList of peers\n", status_state(&rs, quorum));
	for (i = 0; i < cl->m.n; i++) {
		struct peer *p = peer_by_id(cl, cl->m.m[i].id);

		buf_printf(b, "%s%s%s\n", cl->m.m[i].addr,
		    quorum && rs.leader == cl->m.m[i].id ? " (Leader)" : "",
		    !quorum && p && !peer_alive(cl, p, now) ? " (unreachable)" : "");
	}
	if (cl->changed_at)
		wall_time(cl->changed_at, when, sizeof(when));
	else
		snprintf(when, sizeof(when), "-");
	status_files(cl->st, b, when);
	buf_printf(b,
	    "\nNode id            : %s\nAddress            : %s\nTerm               : %llu\n",
	    cl->m.self ? cluster_hex_id(cl->m.self, id) : "(none)", cl->name,
	    (unsigned long long)rs.term);
	if (!cl->in_raft)
		buf_printf(b,
		    "Not a member of a cluster: xcomp-server -d %s cluster initialize, "
		    "or cluster join HOST:PORT\n",
		    cl->st->dir);
	else
		buf_printf(b, "Members            : %zu (majority %zu, %zu in sight)\n", cl->m.n,
		    cl->m.n / 2 + 1, cluster_in_sight(cl, now));
	cl->h.each_local(cl->h.arg, collect_local, &ll);
	for (i = 0; i < cl->m.n; i++) {
		struct peer *p = peer_by_id(cl, cl->m.m[i].id);

		buf_printf(b, "Member %s %s ", cluster_hex_id(cl->m.m[i].id, id), cl->m.m[i].addr);
		if (cl->m.m[i].id == cl->m.self) {
			buf_addstr(b, "this node");
			status_components(b, ll.v, ll.n);
		} else if (p && peer_alive(cl, p, now)) {
			buf_addstr(b, "alive");
			status_components(b, p->routes, p->nroutes);
		} else if (p && p->lost_at) {
			wall_time(p->lost_at, when, sizeof(when));
			buf_printf(b, "unreachable since %s", when);
		} else
			buf_addstr(b, "unreachable, never heard");
		if (p && !peer_alive(cl, p, now) && p->why[0])
			buf_printf(b, " (%s)", p->why);
		buf_addstr(b, "\n");
	}
	for (i = 0; i < ll.n; i++)
		free(ll.v[i]);
	free(ll.v);
	for (i = 0; i < cl->nevents; i++)
		buf_printf(b, "Event: %s\n", cl->events[i]);
	return quorum ? 0 : 1;
}

static void reply_text(cluster_reply_fn *fn, void *arg, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
reply_text(cluster_reply_fn *fn, void *arg, int status, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	fn(arg, status, s ? s : "out of memory\n");
	free(s);
}

static void
control_initialize(struct cluster *cl, cluster_reply_fn *fn, void *arg)
{
	struct raft_out out;
	char id[9];

	if (cl->in_raft && cl->m.n > 1) {
		reply_text(fn, arg, 1,
		    "already a member of a cluster of %zu: remove this node there first "
		    "(cluster remove %s on another member)\n",
		    cl->m.n, cl->name);
		return;
	}
	if (cl->m.self == RAFT_NONE)
		cl->m.self = members_new_id();
	cl->m.n = 0;
	members_add(&cl->m, cl->m.self, cl->name);
	cl->m.epoch = members_next_epoch(cl->m.epoch, cl->raft.term);
	if (cluster_save(cl) == -1) {
		reply_text(fn, arg, 1, "cannot initialize: the cluster file was not written\n");
		return;
	}
	cluster_sync_peers(cl);
	out.n = 0;
	raft_campaign_now(&cl->raft, util_now_ms(), &out);
	cluster_raft_after(cl, &out);
	cluster_event(cl, "initialized a one-node cluster at %s", cl->name);
	reply_text(fn, arg, 0, "initialized a one-node cluster at %s (id %s)\n", cl->name,
	    cluster_hex_id(cl->m.self, id));
}

static void
control_join(struct cluster *cl, const char *addr, cluster_reply_fn *fn, void *arg)
{
	char why[300];
	struct link *l;

	if (cl->in_raft && cl->m.n > 1) {
		reply_text(fn, arg, 1,
		    "cannot join: this node is a member of a cluster of %zu already; remove it "
		    "there first (cluster remove %s on another member)\n",
		    cl->m.n, cl->name);
		return;
	}
	if (strcmp(addr, cl->name) == 0) {
		reply_text(fn, arg, 1, "cannot join: %s is this node's own address\n", addr);
		return;
	}
	if (cl->m.self == RAFT_NONE) {
		cl->m.self = members_new_id();
		cluster_save(cl);
	}
	if ((l = link_dial(cl, addr, why, sizeof(why))) == NULL) {
		reply_text(fn, arg, 1, "cannot join: %s\n", why);
		return;
	}
	l->joining = 1;
	cl->req.kind = REQ_JOIN;
	cl->req.fn = fn;
	cl->req.arg = arg;
	cl->req.link = l;
	snprintf(cl->req.target, sizeof(cl->req.target), "%s", addr);
	timer_add(loop_timers(cl->loop), &cl->req.timeout, REQUEST_TIMEOUT_MS);
}

static void
control_remove(struct cluster *cl, const char *peer, cluster_reply_fn *fn, void *arg)
{
	uint32_t id = members_resolve(&cl->m, peer);
	char text[400], a[9], *msg;

	if (!cl->in_raft || id == RAFT_NONE) {
		reply_text(fn, arg, 1, "cannot remove: %s is not a member%s\n", peer,
		    cl->in_raft ? " (see cluster status)" : " (this node is in no cluster)");
		return;
	}
	if (cl->role == RAFT_LEADER) {
		leader_remove(cl, id, text, sizeof(text));
		reply_text(fn, arg, strncmp(text, "removed", 7) == 0 ? 0 : 1, "%s\n", text);
		return;
	}
	if (cl->leader == RAFT_NONE || cluster_link_to(cl, cl->leader) == NULL) {
		reply_text(fn, arg, 1, "cannot remove: the cluster has no leader (no majority)\n");
		return;
	}
	cl->req.kind = REQ_REMOVE;
	cl->req.fn = fn;
	cl->req.arg = arg;
	cl->req.seq = ++cl->seq;
	snprintf(cl->req.target, sizeof(cl->req.target), "%s", peer);
	msg = xasprintf("<rm i='%s' o='%s' q='%u'/>", cluster_hex_id(id, a),
	    cluster_hex_id(cl->m.self, (char[9]){0}), cl->req.seq);
	cluster_send(cl, cl->leader, msg);
	free(msg);
	timer_add(loop_timers(cl->loop), &cl->req.timeout, REQUEST_TIMEOUT_MS);
}

void
cluster_control(struct cluster *cl, int argc, char **argv, cluster_reply_fn *fn, void *arg)
{
	struct buf b;
	int status;

	if (argc == 1 && strcmp(argv[0], "status") == 0) {
		buf_init(&b, 1 << 20);
		status = cluster_status(cl, &b);
		buf_add(&b, "", 1);
		fn(arg, status, buf_head(&b));
		buf_free(&b);
	} else if (cl->req.kind != REQ_NONE)
		reply_text(fn, arg, 1, "another cluster request is under way; try again\n");
	else if (argc == 1 && strcmp(argv[0], "initialize") == 0)
		control_initialize(cl, fn, arg);
	else if (argc == 2 && strcmp(argv[0], "join") == 0)
		control_join(cl, argv[1], fn, arg);
	else if (argc == 2 && strcmp(argv[0], "remove") == 0)
		control_remove(cl, argv[1], fn, arg);
	else
		reply_text(fn, arg, 2, "unknown cluster request\n");
}

/* Setting up */

/* The port we had: a restarted node whose listen port is 0 keeps its address. */
static int
cluster_port(const struct state *st, const struct members *m)
{
	const struct member *mb;
	char host[MEMBERS_ADDR_MAX];
	size_t i;
	int port;

	if (st->cluster_listen.port != 0)
		return st->cluster_listen.port;
	for (i = 0, mb = NULL; i < m->n; i++)
		if (m->m[i].id == m->self)
			mb = &m->m[i];
	if (mb && util_split_hostport(mb->addr, host, sizeof(host), &port) == 0 &&
	    strcmp(host, st->cluster_listen.host) == 0)
		return port;
	return 0;
}

static int
cluster_setup_tls(struct cluster *cl, char *err, size_t errlen)
{
	const struct state *st = cl->st;
	char why[1024];

	if (st->tls_key == NULL || st->tls_cert == NULL || st->cluster_trust == NULL) {
		snprintf(err, errlen,
		    "the cluster needs certs and cluster trust (xcomp-server -d %s certs "
		    "KEY CERT; cluster trust BUNDLE)",
		    st->dir);
		return -1;
	}
	cl->server_tls = tls_server_ctx(
	    st->tls_key, st->tls_cert, st->tls_bundle, st->cluster_trust, NULL, why, sizeof(why));
	if (cl->server_tls == NULL) {
		snprintf(err, errlen, "cluster: %s", why);
		return -1;
	}
	cl->client_tls =
	    tls_client_ctx(st->cluster_trust, st->tls_cert, st->tls_key, NULL, why, sizeof(why));
	if (cl->client_tls == NULL) {
		snprintf(err, errlen, "cluster: %s", why);
		return -1;
	}
	return 0;
}

struct cluster *
cluster_new(struct loop *loop, const struct state *st, const struct cluster_hooks *h, char *err,
    size_t errlen)
{
	struct cluster *cl = xcalloc(1, sizeof(*cl));
	char why[1024];
	int port;

	cl->loop = loop;
	cl->st = st;
	cl->h = *h;
	xs_limits_default(&cl->limits);
	cl->limits.stanza = st->max_stanza + 64 * 1024;
	buf_init(&cl->scratch, cl->limits.stanza);
	cl->limits.depth += 1;
	raft_settings_default(&cl->set);
	cl->set.heartbeat_ms = st->cluster_keepalive_ms;
	cl->set.election_ms = st->cluster_election_ms;
	timer_init(&cl->raft_timer, cluster_raft_tick, cl);
	timer_init(&cl->ka_timer, cluster_keepalive, cl);
	timer_init(&cl->req.timeout, request_timeout, cl);
	if (st->cluster_listen.host[0] == '\0') {
		snprintf(err, errlen,
		    "no cluster listen address (xcomp-server -d %s cluster listen IP:PORT)",
		    st->dir);
		goto fail;
	}
	if (members_load(st->dir, &cl->m, err, errlen) == -1 ||
	    cluster_setup_tls(cl, err, errlen) == -1)
		goto fail;
	port = cluster_port(st, &cl->m);
	cl->al = accept_listen_tcp(
	    loop, st->cluster_listen.host, port, 64, link_accept, cl, why, sizeof(why));
	if (cl->al == NULL && port != st->cluster_listen.port)
		cl->al = accept_listen_tcp(loop, st->cluster_listen.host, st->cluster_listen.port,
		    64, link_accept, cl, why, sizeof(why));
	if (cl->al == NULL) {
		snprintf(err, errlen, "cluster listen %s", why);
		goto fail;
	}
	snprintf(cl->name, sizeof(cl->name), "%s", accept_listener_name(cl->al));
	raft_init(&cl->raft, cl->m.self, &cl->set, cl->m.term, cl->m.voted_for, util_now_ms(),
	    util_random_fn, NULL);
	cluster_sync_peers(cl);
	cl->had_majority = -1;
	cluster_keepalive(cl);
	log_info("cluster: listening on %s (%s)", cl->name,
	    cl->in_raft ? "a member" : "not a member yet: cluster initialize or cluster join");
	return cl;
fail:
	cluster_free(cl);
	return NULL;
}

const char *
cluster_listen_name(const struct cluster *cl)
{
	return cl->name;
}

void
cluster_free(struct cluster *cl)
{
	size_t i;

	if (cl == NULL)
		return;
	request_done(cl, 1, "the server is stopping\n");
	timer_cancel(loop_timers(cl->loop), &cl->raft_timer);
	timer_cancel(loop_timers(cl->loop), &cl->ka_timer);
	for (i = 0; i < cl->npeers; i++) {
		timer_cancel(loop_timers(cl->loop), &cl->peers[i].retry);
		peer_clear_routes(&cl->peers[i]);
	}
	cl->npeers = 0; /* no redial as the links go */
	while (cl->links)
		link_free(cl->links);
	accept_listener_free(cl->al);
	tls_ctx_free(cl->server_tls);
	tls_ctx_free(cl->client_tls);
	buf_free(&cl->scratch);
	free(cl);
}

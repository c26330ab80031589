/*
 * Behind a load balancer: the PROXY header (v1 or v2) a proxy_protocol
 * listener reads off the raw socket before HTTP or TLS, and the Forwarded
 * / X-Forwarded-For of an upgrade from trusted_proxies.  Either gives the
 * connection its client's address (c_peer_*), which the per-address limit,
 * log lines and the registry's connection table then see.  proxy.c parses.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#include "realtimed.h"
#include "config.h"
#include "log.h"
#include "util.h"
#include "http.h"
#include "proxy.h"
#include "worker_int.h"

#define PROXY_LOG_MS	10000	/* refused headers: one warning line per worker this often */

/*
 * A connection the PROXY protocol refuses: counted by the caller, freed
 * here, and said at debug level each time and as a warning at most once
 * per PROXY_LOG_MS (a misconfigured balancer would flood the log).
 */
static void
conn_proxy_refuse(struct rt_conn *c, const char *why)
{
	struct rt_worker	*w = c->c_worker;
	uint64_t		 now = util_now_ms();

	w->w_proxy_refused++;
	log_debug("%s: %s: PROXY header: %s", __func__, conn_peer(c), why);
	if (w->w_proxy_logged == 0 || now - w->w_proxy_logged >= PROXY_LOG_MS) {
		log_warnx("PROXY protocol: closed %s: %s (%llu refused since the last such line)",
		    conn_peer(c), why, (unsigned long long)w->w_proxy_refused);
		w->w_proxy_logged = now;
		w->w_proxy_refused = 0;
	}
	conn_free(c);
}

void
conn_proxy_timeout(struct rt_conn *c)
{
	STAT_ADD(c->c_worker, rw_proxy_timeouts, 1);
	conn_proxy_refuse(c, "no whole header within proxy_protocol_timeout");
}

static void
conn_proxy_peer(struct rt_conn *c, const struct proxy_addr *a)
{
	conn_peer_put(c, a->pa_family, a->pa_addr, a->pa_port);
}

/* The header is in and off the socket: HTTP (or TLS first) from here. */
static void
conn_proxy_done(struct rt_conn *c, const struct proxy_hdr *h)
{
	struct rt_worker	*w = c->c_worker;
	int			 fd = conn_fd(c);

	STAT_ADD(w, rw_proxy_accepted, 1);
	free(c->c_proxy_buf);
	c->c_proxy_buf = NULL;
	c->c_proxy_len = 0;
	if (!h->ph_local)	/* LOCAL, UNKNOWN: the socket's own address stands */
		conn_proxy_peer(c, &h->ph_src);
	c->c_state = CS_HTTP;
	c->c_deadline = util_now_ms() + (uint64_t)(c->c_proxy_tls ?
	    w->w_conf->c_tls_handshake_timeout : w->w_conf->c_handshake_timeout);
	conn_schedule(c);
	if (c->c_proxy_tls) {
		/* the bytes that follow are the TLS ClientHello: OpenSSL's from here */
		event_del(&c->c_ev);
		if (worker_tls_attach(c, fd) == -1) {
			log_warnx("%s: out of memory, connection dropped", __func__);
			conn_free(c);	/* c_ev still owns the socket */
			return;
		}
	}
	if (!conn_proxy_trusted_peer(c))	/* else counted at the upgrade */
		worker_ip_limit(c);
}

/*
 * CS_PROXY: the socket is readable.  Peek, so that nothing after the
 * header is taken from the socket (a TLS listener hands it to OpenSSL);
 * bytes of a header not whole yet are taken into c_proxy_buf, which
 * proxy_parse() promises hold nothing else.
 */
void
conn_proxy_read(struct rt_conn *c)
{
	uint8_t			 buf[PROXY_MAX];
	struct proxy_hdr	 h;
	const char		*why = NULL;
	size_t			 have = c->c_proxy_len, take;
	ssize_t			 n;
	int			 fd = conn_fd(c), whole = 0;

	if (have > 0)
		memcpy(buf, c->c_proxy_buf, have);
	if ((n = recv(fd, buf + have, sizeof(buf) - have, MSG_PEEK)) == -1) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		STAT_ADD(c->c_worker, rw_proxy_rejected, 1);
		conn_proxy_refuse(c, strerror(errno));
		return;
	}
	if (n == 0) {
		STAT_ADD(c->c_worker, rw_proxy_rejected, 1);
		conn_proxy_refuse(c, have > 0 ? "truncated (closed by peer)" :
		    "closed by peer before any header");
		return;
	}
	switch (proxy_parse(buf, have + (size_t)n, &h, &why)) {
	case PROXY_BAD:
		STAT_ADD(c->c_worker, rw_proxy_rejected, 1);
		conn_proxy_refuse(c, why);
		return;
	case PROXY_NEED:
		take = (size_t)n;
		if (have + take >= sizeof(buf) || (c->c_proxy_buf == NULL &&
		    (c->c_proxy_buf = malloc(PROXY_MAX)) == NULL)) {
			STAT_ADD(c->c_worker, rw_proxy_rejected, 1);
			conn_proxy_refuse(c, have + take >= sizeof(buf) ? "too long" :
			    "out of memory");
			return;
		}
		break;
	default:
		take = h.ph_len - have;
		whole = 1;
		break;
	}
	if (recv(fd, buf + have, take, 0) != (ssize_t)take) {
		STAT_ADD(c->c_worker, rw_proxy_rejected, 1);
		conn_proxy_refuse(c, "the header's bytes could not be taken off the socket");
		return;
	}
	if (!whole) {
		memcpy(c->c_proxy_buf + have, buf + have, take);
		c->c_proxy_len = (uint16_t)(have + take);
		return;
	}
	conn_proxy_done(c, &h);
}

/* ---- Forwarded / X-Forwarded-For from trusted_proxies -------------------- */

/* The trusted blocks, parsed (config_check validated every one at load). */
static int
conn_proxy_trusted(const struct rt_config *conf, struct proxy_cidr *out)
{
	const struct rt_strlist	*l = &conf->c_trusted_proxies;
	int			 i, n = 0;

	for (i = 0; i < l->sl_count && i < CONF_LIST_MAX; i++)
		if (proxy_cidr_parse(l->sl_items[i], &out[n]) == 0)
			n++;
	return n;
}

/* Keep item (p, len) as the newest of the last PROXY_FWD_HOPS; *cut when one goes. */
static void
conn_proxy_item_add(struct proxy_item *items, int *n, int *cut, const char *p, size_t len)
{
	if (*n == PROXY_FWD_HOPS) {
		memmove(items, items + 1, sizeof(*items) * (PROXY_FWD_HOPS - 1));
		(*n)--;
		*cut = 1;
	}
	items[*n].pi_p = p;
	items[*n].pi_len = len;
	(*n)++;
}

/*
 * X-Forwarded-For's members, split at every comma as nginx and haproxy
 * split it: it holds addresses, never quoted strings, so a '"' a client
 * put in front cannot make the proxy's own appended member part of it.
 */
static int
conn_proxy_xff_items(const struct http_request *req, struct proxy_item *items, int *cut)
{
	const struct http_header	*h;
	const char			*p, *end, *q, *b, *e;
	int				 i, n = 0;

	*cut = 0;
	for (i = 0; i < req->r_nheaders; i++) {
		h = &req->r_headers[i];
		if (!util_strncaseeq(h->h_name, h->h_name_len, "X-Forwarded-For"))
			continue;
		p = h->h_value;
		end = p + h->h_value_len;
		for (;;) {
			if ((q = memchr(p, ',', (size_t)(end - p))) == NULL)
				q = end;
			for (b = p; b < q && (*b == ' ' || *b == '\t'); b++)
				;
			for (e = q; e > b && (e[-1] == ' ' || e[-1] == '\t'); e--)
				;
			if (e > b)
				conn_proxy_item_add(items, &n, cut, b, (size_t)(e - b));
			if (q == end)
				break;
			p = q + 1;
		}
	}
	return n;
}

/* The last PROXY_FWD_HOPS members of every header named name; *cut if more came. */
static int
conn_proxy_items(const struct http_request *req, const char *name, struct proxy_item *items,
    int *cut)
{
	size_t		 state = 0, len;
	const char	*item;
	int		 n = 0;

	*cut = 0;
	while (http_header_next_item(req, name, &state, &item, &len))
		conn_proxy_item_add(items, &n, cut, item, len);
	return n;
}

/*
 * Is c's peer (the socket's address, or its PROXY header's) in
 * trusted_proxies?  The blocks, parsed, are left in trusted (*n of them).
 */
static int
conn_proxy_peer_in(const struct rt_conn *c, struct proxy_cidr *trusted, int *n)
{
	struct proxy_addr	 peer;

	*n = 0;
	if (c->c_worker->w_conf->c_trusted_proxies.sl_count == 0)
		return 0;
	memset(&peer, 0, sizeof(peer));
	peer.pa_family = c->c_peer_family;
	memcpy(peer.pa_addr, c->c_peer_addr, sizeof(peer.pa_addr));
	*n = conn_proxy_trusted(c->c_worker->w_conf, trusted);
	return proxy_cidr_match(trusted, *n, &peer);
}

int
conn_proxy_trusted_peer(const struct rt_conn *c)
{
	struct proxy_cidr	 trusted[CONF_LIST_MAX];
	int			 n;

	return conn_proxy_peer_in(c, trusted, &n);
}

/*
 * An upgrade: when the peer (the socket's, or its PROXY header's, address)
 * is in trusted_proxies, the right-most address of Forwarded (or, without
 * one, X-Forwarded-For) that is not trusted becomes the client's, and is
 * counted against max_connections_per_ip (a trusted proxy's own address
 * was not counted at the accept: its clients share it).  Without a client
 * in the header (none, or a malformed one) the proxy's address is the
 * client's and is counted.  Others' headers are ignored.  -1: refused
 * (503 sent).
 */
int
conn_proxy_forwarded(struct rt_conn *c, const struct http_request *req)
{
	struct rt_worker	*w = c->c_worker;
	struct proxy_cidr	 trusted[CONF_LIST_MAX];
	struct proxy_item	 items[PROXY_FWD_HOPS];
	struct proxy_addr	 client;
	enum proxy_fwd_kind	 kind = PROXY_FWD_XFF;
	const char		*name = "X-Forwarded-For";
	int			 ntrusted, n, cut, rv;

	if (!conn_proxy_peer_in(c, trusted, &ntrusted))
		return 0;
	/*
	 * One header, the one the proxies set (forwarded_header): a proxy
	 * appends to it, and a client's forgery of the other would otherwise
	 * be believed.
	 */
	if (strcasecmp(w->w_conf->c_forwarded_header, "forwarded") == 0) {
		kind = PROXY_FWD_FORWARDED;
		name = "Forwarded";
		n = conn_proxy_items(req, name, items, &cut);
	} else
		n = conn_proxy_xff_items(req, items, &cut);
	rv = proxy_fwd_client(kind, items, n, cut, trusted, ntrusted, &client);
	if (rv == 1) {
		STAT_ADD(w, rw_forwarded_used, 1);
		log_debug("%s: %s: forwarded for the client below", __func__, conn_peer(c));
		conn_proxy_peer(c, &client);
	} else if (rv == -1) {
		STAT_ADD(w, rw_forwarded_invalid, 1);
		log_debug("%s: %s: malformed %s, the peer's address kept", __func__,
		    conn_peer(c), name);
	}
	/* no client named: the proxy is the client, and counted so */
	if (conn_ip_acquire(c) == -1) {
		conn_http_error(c, 503, "Retry-After: 10\r\n");
		return -1;
	}
	return 0;
}

/*
 * POST /publish on the HTTP listeners (publish_api_key set): the key,
 * the body (pubapi.c parses it), one IPC_PUB_REQ per item to the bridge,
 * which publishes like realtimectl publish (FCALL with cluster positions
 * when Redis has the library); the answer goes out when the bridge has
 * answered every item.  One request per connection at a time: what a
 * client pipelines behind it waits in its input (bounded).
 */
#include <sys/types.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <json-c/json.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "realtimed.h"
#include "config.h"
#include "log.h"
#include "util.h"
#include "http.h"
#include "ipc.h"
#include "pubapi.h"
#include "stats.h"
#include "registry.h"
#include "worker_int.h"

/* A request waiting for the bridge. */
struct conn_pub {
	struct json_object	*cp_results;	/* an array, one per item */
	uint32_t		*cp_slots;	/* its w_pubs slots; UINT32_MAX: none */
	int			 cp_n;
	int			 cp_left;	/* answers still owed */
	uint8_t			 cp_batch;
	uint8_t			 cp_keep;	/* keep-alive */
	uint8_t			 cp_down;	/* an item failed for Redis or the bridge */
};

/* One w_pubs slot: the connection (NULL: gone, the answer is dropped) and item. */
struct conn_pubslot {
	struct rt_conn	*ps_conn;
	int		 ps_item;
	uint8_t		 ps_used;
};

static void
conn_pub_respond(struct rt_conn *c, int status, struct json_object *o, const char *extra,
    int keep)
{
	const char	*body;
	size_t		 blen;
	char		 head[512];
	int		 n;

	body = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
	    &blen);
	n = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
	    "Content-Length: %zu\r\nCache-Control: no-store\r\n%s%s\r\n", status,
	    http_reason(status), blen, extra != NULL ? extra : "", keep ? "" : "Connection: close\r\n");
	conn_write2(c, head, (size_t)n, body, blen);
	json_object_put(o);
	STAT_ADD(c->c_worker, rw_publish_requests, 1);
	if (status >= 400)	/* as conn_http_error() counts every other path's */
		STAT_ADD(c->c_worker, rw_handshake_errors, 1);
	if (!keep)
		conn_linger(c);
	else {
		c->c_deadline = util_now_ms() + (uint64_t)c->c_worker->w_conf->c_handshake_timeout;
		wheel_schedule(&c->c_worker->w_wheel, &c->c_timer, c->c_deadline);
	}
}

static struct json_object *
conn_pub_err(const char *why)
{
	struct json_object	*o = json_object_new_object();

	json_object_object_add(o, "error", json_object_new_string(why));
	return o;
}

/* A refusal before the body is read: the connection closes after it. */
static void
conn_pub_refuse(struct rt_conn *c, int status, const char *why, const char *extra)
{
	if (status == 401)
		STAT_ADD(c->c_worker, rw_publish_unauthorized, 1);
	else
		STAT_ADD(c->c_worker, rw_publish_rejected, 1);
	log_debug("%s: %s: HTTP %d: %s", __func__, conn_peer(c), status, why);
	conn_pub_respond(c, status, conn_pub_err(why), extra, 0);
}

/* Authorization: Bearer KEY, compared in constant time on digests. */
static int
conn_pub_key_ok(struct rt_conn *c, const struct http_request *req)
{
	const char	*key = c->c_worker->w_conf->c_publish_api_key, *cred;
	unsigned char	 a[SHA256_DIGEST_LENGTH], b[SHA256_DIGEST_LENGTH];
	size_t		 len;

	if (!http_bearer(req, &cred, &len))
		return 0;
	SHA256((const unsigned char *)cred, len, a);
	SHA256((const unsigned char *)key, strlen(key), b);
	return CRYPTO_memcmp(a, b, sizeof(a)) == 0;
}

/* Content-Type: absent, or application/json with any parameters. */
static int
conn_pub_type_ok(const struct http_request *req)
{
	const struct http_header	*h = http_header_get(req, "Content-Type");
	size_t				 n;

	if (h == NULL)
		return 1;
	for (n = 0; n < h->h_value_len && h->h_value[n] != ';' && h->h_value[n] != ' ' &&
	    h->h_value[n] != '\t'; n++)	/* type OWS ";" (RFC 9110 8.3.1) */
		;
	return util_strncaseeq(h->h_value, n, "application/json");
}

static int
conn_pub_keep(const struct http_request *req)
{
	return req->r_minor >= 1 && !http_header_has_token(req, "Connection", "close");
}

/* A free slot; -1 at max_publish_pending. */
static int
conn_pub_slot(struct rt_worker *w)
{
	struct conn_pubslot	*p;
	uint32_t		 i, cap;

	if (w->w_npubs >= (uint32_t)w->w_conf->c_max_publish_pending)
		return -1;
	for (i = 0; i < w->w_pubcap; i++)
		if (!w->w_pubs[(w->w_pubnext + i) % w->w_pubcap].ps_used) {
			i = (w->w_pubnext + i) % w->w_pubcap;
			w->w_pubnext = i + 1;
			return (int)i;
		}
	cap = w->w_pubcap == 0 ? 64 : w->w_pubcap * 2;
	if ((p = realloc(w->w_pubs, cap * sizeof(*p))) == NULL)
		return -1;
	memset(p + w->w_pubcap, 0, (cap - w->w_pubcap) * sizeof(*p));
	w->w_pubs = p;
	i = w->w_pubcap;
	w->w_pubcap = cap;
	w->w_pubnext = i + 1;
	return (int)i;
}

static void
conn_pub_free(struct conn_pub *cp)
{
	if (cp->cp_results != NULL)
		json_object_put(cp->cp_results);
	free(cp->cp_slots);
	free(cp);
}

/*
 * Every item answered: the response, then (resume: answered later than the
 * request's read) what the client sent behind it.
 */
static void
conn_pub_done(struct rt_conn *c, int resume)
{
	struct conn_pub		*cp = c->c_pub;
	struct json_object	*o;
	int			 status = 200;
	const char		*extra = NULL;

	c->c_pub = NULL;
	o = cp->cp_batch ? json_object_get(cp->cp_results) :
	    json_object_get(json_object_array_get_idx(cp->cp_results, 0));
	if (!cp->cp_batch && json_object_object_get_ex(o, "error", NULL)) {
		status = cp->cp_down ? 503 : 502;
		extra = cp->cp_down ? "Retry-After: 1\r\n" : NULL;
	}
	conn_pub_respond(c, status, o, extra, cp->cp_keep);
	conn_pub_free(cp);
	if (!resume || c->c_state != CS_HTTP)
		return;
	if (c->c_tls)
		conn_http_input(c);
	else if (c->c_msg != NULL)
		conn_http_plain(c, NULL, 0);
}

/* Item i's answer: receivers and offset, or an error. */
static void
conn_pub_item(struct rt_conn *c, int i, const int64_t *v, const char *err)
{
	struct conn_pub		*cp = c->c_pub;
	struct json_object	*o = json_object_new_object();

	if (err != NULL) {
		json_object_object_add(o, "error", json_object_new_string(err));
		STAT_ADD(c->c_worker, rw_publish_failed, 1);
		if (strncmp(err, "redis", 5) == 0 || strncmp(err, "the bridge", 10) == 0)
			cp->cp_down = 1;
	} else {
		json_object_object_add(o, "offset", v[1] > 0 ? json_object_new_int64(v[1]) : NULL);
		json_object_object_add(o, "receivers", json_object_new_int64(v[0]));
		STAT_ADD(c->c_worker, rw_publish_events, 1);
	}
	json_object_array_put_idx(cp->cp_results, (size_t)i, o);
	cp->cp_slots[i] = UINT32_MAX;
	if (--cp->cp_left == 0)
		conn_pub_done(c, 1);
}

void
conn_pub_reply(struct rt_worker *w, uint32_t id, const uint8_t *p, size_t len)
{
	struct conn_pubslot	*s;
	int64_t			 v[2];
	char			 err[200];

	if (id >= w->w_pubcap || !w->w_pubs[id].ps_used)
		fatalx("%s: an answer to no publish (%u)", __func__, id);
	s = &w->w_pubs[id];
	s->ps_used = 0;
	w->w_npubs--;
	if (s->ps_conn == NULL)
		return;		/* the client went away */
	if (len == sizeof(v)) {
		memcpy(v, p, sizeof(v));
		conn_pub_item(s->ps_conn, s->ps_item, v, NULL);
	} else {
		snprintf(err, sizeof(err), "%.*s", (int)(len < 199 ? len : 199), (const char *)p);
		conn_pub_item(s->ps_conn, s->ps_item, NULL, err);
	}
}

/* The bridge died: no answer will come; every waiting item fails. */
void
conn_pub_bridge_lost(struct rt_worker *w)
{
	struct conn_pubslot	*s;
	uint32_t		 i;

	for (i = 0; i < w->w_pubcap; i++) {
		s = &w->w_pubs[i];
		if (!s->ps_used)
			continue;
		s->ps_used = 0;
		w->w_npubs--;
		if (s->ps_conn != NULL)
			conn_pub_item(s->ps_conn, s->ps_item, NULL, "the bridge went away");
	}
}

/*
 * A plain client half-closed (EOF on read): a publish it is waiting for is
 * still answered, then the connection closes (RFC 9112 9.6).  1 when one
 * is owed (c then reads no more), 0 when c may go now.  (Over TLS, OpenSSL
 * 3 takes an EOF without close_notify as a fatal error: nothing can be
 * written after it.)
 */
int
conn_pub_half_closed(struct rt_conn *c)
{
	if (c->c_tls || c->c_state != CS_HTTP || c->c_pub == NULL)
		return 0;
	c->c_pub->cp_keep = 0;
	c->c_rd_eof = 1;
	event_del(&c->c_ev);
	log_debug("%s: %s: half-closed, a publish still owed its answer", __func__,
	    conn_peer(c));
	return 1;
}

/*
 * c's deadline passed while its publish waited (Redis hangs, the link
 * not yet found dead): every item still waiting fails, so the client is
 * answered 503 with Retry-After instead of being dropped without a word.
 * Their answers, if they come later, go nowhere.
 */
void
conn_pub_timeout(struct rt_conn *c)
{
	struct conn_pub	*cp = c->c_pub;
	uint32_t	 slot;
	int		 i;

	for (i = 0; c->c_pub == cp && i < cp->cp_n; i++) {
		if ((slot = cp->cp_slots[i]) == UINT32_MAX)
			continue;
		c->c_worker->w_pubs[slot].ps_conn = NULL;
		conn_pub_item(c, i, NULL, "redis did not answer in time (the event may still go out)");
	}
}

/* c is being freed: its answers, when they come, go nowhere. */
void
conn_pub_cancel(struct rt_conn *c)
{
	struct conn_pub	*cp = c->c_pub;
	int		 i;

	if (cp == NULL)
		return;
	for (i = 0; i < cp->cp_n; i++)
		if (cp->cp_slots[i] != UINT32_MAX)
			c->c_worker->w_pubs[cp->cp_slots[i]].ps_conn = NULL;
	conn_pub_free(cp);
	c->c_pub = NULL;
}

static void
conn_pub_send(struct rt_worker *w, uint32_t slot, const struct pub_item *it)
{
	struct ipc_hdr	 h;
	struct evbuffer	*out = fanout_bridge_out(w);
	uint16_t	 chlen = (uint16_t)it->pi_chlen;

	ipc_hdr_init(&h, IPC_PUB_REQ, (uint32_t)(sizeof(chlen) + it->pi_chlen + it->pi_datalen),
	    slot);
	if (evbuffer_add(out, &h, sizeof(h)) == -1 || evbuffer_add(out, &chlen, sizeof(chlen)) == -1 ||
	    evbuffer_add(out, it->pi_channel, it->pi_chlen) == -1 ||
	    evbuffer_add(out, it->pi_data, it->pi_datalen) == -1)
		fatalx("%s: out of memory", __func__);
}

/* Send the items that passed the checks; 0, or -1 at max_publish_pending. */
static int
conn_pub_start(struct rt_conn *c, const struct pub_item *items, int n, int batch, int keep)
{
	struct rt_worker	*w = c->c_worker;
	struct conn_pub		*cp;
	int			 i, need = 0, slot;

	for (i = 0; i < n; i++)
		need += items[i].pi_error == NULL;
	if (w->w_npubs + (uint32_t)need > (uint32_t)w->w_conf->c_max_publish_pending)
		return -1;
	if ((cp = calloc(1, sizeof(*cp))) == NULL ||
	    (cp->cp_slots = calloc((size_t)n, sizeof(*cp->cp_slots))) == NULL) {
		free(cp);
		return -1;
	}
	cp->cp_results = json_object_new_array_ext(n);
	cp->cp_n = n;
	cp->cp_batch = (uint8_t)batch;
	cp->cp_keep = (uint8_t)keep;
	c->c_pub = cp;
	for (i = 0; i < n; i++) {
		cp->cp_slots[i] = UINT32_MAX;
		if (items[i].pi_error != NULL) {
			json_object_array_put_idx(cp->cp_results, (size_t)i,
			    conn_pub_err(items[i].pi_error));
			continue;
		}
		if ((slot = conn_pub_slot(w)) == -1) {
			json_object_array_put_idx(cp->cp_results, (size_t)i,
			    conn_pub_err("out of memory"));
			continue;
		}
		w->w_pubs[slot] = (struct conn_pubslot){ c, i, 1 };
		w->w_npubs++;
		cp->cp_slots[i] = (uint32_t)slot;
		cp->cp_left++;
		conn_pub_send(w, (uint32_t)slot, &items[i]);
	}
	if (cp->cp_left == 0) {
		conn_pub_done(c, 0);
		return 0;
	}
	/* the answer is due within redis_timeout (and a second for the bridge),
	 * counted from now, not from the connection's accept */
	c->c_deadline = util_now_ms() + (uint64_t)w->w_conf->c_redis_timeout + 1000;
	wheel_schedule(&w->w_wheel, &c->c_timer, c->c_deadline);
	return 0;
}

/* The whole body is here: parse it and publish, or say why not. */
static void
conn_pub_body(struct rt_conn *c, const struct http_request *req, const char *body,
    size_t len)
{
	struct rt_worker	*w = c->c_worker;
	struct pub_item		*items;
	const char		*why = NULL;
	int			 n, i, valid = 0, batch, keep = conn_pub_keep(req);
	enum pub_result		 rv;

	if ((items = calloc((size_t)w->w_conf->c_max_publish_batch, sizeof(*items))) == NULL) {
		conn_pub_respond(c, 503, conn_pub_err("out of memory"), "Retry-After: 1\r\n", 0);
		return;
	}
	rv = pub_parse(body, len, w->w_conf->c_namespaces, items, w->w_conf->c_max_publish_batch,
	    &n, &batch, &why);
	for (i = 0; rv == PUB_OK && i < n; i++)
		valid += items[i].pi_error == NULL;
	if (rv != PUB_OK) {
		STAT_ADD(w, rw_publish_rejected, 1);
		conn_pub_respond(c, rv == PUB_BAD ? 400 : 422,
		    conn_pub_err(rv == PUB_BAD ? why : items[0].pi_error), NULL, keep);
	} else if (valid > 0 && (w->w_bridge == NULL ||
	    !atomic_load(&w->w_reg->r_hdr->rh_bridge.rb_redis_up))) {
		/* (a batch of invalid items only is answered item by item:
		 * trying again would not help it) */
		STAT_ADD(w, rw_publish_failed, valid);
		conn_pub_respond(c, 503, conn_pub_err("redis is down"), "Retry-After: 1\r\n", keep);
	} else if (conn_pub_start(c, items, n, batch, keep) == -1) {
		STAT_ADD(w, rw_publish_busy, 1);
		conn_pub_respond(c, 503, conn_pub_err("too many publishes waiting"),
		    "Retry-After: 1\r\n", keep);
	}
	free(items);
}

/*
 * POST /publish with the head parsed and avail bytes after it: 1 when the
 * request is dealt with (*used: the body's bytes), 0 while the body is
 * incomplete.
 */
int
conn_pub_request(struct rt_conn *c, const struct http_request *req, const char *body,
    size_t avail, size_t *used)
{
	struct rt_config		*conf = c->c_worker->w_conf;
	const struct http_header	*expect = NULL;

	*used = 0;
	if (!conn_pub_key_ok(c, req))
		conn_pub_refuse(c, 401, "a valid Authorization: Bearer key is required",
		    http_header_get(req, "Authorization") != NULL ?
		    "WWW-Authenticate: Bearer error=\"invalid_token\"\r\n" :
		    "WWW-Authenticate: Bearer\r\n");
	else if (req->r_chunked || http_header_get(req, "Content-Length") == NULL)
		conn_pub_refuse(c, 411, "a Content-Length is required (no chunked bodies)", NULL);
	else if (req->r_content_length > conf->c_max_publish_body)
		conn_pub_refuse(c, 413, "body over max_publish_body", NULL);
	else if (!conn_pub_type_ok(req))
		conn_pub_refuse(c, 415, "Content-Type must be application/json", NULL);
	else if ((expect = http_header_get(req, "Expect")) != NULL &&
	    !util_strncaseeq(expect->h_value, expect->h_value_len, "100-continue"))
		conn_pub_refuse(c, 417, "the only expectation met is 100-continue", NULL);
	else if (avail < (size_t)req->r_content_length) {
		/* the client waits for this before it sends the body (RFC 9110 10.1.1) */
		if (expect != NULL && req->r_minor >= 1 && !c->c_continued) {
			static const char	 cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

			conn_write(c, cont, sizeof(cont) - 1);
			c->c_continued = 1;
		}
		return 0;
	} else {
		*used = (size_t)req->r_content_length;
		conn_pub_body(c, req, body, *used);
	}
	c->c_continued = 0;
	return 1;
}

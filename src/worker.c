/*
 * Worker process: owns client connections on one event_base.  This file
 * accepts, receives socket readiness, runs the tick, talks to the master
 * and drains on stop; worker_int.h maps the rooms that do the rest.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/queue.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "realtimed.h"
#include "config.h"
#include "log.h"
#include "util.h"
#include "wheel.h"
#include "ws.h"
#include "auth.h"
#include "channel.h"
#include "http.h"
#include "ipc.h"
#include "registry.h"
#include "tls.h"
#include "outq.h"
#include "stats.h"
#include "worker.h"
#include "worker_int.h"

#define WORKER_BRIDGE_WAIT_MS	1000
#define WORKER_TRIM_MS		5000
#define WORKER_TRIM_FREE	(1024 * 1024)	/* free heap worth a malloc_trim() */
#define WORKER_READ_MAX		(64 * 1024)	/* one read() of a plain socket */
/*
 * One SSL_read() of a TLS socket.  The OpenSSL bufferevent reserves this
 * much in its input buffer before every read, and the read that finds
 * nothing leaves the reservation there: every idle wss connection held an
 * empty 4 KB chunk with libevent's default.
 */
#define WORKER_TLS_READ		1024
#define WORKER_ACCEPT_BACKOFF_MIN 50		/* ms: accept() out of descriptors */
#define WORKER_ACCEPT_BACKOFF_MAX 1000
#define WORKER_ACCEPT_LOG_MS	1000

static void	worker_drain(struct rt_worker *, uint64_t);
static void	worker_stop(evutil_socket_t, short, void *);
static void	worker_shutdown(struct rt_worker *, uint64_t, uint64_t);
static void	worker_listeners_update(struct rt_worker *);
static void	worker_accept_resume(struct rt_worker *, uint64_t);


/*
 * Take clients only once the bridge holds our socket, so that no
 * subscription is acknowledged while its events would still be dropped;
 * after WORKER_BRIDGE_WAIT_MS without a bridge, take them anyway.
 */
void
worker_accepting(struct rt_worker *w, const char *why)
{
	if (w->w_accepting || w->w_stopping)
		return;
	w->w_accepting = 1;
	worker_listeners_update(w);
	log_debug("worker %d accepting: %s", w->w_id, why);
}

/*
 * A connect storm leaves the heap full of freed handshake buffers that
 * glibc keeps: give whole free pages back, so idle connections cost what
 * they hold, not what their handshakes once held (a wss handshake's
 * leftovers are ~0.5 KB per connection that a 4 MiB threshold left
 * resident).  The chunks a trim gave back still count as free, so the
 * next trim waits until the free total has moved by a quarter of the
 * threshold: an idle worker does not trim every tick.
 */
static void
worker_trim(struct rt_worker *w)
{
	struct mallinfo2	 mi = mallinfo2();

	if (util_trim_due(mi.fordblks, w->w_trim_free, WORKER_TRIM_FREE)) {
		malloc_trim(64 * 1024);
		w->w_trim_free = mi.fordblks;
	}
}

static void
worker_tick(evutil_socket_t fd, short ev, void *arg)
{
	struct rt_worker	*w = arg;
	uint64_t		 now = util_now_ms();

	(void)fd;
	(void)ev;
	atomic_store(&w->w_rw->rw_tick, now);
	stats_sample(&w->w_rw->rw_usage, now);
	if (now - w->w_trimmed >= WORKER_TRIM_MS) {
		worker_trim(w);
		w->w_trimmed = now;
	}
	if (!w->w_accepting && now - w->w_started >= WORKER_BRIDGE_WAIT_MS)
		worker_accepting(w, "no bridge yet");
	worker_accept_resume(w, now);
	wheel_advance(&w->w_wheel, now, conn_timer_fire, &now);
	if (w->w_stopping) {
		worker_drain(w, now);
		if (TAILQ_EMPTY(&w->w_conns) || now >= w->w_stop_deadline)
			event_base_loopexit(w->w_base, NULL);
	}
}

static void
worker_sock_read(struct rt_conn *c)
{
	static uint8_t	 buf[WORKER_READ_MAX];
	ssize_t		 n;

	if (c->c_state == CS_PROXY) {
		conn_proxy_read(c);
		return;
	}
	if ((n = read(conn_fd(c), buf, sizeof(buf))) == -1) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		log_debug("%s: %s: socket error: %s", __func__, conn_peer(c), strerror(errno));
		conn_free(c);
		return;
	}
	if (n == 0) {
		if (conn_pub_half_closed(c))
			return;
		log_debug("%s: %s: closed by peer", __func__, conn_peer(c));
		conn_free(c);
		return;
	}
	switch (c->c_state) {
	case CS_HTTP:
		conn_http_plain(c, buf, (size_t)n);
		break;
	case CS_OPEN:
	case CS_CLOSING:
		conn_ws_feed(c, buf, (size_t)n);
		break;
	case CS_LINGER:
	case CS_PROXY:
		break;	/* discarded */
	}
}

void
worker_sock_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rt_conn	*c = arg;

	(void)fd;
	if (c->c_io_err) {
		conn_free(c);
		return;
	}
	if ((what & EV_WRITE) && conn_flush(c) == -1)
		return;
	if (what & EV_READ)
		worker_sock_read(c);
}

/* ---- bufferevent callbacks (wss) ---------------------------------------- */

static void
worker_tls_read(struct bufferevent *bev, void *arg)
{
	struct rt_conn	*c = arg;
	struct evbuffer	*in = bufferevent_get_input(bev);

	switch (c->c_state) {
	case CS_HTTP:
		conn_http_input(c);
		break;
	case CS_OPEN:
	case CS_CLOSING:
		conn_ws_input(c);
		break;
	case CS_LINGER:
		evbuffer_drain(in, evbuffer_get_length(in));
		break;
	}
}

static void
worker_tls_write(struct bufferevent *bev, void *arg)
{
	struct rt_conn	*c = arg;

	(void)bev;
	if (c->c_state == CS_LINGER && conn_outlen(c) == 0)
		conn_drained(c);
}

/*
 * Plain HTTP on the TLS port (OpenSSL saw a request line for a record):
 * say so in plain HTTP, as nginx does, rather than reset.  Best effort,
 * one write: what the client sent after is read off first, so that the
 * close that follows is a FIN the answer arrives before, not a reset.
 */
static void
worker_tls_plain_http(evutil_socket_t fd)
{
	static const char	 body[] = "400 A plain HTTP request came to the TLS port\n";
	char			 buf[512], junk[4096];
	int			 i, n;

	for (i = 0; i < 4 && read(fd, junk, sizeof(junk)) == (ssize_t)sizeof(junk); i++)
		;
	n = http_format_response(buf, sizeof(buf), 400, "text/plain", NULL, body,
	    sizeof(body) - 1);
	if (n > 0 && write(fd, buf, (size_t)n) == -1)
		log_debug("%s: %s", __func__, strerror(errno));
}

static void
worker_tls_event(struct bufferevent *bev, short what, void *arg)
{
	struct rt_conn	*c = arg;

	char		 buf[256];
	unsigned long	 e;

	if (what & BEV_EVENT_CONNECTED) {
		/* TLS is up: the request head gets its own deadline now */
		c->c_tls_done = 1;
		STAT_ADD(c->c_worker, rw_tls_handshakes, 1);
		c->c_deadline = util_now_ms() + (uint64_t)c->c_worker->w_conf->c_handshake_timeout;
		conn_schedule(c);
		return;
	}
	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	if (what & BEV_EVENT_ERROR)
		c->c_tls_failed = 1;
	if ((e = bufferevent_get_openssl_error(bev)) != 0) {
		if (!c->c_tls_done)
			STAT_ADD(c->c_worker, rw_tls_errors, 1);
		log_debug("%s: %s: TLS: %s", __func__, conn_peer(c),
		    tls_error_string(e, buf, sizeof(buf)));
		if (!c->c_tls_done && ERR_GET_LIB(e) == ERR_LIB_SSL &&
		    ERR_GET_REASON(e) == SSL_R_HTTP_REQUEST)
			worker_tls_plain_http(bufferevent_getfd(bev));
		while (bufferevent_get_openssl_error(bev) != 0)
			;
	} else if (!c->c_tls_done) {
		STAT_ADD(c->c_worker, rw_tls_errors, 1);
		log_debug("%s: %s: closed during the TLS handshake", __func__, conn_peer(c));
	} else
		log_debug("%s: %s: %s", __func__, conn_peer(c),
		    (what & BEV_EVENT_EOF) ? "closed by peer" : "socket error");
	conn_free(c);
}

/*
 * wss: the OpenSSL bufferevent on c's socket, at accept or once a PROXY
 * header is read off it; -1 out of memory (c unchanged: its c_ev, if
 * any, still owns the socket).
 */
int
worker_tls_attach(struct rt_conn *c, evutil_socket_t fd)
{
	struct rt_worker	*w = c->c_worker;
	SSL			*ssl;

	if ((ssl = SSL_new(w->w_ssl_ctx)) == NULL)
		return -1;
	/* (an SSL that bufferevent_openssl_socket_new() refused is its to free) */
	if ((c->c_bev = bufferevent_openssl_socket_new(w->w_base, fd, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE)) == NULL)
		return -1;
	/* clients rarely send close_notify; EOF is EOF */
	bufferevent_openssl_set_allow_dirty_shutdown(c->c_bev, 1);
	bufferevent_set_max_single_read(c->c_bev, WORKER_TLS_READ);
	c->c_tls = 1;
	bufferevent_setcb(c->c_bev, worker_tls_read, worker_tls_write, worker_tls_event, c);
	bufferevent_enable(c->c_bev, EV_READ | EV_WRITE);
	return 0;
}

/*
 * flags: WORKER_L_TLS, WORKER_L_PROXY.  A proxy_protocol listener's
 * connection reads its PROXY header off the raw socket first (CS_PROXY,
 * conn_proxy.c): TLS and the per-address limit wait for the address it
 * gives.
 */
static void
worker_accept_conn(struct rt_worker *w, evutil_socket_t fd, struct sockaddr *sa, int flags)
{
	struct rt_conn		*c;
	int			 tls = (flags & WORKER_L_TLS) != 0, proxy = (flags & WORKER_L_PROXY) != 0;
	uint64_t		 timeout;

	w->w_accept_backoff = 0;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		goto fail;
	c->c_worker = w;
	if (tls && !proxy) {
		if (worker_tls_attach(c, fd) == -1)
			goto fail;
	} else if (event_assign(&c->c_ev, w->w_base, fd, EV_READ | EV_PERSIST,
	    worker_sock_cb, c) == -1)
		goto fail;
	c->c_state = proxy ? CS_PROXY : CS_HTTP;
	worker_pending(c, 1);
	c->c_proxy_tls = proxy && tls;
	c->c_last_rx = util_now_us();	/* for the handshake histogram */
	c->c_slot = -1;
	conn_peer_set(c, sa);
	if (util_uuid4(c->c_id, sizeof(c->c_id)) == -1)
		fatalx("%s: no randomness for connection ids", __func__);
	TAILQ_INSERT_TAIL(&w->w_conns, c, c_link);
	timeout = (uint64_t)(proxy ? w->w_conf->c_proxy_protocol_timeout :
	    tls ? w->w_conf->c_tls_handshake_timeout : w->w_conf->c_handshake_timeout);
	c->c_deadline = util_now_ms() + timeout;
	wheel_schedule(&w->w_wheel, &c->c_timer, c->c_deadline);
	if (!c->c_tls)
		event_add(&c->c_ev, NULL);
	/* a trusted proxy's clients share its address: counted at the upgrade */
	if (!proxy && !conn_proxy_trusted_peer(c))
		worker_ip_limit(c);
	return;
 fail:
	log_warnx("%s: out of memory, connection dropped", __func__);
	if (c == NULL || c->c_bev == NULL)
		close(fd);
	else
		bufferevent_free(c->c_bev);
	free(c);
}

/* max_connections_per_ip, for c's address as it stands: count it, or refuse with 503. */
void
worker_ip_limit(struct rt_conn *c)
{
	if (conn_ip_acquire(c) == -1)
		conn_http_error(c, 503, "Retry-After: 10\r\n");
}

static void
worker_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	(void)l;
	(void)salen;
	worker_accept_conn(arg, fd, sa, 0);
}

static void
worker_accept_proxy(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	(void)l;
	(void)salen;
	worker_accept_conn(arg, fd, sa, WORKER_L_PROXY);
}

static void
worker_accept_tls_proxy(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	(void)l;
	(void)salen;
	worker_accept_conn(arg, fd, sa, WORKER_L_TLS | WORKER_L_PROXY);
}

static void
worker_accept_tls(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	(void)l;
	(void)salen;
	worker_accept_conn(arg, fd, sa, WORKER_L_TLS);
}

/*
 * The listeners on or off, as w wants them: accepting (the bridge is there),
 * not stopping, not paused after an accept() error, and fewer than
 * max_pending_connections connections not yet WebSocket.
 */
static void
worker_listeners_update(struct rt_worker *w)
{
	int	 i, on;

	on = w->w_accepting && !w->w_stopping && w->w_accept_resume == 0 &&
	    w->w_npending < (uint32_t)w->w_conf->c_max_pending;
	if (on == w->w_listening)
		return;
	w->w_listening = on;
	for (i = 0; i < w->w_nlisteners; i++)
		on ? evconnlistener_enable(w->w_listeners[i]) :
		    evconnlistener_disable(w->w_listeners[i]);
}

/*
 * c starts (on 1) or stops (0: a WebSocket now, or freed) being a pending
 * connection, one of max_pending_connections: the listeners stop at the
 * limit and start again below it.
 */
void
worker_pending(struct rt_conn *c, int on)
{
	struct rt_worker	*w = c->c_worker;

	if (on == (int)c->c_pending)
		return;
	c->c_pending = on != 0;
	if (on) {
		w->w_npending++;
		STAT_ADD(w, rw_pending, 1);
		if (w->w_listening && w->w_npending >= (uint32_t)w->w_conf->c_max_pending) {
			STAT_ADD(w, rw_pending_full, 1);
			log_debug("worker %d: %u pending connections (max_pending_connections): "
			    "not accepting", w->w_id, w->w_npending);
		}
	} else {
		w->w_npending--;
		STAT_ADD(w, rw_pending, -1);
	}
	worker_listeners_update(w);
}

static void
worker_listeners_close(struct rt_worker *w)
{
	while (w->w_nlisteners > 0)
		evconnlistener_free(w->w_listeners[--w->w_nlisteners]);
}

/*
 * accept() failed.  Out of descriptors or memory, the connection stays
 * queued and the listener would fire again at once, for ever: spend the
 * reserve descriptor to take that client and close it cleanly (nginx and
 * haproxy do the same), pause the listeners, and let the tick resume them
 * with backoff.  What waits in the backlog is served once descriptors free
 * up.  One log line a second says how many accepts failed.
 */
static void
worker_accept_error(struct evconnlistener *l, void *arg)
{
	struct rt_worker	*w = arg;
	int			 err = EVUTIL_SOCKET_ERROR(), fd;
	uint64_t		 now = util_now_ms();

	STAT_ADD(w, rw_accept_errors, 1);
	w->w_accept_failures++;
	if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
		if (w->w_reserve_fd != -1) {
			close(w->w_reserve_fd);
			if ((fd = accept(evconnlistener_get_fd(l), NULL, NULL)) != -1)
				close(fd);
			w->w_reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		}
		w->w_accept_backoff = w->w_accept_backoff == 0 ? WORKER_ACCEPT_BACKOFF_MIN :
		    w->w_accept_backoff * 2 > WORKER_ACCEPT_BACKOFF_MAX ?
		    WORKER_ACCEPT_BACKOFF_MAX : w->w_accept_backoff * 2;
		w->w_accept_resume = now + w->w_accept_backoff;
		worker_listeners_update(w);
	}
	if (now - w->w_accept_logged >= WORKER_ACCEPT_LOG_MS) {
		errno = err;
		log_warn("accept() failed (%llu since the last such line)%s",
		    (unsigned long long)w->w_accept_failures,
		    w->w_accept_resume ? "; new connections wait in the listen queue" : "");
		w->w_accept_logged = now;
		w->w_accept_failures = 0;
	}
}

/* The tick: listeners paused by worker_accept_error() resume when due. */
static void
worker_accept_resume(struct rt_worker *w, uint64_t now)
{
	if (w->w_accept_resume == 0 || now < w->w_accept_resume)
		return;
	w->w_accept_resume = 0;
	worker_listeners_update(w);
}

/* ---- messages from the master ------------------------------------------- */

/* A new certificate the master read and validated: new connections use it. */
static int
worker_tls_reload(struct rt_worker *w, const char *p, size_t len, char *err, size_t errlen)
{
	struct tls_pem	 pem;
	SSL_CTX		*ctx;
	uint32_t	 certlen;

	if (len < sizeof(certlen))
		fatalx("%s: malformed TLS message from the master", __func__);
	memcpy(&certlen, p, sizeof(certlen));
	if (certlen > len - sizeof(certlen))
		fatalx("%s: malformed TLS message from the master", __func__);
	pem.tp_cert = (char *)(uintptr_t)(p + sizeof(certlen));
	pem.tp_certlen = certlen;
	pem.tp_key = (char *)(uintptr_t)(p + sizeof(certlen) + certlen);
	pem.tp_keylen = len - sizeof(certlen) - certlen;
	if ((ctx = tls_ctx_new(w->w_conf, &pem, err, errlen)) == NULL) {
		log_warnx("TLS reload: %s; keeping the old certificate", err);
		return -1;
	}
	/* established connections hold their own reference to the old one */
	if (w->w_ssl_ctx != NULL)
		SSL_CTX_free(w->w_ssl_ctx);
	w->w_ssl_ctx = ctx;
	OPENSSL_cleanse((void *)(uintptr_t)pem.tp_key, pem.tp_keylen);
	log_debug("%s: new TLS certificate in use", __func__);
	return 0;
}

/* The admin closes a connection, or all of a user's. */
static void
worker_kick(struct rt_worker *w, int by_user, const char *p, size_t len)
{
	struct rt_conn	*c, *next;

	for (c = TAILQ_FIRST(&w->w_conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, c_link);
		if (c->c_state != CS_OPEN || !c->c_counted)
			continue;
		if (by_user ? (c->c_user == NULL || strlen(c->c_user->cu_id) != len ||
		    memcmp(c->c_user->cu_id, p, len) != 0) :
		    (len != RT_UUID_LEN || memcmp(c->c_id, p, len) != 0))
			continue;
		log_info("%s: connection %s closed by an administrator", conn_peer(c), c->c_id);
		STAT_ADD(w, rw_kicked, 1);
		conn_send_error(c, "Disconnected by an administrator", NULL, NULL);
		conn_close(c, WS_CLOSE_POLICY, "Disconnected by an administrator", 0);
	}
}

/*
 * The revocation table gained entries (an admin's revoke, another node's,
 * or a reload from Redis): every connection whose token is now revoked
 * ends.  One pass over this worker's connections, a lookup each.
 */
static void
worker_revoke(struct rt_worker *w)
{
	struct rt_conn	*c, *next;
	int64_t		 now = (int64_t)time(NULL);

	for (c = TAILQ_FIRST(&w->w_conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, c_link);
		if (c->c_state != CS_OPEN || !c->c_counted || c->c_user == NULL ||
		    !c->c_user->cu_has_jti ||
		    !rvk_revoked(w->w_reg->r_revoked, c->c_user->cu_jti, now))
			continue;
		log_info("%s: connection %s closed: its token was revoked", conn_peer(c), c->c_id);
		STAT_ADD(w, rw_tokens_revoked, 1);
		conn_send_error(c, "Token revoked", NULL, NULL);
		conn_close(c, WS_CLOSE_POLICY, "Token revoked", 0);
	}
}

/* New settings from the master: apply what may change live. */
static int
worker_reload(struct rt_worker *w, const char *p, size_t len, char *err, size_t errlen)
{
	struct rt_config	 nc;
	struct auth_ctx		*auth;
	struct auth_cache_stats	 old;
	struct rt_conn		*c, *next;
	int			 nschanged;

	config_from_master(&nc, w->w_conf->c_file, p, len);
	if ((auth = config_auth_new(&nc, err, errlen)) == NULL) {
		log_warnx("reload: %s; keeping the old JWT settings", err);
		config_free(&nc);
		return -1;
	}
	nschanged = !chan_table_equal(w->w_conf->c_namespaces, nc.c_namespaces);
	config_merge_reloadable(w->w_conf, &nc, 0);
	if (nschanged)
		fanout_positions_forget(w);	/* a namespace's history may be off */
	auth_cache_stats(w->w_auth, &old);	/* the new keys start with no tokens */
	STAT_ADD(w, rw_token_cache_entries, -(int64_t)old.ac_entries);
	STAT_ADD(w, rw_token_cache_bytes, -(int64_t)old.ac_bytes);
	auth_free(w->w_auth);
	w->w_auth = auth;
	log_setlevel(w->w_conf->c_log_level);
	config_free(&nc);
	worker_listeners_update(w);	/* max_pending_connections may have moved */
	if (nschanged)
		for (c = TAILQ_FIRST(&w->w_conns); c != NULL; c = next) {
			next = TAILQ_NEXT(c, c_link);
			conn_ws_reauthorize(c);
		}
	return 0;
}

static void
worker_dispatch_master(evutil_socket_t fd, short ev, void *arg)
{
	struct rt_worker	*w = arg;
	struct ipc_hdr		 hdr;
	static char		 buf[IPC_CTL_MAX];
	char			 err[512];
	ssize_t			 n;
	int			 rfd;

	(void)ev;
	while ((n = ipc_recv(fd, &hdr, buf, sizeof(buf), &rfd)) > 0) {
		switch (hdr.type) {
		case IPC_BRIDGE_FD:
			fanout_attach_bridge(w, rfd);
			break;
		case IPC_SHUTDOWN:
			if (rfd != -1)
				close(rfd);
			worker_stop(SIGTERM, 0, w);
			break;
		case IPC_CFG_TLS:
			ipc_cfg_ack(fd, &hdr,
			    worker_tls_reload(w, buf, hdr.len, err, sizeof(err)), err);
			break;
		case IPC_CFG_RELOAD:
			ipc_cfg_ack(fd, &hdr,
			    worker_reload(w, buf, hdr.len, err, sizeof(err)), err);
			break;
		case IPC_CTL_KICK:
		case IPC_CTL_KICK_USER:
			worker_kick(w, hdr.type == IPC_CTL_KICK_USER, buf, hdr.len);
			break;
		case IPC_CTL_REVOKE:
			worker_revoke(w);
			break;
		case IPC_LOG_REOPEN:
			log_reopen();
			break;
		default:
			fatalx("%s: unexpected message %u from the master", __func__, hdr.type);
		}
	}
	if (n == 0) {
		/*
		 * The master died: nobody supervises us, so leave now, but
		 * with a close frame (1001) for every client, not a bare FIN.
		 */
		log_warnx("the master went away: closing %lld connections and exiting",
		    (long long)STAT_GET(w, rw_connections));
		event_del(w->w_master_ev);
		w->w_stopping = 0;	/* a drain in progress ends now */
		worker_shutdown(w, 0, (uint64_t)w->w_conf->c_close_timeout);
	} else if (errno != EAGAIN)
		fatal("%s: control socket", __func__);
}

/* ---- start and stop ------------------------------------------------------ */

/*
 * 1001 with a retry-after each client should wait before it comes back,
 * drawn uniformly over max(1 s, drain_period): added to the close times,
 * themselves spread over drain_period, the host's clients return over
 * two periods, not in the same second.
 */
static void
worker_drain_close(struct rt_worker *w, struct rt_conn *c)
{
	uint64_t	 window = w->w_drain_period > 1000 ? w->w_drain_period : 1000;
	uint32_t	 r;
	char		 reason[64];

	util_random(&r, sizeof(r));
	snprintf(reason, sizeof(reason), "Server shutting down; retry-after=%llu",
	    (unsigned long long)((uint64_t)r % (window + 1)));
	conn_close(c, WS_CLOSE_GOING_AWAY, reason, 0);
}

/*
 * Close open connections with 1001 in batches, one a tick, their sizes
 * jittered around an even spread over drain_period, so a host's clients
 * do not all reconnect to the next node in the same second.
 */
static void
worker_drain(struct rt_worker *w, uint64_t now)
{
	struct rt_conn	*c, *next;
	uint64_t	 period = w->w_drain_period, elapsed, jitter;
	uint32_t	 r;
	int64_t		 due, closed;

	elapsed = now - w->w_drain_start;
	util_random(&r, sizeof(r));
	jitter = (uint64_t)r % (2 * WORKER_TICK_MS + 1);	/* 0..2 ticks ahead */
	if (period == 0 || elapsed + jitter >= period)
		due = w->w_drain_total;
	else
		due = (int64_t)((uint64_t)w->w_drain_total * (elapsed + jitter) / period);
	closed = w->w_drain_total - (int64_t)STAT_GET(w, rw_connections);
	for (c = TAILQ_FIRST(&w->w_conns); c != NULL && closed < due; c = next) {
		next = TAILQ_NEXT(c, c_link);
		if (c->c_state != CS_OPEN)
			continue;
		worker_drain_close(w, c);
		closed++;
	}
	/* late arrivals: connections that were still upgrading */
	if (elapsed >= period)
		for (c = TAILQ_FIRST(&w->w_conns); c != NULL; c = next) {
			next = TAILQ_NEXT(c, c_link);
			if (c->c_state == CS_OPEN)
				worker_drain_close(w, c);
		}
}

/*
 * Stop accepting and close every client with 1001, spread over period ms;
 * the tick leaves the loop when all are gone or after timeout ms.
 */
static void
worker_shutdown(struct rt_worker *w, uint64_t period, uint64_t timeout)
{
	struct rt_conn		*c, *next;

	if (w->w_stopping)
		return;
	w->w_stopping = 1;
	atomic_store(&w->w_rw->rw_state, REG_PROC_STOPPING);
	w->w_stop_deadline = util_now_ms() + timeout;
	/* closed, not paused: nobody would accept what queues there, and a
	 * new instance may bind the port at once */
	worker_listeners_close(w);
	for (c = TAILQ_FIRST(&w->w_conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, c_link);
		if (c->c_state == CS_HTTP || c->c_state == CS_PROXY)
			conn_free(c);
	}
	w->w_drain_period = period;
	w->w_drain_total = (int64_t)STAT_GET(w, rw_connections);
	w->w_drain_start = util_now_ms();
	worker_drain(w, w->w_drain_start);
}

static void
worker_stop(evutil_socket_t sig, short ev, void *arg)
{
	struct rt_worker	*w = arg;

	(void)ev;
	if (w->w_stopping)
		return;
	log_info("stopping (%d): closing %lld connections", (int)sig,
	    (long long)STAT_GET(w, rw_connections));
	worker_shutdown(w, (uint64_t)w->w_conf->c_drain_period,
	    (uint64_t)w->w_conf->c_shutdown_timeout);
}

static void
worker_listen(struct rt_worker *w, int fd, evconnlistener_cb cb)
{
	struct evconnlistener	*l;

	if ((l = evconnlistener_new(w->w_base, cb, w, LEV_OPT_CLOSE_ON_FREE |
	    LEV_OPT_DISABLED, 0, fd)) == NULL)	/* 0: the master's listen() backlog stands */
		fatalx("evconnlistener_new() failed");
	evconnlistener_set_error_cb(l, worker_accept_error);
	w->w_listeners[w->w_nlisteners++] = l;
}

static void
worker_cleanup(struct rt_worker *w)
{
	struct rt_conn	*c;

	while ((c = TAILQ_FIRST(&w->w_conns)) != NULL)
		conn_free(c);
	worker_listeners_close(w);
	if (w->w_tick != NULL)
		event_free(w->w_tick);
	if (w->w_sigterm != NULL)
		event_free(w->w_sigterm);
	if (w->w_master_ev != NULL)
		event_free(w->w_master_ev);
	fanout_free(w);
	free(w->w_pubs);
	if (w->w_reserve_fd != -1)
		close(w->w_reserve_fd);
	auth_free(w->w_auth);
	if (w->w_ssl_ctx != NULL)
		SSL_CTX_free(w->w_ssl_ctx);
	free(w->w_chans);
	if (w->w_base != NULL)
		event_base_free(w->w_base);
}

int
worker_run(struct rt_config *conf, struct registry *reg, int worker_id, int master_fd,
    int plain_fd, int tls_fd, SSL_CTX *ssl_ctx)
{
	struct rt_worker	 w;
	struct timeval		 tick = { 0, WORKER_TICK_MS * 1000 };
	char			 err[512];

	memset(&w, 0, sizeof(w));
	w.w_conf = conf;
	w.w_posgen = 1;
	w.w_id = worker_id;
	w.w_reg = reg;
	w.w_started = util_now_ms();
	w.w_batch = 1;
	w.w_rw = reg_worker(reg, worker_id);
	w.w_master_fd = master_fd;
	TAILQ_INIT(&w.w_conns);
	wheel_init(&w.w_wheel, WORKER_TICK_MS, util_now_ms());
	if (chanidx_init(&w) == -1)
		fatal("calloc");
	/* a spare descriptor, to refuse a client cleanly when out of them */
	w.w_reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if ((w.w_auth = config_auth_new(conf, err, sizeof(err))) == NULL) {
		log_warnx("%s", err);
		worker_cleanup(&w);
		return -1;
	}
	if ((w.w_base = event_base_new()) == NULL)
		fatalx("event_base_new() failed");
	w.w_ssl_ctx = ssl_ctx;
	if (plain_fd != -1)
		worker_listen(&w, plain_fd, conf->c_listen_proxy ? worker_accept_proxy : worker_accept);
	if (tls_fd != -1 && ssl_ctx != NULL)
		worker_listen(&w, tls_fd, conf->c_listen_tls_proxy ? worker_accept_tls_proxy :
		    worker_accept_tls);
	w.w_tick = event_new(w.w_base, -1, EV_PERSIST, worker_tick, &w);
	event_add(w.w_tick, &tick);
	w.w_sigterm = evsignal_new(w.w_base, SIGTERM, worker_stop, &w);
	event_add(w.w_sigterm, NULL);
	w.w_master_ev = event_new(w.w_base, master_fd, EV_READ | EV_PERSIST,
	    worker_dispatch_master, &w);
	event_add(w.w_master_ev, NULL);
	atomic_store(&w.w_rw->rw_pid, (int32_t)getpid());
	atomic_store(&w.w_rw->rw_started, (uint64_t)time(NULL));
	atomic_store(&w.w_rw->rw_tick, util_now_ms());
	atomic_store(&w.w_rw->rw_state, REG_PROC_RUNNING);
	ipc_send(master_fd, IPC_HELLO, (uint32_t)worker_id, NULL, 0, -1);
	log_debug("worker %d ready", worker_id);
	event_base_dispatch(w.w_base);
	atomic_store(&w.w_rw->rw_state, REG_PROC_STOPPING);
	worker_cleanup(&w);
	log_debug("worker %d stopped", worker_id);
	close(master_fd);
	return 0;
}

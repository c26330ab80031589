/*
 * The worker's state, shared by its rooms:
 *   worker.c     accept, socket callbacks, tick, master link, drain, worker_run
 *   conn.c       a connection's output, close/linger/free, heartbeat timers
 *   conn_http.c  request head, routes, upgrade, greeting, /health, /metrics
 *   conn_ws.c    WebSocket frames, protocol messages, rate limit
 *   conn_pub.c   POST /publish: the key, the body, the bridge's answers
 *   conn_proxy.c the PROXY header of proxy_protocol listeners, trusted Forwarded
 *   chanidx.c    the channel -> subscribers index, subscribe/unsubscribe
 *   fanout.c     the bridge link: event batches, shared frames, pending sends
 * Private to the worker process: nothing outside these files includes it.
 */
#ifndef RT_WORKER_INT_H
#define RT_WORKER_INT_H

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/listener.h>
#include <openssl/ssl.h>

#include "realtimed.h"
#include "wheel.h"
#include "ws.h"
#include "proto.h"
#include "ipc.h"
#include "registry.h"
#include "revoke.h"

struct json_object;
struct http_request;
struct proto_request;
struct auth_user;
struct bufferevent;
struct evbuffer;
struct deflate_inflater;
struct deflate_ctx;

/* A compressed client message being inflated: only while it is read. */
struct conn_inflate {
	struct deflate_inflater	*ci_di;
	uint32_t		 ci_utf8;	/* text: validated as it is inflated */
	size_t			 ci_counted;	/* bytes in rw_inflate_memory */
	int			 ci_full;	/* the sink stopped: max_message_memory */
};
struct conn_pub;
struct conn_pubslot;

#define STAT_ADD(w, f, n)	atomic_fetch_add_explicit(&(w)->w_rw->f, (n), memory_order_relaxed)
#define STAT_GET(w, f)		atomic_load_explicit(&(w)->w_rw->f, memory_order_relaxed)

#define WORKER_TICK_MS		100

enum conn_state {
	CS_HTTP,	/* reading the request head */
	CS_PROXY,	/* reading the PROXY header, off the raw socket (before TLS) */
	CS_OPEN,	/* WebSocket open */
	CS_CLOSING,	/* close frame sent, waiting for the peer's */
	CS_LINGER,	/* our last bytes flushing, then discard until EOF */
};

enum conn_route { ROUTE_PROTO, ROUTE_ECHO };

struct rt_chan;

/* One per subscription: 24 bytes, a 32-byte malloc chunk. */
struct rt_sub {
	struct rt_conn	*s_conn;
	struct rt_chan	*s_chan;
	uint32_t	 s_req;		/* a position asked of the bridge; 0: none */
	/* (a channel's subscribers on one worker: at most max_connections, < 2^31) */
	unsigned int	 s_idx:31;	/* position in s_chan->ch_subs */
	unsigned int	 s_hold:1;	/* live events wait for the answer's end */
};

/* A position asked of the bridge, kept until answered (and asked again of a new bridge). */
struct fanout_req {
	struct rt_sub	*fr_sub;	/* NULL: a free slot */
	uint32_t	 fr_id;		/* the request's id: slot and generation */
	uint8_t		 fr_since;	/* replay what follows fr_epoch/fr_offset */
	uint8_t		 fr_answered;	/* its subscribed reply is out */
	uint8_t		 fr_sent;	/* to the bridge attached now: an answer will come */
	uint8_t		 fr_dead;	/* cancelled; the slot waits for the answer's end */
	uint64_t	 fr_offset;
	char		 fr_epoch[PROTO_EPOCH_MAX + 1];
};

/* A user's subscriptions to one channel on this worker (max_channels_per_user). */
struct rt_chanwho {
	uint32_t	 cw_key;	/* the connection's c_userkey; 0: free */
	uint32_t	 cw_n;
};

struct rt_chan {
	struct rt_chan	*ch_next;	/* hash chain */
	struct rt_sub	**ch_subs;
	struct rt_chanwho *ch_who;	/* open addressing, by user key */
	struct chan_pos	*ch_pos;	/* its position as the stream carried it, or NULL */
	uint32_t	 ch_hash;
	uint32_t	 ch_nsubs;	/* < INT32_MAX (s_idx) */
	uint32_t	 ch_cap;
	uint32_t	 ch_whocap;	/* a power of two, or 0 */
	uint32_t	 ch_nwho;
	char		 ch_name[];
};

/*
 * A channel's position as this worker's stream from the bridge carried it
 * (its events, the answers to position requests).  While the channel has
 * subscribers here every event of it comes on that stream, so the last
 * one seen is where a new subscription starts: a subscribe is answered
 * here, without asking the bridge.  Valid while cp_gen is w_posgen
 * (IPC_POS_RESET, a new bridge and a reload move it).  Made only for a
 * channel with two subscribers or more: a lone one pays nothing.
 */
struct chan_pos {
	uint32_t	 cp_gen;
	uint8_t		 cp_epochlen;
	char		 cp_epoch[IPC_EPOCH_MAX];
	uint64_t	 cp_offset;
};

/* An event frame of the bridge batch being delivered. */
struct fanout_frame {
	const uint8_t	*ff_p;		/* into the bridge's input */
	uint32_t	 ff_len;
	struct rt_blk	*ff_blk;	/* a copy, made once when a frame must wait */
	uint64_t	 ff_received_us;	/* by the bridge: delivery latency */
};

struct fanout_pending {
	uint32_t	 fp_frame;	/* index in w_frames */
	uint32_t	 fp_next;	/* UINT32_MAX: last of its connection */
};

/*
 * What a connection keeps of its token: a few bytes, not a struct
 * auth_user.  cu_data is the id, NUL, the role, NUL, then the claims the
 * namespaces use (cu_claimslen bytes of auth_user's u_claims).
 */
struct conn_user {
	int64_t		 cu_exp_ms;	/* ms since the epoch; 0: none */
	uint8_t		 cu_jti[RVK_DIGEST];	/* the token's id, for revocation */
	uint16_t	 cu_claimslen;
	unsigned int	 cu_has_jti:1;
	unsigned int	 cu_admin:1;
	unsigned int	 cu_has_role:1;
	char		 cu_id[];	/* at byte 27: allocated from offsetof(), not sizeof() (32) */
};

/*
 * Fields widest first, one-bit flags as bit-fields: an idle connection
 * costs this struct: 472 bytes, a 480-byte glibc chunk (512 and 528 before).
 */
struct rt_conn {
	TAILQ_ENTRY(rt_conn)	 c_link;
	struct wheel_entry	 c_timer;
	struct rt_worker	*c_worker;
	struct bufferevent	*c_bev;		/* wss only */
	struct event		 c_ev;		/* plain: readable, or output to flush */
	struct event		*c_wev;		/* plain: waiting for room to write */
	struct outq		*c_out;		/* plain: bytes waiting; NULL: none */
	struct evbuffer		*c_msg;		/* message being assembled */
	struct evbuffer		*c_later;	/* requests behind an unanswered one */
	struct conn_inflate	*c_inflate;	/* a compressed message being read */
	struct conn_user	*c_user;	/* NULL: anonymous */
	struct conn_pub		*c_pub;		/* a POST /publish waiting for the bridge */
	struct rt_sub		**c_subs;
	uint8_t			*c_proxy_buf;	/* CS_PROXY: a header split over reads; PROXY_MAX */
	uint64_t		 c_last_rx;	/* ms, monotonic; CS_HTTP: accepted, us */
	/* what the timer of conn_schedule() counts from, by state */
	union {
		uint64_t	 c_deadline;	/* not CS_OPEN: handshake / close deadline */
		uint64_t	 c_last_ping;	/* CS_OPEN: our last ping */
	};
	double			 c_tokens;	/* rate limit bucket */
	uint64_t		 c_tokens_at;
	struct ws_decoder	 c_dec;
	int			 c_nsubs;
	int			 c_subcap;
	int32_t			 c_slot;	/* registry connection slot, -1 none */
	uint32_t		 c_ipkey;	/* per-address counters held */
	uint32_t		 c_userkey;	/* per-user counters (authenticated) */
	uint32_t		 c_pend_batch;	/* frames pending in batch w_batch */
	uint32_t		 c_pend_first;	/* index in w_pend */
	uint32_t		 c_pend_last;
	uint32_t		 c_pend_bytes;
	uint16_t		 c_proxy_len;	/* CS_PROXY: bytes of the header in c_proxy_buf */
	uint16_t		 c_peer_port;	/* the peer, compact (formatted only to log): */
	uint8_t			 c_peer_family;
	uint8_t			 c_peer_addr[16];
	uint8_t			 c_state;
	uint8_t			 c_route;
	uint8_t			 c_msg_opcode;
	uint8_t			 c_waiting;	/* replies owed by the bridge: later requests wait */
	unsigned int		 c_tls:1;	/* wss: an OpenSSL bufferevent */
	unsigned int		 c_tls_done:1;	/* TLS handshake complete */
	unsigned int		 c_tls_failed:1;	/* a TLS error: the session is not reusable */
	unsigned int		 c_tls_shut:1;	/* close_notify sent */
	unsigned int		 c_proxy_tls:1;	/* CS_PROXY: TLS starts after the header */
	unsigned int		 c_close_rcvd:1;
	unsigned int		 c_rd_eof:1;	/* the peer half-closed; an answer is owed */
	unsigned int		 c_counted:1;	/* in the open-connection counters */
	unsigned int		 c_io_err:1;	/* plain: a write failed, free soon */
	unsigned int		 c_ip_counted:1;
	unsigned int		 c_pending:1;	/* in w_npending: not yet WebSocket */
	unsigned int		 c_user_counted:1;	/* in max_connections_per_user */
	unsigned int		 c_noticed:1;	/* token_expiring sent for this token */
	unsigned int		 c_deflate:1;	/* permessage-deflate negotiated */
	unsigned int		 c_msg_counted:1;	/* c_msg is a message, in rw_message_memory */
	unsigned int		 c_http_head:1;	/* the request is a HEAD: answers carry no body */
	unsigned int		 c_continued:1;	/* POST: "100 Continue" sent for this request */
	char			 c_id[RT_UUID_LEN + 1];
};
TAILQ_HEAD(conn_list, rt_conn);

struct rt_worker {
	struct rt_config	*w_conf;
	int			 w_id;
	struct event_base	*w_base;
	struct evconnlistener	*w_listeners[8];
	int			 w_nlisteners;
	struct event		*w_tick;
	struct event		*w_sigterm;
	struct wheel		 w_wheel;
	struct conn_list	 w_conns;
	struct auth_ctx		*w_auth;
	struct rt_chan		**w_chans;	/* hash buckets */
	size_t			 w_nbuckets;
	int			 w_stopping;
	uint64_t		 w_stop_deadline;
	int64_t			 w_nchans;	/* local channels */
	int64_t			 w_drain_total;	/* open when the stop began */
	uint64_t		 w_drain_period;
	uint64_t		 w_drain_start;
	int			 w_accepting;
	int			 w_listening;	/* the listeners are enabled */
	uint32_t		 w_npending;	/* connections not yet WebSocket */
	uint64_t		 w_trimmed;
	size_t			 w_trim_free;	/* mallinfo2 fordblks at the last trim */
	/* accept() out of descriptors: listeners paused until w_accept_resume */
	int			 w_reserve_fd;	/* spent to refuse one client cleanly */
	uint64_t		 w_accept_resume;	/* 0: not paused */
	uint64_t		 w_accept_backoff;
	uint64_t		 w_accept_logged;
	uint64_t		 w_accept_failures;	/* since the last log line */
	/* event frames for plain sockets whose output was empty, sent with
	 * one sendmsg per connection at the end of a bridge read */
	uint32_t		 w_batch;
	struct fanout_frame	*w_frames;
	uint32_t		 w_nframes;
	uint32_t		 w_framecap;
	struct fanout_pending	*w_pend;
	uint32_t		 w_npend;
	uint32_t		 w_pendcap;
	struct rt_conn		**w_pconns;
	uint32_t		 w_npconns;
	uint32_t		 w_pconncap;
	uint64_t		 w_started;
	struct registry		*w_reg;
	struct reg_worker	*w_rw;		/* our counters, shared */
	int			 w_master_fd;
	struct event		*w_master_ev;
	struct bufferevent	*w_bridge;		/* requests to the bridge */
	struct bout		*w_bout;		/* ... staged, written once per pass */
	struct event		*w_bridge_rd;		/* its messages, read into w_bin */
	uint8_t			*w_bin;
	size_t			 w_binlen;
	size_t			 w_bincap;		/* FANOUT_BIN_MIN, or a larger message */
	struct fanout_req	*w_reqs;	/* positions asked of the bridge */
	uint32_t		 w_reqcap;
	uint32_t		*w_reqfree;	/* free slots, a stack */
	uint32_t		 w_nreqfree;
	uint32_t		 w_reqgen;
	uint32_t		 w_posgen;	/* chan_pos valid for it; never 0 */
	SSL_CTX			*w_ssl_ctx;	/* this generation's; NULL: no TLS */
	struct deflate_ctx	*w_deflate;	/* echo replies; made at the first */
	struct conn_pubslot	*w_pubs;	/* POST /publish items asked of the bridge */
	uint32_t		 w_pubcap;
	uint32_t		 w_npubs;	/* used; at most max_publish_pending */
	uint32_t		 w_pubnext;
	uint64_t		 w_proxy_logged;	/* PROXY refusals: one line per PROXY_LOG_MS */
	uint64_t		 w_proxy_refused;	/* since that line */
};

/* worker.c */
#define WORKER_L_TLS	0x01
#define WORKER_L_PROXY	0x02
void	worker_sock_cb(evutil_socket_t, short, void *);
int	worker_tls_attach(struct rt_conn *, evutil_socket_t);
void	worker_ip_limit(struct rt_conn *);
void	worker_pending(struct rt_conn *, int);
void	worker_accepting(struct rt_worker *, const char *);

/* conn.c */
int	conn_fd(const struct rt_conn *);
size_t	conn_outlen(const struct rt_conn *);
void	conn_io_fail(struct rt_conn *, int);
void	conn_want_flush(struct rt_conn *);
void	conn_want_room(struct rt_conn *);
void	conn_write2(struct rt_conn *, const void *, size_t, const void *, size_t);
void	conn_write(struct rt_conn *, const void *, size_t);
void	conn_send_frame(struct rt_conn *, int, const void *, size_t);
void	conn_send_message(struct rt_conn *, int, const void *, size_t);
void	conn_inflate_end(struct rt_conn *);
void	conn_msg_free(struct rt_conn *);
void	conn_later_free(struct rt_conn *);
int	conn_output_full(struct rt_conn *);
void	conn_slow(struct rt_conn *);
void	conn_send_json(struct rt_conn *, struct json_object *);
void	conn_send_text(struct rt_conn *, char *, size_t);
void	conn_send_error(struct rt_conn *, const char *, const char *, const char *);
void	conn_free(struct rt_conn *);
void	conn_linger(struct rt_conn *);
void	conn_close(struct rt_conn *, uint16_t, const char *, int);
void	conn_schedule(struct rt_conn *);
void	conn_timer_fire(struct wheel_entry *, void *);
int	conn_flush(struct rt_conn *);
int	conn_drained(struct rt_conn *);
int	conn_verify_token(struct rt_conn *, const char *, size_t, struct auth_user *,
	    char *, size_t);
const struct auth_user *conn_auth_user(const struct rt_conn *, struct auth_user *);
struct conn_user *conn_user_new(const struct auth_user *);
int	conn_user_acquire(struct rt_conn *, const char *);
void	conn_refuse_user(struct rt_conn *, const char *);
void	conn_peer_set(struct rt_conn *, const struct sockaddr *);
void	conn_peer_put(struct rt_conn *, int, const uint8_t *, uint16_t);
const char *conn_peer(const struct rt_conn *);

int	conn_ip_acquire(struct rt_conn *);

/* conn_proxy.c */
void	conn_proxy_read(struct rt_conn *);
void	conn_proxy_timeout(struct rt_conn *);
int	conn_proxy_forwarded(struct rt_conn *, const struct http_request *);
int	conn_proxy_trusted_peer(const struct rt_conn *);

/* conn_http.c */
void	conn_http_error(struct rt_conn *, int, const char *);
void	conn_http_input(struct rt_conn *);
void	conn_http_plain(struct rt_conn *, uint8_t *, size_t);

/* conn_pub.c */
int	conn_pub_request(struct rt_conn *, const struct http_request *, const char *, size_t,
	    size_t *);
void	conn_pub_reply(struct rt_worker *, uint32_t, const uint8_t *, size_t);
void	conn_pub_bridge_lost(struct rt_worker *);
void	conn_pub_cancel(struct rt_conn *);
int	conn_pub_half_closed(struct rt_conn *);
void	conn_pub_timeout(struct rt_conn *);

/* conn_ws.c */
size_t	conn_ws_feed(struct rt_conn *, uint8_t *, size_t);
void	conn_ws_input(struct rt_conn *);
void	conn_ws_reauthorize(struct rt_conn *);
void	conn_ws_resume(struct rt_conn *);

/* chanidx.c */
int	chanidx_init(struct rt_worker *);
struct rt_chan *chanidx_find(struct rt_worker *, const char *, size_t);
int	chanidx_find_sub(struct rt_conn *, const char *, size_t);
int	chanidx_subscribe(struct rt_conn *, const char *, size_t, int64_t, const char **);
void	chanidx_unsubscribe_at(struct rt_conn *, int);
void	chanidx_unsubscribe_all(struct rt_conn *);
void	chanidx_adopt_user(struct rt_conn *);

/* fanout.c */
void	fanout_attach_bridge(struct rt_worker *, int);
int	fanout_position(struct rt_sub *, int, const char *, uint64_t);
struct evbuffer *fanout_bridge_out(struct rt_worker *);
void	fanout_position_cancel(struct rt_sub *);
int	fanout_position_here(struct rt_sub *);
void	fanout_positions_forget(struct rt_worker *);
void	fanout_bridge_lost(struct rt_worker *);
void	fanout_free(struct rt_worker *);

#endif

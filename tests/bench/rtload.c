/*
 * rtload - load generator for realtimed (and any server speaking the same
 * protocol, e.g. tests/bench/baseline/server.js).
 *
 * One parent (controller + Redis publisher) forks -P children; each child
 * holds its share of the connections in one epoll loop (non-blocking,
 * plain or TLS).  Children and parent share one anonymous MAP_SHARED
 * region for counters, latency histograms and the per-sequence completion
 * ring used for "publish -> last subscriber" latency and for the
 * "as fast as delivery keeps up" publishing window.
 *
 * Modes:
 *   idle    connect -n, subscribe, hold -d seconds answering pings
 *   fanout  connect, subscribe, publish -d seconds (rate -r, or window -w
 *           when -r 0), drain, count deliveries, losses and latencies
 *   hs      -c handshakes in flight per child for -d seconds: connect,
 *           [TLS, optionally resumed], upgrade with a JWT, wait for
 *           "connected", reset the connection
 *
 * -N (Nchan, nginx + nchan module; tests/bench/nchan/nginx.conf.in): each
 * connection upgrades at /sub/<prefix><channel> (no JWT, no "connected",
 * no subscribe message: it is subscribed once the 101 arrives, so one
 * channel per connection), and the publisher POSTs the event body over
 * HTTP/1.1 keep-alive to /pub/<prefix><channel> on the same port (-K
 * connections, a channel always on the same one) instead of Redis PUBLISH.
 * Nchan delivers the posted body itself as the text frame; realtimed wraps
 * it in {"type":"event",...}.  Both carry "seq" and "ts".  In hs mode a
 * handshake is done at the 101 (every upgrade at /sub/<prefix>0: Nchan's
 * subscribe is the upgrade), the counterpart of realtimed's hs -b.
 *
 * Output: progress on stderr, one JSON object on stdout at the end.
 * Every loop is bounded in time (-d, connect and drain timeouts).
 */
#define _GNU_SOURCE
#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <zlib.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define RING		65536		/* completion ring, sequences */
#define NB		2400		/* histogram buckets */
#define MAXCHILD	64
#define SCRATCH		(256 * 1024)

enum { M_IDLE, M_FANOUT, M_HS };

/* ---- histogram (log-linear, ~1.5 % resolution, microseconds) ---- */
static int
hidx(uint64_t us)
{
	int e;

	if (us < 128)
		return (int)us;
	e = 63 - __builtin_clzll(us) - 6;
	int i = 128 + (e - 1) * 64 + (int)((us >> e) - 64);
	return i >= NB ? NB - 1 : i;
}

static double
hval(int i)
{
	int e, m;

	if (i < 128)
		return i + 0.5;
	e = (i - 128) / 64 + 1;
	m = (i - 128) % 64 + 64;
	return ((double)((uint64_t)m << e) + (double)((uint64_t)(m + 1) << e)) / 2;
}

static double
hpct(const uint64_t *h, double p)
{
	uint64_t n = 0, acc = 0, want;
	int i;

	for (i = 0; i < NB; i++)
		n += h[i];
	if (n == 0)
		return -1;
	want = (uint64_t)(p / 100.0 * (double)n);
	if (want >= n)
		want = n - 1;
	for (i = 0; i < NB; i++) {
		acc += h[i];
		if (acc > want)
			return hval(i);
	}
	return hval(NB - 1);
}

static uint64_t
hcount(const uint64_t *h)
{
	uint64_t n = 0;
	for (int i = 0; i < NB; i++)
		n += h[i];
	return n;
}

/* ---- shared memory ---- */
struct child_sh {
	uint64_t	 started, connected, failed, retries, ready_conns;
	uint64_t	 subscribed, sub_errors, auth_errors, proto_errors;
	uint64_t	 server_closes, last_close_code, resets;
	uint64_t	 events, event_bytes, late, pings, other_msgs, ooo;
	uint64_t	 wire_bytes, zframes, zerrors;	/* data frames as sent; compressed ones */
	uint64_t	 hs_done, hs_fail, hs_resumed;
	int		 ready, exited;
	char		 first_error[160];
	uint64_t	 hist[NB];	/* publish -> each subscriber (us) */
	uint64_t	 hs_hist[NB];	/* handshake latency (us) */
	uint64_t	 done;		/* all own deliveries of seq <= done arrived */
	uint64_t	 done_at[RING];	/* CLOCK_REALTIME ns when seq completed here */
};

struct global_sh {
	uint64_t	 pub_seq;	/* last published sequence */
	int		 stop;
	int		 go;		/* hs: start */
};

static struct global_sh	*G;
static struct child_sh	*CH;	/* array [nproc] */

/* ---- options ---- */
static int	 opt_mode = M_FANOUT;
static const char *opt_host = "127.0.0.1";
static int	 opt_port = 8888;
static int	 opt_tls, opt_resume;
static long	 opt_n = 1000;
static int	 opt_procs = 1;
static int	 opt_conc = 200;	/* connects in flight per child / hs loops */
static long	 opt_channels = 1;
static int	 opt_smin = -1, opt_smax = -1;	/* subscribers per channel */
static const char *opt_prefix = "apps:bench";
static int opt_hs_sub;		/* -b: hs counts a handshake at "subscribed", not "connected" */
static double	 opt_dur = 10;
static double	 opt_rate;		/* events/s; 0 = window mode */
static int	 opt_window = 16;
static int	 opt_rport;		/* redis port; 0 = no publisher */
static const char *opt_secret = "benchsecret";
static const char *opt_token;
static int	 opt_naddr = 254;
static int	 opt_pad = 200;
static double	 opt_drain = 5;
static double	 opt_conn_timeout = 120;
static const char *opt_pids;
static const char *opt_path = "/ws";
static int	 opt_quiet;
static int	 opt_nchan;		/* -N: Nchan subscriber / HTTP publisher */
static int	 opt_npubport;		/* -Q: the publisher's (plain) port with -N -t; default -p */
static int	 opt_npub = 1;		/* -K: publisher connections (Nchan) */
static int	 opt_deflate;		/* -z: offer permessage-deflate, inflate RSV1 messages */
static int	 opt_jsonpad;		/* -j: padding like real JSON, not 'x' */
static int	 opt_proxy;		/* -X: a PROXY v2 header before anything else */

/* ---- time ---- */
static uint64_t
mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t
real_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void
logmsg(const char *fmt, ...)
{
	va_list ap;

	if (opt_quiet)
		return;
	va_start(ap, fmt);
	fprintf(stderr, "rtload[%d]: ", (int)getpid());
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static void
die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "rtload: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

/* ---- JWT (HS256) ---- */
static size_t
b64url(const unsigned char *in, size_t n, char *out)
{
	static const char t[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t i, o = 0;

	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = t[v >> 18 & 63]; out[o++] = t[v >> 12 & 63];
		out[o++] = t[v >> 6 & 63]; out[o++] = t[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;
		out[o++] = t[v >> 18 & 63]; out[o++] = t[v >> 12 & 63];
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		out[o++] = t[v >> 18 & 63]; out[o++] = t[v >> 12 & 63];
		out[o++] = t[v >> 6 & 63];
	}
	out[o] = '\0';
	return o;
}

static char *
jwt_mint(const char *secret, const char *user)
{
	char hdr[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", pl[512], *tok;
	unsigned char mac[32];
	unsigned int maclen = sizeof(mac);
	size_t o;
	long now = (long)time(NULL);

	/* a jti, as most issuers set: every handshake looks in the revocations */
	snprintf(pl, sizeof(pl), "{\"userId\":\"%s\",\"email\":\"%s@bench.invalid\","
	    "\"role\":\"user\",\"jti\":\"bench-%s-%ld\",\"iat\":%ld,\"exp\":%ld}", user, user,
	    user, now, now - 10, now + 7200);
	tok = malloc(1024);
	o = b64url((unsigned char *)hdr, strlen(hdr), tok);
	tok[o++] = '.';
	o += b64url((unsigned char *)pl, strlen(pl), tok + o);
	HMAC(EVP_sha256(), secret, (int)strlen(secret), (unsigned char *)tok, o, mac, &maclen);
	tok[o++] = '.';
	b64url(mac, maclen, tok + o);
	return tok;
}

/* ---- subscription plan ---- */
static int
subs_of_channel(long c)
{
	uint32_t h;

	if (opt_smin == opt_smax)
		return opt_smin;
	h = (uint32_t)c * 2654435761u;
	h ^= h >> 15;
	return opt_smin + (int)(h % (uint32_t)(opt_smax - opt_smin + 1));
}

static long
plan_total_subs(void)
{
	long c, s = 0;
	for (c = 0; c < opt_channels; c++)
		s += subs_of_channel(c);
	return s;
}

/* ---- connections ---- */
enum { S_FREE, S_CONNECTING, S_TLS, S_HTTP, S_WAITCONN, S_SUBSCRIBING, S_OPEN, S_DEAD };

struct conn {
	int		 fd;
	uint8_t		 state;
	uint8_t		 tries;
	uint8_t		 want_out;
	uint8_t		 tls_want;	/* 1 read, 2 write during TLS */
	uint16_t	 nsubs, pending;
	uint32_t	 lidx;		/* local index */
	SSL		*ssl;
	char		*rbuf;		/* leftover input */
	uint32_t	 rlen;
	char		*wbuf;		/* unsent output */
	uint32_t	 wlen;
	uint64_t	 last_seq;
	uint64_t	 t0;		/* handshake start (mono ns) */
};

struct child {
	int		 id;
	struct child_sh	*sh;
	int		 ep;
	long		 first, count;	/* global connection range */
	struct conn	*conns;
	uint32_t	*sub_off;	/* [count+1] */
	uint32_t	*sub_chan;
	uint32_t	*exp_c;		/* own subscriptions per channel */
	uint32_t	*cnt;		/* [RING] deliveries per seq */
	long		 next_start;	/* next conn to start */
	long		 inflight;	/* not yet open */
	long		 settled;	/* open or given up */
	SSL_CTX		*ctx;
	SSL_SESSION	*sess;
	char		*token;
	char		*scratch;
	uint32_t	 addr_rr;
};

static struct child	C;

static void
conn_error(const char *what)
{
	if (C.sh->first_error[0] == '\0')
		snprintf(C.sh->first_error, sizeof(C.sh->first_error), "%s", what);
}

static void
ep_set(struct conn *c, int out)
{
	struct epoll_event ev = { .events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c };

	if (epoll_ctl(C.ep, EPOLL_CTL_MOD, c->fd, &ev) == -1)
		conn_error("epoll_ctl mod");
}

static void conn_start(struct conn *c);

static void
conn_drop(struct conn *c, int hard)
{
	if (c->ssl) {
		/* unclean close would mark the shared session not resumable */
		SSL_set_shutdown(c->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd != -1) {
		if (hard) {
			struct linger l = { 1, 0 };
			setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
		}
		close(c->fd);
		c->fd = -1;
	}
	free(c->rbuf); c->rbuf = NULL; c->rlen = 0;
	free(c->wbuf); c->wbuf = NULL; c->wlen = 0;
	c->want_out = 0;
}

/* a connection that failed before it was open: retry or give up */
static void
conn_fail(struct conn *c, const char *why)
{
	int was_open = c->state == S_OPEN;

	conn_drop(c, 1);
	if (opt_mode == M_HS) {
		C.sh->hs_fail++;
		conn_error(why);
		c->state = S_FREE;
		return;
	}
	if (was_open) {
		c->state = S_DEAD;
		return;
	}
	if (c->tries < 4 && !G->stop) {
		C.sh->retries++;
		c->state = S_FREE;
		conn_start(c);
		return;
	}
	conn_error(why);
	C.sh->failed++;
	c->state = S_DEAD;
	C.inflight--;
	C.settled++;
}

static int
conn_flush(struct conn *c)
{
	ssize_t n;

	while (c->wlen > 0) {
		if (c->ssl) {
			ERR_clear_error();
			n = SSL_write(c->ssl, c->wbuf, (int)c->wlen);
			if (n <= 0) {
				int e = SSL_get_error(c->ssl, (int)n);
				if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
					break;
				return -1;
			}
		} else {
			n = send(c->fd, c->wbuf, c->wlen, MSG_NOSIGNAL);
			if (n == -1) {
				if (errno == EAGAIN || errno == EINTR)
					break;
				return -1;
			}
		}
		memmove(c->wbuf, c->wbuf + n, c->wlen - (size_t)n);
		c->wlen -= (uint32_t)n;
	}
	if (c->wlen == 0) {
		free(c->wbuf);
		c->wbuf = NULL;
	}
	if (!!c->wlen != c->want_out) {
		c->want_out = !!c->wlen;
		ep_set(c, c->want_out);
	}
	return 0;
}

static int
conn_send(struct conn *c, const void *p, size_t n)
{
	char *nb = realloc(c->wbuf, c->wlen + n);

	if (nb == NULL)
		return -1;
	c->wbuf = nb;
	memcpy(c->wbuf + c->wlen, p, n);
	c->wlen += (uint32_t)n;
	return conn_flush(c);
}

static int
ws_send(struct conn *c, int op, const void *p, size_t n)
{
	unsigned char f[16 + 512];
	unsigned char *buf = f;
	size_t h = 0, i;
	uint32_t mk = (uint32_t)random();
	unsigned char *m;
	int rv;

	if (n + 14 > sizeof(f))
		buf = malloc(n + 14);
	buf[h++] = 0x80 | (unsigned char)op;
	if (n < 126)
		buf[h++] = 0x80 | (unsigned char)n;
	else {
		buf[h++] = 0x80 | 126;
		buf[h++] = (unsigned char)(n >> 8);
		buf[h++] = (unsigned char)n;
	}
	m = buf + h;
	memcpy(m, &mk, 4);
	h += 4;
	for (i = 0; i < n; i++)
		buf[h + i] = ((const unsigned char *)p)[i] ^ m[i & 3];
	rv = conn_send(c, buf, h + n);
	if (buf != f)
		free(buf);
	return rv;
}

/*
 * -X: a PROXY protocol v2 header (PROXY, TCP over IPv4) whose source is a
 * synthetic 10.x.y.z:port, one per connection, as a balancer's send-proxy-v2
 * would write it.  28 bytes into out.
 */
static size_t
proxy_v2_header(unsigned char *out)
{
	static const unsigned char sig[12] = "\r\n\r\n\0\r\nQUIT\n";
	static uint32_t seq;
	uint32_t src = (10u << 24) | (((uint32_t)getpid() & 0xff) << 16) | (seq++ & 0xffff);
	uint32_t dst = 0x7f000001;
	uint16_t sport = (uint16_t)(1024 + seq % 60000), dport = (uint16_t)opt_port;

	memcpy(out, sig, 12);
	out[12] = 0x21;		/* version 2, PROXY */
	out[13] = 0x11;		/* TCP over IPv4 */
	out[14] = 0;
	out[15] = 12;
	src = htonl(src);
	dst = htonl(dst);
	memcpy(out + 16, &src, 4);
	memcpy(out + 20, &dst, 4);
	sport = htons(sport);
	dport = htons(dport);
	memcpy(out + 24, &sport, 2);
	memcpy(out + 26, &dport, 2);
	return 28;
}

static void
conn_send_upgrade(struct conn *c)
{
	char req[2048 + 28], key[32];
	unsigned char raw[16];
	size_t pre = 0;
	int n;

	RAND_bytes(raw, sizeof(raw));
	b64url(raw, sizeof(raw), key);
	/* b64url has no padding; a server only echoes the key through SHA-1 */
	for (char *p = key; *p; p++)
		if (*p == '-') *p = '+'; else if (*p == '_') *p = '/';
	strcat(key, "==");
	if (opt_nchan) {
		/* the channel is the path; a connection has 0 or 1 subscription */
		long l = c->lidx;
		char path[300];
		if (opt_mode == M_HS)	/* one channel for all, as hs -b subscribes */
			snprintf(path, sizeof(path), "/sub/%s0", opt_prefix);
		else if (C.sub_off[l + 1] > C.sub_off[l])
			snprintf(path, sizeof(path), "/sub/%s%u", opt_prefix,
			    C.sub_chan[C.sub_off[l]]);
		else
			snprintf(path, sizeof(path), "/sub/%snone", opt_prefix);
		n = snprintf(req, sizeof(req),
		    "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
		    "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
		    "Sec-WebSocket-Version: 13\r\n\r\n",
		    path, opt_host, opt_port, key);
	} else {
		if (opt_proxy && !opt_tls)	/* wss: sent before TLS (conn_connected) */
			pre = proxy_v2_header((unsigned char *)req);
		n = snprintf(req + pre, sizeof(req) - pre,
		    "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
		    "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
		    "Sec-WebSocket-Version: 13\r\nAuthorization: Bearer %s\r\n%s\r\n",
		    opt_path, opt_host, opt_port, key, C.token, opt_deflate ?
		    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" : "");
		n += (int)pre;
	}
	c->state = S_HTTP;
	if (conn_send(c, req, (size_t)n) == -1)
		conn_fail(c, "send upgrade");
}

static void
conn_tls_step(struct conn *c)
{
	int r, e;

	ERR_clear_error();
	r = SSL_connect(c->ssl);
	if (r == 1) {
		if (SSL_session_reused(c->ssl))
			C.sh->hs_resumed++;
		ep_set(c, 0);
		c->want_out = 0;
		conn_send_upgrade(c);
		return;
	}
	e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ) {
		ep_set(c, 0);
		c->want_out = 0;
	} else if (e == SSL_ERROR_WANT_WRITE) {
		ep_set(c, 1);
		c->want_out = 1;
	} else {
		char buf[160];
		snprintf(buf, sizeof(buf), "TLS handshake: %s",
		    ERR_error_string(ERR_peek_error(), NULL));
		conn_fail(c, buf);
	}
}

static void
conn_connected(struct conn *c)
{
	int err = 0;
	socklen_t l = sizeof(err);

	getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
	if (err != 0) {
		conn_fail(c, strerror(err));
		return;
	}
	c->want_out = 0;
	ep_set(c, 0);
	if (opt_tls && opt_proxy) {
		unsigned char hdr[28];
		size_t hl = proxy_v2_header(hdr);

		/* a fresh socket's buffer takes 28 bytes at once */
		if (send(c->fd, hdr, hl, MSG_NOSIGNAL) != (ssize_t)hl) {
			conn_fail(c, "send PROXY header");
			return;
		}
	}
	if (opt_tls) {
		c->ssl = SSL_new(C.ctx);
		SSL_set_fd(c->ssl, c->fd);
		SSL_set_tlsext_host_name(c->ssl, "localhost");
		if (opt_resume && C.sess != NULL)
			SSL_set_session(c->ssl, C.sess);
		c->state = S_TLS;
		conn_tls_step(c);
	} else
		conn_send_upgrade(c);
}

static void
conn_start(struct conn *c)
{
	struct sockaddr_in sa = { .sin_family = AF_INET }, src = { .sin_family = AF_INET };
	struct epoll_event ev;
	int one = 1, r;
	long g = C.first + c->lidx;
	uint32_t a;

	c->tries++;
	c->t0 = mono_ns();
	if ((c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1) {
		conn_fail(c, "socket");
		return;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
	a = opt_mode == M_HS ? C.addr_rr++ : (uint32_t)g + (uint32_t)c->tries - 1;
	src.sin_addr.s_addr = htonl(0x7f000001u + (a % (uint32_t)opt_naddr));
	if (bind(c->fd, (struct sockaddr *)&src, sizeof(src)) == -1) {
		conn_fail(c, "bind");
		return;
	}
	sa.sin_port = htons((uint16_t)opt_port);
	inet_pton(AF_INET, opt_host, &sa.sin_addr);
	ev.events = EPOLLIN | EPOLLOUT;
	ev.data.ptr = c;
	c->want_out = 1;
	c->state = S_CONNECTING;
	if (epoll_ctl(C.ep, EPOLL_CTL_ADD, c->fd, &ev) == -1) {
		conn_fail(c, "epoll_ctl add");
		return;
	}
	r = connect(c->fd, (struct sockaddr *)&sa, sizeof(sa));
	if (r == -1 && errno != EINPROGRESS)
		conn_fail(c, strerror(errno));
}

/* ---- completion ring ---- */
static inline uint64_t
expected_of(uint64_t seq)
{
	return C.exp_c[(seq - 1) % (uint64_t)opt_channels];
}

static void
ring_advance(void)
{
	uint64_t done = C.sh->done, pub = __atomic_load_n(&G->pub_seq, __ATOMIC_ACQUIRE);
	uint64_t start = done;

	while (done < pub) {
		uint64_t s = done + 1, slot = s % RING, e = expected_of(s);
		if (C.cnt[slot] < e)
			break;
		if (e == 0)
			C.sh->done_at[slot] = 0;
		C.cnt[slot] = 0;
		done = s;
	}
	if (done != start)
		__atomic_store_n(&C.sh->done, done, __ATOMIC_RELEASE);
}

static void
on_event(struct conn *c, const char *p, size_t n)
{
	const char *q;
	uint64_t seq = 0, ts = 0, now, slot;

	C.sh->events++;
	C.sh->event_bytes += n;
	if ((q = memmem(p, n, "\"seq\":", 6)) == NULL)
		return;
	for (q += 6; q < p + n && *q >= '0' && *q <= '9'; q++)
		seq = seq * 10 + (uint64_t)(*q - '0');
	if ((q = memmem(q, (size_t)(p + n - q), "\"ts\":", 5)) != NULL)
		for (q += 5; q < p + n && *q >= '0' && *q <= '9'; q++)
			ts = ts * 10 + (uint64_t)(*q - '0');
	now = real_ns();
	if (ts != 0 && now > ts)
		C.sh->hist[hidx((now - ts) / 1000)]++;
	else if (ts != 0)
		C.sh->hist[0]++;
	if (c->nsubs == 1) {
		if (seq <= c->last_seq)
			C.sh->ooo++;
		c->last_seq = seq;
	}
	if (seq == 0)
		return;
	if (seq <= C.sh->done) {
		C.sh->late++;
		return;
	}
	while (seq > C.sh->done + RING - 1) {	/* stalled on a loss: skip */
		uint64_t s = C.sh->done + 1;
		C.cnt[s % RING] = 0;
		C.sh->done_at[s % RING] = 0;
		__atomic_store_n(&C.sh->done, s, __ATOMIC_RELEASE);
	}
	slot = seq % RING;
	if (++C.cnt[slot] == expected_of(seq)) {
		C.sh->done_at[slot] = now;
		if (seq == C.sh->done + 1)
			ring_advance();
	}
}

static void
conn_opened(struct conn *c)
{
	c->state = S_OPEN;
	C.inflight--;
	C.settled++;
	C.sh->ready_conns++;
}

/* hs: one handshake done; keep its session for -e, reset the connection */
static void
hs_finished(struct conn *c)
{
	uint64_t us = (mono_ns() - c->t0) / 1000;

	C.sh->hs_hist[hidx(us)]++;
	C.sh->hs_done++;
	if (opt_tls && opt_resume) {
		SSL_SESSION *s = SSL_get1_session(c->ssl);
		if (s != NULL && SSL_SESSION_is_resumable(s)) {
			if (C.sess)
				SSL_SESSION_free(C.sess);
			C.sess = s;
		} else if (s)
			SSL_SESSION_free(s);
	}
	conn_drop(c, 1);
	c->state = S_FREE;
}

static void
on_text(struct conn *c, const char *p, size_t n)
{
	if (n > 15 && memcmp(p, "{\"type\":\"event\"", 15) == 0) {
		on_event(c, p, n);
		return;
	}
	/* Nchan: the frame is the published body itself, {"seq":N,"ts":T,...} */
	if (opt_nchan && n > 7 && memcmp(p, "{\"seq\":", 7) == 0) {
		on_event(c, p, n);
		return;
	}
	if (opt_mode == M_HS) {
		if (opt_hs_sub && c->state == S_WAITCONN && memmem(p, n, "\"connected\"", 11)) {
			char m[256];
			int mn = snprintf(m, sizeof(m),
			    "{\"type\":\"subscribe\",\"channel\":\"%s0\"}", opt_prefix);

			c->state = S_SUBSCRIBING;
			if (ws_send(c, 1, m, (size_t)mn) == -1)
				conn_fail(c, "send subscribe");
			return;
		}
		if (opt_hs_sub ? c->state == S_SUBSCRIBING && memmem(p, n < 40 ? n : 40,
		    "\"subscribed\"", 12) != NULL : c->state == S_WAITCONN && memmem(p, n,
		    "\"connected\"", 11) != NULL) {
			hs_finished(c);
			return;
		}
	}
	if (memmem(p, n < 40 ? n : 40, "\"error\"", 7)) {
		char buf[160];
		snprintf(buf, sizeof(buf), "server error: %.*s", (int)(n < 120 ? n : 120), p);
		conn_error(buf);
		if (c->state == S_WAITCONN) {
			C.sh->auth_errors++;
			return;
		}
		if (c->state == S_SUBSCRIBING) {
			C.sh->sub_errors++;
			if (--c->pending == 0)
				conn_opened(c);
			return;
		}
		C.sh->proto_errors++;
		return;
	}
	if (c->state == S_WAITCONN) {
		if (memmem(p, n < 40 ? n : 40, "\"connected\"", 11)) {
			long l = c->lidx;
			C.sh->connected++;
			c->nsubs = (uint16_t)(C.sub_off[l + 1] - C.sub_off[l]);
			if (c->nsubs == 0) {
				conn_opened(c);
				return;
			}
			c->state = S_SUBSCRIBING;
			c->pending = c->nsubs;
			for (uint32_t k = C.sub_off[l]; k < C.sub_off[l + 1]; k++) {
				char m[256];
				int mn = snprintf(m, sizeof(m),
				    "{\"type\":\"subscribe\",\"channel\":\"%s%u\"}",
				    opt_prefix, C.sub_chan[k]);
				if (ws_send(c, 1, m, (size_t)mn) == -1) {
					conn_fail(c, "send subscribe");
					return;
				}
			}
		} else
			C.sh->other_msgs++;
		return;
	}
	if (c->state == S_SUBSCRIBING && memmem(p, n < 40 ? n : 40, "\"subscribed\"", 12)) {
		C.sh->subscribed++;
		if (--c->pending == 0)
			conn_opened(c);
		return;
	}
	C.sh->other_msgs++;
}

/*
 * -z: a compressed message (RSV1), inflated as a browser would (raw
 * deflate, the 00 00 ff ff trailer put back, no context kept: the server
 * answers server_no_context_takeover), then handled as text.
 */
static void
on_compressed(struct conn *c, const char *p, size_t n)
{
	static z_stream z;
	static int init;
	static unsigned char *out, tail[4] = { 0, 0, 0xff, 0xff };
	static size_t cap;
	size_t have;
	int r;

	if (!init) {
		if (inflateInit2(&z, -15) != Z_OK)
			abort();
		init = 1;
	}
	inflateReset(&z);
	C.sh->zframes++;
	have = 0;
	for (int part = 0; part < 2; part++) {
		z.next_in = (unsigned char *)(uintptr_t)(part == 0 ? (const unsigned char *)p : tail);
		z.avail_in = part == 0 ? (uInt)n : 4;
		do {
			if (cap - have < 65536) {
				cap = cap ? cap * 2 : 1 << 20;
				if ((out = realloc(out, cap)) == NULL)
					abort();
			}
			z.next_out = out + have;
			z.avail_out = (uInt)(cap - have);
			r = inflate(&z, Z_SYNC_FLUSH);
			have = cap - z.avail_out;
			if (r != Z_OK && r != Z_BUF_ERROR && r != Z_STREAM_END) {
				C.sh->zerrors++;
				return;
			}
		} while (z.avail_in > 0 && r != Z_STREAM_END);
	}
	on_text(c, (const char *)out, have);
}

/* parse as many frames as complete; return bytes consumed, -1 = closed */
static long
ws_parse(struct conn *c, char *buf, size_t len)
{
	size_t off = 0;

	while (len - off >= 2) {
		unsigned char *h = (unsigned char *)buf + off;
		int op = h[0] & 0x0f;
		uint64_t pl = h[1] & 0x7f;
		size_t hl = 2;

		if (h[1] & 0x80) {
			conn_error("masked frame from server");
			return -1;
		}
		if (pl == 126) {
			if (len - off < 4) break;
			pl = (uint64_t)h[2] << 8 | h[3];
			hl = 4;
		} else if (pl == 127) {
			if (len - off < 10) break;
			pl = 0;
			for (int i = 0; i < 8; i++)
				pl = pl << 8 | h[2 + i];
			hl = 10;
		}
		if (len - off < hl + pl)
			break;
		char *p = buf + off + hl;
		switch (op) {
		case 1:
		case 0:
			C.sh->wire_bytes += hl + pl;
			if (h[0] & 0x40)
				on_compressed(c, p, (size_t)pl);
			else
				on_text(c, p, (size_t)pl);
			break;
		case 9:
			C.sh->pings++;
			if (ws_send(c, 10, p, (size_t)pl) == -1)
				return -1;
			break;
		case 8:
			C.sh->server_closes++;
			C.sh->last_close_code = pl >= 2 ?
			    ((unsigned char)p[0] << 8 | (unsigned char)p[1]) : 0;
			{
				char b[160];
				snprintf(b, sizeof(b), "server close %u: %.*s",
				    (unsigned)C.sh->last_close_code,
				    (int)(pl > 2 && pl < 120 ? pl - 2 : 0), p + 2);
				conn_error(b);
			}
			return -1;
		default:
			break;
		}
		off += hl + (size_t)pl;
		if (c->state == S_FREE || c->fd == -1)	/* hs: done and dropped */
			return -2;
	}
	return (long)off;
}

static void
conn_input(struct conn *c)
{
	char *buf = C.scratch;
	size_t have = 0, cap = SCRATCH;
	ssize_t n;
	int eof = 0;

	if (c->rlen) {
		if (c->rlen + 65536 > cap) {
			buf = malloc(c->rlen + 65536);
			cap = c->rlen + 65536;
		}
		memcpy(buf, c->rbuf, c->rlen);
		have = c->rlen;
		free(c->rbuf);
		c->rbuf = NULL;
		c->rlen = 0;
	}
	for (int rounds = 0; rounds < 64 && have < cap; rounds++) {
		if (c->ssl) {
			ERR_clear_error();
			n = SSL_read(c->ssl, buf + have, (int)(cap - have));
			if (n <= 0) {
				int e = SSL_get_error(c->ssl, (int)n);
				if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
					break;
				eof = 1;
				break;
			}
		} else {
			n = recv(c->fd, buf + have, cap - have, 0);
			if (n == 0) { eof = 1; break; }
			if (n == -1) {
				if (errno == EAGAIN || errno == EINTR)
					break;
				if (errno == ECONNRESET)
					C.sh->resets++;
				eof = 1;
				break;
			}
		}
		have += (size_t)n;
		if (!c->ssl && (size_t)n < cap - have + (size_t)n)
			break;	/* short read: socket drained */
	}
	size_t off = 0;
	if (c->state == S_HTTP && have > 0) {
		char *e = memmem(buf, have, "\r\n\r\n", 4);
		if (e == NULL) {
			if (have > 8192) { conn_fail(c, "huge http response"); goto out; }
			goto keep;
		}
		if (have < 12 || memcmp(buf + 9, "101", 3) != 0) {
			char b[160];
			snprintf(b, sizeof(b), "upgrade refused: %.*s", (int)(have < 60 ? have : 60), buf);
			conn_fail(c, b);
			goto out;
		}
		off = (size_t)(e + 4 - buf);
		c->state = S_WAITCONN;
		if (opt_nchan && opt_mode == M_HS) {	/* the 101 is the subscribe */
			hs_finished(c);
			goto out;
		}
		if (opt_nchan) {	/* subscribed by the upgrade itself */
			long l = c->lidx;
			C.sh->connected++;
			c->nsubs = (uint16_t)(C.sub_off[l + 1] - C.sub_off[l]);
			C.sh->subscribed += c->nsubs;
			conn_opened(c);
		}
	}
	if (c->state >= S_WAITCONN && c->state <= S_OPEN && have > off) {
		long r = ws_parse(c, buf + off, have - off);
		if (r == -2)
			goto out;
		if (r == -1) {
			if (c->state == S_OPEN) {
				conn_drop(c, 0);
				c->state = S_DEAD;
			} else
				conn_fail(c, "closed during setup");
			goto out;
		}
		off += (size_t)r;
	}
keep:
	if (eof) {
		if (c->state == S_OPEN) {
			C.sh->server_closes++;
			conn_error("server closed the connection");
			conn_drop(c, 0);
			c->state = S_DEAD;
		} else if (c->state != S_FREE && c->state != S_DEAD)
			conn_fail(c, "eof during setup");
		goto out;
	}
	if (have > off) {
		c->rlen = (uint32_t)(have - off);
		c->rbuf = malloc(c->rlen);
		memcpy(c->rbuf, buf + off, c->rlen);
	}
out:
	if (buf != C.scratch)
		free(buf);
}

static void
conn_io(struct conn *c, uint32_t evs)
{
	if (c->state == S_CONNECTING) {
		if (evs & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			conn_connected(c);
		return;
	}
	if (c->state == S_TLS) {
		conn_tls_step(c);
		return;
	}
	if ((evs & EPOLLOUT) && c->wlen && conn_flush(c) == -1) {
		conn_fail(c, "write");
		return;
	}
	if (evs & (EPOLLIN | EPOLLERR | EPOLLHUP))
		conn_input(c);
}

static SSL_CTX *
tls_ctx(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
	if (getenv("RTLOAD_TLS_MAX")) {
		if (strcmp(getenv("RTLOAD_TLS_MAX"), "1.2") == 0)
			SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
	}
	return ctx;
}

static void
child_main(int id, long first, long count)
{
	struct epoll_event evs[512];
	uint64_t deadline, t_end = 0;
	long i;
	char user[64];

	memset(&C, 0, sizeof(C));
	C.id = id;
	C.sh = &CH[id];
	C.first = first;
	C.count = count;
	srandom((unsigned)(getpid() ^ mono_ns()));
	if ((C.ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		die("epoll_create1");
	C.scratch = malloc(SCRATCH);
	snprintf(user, sizeof(user), "bench%d", id);
	C.token = opt_token ? strdup(opt_token) : jwt_mint(opt_secret, user);
	if (opt_tls)
		C.ctx = tls_ctx();

	if (opt_mode == M_HS) {
		C.conns = calloc((size_t)opt_conc, sizeof(*C.conns));
		C.sub_off = calloc((size_t)opt_conc + 1, sizeof(uint32_t));
		while (!__atomic_load_n(&G->go, __ATOMIC_ACQUIRE) && !G->stop)
			usleep(1000);
		for (i = 0; i < opt_conc; i++) {
			C.conns[i].fd = -1;
			C.conns[i].lidx = (uint32_t)i;
		}
		while (!__atomic_load_n(&G->stop, __ATOMIC_ACQUIRE)) {
			for (i = 0; i < opt_conc; i++)
				if (C.conns[i].state == S_FREE) {
					C.conns[i].tries = 0;
					C.sh->started++;
					conn_start(&C.conns[i]);
				}
			int n = epoll_wait(C.ep, evs, 512, 10);
			for (int k = 0; k < n; k++)
				conn_io(evs[k].data.ptr, evs[k].events);
		}
		for (i = 0; i < opt_conc; i++)
			conn_drop(&C.conns[i], 1);
		C.sh->exited = 1;
		_exit(0);
	}

	/* subscription plan: subscription q -> connection q % N */
	C.conns = calloc((size_t)count, sizeof(*C.conns));
	C.sub_off = calloc((size_t)count + 1, sizeof(uint32_t));
	C.exp_c = calloc((size_t)opt_channels, sizeof(uint32_t));
	C.cnt = calloc(RING, sizeof(uint32_t));
	if (opt_smax > 0) {
		long q = 0, c, own = 0;
		uint32_t *tmpcnt = calloc((size_t)count, sizeof(uint32_t));
		for (c = 0; c < opt_channels; c++) {
			int s = subs_of_channel(c);
			for (int j = 0; j < s; j++, q++) {
				long g = q % opt_n;
				if (g >= first && g < first + count) {
					tmpcnt[g - first]++;
					own++;
				}
			}
		}
		for (i = 0; i < count; i++)
			C.sub_off[i + 1] = C.sub_off[i] + tmpcnt[i];
		C.sub_chan = calloc((size_t)own + 1, sizeof(uint32_t));
		memset(tmpcnt, 0, (size_t)count * sizeof(uint32_t));
		for (q = 0, c = 0; c < opt_channels; c++) {
			int s = subs_of_channel(c);
			for (int j = 0; j < s; j++, q++) {
				long g = q % opt_n;
				if (g >= first && g < first + count) {
					C.sub_chan[C.sub_off[g - first] + tmpcnt[g - first]++] = (uint32_t)c;
					C.exp_c[c]++;
				}
			}
		}
		free(tmpcnt);
	}
	for (i = 0; i < count; i++) {
		C.conns[i].fd = -1;
		C.conns[i].lidx = (uint32_t)i;
	}

	deadline = mono_ns() + (uint64_t)(opt_conn_timeout * 1e9);
	while (!__atomic_load_n(&G->stop, __ATOMIC_ACQUIRE)) {
		while (C.next_start < count && C.inflight < opt_conc) {
			C.inflight++;
			C.sh->started++;
			conn_start(&C.conns[C.next_start++]);
		}
		if (!C.sh->ready && (C.settled >= count || mono_ns() > deadline)) {
			if (C.settled < count)
				conn_error("connect phase timed out");
			__atomic_store_n(&C.sh->ready, 1, __ATOMIC_RELEASE);
		}
		int n = epoll_wait(C.ep, evs, 512, 5);
		for (int k = 0; k < n; k++)
			conn_io(evs[k].data.ptr, evs[k].events);
		ring_advance();
		(void)t_end;
	}
	C.sh->exited = 1;
	_exit(0);
}

/* ---- server process sampling ---- */
#define PSTAT_PIDS 64
struct pstat { double cpu_s; double rss_kb, shm_kb, pss_kb; double host_busy_s; int n;
	int npid; double pid_cpu_s[PSTAT_PIDS]; };	/* per -Z pid, in its order */

static double	pid_cpu_delta[PSTAT_PIDS];	/* over the measured phase */
static int	npid_cpu;

static void
sample_pids(struct pstat *ps)
{
	char path[64], line[512], buf[2048];
	const char *p = opt_pids;
	long tck = sysconf(_SC_CLK_TCK);

	memset(ps, 0, sizeof(*ps));
	{	/* whole host, to see CPU taken by anything else on the machine */
		FILE *f = fopen("/proc/stat", "r");
		unsigned long long v[8] = { 0 };
		if (f && fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
		    &v[3], &v[4], &v[5], &v[6], &v[7]) == 8)
			ps->host_busy_s = (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)tck;
		if (f)
			fclose(f);
	}
	while (p && *p) {
		int pid = atoi(p);
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		if ((f = fopen(path, "r")) != NULL) {
			if (fgets(buf, sizeof(buf), f)) {
				char *q = strrchr(buf, ')');
				unsigned long ut = 0, st = 0;
				if (q && sscanf(q + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
				    &ut, &st) == 2) {
					ps->cpu_s += (double)(ut + st) / (double)tck;
					if (ps->npid < PSTAT_PIDS)
						ps->pid_cpu_s[ps->npid] = (double)(ut + st) / (double)tck;
				}
			}
			fclose(f);
			ps->n++;
		}
		snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", pid);
		if ((f = fopen(path, "r")) != NULL) {
			while (fgets(line, sizeof(line), f)) {
				double v;
				if (sscanf(line, "Pss: %lf", &v) == 1) ps->pss_kb += v;
			}
			fclose(f);
		}
		snprintf(path, sizeof(path), "/proc/%d/status", pid);
		if ((f = fopen(path, "r")) != NULL) {
			while (fgets(line, sizeof(line), f)) {
				double v;
				if (sscanf(line, "VmRSS: %lf", &v) == 1) ps->rss_kb += v;
				if (sscanf(line, "RssShmem: %lf", &v) == 1) ps->shm_kb += v;
			}
			fclose(f);
		}
		if (ps->npid < PSTAT_PIDS)
			ps->npid++;
		p = strchr(p, ',');
		if (p) p++;
	}
}

/* Server CPU seconds from a to b, kept per pid too (server_cpu_by_pid). */
static double
cpu_delta(const struct pstat *a, const struct pstat *b)
{
	int i;

	npid_cpu = a->npid < b->npid ? a->npid : b->npid;
	for (i = 0; i < npid_cpu; i++)
		pid_cpu_delta[i] = b->pid_cpu_s[i] - a->pid_cpu_s[i];
	return b->cpu_s - a->cpu_s;
}

/* ---- publisher (parent) ---- */
struct pub {
	int		 fd;
	int		 port;
	char		*out;
	size_t		 olen, ocap;
	uint64_t	 sent, replies, errors, receivers, closes;
	char		 rtail[64];	/* Redis: current reply line */
	size_t		 rtlen;
	char		*in;		/* HTTP: unparsed response bytes */
	size_t		 ilen, icap;
};

static struct pub	*PB;		/* [opt_npub] (Redis: one) */
static int		 npub;
static uint64_t		 pub_ts[RING];	/* publish time per seq, realtime ns */
static char		 pub_error[160];

static int
tcp_connect(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	inet_pton(AF_INET, opt_nchan ? opt_host : "127.0.0.1", &sa.sin_addr);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1)
		die("%s connect :%d: %s", opt_nchan ? "publisher" : "redis", port, strerror(errno));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

static void
pub_error_once(const char *fmt, ...)
{
	va_list ap;

	if (pub_error[0])
		return;
	va_start(ap, fmt);
	vsnprintf(pub_error, sizeof(pub_error), fmt, ap);
	va_end(ap);
	logmsg("publisher: %s", pub_error);
}

/* Nchan: complete HTTP responses in pb->in (Content-Length bodies) */
static void
http_parse(struct pub *pb)
{
	size_t off = 0;

	for (;;) {
		char *h = pb->in + off, *e, *q, *body;
		size_t avail = pb->ilen - off, hl;
		long clen = 0;
		int status;

		if ((e = memmem(h, avail, "\r\n\r\n", 4)) == NULL)
			break;
		hl = (size_t)(e + 4 - h);
		status = avail >= 12 ? atoi(h + 9) : 0;
		for (q = h; q < e; ) {
			char *nl = memmem(q, (size_t)(e + 2 - q), "\r\n", 2);
			if (nl == NULL)
				break;
			if (nl - q > 15 && strncasecmp(q, "content-length:", 15) == 0)
				clen = strtol(q + 15, NULL, 10);
			else if (nl - q > 18 && strncasecmp(q, "transfer-encoding:", 18) == 0)
				pub_error_once("chunked publisher response not supported");
			q = nl + 2;
		}
		if (avail < hl + (size_t)clen)
			break;
		body = h + hl;
		pb->replies++;
		if (status < 200 || status > 299) {
			pb->errors++;
			pub_error_once("publish: HTTP %d: %.*s", status,
			    (int)(clen < 100 ? clen : 100), body);
		} else if ((q = memmem(body, (size_t)clen, "subscribers: ", 13)) != NULL)
			pb->receivers += strtoull(q + 13, NULL, 10);
		off += hl + (size_t)clen;
	}
	if (off) {
		memmove(pb->in, pb->in + off, pb->ilen - off);
		pb->ilen -= off;
	}
}

static void
pub_read(struct pub *pb)
{
	char buf[65536];
	ssize_t n;

	while ((n = recv(pb->fd, buf, sizeof(buf), 0)) > 0) {
		if (opt_nchan) {
			if (pb->ilen + (size_t)n > pb->icap) {
				pb->icap = (pb->ilen + (size_t)n) * 2;
				pb->in = realloc(pb->in, pb->icap);
			}
			memcpy(pb->in + pb->ilen, buf, (size_t)n);
			pb->ilen += (size_t)n;
			http_parse(pb);
			continue;
		}
		for (ssize_t i = 0; i < n; i++) {
			char ch = buf[i];
			if (pb->rtlen == 0 && (ch == ':' || ch == '-')) {
				pb->rtail[0] = ch;
				pb->rtlen = 1;
			} else if (pb->rtlen > 0) {
				if (ch == '\n') {
					pb->rtail[pb->rtlen] = '\0';
					pb->replies++;
					if (pb->rtail[0] == '-') pb->errors++;
					else pb->receivers += strtoull(pb->rtail + 1, NULL, 10);
					pb->rtlen = 0;
				} else if (ch != '\r' && pb->rtlen < sizeof(pb->rtail) - 1)
					pb->rtail[pb->rtlen++] = ch;
			}
		}
	}
	if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR)) {
		/* the server closed the publisher connection: requests not yet
		 * answered are gone (they show up as lost deliveries); reconnect */
		pb->closes++;
		pub_error_once("publisher connection closed after %lu replies (%lu sent)",
		    (unsigned long)pb->replies, (unsigned long)pb->sent);
		close(pb->fd);
		pb->olen = 0;
		pb->ilen = 0;
		pb->rtlen = 0;
		pb->fd = tcp_connect(pb->port);
	}
}

static void
pub_flush(struct pub *pb)
{
	while (pb->olen > 0) {
		ssize_t n = send(pb->fd, pb->out, pb->olen, MSG_NOSIGNAL);
		if (n <= 0)
			break;
		memmove(pb->out, pb->out + n, pb->olen - (size_t)n);
		pb->olen -= (size_t)n;
	}
}

static size_t
pub_backlog(void)
{
	size_t b = 0;
	for (int k = 0; k < npub; k++)
		b += PB[k].olen;
	return b;
}

/*
 * -j: padding that compresses like a real JSON event (records of words and
 * numbers that change from event to event), not like a run of 'x'.
 */
static void
json_pad(char *p, size_t n, uint64_t seq)
{
	static const char *const words[] = { "alpha", "deploy", "status", "running",
	    "eu-west-3", "user", "created", "updated", "build", "ok", "failed", "region",
	    "service", "checkout", "payments", "queued", "node", "replica", "v2.14.1" };
	uint64_t x = seq * 0x9e3779b97f4a7c15ULL + 1;
	size_t off = 0;
	char rec[96];
	int k;

	while (off < n) {
		x ^= x << 13; x ^= x >> 7; x ^= x << 17;
		k = snprintf(rec, sizeof(rec), "id=%lu name=%s-%lu state=%s at=%lu; ",
		    (unsigned long)(x % 100000), words[x % 19], (unsigned long)((x >> 20) % 1000),
		    words[(x >> 8) % 19], (unsigned long)(1700000000 + (x >> 33) % 100000));
		if ((size_t)k > n - off)
			k = (int)(n - off);
		memcpy(p + off, rec, (size_t)k);
		off += (size_t)k;
	}
}

static void
pub_one(uint64_t seq)
{
	char chan[256], pl[4096];
	int cl, pn, need;
	uint64_t ts = real_ns();
	unsigned long ci = (unsigned long)((seq - 1) % (uint64_t)opt_channels);
	struct pub *pb = &PB[ci % (unsigned long)npub];

	cl = snprintf(chan, sizeof(chan), "%s%lu", opt_prefix, ci);
	pn = snprintf(pl, sizeof(pl), "{\"seq\":%lu,\"ts\":%lu,\"pad\":\"", (unsigned long)seq, (unsigned long)ts);
	need = opt_pad - pn - 2;
	if (need < 0) need = 0;
	if (need > (int)sizeof(pl) - pn - 3) need = (int)sizeof(pl) - pn - 3;
	if (opt_jsonpad)
		json_pad(pl + pn, (size_t)need, seq);
	else
		memset(pl + pn, 'x', (size_t)need);
	pn += need;
	pl[pn++] = '"';
	pl[pn++] = '}';
	if (pb->olen + 512 + (size_t)pn > pb->ocap) {
		pb->ocap = (pb->olen + 512 + (size_t)pn) * 2;
		pb->out = realloc(pb->out, pb->ocap);
	}
	if (opt_nchan)
		pb->olen += (size_t)sprintf(pb->out + pb->olen,
		    "POST /pub/%s HTTP/1.1\r\nHost: %s:%d\r\n"
		    "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n",
		    chan, opt_host, opt_port, pn);
	else
		pb->olen += (size_t)sprintf(pb->out + pb->olen,
		    "*3\r\n$7\r\nPUBLISH\r\n$%d\r\n%s\r\n$%d\r\n", cl, chan, pn);
	memcpy(pb->out + pb->olen, pl, (size_t)pn);
	pb->olen += (size_t)pn;
	if (!opt_nchan) {
		memcpy(pb->out + pb->olen, "\r\n", 2);
		pb->olen += 2;
	}
	pb->sent++;
	pub_ts[seq % RING] = ts;
}

static void
print_hist_json(FILE *f, const char *name, const uint64_t *h)
{
	fprintf(f, "\"%s\":{\"n\":%lu,\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,"
	    "\"p999_us\":%.1f,\"max_us\":%.1f}", name, (unsigned long)hcount(h),
	    hpct(h, 50), hpct(h, 90), hpct(h, 99), hpct(h, 99.9), hpct(h, 100));
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: rtload [-m idle|fanout|hs] [-H host] [-p port] [-t] [-e] [-n conns] [-P procs]\n"
	    "  [-c inflight] [-C channels] [-S subs|min-max] [-x prefix] [-d secs] [-r events/s]\n"
	    "  [-w window] [-R redisport] [-s secret] [-T token] [-a naddr] [-L payload]\n"
	    "  [-D drain] [-W connect-timeout] [-Z pid,pid..] [-u path] [-q]\n"
	    "  [-N [-K publisher-conns] [-Q plain-port]]   Nchan: subscribe at /sub/<chan>, POST to\n"
	    "         /pub/<chan> (on -Q's plain port when -t puts the subscribers on TLS)\n"
	    "  [-z]   offer permessage-deflate and inflate compressed events (wire_bytes: as sent)\n"
	    "  [-j]   pad events with JSON-like records (compresses like real events)\n"
	    "  [-X]   send a PROXY v2 header (a synthetic 10.x.y.z source) first, per connection\n"
	    "  [-b]   hs: subscribe to <prefix>0 after 'connected'; a handshake is done at 'subscribed'\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	int ch, i, prefix_set = 0;
	pid_t pids[MAXCHILD];
	struct pstat ps0, ps1, psm;
	struct rusage ru;
	uint64_t t_ready, t_pub0 = 0, t_pub1 = 0, t_drained = 0;
	double conn_secs;

	while ((ch = getopt(argc, argv, "m:H:p:teqn:P:c:C:S:x:d:r:w:R:s:T:a:L:D:W:Z:u:NK:Q:zjXb")) != -1) {
		switch (ch) {
		case 'm':
			if (!strcmp(optarg, "idle")) opt_mode = M_IDLE;
			else if (!strcmp(optarg, "fanout")) opt_mode = M_FANOUT;
			else if (!strcmp(optarg, "hs")) opt_mode = M_HS;
			else usage();
			break;
		case 'H': opt_host = optarg; break;
		case 'p': opt_port = atoi(optarg); break;
		case 't': opt_tls = 1; break;
		case 'e': opt_resume = 1; break;
		case 'q': opt_quiet = 1; break;
		case 'n': opt_n = atol(optarg); break;
		case 'P': opt_procs = atoi(optarg); break;
		case 'c': opt_conc = atoi(optarg); break;
		case 'C': opt_channels = atol(optarg); break;
		case 'S':
			if (sscanf(optarg, "%d-%d", &opt_smin, &opt_smax) != 2)
				opt_smin = opt_smax = atoi(optarg);
			break;
		case 'x': opt_prefix = optarg; prefix_set = 1; break;
		case 'd': opt_dur = atof(optarg); break;
		case 'r': opt_rate = atof(optarg); break;
		case 'w': opt_window = atoi(optarg); break;
		case 'R': opt_rport = atoi(optarg); break;
		case 's': opt_secret = optarg; break;
		case 'T': opt_token = optarg; break;
		case 'a': opt_naddr = atoi(optarg); break;
		case 'L': opt_pad = atoi(optarg); break;
		case 'D': opt_drain = atof(optarg); break;
		case 'W': opt_conn_timeout = atof(optarg); break;
		case 'Z': opt_pids = optarg; break;
		case 'u': opt_path = optarg; break;
		case 'N': opt_nchan = 1; break;
		case 'K': opt_npub = atoi(optarg); break;
		case 'Q': opt_npubport = atoi(optarg); break;
		case 'z': opt_deflate = 1; break;
		case 'j': opt_jsonpad = 1; break;
		case 'X': opt_proxy = 1; break;
		case 'b': opt_hs_sub = 1; break;
		default: usage();
		}
	}
	if (opt_procs < 1 || opt_procs > MAXCHILD || opt_n < 1 || opt_channels < 1 ||
	    opt_naddr < 1 || opt_naddr > 254 || opt_window >= RING / 2)
		usage();
	if (opt_smin < 0) {	/* default: every connection subscribes once */
		opt_smin = opt_smax = (int)(opt_n / opt_channels > 0 ? opt_n / opt_channels : 1);
	}
	if (opt_smax > opt_n)
		die("more subscribers per channel (%d) than connections (%ld)", opt_smax, opt_n);
	if (opt_nchan) {
		if (opt_mode != M_HS && plan_total_subs() > opt_n)
			die("-N: Nchan subscribes one channel per connection; "
			    "total subscriptions (%ld) exceed connections (%ld)", plan_total_subs(), opt_n);
		if (opt_npub < 1 || opt_npub > 64)
			usage();
		if (!prefix_set)
			opt_prefix = "bench";	/* nginx location regex: [A-Za-z0-9_] */
	} else
		opt_npub = 1;
	if (opt_mode != M_HS && (double)plan_total_subs() / (double)opt_n > 100)
		die("more than 100 subscriptions per connection");
	if (opt_mode == M_HS && opt_procs * opt_conc > 20000)
		die("too many handshakes in flight");
	if (opt_mode != M_HS && opt_n / opt_procs > 19000)
		die("%ld connections per process exceed the fd limit; use -P", opt_n / opt_procs);
	signal(SIGPIPE, SIG_IGN);

	G = mmap(NULL, sizeof(*G), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CH = mmap(NULL, sizeof(*CH) * (size_t)opt_procs, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (G == MAP_FAILED || CH == MAP_FAILED)
		die("mmap");

	uint64_t t_start = mono_ns();
	for (i = 0; i < opt_procs; i++) {
		long first = opt_n * i / opt_procs, last = opt_n * (i + 1) / opt_procs;
		if ((pids[i] = fork()) == 0)
			child_main(i, first, last - first);
		if (pids[i] == -1)
			die("fork");
	}

	uint64_t *hist_last = calloc(NB, sizeof(uint64_t));
	uint64_t gdone = 0, expected_total = 0, pub_stalls = 0;
	double hold_rss = 0, hold_shm = 0, hold_pss = 0, server_cpu = -1;
	double pub_secs = 0, host_busy = -1;

	if (opt_mode == M_HS) {
		sample_pids(&ps0);
		t_pub0 = mono_ns();
		__atomic_store_n(&G->go, 1, __ATOMIC_RELEASE);
		while (mono_ns() - t_pub0 < (uint64_t)(opt_dur * 1e9))
			usleep(20000);
		__atomic_store_n(&G->stop, 1, __ATOMIC_RELEASE);
		t_pub1 = mono_ns();
		sample_pids(&ps1);
		server_cpu = cpu_delta(&ps0, &ps1);
		host_busy = ps1.host_busy_s - ps0.host_busy_s;
		pub_secs = (double)(t_pub1 - t_pub0) / 1e9;
		t_ready = t_pub0;
		goto collect;
	}

	/* connect phase */
	for (;;) {
		int all = 1;
		for (i = 0; i < opt_procs; i++)
			if (!__atomic_load_n(&CH[i].ready, __ATOMIC_ACQUIRE)) all = 0;
		if (all)
			break;
		usleep(20000);
	}
	t_ready = mono_ns();
	conn_secs = (double)(t_ready - t_start) / 1e9;
	{
		uint64_t ready = 0, failed = 0;
		for (i = 0; i < opt_procs; i++) {
			ready += CH[i].ready_conns;
			failed += CH[i].failed;
		}
		logmsg("connected %lu/%ld (failed %lu) in %.1fs", (unsigned long)ready, opt_n,
		    (unsigned long)failed, conn_secs);
	}

	if (opt_mode == M_IDLE) {
		uint64_t hold = (uint64_t)(opt_dur * 1e9);
		int sampled = 0;
		sample_pids(&ps0);
		while (mono_ns() - t_ready < hold) {
			usleep(50000);
			if (!sampled && mono_ns() - t_ready > hold / 2) {
				sample_pids(&psm);
				hold_rss = psm.rss_kb;
				hold_shm = psm.shm_kb;
				hold_pss = psm.pss_kb;
				sampled = 1;
			}
		}
		sample_pids(&ps1);
		if (!sampled) {
			hold_rss = ps1.rss_kb;
			hold_shm = ps1.shm_kb;
			hold_pss = ps1.pss_kb;
		}
		server_cpu = cpu_delta(&ps0, &ps1);
		host_busy = ps1.host_busy_s - ps0.host_busy_s;
		t_pub0 = t_ready;
		t_pub1 = mono_ns();
		pub_secs = (double)(t_pub1 - t_pub0) / 1e9;
		__atomic_store_n(&G->stop, 1, __ATOMIC_RELEASE);
		goto collect;
	}

	/* fan-out: publish */
	if (opt_rport == 0 && !opt_nchan)
		die("fanout needs -R redis port (or -N)");
	npub = opt_npub;
	PB = calloc((size_t)npub, sizeof(*PB));
	for (i = 0; i < npub; i++) {
		PB[i].port = opt_nchan ? (opt_npubport > 0 ? opt_npubport : opt_port) : opt_rport;
		PB[i].fd = tcp_connect(PB[i].port);
	}
	usleep(200000);		/* let the last SUBSCRIBE reach every worker's index */
	sample_pids(&ps0);
	t_pub0 = mono_ns();
	{
		uint64_t seq = 0, last_progress = mono_ns(), last_log = t_pub0;
		uint64_t dur = (uint64_t)(opt_dur * 1e9), drain = (uint64_t)(opt_drain * 1e9);
		int publishing = 1;

		for (;;) {
			uint64_t now = mono_ns();
			if (publishing && now - t_pub0 >= dur) {
				publishing = 0;
				t_pub1 = now;
				sample_pids(&ps1);	/* refined after drain below */
			}
			if (publishing) {
				uint64_t target, lim;
				if (opt_rate > 0) {
					target = (uint64_t)(opt_rate * (double)(now - t_pub0) / 1e9) + 1;
					lim = gdone + RING / 2;
				} else {
					target = gdone + (uint64_t)opt_window;
					lim = target;
				}
				if (target > lim) {
					pub_stalls++;
					target = lim;
				}
				int batch = 0;
				while (seq < target && batch < 2000 && pub_backlog() < (8u << 20)) {
					seq++;
					batch++;
					pub_one(seq);
					expected_total += (uint64_t)subs_of_channel((long)((seq - 1) % (uint64_t)opt_channels));
				}
				__atomic_store_n(&G->pub_seq, seq, __ATOMIC_RELEASE);
				for (i = 0; i < npub; i++)
					pub_flush(&PB[i]);
			}
			for (i = 0; i < npub; i++) {
				if (PB[i].olen)
					pub_flush(&PB[i]);
				pub_read(&PB[i]);
			}
			/* global completion */
			for (;;) {
				uint64_t s = gdone + 1, mx = 0;
				int ok = s <= seq;
				for (i = 0; ok && i < opt_procs; i++) {
					if (__atomic_load_n(&CH[i].done, __ATOMIC_ACQUIRE) < s)
						ok = 0;
					else if (CH[i].done_at[s % RING] > mx)
						mx = CH[i].done_at[s % RING];
				}
				if (!ok)
					break;
				if (mx > pub_ts[s % RING])
					hist_last[hidx((mx - pub_ts[s % RING]) / 1000)]++;
				gdone = s;
				last_progress = now;
			}
			if (!publishing) {
				if (gdone >= seq || now - last_progress > drain)
					break;
			} else if (opt_rate <= 0 && now - last_progress > drain) {
				logmsg("no delivery progress for %.1fs: stopping", opt_drain);
				publishing = 0;
				t_pub1 = now;
				sample_pids(&ps1);
				break;
			}
			if (now - last_log > 5000000000ull) {
				uint64_t ev = 0;
				for (i = 0; i < opt_procs; i++) ev += CH[i].events;
				logmsg("t=%.0fs published %lu, complete %lu, deliveries %lu",
				    (double)(now - t_pub0) / 1e9, (unsigned long)seq,
				    (unsigned long)gdone, (unsigned long)ev);
				last_log = now;
			}
			if (opt_rate > 0 || seq >= gdone + (uint64_t)opt_window || !publishing) {
				struct timespec ts = { 0, 100000 };
				nanosleep(&ts, NULL);
			}
		}
		t_drained = mono_ns();
		struct pstat ps2;
		sample_pids(&ps2);
		/* CPU over publish + drain, so late deliveries are paid for */
		server_cpu = cpu_delta(&ps0, &ps2);
		host_busy = ps2.host_busy_s - ps0.host_busy_s;
		pub_secs = (double)(t_pub1 - t_pub0) / 1e9;
		usleep(100000);
		for (i = 0; i < npub; i++)
			pub_read(&PB[i]);
	}
	__atomic_store_n(&G->stop, 1, __ATOMIC_RELEASE);

collect:
	for (i = 0; i < opt_procs; i++) {
		int st;
		uint64_t until = mono_ns() + 20000000000ull;
		while (waitpid(pids[i], &st, WNOHANG) == 0 && mono_ns() < until)
			usleep(10000);
		kill(pids[i], SIGKILL);
		waitpid(pids[i], &st, WNOHANG);
	}
	getrusage(RUSAGE_CHILDREN, &ru);
	double gen_cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	getrusage(RUSAGE_SELF, &ru);
	gen_cpu += (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;

	/* aggregate */
	struct child_sh tot;
	memset(&tot, 0, sizeof(tot));
	for (i = 0; i < opt_procs; i++) {
		struct child_sh *s = &CH[i];
		tot.started += s->started; tot.connected += s->connected; tot.failed += s->failed;
		tot.retries += s->retries; tot.ready_conns += s->ready_conns;
		tot.subscribed += s->subscribed; tot.sub_errors += s->sub_errors;
		tot.auth_errors += s->auth_errors; tot.proto_errors += s->proto_errors;
		tot.server_closes += s->server_closes; tot.resets += s->resets;
		tot.events += s->events; tot.event_bytes += s->event_bytes; tot.late += s->late;
		tot.wire_bytes += s->wire_bytes; tot.zframes += s->zframes; tot.zerrors += s->zerrors;
		tot.pings += s->pings; tot.other_msgs += s->other_msgs; tot.ooo += s->ooo;
		tot.hs_done += s->hs_done; tot.hs_fail += s->hs_fail; tot.hs_resumed += s->hs_resumed;
		if (s->last_close_code) tot.last_close_code = s->last_close_code;
		if (!tot.first_error[0] && s->first_error[0])
			memcpy(tot.first_error, s->first_error, sizeof(tot.first_error));
		for (int b = 0; b < NB; b++) {
			tot.hist[b] += s->hist[b];
			tot.hs_hist[b] += s->hs_hist[b];
		}
	}
	if (!tot.first_error[0] && pub_error[0])
		snprintf(tot.first_error, sizeof(tot.first_error), "%s", pub_error);
	for (char *p = tot.first_error; *p; p++)
		if (*p == '"' || *p == '\\' || (unsigned char)*p < 32) *p = '\'';
	for (char *p = pub_error; *p; p++)
		if (*p == '"' || *p == '\\' || (unsigned char)*p < 32) *p = '\'';

	printf("{\"mode\":\"%s\",\"tls\":%d,\"resume\":%d,\"conns\":%ld,\"procs\":%d,"
	    "\"channels\":%ld,\"subs_per_channel\":\"%d-%d\",\"total_subs\":%ld,",
	    opt_mode == M_IDLE ? "idle" : opt_mode == M_HS ? "hs" : "fanout",
	    opt_tls, opt_resume, opt_n, opt_procs, opt_channels, opt_smin, opt_smax,
	    opt_mode == M_HS ? 0 : plan_total_subs());
	printf("\"connect_secs\":%.2f,\"open\":%lu,\"connected\":%lu,\"failed\":%lu,\"retries\":%lu,"
	    "\"subscribed\":%lu,\"sub_errors\":%lu,\"auth_errors\":%lu,\"proto_errors\":%lu,"
	    "\"server_closes\":%lu,\"last_close_code\":%lu,\"resets\":%lu,\"pings\":%lu,"
	    "\"other_msgs\":%lu,",
	    (double)(t_ready - t_start) / 1e9, (unsigned long)tot.ready_conns,
	    (unsigned long)tot.connected, (unsigned long)tot.failed, (unsigned long)tot.retries,
	    (unsigned long)tot.subscribed, (unsigned long)tot.sub_errors,
	    (unsigned long)tot.auth_errors, (unsigned long)tot.proto_errors,
	    (unsigned long)tot.server_closes, (unsigned long)tot.last_close_code,
	    (unsigned long)tot.resets, (unsigned long)tot.pings, (unsigned long)tot.other_msgs);
	printf("\"phase_secs\":%.3f,\"server_cpu_s\":%.2f,\"gen_cpu_s\":%.2f,\"host_busy_cpu_s\":%.2f,",
	    pub_secs, server_cpu, gen_cpu, host_busy);
	printf("\"server_cpu_by_pid\":[");
	for (i = 0; i < npid_cpu; i++)
		printf("%s%.3f", i ? "," : "", pid_cpu_delta[i]);
	printf("],");
	if (opt_mode == M_IDLE)
		printf("\"server_rss_kb\":%.0f,\"server_shmem_kb\":%.0f,\"server_pss_kb\":%.0f,"
		    "\"server_procs\":%d,", hold_rss, hold_shm, hold_pss, ps0.n);
	if (opt_mode == M_FANOUT) {
		double drained_secs = (double)(t_drained - t_pub0) / 1e9;
		uint64_t seq = G->pub_seq;
		long long lost = (long long)expected_total - (long long)tot.events;
		uint64_t replies = 0, perrs = 0, receivers = 0, pcloses = 0;
		for (i = 0; i < npub; i++) {
			replies += PB[i].replies;
			perrs += PB[i].errors;
			receivers += PB[i].receivers;
			pcloses += PB[i].closes;
		}
		/* redis_* keep their names; with -N they count HTTP responses
		 * (non-2xx = error, receivers = "active subscribers" reported) */
		printf("\"publisher\":\"%s\",\"pub_conns\":%d,\"pub_closes\":%lu,\"pub_error\":\"%s\",",
		    opt_nchan ? "http" : "redis", npub, (unsigned long)pcloses, pub_error);
		printf("\"published\":%lu,\"redis_replies\":%lu,\"redis_errors\":%lu,\"redis_receivers\":%lu,"
		    "\"expected\":%lu,\"delivered\":%lu,\"lost\":%lld,\"late\":%lu,\"ooo\":%lu,"
		    "\"complete_seqs\":%lu,\"pub_stalls\":%lu,\"drained_secs\":%.3f,"
		    "\"events_per_s\":%.1f,\"deliveries_per_s\":%.1f,\"deliveries_per_server_cpu_s\":%.1f,",
		    (unsigned long)seq, (unsigned long)replies, (unsigned long)perrs,
		    (unsigned long)receivers, (unsigned long)expected_total,
		    (unsigned long)tot.events, lost, (unsigned long)tot.late, (unsigned long)tot.ooo,
		    (unsigned long)gdone, (unsigned long)pub_stalls, drained_secs,
		    (double)seq / drained_secs, (double)tot.events / drained_secs,
		    server_cpu > 0 ? (double)tot.events / server_cpu : 0);
		printf("\"deflate\":%d,\"event_bytes\":%lu,\"wire_bytes\":%lu,\"compressed_frames\":%lu,"
		    "\"inflate_errors\":%lu,\"wire_bytes_per_delivery\":%.1f,",
		    opt_deflate, (unsigned long)tot.event_bytes, (unsigned long)tot.wire_bytes,
		    (unsigned long)tot.zframes, (unsigned long)tot.zerrors,
		    tot.events ? (double)tot.wire_bytes / (double)tot.events : 0);
		print_hist_json(stdout, "lat_each", tot.hist);
		putchar(',');
		print_hist_json(stdout, "lat_last", hist_last);
		putchar(',');
	}
	if (opt_mode == M_HS) {
		printf("\"hs_started\":%lu,\"hs_done\":%lu,\"hs_fail\":%lu,\"hs_resumed\":%lu,"
		    "\"hs_per_s\":%.1f,\"server_cpu_us_per_hs\":%.1f,",
		    (unsigned long)tot.started, (unsigned long)tot.hs_done,
		    (unsigned long)tot.hs_fail, (unsigned long)tot.hs_resumed,
		    (double)tot.hs_done / pub_secs,
		    tot.hs_done ? server_cpu * 1e6 / (double)tot.hs_done : 0);
		print_hist_json(stdout, "hs_lat", tot.hs_hist);
		putchar(',');
	}
	printf("\"first_error\":\"%s\"}\n", tot.first_error);
	fflush(stdout);
	return 0;
}

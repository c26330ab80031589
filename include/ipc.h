#ifndef RT_IPC_H
#define RT_IPC_H

/*
 * Framed messages between our processes over socketpair(AF_UNIX,
 * SOCK_STREAM): a fixed header, then len bytes.  A malformed message from
 * one of our own processes is a bug: the receiver logs it and exits, and the
 * master respawns it.
 */
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "realtimed.h"

#define IPC_VERSION		7
#define IPC_MAX_PAYLOAD		(1U << 30)	/* 1 GiB: events can be megabytes */
#define IPC_CTL_MAX		(192 * 1024)	/* a master <-> child message */
#define IPC_PUB_MAX		(2 + 255 + 16 * 1024 * 1024)	/* an IPC_PUB_REQ, max_publish_body's cap */

struct ipc_hdr {
	uint32_t	 type;
	uint32_t	 len;		/* payload bytes after the header */
	uint32_t	 peerid;	/* worker index, or 0 */
	uint32_t	 pid;		/* sender */
};

enum ipc_type {
	/* process control, master <-> children */
	IPC_HELLO		= 1,	/* child -> master: running; payload ipc_hello */
	IPC_SHUTDOWN		= 2,	/* master -> child: graceful stop */
	IPC_BRIDGE_FD		= 3,	/* master -> worker: new bridge socket (SCM_RIGHTS) */
	IPC_WORKER_FD		= 4,	/* master -> bridge: socket of worker peerid */
	IPC_LOG_REOPEN		= 5,	/* master -> child: reopen log_file (SIGUSR1) */

	/* configuration */
	IPC_CFG_RELOAD		= 100,	/* master -> child: new settings (config text) */
	IPC_CFG_TLS		= 101,	/* master -> worker: uint32 certlen, cert PEM, key PEM */
	IPC_CFG_ACK		= 102,	/* child -> master: ipc_cfg_ack, then the reason */

	/* admin and control */
	IPC_CTL_KICK		= 200,	/* master -> worker: close connection (id) */
	IPC_CTL_KICK_USER	= 201,	/* master -> worker: close a user's connections */
	IPC_CTL_PUBLISH		= 202,	/* master -> bridge: peerid = request; uint16 len, channel, JSON */
	IPC_CTL_PUBLISH_REPLY	= 203,	/* bridge -> master: int64 receivers, or error text */
	IPC_CTL_REVOKE		= 204,	/* master -> worker: check connections against the revocations */
	IPC_CTL_CONTROL		= 205,	/* master -> bridge: peerid = request; ipc_control */
	IPC_CTL_CONTROL_REPLY	= 206,	/* bridge -> master: 'N' int64 nodes reached, or 'E' text */
	IPC_CTL_APPLY		= 207,	/* bridge -> master: ipc_control another node sent */
	IPC_CTL_SYNC		= 208,	/* bridge -> master: revocations from Redis, see below */
	IPC_CTL_NODES		= 209,	/* master -> bridge: peerid = request */
	IPC_CTL_NODES_REPLY	= 210,	/* bridge -> master: 'J' JSON array, or 'E' text */

	/* events, bridge -> worker */
	IPC_EVENT		= 300,	/* struct ipc_event, below */
	IPC_CANARY		= 301,	/* uint64 sequence number */

	/*
	 * positions (peerid: the worker's request id): a worker asks for a
	 * channel's position, maybe with a replay; the bridge answers
	 * IPC_POS, then one IPC_REPLAY per replayed event, then
	 * IPC_POS_END, all in its event stream, so nothing live comes
	 * between.
	 */
	IPC_POS_REQ		= 310,	/* worker -> bridge: struct ipc_pos */
	IPC_POS			= 311,	/* bridge -> worker: struct ipc_pos */
	IPC_REPLAY		= 312,	/* bridge -> worker: a WebSocket frame */
	IPC_POS_END		= 313,	/* bridge -> worker: (empty) */
	/*
	 * bridge -> worker (empty): a position may have changed without an
	 * event (history records dropped, an epoch reset, a position read
	 * from Redis): what the worker learnt of positions from the stream
	 * before this is no longer to be given out.
	 */
	IPC_POS_RESET		= 314,
	/* POST /publish: the same path as the admin's publish */
	IPC_PUB_REQ		= 320,	/* worker -> bridge: peerid = request; uint16 len, channel, JSON */
	IPC_PUB_REPLY		= 321,	/* bridge -> worker: int64 receivers, offset; or error text */
};

/*
 * A position on the wire: uint64 offset, uint8 flag, uint8 epoch length,
 * uint16 channel length, epoch, channel.  In a request, flag 1 means
 * "replay what follows offset in epoch"; in an answer, flag is
 * IPC_POS_RECOVERED, IPC_POS_UNRECOVERED, IPC_POS_PLAIN (no since) or
 * IPC_POS_TOO_LARGE, and an empty epoch means the channel has no history.
 */
enum { IPC_POS_UNRECOVERED = 0, IPC_POS_RECOVERED = 1, IPC_POS_PLAIN = 2,
	IPC_POS_TOO_LARGE = 3,		/* the replay is over max_output_buffer */
	IPC_POS_REFUSED = 4 };		/* on_demand: over redis_subscriptions_max */
#define IPC_POS_MAX	(12 + 255 + RT_CHANNEL_MAX)

struct ipc_pos {
	uint64_t	 ip_offset;
	uint8_t		 ip_flag;
	const char	*ip_epoch;
	size_t		 ip_epochlen;
	const char	*ip_channel;
	size_t		 ip_chlen;
};
/* Encode into out (IPC_POS_MAX bytes); its length. */
size_t	ipc_pos_encode(uint8_t *out, const struct ipc_pos *pos);
/* Decode in place: 0, or -1 when malformed. */
int	ipc_pos_decode(const uint8_t *p, size_t len, struct ipc_pos *pos);

/*
 * An admin command for every node (control.h): the master asks its bridge
 * to sign and publish it (IPC_CTL_CONTROL), and a bridge hands on what it
 * verified from another node, or read back from Redis (IPC_CTL_APPLY,
 * ic_sync set while a full reload of the revocations is under way).
 * Followed by ic_len bytes of the argument.
 */
struct ipc_control {
	uint8_t		 ic_cmd;	/* enum ctl_cmd */
	uint8_t		 ic_sync;
	uint16_t	 ic_len;
	uint32_t	 ic_pad;
	int64_t		 ic_until;	/* revoke: Unix s */
};
#define IPC_CONTROL_MAX	(sizeof(struct ipc_control) + 255)

/* Fill out (IPC_CONTROL_MAX bytes); its length, 0 when arg is too long. */
size_t	ipc_control_encode(uint8_t *out, int cmd, int sync, int64_t until,
	    const char *arg, size_t len);
/* Check one: 0 with *ic and the NUL-ended argument in arg (256 bytes), or -1. */
int	ipc_control_decode(const uint8_t *p, size_t len, struct ipc_control *ic,
	    char *arg);

/*
 * IPC_CTL_SYNC: the revocations read back from Redis (between BEGIN and
 * END), and the bridge's echo of the master's own revoke and unrevoke.
 * One byte, the phase, then for IPC_SYNC_ENTRIES whole ipc_sync_entry
 * records: until > 0 revokes, 0 unrevokes.  Nothing is dropped for not
 * being named: Redis holds the last word per jti, not the whole list.
 */
enum { IPC_SYNC_BEGIN = 0, IPC_SYNC_ENTRIES = 1, IPC_SYNC_END = 2,
	IPC_SYNC_ABORT = 3 };	/* the read failed: drop nothing */
struct ipc_sync_entry {
	uint8_t		 se_digest[16];		/* rvk_digest() of the jti */
	int64_t		 se_until;
};
#define IPC_SYNC_BATCH	4096	/* entries per message */

struct ipc_hello {
	uint32_t	 ih_version;
	uint32_t	 ih_role;	/* 0 worker, 1 bridge */
};

/*
 * The answer to each IPC_CFG_RELOAD and IPC_CFG_TLS: peerid repeats the
 * request's (the master's reload generation), ca_type names the request,
 * and a refusal carries its reason (at most IPC_ACK_REASON_MAX bytes) after
 * the struct.
 */
#define IPC_ACK_REASON_MAX	200

struct ipc_cfg_ack {
	uint32_t	 ca_type;	/* IPC_CFG_RELOAD or IPC_CFG_TLS */
	uint32_t	 ca_ok;		/* 1 applied, 0 refused */
};

/* What ipc_parse() found at the front of a buffer. */
enum ipc_parse_result {
	IPC_PARSE_NEED_MORE = 0,
	IPC_PARSE_OK = 1,
	IPC_PARSE_BAD = -1,	/* unknown type or oversized length */
};

/*
 * Check the header at the front of buf (len bytes available): on OK, *hdr
 * is filled and the whole message (sizeof header + hdr->len) is available.
 */
int	ipc_parse(const void *buf, size_t len, struct ipc_hdr *hdr);
/* 1 if type is one of the enum's values. */
int	ipc_type_known(uint32_t type);
/* Fill a header. */
void	ipc_hdr_init(struct ipc_hdr *h, uint32_t type, uint32_t len, uint32_t peerid);

/*
 * Control messages between the master and a child travel whole over a
 * SOCK_SEQPACKET socketpair, optionally with one fd (SCM_RIGHTS).
 * ipc_send: 0 or -1.  ipc_recv (non-blocking): bytes received including
 * the header (payload length is hdr->len), 0 on EOF,
 * -1 with errno (EAGAIN: nothing yet; EBADMSG: malformed).  *fd is the
 * received descriptor or -1.
 */
int	ipc_send(int sock, uint32_t type, uint32_t peerid, const void *data,
	    size_t len, int fd);
ssize_t	ipc_recv(int sock, struct ipc_hdr *hdr, void *buf, size_t buflen, int *fd);

/*
 * Answer the configuration request req: rv 0 applied, -1 refused for why.
 * 0 or -1, as ipc_send().
 */
int	ipc_cfg_ack(int sock, const struct ipc_hdr *req, int rv, const char *why);
/*
 * Check an IPC_CFG_ACK payload: 0 with *ack filled and the reason (not
 * NUL-terminated, possibly empty) in *why / *whylen; -1 when malformed.
 */
int	ipc_cfg_ack_parse(const void *p, size_t len, struct ipc_cfg_ack *ack,
	    const char **why, size_t *whylen);

/*
 * Event payload: uint64 when the bridge received it (util_now_us(), one
 * clock for every process), uint16 channel length, channel, the event's
 * position (uint64 offset, uint8 epoch length, epoch; length 0: the event
 * has none), uint32 length of the compressed frame, the plain frame, then
 * the compressed frame (permessage-deflate, RSV1 set), built once for the
 * worker's subscribers that negotiated it; length 0: none.
 */
struct ipc_event {
	uint64_t	 ie_received_us;
	const char	*ie_channel;
	size_t		 ie_chlen;
	const uint8_t	*ie_frame;
	size_t		 ie_framelen;
	const uint8_t	*ie_zframe;	/* NULL: no compressed frame */
	size_t		 ie_zframelen;
	const char	*ie_epoch;	/* not NUL-terminated; length 0: no position */
	size_t		 ie_epochlen;
	uint64_t	 ie_offset;
};
#define IPC_EPOCH_MAX		32
#define IPC_EVENT_PREFIX_MAX	(8 + 2 + RT_CHANNEL_MAX + 8 + 1 + IPC_EPOCH_MAX + 4)
/*
 * Encode the prefix into out (IPC_EVENT_PREFIX_MAX bytes); its length.
 * epoch NULL (or longer than IPC_EPOCH_MAX): no position.
 */
size_t	ipc_event_prefix(uint8_t *out, uint64_t received_us, const char *channel,
	    size_t chlen, const char *epoch, uint64_t offset, size_t zlen);
/* Decode an event payload in place: 0, or -1 when malformed. */
int	ipc_event_split(const uint8_t *p, size_t len, struct ipc_event *ev);

#endif

/*
 * IPC framing; see ipc.h.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "ipc.h"
#include "realtimed.h"

int
ipc_type_known(uint32_t type)
{
	switch (type) {
	case IPC_HELLO:
	case IPC_SHUTDOWN:
	case IPC_BRIDGE_FD:
	case IPC_WORKER_FD:
	case IPC_LOG_REOPEN:
	case IPC_CFG_RELOAD:
	case IPC_CFG_TLS:
	case IPC_CFG_ACK:
	case IPC_CTL_KICK:
	case IPC_CTL_KICK_USER:
	case IPC_CTL_PUBLISH:
	case IPC_CTL_PUBLISH_REPLY:
	case IPC_CTL_REVOKE:
	case IPC_CTL_CONTROL:
	case IPC_CTL_CONTROL_REPLY:
	case IPC_CTL_APPLY:
	case IPC_CTL_SYNC:
	case IPC_CTL_NODES:
	case IPC_CTL_NODES_REPLY:
	case IPC_EVENT:
	case IPC_CANARY:
	case IPC_POS_REQ:
	case IPC_POS:
	case IPC_REPLAY:
	case IPC_POS_END:
	case IPC_POS_RESET:
	case IPC_PUB_REQ:
	case IPC_PUB_REPLY:
		return 1;
	}
	return 0;
}

size_t
ipc_control_encode(uint8_t *out, int cmd, int sync, int64_t until, const char *arg,
    size_t len)
{
	struct ipc_control	 ic;

	if (len > IPC_CONTROL_MAX - sizeof(ic))
		return 0;
	memset(&ic, 0, sizeof(ic));
	ic.ic_cmd = (uint8_t)cmd;
	ic.ic_sync = (uint8_t)(sync != 0);
	ic.ic_len = (uint16_t)len;
	ic.ic_until = until;
	memcpy(out, &ic, sizeof(ic));
	memcpy(out + sizeof(ic), arg, len);
	return sizeof(ic) + len;
}

int
ipc_control_decode(const uint8_t *p, size_t len, struct ipc_control *ic, char *arg)
{
	if (len < sizeof(*ic))
		return -1;
	memcpy(ic, p, sizeof(*ic));
	if (ic->ic_len != len - sizeof(*ic) || ic->ic_len > IPC_CONTROL_MAX - sizeof(*ic) ||
	    memchr(p + sizeof(*ic), '\0', ic->ic_len) != NULL)
		return -1;
	memcpy(arg, p + sizeof(*ic), ic->ic_len);
	arg[ic->ic_len] = '\0';
	return 0;
}

/*
 * The sender's pid, read once per process: getpid() is a system call, and
 * the bridge stamps every event with it.  A forked child forgets it.
 */
static uint32_t		ipc_pid;
static int		ipc_pid_watched;
static pthread_once_t	ipc_pid_once = PTHREAD_ONCE_INIT;

static void
ipc_forked(void)
{
	ipc_pid = 0;
}

static void
ipc_pid_watch(void)
{
	ipc_pid_watched = pthread_atfork(NULL, NULL, ipc_forked) == 0;
}

/* Our pid, without a system call once the fork watch is in place. */
static uint32_t
ipc_self(void)
{
	pthread_once(&ipc_pid_once, ipc_pid_watch);
	if (!ipc_pid_watched)
		return (uint32_t)getpid();
	if (ipc_pid == 0)
		ipc_pid = (uint32_t)getpid();
	return ipc_pid;
}

void
ipc_hdr_init(struct ipc_hdr *h, uint32_t type, uint32_t len, uint32_t peerid)
{
	h->type = type;
	h->len = len;
	h->peerid = peerid;
	h->pid = ipc_self();
}

int
ipc_parse(const void *buf, size_t len, struct ipc_hdr *hdr)
{
	if (len < sizeof(*hdr))
		return IPC_PARSE_NEED_MORE;
	memcpy(hdr, buf, sizeof(*hdr));
	if (!ipc_type_known(hdr->type) || hdr->len > IPC_MAX_PAYLOAD)
		return IPC_PARSE_BAD;
	if (len - sizeof(*hdr) < hdr->len)
		return IPC_PARSE_NEED_MORE;
	return IPC_PARSE_OK;
}

int
ipc_send(int sock, uint32_t type, uint32_t peerid, const void *data, size_t len, int fd)
{
	struct ipc_hdr	 h;
	struct msghdr	 msg;
	struct iovec	 iov[2];
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int))];
	} cmsgbuf;
	struct cmsghdr	*cmsg;
	ssize_t		 n;

	ipc_hdr_init(&h, type, (uint32_t)len, peerid);
	memset(&msg, 0, sizeof(msg));
	memset(&cmsgbuf, 0, sizeof(cmsgbuf));
	iov[0].iov_base = &h;
	iov[0].iov_len = sizeof(h);
	iov[1].iov_base = (void *)(uintptr_t)data;
	iov[1].iov_len = len;
	msg.msg_iov = iov;
	msg.msg_iovlen = len > 0 ? 2 : 1;
	if (fd != -1) {
		msg.msg_control = cmsgbuf.buf;
		msg.msg_controllen = sizeof(cmsgbuf.buf);
		cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
	}
	do {
		n = sendmsg(sock, &msg, MSG_NOSIGNAL);
	} while (n == -1 && errno == EINTR);
	return n == (ssize_t)(sizeof(h) + len) ? 0 : -1;
}

ssize_t
ipc_recv(int sock, struct ipc_hdr *hdr, void *buf, size_t buflen, int *fd)
{
	struct msghdr	 msg;
	struct iovec	 iov[2];
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int))];
	} cmsgbuf;
	struct cmsghdr	*cmsg;
	ssize_t		 n;

	*fd = -1;
	memset(&msg, 0, sizeof(msg));
	iov[0].iov_base = hdr;
	iov[0].iov_len = sizeof(*hdr);
	iov[1].iov_base = buf;
	iov[1].iov_len = buflen;
	msg.msg_iov = iov;
	msg.msg_iovlen = 2;
	msg.msg_control = cmsgbuf.buf;
	msg.msg_controllen = sizeof(cmsgbuf.buf);
	do {
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	} while (n == -1 && errno == EINTR);
	for (cmsg = CMSG_FIRSTHDR(&msg); n > 0 && cmsg != NULL;
	    cmsg = CMSG_NXTHDR(&msg, cmsg))
		if (cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS)
			memcpy(fd, CMSG_DATA(cmsg), sizeof(int));
	if (n <= 0)
		return n;
	if ((size_t)n < sizeof(*hdr) || (msg.msg_flags & MSG_TRUNC) ||
	    !ipc_type_known(hdr->type) || hdr->len != (size_t)n - sizeof(*hdr)) {
		errno = EBADMSG;
		return -1;
	}
	return n;
}

int
ipc_cfg_ack(int sock, const struct ipc_hdr *req, int rv, const char *why)
{
	struct ipc_cfg_ack	 ack;
	char			 buf[sizeof(ack) + IPC_ACK_REASON_MAX];
	size_t			 n = 0;

	ack.ca_type = req->type;
	ack.ca_ok = rv == 0;
	if (rv != 0 && why != NULL)
		for (n = 0; n < IPC_ACK_REASON_MAX && why[n] != '\0'; n++)
			;
	memcpy(buf, &ack, sizeof(ack));
	if (n > 0)
		memcpy(buf + sizeof(ack), why, n);
	return ipc_send(sock, IPC_CFG_ACK, req->peerid, buf, sizeof(ack) + n, -1);
}

int
ipc_cfg_ack_parse(const void *p, size_t len, struct ipc_cfg_ack *ack,
    const char **why, size_t *whylen)
{
	if (len < sizeof(*ack) || len - sizeof(*ack) > IPC_ACK_REASON_MAX)
		return -1;
	memcpy(ack, p, sizeof(*ack));
	if ((ack->ca_type != IPC_CFG_RELOAD && ack->ca_type != IPC_CFG_TLS) ||
	    ack->ca_ok > 1 || (ack->ca_ok && len != sizeof(*ack)))
		return -1;
	*why = (const char *)p + sizeof(*ack);
	*whylen = len - sizeof(*ack);
	return 0;
}

size_t
ipc_event_prefix(uint8_t *out, uint64_t received_us, const char *channel, size_t chlen,
    const char *epoch, uint64_t offset, size_t zlen)
{
	uint32_t	 z = (uint32_t)zlen;
	size_t		 n = 10 + chlen, elen = epoch != NULL ? strlen(epoch) : 0;

	if (elen > IPC_EPOCH_MAX)
		elen = 0;
	memcpy(out, &received_us, 8);
	out[8] = (uint8_t)(chlen >> 8);
	out[9] = (uint8_t)chlen;
	memcpy(out + 10, channel, chlen);
	memcpy(out + n, &offset, 8);
	out[n + 8] = (uint8_t)elen;
	if (elen > 0)
		memcpy(out + n + 9, epoch, elen);
	n += 9 + elen;
	memcpy(out + n, &z, 4);
	return n + 4;
}

int
ipc_event_split(const uint8_t *p, size_t len, struct ipc_event *ev)
{
	size_t		 n, e, at;
	uint32_t	 z;

	if (len < 10)
		return -1;
	memcpy(&ev->ie_received_us, p, 8);
	n = ((size_t)p[8] << 8) | p[9];
	if (n == 0 || n > RT_CHANNEL_MAX || len - 10 < n || len - 10 - n < 9)
		return -1;
	ev->ie_channel = (const char *)p + 10;
	ev->ie_chlen = n;
	at = 10 + n;
	memcpy(&ev->ie_offset, p + at, 8);
	e = p[at + 8];
	at += 9;
	if (e > IPC_EPOCH_MAX || len - at < e || len - at - e < 4)
		return -1;
	ev->ie_epoch = (const char *)p + at;
	ev->ie_epochlen = e;
	at += e;
	memcpy(&z, p + at, 4);
	at += 4;
	if (z > len - at)
		return -1;
	ev->ie_frame = p + at;
	ev->ie_framelen = len - at - z;
	ev->ie_zframe = z > 0 ? ev->ie_frame + ev->ie_framelen : NULL;
	ev->ie_zframelen = z;
	return 0;
}

size_t
ipc_pos_encode(uint8_t *out, const struct ipc_pos *pos)
{
	uint8_t		 elen = pos->ip_epochlen > 255 ? 255 : (uint8_t)pos->ip_epochlen;
	uint16_t	 clen = pos->ip_chlen > RT_CHANNEL_MAX ? RT_CHANNEL_MAX :
			    (uint16_t)pos->ip_chlen;

	memcpy(out, &pos->ip_offset, 8);
	out[8] = pos->ip_flag;
	out[9] = elen;
	memcpy(out + 10, &clen, 2);
	memcpy(out + 12, pos->ip_epoch, elen);
	memcpy(out + 12 + elen, pos->ip_channel, clen);
	return 12 + (size_t)elen + clen;
}

int
ipc_pos_decode(const uint8_t *p, size_t len, struct ipc_pos *pos)
{
	uint16_t	 clen;

	if (len < 12)
		return -1;
	memcpy(&pos->ip_offset, p, 8);
	pos->ip_flag = p[8];
	memcpy(&clen, p + 10, 2);
	if (len != 12 + (size_t)p[9] + clen || clen > RT_CHANNEL_MAX)
		return -1;
	pos->ip_epoch = (const char *)p + 12;
	pos->ip_epochlen = p[9];
	pos->ip_channel = (const char *)p + 12 + p[9];
	pos->ip_chlen = clen;
	return 0;
}

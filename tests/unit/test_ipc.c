/* IPC framing: headers, partial reads, bad types, fd passing. */
#include <sys/socket.h>
#include <sys/wait.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipc.h"

START_TEST(test_parse_needs_whole_message)
{
	uint8_t		 buf[sizeof(struct ipc_hdr) + 5];
	struct ipc_hdr	 h, out;
	size_t		 i;

	ipc_hdr_init(&h, IPC_EVENT, 5, 3);
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), "hello", 5);
	for (i = 0; i < sizeof(buf); i++)
		ck_assert_int_eq(ipc_parse(buf, i, &out), IPC_PARSE_NEED_MORE);
	ck_assert_int_eq(ipc_parse(buf, sizeof(buf), &out), IPC_PARSE_OK);
	ck_assert_uint_eq(out.type, IPC_EVENT);
	ck_assert_uint_eq(out.len, 5);
	ck_assert_uint_eq(out.peerid, 3);
	ck_assert_uint_eq(out.pid, (uint32_t)getpid());
}
END_TEST

/* The sender's pid is cached per process; a forked child stamps its own. */
START_TEST(test_hdr_pid_after_fork)
{
	struct ipc_hdr	 h;
	int		 p[2], st;
	uint32_t	 child;
	pid_t		 pid;

	ipc_hdr_init(&h, IPC_EVENT, 0, 0);
	ck_assert_uint_eq(h.pid, (uint32_t)getpid());
	ck_assert_int_eq(pipe(p), 0);
	if ((pid = fork()) == 0) {
		ipc_hdr_init(&h, IPC_EVENT, 0, 0);
		child = h.pid == (uint32_t)getpid() ? h.pid : 0;
		_exit(write(p[1], &child, sizeof(child)) == sizeof(child) ? 0 : 1);
	}
	ck_assert_int_gt(pid, 0);
	ck_assert_int_eq(read(p[0], &child, sizeof(child)), (int)sizeof(child));
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_uint_eq(child, (uint32_t)pid);
	ipc_hdr_init(&h, IPC_EVENT, 0, 0);
	ck_assert_uint_eq(h.pid, (uint32_t)getpid());
	close(p[0]);
	close(p[1]);
}
END_TEST

START_TEST(test_parse_rejects_unknown_and_oversized)
{
	struct ipc_hdr	 h, out;

	ipc_hdr_init(&h, 9999, 0, 0);
	ck_assert_int_eq(ipc_parse(&h, sizeof(h), &out), IPC_PARSE_BAD);
	ipc_hdr_init(&h, IPC_EVENT, IPC_MAX_PAYLOAD + 1, 0);
	ck_assert_int_eq(ipc_parse(&h, sizeof(h), &out), IPC_PARSE_BAD);
	ck_assert_int_eq(ipc_type_known(IPC_CANARY), 1);
	ck_assert_int_eq(ipc_type_known(0), 0);
}
END_TEST

START_TEST(test_event_prefix_round_trip)
{
	uint8_t		 buf[IPC_EVENT_PREFIX_MAX + 10];
	struct ipc_event ev;
	size_t		 n, k;

	n = ipc_event_prefix(buf, 123456789012345ULL, "apps:created", 12, NULL, 0, 0);
	ck_assert_uint_eq(n, 8 + 2 + 12 + 8 + 1 + 4);
	memcpy(buf + n, "FRAME", 5);
	ck_assert_int_eq(ipc_event_split(buf, n + 5, &ev), 0);
	ck_assert_uint_eq(ev.ie_received_us, 123456789012345ULL);
	ck_assert_uint_eq(ev.ie_chlen, 12);
	ck_assert_int_eq(memcmp(ev.ie_channel, "apps:created", 12), 0);
	ck_assert_uint_eq(ev.ie_epochlen, 0);	/* no position */
	ck_assert_uint_eq(ev.ie_framelen, 5);
	ck_assert_int_eq(memcmp(ev.ie_frame, "FRAME", 5), 0);
	ck_assert_ptr_null(ev.ie_zframe);
	ck_assert_uint_eq(ev.ie_zframelen, 0);
	/* every truncation of the prefix is malformed */
	for (k = 0; k < n; k++)
		ck_assert_int_eq(ipc_event_split(buf, k, &ev), -1);
	/* empty and over-long channel names are malformed */
	buf[8] = 0;
	buf[9] = 0;
	ck_assert_int_eq(ipc_event_split(buf, n + 5, &ev), -1);
	buf[8] = 0;
	buf[9] = 201;
	ck_assert_int_eq(ipc_event_split(buf, sizeof(buf), &ev), -1);
}
END_TEST

/* The event's position travels with it; an epoch too long for it, none. */
START_TEST(test_event_prefix_position)
{
	uint8_t		 buf[IPC_EVENT_PREFIX_MAX + 10];
	struct ipc_event ev;
	size_t		 n, k;
	char		 longer[IPC_EPOCH_MAX + 2];

	n = ipc_event_prefix(buf, 5, "apps:x", 6, "node1-3f", 42, 0);
	memcpy(buf + n, "F", 1);
	ck_assert_int_eq(ipc_event_split(buf, n + 1, &ev), 0);
	ck_assert_uint_eq(ev.ie_offset, 42);
	ck_assert_uint_eq(ev.ie_epochlen, 8);
	ck_assert_int_eq(memcmp(ev.ie_epoch, "node1-3f", 8), 0);
	ck_assert_uint_eq(ev.ie_framelen, 1);
	ck_assert_int_eq(ev.ie_frame[0], 'F');
	for (k = 0; k < n; k++)
		ck_assert_int_eq(ipc_event_split(buf, k, &ev), -1);
	/* an epoch length past the limit is malformed */
	buf[10 + 6 + 8] = IPC_EPOCH_MAX + 1;
	ck_assert_int_eq(ipc_event_split(buf, sizeof(buf), &ev), -1);
	memset(longer, 'e', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	n = ipc_event_prefix(buf, 5, "apps:x", 6, longer, 42, 0);
	ck_assert_int_eq(ipc_event_split(buf, n, &ev), 0);
	ck_assert_uint_eq(ev.ie_epochlen, 0);
}
END_TEST

/* The plain frame, then the compressed one, each found whole. */
START_TEST(test_event_with_compressed_frame)
{
	uint8_t		 buf[IPC_EVENT_PREFIX_MAX + 16];
	struct ipc_event ev;
	size_t		 n;

	n = ipc_event_prefix(buf, 7, "a", 1, "ep", 9, 3);
	memcpy(buf + n, "PLAINZZZ", 8);
	ck_assert_int_eq(ipc_event_split(buf, n + 8, &ev), 0);
	ck_assert_uint_eq(ev.ie_framelen, 5);
	ck_assert_int_eq(memcmp(ev.ie_frame, "PLAIN", 5), 0);
	ck_assert_uint_eq(ev.ie_zframelen, 3);
	ck_assert_int_eq(memcmp(ev.ie_zframe, "ZZZ", 3), 0);
	/* a compressed length past the payload is malformed */
	ck_assert_int_eq(ipc_event_split(buf, n + 2, &ev), -1);
	ck_assert_int_eq(ipc_event_split(buf, n + 3, &ev), 0);
	ck_assert_uint_eq(ev.ie_framelen, 0);
}
END_TEST

START_TEST(test_control_messages_with_fd)
{
	int		 sv[2], pp[2], fd;
	struct ipc_hdr	 h;
	char		 buf[64];
	ssize_t		 n;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	ck_assert_int_eq(pipe(pp), 0);
	/* nothing yet: EAGAIN, not a block */
	n = ipc_recv(sv[1], &h, buf, sizeof(buf), &fd);
	ck_assert_int_eq(n, -1);
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert_int_eq(ipc_send(sv[0], IPC_BRIDGE_FD, 7, "abc", 3, pp[1]), 0);
	ck_assert_int_eq(ipc_send(sv[0], IPC_SHUTDOWN, 0, NULL, 0, -1), 0);
	n = ipc_recv(sv[1], &h, buf, sizeof(buf), &fd);
	ck_assert_int_eq(n, (ssize_t)sizeof(h) + 3);
	ck_assert_uint_eq(h.type, IPC_BRIDGE_FD);
	ck_assert_uint_eq(h.peerid, 7);
	ck_assert_int_eq(memcmp(buf, "abc", 3), 0);
	ck_assert_int_ge(fd, 0);
	/* the passed descriptor is the pipe's write end */
	ck_assert_int_eq(write(fd, "z", 1), 1);
	ck_assert_int_eq(read(pp[0], buf, 1), 1);
	ck_assert_int_eq(buf[0], 'z');
	close(fd);
	n = ipc_recv(sv[1], &h, buf, sizeof(buf), &fd);
	ck_assert_int_eq(n, (ssize_t)sizeof(h));
	ck_assert_uint_eq(h.type, IPC_SHUTDOWN);
	ck_assert_int_eq(fd, -1);
	close(sv[0]);
	ck_assert_int_eq(ipc_recv(sv[1], &h, buf, sizeof(buf), &fd), 0);	/* EOF */
	close(sv[1]);
	close(pp[0]);
	close(pp[1]);
}
END_TEST

START_TEST(test_malformed_control_message)
{
	int		 sv[2], fd;
	struct ipc_hdr	 h;
	char		 buf[8];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	ck_assert_int_eq(write(sv[0], "short", 5), 5);
	ck_assert_int_eq(ipc_recv(sv[1], &h, buf, sizeof(buf), &fd), -1);
	ck_assert_int_eq(errno, EBADMSG);
	/* a payload larger than the receiver's buffer is truncated: refused */
	ck_assert_int_eq(ipc_send(sv[0], IPC_HELLO, 0, "0123456789abcdef", 16, -1), 0);
	ck_assert_int_eq(ipc_recv(sv[1], &h, buf, sizeof(buf), &fd), -1);
	ck_assert_int_eq(errno, EBADMSG);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

START_TEST(test_ipc_cfg_ack_round_trip_and_malformed)
{
	struct ipc_hdr		 req, h;
	struct ipc_cfg_ack	 ack;
	char			 buf[512], big[400];
	const char		*why;
	size_t			 whylen;
	int			 sv[2], fd;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	ipc_hdr_init(&req, IPC_CFG_TLS, 0, 7);
	/* applied: no reason travels, even if one is given */
	ck_assert_int_eq(ipc_cfg_ack(sv[0], &req, 0, "ignored"), 0);
	ck_assert_int_gt(ipc_recv(sv[1], &h, buf, sizeof(buf), &fd), 0);
	ck_assert_uint_eq(h.type, IPC_CFG_ACK);
	ck_assert_uint_eq(h.peerid, 7);
	ck_assert_int_eq(ipc_cfg_ack_parse(buf, h.len, &ack, &why, &whylen), 0);
	ck_assert_uint_eq(ack.ca_type, IPC_CFG_TLS);
	ck_assert_uint_eq(ack.ca_ok, 1);
	ck_assert_uint_eq(whylen, 0);
	/* refused: the reason, cut at IPC_ACK_REASON_MAX */
	memset(big, 'r', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	req.type = IPC_CFG_RELOAD;
	ck_assert_int_eq(ipc_cfg_ack(sv[0], &req, -1, big), 0);
	ck_assert_int_gt(ipc_recv(sv[1], &h, buf, sizeof(buf), &fd), 0);
	ck_assert_int_eq(ipc_cfg_ack_parse(buf, h.len, &ack, &why, &whylen), 0);
	ck_assert_uint_eq(ack.ca_type, IPC_CFG_RELOAD);
	ck_assert_uint_eq(ack.ca_ok, 0);
	ck_assert_uint_eq(whylen, IPC_ACK_REASON_MAX);
	ck_assert_int_eq(why[0], 'r');
	close(sv[0]);
	close(sv[1]);

	/* malformed: short, another request type, ok with a reason, bad flag, too long */
	ck_assert_int_eq(ipc_cfg_ack_parse(buf, sizeof(ack) - 1, &ack, &why, &whylen), -1);
	ack.ca_type = IPC_CTL_KICK;
	ack.ca_ok = 1;
	memcpy(buf, &ack, sizeof(ack));
	ck_assert_int_eq(ipc_cfg_ack_parse(buf, sizeof(ack), &ack, &why, &whylen), -1);
	ack.ca_type = IPC_CFG_RELOAD;
	memcpy(buf, &ack, sizeof(ack));
	ck_assert_int_eq(ipc_cfg_ack_parse(buf, sizeof(ack) + 1, &ack, &why, &whylen), -1);
	ack.ca_ok = 2;
	memcpy(buf, &ack, sizeof(ack));
	ck_assert_int_eq(ipc_cfg_ack_parse(buf, sizeof(ack), &ack, &why, &whylen), -1);
	ack.ca_ok = 0;
	memcpy(buf, &ack, sizeof(ack));
	ck_assert_int_eq(ipc_cfg_ack_parse(buf, sizeof(ack) + IPC_ACK_REASON_MAX + 1, &ack,
	    &why, &whylen), -1);
	ck_assert_int_eq(ipc_type_known(IPC_CFG_ACK), 1);
}
END_TEST

/* Positions: round trip, then every malformed length. */
START_TEST(test_pos_round_trip)
{
	uint8_t		 buf[IPC_POS_MAX + 8];
	char		 epoch[256], ch[RT_CHANNEL_MAX + 1];
	struct ipc_pos	 in, out;
	size_t		 n, i;

	in.ip_offset = 0x0102030405060708ULL;
	in.ip_flag = IPC_POS_RECOVERED;
	in.ip_epoch = "k3J9x2aQ-1";
	in.ip_epochlen = 10;
	in.ip_channel = "apps:created";
	in.ip_chlen = 12;
	n = ipc_pos_encode(buf, &in);
	ck_assert_uint_eq(n, 12 + 10 + 12);
	memset(&out, 0, sizeof(out));
	ck_assert_int_eq(ipc_pos_decode(buf, n, &out), 0);
	ck_assert_uint_eq(out.ip_offset, 0x0102030405060708ULL);
	ck_assert_uint_eq(out.ip_flag, IPC_POS_RECOVERED);
	ck_assert_uint_eq(out.ip_epochlen, 10);
	ck_assert_int_eq(memcmp(out.ip_epoch, "k3J9x2aQ-1", 10), 0);
	ck_assert_uint_eq(out.ip_chlen, 12);
	ck_assert_int_eq(memcmp(out.ip_channel, "apps:created", 12), 0);
	/* decoded in place */
	ck_assert_ptr_eq(out.ip_epoch, (const char *)buf + 12);
	ck_assert_ptr_eq(out.ip_channel, (const char *)buf + 22);
	/* truncated anywhere, or with a byte more: malformed */
	for (i = 0; i < n; i++)
		ck_assert_msg(ipc_pos_decode(buf, i, &out) == -1, "length %zu", i);
	ck_assert_int_eq(ipc_pos_decode(buf, n + 1, &out), -1);
	ck_assert_int_eq(ipc_pos_decode(buf, n + 8, &out), -1);

	/* empty epoch and channel, the other flags, offsets 0 and the largest */
	in.ip_offset = 0;
	in.ip_flag = IPC_POS_PLAIN;
	in.ip_epoch = "";
	in.ip_epochlen = 0;
	in.ip_channel = "";
	in.ip_chlen = 0;
	ck_assert_uint_eq(n = ipc_pos_encode(buf, &in), 12);
	ck_assert_int_eq(ipc_pos_decode(buf, n, &out), 0);
	ck_assert_uint_eq(out.ip_offset, 0);
	ck_assert_uint_eq(out.ip_flag, IPC_POS_PLAIN);
	ck_assert_uint_eq(out.ip_epochlen, 0);
	ck_assert_uint_eq(out.ip_chlen, 0);
	in.ip_offset = UINT64_MAX;
	in.ip_flag = IPC_POS_UNRECOVERED;
	ck_assert_int_eq(ipc_pos_decode(buf, ipc_pos_encode(buf, &in), &out), 0);
	ck_assert_uint_eq(out.ip_offset, UINT64_MAX);
	ck_assert_uint_eq(out.ip_flag, IPC_POS_UNRECOVERED);

	/* the longest of both: IPC_POS_MAX */
	memset(epoch, 'e', sizeof(epoch));
	memset(ch, 'c', sizeof(ch));
	in.ip_epoch = epoch;
	in.ip_epochlen = 255;
	in.ip_channel = ch;
	in.ip_chlen = RT_CHANNEL_MAX;
	ck_assert_uint_eq(n = ipc_pos_encode(buf, &in), IPC_POS_MAX);
	ck_assert_int_eq(ipc_pos_decode(buf, n, &out), 0);
	ck_assert_uint_eq(out.ip_epochlen, 255);
	ck_assert_uint_eq(out.ip_chlen, RT_CHANNEL_MAX);
	ck_assert_int_eq(memcmp(out.ip_epoch, epoch, 255), 0);
	ck_assert_int_eq(memcmp(out.ip_channel, ch, RT_CHANNEL_MAX), 0);
	for (i = 0; i < n; i++)
		ck_assert_msg(ipc_pos_decode(buf, i, &out) == -1, "length %zu", i);
	ck_assert_int_eq(ipc_pos_decode(buf, n + 1, &out), -1);
}
END_TEST

START_TEST(test_pos_decode_rejects_bad_lengths)
{
	uint8_t		 buf[12 + 255 + 65535];
	struct ipc_pos	 out;
	uint16_t	 clen;
	uint64_t	 off = 5;

	memset(buf, 'x', sizeof(buf));
	memcpy(buf, &off, 8);
	buf[8] = 1;
	/* a channel longer than a channel can be, length consistent */
	buf[9] = 3;
	clen = RT_CHANNEL_MAX + 1;
	memcpy(buf + 10, &clen, 2);
	ck_assert_int_eq(ipc_pos_decode(buf, 12 + 3 + clen, &out), -1);
	clen = RT_CHANNEL_MAX;
	memcpy(buf + 10, &clen, 2);
	ck_assert_int_eq(ipc_pos_decode(buf, 12 + 3 + clen, &out), 0);
	ck_assert_uint_eq(out.ip_offset, 5);
	ck_assert_uint_eq(out.ip_flag, 1);
	clen = 65535;
	memcpy(buf + 10, &clen, 2);
	ck_assert_int_eq(ipc_pos_decode(buf, 12 + 3 + (size_t)clen, &out), -1);
	ck_assert_int_eq(ipc_pos_decode(buf, sizeof(buf), &out), -1);
	/* the lengths say more, or less, than there is */
	clen = 4;
	memcpy(buf + 10, &clen, 2);
	ck_assert_int_eq(ipc_pos_decode(buf, 12 + 3 + 4, &out), 0);
	ck_assert_int_eq(ipc_pos_decode(buf, 12 + 3 + 3, &out), -1);
	ck_assert_int_eq(ipc_pos_decode(buf, 12 + 3 + 5, &out), -1);
	buf[9] = 255;
	ck_assert_int_eq(ipc_pos_decode(buf, 12 + 3 + 4, &out), -1);
	ck_assert_int_eq(ipc_pos_decode(buf, 12 + 255 + 4, &out), 0);
	ck_assert_uint_eq(out.ip_epochlen, 255);
	/* shorter than the fixed part */
	ck_assert_int_eq(ipc_pos_decode(buf, 0, &out), -1);
	ck_assert_int_eq(ipc_pos_decode(buf, 11, &out), -1);
	ck_assert_int_eq(ipc_type_known(IPC_POS_REQ), 1);
	ck_assert_int_eq(ipc_type_known(IPC_POS), 1);
	ck_assert_int_eq(ipc_type_known(IPC_REPLAY), 1);
	ck_assert_int_eq(ipc_type_known(IPC_POS_END), 1);
}
END_TEST

/* Control commands between the master and the bridge: round trip, then malformed. */
START_TEST(test_control_round_trip_and_malformed)
{
	uint8_t			 buf[IPC_CONTROL_MAX + 8];
	struct ipc_control	 ic;
	char			 arg[IPC_CONTROL_MAX], big[300];
	size_t			 n, i;

	n = ipc_control_encode(buf, 3, 1, 1767225600, "jti-42", 6);
	ck_assert_uint_eq(n, sizeof(ic) + 6);
	ck_assert_int_eq(ipc_control_decode(buf, n, &ic, arg), 0);
	ck_assert_int_eq(ic.ic_cmd, 3);
	ck_assert_int_eq(ic.ic_sync, 1);
	ck_assert_int_eq(ic.ic_until, 1767225600);
	ck_assert_str_eq(arg, "jti-42");
	/* every shorter or longer length is refused */
	for (i = 0; i < n; i++)
		ck_assert_int_eq(ipc_control_decode(buf, i, &ic, arg), -1);
	ck_assert_int_eq(ipc_control_decode(buf, n + 1, &ic, arg), -1);
	/* a NUL inside the argument */
	buf[sizeof(ic) + 2] = '\0';
	ck_assert_int_eq(ipc_control_decode(buf, n, &ic, arg), -1);
	/* the longest argument fits, one more does not */
	memset(big, 'a', sizeof(big));
	n = ipc_control_encode(buf, 1, 0, 0, big, 255);
	ck_assert_uint_eq(n, sizeof(ic) + 255);
	ck_assert_int_eq(ipc_control_decode(buf, n, &ic, arg), 0);
	ck_assert_uint_eq(strlen(arg), 255);
	ck_assert_uint_eq(ipc_control_encode(buf, 1, 0, 0, big, 256), 0);
	ck_assert_int_eq(ipc_type_known(IPC_CTL_CONTROL), 1);
	ck_assert_int_eq(ipc_type_known(IPC_CTL_SYNC), 1);
	ck_assert_int_eq(ipc_type_known(IPC_CTL_NODES_REPLY), 1);
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("ipc");
	TCase	*tc = tcase_create("core");
	SRunner	*sr;
	int	 failed;

	tcase_add_test(tc, test_parse_needs_whole_message);
	tcase_add_test(tc, test_parse_rejects_unknown_and_oversized);
	tcase_add_test(tc, test_hdr_pid_after_fork);
	tcase_add_test(tc, test_event_prefix_round_trip);
	tcase_add_test(tc, test_event_prefix_position);
	tcase_add_test(tc, test_event_with_compressed_frame);
	tcase_add_test(tc, test_control_messages_with_fd);
	tcase_add_test(tc, test_malformed_control_message);
	tcase_add_test(tc, test_ipc_cfg_ack_round_trip_and_malformed);
	tcase_add_test(tc, test_pos_round_trip);
	tcase_add_test(tc, test_pos_decode_rejects_bad_lengths);
	tcase_add_test(tc, test_control_round_trip_and_malformed);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

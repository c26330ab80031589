/* IPC framing: headers, partial reads, bad types, fd passing. */
#include <sys/socket.h>

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
	size_t		 n;

	n = ipc_event_prefix(buf, 123456789012345ULL, "apps:created", 12);
	memcpy(buf + n, "FRAME", 5);
	ck_assert_int_eq(ipc_event_split(buf, n + 5, &ev), 0);
	ck_assert_uint_eq(ev.ie_received_us, 123456789012345ULL);
	ck_assert_uint_eq(ev.ie_chlen, 12);
	ck_assert_int_eq(memcmp(ev.ie_channel, "apps:created", 12), 0);
	ck_assert_uint_eq(ev.ie_framelen, 5);
	ck_assert_int_eq(memcmp(ev.ie_frame, "FRAME", 5), 0);
	/* truncated, empty and over-long channel names are malformed */
	ck_assert_int_eq(ipc_event_split(buf, 1, &ev), -1);
	ck_assert_int_eq(ipc_event_split(buf, 9, &ev), -1);
	ck_assert_int_eq(ipc_event_split(buf, 18, &ev), -1);
	buf[8] = 0;
	buf[9] = 0;
	ck_assert_int_eq(ipc_event_split(buf, 18, &ev), -1);
	buf[8] = 0;
	buf[9] = 201;
	ck_assert_int_eq(ipc_event_split(buf, sizeof(buf), &ev), -1);
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

int
main(void)
{
	Suite	*s = suite_create("ipc");
	TCase	*tc = tcase_create("core");
	SRunner	*sr;
	int	 failed;

	tcase_add_test(tc, test_parse_needs_whole_message);
	tcase_add_test(tc, test_parse_rejects_unknown_and_oversized);
	tcase_add_test(tc, test_event_prefix_round_trip);
	tcase_add_test(tc, test_control_messages_with_fd);
	tcase_add_test(tc, test_malformed_control_message);
	tcase_add_test(tc, test_ipc_cfg_ack_round_trip_and_malformed);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

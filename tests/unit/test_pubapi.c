/* pubapi: POST /publish bodies, single and batch, and every refusal's reason. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "channel.h"
#include "pubapi.h"

static struct chan_table	*t;
static struct pub_item		 it[4];
static int			 n, batch;
static const char		*why;

static enum pub_result
parse(const char *s)
{
	why = NULL;
	return pub_parse(s, strlen(s), t, it, 4, &n, &batch, &why);
}

static void
setup(void)
{
	t = chan_table_default();
}

static void
teardown(void)
{
	chan_table_free(t);
}

START_TEST(test_single_keeps_the_data_bytes)
{
	const char	*b = " {\"data\" : {\"a\":[1,2e400]} , \"channel\":\"apps:created\"} \n";

	ck_assert_int_eq(parse(b), PUB_OK);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(batch, 0);
	ck_assert_int_eq((int)it[0].pi_chlen, 12);
	ck_assert(memcmp(it[0].pi_channel, "apps:created", 12) == 0);
	/* exactly the value's bytes: 2e400 stays as sent */
	ck_assert_int_eq((int)it[0].pi_datalen, 15);
	ck_assert(memcmp(it[0].pi_data, "{\"a\":[1,2e400]}", 15) == 0);
	ck_assert_ptr_null(it[0].pi_error);
	ck_assert_int_eq(parse("{\"channel\":\"announcements\",\"data\":null}"), PUB_OK);
	ck_assert_int_eq((int)it[0].pi_datalen, 4);
}
END_TEST

START_TEST(test_batch_has_per_item_channel_errors)
{
	ck_assert_int_eq(parse("[{\"channel\":\"apps:x\",\"data\":1},"
	    "{\"channel\":\"nope:x\",\"data\":2},{\"channel\":\"a b\",\"data\":3}]"), PUB_OK);
	ck_assert_int_eq(n, 3);
	ck_assert_int_eq(batch, 1);
	ck_assert_ptr_null(it[0].pi_error);
	ck_assert_str_eq(it[1].pi_error, "unknown channel");
	ck_assert_str_eq(it[2].pi_error, "invalid channel name");
	ck_assert_int_eq(parse("[{\"channel\":\"apps:x\",\"data\":1},{\"channel\":\"apps:x\","
	    "\"data\":1},{\"channel\":\"apps:x\",\"data\":1},{\"channel\":\"apps:x\",\"data\":1},"
	    "{\"channel\":\"apps:x\",\"data\":1}]"), PUB_BAD);
	ck_assert_str_eq(why, "too many items in the batch");
}
END_TEST

START_TEST(test_refusals_say_why)
{
	static const struct { const char *body; enum pub_result rv; const char *why; } c[] = {
		{ "", PUB_BAD, "empty body" },
		{ "{", PUB_BAD, "invalid JSON" },
		{ "{\"channel\":\"apps:x\",\"data\":1} x", PUB_BAD, "invalid JSON" },
		{ "\"x\"", PUB_BAD, "not an object or an array" },
		{ "[]", PUB_BAD, "empty batch" },
		{ "[[]]", PUB_BAD, "an item is not an object" },
		{ "{}", PUB_BAD, "missing channel" },
		{ "{\"channel\":\"apps:x\"}", PUB_BAD, "missing data" },
		{ "{\"data\":1}", PUB_BAD, "missing channel" },
		{ "{\"channel\":1,\"data\":1}", PUB_BAD, "channel is not a string" },
		{ "{\"channel\":\"apps:x\",\"data\":1,\"x\":1}", PUB_BAD,
		    "unknown member (channel and data only)" },
		{ "{\"channel\":\"apps:x\",\"data\":1,\"data\":2}", PUB_BAD, "data given twice" },
		{ "{\"channel\":\"apps:x\",\"channel\":\"apps:y\",\"data\":1}", PUB_BAD,
		    "channel given twice" },
	};
	size_t	 i;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		ck_assert_int_eq(parse(c[i].body), c[i].rv);
		ck_assert_str_eq(why, c[i].why);
	}
}
END_TEST

START_TEST(test_single_channel_problems_are_422)
{
	ck_assert_int_eq(parse("{\"channel\":\"nope:x\",\"data\":1}"), PUB_CHANNEL);
	ck_assert_str_eq(it[0].pi_error, "unknown channel");
	ck_assert_int_eq(parse("{\"channel\":\"\",\"data\":1}"), PUB_CHANNEL);
	ck_assert_str_eq(it[0].pi_error, "invalid channel name");
	/* escapes never spell a channel name */
	ck_assert_int_eq(parse("{\"channel\":\"apps:\\u0078\",\"data\":1}"), PUB_CHANNEL);
	ck_assert_str_eq(it[0].pi_error, "invalid channel name");
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("pubapi");
	TCase	*tc = tcase_create("core");
	SRunner	*sr;
	int	 failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_single_keeps_the_data_bytes);
	tcase_add_test(tc, test_batch_has_per_item_channel_errors);
	tcase_add_test(tc, test_refusals_say_why);
	tcase_add_test(tc, test_single_channel_problems_are_422);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

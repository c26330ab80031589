/* Timing wheel: never early, never lost, cancel and reschedule safe. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "wheel.h"

struct item {
	struct wheel_entry	 e;
	int			 fired;
	uint64_t		 fired_at;
};

static uint64_t	 clock_ms;

static void
on_fire(struct wheel_entry *e, void *arg)
{
	struct item	*it = (struct item *)e;

	(void)arg;
	it->fired++;
	it->fired_at = clock_ms;
}

START_TEST(test_fires_not_before_deadline)
{
	struct wheel	 w;
	struct item	 it = { 0 };

	clock_ms = 1000;
	wheel_init(&w, 100, clock_ms);
	wheel_schedule(&w, &it.e, 1250);
	for (clock_ms = 1000; clock_ms < 1250; clock_ms += 10) {
		wheel_advance(&w, clock_ms, on_fire, NULL);
		ck_assert_int_eq(it.fired, 0);
	}
	for (; clock_ms <= 1400; clock_ms += 10)
		wheel_advance(&w, clock_ms, on_fire, NULL);
	ck_assert_int_eq(it.fired, 1);
	ck_assert_uint_ge(it.fired_at, 1250);
	ck_assert_uint_le(it.fired_at, 1300);
	ck_assert_uint_eq(w.w_count, 0);
}
END_TEST

START_TEST(test_deadline_beyond_one_lap)
{
	struct wheel	 w;
	struct item	 it = { 0 };
	uint64_t	 far = 1000 + (uint64_t)WHEEL_SLOTS * 100 * 3 + 50;

	clock_ms = 1000;
	wheel_init(&w, 100, clock_ms);
	wheel_schedule(&w, &it.e, far);
	for (; clock_ms < far; clock_ms += 100) {
		wheel_advance(&w, clock_ms, on_fire, NULL);
		ck_assert_int_eq(it.fired, 0);
	}
	clock_ms = far + 100;
	wheel_advance(&w, clock_ms, on_fire, NULL);
	ck_assert_int_eq(it.fired, 1);
}
END_TEST

START_TEST(test_long_sleep_fires_everything_due)
{
	struct wheel	 w;
	struct item	 it[50];
	int		 i;

	memset(it, 0, sizeof(it));
	clock_ms = 0;
	wheel_init(&w, 100, clock_ms);
	for (i = 0; i < 50; i++)
		wheel_schedule(&w, &it[i].e, (uint64_t)i * 997);
	/* jump far past several laps at once */
	clock_ms = (uint64_t)WHEEL_SLOTS * 100 * 5;
	ck_assert_uint_eq(wheel_advance(&w, clock_ms, on_fire, NULL), 50);
	for (i = 0; i < 50; i++)
		ck_assert_int_eq(it[i].fired, 1);
}
END_TEST

START_TEST(test_cancel_and_reschedule)
{
	struct wheel	 w;
	struct item	 a = { 0 }, b = { 0 };

	clock_ms = 0;
	wheel_init(&w, 10, 0);
	wheel_schedule(&w, &a.e, 50);
	wheel_schedule(&w, &b.e, 50);
	wheel_cancel(&w, &a.e);
	wheel_cancel(&w, &a.e);		/* twice is harmless */
	wheel_schedule(&w, &b.e, 500);	/* moves, not duplicates */
	ck_assert_uint_eq(w.w_count, 1);
	clock_ms = 100;
	wheel_advance(&w, clock_ms, on_fire, NULL);
	ck_assert_int_eq(a.fired + b.fired, 0);
	clock_ms = 500;
	wheel_advance(&w, clock_ms, on_fire, NULL);
	ck_assert_int_eq(b.fired, 1);
	ck_assert_int_eq(a.fired, 0);
}
END_TEST

/* A callback that reschedules itself and cancels another pending entry. */
static struct item *victim;

static void
on_fire_meddle(struct wheel_entry *e, void *arg)
{
	struct wheel	*w = arg;
	struct item	*it = (struct item *)e;

	it->fired++;
	if (victim != NULL && victim != it)
		wheel_cancel(w, &victim->e);
	if (it->fired < 3)
		wheel_schedule(w, e, clock_ms + 10);
}

START_TEST(test_callback_may_reschedule_and_cancel_others)
{
	struct wheel	 w;
	struct item	 a = { 0 }, b = { 0 };

	clock_ms = 0;
	wheel_init(&w, 10, 0);
	wheel_schedule(&w, &a.e, 10);
	wheel_schedule(&w, &b.e, 10);
	victim = &b;
	clock_ms = 10;
	wheel_advance(&w, clock_ms, on_fire_meddle, &w);
	victim = NULL;
	/* exactly one of them ran first and cancelled the other */
	ck_assert_int_eq(a.fired + b.fired, 1);
	for (clock_ms = 20; clock_ms <= 100; clock_ms += 10)
		wheel_advance(&w, clock_ms, on_fire_meddle, &w);
	ck_assert_int_eq(a.fired + b.fired, 3);
	ck_assert_uint_eq(w.w_count, 0);
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("wheel");
	TCase	*tc = tcase_create("core");
	SRunner	*sr;
	int	 failed;

	tcase_add_test(tc, test_fires_not_before_deadline);
	tcase_add_test(tc, test_deadline_beyond_one_lap);
	tcase_add_test(tc, test_long_sleep_fires_everything_due);
	tcase_add_test(tc, test_cancel_and_reschedule);
	tcase_add_test(tc, test_callback_may_reschedule_and_cancel_others);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

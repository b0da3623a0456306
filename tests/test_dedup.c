/*
 * test_dedup: the sink's bounded memory of written records (common/dedup.h).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dedup.h"
#include "support.h"

START_TEST(test_dedup_reports_each_seq_new_once)
{
    pw_dedup *d = pw_dedup_new(1024, 4);
    pw_dedup_stream *s = pw_dedup_stream_get(d, "p1", 2, 7);
    ck_assert_ptr_nonnull(s);
    for (uint64_t seq = 0; seq < 100000; seq++)
        ck_assert_int_eq(pw_dedup_mark(s, seq), 1);
    for (uint64_t seq = 0; seq < 100000; seq++)
        ck_assert_int_eq(pw_dedup_mark(s, seq), 0);
    ck_assert_uint_eq(pw_dedup_overflows(d), 0);
    pw_dedup_free(d);
}
END_TEST

START_TEST(test_dedup_handles_out_of_order_within_window)
{
    pw_dedup *d = pw_dedup_new(4096, 4);
    pw_dedup_stream *s = pw_dedup_stream_get(d, "p1", 2, 1);
    /* Two interleaved workers: evens run ahead of odds by up to 2000. */
    for (uint64_t i = 0; i < 50000; i++) {
        ck_assert_int_eq(pw_dedup_mark(s, 2 * i), 1);
        if (i >= 1000)
            ck_assert_int_eq(pw_dedup_mark(s, 2 * (i - 1000) + 1), 1);
    }
    for (uint64_t i = 49000; i < 50000; i++)
        ck_assert_int_eq(pw_dedup_mark(s, 2 * i + 1), 1);
    for (uint64_t seq = 0; seq < 100000; seq += 37)
        ck_assert_int_eq(pw_dedup_mark(s, seq), 0);
    ck_assert_uint_eq(pw_dedup_overflows(d), 0);
    pw_dedup_free(d);
}
END_TEST

START_TEST(test_dedup_keeps_a_hole_open_while_later_seqs_arrive)
{
    /* A record stuck in a killed worker: seq 5 arrives last, after the
     * producer has sent everything else its window allows. */
    pw_dedup *d = pw_dedup_new(1024, 4);
    pw_dedup_stream *s = pw_dedup_stream_get(d, "p1", 2, 1);
    for (uint64_t seq = 0; seq < 1000; seq++)
        if (seq != 5)
            ck_assert_int_eq(pw_dedup_mark(s, seq), 1);
    ck_assert_int_eq(pw_dedup_mark(s, 5), 1);
    ck_assert_int_eq(pw_dedup_mark(s, 5), 0);
    ck_assert_int_eq(pw_dedup_mark(s, 999), 0);
    pw_dedup_free(d);
}
END_TEST

START_TEST(test_dedup_separates_streams_by_producer_and_run)
{
    pw_dedup *d = pw_dedup_new(256, 8);
    pw_dedup_stream *a = pw_dedup_stream_get(d, "p1", 2, 1);
    pw_dedup_stream *b = pw_dedup_stream_get(d, "p1", 2, 2);
    pw_dedup_stream *c = pw_dedup_stream_get(d, "p2", 2, 1);
    ck_assert_ptr_ne(a, b);
    ck_assert_ptr_ne(a, c);
    ck_assert_int_eq(pw_dedup_mark(a, 3), 1);
    ck_assert_int_eq(pw_dedup_mark(b, 3), 1);
    ck_assert_int_eq(pw_dedup_mark(c, 3), 1);
    ck_assert_ptr_eq(pw_dedup_stream_get(d, "p1", 2, 1), a);
    ck_assert_int_eq(pw_dedup_mark(a, 3), 0);
    ck_assert_uint_eq(pw_dedup_streams(d), 3);
    pw_dedup_free(d);
}
END_TEST

START_TEST(test_dedup_memory_is_bounded_by_window_and_streams)
{
    pw_dedup *d = pw_dedup_new(1u << 18, 64);
    for (int i = 0; i < 1000; i++) {
        char name[16];
        int n = snprintf(name, sizeof name, "p%d", i);
        pw_dedup_stream *s = pw_dedup_stream_get(d, name, (size_t)n, 1);
        ck_assert_ptr_nonnull(s);
        for (uint64_t seq = 0; seq < 1000; seq++)
            pw_dedup_mark(s, seq);
    }
    ck_assert_uint_eq(pw_dedup_streams(d), 64);
    ck_assert_uint_eq(pw_dedup_evictions(d), 1000 - 64);
    /* 64 streams x 32 KiB bitmaps plus the table. */
    ck_assert_uint_lt(pw_dedup_memory_bytes(d), 64 * 32768 + 64 * 1024);
    pw_dedup_free(d);
}
END_TEST

START_TEST(test_dedup_pinned_stream_is_never_evicted)
{
    pw_dedup *d = pw_dedup_new(64, 2);
    pw_dedup_stream *a = pw_dedup_stream_get(d, "a", 1, 1);
    pw_dedup_mark(a, 0);
    pw_dedup_stream_pin(a, true);
    pw_dedup_stream_get(d, "b", 1, 1);
    pw_dedup_stream_get(d, "c", 1, 1); /* evicts b, not pinned a */
    ck_assert_ptr_eq(pw_dedup_stream_get(d, "a", 1, 1), a);
    ck_assert_int_eq(pw_dedup_mark(a, 0), 0);
    pw_dedup_free(d);
}
END_TEST

START_TEST(test_dedup_pins_are_counted_per_pending_ack)
{
    /* Two acks pending for stream a; one is sent: a must stay pinned. */
    pw_dedup *d = pw_dedup_new(64, 2);
    pw_dedup_stream *a = pw_dedup_stream_get(d, "a", 1, 1);
    pw_dedup_mark(a, 0);
    pw_dedup_stream_pin(a, true);
    pw_dedup_stream_pin(a, true);
    pw_dedup_stream_pin(a, false);
    pw_dedup_stream_get(d, "b", 1, 1);
    pw_dedup_stream_get(d, "c", 1, 1); /* evicts b: a still holds a pin */
    ck_assert_ptr_eq(pw_dedup_stream_get(d, "a", 1, 1), a);
    ck_assert_int_eq(pw_dedup_mark(a, 0), 0);
    pw_dedup_stream_pin(a, false);
    pw_dedup_stream_get(d, "c", 1, 1); /* c is now the most recent */
    pw_dedup_stream_get(d, "e", 1, 1); /* evicts a, unpinned and least recent */
    pw_dedup_stream *again = pw_dedup_stream_get(d, "a", 1, 1);
    ck_assert_int_eq(pw_dedup_mark(again, 0), 1); /* forgotten: a fresh stream */
    pw_dedup_free(d);
}
END_TEST

START_TEST(test_dedup_seq_beyond_window_slides_and_is_counted)
{
    pw_dedup *d = pw_dedup_new(128, 1);
    pw_dedup_stream *s = pw_dedup_stream_get(d, "p", 1, 1);
    ck_assert_int_eq(pw_dedup_mark(s, 1), 1);
    ck_assert_int_eq(pw_dedup_mark(s, 1000), 1);
    ck_assert_uint_eq(pw_dedup_overflows(d), 1);
    ck_assert_int_eq(pw_dedup_mark(s, 1000), 0);
    ck_assert_int_eq(pw_dedup_mark(s, 999), 1);
    pw_dedup_free(d);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("dedup");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_dedup_reports_each_seq_new_once);
    tcase_add_test(tc, test_dedup_handles_out_of_order_within_window);
    tcase_add_test(tc, test_dedup_keeps_a_hole_open_while_later_seqs_arrive);
    tcase_add_test(tc, test_dedup_separates_streams_by_producer_and_run);
    tcase_add_test(tc, test_dedup_memory_is_bounded_by_window_and_streams);
    tcase_add_test(tc, test_dedup_pinned_stream_is_never_evicted);
    tcase_add_test(tc, test_dedup_pins_are_counted_per_pending_ack);
    tcase_add_test(tc, test_dedup_seq_beyond_window_slides_and_is_counted);
    suite_add_tcase(s, tc);
    return pw_test_run(s);
}

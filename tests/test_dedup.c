/*
 * test_dedup: the sink's exact memory of written records (common/dedup.h).
 *
 * The model test drives random operation sequences (marks in and out of
 * order, duplicates, seqs beyond the window, more streams than hot slots,
 * recovery in any order) against a reference model: a set of written
 * (stream, seq).  PW_MODEL_ITERATIONS sets the number of sequences; a
 * failure prints the seed that replays it (PW_MODEL_SEED).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dedup.h"
#include "pw.h"
#include "support.h"


#define BIG_BUDGET (64u << 20)
/* Check records every assertion it passes (a write each): in the model's
 * loops only a failure reaches Check. */
#define MUST(cond, ...) do { if (!(cond)) ck_abort_msg(__VA_ARGS__); } while (0)

static void expect_mark(pw_dedup *d, pw_dedup_stream *s, uint64_t seq, double ts, enum pw_dedup_verdict want)
{
    enum pw_dedup_verdict got = pw_dedup_mark(d, s, seq, ts);
    MUST(got == want, "seq %llu: verdict %d, expected %d", (unsigned long long)seq, got, want);
}

static pw_dedup_stream *get(pw_dedup *d, const char *name, uint64_t run)
{
    pw_dedup_stream *s = NULL;
    ck_assert_int_eq(pw_dedup_stream_get(d, name, strlen(name), run, 1000.0, &s), PW_OK);
    return s;
}

START_TEST(test_dedup_reports_each_seq_new_once)
{
    pw_dedup *d = pw_dedup_new(1024, 4, BIG_BUDGET);
    pw_dedup_stream *s = get(d, "p1", 7);
    for (uint64_t seq = 0; seq < 100000; seq++)
        expect_mark(d, s, seq, 0, PW_DEDUP_NEW);
    for (uint64_t seq = 0; seq < 100000; seq++)
        expect_mark(d, s, seq, 0, PW_DEDUP_DUPLICATE);
    ck_assert_uint_eq(pw_dedup_refusals(d, PW_DEDUP_CAUSE_WINDOW), 0);
    pw_dedup_free(d);
}
END_TEST

START_TEST(test_dedup_handles_out_of_order_within_window)
{
    pw_dedup *d = pw_dedup_new(4096, 4, BIG_BUDGET);
    pw_dedup_stream *s = get(d, "p1", 1);
    /* Two interleaved workers: evens run ahead of odds by up to 2000. */
    for (uint64_t i = 0; i < 50000; i++) {
        expect_mark(d, s, 2 * i, 0, PW_DEDUP_NEW);
        if (i >= 1000)
            expect_mark(d, s, 2 * (i - 1000) + 1, 0, PW_DEDUP_NEW);
    }
    for (uint64_t i = 49000; i < 50000; i++)
        expect_mark(d, s, 2 * i + 1, 0, PW_DEDUP_NEW);
    for (uint64_t seq = 0; seq < 100000; seq += 37)
        expect_mark(d, s, seq, 0, PW_DEDUP_DUPLICATE);
    ck_assert_uint_eq(pw_dedup_refusals(d, PW_DEDUP_CAUSE_WINDOW), 0);
    pw_dedup_free(d);
}
END_TEST

START_TEST(test_dedup_separates_streams_by_producer_and_run)
{
    pw_dedup *d = pw_dedup_new(256, 8, BIG_BUDGET);
    pw_dedup_stream *a = get(d, "p1", 1), *b = get(d, "p1", 2), *c = get(d, "p2", 1);
    ck_assert_ptr_ne(a, b);
    ck_assert_ptr_ne(a, c);
    expect_mark(d, a, 3, 0, PW_DEDUP_NEW);
    expect_mark(d, b, 3, 0, PW_DEDUP_NEW);
    expect_mark(d, c, 3, 0, PW_DEDUP_NEW);
    ck_assert_ptr_eq(get(d, "p1", 1), a);
    expect_mark(d, a, 3, 0, PW_DEDUP_DUPLICATE);
    ck_assert_uint_eq(pw_dedup_hot_streams(d), 3);
    pw_dedup_free(d);
}
END_TEST

/* bug 7: a seq beyond the window used to slide the base over unwritten
 * seqs, which were then reported as duplicates (acked, never written). */
START_TEST(test_dedup_seq_beyond_window_is_refused_not_written)
{
    pw_dedup *d = pw_dedup_new(128, 1, BIG_BUDGET);
    pw_dedup_stream *s = get(d, "p", 1);
    expect_mark(d, s, 0, 0, PW_DEDUP_NEW);
    expect_mark(d, s, 1000, 0, PW_DEDUP_REFUSED_WINDOW);
    ck_assert_uint_eq(pw_dedup_refusals(d, PW_DEDUP_CAUSE_WINDOW), 1);
    ck_assert(!pw_dedup_contains(d, "p", 1, 1, 1000));
    ck_assert_uint_eq(pw_dedup_stream_base(s), 1);
    expect_mark(d, s, 1, 0, PW_DEDUP_NEW); /* not "written" by a slide */
    expect_mark(d, s, 128, 0, PW_DEDUP_NEW); /* base 2: 128 < 2 + 128 */
    expect_mark(d, s, 130, 0, PW_DEDUP_REFUSED_WINDOW);
    pw_dedup_free(d);
}
END_TEST

/* bug 4: after one seq beyond the window, in-order seqs must be plain new
 * marks with the base advancing (the old slide left the base behind and
 * counted every later seq as another overflow). */
START_TEST(test_dedup_one_refusal_then_in_order_seqs_count_once)
{
    pw_dedup *d = pw_dedup_new(128, 1, BIG_BUDGET);
    pw_dedup_stream *s = get(d, "p", 1);
    for (uint64_t seq = 0; seq < 100; seq++)
        expect_mark(d, s, seq, 0, PW_DEDUP_NEW);
    expect_mark(d, s, 100 + 128, 0, PW_DEDUP_REFUSED_WINDOW);
    for (uint64_t seq = 100; seq < 1100; seq++)
        expect_mark(d, s, seq, 0, PW_DEDUP_NEW);
    ck_assert_uint_eq(pw_dedup_refusals(d, PW_DEDUP_CAUSE_WINDOW), 1);
    ck_assert_uint_eq(pw_dedup_stream_base(s), 1100);
    pw_dedup_free(d);
}
END_TEST

/* bug 6: more live streams than hot slots; the old index forgot evicted
 * streams and wrote their re-sent records again. */
START_TEST(test_dedup_more_streams_than_hot_slots_stay_exactly_once)
{
    enum { STREAMS = 200 };
    pw_dedup *d = pw_dedup_new(1024, 64, BIG_BUDGET);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < STREAMS; i++) {
            char name[16];
            snprintf(name, sizeof name, "p%d", i);
            pw_dedup_stream *s = get(d, name, 1);
            for (uint64_t seq = (uint64_t)round * 300; seq < (uint64_t)round * 300 + 300; seq++)
                if (seq % 7 != 3) /* holes, so the cold form has ranges */
                    expect_mark(d, s, seq, 0, PW_DEDUP_NEW);
        }
    }
    for (int i = 0; i < STREAMS; i++) {
        char name[16];
        snprintf(name, sizeof name, "p%d", i);
        pw_dedup_stream *s = get(d, name, 1);
        for (uint64_t seq = 0; seq < 900; seq++)
            expect_mark(d, s, seq, 0, seq % 7 == 3 ? PW_DEDUP_NEW : PW_DEDUP_DUPLICATE);
    }
    ck_assert_uint_eq(pw_dedup_hot_streams(d), 64);
    ck_assert_uint_eq(pw_dedup_cold_streams(d), STREAMS - 64);
    ck_assert_uint_gt(pw_dedup_evictions(d), STREAMS);
    pw_dedup_free(d);
}
END_TEST

START_TEST(test_dedup_exhausted_budget_refuses_new_streams_and_forgets_nothing)
{
    pw_dedup *d = pw_dedup_new(256, 2, 8192);
    int created = 0;
    for (int i = 0; i < 1000; i++) {
        char name[16];
        snprintf(name, sizeof name, "p%d", i);
        pw_dedup_stream *s = NULL;
        if (pw_dedup_stream_get(d, name, strlen(name), 1, 1.0, &s) != PW_OK) {
            ck_assert_ptr_null(s);
            break;
        }
        created++;
        for (uint64_t seq = 0; seq < 50; seq += 2) {
            enum pw_dedup_verdict v = pw_dedup_mark(d, s, seq, 0);
            ck_assert(v == PW_DEDUP_NEW || v == PW_DEDUP_REFUSED_MEMORY);
        }
    }
    ck_assert_int_gt(created, 2);
    ck_assert_int_lt(created, 1000);
    ck_assert_uint_le(pw_dedup_memory_bytes(d), 8192 + 2 * 256 / 4 + 4096);
    /* Every stream that was created still knows what it wrote. */
    for (int i = 0; i < created; i++) {
        char name[16];
        snprintf(name, sizeof name, "p%d", i);
        ck_assert(pw_dedup_contains(d, name, strlen(name), 1, 0));
    }
    pw_dedup_free(d);
}
END_TEST

START_TEST(test_dedup_recovery_takes_any_order_and_any_number_of_streams)
{
    pw_dedup *d = pw_dedup_new(128, 2, BIG_BUDGET);
    /* Files are not in live order: recover seq 500..0 backwards, 100 streams. */
    for (int i = 0; i < 100; i++) {
        char name[16];
        snprintf(name, sizeof name, "p%d", i);
        for (uint64_t seq = 301; seq-- > 0;)
            if (seq != 250)
                ck_assert_int_eq(pw_dedup_recover(d, name, strlen(name), 3, seq, 0, 1.0), PW_OK);
    }
    ck_assert_uint_eq(pw_dedup_cold_streams(d), 100);
    pw_dedup_stream *s = get(d, "p7", 3);
    ck_assert_uint_eq(pw_dedup_stream_base(s), 250);
    ck_assert(pw_dedup_stream_hot(s));
    expect_mark(d, s, 300, 0, PW_DEDUP_DUPLICATE);
    expect_mark(d, s, 250, 0, PW_DEDUP_NEW);
    expect_mark(d, s, 301, 0, PW_DEDUP_NEW);
    ck_assert_uint_eq(pw_dedup_stream_base(s), 302);
    /* Written under a wider window (a restart with a smaller one): it stays
     * cold, still exact. */
    for (uint64_t seq = 0; seq < 1000; seq += 2)
        ck_assert_int_eq(pw_dedup_recover(d, "w", 1, 1, seq, 0, 1.0), PW_OK);
    pw_dedup_stream *w = get(d, "w", 1);
    ck_assert(!pw_dedup_stream_hot(w));
    expect_mark(d, w, 998, 0, PW_DEDUP_DUPLICATE);
    expect_mark(d, w, 1, 0, PW_DEDUP_NEW);
    expect_mark(d, w, 999, 0, PW_DEDUP_REFUSED_WINDOW);
    pw_dedup_free(d);
}
END_TEST

START_TEST(test_dedup_lag_watermark_is_the_oldest_hole)
{
    pw_dedup *d = pw_dedup_new(1024, 1, BIG_BUDGET);
    pw_dedup_stream *a = NULL, *b = NULL;
    ck_assert_int_eq(pw_dedup_stream_get(d, "a", 1, 1, 1000.0, &a), PW_OK);
    expect_mark(d, a, 0, 100.0, PW_DEDUP_NEW);
    ck_assert(pw_dedup_lag_watermark(d, 1000.0) == 0); /* caught up */
    /* A slow worker holds seq 1; a fast one writes 2..200 (event times 102..300). */
    for (uint64_t seq = 2; seq <= 200; seq++)
        pw_dedup_mark(d, a, seq, 100.0 + (double)seq);
    ck_assert(pw_dedup_lag_watermark(d, 1000.0) == 102.0);
    /* b (evicted a to cold: the estimate survives) has an older hole. */
    ck_assert_int_eq(pw_dedup_stream_get(d, "b", 1, 1, 1001.0, &b), PW_OK);
    ck_assert(!pw_dedup_stream_hot(a));
    pw_dedup_mark(d, b, 5, 50.0);
    ck_assert(pw_dedup_lag_watermark(d, 1001.0) == 50.0);
    pw_dedup_mark(d, b, 0, 40.0); /* still a hole at 1 */
    ck_assert(pw_dedup_lag_watermark(d, 1001.0) == 50.0);
    for (uint64_t seq = 1; seq < 5; seq++)
        pw_dedup_mark(d, b, seq, 45.0);
    ck_assert(pw_dedup_lag_watermark(d, 1001.0) == 102.0); /* b caught up, a still waits */
    ck_assert_int_eq(pw_dedup_stream_get(d, "a", 1, 1, 1002.0, &a), PW_OK);
    expect_mark(d, a, 1, 101.0, PW_DEDUP_NEW);
    ck_assert(pw_dedup_lag_watermark(d, 1002.0) == 0);
    /* A hole in a stream idle for longer than PW_DEDUP_ACTIVE_SECONDS does not count. */
    pw_dedup_mark(d, a, 300, 400.0);
    ck_assert(pw_dedup_lag_watermark(d, 1002.0 + PW_DEDUP_ACTIVE_SECONDS + 1) == 0);
    pw_dedup_free(d);
}
END_TEST

/* ---- the model ------------------------------------------------------------ */

#define M_STREAMS 10
#define M_SEQS 2048

typedef struct model {
    unsigned char written[M_STREAMS][M_SEQS];
} model;

static uint64_t model_base(const model *m, int s)
{
    uint64_t b = 0;
    while (b < M_SEQS && m->written[s][b])
        b++;
    return b;
}

static void stream_name(int s, char name[16], uint64_t *run)
{
    snprintf(name, 16, "prod-%d", s / 2);
    *run = (uint64_t)(s % 2) + 1;
}

static void model_check_all(pw_dedup *d, const model *m, uint64_t seed)
{
    for (int s = 0; s < M_STREAMS; s++) {
        char name[16];
        uint64_t run;
        stream_name(s, name, &run);
        for (uint64_t q = 0; q < M_SEQS; q++)
            MUST(pw_dedup_contains(d, name, strlen(name), run, q) == (m->written[s][q] != 0),
                          "seed %llu: stream %d seq %llu: index says %d, model %d", (unsigned long long)seed, s,
                          (unsigned long long)q, pw_dedup_contains(d, name, strlen(name), run, q),
                          m->written[s][q]);
    }
}

/* Rebuilds the index from the model's set in a random order (a restart). */
static pw_dedup *model_recover(const model *m, uint64_t window, size_t hot, size_t budget, uint64_t *rng)
{
    pw_dedup *d = pw_dedup_new(window, hot, budget);
    ck_assert_ptr_nonnull(d);
    static uint32_t order[M_STREAMS * M_SEQS];
    size_t n = 0;
    for (int s = 0; s < M_STREAMS; s++)
        for (uint32_t q = 0; q < M_SEQS; q++)
            if (m->written[s][q])
                order[n++] = (uint32_t)s * M_SEQS + q;
    for (size_t i = n; i > 1; i--) {
        size_t k = (size_t)(pw_test_rng(rng) % i);
        uint32_t t = order[i - 1];
        order[i - 1] = order[k];
        order[k] = t;
    }
    for (size_t i = 0; i < n; i++) {
        char name[16];
        uint64_t run;
        stream_name((int)(order[i] / M_SEQS), name, &run);
        MUST(pw_dedup_recover(d, name, strlen(name), run, order[i] % M_SEQS, 1.0, 1.0) == PW_OK, "recover");
    }
    return d;
}

static void model_run(uint64_t seed)
{
    uint64_t rng = seed;
    uint64_t window = 64 * (1 + pw_test_rng(&rng) % 4);
    size_t hot = 1 + (size_t)(pw_test_rng(&rng) % 4);
    /* A third of the runs with a budget small enough to refuse. */
    size_t budget = pw_test_rng(&rng) % 3 ? BIG_BUDGET : 1500 + (size_t)(pw_test_rng(&rng) % 4000);
    pw_dedup *d = pw_dedup_new(window, hot, budget);
    static model m;
    memset(&m, 0, sizeof m);
    int steps = 200 + (int)(pw_test_rng(&rng) % 400);
    for (int step = 0; step < steps; step++) {
        uint64_t r = pw_test_rng(&rng);
        if (r % 97 == 0) { /* restart: recover from what was written */
            pw_dedup_free(d);
            d = model_recover(&m, window, hot, BIG_BUDGET, &rng);
            model_check_all(d, &m, seed);
            continue;
        }
        int s = (int)(pw_test_rng(&rng) % M_STREAMS);
        if (s > 1 && r % 3)
            s = (int)(r % 2); /* two busy streams, the rest come and go (evictions) */
        char name[16];
        uint64_t run;
        stream_name(s, name, &run);
        pw_dedup_stream *st = NULL;
        if (pw_dedup_stream_get(d, name, strlen(name), run, 1.0, &st) != PW_OK) {
            MUST(budget != BIG_BUDGET, "seed %llu: stream refused with a big budget",
                          (unsigned long long)seed);
            continue; /* refused: its records are not marked (checked at the end) */
        }
        uint64_t base = model_base(&m, s);
        MUST(pw_dedup_stream_base(st) == base, "seed %llu step %d: base %llu, model %llu",
                      (unsigned long long)seed, step, (unsigned long long)pw_dedup_stream_base(st),
                      (unsigned long long)base);
        /* A burst of seqs: mostly within the window, some beyond, some old. */
        int burst = 1 + (int)(pw_test_rng(&rng) % 8);
        for (int b = 0; b < burst; b++) {
            uint64_t q;
            uint64_t k = pw_test_rng(&rng) % 10;
            if (k < 6)
                q = base + pw_test_rng(&rng) % window;
            else if (k < 8)
                q = base + pw_test_rng(&rng) % (2 * window);
            else
                q = pw_test_rng(&rng) % (base + 1);
            if (q >= M_SEQS)
                continue;
            enum pw_dedup_verdict want = m.written[s][q] ? PW_DEDUP_DUPLICATE
                                         : q >= model_base(&m, s) + window ? PW_DEDUP_REFUSED_WINDOW
                                                                           : PW_DEDUP_NEW;
            enum pw_dedup_verdict got = pw_dedup_mark(d, st, q, 0);
            if (got == PW_DEDUP_REFUSED_MEMORY && want == PW_DEDUP_NEW && budget != BIG_BUDGET)
                want = got;
            MUST(got == want, "seed %llu step %d: stream %d seq %llu: verdict %d, model %d",
                          (unsigned long long)seed, step, s, (unsigned long long)q, got, want);
            if (got == PW_DEDUP_NEW)
                m.written[s][q] = 1;
            MUST(pw_dedup_contains(d, name, strlen(name), run, q) == (m.written[s][q] != 0),
                          "seed %llu step %d: seq %llu marked wrongly", (unsigned long long)seed, step,
                          (unsigned long long)q);
        }
    }
    model_check_all(d, &m, seed);
    pw_dedup_free(d);
}

START_TEST(test_dedup_matches_a_set_of_written_ids_over_random_sequences)
{
    pw_test_model_runs("test_dedup", 1000, 40, model_run);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("dedup");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_dedup_reports_each_seq_new_once);
    tcase_add_test(tc, test_dedup_handles_out_of_order_within_window);
    tcase_add_test(tc, test_dedup_separates_streams_by_producer_and_run);
    tcase_add_test(tc, test_dedup_seq_beyond_window_is_refused_not_written);
    tcase_add_test(tc, test_dedup_one_refusal_then_in_order_seqs_count_once);
    tcase_add_test(tc, test_dedup_more_streams_than_hot_slots_stay_exactly_once);
    tcase_add_test(tc, test_dedup_exhausted_budget_refuses_new_streams_and_forgets_nothing);
    tcase_add_test(tc, test_dedup_recovery_takes_any_order_and_any_number_of_streams);
    tcase_add_test(tc, test_dedup_lag_watermark_is_the_oldest_hole);
    tcase_add_test(tc, test_dedup_matches_a_set_of_written_ids_over_random_sequences);
    suite_add_tcase(s, tc);
    return pw_test_run(s);
}

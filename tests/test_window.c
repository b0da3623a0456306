/*
 * test_window: the producer's unacknowledged window (common/window.h) and
 * worker credit (common/dispatch.h).
 *
 * The model test drives the window through random sequences of fills
 * (records of random sizes under random count and byte limits), acks of
 * random ranges in any order, timer scans at random times, lost workers,
 * failed sends and limit changes, against a reference model that keeps a
 * plain map of seq -> {acknowledged, times sent}.  After every operation:
 * pw_window_check() (internal invariants) and the model's view agree, and
 * what a fill put in the batch obeys its limits.  The seed is printed on
 * failure; PW_MODEL_ITERATIONS sets how many sequences run.
 */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "pw.h"
#include "support.h"
#include "wire.h"
#include "window.h"


/* ---- helpers -------------------------------------------------------------- */

static uint64_t rng_state;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static uint64_t rnd_below(uint64_t n) { return n ? rnd() % n : 0; }

/* Record bytes: size chosen per seq (deterministic, like the generator). */
static size_t record_size_for(uint64_t seq, size_t big)
{
    uint64_t h = seq * 0x9E3779B97F4A7C15u;
    return (h >> 60) == 0 ? big : 20 + (size_t)(h >> 58);
}

typedef struct gen_ctx {
    size_t big;
    bool all_big;
    uint64_t calls;
} gen_ctx;

static void gen(void *ctx, pw_buf *out, uint64_t seq, double ts)
{
    gen_ctx *g = ctx;
    (void)ts;
    g->calls++;
    size_t n = g->all_big ? g->big : record_size_for(seq, g->big);
    for (size_t i = 0; i < n; i++)
        pw_buf_append_char(out, 'a' + (char)(seq % 26));
}

#define MS 1000000ull

/* ---- the model ----------------------------------------------------------- */

typedef struct model {
    uint64_t next_seq;
    uint8_t *acked;     /* by seq */
    uint8_t *sends;
    uint8_t *queued;    /* the model's own notion: overdue or worker lost */
    uint16_t *peer;
    uint64_t *sent_at;
    uint64_t cap;
} model;

static uint64_t model_in_flight(const model *m)
{
    uint64_t n = 0;
    for (uint64_t s = 0; s < m->next_seq; s++)
        n += !m->acked[s];
    return n;
}

static uint64_t model_oldest(const model *m)
{
    uint64_t s = 0;
    while (s < m->next_seq && m->acked[s])
        s++;
    return s;
}

static void fail_seed(uint64_t seed, int step, const char *what)
{
    ck_abort_msg("window model: seed %llu, step %d: %s (replay: PW_MODEL_SEED=%llu PW_MODEL_ITERATIONS=1)",
                 (unsigned long long)seed, step, what, (unsigned long long)seed);
}

static void run_model(uint64_t seed, int steps)
{
    rng_state = (seed * 0x9E3779B97F4A7C15u) | 1; /* consecutive seeds: unrelated streams */
    uint64_t max_in_flight = 1 + rnd_below(300);
    uint32_t rto_min = 1 + (uint32_t)rnd_below(50), rto_max = rto_min + (uint32_t)rnd_below(2000);
    uint64_t now = 1000 * MS;
    pw_window w;
    ck_assert_int_eq(pw_window_init(&w, max_in_flight, rto_min, rto_max, now), PW_OK);
    uint64_t total = 4096;
    model m = { .acked = calloc(total, 1), .sends = calloc(total, 1), .queued = calloc(total, 1),
                .peer = calloc(total, sizeof(uint16_t)),
                .sent_at = calloc(total, sizeof(uint64_t)), .cap = w.mask + 1 };
    gen_ctx g = { .big = 100 + rnd_below(5000) };
    pw_buf msg = PW_BUF_INIT;
    uint64_t limit = max_in_flight;
    for (int step = 0; step < steps && m.next_seq < total - 512; step++) {
        int op = (int)rnd_below(100);
        now += rnd_below(op < 10 ? 3000 : 20) * MS;
        if (op < 40) { /* fill a batch */
            pw_batch_writer bw;
            pw_batch_begin(&bw, &msg, "p1", 2, 9);
            size_t max_bytes = 200 + rnd_below(20000);
            pw_fill f = { .max_records = 1 + rnd_below(64), .max_bytes = max_bytes,
                          .fresh_allowed = rnd_below(4) ? rnd_below(100) : 0, .fresh_ts = (double)step,
                          .peer = (uint16_t)rnd_below(4), .write = gen, .ctx = &g };
            uint64_t before_next = m.next_seq, room = pw_window_room(&w);
            uint64_t added = pw_window_fill(&w, &bw, &f, now);
            if (added != bw.count || added != f.resent + f.fresh || added > f.max_records)
                fail_seed(seed, step, "fill counts disagree");
            if (f.fresh > room || f.fresh > f.fresh_allowed)
                fail_seed(seed, step, "fill went past the window's room or the records allowed");
            if (msg.len > max_bytes && bw.count > 1)
                fail_seed(seed, step, "batch crossed its byte limit");
            pw_batch_reader r;
            pw_batch_item item;
            if (pw_batch_read_begin(&r, msg.data, msg.len) != PW_OK)
                fail_seed(seed, step, "fill built an unreadable batch");
            uint64_t fresh_seen = 0;
            while (pw_batch_read_next(&r, &item) == 1) {
                uint64_t s = item.seq;
                if (s >= before_next) {
                    if (s != before_next + fresh_seen)
                        fail_seed(seed, step, "new seqs not consecutive");
                    fresh_seen++;
                    m.next_seq = s + 1;
                } else {
                    if (m.acked[s])
                        fail_seed(seed, step, "an acknowledged record was sent again");
                    if (!m.queued[s])
                        fail_seed(seed, step, "a record was re-sent that was not due");
                    if (item.len != record_size_for(s, g.big))
                        fail_seed(seed, step, "a re-send did not regenerate the same record");
                }
                m.queued[s] = 0;
                m.sends[s]++;
                m.sent_at[s] = now;
                m.peer[s] = f.peer;
            }
            if (fresh_seen != f.fresh)
                fail_seed(seed, step, "fresh count disagrees with the batch");
        } else if (op < 70) { /* ack a random range, any order, possibly stale or beyond */
            uint64_t first = rnd_below(m.next_seq + 10), n = 1 + rnd_below(rnd_below(4) ? 4 : 200);
            uint64_t newly = 0;
            for (uint64_t s = first; s < first + n && s < m.next_seq; s++) {
                if (!m.acked[s]) {
                    m.acked[s] = 1;
                    m.queued[s] = 0;
                    newly++;
                }
            }
            if (pw_window_ack(&w, first, n, now) != newly)
                fail_seed(seed, step, "ack count disagrees with the model");
        } else if (op < 85) { /* timer scan */
            uint64_t found = pw_window_scan(&w, now);
            uint64_t q = 0;
            for (uint64_t s = 0; s < m.next_seq; s++) {
                if (!m.acked[s] && !m.queued[s] && w.slots[s & w.mask].state != PW_SLOT_SENT) {
                    if (now - m.sent_at[s] < (uint64_t)rto_min * MS)
                        fail_seed(seed, step, "a record timed out sooner than the floor after its send");
                    m.queued[s] = 1;
                    q++;
                }
            }
            if (q != found)
                fail_seed(seed, step, "scan queued a different number than the window says");
        } else if (op < 90) { /* a worker is lost */
            uint16_t peer = (uint16_t)rnd_below(4);
            uint64_t want = 0;
            for (uint64_t s = 0; s < m.next_seq; s++)
                if (!m.acked[s] && !m.queued[s] && m.peer[s] == peer) {
                    m.queued[s] = 1;
                    want++;
                }
            if (pw_window_requeue_peer(&w, peer) != want)
                fail_seed(seed, step, "lost-worker requeue count disagrees");
        } else if (op < 93) { /* one send failed */
            uint64_t s = rnd_below(m.next_seq + 1);
            pw_window_requeue(&w, s);
            if (s < m.next_seq && !m.acked[s] && !m.queued[s])
                m.queued[s] = 1;
        } else { /* the sink's dedup window changes */
            limit = 1 + rnd_below(max_in_flight + 50);
            pw_window_set_limit(&w, limit);
        }
        /* invariants after every step */
        if (!pw_window_check(&w))
            fail_seed(seed, step, "pw_window_check failed");
        if (w.in_flight != model_in_flight(&m) || w.oldest != model_oldest(&m) || w.next_seq != m.next_seq)
            fail_seed(seed, step, "in_flight/oldest/next_seq differ from the model");
        uint64_t mq = 0;
        for (uint64_t s = 0; s < m.next_seq; s++)
            mq += m.queued[s];
        if (w.queued != mq)
            fail_seed(seed, step, "queued differs from the model");
        if (w.queued > w.next_seq - w.oldest || w.next_seq - w.oldest > w.mask + 1)
            fail_seed(seed, step, "queue or span beyond the window");
        if (w.next_seq - w.oldest > max_in_flight)
            fail_seed(seed, step, "span beyond --max-in-flight");
    }
    pw_buf_free(&msg);
    pw_window_free(&w);
    free(m.acked);
    free(m.sends);
    free(m.queued);
    free(m.peer);
    free(m.sent_at);
}

static void run_model_400_steps(uint64_t seed)
{
    run_model(seed, 400);
}

START_TEST(test_window_matches_the_model_over_random_operation_sequences)
{
    pw_test_model_runs("test_window", 2000, 40, run_model_400_steps);
}
END_TEST

/* ---- one test per bug of the old producer --------------------------------- */

/* Old producer: the overdue scan appended to a re-send array with no bound
 * and compacted it only when drained, so repeated scans under a slow stage
 * wrote past its end (ASan: heap-buffer-overflow in scan_for_resends). */
START_TEST(test_window_repeated_scans_never_queue_a_record_twice)
{
    pw_window w;
    uint64_t now = 1000 * MS;
    ck_assert_int_eq(pw_window_init(&w, 4096, 10, 10, now), PW_OK);
    gen_ctx g = { .big = 10 };
    pw_buf msg = PW_BUF_INIT;
    for (int round = 0; round < 20; round++) {
        pw_batch_writer bw;
        pw_batch_begin(&bw, &msg, "p1", 2, 1);
        pw_fill f = { .max_records = 256, .max_bytes = PW_WIRE_MAX_MESSAGE, .fresh_allowed = 4096,
                      .write = gen, .ctx = &g };
        pw_window_fill(&w, &bw, &f, now); /* sends a few re-sends early, then new ones */
        now += 20 * MS;
        pw_window_scan(&w, now);
        pw_window_scan(&w, now + 1);
        ck_assert_uint_le(w.queued, w.next_seq - w.oldest);
        ck_assert(pw_window_check(&w));
    }
    ck_assert_uint_ge(w.resent[PW_RESEND_ACK_TIMEOUT], 19 * 256 - 1);
    pw_buf_free(&msg);
    pw_window_free(&w);
}
END_TEST

/* Old producer: batches were capped by count only; 256 oversize records
 * (~70 KB each) made an 18 MB message the workers refused, forever. */
START_TEST(test_window_batches_of_oversize_records_stay_within_the_message_limit)
{
    pw_window w;
    ck_assert_int_eq(pw_window_init(&w, 65536, 200, 5000, 0), PW_OK);
    gen_ctx g = { .big = 70000, .all_big = true };
    pw_buf msg = PW_BUF_INIT;
    uint64_t sent = 0;
    for (int i = 0; i < 3; i++) {
        pw_batch_writer bw;
        pw_batch_begin(&bw, &msg, "p1", 2, 1);
        pw_fill f = { .max_records = 256, .max_bytes = PW_WIRE_MAX_MESSAGE, .fresh_allowed = 1000,
                      .write = gen, .ctx = &g };
        uint64_t n = pw_window_fill(&w, &bw, &f, 0);
        ck_assert_uint_gt(n, 0);
        ck_assert_uint_le(msg.len, PW_WIRE_MAX_MESSAGE);
        sent += n;
    }
    ck_assert_uint_eq(sent, w.next_seq);
    pw_buf_free(&msg);
    pw_window_free(&w);
}
END_TEST

/* Fills one batch of up to max_records (re-sends first), at most `fresh` new. */
static void fill_fixed(pw_window *w, pw_buf *msg, size_t record_bytes, uint64_t max_records, uint64_t fresh,
                       uint64_t now)
{
    gen_ctx g = { .big = record_bytes, .all_big = true };
    pw_batch_writer bw;
    pw_batch_begin(&bw, msg, "p1", 2, 1);
    pw_fill f = { .max_records = max_records, .max_bytes = PW_WIRE_MAX_MESSAGE, .fresh_allowed = fresh,
                  .write = gen, .ctx = &g };
    pw_window_fill(w, &bw, &f, now);
}

/* The sink's dedup window (from its greeting) bounds the span: with the old
 * producer a --max-in-flight above --dedup-window lost records silently. */
START_TEST(test_window_span_never_exceeds_the_sink_window)
{
    pw_window w;
    pw_buf msg = PW_BUF_INIT;
    ck_assert_int_eq(pw_window_init(&w, 65536, 200, 5000, 0), PW_OK);
    pw_window_set_limit(&w, 1024);
    for (int i = 0; i < 10; i++)
        fill_fixed(&w, &msg, 10, 500, 500, 0);
    ck_assert_uint_eq(w.next_seq, 1024);
    ck_assert_uint_eq(pw_window_room(&w), 0);
    pw_window_ack(&w, 1, 1023, 0); /* everything but seq 0 */
    fill_fixed(&w, &msg, 10, 500, 500, 0);
    ck_assert_uint_eq(w.next_seq, 1024); /* the oldest pins the span */
    pw_window_ack(&w, 0, 1, 0);
    fill_fixed(&w, &msg, 10, 5000, 5000, 0);
    ck_assert_uint_eq(w.next_seq, 2048);
    pw_window_set_limit(&w, 1u << 30); /* never above --max-in-flight */
    ck_assert_uint_eq(w.limit, 65536);
    pw_buf_free(&msg);
    pw_window_free(&w);
}
END_TEST

START_TEST(test_window_timeout_follows_measured_latency_and_backs_off)
{
    pw_window w;
    pw_buf msg = PW_BUF_INIT;
    ck_assert_int_eq(pw_window_init(&w, 1024, 50, 5000, 0), PW_OK);
    ck_assert_uint_eq(w.rto_ms, 5000); /* before any sample: the ceiling */
    uint64_t now = 0;
    for (int i = 0; i < 50; i++) { /* acks come 20 ms after each send */
        fill_fixed(&w, &msg, 10, 10, 10, now);
        now += 20 * MS;
        pw_window_ack(&w, 0, w.next_seq, now);
    }
    ck_assert_uint_ge(w.rto_ms, 50);
    ck_assert_uint_le(w.rto_ms, 100);
    uint32_t rto = w.rto_ms;
    /* A stall: nothing acked.  The first scan after rto queues, re-sends
     * wait twice as long, and the timeout itself backs off. */
    fill_fixed(&w, &msg, 10, 1, 1, now);
    uint64_t seq = w.next_seq - 1, sent_at = now;
    ck_assert_uint_eq(pw_window_scan(&w, sent_at + (rto - 1) * MS), 0);
    ck_assert_uint_eq(pw_window_scan(&w, sent_at + rto * MS), 1);
    ck_assert_uint_eq(w.rto_ms, 2 * rto);
    fill_fixed(&w, &msg, 10, 1000, 0, sent_at + rto * MS); /* the re-send */
    ck_assert_uint_eq(w.slots[seq & w.mask].sends, 2);
    uint64_t resent_at = sent_at + rto * MS;
    ck_assert_uint_eq(pw_window_scan(&w, resent_at + (2 * 2 * rto - 1) * MS), 0);
    ck_assert_uint_eq(pw_window_scan(&w, resent_at + 2 * 2 * rto * MS), 1);
    /* Karn: the ack of a re-sent record is not a sample. */
    double srtt = w.srtt_ms;
    fill_fixed(&w, &msg, 10, 1000, 0, resent_at + 4 * rto * MS);
    pw_window_ack(&w, seq, 1, resent_at + 4 * rto * MS + 1 * MS);
    ck_assert_double_eq(w.srtt_ms, srtt);
    ck_assert_uint_eq(w.resent[PW_RESEND_ACK_TIMEOUT], 2);
    pw_buf_free(&msg);
    pw_window_free(&w);
}
END_TEST

START_TEST(test_window_lost_worker_records_are_resent_at_once_and_counted)
{
    pw_window w;
    pw_buf msg = PW_BUF_INIT;
    ck_assert_int_eq(pw_window_init(&w, 1024, 200, 5000, 0), PW_OK);
    gen_ctx g = { .big = 10 };
    for (uint16_t peer = 0; peer < 2; peer++) {
        pw_batch_writer bw;
        pw_batch_begin(&bw, &msg, "p1", 2, 1);
        pw_fill f = { .max_records = 100, .max_bytes = PW_WIRE_MAX_MESSAGE, .fresh_allowed = 100, .peer = peer,
                      .write = gen, .ctx = &g };
        pw_window_fill(&w, &bw, &f, 0);
    }
    pw_window_ack(&w, 150, 10, 0); /* some of peer 1's made it */
    ck_assert_uint_eq(pw_window_requeue_peer(&w, 1), 90);
    ck_assert_uint_eq(pw_window_requeue_peer(&w, 1), 0); /* once */
    pw_batch_writer bw;
    pw_batch_begin(&bw, &msg, "p1", 2, 1);
    pw_fill f = { .max_records = 1000, .max_bytes = PW_WIRE_MAX_MESSAGE, .fresh_allowed = 0, .peer = 0,
                  .write = gen, .ctx = &g };
    ck_assert_uint_eq(pw_window_fill(&w, &bw, &f, 1 * MS), 90);
    ck_assert_uint_eq(w.resent[PW_RESEND_WORKER_LOST], 90);
    ck_assert_uint_eq(w.resent[PW_RESEND_ACK_TIMEOUT], 0);
    ck_assert(pw_window_check(&w));
    pw_buf_free(&msg);
    pw_window_free(&w);
}
END_TEST

START_TEST(test_pace_allows_rate_per_second_from_the_start)
{
    pw_pace p = { .rate = 1000, .started_ns = 5000 * MS };
    ck_assert_uint_eq(pw_pace_due(&p, 0, 5000 * MS), 1);       /* the first at once */
    ck_assert_uint_eq(pw_pace_due(&p, 1, 5000 * MS), 0);
    ck_assert_uint_eq(pw_pace_due(&p, 1, 5001 * MS), 1);
    ck_assert_uint_eq(pw_pace_due(&p, 1, 6000 * MS), 1000);    /* a second later: 1001 in all */
    ck_assert_uint_eq(pw_pace_due(&p, 2000, 6000 * MS), 0);
    ck_assert_int_eq(pw_pace_wait_ms(&p, 1, 5000 * MS, 100), 1);
    ck_assert_int_eq(pw_pace_wait_ms(&p, 500, 5000 * MS, 100), 100); /* capped */
    ck_assert_int_eq(pw_pace_wait_ms(&p, 1, 5002 * MS, 100), 0);
    pw_pace unpaced = { .rate = 0 };
    ck_assert_uint_eq(pw_pace_due(&unpaced, 12345, 0), UINT64_MAX);
    ck_assert_int_eq(pw_pace_wait_ms(&unpaced, 12345, 0, 100), 0);
}
END_TEST

START_TEST(test_window_requeue_batch_queues_exactly_the_batch)
{
    pw_window w;
    pw_buf msg = PW_BUF_INIT, other = PW_BUF_INIT;
    ck_assert_int_eq(pw_window_init(&w, 1024, 200, 5000, 0), PW_OK);
    fill_fixed(&w, &other, 10, 30, 30, 0);
    fill_fixed(&w, &msg, 10, 20, 20, 0); /* seqs 30..49 */
    pw_window_requeue_batch(&w, msg.data, msg.len);
    ck_assert_uint_eq(w.queued, 20);
    for (uint64_t seq = 0; seq < 50; seq++)
        ck_assert_int_eq(w.slots[seq].state, seq >= 30 ? PW_SLOT_QUEUED_LOST : PW_SLOT_SENT);
    pw_window_requeue_batch(&w, "garbage", 7); /* not a batch: nothing */
    ck_assert_uint_eq(w.queued, 20);
    ck_assert(pw_window_check(&w));
    pw_buf_free(&msg);
    pw_buf_free(&other);
    pw_window_free(&w);
}
END_TEST

/* ---- dispatch ------------------------------------------------------------- */

START_TEST(test_dispatch_credit_from_new_known_and_quiet_workers)
{
    pw_dispatch d;
    ck_assert_int_eq(pw_dispatch_init(&d, 4, 500, 5000), PW_OK);
    uint64_t now = 10000 * MS;
    int a = pw_dispatch_credit(&d, "A", 1, 128, 128, now);
    int b = pw_dispatch_credit(&d, "B", 1, 10, 10, now);
    ck_assert_int_ge(a, 0);
    ck_assert_int_ge(b, 0);
    ck_assert_int_eq(pw_dispatch_pick(&d), a); /* the most credit */
    pw_dispatch_sent(&d, a, 120, now);
    ck_assert_int_eq(pw_dispatch_pick(&d), b);
    pw_dispatch_sent(&d, b, 10, now);
    ck_assert_int_eq(pw_dispatch_pick(&d), a);
    pw_dispatch_sent(&d, a, 8, now);
    ck_assert_int_eq(pw_dispatch_pick(&d), -1);
    /* Just after a send, a grant adds (outstanding may not count in-transit records). */
    ck_assert_int_eq(pw_dispatch_credit(&d, "A", 1, 64, 64, now + 1 * MS), a);
    ck_assert_uint_eq(d.peers[a].credit, 64);
    ck_assert_int_eq(pw_dispatch_credit(&d, "A", 1, 64, 128, now + 2 * MS), a);
    ck_assert_uint_eq(d.peers[a].credit, 128);
    /* Quiet for two heartbeats: the worker's own count is exact and heals drift. */
    ck_assert_int_eq(pw_dispatch_credit(&d, "A", 1, 0, 100, now + 1001 * MS), a);
    ck_assert_uint_eq(d.peers[a].credit, 100);
    ck_assert_uint_eq(pw_dispatch_credit_total(&d), 100);
    ck_assert_int_eq(pw_dispatch_credit(&d, "this id is much longer than thirty-two bytes", 44, 1, 1, now), -1);
    pw_dispatch_free(&d);
}
END_TEST

START_TEST(test_dispatch_silent_worker_is_lost_once_and_can_come_back)
{
    pw_dispatch d;
    ck_assert_int_eq(pw_dispatch_init(&d, 2, 500, 5000), PW_OK);
    uint64_t now = 10000 * MS;
    int a = pw_dispatch_credit(&d, "A", 1, 10, 10, now);
    int b = pw_dispatch_credit(&d, "B", 1, 10, 10, now);
    ck_assert_int_eq(pw_dispatch_credit(&d, "C", 1, 10, 10, now), -1); /* table full */
    ck_assert_int_eq(pw_dispatch_expire(&d, now + 5000 * MS), -1);
    pw_dispatch_credit(&d, "B", 1, 0, 10, now + 4000 * MS); /* B heartbeats */
    ck_assert_int_eq(pw_dispatch_expire(&d, now + 5001 * MS), a);
    ck_assert_int_eq(pw_dispatch_expire(&d, now + 5001 * MS), -1);
    ck_assert_uint_eq(d.live, 1);
    /* A resumes (SIGCONT): it is new again and starts from its own count. */
    int a2 = pw_dispatch_credit(&d, "A", 1, 1, 7, now + 6000 * MS);
    ck_assert_int_ge(a2, 0);
    ck_assert_uint_eq(d.peers[a2].credit, 7);
    (void)b;
    pw_dispatch_free(&d);
}
END_TEST

/* The kept totals (credit_sum, end) always equal what a full scan finds. */
START_TEST(test_dispatch_kept_credit_total_matches_a_scan_over_random_operations)
{
    pw_dispatch d;
    ck_assert_int_eq(pw_dispatch_init(&d, 8, 500, 5000), PW_OK);
    rng_state = 12345;
    uint64_t now = 10000 * MS;
    for (int step = 0; step < 20000; step++) {
        now += rnd_below(400) * MS;
        char id[2] = { (char)('a' + rnd_below(12)), 0 };
        switch (rnd_below(4)) {
        case 0:
            pw_dispatch_credit(&d, id, 1, (uint32_t)rnd_below(300), (uint32_t)rnd_below(300), now);
            break;
        case 1: {
            int i = pw_dispatch_pick(&d);
            if (i >= 0)
                pw_dispatch_sent(&d, i, rnd_below(400), now);
            break;
        }
        case 2:
            pw_dispatch_expire(&d, now);
            break;
        default:
            pw_dispatch_drop(&d, (int)rnd_below(9) - 1);
        }
        uint64_t sum = 0;
        size_t live = 0;
        for (size_t i = 0; i < d.max_workers; i++) {
            ck_assert(i < d.end || !d.peers[i].used);
            if (d.peers[i].used) {
                sum += d.peers[i].credit;
                live++;
            }
        }
        ck_assert_uint_eq(pw_dispatch_credit_total(&d), sum);
        ck_assert_uint_eq(d.live, live);
    }
    pw_dispatch_free(&d);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("window");
    TCase *tc = tcase_create("window");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_window_matches_the_model_over_random_operation_sequences);
    tcase_add_test(tc, test_window_repeated_scans_never_queue_a_record_twice);
    tcase_add_test(tc, test_window_batches_of_oversize_records_stay_within_the_message_limit);
    tcase_add_test(tc, test_window_span_never_exceeds_the_sink_window);
    tcase_add_test(tc, test_window_timeout_follows_measured_latency_and_backs_off);
    tcase_add_test(tc, test_window_lost_worker_records_are_resent_at_once_and_counted);
    tcase_add_test(tc, test_pace_allows_rate_per_second_from_the_start);
    tcase_add_test(tc, test_window_requeue_batch_queues_exactly_the_batch);
    tcase_add_test(tc, test_dispatch_credit_from_new_known_and_quiet_workers);
    tcase_add_test(tc, test_dispatch_silent_worker_is_lost_once_and_can_come_back);
    tcase_add_test(tc, test_dispatch_kept_credit_total_matches_a_scan_over_random_operations);
    suite_add_tcase(s, tc);
    return pw_test_run(s);
}

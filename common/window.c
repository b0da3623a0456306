/*
 * window.c: the producer's unacknowledged window (see window.h for the
 * invariants, the re-send timer and the batch limits).
 */
#include "window.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>

static inline pw_window_slot *slot_of(const pw_window *w, uint64_t seq)
{
    return &w->slots[seq & w->mask];
}

static inline bool queued(const pw_window_slot *s)
{
    return s->state == PW_SLOT_QUEUED_TIMEOUT || s->state == PW_SLOT_QUEUED_LOST;
}

static inline uint32_t ms_of(const pw_window *w, uint64_t now_ns)
{
    return (uint32_t)((now_ns - w->epoch_ns) / 1000000u);
}

int pw_window_init(pw_window *w, uint64_t max_in_flight, uint32_t rto_min_ms, uint32_t rto_max_ms,
                   uint64_t now_ns)
{
    if (max_in_flight == 0 || rto_min_ms == 0 || rto_max_ms < rto_min_ms || max_in_flight > (1ull << 32))
        return PW_EINVAL;
    uint64_t cap = 1;
    while (cap < max_in_flight)
        cap <<= 1;
    *w = (pw_window){ 0 };
    w->slots = calloc(cap, sizeof *w->slots);
    if (!w->slots)
        return PW_ENOMEM;
    w->mask = cap - 1;
    w->limit = w->max_limit = max_in_flight;
    w->epoch_ns = now_ns;
    w->rto_min_ms = rto_min_ms;
    w->rto_max_ms = rto_max_ms;
    w->rto_ms = rto_max_ms;
    return PW_OK;
}

void pw_window_free(pw_window *w)
{
    free(w->slots);
    w->slots = NULL;
}

void pw_window_set_limit(pw_window *w, uint64_t limit)
{
    if (limit == 0)
        limit = 1;
    w->limit = limit < w->max_limit ? limit : w->max_limit;
}

uint64_t pw_window_room(const pw_window *w)
{
    uint64_t span = w->next_seq - w->oldest;
    return span < w->limit ? w->limit - span : 0;
}

double pw_window_oldest_ts(const pw_window *w)
{
    return w->in_flight ? slot_of(w, w->oldest)->ts : 0;
}

static void mark_sent(pw_window_slot *s, uint32_t now_ms, uint16_t peer)
{
    s->state = PW_SLOT_SENT;
    s->sent_ms = now_ms;
    s->peer = peer;
    if (s->sends < UINT8_MAX)
        s->sends++;
}

/* Appends one record; false (and nothing appended) when it would cross the
 * byte limit of a batch that already has a record. */
static bool add_item(pw_batch_writer *bw, const pw_fill *f, uint64_t seq, double ts)
{
    size_t start = pw_batch_item_start(bw, seq, PW_ITEM_RECORD, ts);
    f->write(f->ctx, bw->buf, seq, ts);
    if (bw->buf->len > f->max_bytes && bw->count > 0) {
        pw_batch_item_cancel(bw, start);
        return false;
    }
    pw_batch_item_end(bw, start);
    return true;
}

uint64_t pw_window_fill(pw_window *w, pw_batch_writer *bw, pw_fill *f, uint64_t now_ns)
{
    uint32_t now_ms = ms_of(w, now_ns);
    uint64_t added = 0;
    f->resent = f->fresh = 0;
    if (w->resend_cursor < w->oldest)
        w->resend_cursor = w->oldest;
    while (w->queued > 0 && added < f->max_records) {
        uint64_t seq = w->resend_cursor;
        while (seq < w->next_seq && !queued(slot_of(w, seq)))
            seq++;
        assert(seq < w->next_seq); /* queued > 0: a queued slot lies at or above the cursor */
        w->resend_cursor = seq;
        pw_window_slot *s = slot_of(w, seq);
        if (!add_item(bw, f, seq, s->ts))
            return added;
        w->resent[s->state == PW_SLOT_QUEUED_LOST ? PW_RESEND_WORKER_LOST : PW_RESEND_ACK_TIMEOUT]++;
        mark_sent(s, now_ms, f->peer);
        w->queued--;
        w->resend_cursor = seq + 1;
        added++;
        f->resent++;
    }
    while (added < f->max_records && f->fresh < f->fresh_allowed && pw_window_room(w) > 0) {
        uint64_t seq = w->next_seq;
        if (!add_item(bw, f, seq, f->fresh_ts))
            break;
        pw_window_slot *s = slot_of(w, seq);
        assert(seq - w->oldest <= w->mask); /* never onto a live slot */
        *s = (pw_window_slot){ .ts = f->fresh_ts };
        mark_sent(s, now_ms, f->peer);
        w->next_seq++;
        w->in_flight++;
        added++;
        f->fresh++;
    }
    return added;
}

static void rtt_sample(pw_window *w, double r)
{
    if (!w->have_rtt) {
        w->srtt_ms = r;
        w->rttvar_ms = r / 2;
        w->have_rtt = true;
    } else {
        double d = w->srtt_ms > r ? w->srtt_ms - r : r - w->srtt_ms;
        w->rttvar_ms = 0.75 * w->rttvar_ms + 0.25 * d;
        w->srtt_ms = 0.875 * w->srtt_ms + 0.125 * r;
    }
    double var = 4 * w->rttvar_ms;
    double rto = w->srtt_ms + (var > 10 ? var : 10);
    if (rto < w->rto_min_ms)
        rto = w->rto_min_ms;
    if (rto > w->rto_max_ms)
        rto = w->rto_max_ms;
    w->rto_ms = (uint32_t)rto;
}

uint64_t pw_window_ack(pw_window *w, uint64_t first, uint64_t n, uint64_t now_ns)
{
    if (first >= w->next_seq || n == 0)
        return 0;
    uint64_t lo = first < w->oldest ? w->oldest : first;
    uint64_t hi = n > w->next_seq - first ? w->next_seq : first + n;
    uint32_t now_ms = ms_of(w, now_ns);
    uint64_t acked = 0;
    double sample = -1;
    for (uint64_t seq = lo; seq < hi; seq++) {
        pw_window_slot *s = slot_of(w, seq);
        if (s->state == PW_SLOT_ACKED)
            continue;
        if (queued(s)) {
            w->queued--;
        } else if (s->sends == 1) {
            sample = (double)(uint32_t)(now_ms - s->sent_ms);
            if (w->ack_latency)
                pw_histogram_observe(w->ack_latency, sample / 1000.0);
        }
        s->state = PW_SLOT_ACKED;
        w->in_flight--;
        acked++;
    }
    if (sample >= 0)
        rtt_sample(w, sample);
    while (w->oldest < w->next_seq && slot_of(w, w->oldest)->state == PW_SLOT_ACKED)
        w->oldest++;
    assert(w->in_flight <= w->next_seq - w->oldest);
    return acked;
}

static void queue_slot(pw_window *w, uint64_t seq, uint8_t state)
{
    slot_of(w, seq)->state = state;
    w->queued++;
    if (seq < w->resend_cursor)
        w->resend_cursor = seq;
}

uint64_t pw_window_scan(pw_window *w, uint64_t now_ns)
{
    uint32_t now_ms = ms_of(w, now_ns);
    uint64_t found = 0;
    for (uint64_t seq = w->oldest; seq < w->next_seq; seq++) {
        pw_window_slot *s = slot_of(w, seq);
        if (s->state != PW_SLOT_SENT)
            continue;
        /* Back-off: the k-th send waits rto * 2^(k-1), at most rto_max. */
        uint64_t wait = s->sends > 16 ? w->rto_max_ms : (uint64_t)w->rto_ms << (s->sends - 1);
        if (wait > w->rto_max_ms)
            wait = w->rto_max_ms;
        if ((uint32_t)(now_ms - s->sent_ms) >= wait) {
            queue_slot(w, seq, PW_SLOT_QUEUED_TIMEOUT);
            found++;
        }
    }
    if (found) {
        uint64_t rto = (uint64_t)w->rto_ms * 2;
        w->rto_ms = (uint32_t)(rto < w->rto_max_ms ? rto : w->rto_max_ms);
    }
    return found;
}

uint32_t pw_window_scan_interval_ms(const pw_window *w)
{
    uint32_t every = w->rto_ms / 4;
    return every < 5 ? 5 : every > 250 ? 250 : every;
}

uint64_t pw_window_scan_if_due(pw_window *w, uint64_t now_ns, uint64_t *next_ns)
{
    uint64_t n = 0;
    if (now_ns >= w->next_scan_ns) {
        n = pw_window_scan(w, now_ns);
        w->next_scan_ns = now_ns + pw_window_scan_interval_ms(w) * 1000000ull;
    }
    *next_ns = w->next_scan_ns;
    return n;
}

uint64_t pw_window_requeue_peer(pw_window *w, uint16_t peer)
{
    uint64_t found = 0;
    for (uint64_t seq = w->oldest; seq < w->next_seq; seq++) {
        pw_window_slot *s = slot_of(w, seq);
        if (s->state == PW_SLOT_SENT && s->peer == peer) {
            queue_slot(w, seq, PW_SLOT_QUEUED_LOST);
            found++;
        }
    }
    return found;
}

void pw_window_requeue(pw_window *w, uint64_t seq)
{
    if (seq >= w->oldest && seq < w->next_seq && slot_of(w, seq)->state == PW_SLOT_SENT)
        queue_slot(w, seq, PW_SLOT_QUEUED_LOST);
}

void pw_window_requeue_batch(pw_window *w, const void *msg, size_t len)
{
    pw_batch_reader r;
    pw_batch_item item;
    if (pw_batch_read_begin(&r, msg, len) != PW_OK)
        return;
    while (pw_batch_read_next(&r, &item) == 1)
        pw_window_requeue(w, item.seq);
}

uint64_t pw_pace_due(const pw_pace *p, uint64_t sent, uint64_t now_ns)
{
    if (p->rate == 0)
        return UINT64_MAX;
    double allowed = floor((double)(now_ns - p->started_ns) / 1e9 * (double)p->rate) + 1;
    return allowed > (double)sent ? (uint64_t)(allowed - (double)sent) : 0;
}

long pw_pace_wait_ms(const pw_pace *p, uint64_t sent, uint64_t now_ns, long cap)
{
    if (p->rate == 0)
        return 0;
    double next_at = (double)sent / (double)p->rate; /* record `sent` is due once elapsed * rate >= sent */
    double wait_ms = (next_at - (double)(now_ns - p->started_ns) / 1e9) * 1000.0;
    return wait_ms <= 0 ? 0 : wait_ms < (double)cap ? (long)ceil(wait_ms) : cap;
}

bool pw_window_check(const pw_window *w)
{
    uint64_t span = w->next_seq - w->oldest;
    if (span > w->mask + 1 || w->oldest > w->next_seq)
        return false;
    if (span > 0 && slot_of(w, w->oldest)->state == PW_SLOT_ACKED)
        return false;
    uint64_t unacked = 0, q = 0;
    for (uint64_t seq = w->oldest; seq < w->next_seq; seq++) {
        const pw_window_slot *s = slot_of(w, seq);
        unacked += s->state != PW_SLOT_ACKED;
        if (queued(s)) {
            q++;
            if (seq < w->resend_cursor)
                return false;
        }
    }
    return unacked == w->in_flight && q == w->queued && w->rto_ms >= w->rto_min_ms &&
           w->rto_ms <= w->rto_max_ms;
}

static const char *const resend_causes[PW_RESEND_CAUSES] = { "ack_timeout", "worker_lost" };

int pw_window_metrics_register(pw_window *w, pw_registry *reg)
{
    w->in_flight_gauge = pw_gauge_register(reg, "pipeline_records_in_flight",
                                           "Records sent and not yet acknowledged by the sink.");
    w->oldest_age = pw_age_register(reg, "pipeline_oldest_unacked_age_seconds",
                                    "Now minus the event time of the oldest record sent and not yet "
                                    "acknowledged (0 when none); computed when pushed.");
    w->ack_timeout = pw_gauge_register(reg, "pipeline_ack_timeout_seconds",
                                       "Current re-send timeout, adapted to the measured ack latency "
                                       "(--ack-timeout is its ceiling).");
    w->retried = pw_counter_vec_register(reg, "pipeline_records_retried_total",
                                         "Records sent again, by cause: ack_timeout (no ack within the "
                                         "re-send timeout) or worker_lost (the worker holding it went silent).",
                                         "cause", resend_causes, PW_RESEND_CAUSES);
    w->ack_latency = pw_histogram_register(reg, "pipeline_ack_latency_seconds",
                                           "Send to acknowledgement time of records acknowledged after their "
                                           "first send.", pw_buckets_latency, pw_buckets_latency_len);
    return w->in_flight_gauge && w->oldest_age && w->ack_timeout && w->retried && w->ack_latency ? PW_OK
                                                                                                  : PW_ENOMEM;
}

void pw_window_metrics_update(pw_window *w)
{
    if (!w->in_flight_gauge)
        return;
    pw_gauge_set(w->in_flight_gauge, (double)w->in_flight);
    pw_gauge_set(w->oldest_age, pw_window_oldest_ts(w));
    pw_gauge_set(w->ack_timeout, w->rto_ms / 1000.0);
    for (int c = 0; c < PW_RESEND_CAUSES; c++) {
        pw_counter_vec_add(w->retried, (size_t)c, w->resent[c] - w->resent_pushed[c]);
        w->resent_pushed[c] = w->resent[c];
    }
}

/*
 * window.h: the producer's unacknowledged window, its re-send timer and
 * the batches it sends.
 *
 * Every record the producer has sent and the sink has not acknowledged has
 * a slot here, indexed by seq in a ring.  A slot holds the event time, the
 * last send time, how often the record was sent and which worker has it;
 * not the record's bytes: generation is deterministic, so a re-send
 * regenerates the same record.
 *
 * Invariants (checked by assert() in test and sanitizer builds, and by the
 * model test tests/test_window.c after every operation):
 *   - span = next_seq - oldest <= limit <= capacity: the ring never wraps
 *     onto a live slot, and the span never exceeds the sink's dedup window
 *     once the sink has said it (pw_window_set_limit);
 *   - the slot of `oldest` is unacknowledged (or the window is empty);
 *   - in_flight = number of slots not acknowledged in [oldest, next_seq);
 *   - queued = number of slots waiting for a re-send, all at or above
 *     resend_cursor: the re-send "queue" is the slots themselves, walked by
 *     a cursor, so it is bounded by the window by construction and a record
 *     is queued at most once however often it times out.
 *
 * Re-send timer (TCP's, RFC 6298): the timeout follows the ack latency
 * measured on records acknowledged after their first send (Karn: a re-sent
 * record's ack is ambiguous and not sampled): rto = srtt + max(10 ms,
 * 4 * rttvar), between rto_min and rto_max (--ack-timeout); before the
 * first sample it is rto_max.  A record sent k times waits rto * 2^(k-1)
 * (capped at rto_max) before it is sent again, and a scan that finds
 * overdue records doubles rto until the next sample (back-off: a stalled
 * sink is not flooded).  A record held by a worker that is lost is queued
 * at once, whatever its timer.
 *
 * Batches: pw_window_fill() adds re-sends first, then new records, to a
 * batch for one worker, stopping at a record count (the worker's credit and
 * --batch) and a byte limit (PW_WIRE_MAX_MESSAGE), so no message a
 * pipewatch producer builds is ever refused by a worker.
 *
 * Owns its slots (one allocation at init).  One thread; no I/O.
 */
#ifndef PW_WINDOW_H
#define PW_WINDOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "metrics.h"
#include "pw.h"
#include "wire.h"

enum pw_slot_state {
    PW_SLOT_ACKED = 0,
    PW_SLOT_SENT = 1,            /* sent, waiting for its ack */
    PW_SLOT_QUEUED_TIMEOUT = 2,  /* waiting for a re-send: its ack is overdue */
    PW_SLOT_QUEUED_LOST = 3,     /* waiting for a re-send: its worker was lost */
};

enum pw_resend_cause { PW_RESEND_ACK_TIMEOUT, PW_RESEND_WORKER_LOST, PW_RESEND_CAUSES };

/* 16 bytes: the window is the producer's largest allocation. */
typedef struct pw_window_slot {
    double ts;          /* event time, so a re-send is the same record */
    uint32_t sent_ms;   /* last send, ms since the window's epoch (49 days of range) */
    uint8_t state;
    uint8_t sends;      /* times sent, saturating at 255 */
    uint16_t peer;      /* worker that has it (pw_dispatch index) */
} pw_window_slot;

typedef struct pw_window {
    pw_window_slot *slots;
    uint64_t mask;              /* capacity - 1 (capacity: a power of two) */
    uint64_t limit;             /* most seqs the span may cover now */
    uint64_t max_limit;         /* --max-in-flight */
    uint64_t next_seq, oldest, in_flight;
    uint64_t queued, resend_cursor;
    uint64_t epoch_ns;
    uint64_t next_scan_ns;
    /* re-send timer, ms */
    double srtt_ms, rttvar_ms;
    bool have_rtt;
    uint32_t rto_ms, rto_min_ms, rto_max_ms;
    /* counts for metrics */
    uint64_t resent[PW_RESEND_CAUSES];
    /* metrics (optional, pw_window_metrics_register) */
    pw_gauge *in_flight_gauge, *oldest_age, *ack_timeout;
    pw_counter_vec *retried;
    pw_histogram *ack_latency;  /* seconds, records acked on their first send (updated by pw_window_ack) */
    uint64_t resent_pushed[PW_RESEND_CAUSES];
} pw_window;

/* max_in_flight >= 1; rto_max_ms >= rto_min_ms >= 1.  PW_OK or PW_ENOMEM. */
int pw_window_init(pw_window *w, uint64_t max_in_flight, uint32_t rto_min_ms, uint32_t rto_max_ms,
                   uint64_t now_ns);
void pw_window_free(pw_window *w);

/* Lowers (or restores, up to --max-in-flight) the span limit, e.g. to the
 * sink's dedup window.  Records already in flight stay; no new ones are
 * added until the span is below the limit again. */
void pw_window_set_limit(pw_window *w, uint64_t limit);

/* New seqs the span has room for now. */
uint64_t pw_window_room(const pw_window *w);
static inline bool pw_window_has_resends(const pw_window *w) { return w->queued > 0; }
/* The event time of the oldest unacknowledged record (0 when none). */
double pw_window_oldest_ts(const pw_window *w);

/* Writes the bytes of record `seq` (event time ts) to out. */
typedef void (*pw_record_writer)(void *ctx, pw_buf *out, uint64_t seq, double ts);

typedef struct pw_fill {
    uint64_t max_records;       /* credit and --batch */
    size_t max_bytes;           /* whole message */
    uint64_t fresh_allowed;     /* new records allowed now (pacing, --count) */
    double fresh_ts;            /* event time of new records */
    uint16_t peer;
    pw_record_writer write;
    void *ctx;
    /* out */
    uint64_t resent, fresh;
} pw_fill;

/* Adds re-sends, then new records, to the batch begun on bw; marks them
 * sent to f->peer at now_ns.  The byte limit is never crossed, except by a
 * single record larger than it alone (never the case for pipewatch's own
 * records: they are at most PW_RECORD_MAX + a little).  Returns the records added. */
uint64_t pw_window_fill(pw_window *w, pw_batch_writer *bw, pw_fill *f, uint64_t now_ns);

/* Applies an acknowledged range; returns how many records it newly acked. */
uint64_t pw_window_ack(pw_window *w, uint64_t first, uint64_t n, uint64_t now_ns);

/* Queues for re-send every record whose ack is overdue.  Returns how many. */
uint64_t pw_window_scan(pw_window *w, uint64_t now_ns);
/* How long until the next scan is worth doing (ms). */
uint32_t pw_window_scan_interval_ms(const pw_window *w);
/* Scans when one is due (every pw_window_scan_interval_ms); returns how
 * many records it queued, and sets *next_ns to when the next scan is due. */
uint64_t pw_window_scan_if_due(pw_window *w, uint64_t now_ns, uint64_t *next_ns);

/* Queues at once every record sent to `peer` and not yet acknowledged (the
 * worker is gone).  Returns how many. */
uint64_t pw_window_requeue_peer(pw_window *w, uint16_t peer);
/* Queues one record again (its message could not be handed to ZeroMQ). */
void pw_window_requeue(pw_window *w, uint64_t seq);
/* Queues again every record of a batch message built by pw_window_fill. */
void pw_window_requeue_batch(pw_window *w, const void *msg, size_t len);

/* Registers pipeline_records_in_flight, pipeline_oldest_unacked_age_seconds,
 * pipeline_ack_timeout_seconds, pipeline_records_retried_total{cause} and
 * pipeline_ack_latency_seconds in reg (main thread, before pushing starts).
 * PW_OK or PW_ENOMEM. */
int pw_window_metrics_register(pw_window *w, pw_registry *reg);
/* Brings those metrics up to date (the owner's thread, e.g. once a loop). */
void pw_window_metrics_update(pw_window *w);

/* Pacing of new records at `rate` per second from started_ns (rate 0:
 * unpaced).  pw_pace_due: how many records beyond `sent` are due at now
 * (UINT64_MAX unpaced); pw_pace_wait_ms: ms until record `sent` is due (0
 * when due now), at most cap. */
typedef struct pw_pace {
    uint64_t rate, started_ns;
} pw_pace;
uint64_t pw_pace_due(const pw_pace *p, uint64_t sent, uint64_t now_ns);
long pw_pace_wait_ms(const pw_pace *p, uint64_t sent, uint64_t now_ns, long cap);

/* Checks every invariant above by walking the window (tests). true when all hold. */
bool pw_window_check(const pw_window *w);

#endif

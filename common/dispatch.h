/*
 * dispatch.h: credit-based dispatch of the producer's batches to workers
 * (the ZeroMQ guide's load-balancing pattern, with credit in records).
 *
 * Workers connect DEALER sockets to the producer's ROUTER and ask for work
 * with credit messages (wire.h "Credit"): a worker is sent at most as many
 * records as it has asked for, so a slow worker holds a small amount of
 * work (what it can do in a few tens of milliseconds) and a fast one is
 * never starved by it.  Plain PUSH would deal batches round-robin to every
 * worker whatever its speed, and high-water marks plus TCP buffers let a
 * slow worker hoard more than the ack timeout's worth.
 *
 * A worker is known by its ROUTER routing id.  Credit bookkeeping:
 *   - a message from an unknown worker (new, restarted producer, or one
 *     taken for lost that comes back, e.g. after SIGSTOP/SIGCONT) starts
 *     its credit at the worker's own `outstanding` count;
 *   - from a known worker: credit += grant, except that when nothing was
 *     sent to it for two heartbeat intervals its `outstanding` is exact
 *     (nothing is in transit) and replaces our count, so any drift heals;
 *   - a worker silent for `lost_after` is lost: pw_dispatch_expire()
 *     returns it once, and the producer re-sends what it held.
 * Credit only ever limits flow: a wrong count delays or over-feeds a
 * worker by a bounded amount; it never loses or duplicates a record
 * (the window and the sink's dedup see to that).
 *
 * Owns a fixed table of `max_workers` entries (one allocation); a worker
 * beyond that is ignored (logged by the caller).  One thread; no I/O.
 */
#ifndef PW_DISPATCH_H
#define PW_DISPATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PW_WORKER_ID_MAX 32

typedef struct pw_worker_peer {
    bool used;
    uint8_t id_len;
    unsigned char id[PW_WORKER_ID_MAX];
    uint64_t credit;            /* records we may still send it */
    uint64_t last_heard_ns, last_sent_ns;
} pw_worker_peer;

typedef struct pw_dispatch {
    pw_worker_peer *peers;
    size_t max_workers, live;
    size_t end;                 /* one past the highest slot ever used: scans stop here */
    uint64_t credit_sum;        /* sum of the used slots' credit, kept as they change */
    uint64_t lost_after_ns, quiet_ns;
    size_t next_pick;           /* round-robin start among equals */
} pw_dispatch;

/* max_workers <= 65535.  PW_OK, PW_EINVAL or PW_ENOMEM. */
int pw_dispatch_init(pw_dispatch *d, size_t max_workers, uint32_t heartbeat_ms, uint32_t lost_after_ms);
void pw_dispatch_free(pw_dispatch *d);

/* A credit message from routing id `id`.  Returns the worker's index, or
 * -1 when the id is too long or the table is full. */
int pw_dispatch_credit(pw_dispatch *d, const void *id, size_t len, uint32_t grant,
                       uint32_t outstanding, uint64_t now_ns);
/* The worker to send the next batch to: the one with the most credit
 * (ties rotate); -1 when no worker has any. */
int pw_dispatch_pick(pw_dispatch *d);
/* `records` were sent to worker i. */
void pw_dispatch_sent(pw_dispatch *d, int i, uint64_t records, uint64_t now_ns);
/* One worker silent for longer than lost_after, removed from the table
 * (its index may be reused); -1 when none. */
int pw_dispatch_expire(pw_dispatch *d, uint64_t now_ns);
/* Removes worker i (its connection is gone: ZeroMQ could not route to it). */
void pw_dispatch_drop(pw_dispatch *d, int i);

uint64_t pw_dispatch_credit_total(const pw_dispatch *d);

#endif

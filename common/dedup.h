/*
 * dedup.h: the sink's exact memory of which records it has written.
 *
 * A record is identified by its stream (producer name + run) and its seq.
 * Per stream we keep a base (every seq below it is written: the stream's
 * contiguous mark) and the set of written seqs above it.  Nothing that was
 * written is ever forgotten; when memory runs out, new work is REFUSED
 * (not written, not acknowledged, counted) and the producer re-sends it.
 *
 * Two representations of the set above the base:
 *   hot:  a bitmap of `window` seqs, a ring indexed by seq % window, plus
 *         the smallest event time marked per 64-seq word.  O(1) marking.
 *         At most `max_hot` streams are hot (least recently used leaves).
 *   cold: a sorted array of written ranges [first, end) above the base.
 *         A hot stream that leaves is converted EXACTLY to this form and
 *         converted back exactly when it is used again.  Recovery builds
 *         streams in this form (the files' order is not the live order, so
 *         no window applies while replaying them).
 * Stream objects are never freed before pw_dedup_free(): a pointer to one
 * stays valid (pending acks hold such pointers), whichever form it is in.
 *
 * The window rule: a live seq at or beyond base + window is refused
 * (PW_DEDUP_REFUSED_WINDOW), never made room for by
 * sliding the base: sliding would declare the seqs below written.  The
 * sink tells producers the window in its greeting and they keep their
 * in-flight span within it, so a refusal means a misconfigured or foreign
 * producer, which re-sends once the base has moved.
 *
 * The memory rule: stream objects, cold ranges and the hash table count
 * against `budget` bytes (hot bitmaps are bounded apart: max_hot x
 * window/4 bytes).  A new stream, a cold stream's growth, or a hot
 * stream's conversion to cold that would exceed it is refused (cause
 * PW_DEDUP_REFUSED_MEMORY): loud, and nothing already written is forgotten.
 *
 * Lag (pw_dedup_lag_watermark): over streams used in the last
 * PW_DEDUP_ACTIVE_SECONDS that have a hole (something written above the
 * base), the smallest event time marked above the base is the estimate of
 * the event time of the record holding the mark back; the oldest of these
 * is the watermark, 0 when no active stream has a hole.  A slow worker
 * holding seq N while later seqs are written therefore keeps the
 * watermark at about N's event time.
 *
 * Owns all its memory; one thread (the sink's loop).
 */
#ifndef PW_DEDUP_H
#define PW_DEDUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PW_DEDUP_ACTIVE_SECONDS 60.0

typedef struct pw_dedup pw_dedup;
typedef struct pw_dedup_stream pw_dedup_stream;

enum pw_dedup_verdict {
    PW_DEDUP_DUPLICATE = 0, /* written before: acknowledge again, do not write */
    PW_DEDUP_NEW = 1,       /* now marked written: write it */
    /* Refused, not marked: neither write nor acknowledge (see the rules). */
    PW_DEDUP_REFUSED_WINDOW = 2,
    PW_DEDUP_REFUSED_MEMORY = 3,
};

enum pw_dedup_cause { PW_DEDUP_CAUSE_WINDOW, PW_DEDUP_CAUSE_MEMORY, PW_DEDUP_CAUSES };

/* window: rounded up to a multiple of 64; max_hot >= 1; budget: bytes for
 * stream objects, cold ranges and the hash table.  NULL when out of memory
 * or an argument is 0. */
pw_dedup *pw_dedup_new(uint64_t window, size_t max_hot, size_t budget);
void pw_dedup_free(pw_dedup *d);

/* The stream for (producer, run) (producer truncated to
 * PW_WIRE_PRODUCER_MAX bytes), created when new, made hot when possible.
 * now: wall-clock seconds, the stream's last activity.  PW_OK with *out
 * set, or PW_ENOMEM: a new stream did not fit the budget (*out NULL; the
 * caller refuses its records and counts them). */
int pw_dedup_stream_get(pw_dedup *d, const char *producer, size_t len, uint64_t run, double now,
                        pw_dedup_stream **out);
/* Live marking, under the window and memory rules.  ts: the record's event
 * time (0 when unknown), for the lag watermark. */
enum pw_dedup_verdict pw_dedup_mark(pw_dedup *d, pw_dedup_stream *s, uint64_t seq, double ts);
/* Recovery marking: the same set, no window rule.  PW_OK (marked or
 * already marked) or PW_ENOMEM (budget exhausted). */
int pw_dedup_recover(pw_dedup *d, const char *producer, size_t len, uint64_t run, uint64_t seq,
                     double ts, double now);
/* True when seq of (producer, run) is marked; changes nothing (tests). */
bool pw_dedup_contains(const pw_dedup *d, const char *producer, size_t len, uint64_t run, uint64_t seq);

/* The stream's producer name (not NUL-terminated) and run. */
void pw_dedup_stream_identity(const pw_dedup_stream *s, const char **producer, size_t *len,
                              uint64_t *run);
uint64_t pw_dedup_stream_base(const pw_dedup_stream *s);
bool pw_dedup_stream_hot(const pw_dedup_stream *s);

/* The lag watermark defined above (wall-clock seconds, 0 = no hole).
 * Walks the streams active since now - PW_DEDUP_ACTIVE_SECONDS and the hot
 * bitmaps of those with a hole: call it periodically, not per record. */
double pw_dedup_lag_watermark(pw_dedup *d, double now);

/* The window after rounding: what the sink's greeting announces. */
uint64_t pw_dedup_window(const pw_dedup *d);
size_t pw_dedup_hot_streams(const pw_dedup *d);
size_t pw_dedup_cold_streams(const pw_dedup *d);
/* Everything the index holds: hot bitmaps, stream objects, ranges, table. */
size_t pw_dedup_memory_bytes(const pw_dedup *d);
/* Marks refused, by cause. */
uint64_t pw_dedup_refusals(const pw_dedup *d, enum pw_dedup_cause cause);
uint64_t pw_dedup_evictions(const pw_dedup *d);

#endif

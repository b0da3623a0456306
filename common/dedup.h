/*
 * dedup.h: the sink's memory of which records it has written, bounded.
 *
 * Records are identified by their stream (producer name + run) and seq.
 * Per stream we keep a base (every seq below it is written) and a bitmap of
 * `window` seqs above it.  The producer never has more than --max-in-flight
 * records between its oldest unacknowledged seq and its newest, so as long
 * as window >= max-in-flight every seq the producer can still send lies in
 * [base, base + window): memory per stream is window/8 bytes no matter how
 * many records flow, instead of a set of every id ever seen.  A seq beyond
 * the window (a misconfigured producer) slides the window forward and is
 * counted in overflows; seqs that fall off the bottom are then treated as
 * written.  At most `max_streams` streams are tracked; the least recently
 * used one without unacknowledged work is forgotten when a new one arrives
 * (its producer has long finished: a producer re-sends only within its
 * ack timeout).
 *
 * Owns all its memory; one thread.
 */
#ifndef PW_DEDUP_H
#define PW_DEDUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pw_dedup pw_dedup;
typedef struct pw_dedup_stream pw_dedup_stream;

/* window: rounded up to a multiple of 64. NULL when out of memory. */
pw_dedup *pw_dedup_new(uint64_t window, size_t max_streams);
void pw_dedup_free(pw_dedup *d);

/* The stream for (producer, run), created when new (evicting the least
 * recently used).  NULL when out of memory. */
pw_dedup_stream *pw_dedup_stream_get(pw_dedup *d, const char *producer, size_t len, uint64_t run);
/* 1: seq was new and is now marked written; 0: already written (duplicate). */
int pw_dedup_mark(pw_dedup_stream *s, uint64_t seq);
/* Index of the stream in the table (stable while it is not evicted). */
size_t pw_dedup_stream_index(const pw_dedup *d, const pw_dedup_stream *s);
/* The stream's producer name (not NUL-terminated) and run. */
void pw_dedup_stream_identity(const pw_dedup_stream *s, const char **producer, size_t *len,
                              uint64_t *run);
/* Pins are counted: pin(true) adds one, pin(false) removes one; a stream
 * is never evicted while it has any (one per pending ack that names it). */
void pw_dedup_stream_pin(pw_dedup_stream *s, bool pin);

size_t pw_dedup_streams(const pw_dedup *d);
size_t pw_dedup_memory_bytes(const pw_dedup *d);
uint64_t pw_dedup_overflows(const pw_dedup *d);
uint64_t pw_dedup_evictions(const pw_dedup *d);

#endif

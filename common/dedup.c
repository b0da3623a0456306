/*
 * dedup.c: per-stream base + bitmap window (see dedup.h for the bound).
 *
 * The bitmap is a ring indexed by seq % window.  When the base's bit is
 * set the base advances, clearing bits as it goes, a whole word at a time
 * when it is aligned and full; so in steady state (records arriving in
 * roughly increasing order) marking is O(1) and the window slides along.
 */
#include "dedup.h"

#include <stdlib.h>
#include <string.h>

#include "pw.h"
#include "wire.h"

struct pw_dedup_stream {
    char producer[PW_WIRE_PRODUCER_MAX];
    size_t len;
    uint64_t run;
    uint64_t base;
    uint64_t *bits;
    uint64_t window;
    uint64_t last_used;
    uint64_t *overflows;
    bool used;
    uint64_t pins;          /* pending acks that name this stream */
};

struct pw_dedup {
    uint64_t window;
    size_t max_streams;
    pw_dedup_stream *streams;
    uint64_t tick;
    uint64_t overflows;
    uint64_t evictions;
};

pw_dedup *pw_dedup_new(uint64_t window, size_t max_streams)
{
    if (window < 64 || max_streams == 0)
        return NULL;
    pw_dedup *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->window = (window + 63) / 64 * 64;
    d->max_streams = max_streams;
    d->streams = calloc(max_streams, sizeof *d->streams);
    if (!d->streams) {
        free(d);
        return NULL;
    }
    return d;
}

void pw_dedup_free(pw_dedup *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->max_streams; i++)
        free(d->streams[i].bits);
    free(d->streams);
    free(d);
}

pw_dedup_stream *pw_dedup_stream_get(pw_dedup *d, const char *producer, size_t len, uint64_t run)
{
    if (len > PW_WIRE_PRODUCER_MAX)
        len = PW_WIRE_PRODUCER_MAX;
    pw_dedup_stream *victim = NULL;
    d->tick++;
    for (size_t i = 0; i < d->max_streams; i++) {
        pw_dedup_stream *s = &d->streams[i];
        if (s->used && s->run == run && s->len == len && memcmp(s->producer, producer, len) == 0) {
            s->last_used = d->tick;
            return s;
        }
        if (!s->used) {
            if (!victim || victim->used)
                victim = s;
        } else if (!s->pins && (!victim || (victim->used && s->last_used < victim->last_used))) {
            victim = s;
        }
    }
    if (!victim)
        return NULL; /* every stream pinned: caller treats as no memory */
    if (victim->used)
        d->evictions++;
    if (!victim->bits) {
        victim->bits = calloc(d->window / 64, sizeof *victim->bits);
        if (!victim->bits)
            return NULL;
    } else {
        memset(victim->bits, 0, d->window / 8);
    }
    memcpy(victim->producer, producer, len);
    victim->len = len;
    victim->run = run;
    victim->base = 0;
    victim->window = d->window;
    victim->used = true;
    victim->pins = 0;
    victim->last_used = d->tick;
    victim->overflows = &d->overflows;
    return victim;
}

static inline bool bit_get(const pw_dedup_stream *s, uint64_t seq)
{
    uint64_t i = seq % s->window;
    return s->bits[i / 64] >> (i % 64) & 1;
}

static inline void bit_clear(pw_dedup_stream *s, uint64_t seq)
{
    uint64_t i = seq % s->window;
    s->bits[i / 64] &= ~(1ull << (i % 64));
}

static void advance_base(pw_dedup_stream *s)
{
    for (;;) {
        uint64_t i = s->base % s->window;
        if (i % 64 == 0 && s->bits[i / 64] == UINT64_MAX) {
            s->bits[i / 64] = 0;
            s->base += 64;
        } else if (bit_get(s, s->base)) {
            bit_clear(s, s->base);
            s->base++;
        } else {
            return;
        }
    }
}

int pw_dedup_mark(pw_dedup_stream *s, uint64_t seq)
{
    if (seq < s->base)
        return 0;
    if (seq - s->base >= s->window) {
        /* Beyond the window: slide it so seq fits; what falls off counts as written. */
        uint64_t new_base = seq - s->window + 1;
        if (new_base - s->base >= s->window)
            memset(s->bits, 0, s->window / 8);
        else
            for (uint64_t q = s->base; q < new_base; q++)
                bit_clear(s, q);
        s->base = new_base;
        (*s->overflows)++;
    }
    uint64_t i = seq % s->window;
    uint64_t mask = 1ull << (i % 64);
    if (s->bits[i / 64] & mask)
        return 0;
    s->bits[i / 64] |= mask;
    if (seq == s->base)
        advance_base(s);
    return 1;
}

size_t pw_dedup_stream_index(const pw_dedup *d, const pw_dedup_stream *s)
{
    return (size_t)(s - d->streams);
}

void pw_dedup_stream_identity(const pw_dedup_stream *s, const char **producer, size_t *len,
                              uint64_t *run)
{
    *producer = s->producer;
    *len = s->len;
    *run = s->run;
}

void pw_dedup_stream_pin(pw_dedup_stream *s, bool pin)
{
    if (pin)
        s->pins++;
    else if (s->pins)
        s->pins--;
}

size_t pw_dedup_streams(const pw_dedup *d)
{
    size_t n = 0;
    for (size_t i = 0; i < d->max_streams; i++)
        n += d->streams[i].used;
    return n;
}

size_t pw_dedup_memory_bytes(const pw_dedup *d)
{
    size_t bytes = sizeof *d + d->max_streams * sizeof *d->streams;
    for (size_t i = 0; i < d->max_streams; i++)
        if (d->streams[i].bits)
            bytes += d->window / 8;
    return bytes;
}

uint64_t pw_dedup_overflows(const pw_dedup *d) { return d->overflows; }
uint64_t pw_dedup_evictions(const pw_dedup *d) { return d->evictions; }

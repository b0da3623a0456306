/*
 * dedup.c: per-stream base + exact set above it, hot (bitmap) or cold
 * (ranges); see dedup.h for the rules.
 *
 * Hot: the bitmap is a ring indexed by seq % window.  When the base's bit
 * is set the base advances, clearing bits as it goes, a whole word at a
 * time when it is aligned and full; so in steady state (records arriving
 * in roughly increasing order) marking is O(1) and the window slides
 * along.  Cold: a sorted array of disjoint, non-adjacent ranges, all above
 * the base; in-order marking extends the last range or the base in O(1).
 *
 * Every stream is in one hash table (chained) and one recency list (most
 * recently used first), so a lookup is O(1) and the lag walk stops at the
 * first stream idle for longer than PW_DEDUP_ACTIVE_SECONDS.
 */
#include "dedup.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "pw.h"
#include "wire.h"

typedef struct seq_range {
    uint64_t first, end; /* written: [first, end) */
} seq_range;

struct pw_dedup_stream {
    char producer[PW_WIRE_PRODUCER_MAX];
    size_t len;
    uint64_t run;
    uint64_t hash;
    uint64_t base;
    pw_dedup_stream *chain;          /* hash bucket */
    pw_dedup_stream *newer, *older;  /* recency list */
    double last_active;
    size_t slot;                     /* hot slot, or SIZE_MAX when cold */
    /* cold form (empty while hot) */
    seq_range *ranges;
    size_t nranges, ranges_cap;
    double cold_min_ts;              /* smallest event time above the base, 0 = unknown */
};

typedef struct hot_slot {
    pw_dedup_stream *stream;  /* NULL when free */
    uint64_t *bits;           /* window bits, allocated on first use, kept */
    double *min_ts;           /* per 64-seq word: smallest event time marked, 0 = none */
    uint64_t above;           /* seqs marked above the base */
    uint64_t last_used;
} hot_slot;

struct pw_dedup {
    uint64_t window;
    size_t words;
    size_t max_hot, nhot;
    hot_slot *hot;
    pw_dedup_stream **table;
    size_t table_size;        /* power of two */
    size_t nstreams;
    pw_dedup_stream *newest;
    size_t budget, used;      /* bytes of streams, ranges and table */
    uint64_t tick;
    uint64_t refusals[PW_DEDUP_CAUSES];
    uint64_t evictions;
};

#define NOT_HOT SIZE_MAX

static uint64_t identity_hash(const char *p, size_t len, uint64_t run)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    h ^= run + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h ^ (h >> 29);
}

pw_dedup *pw_dedup_new(uint64_t window, size_t max_hot, size_t budget)
{
    if (window < 64 || max_hot == 0 || budget == 0)
        return NULL;
    pw_dedup *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->window = (window + 63) / 64 * 64;
    d->words = (size_t)(d->window / 64);
    d->max_hot = max_hot;
    d->budget = budget;
    d->table_size = 64;
    d->hot = calloc(max_hot, sizeof *d->hot);
    d->table = calloc(d->table_size, sizeof *d->table);
    if (!d->hot || !d->table) {
        pw_dedup_free(d);
        return NULL;
    }
    d->used = d->table_size * sizeof *d->table;
    return d;
}

void pw_dedup_free(pw_dedup *d)
{
    if (!d)
        return;
    for (pw_dedup_stream *s = d->newest, *next; s; s = next) {
        next = s->older;
        free(s->ranges);
        free(s);
    }
    for (size_t i = 0; d->hot && i < d->max_hot; i++) {
        free(d->hot[i].bits);
        free(d->hot[i].min_ts);
    }
    free(d->hot);
    free(d->table);
    free(d);
}

static pw_dedup_stream *find(const pw_dedup *d, const char *producer, size_t len, uint64_t run, uint64_t h)
{
    for (pw_dedup_stream *s = d->table[h & (d->table_size - 1)]; s; s = s->chain)
        if (s->hash == h && s->run == run && s->len == len && memcmp(s->producer, producer, len) == 0)
            return s;
    return NULL;
}

static void table_grow(pw_dedup *d)
{
    size_t size = d->table_size * 2;
    size_t extra = (size - d->table_size) * sizeof *d->table;
    if (d->used + extra > d->budget)
        return; /* longer chains, still exact */
    pw_dedup_stream **t = calloc(size, sizeof *t);
    if (!t)
        return;
    for (size_t i = 0; i < d->table_size; i++) {
        for (pw_dedup_stream *s = d->table[i], *next; s; s = next) {
            next = s->chain;
            s->chain = t[s->hash & (size - 1)];
            t[s->hash & (size - 1)] = s;
        }
    }
    free(d->table);
    d->table = t;
    d->table_size = size;
    d->used += extra;
}

static void recency_touch(pw_dedup *d, pw_dedup_stream *s, double now)
{
    s->last_active = now;
    if (d->newest == s)
        return;
    if (s->newer)
        s->newer->older = s->older;
    if (s->older)
        s->older->newer = s->newer;
    s->newer = NULL;
    s->older = d->newest;
    if (d->newest)
        d->newest->newer = s;
    d->newest = s;
}

static pw_dedup_stream *create(pw_dedup *d, const char *producer, size_t len, uint64_t run, uint64_t h)
{
    if (d->used + sizeof(pw_dedup_stream) > d->budget)
        return NULL;
    pw_dedup_stream *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    memcpy(s->producer, producer, len);
    s->len = len;
    s->run = run;
    s->hash = h;
    s->slot = NOT_HOT;
    size_t b = h & (d->table_size - 1);
    s->chain = d->table[b];
    d->table[b] = s;
    d->nstreams++;
    d->used += sizeof *s;
    if (d->nstreams > d->table_size)
        table_grow(d);
    return s;
}

/* ---- cold form ------------------------------------------------------------ */

static void cold_note_ts(pw_dedup_stream *s, double ts)
{
    if (ts > 0 && (s->cold_min_ts == 0 || ts < s->cold_min_ts))
        s->cold_min_ts = ts;
}

static int ranges_reserve(pw_dedup *d, pw_dedup_stream *s, size_t want)
{
    if (want <= s->ranges_cap)
        return PW_OK;
    size_t cap = s->ranges_cap ? s->ranges_cap * 2 : 4;
    if (cap < want)
        cap = want;
    if (d->used + (cap - s->ranges_cap) * sizeof(seq_range) > d->budget)
        cap = want; /* exactly what is needed, if that fits */
    size_t extra = (cap - s->ranges_cap) * sizeof(seq_range);
    if (d->used + extra > d->budget)
        return PW_ENOMEM;
    seq_range *r = realloc(s->ranges, cap * sizeof *r);
    if (!r)
        return PW_ENOMEM;
    s->ranges = r;
    s->ranges_cap = cap;
    d->used += extra;
    return PW_OK;
}

static void ranges_release(pw_dedup *d, pw_dedup_stream *s)
{
    d->used -= s->ranges_cap * sizeof(seq_range);
    free(s->ranges);
    s->ranges = NULL;
    s->nranges = s->ranges_cap = 0;
}

/* Index of the first range whose first seq is above seq. */
static size_t range_after(const pw_dedup_stream *s, uint64_t seq)
{
    size_t lo = 0, hi = s->nranges;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->ranges[mid].first <= seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool cold_contains(const pw_dedup_stream *s, uint64_t seq)
{
    if (seq < s->base)
        return true;
    size_t i = range_after(s, seq);
    return i > 0 && s->ranges[i - 1].end > seq;
}

/* Marks seq in the cold form: PW_DEDUP_NEW / PW_DEDUP_DUPLICATE, or
 * PW_ENOMEM when a new range does not fit the budget. */
static int cold_mark(pw_dedup *d, pw_dedup_stream *s, uint64_t seq, double ts)
{
    if (seq < s->base)
        return PW_DEDUP_DUPLICATE;
    if (seq == s->base) {
        s->base++;
        size_t absorbed = 0;
        while (absorbed < s->nranges && s->ranges[absorbed].first == s->base)
            s->base = s->ranges[absorbed++].end;
        if (absorbed) {
            memmove(s->ranges, s->ranges + absorbed, (s->nranges - absorbed) * sizeof *s->ranges);
            s->nranges -= absorbed;
        }
        if (s->nranges == 0)
            s->cold_min_ts = 0;
        return PW_DEDUP_NEW;
    }
    size_t i = range_after(s, seq);
    if (i > 0 && s->ranges[i - 1].end > seq)
        return PW_DEDUP_DUPLICATE;
    bool join_prev = i > 0 && s->ranges[i - 1].end == seq;
    bool join_next = i < s->nranges && s->ranges[i].first == seq + 1;
    if (join_prev && join_next) {
        s->ranges[i - 1].end = s->ranges[i].end;
        memmove(s->ranges + i, s->ranges + i + 1, (s->nranges - i - 1) * sizeof *s->ranges);
        s->nranges--;
    } else if (join_prev) {
        s->ranges[i - 1].end++;
    } else if (join_next) {
        s->ranges[i].first--;
    } else {
        if (ranges_reserve(d, s, s->nranges + 1) != PW_OK)
            return PW_ENOMEM;
        memmove(s->ranges + i + 1, s->ranges + i, (s->nranges - i) * sizeof *s->ranges);
        s->ranges[i] = (seq_range){ seq, seq + 1 };
        s->nranges++;
    }
    cold_note_ts(s, ts);
    return PW_DEDUP_NEW;
}

/* ---- hot form ------------------------------------------------------------- */

static inline bool bit_get(const pw_dedup *d, const hot_slot *h, uint64_t seq)
{
    uint64_t i = seq % d->window;
    return h->bits[i / 64] >> (i % 64) & 1;
}

static void advance_base(pw_dedup *d, pw_dedup_stream *s, hot_slot *h)
{
    for (;;) {
        uint64_t i = s->base % d->window;
        uint64_t w = i / 64;
        if (i % 64 == 0 && h->bits[w] == UINT64_MAX) {
            h->bits[w] = 0;
            h->min_ts[w] = 0;
            s->base += 64;
            h->above -= 64;
        } else if (h->bits[w] >> (i % 64) & 1) {
            h->bits[w] &= ~(1ull << (i % 64));
            s->base++;
            h->above--;
            if (s->base % 64 == 0 && h->bits[w] == 0)
                h->min_ts[w] = 0;
        } else {
            return;
        }
    }
}

static enum pw_dedup_verdict hot_mark(pw_dedup *d, pw_dedup_stream *s, hot_slot *h, uint64_t seq, double ts)
{
    if (seq < s->base)
        return PW_DEDUP_DUPLICATE;
    assert(seq - s->base < d->window);
    uint64_t i = seq % d->window;
    uint64_t mask = 1ull << (i % 64);
    if (h->bits[i / 64] & mask)
        return PW_DEDUP_DUPLICATE;
    if (h->bits[i / 64] == 0)
        h->min_ts[i / 64] = 0; /* a word's earlier lap says nothing about this one */
    h->bits[i / 64] |= mask;
    h->above++;
    if (seq == s->base)
        advance_base(d, s, h);
    else if (ts > 0 && (h->min_ts[i / 64] == 0 || ts < h->min_ts[i / 64]))
        h->min_ts[i / 64] = ts; /* only what waits above the base ages the stream */
    return PW_DEDUP_NEW;
}

static double hot_min_ts(const pw_dedup *d, const hot_slot *h)
{
    double m = 0;
    for (size_t w = 0; w < d->words; w++)
        if (h->bits[w] && h->min_ts[w] > 0 && (m == 0 || h->min_ts[w] < m))
            m = h->min_ts[w];
    return m;
}

/* Converts the hot stream in slot h to its exact cold form and frees the
 * slot.  PW_ENOMEM (nothing changed) when the ranges do not fit. */
static int make_cold(pw_dedup *d, hot_slot *h)
{
    pw_dedup_stream *s = h->stream;
    assert(s->nranges == 0);
    /* Two passes in seq order from the base (count, then fill), each
     * ending once every marked seq has been seen: an idle stream's few
     * marks cost a few words, not the whole window. */
    uint64_t o = 0;
    double min_ts = 0;
    for (int pass = 0; pass < 2; pass++) {
        size_t n = 0;
        uint64_t found = 0;
        bool in = false;
        for (o = 0; o < d->window && (found < h->above || in);) {
            uint64_t q = s->base + o, i = q % d->window;
            if (i % 64 == 0 && o + 64 <= d->window && h->bits[i / 64] == (in ? UINT64_MAX : 0)) {
                if (in) { /* a whole word inside a range */
                    found += 64;
                    double t = h->min_ts[i / 64];
                    if (t > 0 && (min_ts == 0 || t < min_ts))
                        min_ts = t;
                }
                o += 64;
                continue;
            }
            bool set = h->bits[i / 64] >> (i % 64) & 1;
            if (set) {
                found++;
                double t = h->min_ts[i / 64];
                if (t > 0 && (min_ts == 0 || t < min_ts))
                    min_ts = t;
            }
            if (set && !in) {
                if (pass == 1)
                    s->ranges[n].first = q;
                in = true;
            } else if (!set && in) {
                if (pass == 1)
                    s->ranges[n].end = q;
                n++;
                in = false;
            }
            o++;
        }
        if (in) {
            if (pass == 1)
                s->ranges[n].end = s->base + o;
            n++;
        }
        if (pass == 0 && ranges_reserve(d, s, n) != PW_OK)
            return PW_ENOMEM;
        s->nranges = n;
    }
    /* Nothing is set beyond offset o: clear the words up to it. */
    uint64_t first = (s->base % d->window) / 64, nwords = (s->base % 64 + o + 63) / 64;
    for (uint64_t k = 0; k < nwords && k < d->words; k++) {
        h->bits[(first + k) % d->words] = 0;
        h->min_ts[(first + k) % d->words] = 0;
    }
    s->cold_min_ts = min_ts;
    h->above = 0;
    h->stream = NULL;
    s->slot = NOT_HOT;
    d->nhot--;
    d->evictions++;
    return PW_OK;
}

/* Makes a cold stream hot when a slot can be had and its ranges fit the
 * window; otherwise it stays cold (still exact, only slower). */
static void make_hot(pw_dedup *d, pw_dedup_stream *s)
{
    if (s->nranges && s->ranges[s->nranges - 1].end - s->base > d->window)
        return; /* written under a wider window (a restart with a smaller one) */
    hot_slot *h = &d->hot[0]; /* a free slot, else the least recently used */
    for (size_t i = 0; i < d->max_hot; i++) {
        if (!d->hot[i].stream) {
            h = &d->hot[i];
            break;
        }
        if (d->hot[i].last_used < h->last_used)
            h = &d->hot[i];
    }
    if (h->stream && make_cold(d, h) != PW_OK)
        return;
    if (!h->bits) {
        h->bits = calloc(d->words, sizeof *h->bits);
        h->min_ts = calloc(d->words, sizeof *h->min_ts);
        if (!h->bits || !h->min_ts) {
            free(h->bits);
            free(h->min_ts);
            h->bits = NULL;
            h->min_ts = NULL;
            return;
        }
    }
    for (size_t r = 0; r < s->nranges; r++) {
        for (uint64_t q = s->ranges[r].first, end = s->ranges[r].end; q < end;) {
            uint64_t i = q % d->window, n = 1;
            if (i % 64 == 0 && end - q >= 64) {
                h->bits[i / 64] = UINT64_MAX; /* a whole word at once */
                n = 64;
            } else {
                h->bits[i / 64] |= 1ull << (i % 64);
            }
            h->min_ts[i / 64] = s->cold_min_ts;
            h->above += n;
            q += n;
        }
    }
    ranges_release(d, s);
    s->cold_min_ts = 0;
    h->stream = s;
    s->slot = (size_t)(h - d->hot);
    d->nhot++;
}

/* ---- interface ------------------------------------------------------------ */

int pw_dedup_stream_get(pw_dedup *d, const char *producer, size_t len, uint64_t run, double now,
                        pw_dedup_stream **out)
{
    if (len > PW_WIRE_PRODUCER_MAX)
        len = PW_WIRE_PRODUCER_MAX;
    uint64_t h = identity_hash(producer, len, run);
    pw_dedup_stream *s = find(d, producer, len, run, h);
    if (!s && !(s = create(d, producer, len, run, h))) {
        *out = NULL;
        return PW_ENOMEM;
    }
    recency_touch(d, s, now);
    if (s->slot == NOT_HOT)
        make_hot(d, s);
    if (s->slot != NOT_HOT)
        d->hot[s->slot].last_used = ++d->tick;
    *out = s;
    return PW_OK;
}

enum pw_dedup_verdict pw_dedup_mark(pw_dedup *d, pw_dedup_stream *s, uint64_t seq, double ts)
{
    if (seq >= s->base && seq - s->base >= d->window) {
        if (s->slot == NOT_HOT && cold_contains(s, seq))
            return PW_DEDUP_DUPLICATE; /* written under a wider window */
        d->refusals[PW_DEDUP_CAUSE_WINDOW]++;
        return PW_DEDUP_REFUSED_WINDOW;
    }
    if (s->slot != NOT_HOT)
        return hot_mark(d, s, &d->hot[s->slot], seq, ts);
    int rc = cold_mark(d, s, seq, ts);
    if (rc == PW_ENOMEM) {
        d->refusals[PW_DEDUP_CAUSE_MEMORY]++;
        return PW_DEDUP_REFUSED_MEMORY;
    }
    return (enum pw_dedup_verdict)rc;
}

int pw_dedup_recover(pw_dedup *d, const char *producer, size_t len, uint64_t run, uint64_t seq,
                     double ts, double now)
{
    if (len > PW_WIRE_PRODUCER_MAX)
        len = PW_WIRE_PRODUCER_MAX;
    uint64_t h = identity_hash(producer, len, run);
    pw_dedup_stream *s = find(d, producer, len, run, h);
    if (!s && !(s = create(d, producer, len, run, h)))
        return PW_ENOMEM;
    recency_touch(d, s, now);
    /* Only when recovering into an index already in use: back to the form
     * that takes any order. */
    if (s->slot != NOT_HOT && make_cold(d, &d->hot[s->slot]) != PW_OK)
        return PW_ENOMEM;
    return cold_mark(d, s, seq, ts) == PW_ENOMEM ? PW_ENOMEM : PW_OK;
}

bool pw_dedup_contains(const pw_dedup *d, const char *producer, size_t len, uint64_t run, uint64_t seq)
{
    if (len > PW_WIRE_PRODUCER_MAX)
        len = PW_WIRE_PRODUCER_MAX;
    const pw_dedup_stream *s = find(d, producer, len, run, identity_hash(producer, len, run));
    if (!s)
        return false;
    if (s->slot == NOT_HOT)
        return cold_contains(s, seq);
    if (seq < s->base)
        return true;
    return seq - s->base < d->window && bit_get(d, &d->hot[s->slot], seq);
}

void pw_dedup_stream_identity(const pw_dedup_stream *s, const char **producer, size_t *len,
                              uint64_t *run)
{
    *producer = s->producer;
    *len = s->len;
    *run = s->run;
}

uint64_t pw_dedup_stream_base(const pw_dedup_stream *s) { return s->base; }
bool pw_dedup_stream_hot(const pw_dedup_stream *s) { return s->slot != NOT_HOT; }

double pw_dedup_lag_watermark(pw_dedup *d, double now)
{
    double oldest = 0;
    for (pw_dedup_stream *s = d->newest; s && s->last_active >= now - PW_DEDUP_ACTIVE_SECONDS; s = s->older) {
        double m = 0;
        if (s->slot != NOT_HOT) {
            if (d->hot[s->slot].above)
                m = hot_min_ts(d, &d->hot[s->slot]);
        } else if (s->nranges) {
            m = s->cold_min_ts;
        }
        if (m > 0 && (oldest == 0 || m < oldest))
            oldest = m;
    }
    return oldest;
}

uint64_t pw_dedup_window(const pw_dedup *d) { return d->window; }
size_t pw_dedup_hot_streams(const pw_dedup *d) { return d->nhot; }
size_t pw_dedup_cold_streams(const pw_dedup *d) { return d->nstreams - d->nhot; }

size_t pw_dedup_memory_bytes(const pw_dedup *d)
{
    size_t bytes = sizeof *d + d->max_hot * sizeof *d->hot + d->used;
    for (size_t i = 0; i < d->max_hot; i++)
        if (d->hot[i].bits)
            bytes += d->words * (sizeof *d->hot[i].bits + sizeof *d->hot[i].min_ts);
    return bytes;
}

uint64_t pw_dedup_refusals(const pw_dedup *d, enum pw_dedup_cause cause) { return d->refusals[cause]; }
uint64_t pw_dedup_evictions(const pw_dedup *d) { return d->evictions; }

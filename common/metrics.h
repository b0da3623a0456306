/*
 * metrics.h: a Prometheus metric registry with lock-free updates.
 *
 * A stage registers its metrics once at start-up (registration allocates and
 * is not thread-safe: do it from main before the push thread starts), then
 * updates them from its loop.  Updates are C11 relaxed atomics: no lock, no
 * allocation, no syscall, safe from any thread, and exact under concurrency.
 * Cardinality is bounded by construction: a labelled family has a fixed set
 * of label values given at registration and is updated by index.
 *
 * pw_registry_encode() renders the Prometheus text format v0.0.4 (HELP and
 * TYPE once per family, escaped label values, +Inf/-Inf/NaN, cumulative
 * histogram buckets with _sum and _count) and may run on another thread
 * while updates happen; each sample is read atomically.  With
 * pw_registry_add_process_metrics() it also reads /proc/self for the
 * process_* families.
 *
 * Build option -Dmetrics=false defines PW_METRICS_DISABLED, which compiles
 * every update to nothing (used by the benchmark to price instrumentation).
 *
 * The registry owns every metric it returns; pw_registry_free() frees them.
 */
#ifndef PW_METRICS_H
#define PW_METRICS_H

#include <math.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "buf.h"

typedef struct pw_registry pw_registry;

typedef struct pw_counter {
    _Atomic uint64_t value;
} pw_counter;

/* A gauge stores the bits of a double. */
typedef struct pw_gauge {
    _Atomic uint64_t bits;
} pw_gauge;

typedef struct pw_histogram {
    size_t nbounds;              /* upper bounds, ascending, without +Inf */
    const double *bounds;        /* owned copy */
    _Atomic uint64_t *buckets;   /* nbounds + 1, NOT cumulative (encoder sums;
                                    _count is the sum of the buckets) */
    _Atomic uint64_t sum_bits;   /* double */
} pw_histogram;

/* A counter family with one label whose values are fixed at registration. */
typedef struct pw_counter_vec {
    size_t n;
    pw_counter *counters;        /* n entries, index = label value index */
} pw_counter_vec;

pw_registry *pw_registry_new(void);
void pw_registry_free(pw_registry *reg);

/* Registration: name must match [a-zA-Z_:][a-zA-Z0-9_:]*, help is any text
 * (escaped on output).  Strings are copied.  NULL on bad name or no memory. */
pw_counter *pw_counter_register(pw_registry *reg, const char *name, const char *help);
pw_counter_vec *pw_counter_vec_register(pw_registry *reg, const char *name, const char *help,
                                        const char *label, const char *const *values, size_t n);
pw_gauge *pw_gauge_register(pw_registry *reg, const char *name, const char *help);
/* A gauge with one constant label pair, e.g. pipeline_build_info{version="0.1.0"}. */
pw_gauge *pw_gauge_register_labelled(pw_registry *reg, const char *name, const char *help,
                                     const char *label, const char *value);
/* An age: the gauge holds a wall-clock time (Unix seconds) and is encoded
 * as now - that time, read at encode time, so the value keeps growing when
 * nothing updates it (a stalled stage's lag climbs by one second per
 * second).  0 means "nothing is waiting" and encodes as 0.  Set it with
 * pw_gauge_set(g, since); pw_age_value() gives what would be encoded. */
pw_gauge *pw_age_register(pw_registry *reg, const char *name, const char *help);
double pw_age_value(const pw_gauge *g, double wall_now);
/* bounds: ascending finite upper bounds (the +Inf bucket is implicit). */
pw_histogram *pw_histogram_register(pw_registry *reg, const char *name, const char *help,
                                    const double *bounds, size_t nbounds);
/* Adds process_cpu_seconds_total, process_resident_memory_bytes,
 * process_start_time_seconds and process_open_fds, read at encode time. */
int pw_registry_add_process_metrics(pw_registry *reg);

/* Appends the whole registry in text format v0.0.4.  PW_OK or PW_ENOMEM. */
int pw_registry_encode(pw_registry *reg, pw_buf *out);

/* Bucket layouts shared by the stages (seconds). */
extern const double pw_buckets_stage_duration[];
extern const size_t pw_buckets_stage_duration_len;
extern const double pw_buckets_latency[];
extern const size_t pw_buckets_latency_len;

static inline uint64_t pw_double_bits(double d) { uint64_t u; memcpy(&u, &d, sizeof u); return u; }
static inline double pw_bits_double(uint64_t u) { double d; memcpy(&d, &u, sizeof d); return d; }

#ifndef PW_METRICS_DISABLED

static inline void pw_counter_add(pw_counter *c, uint64_t n)
{
    atomic_fetch_add_explicit(&c->value, n, memory_order_relaxed);
}

static inline void pw_counter_vec_add(pw_counter_vec *v, size_t index, uint64_t n)
{
    atomic_fetch_add_explicit(&v->counters[index].value, n, memory_order_relaxed);
}

static inline void pw_gauge_set(pw_gauge *g, double value)
{
    atomic_store_explicit(&g->bits, pw_double_bits(value), memory_order_relaxed);
}

static inline void pw_gauge_add(pw_gauge *g, double delta)
{
    uint64_t old = atomic_load_explicit(&g->bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&g->bits, &old,
                                                  pw_double_bits(pw_bits_double(old) + delta),
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
}

static inline void pw_histogram_observe(pw_histogram *h, double value)
{
    size_t lo = 0, hi = h->nbounds;
    while (lo < hi) { /* first bound >= value; NaN lands in +Inf */
        size_t mid = (lo + hi) / 2;
        if (h->bounds[mid] >= value)
            hi = mid;
        else
            lo = mid + 1;
    }
    atomic_fetch_add_explicit(&h->buckets[lo], 1, memory_order_relaxed);
    uint64_t old = atomic_load_explicit(&h->sum_bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&h->sum_bits, &old,
                                                  pw_double_bits(pw_bits_double(old) + value),
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
}

#else

static inline void pw_counter_add(pw_counter *c, uint64_t n) { (void)c; (void)n; }
static inline void pw_counter_vec_add(pw_counter_vec *v, size_t i, uint64_t n) { (void)v; (void)i; (void)n; }
static inline void pw_gauge_set(pw_gauge *g, double value) { (void)g; (void)value; }
static inline void pw_gauge_add(pw_gauge *g, double delta) { (void)g; (void)delta; }
static inline void pw_histogram_observe(pw_histogram *h, double value) { (void)h; (void)value; }

#endif

static inline void pw_counter_inc(pw_counter *c) { pw_counter_add(c, 1); }
static inline void pw_counter_vec_inc(pw_counter_vec *v, size_t index) { pw_counter_vec_add(v, index, 1); }
static inline uint64_t pw_counter_get(const pw_counter *c)
{
    return atomic_load_explicit(&((pw_counter *)c)->value, memory_order_relaxed);
}
static inline double pw_gauge_get(const pw_gauge *g)
{
    return pw_bits_double(atomic_load_explicit(&((pw_gauge *)g)->bits, memory_order_relaxed));
}

#endif

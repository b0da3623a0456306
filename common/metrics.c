/*
 * metrics.c: the metric registry and its Prometheus text-format encoder.
 *
 * Ownership: the registry owns one heap block per family, allocated at
 * registration and freed by pw_registry_free().  The pointers handed out
 * (pw_counter *, pw_histogram *, ...) point into those blocks and stay valid
 * until then; the family array may grow, the families never move.
 *
 * Threads: registration is single-threaded start-up work.  After that the
 * only writers are the inline atomic updates in metrics.h (any thread, no
 * lock, no allocation) and the only reader is pw_registry_encode(),
 * normally on the push thread.  The encoder never takes a lock either: it
 * reads each atomic once, so a sample is never torn, but two samples of one
 * family may come from slightly different moments.  For histograms that
 * matters, because Prometheus expects _count to equal the +Inf bucket: a
 * histogram keeps no count of its own, the encoder derives _count from the
 * bucket values it read.
 *
 * Never does: allocate or lock on the update path; write timestamps; emit a
 * name or label value it did not validate at registration; read /proc
 * itself (the process_* values come from proc.c at encode time).
 */
#include "metrics.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "proc.h"
#include "pw.h"

const double pw_buckets_stage_duration[] = {
    0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
};
const size_t pw_buckets_stage_duration_len = PW_ARRAY_LEN(pw_buckets_stage_duration);

/* Fine below 10 ms, where a healthy pipeline lives (p99 of a few ms), so
 * quantiles there are not guesses between 5 and 10 ms.  0.5 must stay a
 * bound: the latency SLO is "under 500 ms", and only a bucket boundary at
 * exactly 0.5 lets Prometheus count that without interpolation. */
const double pw_buckets_latency[] = {
    0.0005, 0.001, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
};
const size_t pw_buckets_latency_len = PW_ARRAY_LEN(pw_buckets_latency);

enum family_kind {
    FAMILY_COUNTER,
    FAMILY_COUNTER_VEC,
    FAMILY_GAUGE,
    FAMILY_GAUGE_LABELLED,
    FAMILY_AGE,
    FAMILY_HISTOGRAM,
    FAMILY_PROCESS_CPU,
    FAMILY_PROCESS_RSS,
    FAMILY_PROCESS_START,
    FAMILY_PROCESS_FDS,
};

typedef struct family {
    enum family_kind kind;
    char *name;
    char *help;
    char *label;        /* counter vec and labelled gauge */
    char **values;      /* counter vec: n label values; labelled gauge: 1 */
    size_t nvalues;
    union {
        pw_counter counter;
        pw_counter_vec vec;
        pw_gauge gauge;
        pw_histogram histogram;
    } m;
} family;

struct pw_registry {
    family **families;
    size_t n, cap;
    double process_start_time; /* fixed for the process, so read once */
};

/* ---- validation ---------------------------------------------------------- */

static bool valid_metric_name(const char *s)
{
    if (!s || !*s)
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
        if (!alpha && !(p > s && c >= '0' && c <= '9'))
            return false;
    }
    return true;
}

/* Label names: no ':' and the "__" prefix is reserved for Prometheus. */
static bool valid_label_name(const char *s)
{
    if (!s || !*s || strncmp(s, "__", 2) == 0)
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        if (!alpha && !(p > s && c >= '0' && c <= '9'))
            return false;
    }
    return true;
}

/* The text format is UTF-8; Prometheus rejects anything else. */
static bool valid_text(const char *s) { return s && pw_utf8_valid(s, strlen(s)); }

static bool name_taken(const pw_registry *reg, const char *name)
{
    for (size_t i = 0; i < reg->n; i++)
        if (strcmp(reg->families[i]->name, name) == 0)
            return true;
    return false;
}

/* ---- registration -------------------------------------------------------- */

pw_registry *pw_registry_new(void)
{
    return calloc(1, sizeof(pw_registry));
}

static void family_free(family *f)
{
    if (!f)
        return;
    free(f->name);
    free(f->help);
    free(f->label);
    if (f->values)
        for (size_t i = 0; i < f->nvalues; i++)
            free(f->values[i]);
    free(f->values);
    if (f->kind == FAMILY_COUNTER_VEC)
        free(f->m.vec.counters);
    if (f->kind == FAMILY_HISTOGRAM) {
        free((void *)f->m.histogram.bounds);
        free(f->m.histogram.buckets);
    }
    free(f);
}

void pw_registry_free(pw_registry *reg)
{
    if (!reg)
        return;
    for (size_t i = 0; i < reg->n; i++)
        family_free(reg->families[i]);
    free(reg->families);
    free(reg);
}

/* Validates the common part and allocates a family that is not yet added. */
static family *family_new(pw_registry *reg, enum family_kind kind, const char *name, const char *help)
{
    if (!reg || !valid_metric_name(name) || !valid_text(help) || name_taken(reg, name))
        return NULL;
    family *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->kind = kind;
    f->name = strdup(name);
    f->help = strdup(help);
    if (!f->name || !f->help) {
        family_free(f);
        return NULL;
    }
    return f;
}

/* Takes ownership of f; frees it when the registry cannot grow. */
static bool family_add(pw_registry *reg, family *f)
{
    if (reg->n == reg->cap) {
        size_t cap = reg->cap ? reg->cap * 2 : 16;
        family **grown = realloc(reg->families, cap * sizeof *grown);
        if (!grown) {
            family_free(f);
            return false;
        }
        reg->families = grown;
        reg->cap = cap;
    }
    reg->families[reg->n++] = f;
    return true;
}

static bool set_label_values(family *f, const char *label, const char *const *values, size_t n)
{
    f->label = strdup(label);
    f->values = calloc(n, sizeof *f->values);
    if (!f->label || !f->values)
        return false;
    for (size_t i = 0; i < n; i++) {
        f->values[i] = strdup(values[i]);
        if (!f->values[i])
            return false;
        f->nvalues = i + 1;
    }
    return true;
}

pw_counter *pw_counter_register(pw_registry *reg, const char *name, const char *help)
{
    family *f = family_new(reg, FAMILY_COUNTER, name, help);
    if (!f)
        return NULL;
    atomic_init(&f->m.counter.value, 0);
    return family_add(reg, f) ? &f->m.counter : NULL;
}

pw_counter_vec *pw_counter_vec_register(pw_registry *reg, const char *name, const char *help,
                                        const char *label, const char *const *values, size_t n)
{
    if (!valid_label_name(label) || !values || n == 0)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (!valid_text(values[i]))
            return NULL;
        for (size_t j = 0; j < i; j++)
            if (strcmp(values[i], values[j]) == 0)
                return NULL; /* two samples with one label set: invalid exposition */
    }
    family *f = family_new(reg, FAMILY_COUNTER_VEC, name, help);
    if (!f)
        return NULL;
    f->m.vec.n = n;
    f->m.vec.counters = calloc(n, sizeof *f->m.vec.counters);
    if (!f->m.vec.counters || !set_label_values(f, label, values, n)) {
        family_free(f);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        atomic_init(&f->m.vec.counters[i].value, 0);
    return family_add(reg, f) ? &f->m.vec : NULL;
}

static pw_gauge *gauge_family(pw_registry *reg, enum family_kind kind, const char *name, const char *help)
{
    family *f = family_new(reg, kind, name, help);
    if (!f)
        return NULL;
    atomic_init(&f->m.gauge.bits, pw_double_bits(0.0));
    return family_add(reg, f) ? &f->m.gauge : NULL;
}

pw_gauge *pw_gauge_register(pw_registry *reg, const char *name, const char *help)
{
    return gauge_family(reg, FAMILY_GAUGE, name, help);
}

pw_gauge *pw_age_register(pw_registry *reg, const char *name, const char *help)
{
    return gauge_family(reg, FAMILY_AGE, name, help);
}

double pw_age_value(const pw_gauge *g, double wall_now)
{
    double since = pw_gauge_get(g);
    return since > 0 && wall_now > since ? wall_now - since : 0;
}

pw_gauge *pw_gauge_register_labelled(pw_registry *reg, const char *name, const char *help,
                                     const char *label, const char *value)
{
    if (!valid_label_name(label) || !valid_text(value))
        return NULL;
    family *f = family_new(reg, FAMILY_GAUGE_LABELLED, name, help);
    if (!f)
        return NULL;
    const char *const values[] = { value };
    if (!set_label_values(f, label, values, 1)) {
        family_free(f);
        return NULL;
    }
    atomic_init(&f->m.gauge.bits, pw_double_bits(0.0));
    return family_add(reg, f) ? &f->m.gauge : NULL;
}

pw_histogram *pw_histogram_register(pw_registry *reg, const char *name, const char *help,
                                    const double *bounds, size_t nbounds)
{
    if (nbounds && !bounds)
        return NULL;
    for (size_t i = 0; i < nbounds; i++) {
        if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1])))
            return NULL;
    }
    family *f = family_new(reg, FAMILY_HISTOGRAM, name, help);
    if (!f)
        return NULL;
    pw_histogram *h = &f->m.histogram;
    double *copy = malloc((nbounds ? nbounds : 1) * sizeof *copy);
    h->buckets = calloc(nbounds + 1, sizeof *h->buckets);
    if (!copy || !h->buckets) {
        free(copy);
        family_free(f);
        return NULL;
    }
    if (nbounds)
        memcpy(copy, bounds, nbounds * sizeof *copy);
    h->bounds = copy;
    h->nbounds = nbounds;
    for (size_t i = 0; i <= nbounds; i++)
        atomic_init(&h->buckets[i], 0);
    atomic_init(&h->sum_bits, pw_double_bits(0.0));
    return family_add(reg, f) ? h : NULL;
}

int pw_registry_add_process_metrics(pw_registry *reg)
{
    if (!reg)
        return PW_EINVAL;
    /* HELP texts are client_golang's, word for word: the Pushgateway also
     * exposes its own process_* families and rejects a push whose HELP for
     * the same name differs. */
    static const struct {
        enum family_kind kind;
        const char *name, *help;
    } defs[] = {
        { FAMILY_PROCESS_CPU, "process_cpu_seconds_total", "Total user and system CPU time spent in seconds." },
        { FAMILY_PROCESS_RSS, "process_resident_memory_bytes", "Resident memory size in bytes." },
        { FAMILY_PROCESS_START, "process_start_time_seconds", "Start time of the process since unix epoch in seconds." },
        { FAMILY_PROCESS_FDS, "process_open_fds", "Number of open file descriptors." },
    };
    for (size_t i = 0; i < PW_ARRAY_LEN(defs); i++)
        if (name_taken(reg, defs[i].name))
            return PW_EINVAL;
    double start = 0;
    reg->process_start_time = pw_proc_start_seconds(&start) == PW_OK ? start : NAN;
    for (size_t i = 0; i < PW_ARRAY_LEN(defs); i++) {
        family *f = family_new(reg, defs[i].kind, defs[i].name, defs[i].help);
        if (!f || !family_add(reg, f))
            return PW_ENOMEM;
    }
    return PW_OK;
}

/* ---- encoding ------------------------------------------------------------ */

/* Shortest text that parses back to exactly d (Prometheus parses with Go's
 * ParseFloat, which rounds correctly, as strtod does), so 0.005 stays
 * "0.005"; the text format spells the non-finite values out. */
static const char *format_double(char tmp[static 40], double d)
{
    if (isnan(d))
        return "NaN";
    if (isinf(d))
        return d > 0 ? "+Inf" : "-Inf";
    pw_format_double(tmp, d);
    return tmp;
}

static void append_double(pw_buf *b, double d)
{
    char tmp[40];
    pw_buf_append_str(b, format_double(tmp, d));
}

static void append_escaped(pw_buf *b, const char *s, bool quote)
{
    const char *run = s;
    for (const char *p = s; *p; p++) {
        const char *rep = NULL;
        if (*p == '\\')
            rep = "\\\\";
        else if (*p == '\n')
            rep = "\\n";
        else if (quote && *p == '"')
            rep = "\\\"";
        if (rep) {
            pw_buf_append(b, run, (size_t)(p - run));
            pw_buf_append_str(b, rep);
            run = p + 1;
        }
    }
    pw_buf_append_str(b, run);
}

static void append_header(pw_buf *b, const family *f, const char *type)
{
    pw_buf_append_str(b, "# HELP ");
    pw_buf_append_str(b, f->name);
    pw_buf_append_char(b, ' ');
    append_escaped(b, f->help, false);
    pw_buf_append_str(b, "\n# TYPE ");
    pw_buf_append_str(b, f->name);
    pw_buf_append_char(b, ' ');
    pw_buf_append_str(b, type);
    pw_buf_append_char(b, '\n');
}

/* name[suffix]{label="value"} — label may be NULL for no labels. */
static void append_series(pw_buf *b, const char *name, const char *suffix,
                          const char *label, const char *value)
{
    pw_buf_append_str(b, name);
    if (suffix)
        pw_buf_append_str(b, suffix);
    if (label) {
        pw_buf_append_char(b, '{');
        pw_buf_append_str(b, label);
        pw_buf_append_str(b, "=\"");
        append_escaped(b, value, true);
        pw_buf_append_str(b, "\"}");
    }
    pw_buf_append_char(b, ' ');
}

static void append_u64_line(pw_buf *b, uint64_t v)
{
    pw_buf_append_u64(b, v);
    pw_buf_append_char(b, '\n');
}

static void append_double_line(pw_buf *b, double v)
{
    append_double(b, v);
    pw_buf_append_char(b, '\n');
}

static void encode_histogram(pw_buf *b, const family *f)
{
    const pw_histogram *h = &f->m.histogram;
    append_header(b, f, "histogram");
    uint64_t cumulative = 0;
    char le[40];
    for (size_t i = 0; i <= h->nbounds; i++) {
        cumulative += atomic_load_explicit(&((pw_histogram *)h)->buckets[i], memory_order_relaxed);
        if (i < h->nbounds) {
            append_series(b, f->name, "_bucket", "le", format_double(le, h->bounds[i]));
        } else {
            append_series(b, f->name, "_bucket", "le", "+Inf");
        }
        append_u64_line(b, cumulative);
    }
    double sum = pw_bits_double(atomic_load_explicit(&((pw_histogram *)h)->sum_bits, memory_order_relaxed));
    append_series(b, f->name, "_sum", NULL, NULL);
    append_double_line(b, sum);
    /* The +Inf bucket's cumulative value: Prometheus requires them equal. */
    append_series(b, f->name, "_count", NULL, NULL);
    append_u64_line(b, cumulative);
}

static void encode_process(pw_buf *b, const pw_registry *reg, const family *f)
{
    double v = NAN;
    bool ok = false;
    const char *type = "gauge";
    switch (f->kind) {
    case FAMILY_PROCESS_CPU:
        ok = pw_proc_cpu_seconds(&v) == PW_OK;
        type = "counter";
        break;
    case FAMILY_PROCESS_RSS:
        ok = pw_proc_resident_bytes(&v) == PW_OK;
        break;
    case FAMILY_PROCESS_START:
        v = reg->process_start_time;
        ok = !isnan(v);
        break;
    case FAMILY_PROCESS_FDS:
        ok = pw_proc_open_fds(&v) == PW_OK;
        break;
    default:
        break;
    }
    if (!ok)
        return; /* no /proc (or it failed): omit the family rather than invent a value */
    append_header(b, f, type);
    append_series(b, f->name, NULL, NULL, NULL);
    append_double_line(b, v);
}

int pw_registry_encode(pw_registry *reg, pw_buf *out)
{
    if (!reg || !out)
        return PW_EINVAL;
    for (size_t i = 0; i < reg->n; i++) {
        const family *f = reg->families[i];
        switch (f->kind) {
        case FAMILY_COUNTER:
            append_header(out, f, "counter");
            append_series(out, f->name, NULL, NULL, NULL);
            append_u64_line(out, pw_counter_get(&f->m.counter));
            break;
        case FAMILY_COUNTER_VEC:
            append_header(out, f, "counter");
            for (size_t k = 0; k < f->m.vec.n; k++) {
                append_series(out, f->name, NULL, f->label, f->values[k]);
                append_u64_line(out, pw_counter_get(&f->m.vec.counters[k]));
            }
            break;
        case FAMILY_GAUGE:
        case FAMILY_GAUGE_LABELLED: /* the labelled one has its one constant pair */
            append_header(out, f, "gauge");
            append_series(out, f->name, NULL, f->label, f->label ? f->values[0] : NULL);
            append_double_line(out, pw_gauge_get(&f->m.gauge));
            break;
        case FAMILY_AGE:
            append_header(out, f, "gauge");
            append_series(out, f->name, NULL, NULL, NULL);
            append_double_line(out, pw_age_value(&f->m.gauge, pw_wall_seconds()));
            break;
        case FAMILY_HISTOGRAM:
            encode_histogram(out, f);
            break;
        default:
            encode_process(out, reg, f);
            break;
        }
    }
    return pw_buf_ok(out) ? PW_OK : PW_ENOMEM;
}

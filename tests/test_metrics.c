/*
 * test_metrics.c: the registry and its text-format encoder, as a spec.
 *
 * Two independent judges check the encoder's output: the real
 * `promtool check metrics` (the parser and linter Prometheus ships), and a
 * small strict parser below that knows the exact grammar of text format
 * v0.0.4 and hands back decoded names, labels and values so the tests can
 * compare them with what was recorded.
 */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>

#include "metrics.h"
#include "pw.h"
#include "support.h"

/* ---- a strict text-format parser ---------------------------------------- */

#define MAX_FAMILIES 64
#define MAX_SAMPLES 256
#define MAX_LABELS 4

typedef struct sample {
    char name[128];
    size_t nlabels;
    char label_names[MAX_LABELS][64];
    char label_values[MAX_LABELS][256];
    double value;
    char value_text[64];
} sample;

typedef struct fam {
    char name[128];
    char help[512];
    char type[16];
    size_t first, n;  /* samples[first .. first+n) */
} fam;

typedef struct exposition {
    fam families[MAX_FAMILIES];
    size_t nfamilies;
    sample samples[MAX_SAMPLES];
    size_t nsamples;
    char error[256];
} exposition;

static bool parse_error(exposition *e, size_t line, const char *why)
{
    snprintf(e->error, sizeof e->error, "line %zu: %s", line, why);
    return false;
}

static bool is_name_char(char c, bool first, bool colon)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':') ||
           (!first && c >= '0' && c <= '9');
}

static const char *parse_name(const char *p, char *out, size_t cap, bool colon)
{
    size_t n = 0;
    while (is_name_char(p[n], n == 0, colon)) {
        if (n + 1 >= cap)
            return NULL;
        out[n] = p[n];
        n++;
    }
    out[n] = '\0';
    return n ? p + n : NULL;
}

/* Unescapes until the closing quote (label values) or end of line (help). */
static const char *parse_escaped(const char *p, char *out, size_t cap, bool quoted)
{
    size_t n = 0;
    for (;;) {
        char c = *p;
        if (c == '\0' || c == '\n')
            return quoted ? NULL : p;
        if (quoted && c == '"')
            return p + 1;
        if (c == '\\') {
            char d = p[1];
            if (d == '\\')
                c = '\\';
            else if (d == 'n')
                c = '\n';
            else if (quoted && d == '"')
                c = '"';
            else
                return NULL;
            p++;
        }
        if (n + 1 >= cap)
            return NULL;
        out[n++] = c;
        p++;
        out[n] = '\0';
    }
}

static bool parse_value(const char *text, double *out)
{
    if (strcmp(text, "+Inf") == 0) {
        *out = INFINITY;
        return true;
    }
    if (strcmp(text, "-Inf") == 0) {
        *out = -INFINITY;
        return true;
    }
    if (strcmp(text, "NaN") == 0) {
        *out = NAN;
        return true;
    }
    /* strtod also accepts "inf", "nan", hex and leading space; the format
     * does not, so restrict the alphabet first. */
    if (!*text || strspn(text, "0123456789.eE+-") != strlen(text))
        return false;
    char *end = NULL;
    *out = strtod(text, &end);
    return *end == '\0';
}

static bool sample_belongs(const fam *f, const char *name)
{
    if (strcmp(f->type, "histogram") != 0)
        return strcmp(f->name, name) == 0;
    size_t n = strlen(f->name);
    return strncmp(f->name, name, n) == 0 &&
           (strcmp(name + n, "_bucket") == 0 || strcmp(name + n, "_sum") == 0 ||
            strcmp(name + n, "_count") == 0);
}

static bool parse_exposition(const char *text, exposition *e)
{
    memset(e, 0, sizeof *e);
    size_t line = 0;
    const char *p = text;
    if (!*p)
        return true;
    if (text[strlen(text) - 1] != '\n')
        return parse_error(e, 0, "text does not end with LF");
    fam *cur = NULL;
    while (*p) {
        line++;
        if (*p == '\n')
            return parse_error(e, line, "empty line");
        if (strncmp(p, "# HELP ", 7) == 0) {
            if (e->nfamilies == MAX_FAMILIES)
                return parse_error(e, line, "too many families");
            cur = &e->families[e->nfamilies++];
            p = parse_name(p + 7, cur->name, sizeof cur->name, true);
            if (!p || *p != ' ')
                return parse_error(e, line, "bad HELP name");
            for (size_t i = 0; i + 1 < e->nfamilies; i++)
                if (strcmp(e->families[i].name, cur->name) == 0)
                    return parse_error(e, line, "family repeated");
            p = parse_escaped(p + 1, cur->help, sizeof cur->help, false);
            if (!p || *p != '\n')
                return parse_error(e, line, "bad HELP text");
            p++;
            cur->first = e->nsamples;
            continue;
        }
        if (strncmp(p, "# TYPE ", 7) == 0) {
            char name[128];
            if (!cur || cur->type[0])
                return parse_error(e, line, "TYPE without its HELP");
            p = parse_name(p + 7, name, sizeof name, true);
            if (!p || *p != ' ' || strcmp(name, cur->name) != 0)
                return parse_error(e, line, "TYPE names another family");
            p++;
            size_t n = strcspn(p, "\n");
            if (n >= sizeof cur->type)
                return parse_error(e, line, "bad type");
            memcpy(cur->type, p, n);
            cur->type[n] = '\0';
            if (strcmp(cur->type, "counter") && strcmp(cur->type, "gauge") && strcmp(cur->type, "histogram"))
                return parse_error(e, line, "unknown type");
            p += n + 1;
            continue;
        }
        if (*p == '#')
            return parse_error(e, line, "unexpected comment");
        if (!cur || !cur->type[0])
            return parse_error(e, line, "sample before HELP and TYPE");
        if (e->nsamples == MAX_SAMPLES)
            return parse_error(e, line, "too many samples");
        sample *s = &e->samples[e->nsamples++];
        cur->n++;
        p = parse_name(p, s->name, sizeof s->name, true);
        if (!p || !sample_belongs(cur, s->name))
            return parse_error(e, line, "sample outside its family");
        if (*p == '{') {
            p++;
            while (*p != '}') {
                if (s->nlabels == MAX_LABELS)
                    return parse_error(e, line, "too many labels");
                p = parse_name(p, s->label_names[s->nlabels], 64, false);
                if (!p || p[0] != '=' || p[1] != '"')
                    return parse_error(e, line, "bad label");
                p = parse_escaped(p + 2, s->label_values[s->nlabels], 256, true);
                if (!p)
                    return parse_error(e, line, "bad label value");
                s->nlabels++;
                if (*p == ',')
                    p++;
                else if (*p != '}')
                    return parse_error(e, line, "bad label list");
            }
            p++;
        }
        if (*p != ' ')
            return parse_error(e, line, "no space before value");
        p++;
        size_t n = strcspn(p, "\n");
        if (n == 0 || n >= sizeof s->value_text)
            return parse_error(e, line, "bad value length");
        memcpy(s->value_text, p, n);
        s->value_text[n] = '\0';
        if (!parse_value(s->value_text, &s->value))
            return parse_error(e, line, "value (or a timestamp after it)");
        p += n + 1;
    }
    return true;
}

static const fam *find_family(const exposition *e, const char *name)
{
    for (size_t i = 0; i < e->nfamilies; i++)
        if (strcmp(e->families[i].name, name) == 0)
            return &e->families[i];
    return NULL;
}

/* Value of sample `name` whose label `label` is `value` (label NULL: none). */
static const sample *find_sample(const exposition *e, const char *name, const char *label, const char *value)
{
    for (size_t i = 0; i < e->nsamples; i++) {
        const sample *s = &e->samples[i];
        if (strcmp(s->name, name) != 0)
            continue;
        if (!label && s->nlabels == 0)
            return s;
        for (size_t k = 0; label && k < s->nlabels; k++)
            if (strcmp(s->label_names[k], label) == 0 && strcmp(s->label_values[k], value) == 0)
                return s;
    }
    return NULL;
}

static void encode_and_parse(pw_registry *reg, pw_buf *out, exposition *e)
{
    pw_buf_reset(out);
    ck_assert_int_eq(pw_registry_encode(reg, out), PW_OK);
    ck_assert_ptr_nonnull(out->data);
    ck_assert_msg(parse_exposition(out->data, e), "strict parser: %s\n%s", e->error, out->data);
}

/* Runs `promtool check metrics` on text; returns its exit status and leaves
 * what it said in said[]. */
static int promtool_check(const char *text, char *said, size_t cap)
{
    pw_buf out = PW_BUF_INIT;
    int rc = pw_test_shell("promtool check metrics 2>&1", text, &out);
    snprintf(said, cap, "%s", out.data ? out.data : "");
    pw_buf_free(&out);
    ck_assert_msg(rc >= 0 && rc != 127, "promtool is not installed (Debian package prometheus)");
    return rc;
}

/* ---- a stage-like registry ---------------------------------------------- */

static const char *const reasons[] = { "malformed_json", "missing_field", "invalid_value",
                                       "oversize", "invalid_utf8", "processing", "push_failed" };

/* Label values that need every escape the format has, plus UTF-8. */
static const char *const awkward[] = { "plain", "quote\"inside", "back\\slash", "new\nline",
                                       "ünïcødé ✓ 日本", "", "\\\"\n\\n", "trailing\\" };

typedef struct stage_metrics {
    pw_registry *reg;
    pw_counter *processed;
    pw_counter_vec *errors;
    pw_gauge *lag;
    pw_histogram *duration;
    pw_gauge *up;
    pw_gauge *build;
    pw_counter_vec *awkward;
    pw_gauge *special;
    pw_histogram *latency;
} stage_metrics;

static stage_metrics stage_registry(void)
{
    stage_metrics m = { 0 };
    m.reg = pw_registry_new();
    ck_assert_ptr_nonnull(m.reg);
    m.processed = pw_counter_register(m.reg, "pipeline_records_processed_total", "Records this stage handled successfully.");
    m.errors = pw_counter_vec_register(m.reg, "pipeline_errors_total", "Records or operations that failed, by reason.",
                                       "reason", reasons, PW_ARRAY_LEN(reasons));
    m.lag = pw_gauge_register(m.reg, "pipeline_lag_seconds", "Now minus event time of the newest record handled.");
    m.duration = pw_histogram_register(m.reg, "pipeline_record_duration_seconds", "Time a record spends inside this stage.",
                                       pw_buckets_stage_duration, pw_buckets_stage_duration_len);
    m.up = pw_gauge_register(m.reg, "pipeline_stage_up", "1 while running, 0 pushed on clean shutdown.");
    m.build = pw_gauge_register_labelled(m.reg, "pipeline_build_info", "Build version; always 1.", "version", PW_VERSION);
    m.awkward = pw_counter_vec_register(m.reg, "pipewatch_test_awkward_total", "Help with a back\\slash and a\nnewline.",
                                        "value", awkward, PW_ARRAY_LEN(awkward));
    m.special = pw_gauge_register(m.reg, "pipewatch_test_special", "A gauge set to special values.");
    m.latency = pw_histogram_register(m.reg, "pipeline_end_to_end_latency_seconds", "Write time minus event time.",
                                      pw_buckets_latency, pw_buckets_latency_len);
    ck_assert_ptr_nonnull(m.processed);
    ck_assert_ptr_nonnull(m.errors);
    ck_assert_ptr_nonnull(m.lag);
    ck_assert_ptr_nonnull(m.duration);
    ck_assert_ptr_nonnull(m.up);
    ck_assert_ptr_nonnull(m.build);
    ck_assert_ptr_nonnull(m.awkward);
    ck_assert_ptr_nonnull(m.special);
    ck_assert_ptr_nonnull(m.latency);
    ck_assert_int_eq(pw_registry_add_process_metrics(m.reg), PW_OK);
    return m;
}

/* ---- tests --------------------------------------------------------------- */

START_TEST(test_registration_rejects_invalid_names_and_layouts)
{
    pw_registry *reg = pw_registry_new();
    const char *const one[] = { "a" };
    const char *const dup[] = { "a", "a" };
    const char *const bad_utf8[] = { "\xff" };
    const double desc[] = { 1, 0.5 };
    const double equal[] = { 1, 1 };
    const double nan_bound[] = { 0.1, NAN };
    const double inf_bound[] = { 0.1, INFINITY };

    ck_assert_ptr_null(pw_counter_register(reg, "", "h"));
    ck_assert_ptr_null(pw_counter_register(reg, "1starts_with_digit", "h"));
    ck_assert_ptr_null(pw_counter_register(reg, "has-dash", "h"));
    ck_assert_ptr_null(pw_counter_register(reg, "has space", "h"));
    ck_assert_ptr_null(pw_counter_register(reg, "ünicode", "h"));
    ck_assert_ptr_null(pw_counter_register(reg, NULL, "h"));
    ck_assert_ptr_null(pw_counter_register(reg, "bad_help_total", "\xc3("));
    ck_assert_ptr_nonnull(pw_counter_register(reg, "ok:colon_total", "h"));
    ck_assert_ptr_nonnull(pw_counter_register(reg, "_ok9_total", "h"));
    ck_assert_ptr_null(pw_counter_register(reg, "_ok9_total", "registered twice"));
    ck_assert_ptr_null(pw_gauge_register(reg, "_ok9_total", "same name, other type"));

    ck_assert_ptr_null(pw_counter_vec_register(reg, "v_total", "h", "__reserved", one, 1));
    ck_assert_ptr_null(pw_counter_vec_register(reg, "v_total", "h", "has:colon", one, 1));
    ck_assert_ptr_null(pw_counter_vec_register(reg, "v_total", "h", "9x", one, 1));
    ck_assert_ptr_null(pw_counter_vec_register(reg, "v_total", "h", "l", dup, 2));
    ck_assert_ptr_null(pw_counter_vec_register(reg, "v_total", "h", "l", bad_utf8, 1));
    ck_assert_ptr_null(pw_counter_vec_register(reg, "v_total", "h", "l", one, 0));
    ck_assert_ptr_null(pw_gauge_register_labelled(reg, "g", "h", "", "x"));

    ck_assert_ptr_null(pw_histogram_register(reg, "h_seconds", "h", desc, 2));
    ck_assert_ptr_null(pw_histogram_register(reg, "h_seconds", "h", equal, 2));
    ck_assert_ptr_null(pw_histogram_register(reg, "h_seconds", "h", nan_bound, 2));
    ck_assert_ptr_null(pw_histogram_register(reg, "h_seconds", "h", inf_bound, 2));
    ck_assert_ptr_nonnull(pw_histogram_register(reg, "h_seconds", "h", NULL, 0));
    pw_registry_free(reg);
}
END_TEST

START_TEST(test_encoder_writes_exact_text_for_each_type)
{
    pw_registry *reg = pw_registry_new();
    const char *const kinds[] = { "a", "b" };
    const double bounds[] = { 0.005, 0.5, 1 };
    pw_counter *c = pw_counter_register(reg, "t_events_total", "Events.");
    pw_counter_vec *v = pw_counter_vec_register(reg, "t_errors_total", "Errors by kind.", "kind", kinds, 2);
    pw_gauge *g = pw_gauge_register(reg, "t_ratio", "A ratio.");
    pw_gauge *info = pw_gauge_register_labelled(reg, "t_build_info", "Build.", "version", "1.2.3");
    pw_histogram *h = pw_histogram_register(reg, "t_duration_seconds", "Durations.", bounds, 3);

    pw_counter_add(c, 18446744073709551615u); /* the largest counter prints as an integer */
    pw_counter_vec_inc(v, 1);
    pw_gauge_set(g, 0.1);
    pw_gauge_set(info, 1);
    pw_histogram_observe(h, 0.005); /* a bound is inclusive: le="0.005" */
    pw_histogram_observe(h, 0.25);
    pw_histogram_observe(h, 0.25);
    pw_histogram_observe(h, 7);

    pw_buf out = PW_BUF_INIT;
    ck_assert_int_eq(pw_registry_encode(reg, &out), PW_OK);
    const char *expected =
        "# HELP t_events_total Events.\n"
        "# TYPE t_events_total counter\n"
        "t_events_total 18446744073709551615\n"
        "# HELP t_errors_total Errors by kind.\n"
        "# TYPE t_errors_total counter\n"
        "t_errors_total{kind=\"a\"} 0\n"
        "t_errors_total{kind=\"b\"} 1\n"
        "# HELP t_ratio A ratio.\n"
        "# TYPE t_ratio gauge\n"
        "t_ratio 0.1\n"
        "# HELP t_build_info Build.\n"
        "# TYPE t_build_info gauge\n"
        "t_build_info{version=\"1.2.3\"} 1\n"
        "# HELP t_duration_seconds Durations.\n"
        "# TYPE t_duration_seconds histogram\n"
        "t_duration_seconds_bucket{le=\"0.005\"} 1\n"
        "t_duration_seconds_bucket{le=\"0.5\"} 3\n"
        "t_duration_seconds_bucket{le=\"1\"} 3\n"
        "t_duration_seconds_bucket{le=\"+Inf\"} 4\n"
        "t_duration_seconds_sum 7.505\n"
        "t_duration_seconds_count 4\n";
    ck_assert_str_eq(out.data, expected);

    /* Encoding appends: a caller can prefix its own text. */
    ck_assert_int_eq(pw_registry_encode(reg, &out), PW_OK);
    ck_assert_uint_eq(out.len, 2 * strlen(expected));
    pw_buf_free(&out);
    pw_registry_free(reg);
}
END_TEST

START_TEST(test_encoder_escapes_help_and_awkward_label_values)
{
    stage_metrics m = stage_registry();
    for (size_t i = 0; i < PW_ARRAY_LEN(awkward); i++)
        pw_counter_vec_add(m.awkward, i, i + 1);
    pw_buf out = PW_BUF_INIT;
    exposition *e = calloc(1, sizeof *e);
    encode_and_parse(m.reg, &out, e);

    /* The escaped text, byte for byte ... */
    ck_assert_ptr_nonnull(strstr(out.data, "# HELP pipewatch_test_awkward_total Help with a back\\\\slash and a\\nnewline.\n"));
    ck_assert_ptr_nonnull(strstr(out.data, "pipewatch_test_awkward_total{value=\"quote\\\"inside\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(out.data, "pipewatch_test_awkward_total{value=\"back\\\\slash\"} 3\n"));
    ck_assert_ptr_nonnull(strstr(out.data, "pipewatch_test_awkward_total{value=\"new\\nline\"} 4\n"));
    ck_assert_ptr_nonnull(strstr(out.data, "pipewatch_test_awkward_total{value=\"ünïcødé ✓ 日本\"} 5\n"));
    ck_assert_ptr_nonnull(strstr(out.data, "pipewatch_test_awkward_total{value=\"\"} 6\n"));
    ck_assert_ptr_nonnull(strstr(out.data, "pipewatch_test_awkward_total{value=\"\\\\\\\"\\n\\\\n\"} 7\n"));

    /* ... and, decoded by an independent parser, exactly the values given. */
    const fam *f = find_family(e, "pipewatch_test_awkward_total");
    ck_assert_ptr_nonnull(f);
    ck_assert_str_eq(f->help, "Help with a back\\slash and a\nnewline.");
    ck_assert_uint_eq(f->n, PW_ARRAY_LEN(awkward));
    for (size_t i = 0; i < PW_ARRAY_LEN(awkward); i++) {
        const sample *s = &e->samples[f->first + i];
        ck_assert_uint_eq(s->nlabels, 1);
        ck_assert_str_eq(s->label_names[0], "value");
        ck_assert_str_eq(s->label_values[0], awkward[i]);
        ck_assert_double_eq(s->value, (double)(i + 1));
    }
    free(e);
    pw_buf_free(&out);
    pw_registry_free(m.reg);
}
END_TEST

START_TEST(test_encoder_formats_gauge_values_so_they_parse_back_exactly)
{
    pw_registry *reg = pw_registry_new();
    pw_gauge *g = pw_gauge_register(reg, "t_value", "v");
    const struct {
        double v;
        const char *text;
    } cases[] = {
        { INFINITY, "+Inf" }, { -INFINITY, "-Inf" }, { NAN, "NaN" },
        { 0, "0" }, { 1, "1" }, { -2.5, "-2.5" }, { 0.1, "0.1" }, { 1.0 / 3, "0.33333333333333331" },
        { 1e-300, "1.0000000000000001e-300" }, { 5e-324, "4.9406564584124654e-324" },
        { 1.7976931348623157e308, "1.7976931348623157e+308" }, { 123456789012.5, "123456789012.5" },
        { 1764020000.123456, "1764020000.123456" }, { 0.000005, "5.0000000000000004e-06" },
    };
    pw_buf out = PW_BUF_INIT;
    exposition *e = calloc(1, sizeof *e);
    for (size_t i = 0; i < PW_ARRAY_LEN(cases); i++) {
        pw_gauge_set(g, cases[i].v);
        encode_and_parse(reg, &out, e);
        ck_assert_uint_eq(e->nsamples, 1);
        if (isnan(cases[i].v))
            ck_assert(isnan(e->samples[0].value));
        else
            ck_assert_msg(e->samples[0].value == cases[i].v, "%s did not parse back", e->samples[0].value_text);
        /* Exact text only where shortest round-trip is unambiguous. */
        if (cases[i].text[0] != '\0' && strlen(cases[i].text) < 17)
            ck_assert_str_eq(e->samples[0].value_text, cases[i].text);
        /* Never more than 17 significant digits. */
        ck_assert_uint_le(strlen(e->samples[0].value_text), 24);
    }
    free(e);
    pw_buf_free(&out);
    pw_registry_free(reg);
}
END_TEST

START_TEST(test_bucket_layouts_print_canonical_le_values)
{
    pw_registry *reg = pw_registry_new();
    pw_histogram_register(reg, "t_stage_seconds", "h", pw_buckets_stage_duration, pw_buckets_stage_duration_len);
    pw_histogram_register(reg, "t_latency_seconds", "h", pw_buckets_latency, pw_buckets_latency_len);
    pw_buf out = PW_BUF_INIT;
    ck_assert_int_eq(pw_registry_encode(reg, &out), PW_OK);
    const char *stage_le[] = { "5e-06", "1e-05", "2.5e-05", "5e-05", "0.0001", "0.00025", "0.0005", "0.001",
                               "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "+Inf" };
    const char *latency_le[] = { "0.0005", "0.001", "0.002", "0.003", "0.004", "0.005", "0.0075",
                                 "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10",
                                 "30", "60", "+Inf" };
    ck_assert_uint_eq(pw_buckets_stage_duration_len + 1, PW_ARRAY_LEN(stage_le));
    ck_assert_uint_eq(pw_buckets_latency_len + 1, PW_ARRAY_LEN(latency_le));
    char line[128];
    for (size_t i = 0; i < PW_ARRAY_LEN(stage_le); i++) {
        snprintf(line, sizeof line, "\nt_stage_seconds_bucket{le=\"%s\"} 0\n", stage_le[i]);
        ck_assert_msg(strstr(out.data, line), "missing %s", line);
    }
    for (size_t i = 0; i < PW_ARRAY_LEN(latency_le); i++) {
        snprintf(line, sizeof line, "\nt_latency_seconds_bucket{le=\"%s\"} 0\n", latency_le[i]);
        ck_assert_msg(strstr(out.data, line), "missing %s", line);
    }
    /* The SLO is "under 500 ms": 0.5 must be an exact bound. */
    bool has_half = false;
    for (size_t i = 0; i < pw_buckets_latency_len; i++)
        has_half |= pw_buckets_latency[i] == 0.5;
    ck_assert(has_half);
    pw_buf_free(&out);
    pw_registry_free(reg);
}
END_TEST

START_TEST(test_histogram_buckets_are_cumulative_and_bounds_inclusive)
{
    pw_registry *reg = pw_registry_new();
    const double bounds[] = { 1, 2, 5 };
    pw_histogram *h = pw_histogram_register(reg, "t_size_bytes", "h", bounds, 3);
    const double observed[] = { -1, 0, 1, 1.0000001, 2, 3, 5, 5.5, 1e9, INFINITY };
    double sum = 0;
    for (size_t i = 0; i < PW_ARRAY_LEN(observed); i++) {
        pw_histogram_observe(h, observed[i]);
        sum += observed[i];
    }
    pw_buf out = PW_BUF_INIT;
    exposition *e = calloc(1, sizeof *e);
    /* The sum is the sum of what was observed, +Inf included. */
    encode_and_parse(reg, &out, e);
    ck_assert(isinf(sum));
    ck_assert_double_eq(find_sample(e, "t_size_bytes_sum", NULL, NULL)->value, sum);
    pw_histogram_observe(h, NAN); /* lands in +Inf, poisons the sum: as Prometheus clients do */
    encode_and_parse(reg, &out, e);
    const char *les[] = { "1", "2", "5", "+Inf" };
    const double want[] = { 3, 5, 7, 11 };
    const fam *f = find_family(e, "t_size_bytes");
    ck_assert_ptr_nonnull(f);
    ck_assert_str_eq(f->type, "histogram");
    ck_assert_uint_eq(f->n, 6);
    double prev = 0;
    for (size_t i = 0; i < PW_ARRAY_LEN(les); i++) {
        const sample *s = find_sample(e, "t_size_bytes_bucket", "le", les[i]);
        ck_assert_ptr_nonnull(s);
        ck_assert_double_eq(s->value, want[i]);
        ck_assert(s->value >= prev);
        prev = s->value;
    }
    ck_assert_double_eq(find_sample(e, "t_size_bytes_count", NULL, NULL)->value, 11);
    ck_assert(isnan(find_sample(e, "t_size_bytes_sum", NULL, NULL)->value));
    free(e);
    pw_buf_free(&out);
    pw_registry_free(reg);
}
END_TEST

START_TEST(test_encoder_output_passes_promtool)
{
    stage_metrics m = stage_registry();
    pw_counter_add(m.processed, 12345);
    pw_counter_vec_inc(m.errors, 6);
    pw_gauge_set(m.lag, 0.042);
    pw_gauge_set(m.up, 1);
    pw_gauge_set(m.build, 1);
    for (size_t i = 0; i < PW_ARRAY_LEN(awkward); i++)
        pw_counter_vec_inc(m.awkward, i);
    for (int i = 0; i < 1000; i++) {
        pw_histogram_observe(m.duration, i * 1e-5);
        pw_histogram_observe(m.latency, i * 0.01);
    }
    pw_buf out = PW_BUF_INIT;
    exposition *e = calloc(1, sizeof *e);
    char said[8192];
    const double specials[] = { INFINITY, -INFINITY, NAN, -0.0, 1e-300 };
    for (size_t i = 0; i < PW_ARRAY_LEN(specials); i++) {
        pw_gauge_set(m.special, specials[i]);
        encode_and_parse(m.reg, &out, e);
        int rc = promtool_check(out.data, said, sizeof said);
        ck_assert_msg(rc == 0, "promtool exit %d: %s\n--- input ---\n%s", rc, said, out.data);
        ck_assert_msg(said[0] == '\0', "promtool said: %s", said);
    }
    free(e);
    pw_buf_free(&out);
    pw_registry_free(m.reg);
}
END_TEST

START_TEST(test_promtool_rejects_what_the_strict_parser_rejects)
{
    /* The judges themselves: both must catch a broken exposition, or a
     * passing test above would prove nothing. */
    char said[4096];
    const char *bad[] = {
        "# HELP x_total h\n# TYPE x_total counter\nx_total{l=\"unterminated} 1\n",
        "# HELP x_total h\n# TYPE x_total counter\nx_total{l=\"a\\q\"} 1\n",
        "# HELP x_total h\n# TYPE x_total counter\nx_total one\n",
    };
    exposition *e = calloc(1, sizeof *e);
    for (size_t i = 0; i < PW_ARRAY_LEN(bad); i++) {
        ck_assert_int_ne(promtool_check(bad[i], said, sizeof said), 0);
        ck_assert(!parse_exposition(bad[i], e));
    }
    ck_assert(!parse_exposition("# HELP x h\n# TYPE x gauge\nx 1 1764020000000\n", e));
    ck_assert(!parse_exposition("# HELP x h\n# TYPE x gauge\nx 1", e));
    free(e);
}
END_TEST

typedef struct hammer {
    stage_metrics *m;
    size_t index;
    long n;
} hammer;

static void *hammer_thread(void *arg)
{
    hammer *h = arg;
    for (long i = 0; i < h->n; i++) {
        pw_counter_inc(h->m->processed);
        pw_counter_vec_inc(h->m->errors, h->index % 2);
        pw_gauge_add(h->m->lag, 1.0);
        pw_histogram_observe(h->m->duration, (i % 2) ? 0.0005 : 0.5);
    }
    return NULL;
}

START_TEST(test_concurrent_updates_from_4_threads_sum_exactly)
{
    enum { THREADS = 4 };
    const long per_thread = 1000000;
    stage_metrics m = stage_registry();
    pthread_t t[THREADS];
    hammer h[THREADS];
    for (size_t i = 0; i < THREADS; i++) {
        h[i] = (hammer){ &m, i, per_thread };
        ck_assert_int_eq(pthread_create(&t[i], NULL, hammer_thread, &h[i]), 0);
    }
    /* Meanwhile, every encoding must be well-formed and internally
     * consistent (_count == +Inf bucket, buckets cumulative), and counters
     * must never go backwards between encodings. */
    pw_buf out = PW_BUF_INIT;
    exposition *e = calloc(1, sizeof *e);
    double last_processed = 0;
    int encodings = 0; /* begun while the threads were still updating */
    for (;;) {
        bool done = pw_counter_get(m.processed) == (uint64_t)(THREADS * per_thread);
        encode_and_parse(m.reg, &out, e);
        const sample *p = find_sample(e, "pipeline_records_processed_total", NULL, NULL);
        ck_assert(p->value >= last_processed);
        last_processed = p->value;
        const sample *inf = find_sample(e, "pipeline_record_duration_seconds_bucket", "le", "+Inf");
        const sample *cnt = find_sample(e, "pipeline_record_duration_seconds_count", NULL, NULL);
        ck_assert_double_eq(inf->value, cnt->value);
        const fam *f = find_family(e, "pipeline_record_duration_seconds");
        for (size_t i = 1; i + 2 < f->n; i++)
            ck_assert(e->samples[f->first + i].value >= e->samples[f->first + i - 1].value);
        if (done)
            break;
        encodings++;
    }
    for (size_t i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);

    const double total = THREADS * (double)per_thread;
    encode_and_parse(m.reg, &out, e);
    ck_assert_double_eq(find_sample(e, "pipeline_records_processed_total", NULL, NULL)->value, total);
    ck_assert_double_eq(find_sample(e, "pipeline_errors_total", "reason", reasons[0])->value, total / 2);
    ck_assert_double_eq(find_sample(e, "pipeline_errors_total", "reason", reasons[1])->value, total / 2);
    ck_assert_double_eq(find_sample(e, "pipeline_lag_seconds", NULL, NULL)->value, total);
    ck_assert_double_eq(find_sample(e, "pipeline_record_duration_seconds_bucket", "le", "0.0005")->value, total / 2);
    ck_assert_double_eq(find_sample(e, "pipeline_record_duration_seconds_bucket", "le", "0.25")->value, total / 2);
    ck_assert_double_eq(find_sample(e, "pipeline_record_duration_seconds_bucket", "le", "0.5")->value, total);
    ck_assert_double_eq(find_sample(e, "pipeline_record_duration_seconds_count", NULL, NULL)->value, total);
    uint64_t observed = 0;
    for (size_t i = 0; i <= m.duration->nbounds; i++)
        observed += atomic_load(&m.duration->buckets[i]);
    ck_assert_uint_eq(observed, (uint64_t)total);
    /* 0.5 and 0.0005 sums are not exact in binary; the total is within a
     * rounding hair (4e6 additions of ~1e-10 error each) of the exact answer. */
    double sum = find_sample(e, "pipeline_record_duration_seconds_sum", NULL, NULL)->value;
    ck_assert_double_eq_tol(sum, total / 2 * 0.5005, 1e-3);
    /* Otherwise the checks above never saw an update in flight. */
    ck_assert_int_gt(encodings, 0);
    free(e);
    pw_buf_free(&out);
    pw_registry_free(m.reg);
}
END_TEST

START_TEST(test_process_metrics_present_and_plausible)
{
    stage_metrics m = stage_registry();
    pw_buf out = PW_BUF_INIT;
    exposition *e = calloc(1, sizeof *e);
    encode_and_parse(m.reg, &out, e);
    ck_assert_str_eq(find_family(e, "process_cpu_seconds_total")->type, "counter");
    ck_assert_str_eq(find_family(e, "process_resident_memory_bytes")->type, "gauge");
    ck_assert_str_eq(find_family(e, "process_start_time_seconds")->type, "gauge");
    ck_assert_str_eq(find_family(e, "process_open_fds")->type, "gauge");

    double cpu = find_sample(e, "process_cpu_seconds_total", NULL, NULL)->value;
    double rss = find_sample(e, "process_resident_memory_bytes", NULL, NULL)->value;
    double start = find_sample(e, "process_start_time_seconds", NULL, NULL)->value;
    double fds = find_sample(e, "process_open_fds", NULL, NULL)->value;
    double now = pw_wall_seconds();
    ck_assert(cpu >= 0 && cpu < 3600);
    ck_assert(rss > 256 * 1024 && rss < 64.0 * 1024 * 1024 * 1024);
    /* Started (Check forks each test) moments ago; clock ticks are 10 ms. */
    ck_assert_msg(start <= now + 1 && start > now - 600, "start %f now %f", start, now);
    ck_assert(fds >= 3 && fds < 100000);

    /* Burning CPU shows up in the counter.  Burn by CPU time, not wall
     * time: on a loaded machine 300 ms of wall time may be little CPU. */
    volatile double x = 0;
    struct timespec t0, t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
    do {
        for (int i = 0; i < 100000; i++)
            x += 1;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    } while ((double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9 < 0.3);
    /* Opening descriptors shows up in the count, exactly. */
    int extra[3];
    for (size_t i = 0; i < 3; i++)
        extra[i] = open("/dev/null", O_RDONLY);
    encode_and_parse(m.reg, &out, e);
    /* /proc/self/stat ticks are 10 ms and may lag a tick behind. */
    ck_assert(find_sample(e, "process_cpu_seconds_total", NULL, NULL)->value >= cpu + 0.25);
    ck_assert_double_eq(find_sample(e, "process_open_fds", NULL, NULL)->value, fds + 3);
    ck_assert_double_eq(find_sample(e, "process_start_time_seconds", NULL, NULL)->value, start);
    for (size_t i = 0; i < 3; i++)
        close(extra[i]);
    free(e);
    pw_buf_free(&out);
    pw_registry_free(m.reg);
}
END_TEST

START_TEST(test_process_metrics_register_once)
{
    pw_registry *reg = pw_registry_new();
    ck_assert_int_eq(pw_registry_add_process_metrics(reg), PW_OK);
    ck_assert_int_eq(pw_registry_add_process_metrics(reg), PW_EINVAL);
    ck_assert_ptr_null(pw_gauge_register(reg, "process_open_fds", "clash"));
    pw_registry_free(reg);
}
END_TEST

START_TEST(test_empty_registry_encodes_to_nothing)
{
    pw_registry *reg = pw_registry_new();
    pw_buf out = PW_BUF_INIT;
    ck_assert_int_eq(pw_registry_encode(reg, &out), PW_OK);
    ck_assert_uint_eq(out.len, 0);
    pw_buf_free(&out);
    pw_registry_free(reg);
    pw_registry_free(NULL);
}
END_TEST

START_TEST(test_age_gauge_grows_with_the_clock_and_zero_means_caught_up)
{
    pw_registry *reg = pw_registry_new();
    pw_gauge *age = pw_age_register(reg, "test_age_seconds", "An age.");
    ck_assert_ptr_nonnull(age);
    ck_assert_double_eq(pw_age_value(age, 1000.0), 0);
    pw_gauge_set(age, 990.0);
    ck_assert_double_eq(pw_age_value(age, 1000.0), 10.0);
    ck_assert_double_eq(pw_age_value(age, 1005.5), 15.5);
    ck_assert_double_eq(pw_age_value(age, 980.0), 0); /* clock stepped back: never negative */
    pw_gauge_set(age, pw_wall_seconds() - 100);
    pw_buf out = PW_BUF_INIT;
    ck_assert_int_eq(pw_registry_encode(reg, &out), PW_OK);
    ck_assert_ptr_nonnull(strstr(out.data, "# TYPE test_age_seconds gauge\n"));
    const char *line = strstr(out.data, "\ntest_age_seconds ");
    ck_assert_ptr_nonnull(line);
    double v = strtod(line + strlen("\ntest_age_seconds "), NULL);
    ck_assert(v >= 100 && v < 160);
    pw_buf_free(&out);
    pw_registry_free(reg);
}
END_TEST

int main(void)
{
    PW_TEST_SKIP_WITHOUT_METRICS();
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_registration_rejects_invalid_names_and_layouts);
    tcase_add_test(tc, test_encoder_writes_exact_text_for_each_type);
    tcase_add_test(tc, test_encoder_escapes_help_and_awkward_label_values);
    tcase_add_test(tc, test_encoder_formats_gauge_values_so_they_parse_back_exactly);
    tcase_add_test(tc, test_bucket_layouts_print_canonical_le_values);
    tcase_add_test(tc, test_histogram_buckets_are_cumulative_and_bounds_inclusive);
    tcase_add_test(tc, test_encoder_output_passes_promtool);
    tcase_add_test(tc, test_promtool_rejects_what_the_strict_parser_rejects);
    tcase_add_test(tc, test_concurrent_updates_from_4_threads_sum_exactly);
    tcase_add_test(tc, test_process_metrics_present_and_plausible);
    tcase_add_test(tc, test_process_metrics_register_once);
    tcase_add_test(tc, test_empty_registry_encodes_to_nothing);
    tcase_add_test(tc, test_age_gauge_grows_with_the_clock_and_zero_means_caught_up);
    suite_add_tcase(s, tc);
    return pw_test_run(s);
}

/*
 * fuzz_metrics: the Prometheus text encoder with label values, help texts
 * and sample values chosen by the input.
 *
 * Input: 8 bytes of a gauge value, 8 of a histogram observation, 1 byte of
 * flags (bit 0: also register the process_* families), then NUL-separated
 * words: help text, labelled-gauge value, then counter-vec label values.
 * Registration may refuse (invalid UTF-8, duplicate values); the families
 * it accepts are encoded and the output is read back by a strict parser of
 * text format v0.0.4 written here, independent of metrics.c:
 *   # HELP <name> <text>          text: escapes \\ and \n only
 *   # TYPE <name> <counter|gauge|histogram|summary|untyped>
 *   <name>[{<label>="<value>"(,<label>="<value>")*}] <float>
 * with values escaped only as \\ \" \n, floats as decimal or +Inf/-Inf/NaN,
 * every line ending in '\n', HELP then TYPE once per family and before its
 * samples, samples named after their family (histograms: _bucket, _sum,
 * _count), and the whole text valid UTF-8.  Label values and help texts
 * must also read back to exactly what was registered.
 */
#include <ctype.h>
#include <math.h>

#include "buf.h"
#include "fuzz_common.h"
#include "metrics.h"
#include "pw.h"

#define MAX_VALUES 16
#define MAX_FAMILIES 16

static void fail_at(const char *text, size_t len, const char *line, const char *why)
{
    fprintf(stderr, "metrics text violates v0.0.4: %s\nline: %.*s\n--- whole text ---\n%.*s\n", why,
            (int)strcspn(line, "\n"), line, (int)len, text);
    abort();
}

static bool name_char(char c, bool first)
{
    return isalpha((unsigned char)c) || c == '_' || c == ':' ||
           (!first && c >= '0' && c <= '9');
}

/* Reads a metric name at *p; returns its length (0 when none). */
static size_t read_name(const char *p, bool metric)
{
    size_t n = 0;
    while (name_char(p[n], n == 0) && (metric || p[n] != ':'))
        n++;
    return n;
}

static bool valid_float(const char *s, size_t n)
{
    if ((n == 4 && (memcmp(s, "+Inf", 4) == 0 || memcmp(s, "-Inf", 4) == 0)) ||
        (n == 3 && memcmp(s, "NaN", 3) == 0))
        return true;
    size_t i = 0;
    if (i < n && (s[i] == '-' || s[i] == '+'))
        i++;
    size_t digits = 0;
    while (i < n && isdigit((unsigned char)s[i])) {
        i++;
        digits++;
    }
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && isdigit((unsigned char)s[i])) {
            i++;
            digits++;
        }
    }
    if (!digits)
        return false;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '-' || s[i] == '+'))
            i++;
        size_t e = 0;
        while (i < n && isdigit((unsigned char)s[i])) {
            i++;
            e++;
        }
        if (!e)
            return false;
    }
    return i == n;
}

/* Unescapes [p, p+n) into out with the given allowed escapes; false on a
 * forbidden escape or a trailing backslash. */
static bool unescape(const char *p, size_t n, bool quote, pw_buf *out)
{
    pw_buf_reset(out);
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '\\') {
            pw_buf_append_char(out, p[i]);
            continue;
        }
        if (++i >= n)
            return false;
        if (p[i] == '\\')
            pw_buf_append_char(out, '\\');
        else if (p[i] == 'n')
            pw_buf_append_char(out, '\n');
        else if (quote && p[i] == '"')
            pw_buf_append_char(out, '"');
        else
            return false;
    }
    pw_buf_append(out, "", 0);
    return true;
}

typedef struct family_seen {
    char name[128];
    char type[16];
    bool help, typed;
} family_seen;

/* Expected registrations, to compare what reads back. */
typedef struct expected {
    const char *help;
    const char *gauge_value;        /* NULL: the labelled gauge was refused */
    const char *values[MAX_VALUES]; /* counter vec label values */
    size_t nvalues;                 /* 0: refused */
    size_t values_seen;
    bool gauge_value_seen;
} expected;

static bool sample_belongs(const family_seen *f, const char *name, size_t n)
{
    size_t fl = strlen(f->name);
    if (n == fl && memcmp(name, f->name, n) == 0)
        return strcmp(f->type, "histogram") != 0 && strcmp(f->type, "summary") != 0;
    if (n < fl || memcmp(name, f->name, fl) != 0)
        return false;
    const char *suffix = name + fl;
    size_t sl = n - fl;
    if (strcmp(f->type, "histogram") == 0)
        return (sl == 7 && memcmp(suffix, "_bucket", 7) == 0) ||
               (sl == 4 && memcmp(suffix, "_sum", 4) == 0) ||
               (sl == 6 && memcmp(suffix, "_count", 6) == 0);
    return false;
}

static void parse_text(const char *text, size_t len, expected *want)
{
    static pw_buf un = PW_BUF_INIT;
    family_seen fams[MAX_FAMILIES];
    size_t nfams = 0;
    family_seen *cur = NULL;
    if (!pw_utf8_valid(text, len))
        fail_at(text, len, text, "not valid UTF-8");
    if (len == 0)
        return;
    if (text[len - 1] != '\n')
        fail_at(text, len, text, "does not end with a newline");
    if (memchr(text, '\0', len))
        fail_at(text, len, text, "contains a NUL byte");
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        size_t ll = (size_t)(eol - p);
        const char *line = p;
        if (ll == 0)
            fail_at(text, len, line, "empty line");
        if (line[0] == '#') {
            bool is_help = ll > 7 && memcmp(line, "# HELP ", 7) == 0;
            bool is_type = ll > 7 && memcmp(line, "# TYPE ", 7) == 0;
            if (!is_help && !is_type)
                fail_at(text, len, line, "comment is neither HELP nor TYPE");
            const char *name = line + 7;
            size_t nl = read_name(name, true);
            if (nl == 0 || nl >= sizeof fams[0].name || 7 + nl >= ll || name[nl] != ' ')
                fail_at(text, len, line, "bad metric name after HELP/TYPE");
            const char *rest = name + nl + 1;
            size_t rl = ll - 7 - nl - 1;
            family_seen *f = NULL;
            for (size_t i = 0; i < nfams; i++)
                if (strlen(fams[i].name) == nl && memcmp(fams[i].name, name, nl) == 0)
                    f = &fams[i];
            if (!f) {
                if (nfams == MAX_FAMILIES)
                    fail_at(text, len, line, "too many families");
                f = &fams[nfams++];
                memset(f, 0, sizeof *f);
                memcpy(f->name, name, nl);
            } else if (f != cur) {
                fail_at(text, len, line, "family's lines are not contiguous");
            }
            if (is_help) {
                if (f->help || f->typed)
                    fail_at(text, len, line, "HELP repeated or after TYPE");
                f->help = true;
                if (!unescape(rest, rl, false, &un))
                    fail_at(text, len, line, "HELP text has an escape other than \\\\ and \\n");
                if (strncmp(f->name, "fuzz_", 5) == 0 && strcmp(un.data, want->help) != 0)
                    fail_at(text, len, line, "HELP text does not read back as registered");
            } else {
                if (f->typed)
                    fail_at(text, len, line, "TYPE repeated");
                static const char *const types[] = { "counter", "gauge", "histogram", "summary",
                                                     "untyped" };
                bool ok = false;
                for (size_t i = 0; i < PW_ARRAY_LEN(types); i++)
                    if (rl == strlen(types[i]) && memcmp(rest, types[i], rl) == 0)
                        ok = true;
                if (!ok)
                    fail_at(text, len, line, "unknown TYPE");
                f->typed = true;
                memcpy(f->type, rest, rl);
                f->type[rl] = '\0';
            }
            cur = f;
        } else {
            size_t nl = read_name(line, true);
            if (nl == 0)
                fail_at(text, len, line, "sample line does not start with a metric name");
            if (!cur || !cur->typed || !sample_belongs(cur, line, nl))
                fail_at(text, len, line, "sample outside its family or before TYPE");
            const char *q = line + nl;
            const char *qend = line + ll;
            if (q < qend && *q == '{') {
                q++;
                for (;;) {
                    size_t ln = read_name(q, false);
                    if (ln == 0)
                        fail_at(text, len, line, "bad label name");
                    const char *lname = q;
                    q += ln;
                    if (qend - q < 2 || q[0] != '=' || q[1] != '"')
                        fail_at(text, len, line, "label name not followed by =\"");
                    q += 2;
                    const char *v = q;
                    while (q < qend && *q != '"') {
                        if (*q == '\\')
                            q++;
                        q++;
                    }
                    if (q >= qend)
                        fail_at(text, len, line, "unterminated label value");
                    if (!unescape(v, (size_t)(q - v), true, &un))
                        fail_at(text, len, line, "label value has an escape other than \\\\ \\\" \\n");
                    q++;
                    if (strncmp(cur->name, "fuzz_", 5) == 0) {
                        if (ln == 7 && memcmp(lname, "version", 7) == 0) {
                            if (!want->gauge_value || strcmp(un.data, want->gauge_value) != 0)
                                fail_at(text, len, line, "gauge label value does not read back");
                            want->gauge_value_seen = true;
                        } else if (ln == 6 && memcmp(lname, "reason", 6) == 0) {
                            if (want->values_seen >= want->nvalues ||
                                strcmp(un.data, want->values[want->values_seen]) != 0)
                                fail_at(text, len, line, "label value does not read back");
                            want->values_seen++;
                        }
                    }
                    if (q < qend && *q == ',') {
                        q++;
                        if (q < qend && *q == '}')
                            break; /* a trailing comma is allowed */
                        continue;
                    }
                    break;
                }
                if (q >= qend || *q != '}')
                    fail_at(text, len, line, "label set not closed");
                q++;
            }
            if (q >= qend || *q != ' ')
                fail_at(text, len, line, "no space before the value");
            q++;
            if (!valid_float(q, (size_t)(qend - q)))
                fail_at(text, len, line, "value is not a float (or there is a timestamp)");
        }
        p = eol + 1;
    }
    for (size_t i = 0; i < nfams; i++)
        if (!fams[i].help || !fams[i].typed)
            fail_at(text, len, text, "family without HELP or TYPE");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static pw_buf out = PW_BUF_INIT;
    if (size < 17)
        return 0;
    double gauge_value, observation;
    memcpy(&gauge_value, data, 8);
    memcpy(&observation, data + 8, 8);
    uint8_t flags = data[16];
    data += 17;
    size -= 17;

    char *words[MAX_VALUES + 2], *block;
    size_t n = fuzz_split(data, size, words, MAX_VALUES + 2, &block);
    expected want = { .help = words[0] };

    pw_registry *reg = pw_registry_new();
    if (!reg)
        abort();
    pw_counter *c = pw_counter_register(reg, "fuzz_counter_total", words[0]);
    if (c) {
        uint64_t bits;
        memcpy(&bits, &observation, sizeof bits);
        pw_counter_add(c, bits);
    }
    if (n > 1) {
        pw_gauge *g = pw_gauge_register_labelled(reg, "fuzz_info", words[0], "version", words[1]);
        if (g) {
            want.gauge_value = words[1];
            pw_gauge_set(g, gauge_value);
        }
    }
    if (n > 2) {
        const char *const *values = (const char *const *)&words[2];
        pw_counter_vec *v = pw_counter_vec_register(reg, "fuzz_errors_total", words[0], "reason",
                                                    values, n - 2);
        if (v) {
            want.nvalues = n - 2;
            for (size_t i = 0; i < n - 2; i++) {
                want.values[i] = words[2 + i];
                pw_counter_vec_add(v, i, i);
            }
        }
    }
    pw_gauge *g = pw_gauge_register(reg, "fuzz_gauge", words[0]);
    if (g)
        pw_gauge_set(g, gauge_value);
    static const double bounds[] = { 0.005, 0.5, 1, 1e300 };
    pw_histogram *h = pw_histogram_register(reg, "fuzz_duration_seconds", words[0], bounds,
                                            PW_ARRAY_LEN(bounds));
    if (h) {
        pw_histogram_observe(h, observation);
        pw_histogram_observe(h, gauge_value);
    }
    /* Registration must not accept text that is not UTF-8. */
    if (c || g || h)
        FUZZ_CHECK(pw_utf8_valid(words[0], strlen(words[0])), "invalid UTF-8 help accepted");
    if (flags & 1)
        pw_registry_add_process_metrics(reg);

    pw_buf_reset(&out);
    FUZZ_CHECK(pw_registry_encode(reg, &out) == PW_OK, "encode failed");
    parse_text(out.data ? out.data : "", out.len, &want);
    FUZZ_CHECK(want.values_seen == want.nvalues, "a label value is missing from the output");
    FUZZ_CHECK(!want.gauge_value || want.gauge_value_seen, "the labelled gauge is missing");
    pw_registry_free(reg);
    free(block);
    return 0;
}

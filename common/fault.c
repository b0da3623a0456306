/*
 * fault.c: the fault catalogue: every kind of broken record the producer
 * can inject (--fault-kinds, --fault-rate), the error a worker must report
 * for it, and how it is made.
 *
 * For: the producer's fault injection and the tests that prove each fault
 * is refused with its reason.  Owns: one table, {name, expected error,
 * recipe}, so a new kind is one row; the choice of which records are
 * faulty (pw_fault_pick).  Never: writes bytes itself (generate.c follows
 * the recipe) or parses records.
 */
#include <stdbool.h>
#include <string.h>

#include "pw.h"
#include "record.h"
#include "record_internal.h"

/* Invalid values, one per seq in turn; each breaks exactly one rule. */
static const struct { int field; const char *json; } invalid_values[] = {
    { PW_G_AMOUNT, "-5.00" },
    { PW_G_ITEMS, "\"three\"" },
    { PW_G_TS, "\"1764020000.5\"" },
    { PW_G_TRACE_ID, "\"0123456789abcdefghijklmnopqrstuv\"" },
    { PW_G_SEQ, "-1" },
    { PW_G_ITEMS, "10001" },
    { PW_G_USER_ID, "12.5" },
    { PW_G_PAYLOAD, "[1,2,3]" },
    { PW_G_KIND, "\"\"" },
    { PW_G_TS, "4102444800" },
    { PW_G_ID, "42" },
    { PW_G_TRACE_ID, "\"4BF92F3577B34DA6A3CE929D0E0E4736\"" },
};

/* Bytes that are not UTF-8, inside an otherwise valid string. */
static const struct { const char *bytes; size_t len; } invalid_utf8[] = {
    { "caf\xff\xfe", 5 },     /* bytes that never occur in UTF-8 */
    { "caf\xc3\x28", 5 },     /* lead byte followed by a non-continuation */
    { "euro \xe2\x82", 7 },   /* truncated sequence before the closing quote */
    { "\xed\xa0\x80", 3 },    /* UTF-16 surrogate encoded as UTF-8 */
    { "\xc0\xaf", 2 },        /* overlong '/' */
};

static void make_valid(struct pw_gen_recipe *r, uint64_t seq)
{
    (void)r;
    (void)seq;
}

/* Five shapes in turn: truncated mid-object, an unquoted key, a trailing
 * comma, NaN, a single-quoted string. */
static void make_malformed_json(struct pw_gen_recipe *r, uint64_t seq)
{
    switch (seq % 5) {
    case 0: r->truncate = true; break;
    case 1: r->unquote = PW_G_KIND; break;
    case 2: r->trailing_comma = true; break;
    case 3: r->replace = PW_G_AMOUNT; r->replace_json = "NaN"; break;
    case 4: r->replace = PW_G_TRACE_ID; r->replace_json = "'4bf92f3577b34da6a3ce929d0e0e4736'"; break;
    }
}

static void make_missing_field(struct pw_gen_recipe *r, uint64_t seq)
{
    r->omit = (int)(seq % PW_G_FIELD_COUNT);
}

static void make_invalid_value(struct pw_gen_recipe *r, uint64_t seq)
{
    r->replace = invalid_values[seq % PW_ARRAY_LEN(invalid_values)].field;
    r->replace_json = invalid_values[seq % PW_ARRAY_LEN(invalid_values)].json;
}

static void make_oversize(struct pw_gen_recipe *r, uint64_t seq)
{
    (void)seq;
    r->note_fill = PW_RECORD_MAX_BYTES + 4464; /* 70000 bytes of note */
}

static void make_invalid_utf8(struct pw_gen_recipe *r, uint64_t seq)
{
    r->note = invalid_utf8[seq % PW_ARRAY_LEN(invalid_utf8)].bytes;
    r->note_len = invalid_utf8[seq % PW_ARRAY_LEN(invalid_utf8)].len;
}

static void make_empty(struct pw_gen_recipe *r, uint64_t seq)
{
    (void)seq;
    r->empty = true;
}

/* Valid JSON and in range, but amount*100 has no exact integer. */
static void make_poison(struct pw_gen_recipe *r, uint64_t seq)
{
    (void)seq;
    r->replace = PW_G_AMOUNT;
    r->replace_json = "1e300";
}

static const struct fault_kind {
    const char *name;
    pw_record_error error; /* what a worker must report for it */
    void (*make)(struct pw_gen_recipe *r, uint64_t seq);
} fault_kinds[PW_FAULT_COUNT] = {
    [PW_FAULT_NONE] = { "none", PW_REC_OK, make_valid },
    [PW_FAULT_MALFORMED_JSON] = { "malformed_json", PW_REC_MALFORMED_JSON, make_malformed_json },
    [PW_FAULT_MISSING_FIELD] = { "missing_field", PW_REC_MISSING_FIELD, make_missing_field },
    [PW_FAULT_INVALID_VALUE] = { "invalid_value", PW_REC_INVALID_VALUE, make_invalid_value },
    [PW_FAULT_OVERSIZE] = { "oversize", PW_REC_OVERSIZE, make_oversize },
    [PW_FAULT_INVALID_UTF8] = { "invalid_utf8", PW_REC_INVALID_UTF8, make_invalid_utf8 },
    [PW_FAULT_EMPTY] = { "empty", PW_REC_EMPTY, make_empty },
    [PW_FAULT_POISON] = { "poison", PW_REC_PROCESSING, make_poison },
};

const char *pw_fault_name(pw_fault f)
{
    if ((unsigned)f >= PW_FAULT_COUNT)
        return "unknown";
    return fault_kinds[f].name;
}

pw_record_error pw_fault_expected_error(pw_fault f)
{
    if ((unsigned)f >= PW_FAULT_COUNT)
        return PW_REC_OK;
    return fault_kinds[f].error;
}

void pw_fault_recipe(pw_fault f, uint64_t seq, struct pw_gen_recipe *recipe)
{
    *recipe = (struct pw_gen_recipe)PW_GEN_RECIPE_VALID;
    if ((unsigned)f < PW_FAULT_COUNT)
        fault_kinds[f].make(recipe, seq);
}

int pw_fault_parse_list(const char *list, unsigned *mask, const char **bad)
{
    static char bad_copy[64];
    unsigned m = 0;
    if (!list) {
        bad_copy[0] = '\0';
        if (bad)
            *bad = bad_copy;
        return PW_EINVAL;
    }
    const char *p = list;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        /* Operators write "a, b"; spaces around a name are not part of it. */
        const char *q = p;
        while (n && (*q == ' ' || *q == '\t')) {
            q++;
            n--;
        }
        while (n && (q[n - 1] == ' ' || q[n - 1] == '\t'))
            n--;
        bool found = false;
        if (n == 3 && memcmp(q, "all", 3) == 0) {
            for (unsigned f = PW_FAULT_NONE + 1; f < PW_FAULT_COUNT; f++)
                m |= 1u << f;
            found = true;
        }
        for (unsigned f = PW_FAULT_NONE + 1; !found && f < PW_FAULT_COUNT; f++) {
            if (strlen(fault_kinds[f].name) == n && memcmp(q, fault_kinds[f].name, n) == 0) {
                m |= 1u << f;
                found = true;
            }
        }
        if (!found) {
            size_t c = n < sizeof bad_copy - 1 ? n : sizeof bad_copy - 1;
            memcpy(bad_copy, q, c);
            bad_copy[c] = '\0';
            if (bad)
                *bad = bad_copy;
            return PW_EINVAL;
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    if (mask)
        *mask = m;
    return PW_OK;
}

static uint64_t mix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15u;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9u;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBu;
    return x ^ (x >> 31);
}

pw_fault pw_fault_pick(uint64_t run, uint64_t seq, double rate, const pw_fault *faults, size_t n)
{
    if (rate <= 0 || n == 0)
        return PW_FAULT_NONE;
    uint64_t h = mix64(run ^ (seq * 0x2545F4914F6CDD1Du));
    double u = (double)(h >> 11) * 0x1.0p-53;
    if (u >= rate)
        return PW_FAULT_NONE;
    return faults[mix64(h) % n];
}

int pw_fault_kinds(const char *list, pw_fault *out, size_t *n)
{
    unsigned mask = 0;
    const char *bad;
    *n = 0;
    if (pw_fault_parse_list(list, &mask, &bad) != PW_OK)
        return PW_EINVAL;
    for (int f = 1; f < PW_FAULT_COUNT; f++)
        if (mask & (1u << f))
            out[(*n)++] = (pw_fault)f;
    return PW_OK;
}

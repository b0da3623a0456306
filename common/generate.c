/*
 * generate.c: the producer's records, valid or broken by a fault's recipe.
 *
 * For: the producer, which regenerates a record to re-send it instead of
 * keeping its bytes, and the tests.  Owns: the field values and their
 * layout.  Never: decides which records are faulty or how a fault breaks
 * a record (fault.c), or allocates beyond growing the caller's pw_buf.
 *
 * Generation is a pure function of (producer, seq, ts, fault): field values
 * come from splitmix64 over a hash of producer and seq.  The valid record,
 * the producer's hot path, has its own writer (gen_valid_fast) that must
 * give the same bytes as the general one (tested).
 */
#include <assert.h>
#include <stdbool.h>
#include <string.h>

#include "pw.h"
#include "record.h"
#include "record_internal.h"

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t fnv1a64(const char *s)
{
    uint64_t h = 0xCBF29CE484222325ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001B3ull;
    }
    return h;
}

static const char *const gen_kinds[] = { "order", "refund", "signup", "payment" };

static void append_repeat(pw_buf *b, char c, size_t n)
{
    if (pw_buf_reserve(b, n) != PW_OK)
        return;
    memset(b->data + b->len, c, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void gen_key(pw_buf *out, const struct pw_gen_recipe *g, int field, bool *first)
{
    if (!*first)
        pw_buf_append_char(out, ',');
    *first = false;
    static const char *const names[PW_G_FIELD_COUNT] = {
        "id", "seq", "producer", "ts", "trace_id", "kind", "payload",
        "user_id", "amount", "items",
    };
    if (g->unquote == field) {
        pw_buf_append_str(out, names[field]);
        pw_buf_append_char(out, ':');
    } else {
        pw_buf_append_char(out, '"');
        pw_buf_append_str(out, names[field]);
        pw_buf_append_str(out, "\":");
    }
}

/* Writes key and value unless the spec omits or replaces the field; returns
 * true when the caller should write the normal value. */
static bool gen_field(pw_buf *out, const struct pw_gen_recipe *g, int field, bool *first)
{
    if (g->omit == field)
        return false;
    gen_key(out, g, field, first);
    if (g->replace == field) {
        pw_buf_append_str(out, g->replace_json);
        return false;
    }
    return true;
}

static void gen_record(pw_buf *out, const char *producer, uint64_t seq, double ts,
                       const struct pw_gen_recipe *g)
{
    uint64_t state = fnv1a64(producer) ^ (seq * 0xD1B54A32D192ED03ull);
    uint64_t t1 = splitmix64(&state), t2 = splitmix64(&state);
    uint64_t r_kind = splitmix64(&state), r_user = splitmix64(&state);
    uint64_t r_amount = splitmix64(&state), r_items = splitmix64(&state);
    size_t plen = strlen(producer);
    bool first = true;

    pw_buf_append_char(out, '{');
    if (gen_field(out, g, PW_G_ID, &first)) {
        pw_buf_append_char(out, '"');
        pw_buf_append_json_escaped(out, producer, plen);
        pw_buf_append_char(out, '-');
        pw_buf_append_u64(out, seq);
        pw_buf_append_char(out, '"');
    }
    if (gen_field(out, g, PW_G_SEQ, &first))
        pw_buf_append_u64(out, seq);
    if (gen_field(out, g, PW_G_PRODUCER, &first)) {
        pw_buf_append_char(out, '"');
        pw_buf_append_json_escaped(out, producer, plen);
        pw_buf_append_char(out, '"');
    }
    if (gen_field(out, g, PW_G_TS, &first))
        pw_buf_append_fixed6(out, ts);
    if (gen_field(out, g, PW_G_TRACE_ID, &first)) {
        char hex[34];
        hex[0] = hex[33] = '"';
        for (int i = 0; i < 16; i++) {
            hex[1 + i] = "0123456789abcdef"[t1 >> (60 - 4 * i) & 15];
            hex[17 + i] = "0123456789abcdef"[t2 >> (60 - 4 * i) & 15];
        }
        pw_buf_append(out, hex, sizeof hex);
    }
    if (gen_field(out, g, PW_G_KIND, &first)) {
        pw_buf_append_char(out, '"');
        pw_buf_append_str(out, gen_kinds[r_kind % PW_ARRAY_LEN(gen_kinds)]);
        pw_buf_append_char(out, '"');
    }
    if (g->note || g->note_fill) {
        pw_buf_append_str(out, first ? "\"note\":\"" : ",\"note\":\"");
        first = false;
        if (g->note)
            pw_buf_append(out, g->note, g->note_len);
        else
            append_repeat(out, 'x', g->note_fill);
        pw_buf_append_char(out, '"');
    }
    if (gen_field(out, g, PW_G_PAYLOAD, &first)) {
        bool pfirst = true;
        pw_buf_append_char(out, '{');
        if (gen_field(out, g, PW_G_USER_ID, &pfirst))
            pw_buf_append_u64(out, r_user % 1000000 + 1);
        if (gen_field(out, g, PW_G_AMOUNT, &pfirst)) {
            uint64_t cents = r_amount % 50000 + 1;
            char frac[3] = { '.', (char)('0' + cents / 10 % 10), (char)('0' + cents % 10) };
            pw_buf_append_u64(out, cents / 100);
            pw_buf_append(out, frac, sizeof frac);
        }
        if (gen_field(out, g, PW_G_ITEMS, &pfirst))
            pw_buf_append_u64(out, r_items % 12);
        pw_buf_append_char(out, '}');
    }
    pw_buf_append_char(out, '}');
}

static char *put(char *o, const char *s, size_t n)
{
    memcpy(o, s, n);
    return o + n;
}

/* True when the name goes into JSON as it is (printable ASCII, no quote or
 * backslash): the fast path copies it without escaping. */
static bool plain_name(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] > 0x7e || s[i] == '"' || s[i] == '\\')
            return false;
    return true;
}

/* The valid record, written straight into reserved space: the same bytes as
 * gen_record() with an empty spec (tested), in one pass with no per-token
 * buffer calls.  This is the producer's hot path. */
static void gen_valid_fast(pw_buf *out, const char *producer, size_t plen, uint64_t seq, double ts)
{
    uint64_t state = fnv1a64(producer) ^ (seq * 0xD1B54A32D192ED03ull);
    uint64_t t1 = splitmix64(&state), t2 = splitmix64(&state);
    uint64_t r_kind = splitmix64(&state), r_user = splitmix64(&state);
    uint64_t r_amount = splitmix64(&state), r_items = splitmix64(&state);

    if (pw_buf_reserve(out, 64 + 2 * plen + 40) != PW_OK)
        return;
    char *o = out->data + out->len;
    o = put(o, "{\"id\":\"", 7);
    o = put(o, producer, plen);
    *o++ = '-';
    o = pw_put_u64(o, seq);
    o = put(o, "\",\"seq\":", 8);
    o = pw_put_u64(o, seq);
    o = put(o, ",\"producer\":\"", 13);
    o = put(o, producer, plen);
    o = put(o, "\",\"ts\":", 7);
    out->len = (size_t)(o - out->data);
    assert(out->len < out->cap); /* within the bytes reserved above */
    pw_buf_append_fixed6(out, ts);

    const char *kind = gen_kinds[r_kind % PW_ARRAY_LEN(gen_kinds)];
    if (pw_buf_reserve(out, 160) != PW_OK)
        return;
    o = out->data + out->len;
    o = put(o, ",\"trace_id\":\"", 13);
    for (int i = 0; i < 16; i++)
        *o++ = "0123456789abcdef"[t1 >> (60 - 4 * i) & 15];
    for (int i = 0; i < 16; i++)
        *o++ = "0123456789abcdef"[t2 >> (60 - 4 * i) & 15];
    o = put(o, "\",\"kind\":\"", 10);
    o = put(o, kind, strlen(kind));
    o = put(o, "\",\"payload\":{\"user_id\":", 23);
    o = pw_put_u64(o, r_user % 1000000 + 1);
    o = put(o, ",\"amount\":", 10);
    uint64_t cents = r_amount % 50000 + 1;
    o = pw_put_u64(o, cents / 100);
    *o++ = '.';
    *o++ = (char)('0' + cents / 10 % 10);
    *o++ = (char)('0' + cents % 10);
    o = put(o, ",\"items\":", 9);
    o = pw_put_u64(o, r_items % 12);
    *o++ = '}';
    *o++ = '}';
    out->len = (size_t)(o - out->data);
    assert(out->len < out->cap); /* within the 160 bytes reserved above */
    out->data[out->len] = '\0';
}

void pw_record_generate_reference(pw_buf *out, const char *producer, uint64_t seq, double ts)
{
    struct pw_gen_recipe g = PW_GEN_RECIPE_VALID;
    gen_record(out, producer ? producer : "", seq, ts, &g);
}

void pw_record_generate(pw_buf *out, const char *producer, uint64_t seq, double ts, pw_fault fault)
{
    if (fault == PW_FAULT_NONE && producer && plain_name(producer, strlen(producer))) {
        gen_valid_fast(out, producer, strlen(producer), seq, ts);
        return;
    }
    struct pw_gen_recipe g;
    pw_fault_recipe(fault, seq, &g);
    if (g.empty)
        return;
    if (!producer)
        producer = "";
    size_t start = out->len;
    gen_record(out, producer, seq, ts, &g);
    if (!pw_buf_ok(out))
        return;
    size_t len = out->len - start;
    if (g.truncate) {
        /* Any proper prefix of an object is incomplete JSON; cut on a
         * character boundary so the fault stays malformed_json and does not
         * turn into invalid_utf8 when the producer name is not ASCII. */
        size_t cut = 1 + (size_t)(seq / 5 % (len - 1));
        while (cut > 1 && ((unsigned char)out->data[start + cut] & 0xC0) == 0x80)
            cut--;
        assert(cut < len);
        out->len = start + cut;
        out->data[out->len] = '\0';
    } else if (g.trailing_comma) {
        out->len--; /* the final '}' */
        pw_buf_append_str(out, ",}");
    }
}

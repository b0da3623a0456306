/*
 * record_parse.c: the one-pass parser and validator (contract in record.h).
 *
 * For: turning a record's bytes into a pw_record or the reason it is
 * refused, on the worker's per-record path.  Owns: the strict RFC 8259
 * scanner, string unescaping, number reading, the field rules, and the
 * pre-check both parsers share (pw_record_precheck).  Never: allocates per
 * record, builds a tree, or writes anything (record_write.c does).
 *
 * Validation is layered from cheap to expensive so that the first failing
 * check names the reason: byte-level checks (empty, size, UTF-8), then one
 * pass over the bytes that checks the syntax and notes where the fields
 * are, then the field rules read from those places.  The syntax pass is
 * strict (no NaN, Infinity, single quotes, "00", "1." or raw control
 * characters in strings) because the transform copies the raw bytes into
 * the output file: anything non-standard let through here would end up as
 * a line that other JSON readers reject.  It also owns the depth rule:
 * PW_RECORD_MAX_DEPTH nested containers, whatever the innermost value is.
 *
 * The json-c reference parser that tests and fuzzers compare this one with
 * lives in tests/record_reference.c and shares pw_record_precheck.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pw.h"
#include "record.h"
#include "record_internal.h"

_Static_assert(PW_RECORD_MAX_DEPTH <= 64, "container kinds are tracked in a 64-bit mask");

static const char *const error_reasons[PW_REC_ERROR_COUNT] = {
    [PW_REC_OK] = "ok",
    [PW_REC_MALFORMED_JSON] = "malformed_json",
    [PW_REC_MISSING_FIELD] = "missing_field",
    [PW_REC_INVALID_VALUE] = "invalid_value",
    [PW_REC_OVERSIZE] = "oversize",
    [PW_REC_INVALID_UTF8] = "invalid_utf8",
    [PW_REC_EMPTY] = "empty",
    [PW_REC_PROCESSING] = "processing",
};

const char *pw_record_error_reason(pw_record_error err)
{
    if ((unsigned)err >= PW_REC_ERROR_COUNT)
        return "unknown";
    return error_reasons[err];
}

const char *const pw_record_top_fields[PW_F_TOP_COUNT] = {
    "id", "seq", "producer", "ts", "trace_id", "kind", "payload",
};
const char *const pw_record_payload_fields[PW_P_COUNT] = { "user_id", "amount", "items" };
const char *const pw_record_top_missing[PW_F_TOP_COUNT] = {
    "missing field id",       "missing field seq",  "missing field producer",
    "missing field ts",       "missing field trace_id", "missing field kind",
    "missing field payload",
};
const char *const pw_record_payload_missing[PW_P_COUNT] = {
    "missing field payload.user_id", "missing field payload.amount",
    "missing field payload.items",
};

/* ---- strict syntax pass ------------------------------------------------- */

enum syntax_result { SYNTAX_OK, SYNTAX_BAD, SYNTAX_TOO_DEEP };

static bool is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Bytes that end the fast run inside a string: quote, backslash, controls. */
static const unsigned char string_stop[256] = {
    [0x00] = 1, [0x01] = 1, [0x02] = 1, [0x03] = 1, [0x04] = 1, [0x05] = 1, [0x06] = 1,
    [0x07] = 1, [0x08] = 1, [0x09] = 1, [0x0a] = 1, [0x0b] = 1, [0x0c] = 1, [0x0d] = 1,
    [0x0e] = 1, [0x0f] = 1, [0x10] = 1, [0x11] = 1, [0x12] = 1, [0x13] = 1, [0x14] = 1,
    [0x15] = 1, [0x16] = 1, [0x17] = 1, [0x18] = 1, [0x19] = 1, [0x1a] = 1, [0x1b] = 1,
    [0x1c] = 1, [0x1d] = 1, [0x1e] = 1, [0x1f] = 1, ['"'] = 1, ['\\'] = 1,
};

/* s[i] is the opening quote; returns the index after the closing quote, or 0. */
static size_t scan_string(const unsigned char *s, size_t i, size_t len)
{
    i++;
    for (;;) {
        while (i < len && !string_stop[s[i]])
            i++;
        if (i >= len)
            return 0;
        unsigned char c = s[i];
        if (c == '"')
            return i + 1;
        if (c < 0x20)
            return 0;
        if (i + 1 >= len)
            return 0;
        switch (s[i + 1]) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
            i += 2;
            break;
        case 'u':
            if (i + 6 > len || !is_hex(s[i + 2]) || !is_hex(s[i + 3]) || !is_hex(s[i + 4]) ||
                !is_hex(s[i + 5]))
                return 0;
            i += 6;
            break;
        default:
            return 0;
        }
    }
}

static size_t scan_digits(const unsigned char *s, size_t i, size_t len)
{
    while (i < len && s[i] >= '0' && s[i] <= '9')
        i++;
    return i;
}

/* RFC 8259 number at s[i]; returns the index after it, or 0. */
static size_t scan_number(const unsigned char *s, size_t i, size_t len)
{
    if (s[i] == '-')
        i++;
    if (i >= len)
        return 0;
    if (s[i] == '0')
        i++;
    else if (s[i] >= '1' && s[i] <= '9')
        i = scan_digits(s, i + 1, len);
    else
        return 0;
    if (i < len && s[i] == '.') {
        size_t j = scan_digits(s, i + 1, len);
        if (j == i + 1)
            return 0;
        i = j;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t j = scan_digits(s, i, len);
        if (j == i)
            return 0;
        i = j;
    }
    return i;
}

static size_t scan_literal(const unsigned char *s, size_t i, size_t len, const char *lit)
{
    size_t n = strlen(lit);
    if (len - i < n || memcmp(s + i, lit, n) != 0)
        return 0;
    return i + n;
}

/* Where a field's value sits in the raw bytes, as found by json_scan. */
struct field_slot {
    const unsigned char *v; /* first byte of the value (the quote of a string) */
    size_t n;               /* bytes of the value (scalars only) */
    unsigned char kind;     /* first byte: '"', '{', '[', 't', 'f', 'n' or a number's */
};

/* The record's fields of interest.  Like a JSON object, a key that appears
 * twice keeps its last value (as json-c and most readers do). */
struct pw_scan_fields {
    struct field_slot top[PW_F_TOP_COUNT];
    struct field_slot pay[PW_P_COUNT];
};

static size_t json_unescape(const unsigned char *s, size_t n, char *dst, size_t cap);

/* Index of the key [k, k+n) (raw string contents) in names, or -1. */
static int match_key(const unsigned char *k, size_t n, const char *const *names, int count)
{
    if (n == 0 || n > 8)
        return -1; /* no field name is longer */
    char buf[16];
    if (memchr(k, '\\', n)) { /* "\u0069d" is "id" too */
        size_t m = json_unescape(k, n, buf, sizeof buf);
        if (m == (size_t)-1)
            return -1;
        k = (const unsigned char *)buf;
        n = m;
    }
    for (int i = 0; i < count; i++)
        if (names[i][0] == (char)k[0] && strnlen(names[i], n + 1) == n && memcmp(names[i], k, n) == 0)
            return i;
    return -1;
}

/* One pass over the bytes, no allocation: checks a JSON text per RFC 8259
 * with at most max_depth nested containers and, when f is not NULL, notes
 * where the record's fields are (top-level keys, and the keys of the object
 * that is the top-level "payload"). */
static enum syntax_result json_scan(const unsigned char *s, size_t len, unsigned max_depth,
                                    struct pw_scan_fields *f)
{
    enum { EXPECT_VALUE, EXPECT_KEY, AFTER_VALUE } state = EXPECT_VALUE;
    uint64_t object_bits = 0; /* bit d: the container at depth d is an object */
    unsigned depth = 0;
    unsigned payload_depth = 0; /* depth inside the payload object, 0 = not in it */
    struct field_slot *slot = NULL; /* where the value being read goes */
    bool slot_is_payload = false;
    size_t i = pw_json_skip_ws(s, 0, len);

    for (;;) {
        if (state == AFTER_VALUE) {
            i = pw_json_skip_ws(s, i, len);
            if (depth == 0)
                return i == len ? SYNTAX_OK : SYNTAX_BAD;
            if (i >= len)
                return SYNTAX_BAD;
            bool in_object = object_bits >> (depth - 1) & 1;
            unsigned char c = s[i++];
            if (c == ',') {
                state = in_object ? EXPECT_KEY : EXPECT_VALUE;
            } else if (c == (in_object ? '}' : ']')) {
                if (depth == payload_depth)
                    payload_depth = 0;
                depth--;
            } else {
                return SYNTAX_BAD;
            }
            continue;
        }
        i = pw_json_skip_ws(s, i, len);
        if (i >= len)
            return SYNTAX_BAD;
        if (state == EXPECT_KEY) {
            size_t k = i;
            if (s[i] != '"' || !(i = scan_string(s, i, len)))
                return SYNTAX_BAD;
            slot = NULL;
            if (f && depth == 1) {
                int idx = match_key(s + k + 1, i - k - 2, pw_record_top_fields, PW_F_TOP_COUNT);
                if (idx >= 0) {
                    slot = &f->top[idx];
                    slot_is_payload = idx == PW_F_PAYLOAD;
                    if (slot_is_payload) /* a later payload replaces an earlier one */
                        memset(f->pay, 0, sizeof f->pay);
                }
            } else if (f && payload_depth && depth == payload_depth) {
                int idx = match_key(s + k + 1, i - k - 2, pw_record_payload_fields, PW_P_COUNT);
                if (idx >= 0) {
                    slot = &f->pay[idx];
                    slot_is_payload = false;
                }
            }
            i = pw_json_skip_ws(s, i, len);
            if (i >= len || s[i] != ':')
                return SYNTAX_BAD;
            i++;
            state = EXPECT_VALUE;
            continue;
        }
        /* EXPECT_VALUE */
        unsigned char c = s[i];
        size_t start = i;
        if (slot) {
            slot->v = s + i;
            slot->kind = c;
            slot->n = 0;
        }
        if (c == '{' || c == '[') {
            if (depth == max_depth)
                return SYNTAX_TOO_DEEP;
            if (c == '{')
                object_bits |= (uint64_t)1 << depth;
            else
                object_bits &= ~((uint64_t)1 << depth);
            depth++;
            if (slot && slot_is_payload && c == '{')
                payload_depth = depth;
            slot = NULL;
            i = pw_json_skip_ws(s, i + 1, len);
            if (i < len && s[i] == (c == '{' ? '}' : ']')) {
                if (depth == payload_depth)
                    payload_depth = 0;
                depth--;
                i++;
                state = AFTER_VALUE;
            } else {
                state = c == '{' ? EXPECT_KEY : EXPECT_VALUE;
            }
            continue;
        }
        if (c == '"')
            i = scan_string(s, i, len);
        else if (c == '-' || (c >= '0' && c <= '9'))
            i = scan_number(s, i, len);
        else if (c == 't')
            i = scan_literal(s, i, len, "true");
        else if (c == 'f')
            i = scan_literal(s, i, len, "false");
        else if (c == 'n')
            i = scan_literal(s, i, len, "null");
        else
            return SYNTAX_BAD;
        if (!i)
            return SYNTAX_BAD;
        if (slot) {
            slot->n = i - start;
            slot = NULL;
        }
        state = AFTER_VALUE;
    }
}

/* Decodes the contents of a JSON string (between the quotes, already
 * syntax-checked) into dst; returns the length, or (size_t)-1 when it does
 * not fit in cap - 1 bytes.  dst is NUL-terminated.  A lone surrogate
 * escape becomes U+FFFD. */
static size_t json_unescape(const unsigned char *s, size_t n, char *dst, size_t cap)
{
    if (!memchr(s, '\\', n)) { /* the common case: nothing to decode */
        if (n >= cap)
            return (size_t)-1;
        memcpy(dst, s, n);
        dst[n] = '\0';
        return n;
    }
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        char tmp[4];
        size_t tn = 1;
        if (c != '\\') {
            tmp[0] = (char)c;
            i++;
        } else {
            unsigned char e = s[i + 1];
            i += 2;
            switch (e) {
            case 'b': tmp[0] = '\b'; break;
            case 'f': tmp[0] = '\f'; break;
            case 'n': tmp[0] = '\n'; break;
            case 'r': tmp[0] = '\r'; break;
            case 't': tmp[0] = '\t'; break;
            case 'u': {
                unsigned cp = (unsigned)strtoul((const char[]){ (char)s[i], (char)s[i + 1], (char)s[i + 2], (char)s[i + 3], 0 }, NULL, 16);
                i += 4;
                if (cp >= 0xD800 && cp <= 0xDBFF && i + 6 <= n && s[i] == '\\' && s[i + 1] == 'u') {
                    unsigned lo = (unsigned)strtoul((const char[]){ (char)s[i + 2], (char)s[i + 3], (char)s[i + 4], (char)s[i + 5], 0 }, NULL, 16);
                    if (lo >= 0xDC00 && lo <= 0xDFFF) {
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        i += 6;
                    }
                }
                if (cp >= 0xD800 && cp <= 0xDFFF)
                    cp = 0xFFFD;
                if (cp < 0x80) {
                    tmp[0] = (char)cp;
                } else if (cp < 0x800) {
                    tmp[0] = (char)(0xC0 | cp >> 6);
                    tmp[1] = (char)(0x80 | (cp & 0x3F));
                    tn = 2;
                } else if (cp < 0x10000) {
                    tmp[0] = (char)(0xE0 | cp >> 12);
                    tmp[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
                    tmp[2] = (char)(0x80 | (cp & 0x3F));
                    tn = 3;
                } else {
                    tmp[0] = (char)(0xF0 | cp >> 18);
                    tmp[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
                    tmp[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
                    tmp[3] = (char)(0x80 | (cp & 0x3F));
                    tn = 4;
                }
                break;
            }
            default: tmp[0] = (char)e; break; /* quote, backslash, slash */
            }
        }
        if (o + tn >= cap)
            return (size_t)-1;
        memcpy(dst + o, tmp, tn);
        o += tn;
    }
    dst[o] = '\0';
    return o;
}

/* A string field of 1..cap-1 bytes without NUL, decoded into dst. */
static const char *slot_string(const struct field_slot *f, char *dst, size_t cap,
                               const char *not_string, const char *bad_length, const char *has_nul)
{
    if (f->kind != '"')
        return not_string;
    size_t n = json_unescape(f->v + 1, f->n - 2, dst, cap);
    if (n == (size_t)-1 || n == 0)
        return bad_length;
    if (strlen(dst) != n)
        return has_nul;
    return NULL;
}

static bool slot_is_number(const struct field_slot *f)
{
    return f->kind == '-' || (f->kind >= '0' && f->kind <= '9');
}

/* A JSON integer literal (no fraction, no exponent). */
static bool slot_is_integer(const struct field_slot *f)
{
    if (!slot_is_number(f))
        return false;
    for (size_t i = 0; i < f->n; i++)
        if (f->v[i] == '.' || f->v[i] == 'e' || f->v[i] == 'E')
            return false;
    return true;
}

/* An integer literal's value in [0, INT64_MAX] ("-0" is 0). */
static bool slot_nonneg_int(const struct field_slot *f, int64_t *out)
{
    size_t i = 0;
    bool negative = f->v[0] == '-';
    if (negative)
        i++;
    uint64_t v = 0;
    for (; i < f->n; i++) {
        unsigned d = (unsigned)(f->v[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
        if (v > (uint64_t)INT64_MAX)
            return false;
    }
    if (negative && v != 0)
        return false;
    *out = (int64_t)v;
    return true;
}

/* A number literal as a double.  The common shapes (up to 15 significant
 * digits, no exponent: timestamps, amounts) take the exact fast path: the
 * digits form an integer below 2^53 and 10^k for k <= 22 is exact, so one
 * IEEE division rounds correctly, as strtod would.  Anything else goes to
 * strtod. */
static double slot_double(const struct field_slot *f)
{
    static const double pow10[] = { 1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22 };
    size_t i = 0;
    bool negative = f->v[0] == '-';
    if (negative)
        i++;
    uint64_t m = 0;
    int digits = 0, frac = -1;
    for (; i < f->n; i++) {
        unsigned char c = f->v[i];
        if (c == '.') {
            frac = 0;
            continue;
        }
        if (c < '0' || c > '9')
            break; /* exponent */
        if (m || c != '0')
            digits++;
        m = m * 10 + (uint64_t)(c - '0');
        if (frac >= 0)
            frac++;
        if (digits > 15)
            break;
    }
    if (i == f->n && digits <= 15 && frac <= 22) {
        double v = (double)m / pow10[frac > 0 ? frac : 0];
        /* "-0" is the integer 0 (json-c: +0.0); "-0.0" is the double -0.0. */
        return negative && (m != 0 || frac >= 0) ? -v : v;
    }
    char buf[64];
    if (f->n < sizeof buf) {
        memcpy(buf, f->v, f->n);
        buf[f->n] = '\0';
        return strtod(buf, NULL);
    }
    return strtod((const char *)f->v, NULL);
}

/* The field rules of record.h, read from the slots json_scan filled. */
static pw_record_error validate_fast(pw_record_parser *p, const struct pw_scan_fields *f, pw_record *out,
                                     const char **detail)
{
    for (int i = 0; i < PW_F_TOP_COUNT; i++)
        if (!f->top[i].v)
            return pw_record_fail(detail, PW_REC_MISSING_FIELD, pw_record_top_missing[i]);
    bool payload_is_object = f->top[PW_F_PAYLOAD].kind == '{';
    if (payload_is_object)
        for (int i = 0; i < PW_P_COUNT; i++)
            if (!f->pay[i].v)
                return pw_record_fail(detail, PW_REC_MISSING_FIELD, pw_record_payload_missing[i]);

    pw_record r;
    int64_t i64;
    const char *why;
    if ((why = slot_string(&f->top[PW_F_ID], p->id, sizeof p->id, "id is not a string",
                           "id length out of range 1..128", "id contains a NUL character")))
        return pw_record_fail(detail, PW_REC_INVALID_VALUE, why);
    r.id = p->id;

    if (!slot_is_integer(&f->top[PW_F_SEQ]))
        return pw_record_fail(detail, PW_REC_INVALID_VALUE, "seq is not an integer");
    if (!slot_nonneg_int(&f->top[PW_F_SEQ], &i64))
        return pw_record_fail(detail, PW_REC_INVALID_VALUE, "seq out of range");
    r.seq = (uint64_t)i64;

    if ((why = slot_string(&f->top[PW_F_PRODUCER], p->producer, sizeof p->producer,
                           "producer is not a string", "producer length out of range 1..64",
                           "producer contains a NUL character")))
        return pw_record_fail(detail, PW_REC_INVALID_VALUE, why);
    r.producer = p->producer;

    if (!slot_is_number(&f->top[PW_F_TS]))
        return pw_record_fail(detail, PW_REC_INVALID_VALUE, "ts is not a number");
    r.ts = slot_double(&f->top[PW_F_TS]);
    if (!(r.ts > 0 && r.ts < PW_RECORD_TS_MAX))
        return pw_record_fail(detail, PW_REC_INVALID_VALUE, "ts out of range");

    const struct field_slot *t = &f->top[PW_F_TRACE_ID];
    bool trace_ok = t->kind == '"' && json_unescape(t->v + 1, t->n - 2, p->trace_id, sizeof p->trace_id) == 32;
    for (int i = 0; trace_ok && i < 32; i++)
        trace_ok = (p->trace_id[i] >= '0' && p->trace_id[i] <= '9') || (p->trace_id[i] >= 'a' && p->trace_id[i] <= 'f');
    if (!trace_ok)
        return pw_record_fail(detail, PW_REC_INVALID_VALUE, "trace_id is not 32 lowercase hex digits");
    r.trace_id = p->trace_id;

    if ((why = slot_string(&f->top[PW_F_KIND], p->kind, sizeof p->kind, "kind is not a string",
                           "kind length out of range 1..32", "kind contains a NUL character")))
        return pw_record_fail(detail, PW_REC_INVALID_VALUE, why);
    r.kind = p->kind;

    if (!payload_is_object)
        return pw_record_fail(detail, PW_REC_INVALID_VALUE, "payload is not an object");

    if (!slot_is_integer(&f->pay[PW_P_USER_ID]))
        return pw_record_fail(detail, PW_REC_INVALID_VALUE, "payload.user_id is not an integer");
    if (!slot_nonneg_int(&f->pay[PW_P_USER_ID], &r.user_id))
        return pw_record_fail(detail, PW_REC_INVALID_VALUE, "payload.user_id out of range");

    if (!slot_is_number(&f->pay[PW_P_AMOUNT]))
        return pw_record_fail(detail, PW_REC_INVALID_VALUE, "payload.amount is not a number");
    r.amount = slot_double(&f->pay[PW_P_AMOUNT]);
    if (!isfinite(r.amount) || !(r.amount >= 0))
        return pw_record_fail(detail, PW_REC_INVALID_VALUE, "payload.amount out of range");

    if (!slot_is_integer(&f->pay[PW_P_ITEMS]))
        return pw_record_fail(detail, PW_REC_INVALID_VALUE, "payload.items is not an integer");
    if (!slot_nonneg_int(&f->pay[PW_P_ITEMS], &r.items) || r.items > 10000)
        return pw_record_fail(detail, PW_REC_INVALID_VALUE, "payload.items out of range 0..10000");

    *out = r;
    if (detail)
        *detail = "ok";
    return PW_REC_OK;
}

/* ---- entry points -------------------------------------------------------- */

pw_record_parser *pw_record_parser_new(void)
{
    return calloc(1, sizeof(pw_record_parser));
}

void pw_record_parser_free(pw_record_parser *p)
{
    if (!p)
        return;
    if (p->extension_free)
        p->extension_free(p->extension);
    free(p);
}

/* Inlined into pw_record_parse so that json_scan is specialised for a
 * non-NULL fields there, as it was before the reference parser shared it
 * (measured: 4-6 % of the per-record cost otherwise). */
static inline __attribute__((always_inline)) pw_record_error
precheck(const char *bytes, size_t len, struct pw_scan_fields *fields, const char **detail)
{
    if (!bytes)
        len = 0;
    const unsigned char *s = (const unsigned char *)bytes;

    size_t first = pw_json_skip_ws(s, 0, len);
    if (first == len)
        return pw_record_fail(detail, PW_REC_EMPTY, len ? "record is only whitespace" : "record is empty");
    if (len > PW_RECORD_MAX_BYTES)
        return pw_record_fail(detail, PW_REC_OVERSIZE, "record larger than 65536 bytes");
    if (!pw_utf8_valid(bytes, len))
        return pw_record_fail(detail, PW_REC_INVALID_UTF8, "record is not valid UTF-8");

    if (fields)
        memset(fields, 0, sizeof *fields);
    switch (json_scan(s, len, PW_RECORD_MAX_DEPTH, fields)) {
    case SYNTAX_OK:
        break;
    case SYNTAX_TOO_DEEP:
        return pw_record_fail(detail, PW_REC_MALFORMED_JSON, "JSON nested deeper than 16 levels");
    case SYNTAX_BAD:
        return pw_record_fail(detail, PW_REC_MALFORMED_JSON, "not a valid JSON text");
    }
    if (s[first] != '{')
        return pw_record_fail(detail, PW_REC_INVALID_VALUE, "record is not a JSON object");
    return PW_REC_OK;
}

pw_record_error pw_record_precheck(const char *bytes, size_t len, struct pw_scan_fields *fields,
                                   const char **detail)
{
    return precheck(bytes, len, fields, detail);
}

pw_record_error pw_record_parse(pw_record_parser *p, const char *bytes, size_t len,
                                pw_record *out, const char **detail)
{
    struct pw_scan_fields f;
    pw_record_error err = precheck(bytes, len, &f, detail);
    if (err != PW_REC_OK)
        return err;
    return validate_fast(p, &f, out, detail);
}

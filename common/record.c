/*
 * record.c: parse, validate, transform, dead-letter and generate records
 * (contract in record.h).
 *
 * Validation is layered from cheap to expensive so that the first failing
 * check names the reason: byte-level checks (empty, size, UTF-8), then a
 * strict RFC 8259 syntax pass, then json-c builds the tree we read fields
 * from.  The syntax pass exists because json-c's JSON_TOKENER_STRICT still
 * accepts NaN, Infinity, single-quoted strings, "00", "1." and raw control
 * characters inside strings; the transform copies the raw bytes into the
 * output file, so anything non-standard let through here would end up as a
 * line that other JSON readers reject.  It also owns the depth rule, because
 * json-c counts a scalar as a nesting level and would make "16 deep" mean
 * different things for `[[...[]]]` and `[[...[1]]]`.
 *
 * The transform never builds a second tree or serialises the first one: it
 * copies the validated bytes and splices the added fields in before the final
 * '}'.  Per record, the only allocation is json-c's tree; the tokener and the
 * caller's buffers are reused.
 *
 * Generation is a pure function of (producer, seq, ts, fault): field values
 * come from splitmix64 over a hash of producer and seq, so the producer can
 * regenerate a record to re-send it.  It only appends to the caller's buffer.
 */
#include "record.h"

#include <json-c/json.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pw.h"

_Static_assert(PW_RECORD_MAX_DEPTH <= 64, "container kinds are tracked in a 64-bit mask");

/* ts upper bound: 2100-01-01T00:00:00Z; anything later is a unit mistake. */
#define TS_MAX 4102444800.0
/* Cents are exact while amount*100 stays below 2^53. */
#define CENTS_LIMIT 9007199254740992.0

struct pw_record_parser {
    struct json_tokener *tok; /* reference parser only */
    struct json_object *root; /* last tree of the reference parser */
    /* Unescaped string fields of the last fast parse; the pw_record views
     * point here.  Sized for the longest valid value plus NUL. */
    char id[129], producer[65], trace_id[33], kind[33];
};

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

static bool is_json_ws(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* ---- strict syntax pass -------------------------------------------------- */

enum syntax_result { SYNTAX_OK, SYNTAX_BAD, SYNTAX_TOO_DEEP };

static size_t skip_ws(const unsigned char *s, size_t i, size_t len)
{
    while (i < len && is_json_ws(s[i]))
        i++;
    return i;
}

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

enum { F_ID, F_SEQ, F_PRODUCER, F_TS, F_TRACE_ID, F_KIND, F_PAYLOAD, F_TOP_COUNT };
enum { P_USER_ID, P_AMOUNT, P_ITEMS, P_COUNT };

static const char *const top_fields[F_TOP_COUNT] = {
    "id", "seq", "producer", "ts", "trace_id", "kind", "payload",
};
static const char *const payload_fields[P_COUNT] = { "user_id", "amount", "items" };

/* The record's fields of interest.  Like a JSON object, a key that appears
 * twice keeps its last value (json-c does the same). */
struct scan_fields {
    struct field_slot top[F_TOP_COUNT];
    struct field_slot pay[P_COUNT];
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
                                    struct scan_fields *f)
{
    enum { EXPECT_VALUE, EXPECT_KEY, AFTER_VALUE } state = EXPECT_VALUE;
    uint64_t object_bits = 0; /* bit d: the container at depth d is an object */
    unsigned depth = 0;
    unsigned payload_depth = 0; /* depth inside the payload object, 0 = not in it */
    struct field_slot *slot = NULL; /* where the value being read goes */
    bool slot_is_payload = false;
    size_t i = skip_ws(s, 0, len);

    for (;;) {
        if (state == AFTER_VALUE) {
            i = skip_ws(s, i, len);
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
        i = skip_ws(s, i, len);
        if (i >= len)
            return SYNTAX_BAD;
        if (state == EXPECT_KEY) {
            size_t k = i;
            if (s[i] != '"' || !(i = scan_string(s, i, len)))
                return SYNTAX_BAD;
            slot = NULL;
            if (f && depth == 1) {
                int idx = match_key(s + k + 1, i - k - 2, top_fields, F_TOP_COUNT);
                if (idx >= 0) {
                    slot = &f->top[idx];
                    slot_is_payload = idx == F_PAYLOAD;
                    if (slot_is_payload) /* a later payload replaces an earlier one */
                        memset(f->pay, 0, sizeof f->pay);
                }
            } else if (f && payload_depth && depth == payload_depth) {
                int idx = match_key(s + k + 1, i - k - 2, payload_fields, P_COUNT);
                if (idx >= 0) {
                    slot = &f->pay[idx];
                    slot_is_payload = false;
                }
            }
            i = skip_ws(s, i, len);
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
            i = skip_ws(s, i + 1, len);
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

/* ---- parser --------------------------------------------------------------- */

pw_record_parser *pw_record_parser_new(void)
{
    pw_record_parser *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    /* json-c counts the innermost scalar as a level: one more than ours, so
     * that its limit is only a backstop behind json_syntax_check. */
    p->tok = json_tokener_new_ex(PW_RECORD_MAX_DEPTH + 1);
    if (!p->tok) {
        free(p);
        return NULL;
    }
    json_tokener_set_flags(p->tok, JSON_TOKENER_STRICT);
    return p;
}

void pw_record_parser_free(pw_record_parser *p)
{
    if (!p)
        return;
    json_object_put(p->root);
    json_tokener_free(p->tok);
    free(p);
}

static pw_record_error fail(const char **detail, pw_record_error err, const char *why)
{
    if (detail)
        *detail = why;
    return err;
}

/* A string field of 1..max bytes: NULL when fine, else which rule broke.
 * Embedded NULs are refused because the pw_record views are C strings and
 * would silently cut the value. */
static const char *string_problem(struct json_object *v, size_t max, const char *not_string,
                                  const char *bad_length, const char *has_nul)
{
    if (!json_object_is_type(v, json_type_string))
        return not_string;
    int n = json_object_get_string_len(v);
    if (n < 1 || (size_t)n > max)
        return bad_length;
    if (strlen(json_object_get_string(v)) != (size_t)n)
        return has_nul;
    return NULL;
}

/* A JSON integer (not 3.0, not 3.5) in [0, INT64_MAX].  json-c stores
 * 2^63..2^64-1 as uint64 (get_int64 clamps those to INT64_MAX) and clamps
 * larger literals to UINT64_MAX, so anything above int64 is recognisable by
 * its uint64 view. */
static bool nonneg_int(struct json_object *v, int64_t *out)
{
    if (!json_object_is_type(v, json_type_int))
        return false;
    int64_t i = json_object_get_int64(v);
    if (i < 0)
        return false;
    if (i == INT64_MAX && json_object_get_uint64(v) != (uint64_t)INT64_MAX)
        return false;
    *out = i;
    return true;
}

static bool number(struct json_object *v, double *out)
{
    if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int))
        return false;
    *out = json_object_get_double(v);
    return isfinite(*out);
}

static bool trace_id_ok(struct json_object *v)
{
    if (!json_object_is_type(v, json_type_string) || json_object_get_string_len(v) != 32)
        return false;
    const char *s = json_object_get_string(v);
    for (int i = 0; i < 32; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static const char *const top_missing[F_TOP_COUNT] = {
    "missing field id",       "missing field seq",  "missing field producer",
    "missing field ts",       "missing field trace_id", "missing field kind",
    "missing field payload",
};
static const char *const payload_missing[P_COUNT] = {
    "missing field payload.user_id", "missing field payload.amount",
    "missing field payload.items",
};

static pw_record_error validate(struct json_object *root, pw_record *out, const char **detail)
{
    if (!json_object_is_type(root, json_type_object))
        return fail(detail, PW_REC_INVALID_VALUE, "record is not a JSON object");

    /* Presence of every required field first, so a record that lacks one is
     * reported as missing_field whatever else is wrong with it. */
    struct json_object *f[F_TOP_COUNT], *pf[P_COUNT] = { NULL, NULL, NULL };
    for (int i = 0; i < F_TOP_COUNT; i++)
        if (!json_object_object_get_ex(root, top_fields[i], &f[i]))
            return fail(detail, PW_REC_MISSING_FIELD, top_missing[i]);
    bool payload_is_object = json_object_is_type(f[F_PAYLOAD], json_type_object);
    if (payload_is_object)
        for (int i = 0; i < P_COUNT; i++)
            if (!json_object_object_get_ex(f[F_PAYLOAD], payload_fields[i], &pf[i]))
                return fail(detail, PW_REC_MISSING_FIELD, payload_missing[i]);

    pw_record r;
    int64_t i64;
    const char *why;
    if ((why = string_problem(f[F_ID], 128, "id is not a string", "id length out of range 1..128",
                              "id contains a NUL character")))
        return fail(detail, PW_REC_INVALID_VALUE, why);
    r.id = json_object_get_string(f[F_ID]);

    if (!json_object_is_type(f[F_SEQ], json_type_int))
        return fail(detail, PW_REC_INVALID_VALUE, "seq is not an integer");
    if (!nonneg_int(f[F_SEQ], &i64))
        return fail(detail, PW_REC_INVALID_VALUE, "seq out of range");
    r.seq = (uint64_t)i64;

    if ((why = string_problem(f[F_PRODUCER], 64, "producer is not a string",
                              "producer length out of range 1..64",
                              "producer contains a NUL character")))
        return fail(detail, PW_REC_INVALID_VALUE, why);
    r.producer = json_object_get_string(f[F_PRODUCER]);

    if (!number(f[F_TS], &r.ts)) {
        if (!json_object_is_type(f[F_TS], json_type_double) &&
            !json_object_is_type(f[F_TS], json_type_int))
            return fail(detail, PW_REC_INVALID_VALUE, "ts is not a number");
        return fail(detail, PW_REC_INVALID_VALUE, "ts out of range");
    }
    if (!(r.ts > 0 && r.ts < TS_MAX))
        return fail(detail, PW_REC_INVALID_VALUE, "ts out of range");

    if (!trace_id_ok(f[F_TRACE_ID]))
        return fail(detail, PW_REC_INVALID_VALUE, "trace_id is not 32 lowercase hex digits");
    r.trace_id = json_object_get_string(f[F_TRACE_ID]);

    if ((why = string_problem(f[F_KIND], 32, "kind is not a string", "kind length out of range 1..32",
                              "kind contains a NUL character")))
        return fail(detail, PW_REC_INVALID_VALUE, why);
    r.kind = json_object_get_string(f[F_KIND]);

    if (!payload_is_object)
        return fail(detail, PW_REC_INVALID_VALUE, "payload is not an object");

    if (!json_object_is_type(pf[P_USER_ID], json_type_int))
        return fail(detail, PW_REC_INVALID_VALUE, "payload.user_id is not an integer");
    if (!nonneg_int(pf[P_USER_ID], &r.user_id))
        return fail(detail, PW_REC_INVALID_VALUE, "payload.user_id out of range");

    if (!json_object_is_type(pf[P_AMOUNT], json_type_double) &&
        !json_object_is_type(pf[P_AMOUNT], json_type_int))
        return fail(detail, PW_REC_INVALID_VALUE, "payload.amount is not a number");
    if (!number(pf[P_AMOUNT], &r.amount) || !(r.amount >= 0))
        return fail(detail, PW_REC_INVALID_VALUE, "payload.amount out of range");

    if (!json_object_is_type(pf[P_ITEMS], json_type_int))
        return fail(detail, PW_REC_INVALID_VALUE, "payload.items is not an integer");
    if (!nonneg_int(pf[P_ITEMS], &r.items) || r.items > 10000)
        return fail(detail, PW_REC_INVALID_VALUE, "payload.items out of range 0..10000");

    *out = r;
    if (detail)
        *detail = "ok";
    return PW_REC_OK;
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

/* The same rules as validate(), read from the slots json_scan filled. */
static pw_record_error validate_fast(pw_record_parser *p, const struct scan_fields *f, pw_record *out,
                                     const char **detail)
{
    for (int i = 0; i < F_TOP_COUNT; i++)
        if (!f->top[i].v)
            return fail(detail, PW_REC_MISSING_FIELD, top_missing[i]);
    bool payload_is_object = f->top[F_PAYLOAD].kind == '{';
    if (payload_is_object)
        for (int i = 0; i < P_COUNT; i++)
            if (!f->pay[i].v)
                return fail(detail, PW_REC_MISSING_FIELD, payload_missing[i]);

    pw_record r;
    int64_t i64;
    const char *why;
    if ((why = slot_string(&f->top[F_ID], p->id, sizeof p->id, "id is not a string",
                           "id length out of range 1..128", "id contains a NUL character")))
        return fail(detail, PW_REC_INVALID_VALUE, why);
    r.id = p->id;

    if (!slot_is_integer(&f->top[F_SEQ]))
        return fail(detail, PW_REC_INVALID_VALUE, "seq is not an integer");
    if (!slot_nonneg_int(&f->top[F_SEQ], &i64))
        return fail(detail, PW_REC_INVALID_VALUE, "seq out of range");
    r.seq = (uint64_t)i64;

    if ((why = slot_string(&f->top[F_PRODUCER], p->producer, sizeof p->producer,
                           "producer is not a string", "producer length out of range 1..64",
                           "producer contains a NUL character")))
        return fail(detail, PW_REC_INVALID_VALUE, why);
    r.producer = p->producer;

    if (!slot_is_number(&f->top[F_TS]))
        return fail(detail, PW_REC_INVALID_VALUE, "ts is not a number");
    r.ts = slot_double(&f->top[F_TS]);
    if (!(r.ts > 0 && r.ts < TS_MAX))
        return fail(detail, PW_REC_INVALID_VALUE, "ts out of range");

    const struct field_slot *t = &f->top[F_TRACE_ID];
    bool trace_ok = t->kind == '"' && json_unescape(t->v + 1, t->n - 2, p->trace_id, sizeof p->trace_id) == 32;
    for (int i = 0; trace_ok && i < 32; i++)
        trace_ok = (p->trace_id[i] >= '0' && p->trace_id[i] <= '9') || (p->trace_id[i] >= 'a' && p->trace_id[i] <= 'f');
    if (!trace_ok)
        return fail(detail, PW_REC_INVALID_VALUE, "trace_id is not 32 lowercase hex digits");
    r.trace_id = p->trace_id;

    if ((why = slot_string(&f->top[F_KIND], p->kind, sizeof p->kind, "kind is not a string",
                           "kind length out of range 1..32", "kind contains a NUL character")))
        return fail(detail, PW_REC_INVALID_VALUE, why);
    r.kind = p->kind;

    if (!payload_is_object)
        return fail(detail, PW_REC_INVALID_VALUE, "payload is not an object");

    if (!slot_is_integer(&f->pay[P_USER_ID]))
        return fail(detail, PW_REC_INVALID_VALUE, "payload.user_id is not an integer");
    if (!slot_nonneg_int(&f->pay[P_USER_ID], &r.user_id))
        return fail(detail, PW_REC_INVALID_VALUE, "payload.user_id out of range");

    if (!slot_is_number(&f->pay[P_AMOUNT]))
        return fail(detail, PW_REC_INVALID_VALUE, "payload.amount is not a number");
    r.amount = slot_double(&f->pay[P_AMOUNT]);
    if (!isfinite(r.amount) || !(r.amount >= 0))
        return fail(detail, PW_REC_INVALID_VALUE, "payload.amount out of range");

    if (!slot_is_integer(&f->pay[P_ITEMS]))
        return fail(detail, PW_REC_INVALID_VALUE, "payload.items is not an integer");
    if (!slot_nonneg_int(&f->pay[P_ITEMS], &r.items) || r.items > 10000)
        return fail(detail, PW_REC_INVALID_VALUE, "payload.items out of range 0..10000");

    *out = r;
    if (detail)
        *detail = "ok";
    return PW_REC_OK;
}

pw_record_error pw_record_parse(pw_record_parser *p, const char *bytes, size_t len,
                                pw_record *out, const char **detail)
{
    if (!bytes)
        len = 0;
    const unsigned char *s = (const unsigned char *)bytes;

    if (skip_ws(s, 0, len) == len)
        return fail(detail, PW_REC_EMPTY, len ? "record is only whitespace" : "record is empty");
    if (len > PW_RECORD_MAX_BYTES)
        return fail(detail, PW_REC_OVERSIZE, "record larger than 65536 bytes");
    if (!pw_utf8_valid(bytes, len))
        return fail(detail, PW_REC_INVALID_UTF8, "record is not valid UTF-8");

    struct scan_fields f;
    memset(&f, 0, sizeof f);
    switch (json_scan(s, len, PW_RECORD_MAX_DEPTH, &f)) {
    case SYNTAX_OK:
        break;
    case SYNTAX_TOO_DEEP:
        return fail(detail, PW_REC_MALFORMED_JSON, "JSON nested deeper than 16 levels");
    case SYNTAX_BAD:
        return fail(detail, PW_REC_MALFORMED_JSON, "not a valid JSON text");
    }
    if (s[skip_ws(s, 0, len)] != '{')
        return fail(detail, PW_REC_INVALID_VALUE, "record is not a JSON object");
    return validate_fast(p, &f, out, detail);
}

pw_record_error pw_record_parse_reference(pw_record_parser *p, const char *bytes, size_t len,
                                          pw_record *out, const char **detail)
{
    json_object_put(p->root);
    p->root = NULL;
    if (!bytes)
        len = 0;
    const unsigned char *s = (const unsigned char *)bytes;

    if (skip_ws(s, 0, len) == len)
        return fail(detail, PW_REC_EMPTY, len ? "record is only whitespace" : "record is empty");
    if (len > PW_RECORD_MAX_BYTES)
        return fail(detail, PW_REC_OVERSIZE, "record larger than 65536 bytes");
    if (!pw_utf8_valid(bytes, len))
        return fail(detail, PW_REC_INVALID_UTF8, "record is not valid UTF-8");

    switch (json_scan(s, len, PW_RECORD_MAX_DEPTH, NULL)) {
    case SYNTAX_OK:
        break;
    case SYNTAX_TOO_DEEP:
        return fail(detail, PW_REC_MALFORMED_JSON, "JSON nested deeper than 16 levels");
    case SYNTAX_BAD:
        return fail(detail, PW_REC_MALFORMED_JSON, "not a valid JSON text");
    }

    /* Decided here rather than by the tree: json-c cannot finish a bare
     * top-level number without a byte after it. */
    if (s[skip_ws(s, 0, len)] != '{')
        return fail(detail, PW_REC_INVALID_VALUE, "record is not a JSON object");

    json_tokener_reset(p->tok);
    p->root = json_tokener_parse_ex(p->tok, bytes, (int)len);
    if (!p->root)
        return fail(detail, PW_REC_MALFORMED_JSON, "JSON parser rejected the record");
    size_t end = json_tokener_get_parse_end(p->tok);
    if (skip_ws(s, end, len) != len)
        return fail(detail, PW_REC_MALFORMED_JSON, "trailing bytes after the JSON value");

    return validate(p->root, out, detail);
}

/* ---- transform and dead letters ------------------------------------------ */

/* Appends v as %.6f would.  The common case (timestamps) is formatted by
 * hand: printf's exact decimal conversion costs more than the rest of the
 * transform.  Below 2^53 microseconds the scaled value is an exact integer
 * and this rounds the same as printf except, at most, for exact ties. */
static void append_fixed6(pw_buf *out, double v)
{
    if (!isfinite(v)) {
        pw_buf_append(out, "null", 4); /* %.6f of NaN or inf would not be JSON */
        return;
    }
    if (!(v >= 0 && v < 9.0e9)) {
        pw_buf_printf(out, "%.6f", v);
        return;
    }
    uint64_t micros = (uint64_t)llround(v * 1e6);
    pw_buf_append_u64(out, micros / 1000000);
    char frac[7];
    uint64_t f = micros % 1000000;
    frac[0] = '.';
    for (int i = 6; i >= 1; i--) {
        frac[i] = (char)('0' + f % 10);
        f /= 10;
    }
    pw_buf_append(out, frac, sizeof frac);
}

static void append_json_string(pw_buf *out, const char *s)
{
    pw_buf_append_char(out, '"');
    if (s)
        pw_buf_append_json_escaped(out, s, strlen(s));
    pw_buf_append_char(out, '"');
}

pw_record_error pw_record_transform(const pw_record *rec, const char *raw, size_t len,
                                    double processed_at, const char *worker, uint64_t run,
                                    pw_buf *out, const char **detail)
{
    const unsigned char *s = (const unsigned char *)raw;
    double cents = rec->amount * 100.0;
    if (!(cents >= 0))
        return fail(detail, PW_REC_PROCESSING, "payload.amount is negative");
    if (!(cents < CENTS_LIMIT))
        return fail(detail, PW_REC_PROCESSING, "payload.amount too large for exact integer cents");

    size_t begin = raw ? skip_ws(s, 0, len) : 0;
    size_t end = raw ? len : 0;
    while (end > begin && is_json_ws(s[end - 1]))
        end--;
    if (end - begin < 2 || s[begin] != '{' || s[end - 1] != '}')
        return fail(detail, PW_REC_PROCESSING, "record is not a JSON object");
    size_t inner = end - 1;
    while (inner > begin && is_json_ws(s[inner - 1]))
        inner--;
    bool empty_object = inner == begin + 1;

    size_t at = out->len;
    pw_buf_append(out, raw + begin, end - 1 - begin);
    /* Newlines can only be whitespace between tokens here (the syntax check
     * refuses raw control characters in strings); the output is one NDJSON
     * line, so they become spaces. */
    if (pw_buf_ok(out) && (memchr(out->data + at, '\n', out->len - at) ||
                           memchr(out->data + at, '\r', out->len - at)))
        for (size_t i = at; i < out->len; i++)
            if (out->data[i] == '\n' || out->data[i] == '\r')
                out->data[i] = ' ';

    pw_buf_append_str(out, empty_object ? "\"processed_at\":" : ",\"processed_at\":");
    append_fixed6(out, processed_at);
    pw_buf_append_str(out, ",\"worker\":");
    append_json_string(out, worker);
    pw_buf_append_str(out, ",\"amount_cents\":");
    pw_buf_append_u64(out, (uint64_t)llround(cents));
    pw_buf_append_str(out, ",\"run\":");
    pw_buf_append_u64(out, run);
    pw_buf_append_char(out, '}');
    if (detail)
        *detail = "ok";
    return PW_REC_OK;
}

void pw_record_dead_letter(pw_buf *out, pw_record_error reason, const char *detail,
                           const char *producer, uint64_t run, uint64_t seq,
                           const char *worker, double dead_at,
                           const char *raw, size_t len)
{
    if (!raw)
        len = 0;
    pw_buf_append_str(out, "{\"dead_at\":");
    append_fixed6(out, dead_at);
    pw_buf_append_str(out, ",\"reason\":\"");
    pw_buf_append_str(out, pw_record_error_reason(reason));
    pw_buf_append_str(out, "\",\"detail\":");
    append_json_string(out, detail);
    if (producer) {
        size_t plen = strlen(producer);
        pw_buf_append_str(out, ",\"id\":\"");
        pw_buf_append_json_escaped(out, producer, plen);
        pw_buf_append_char(out, '-');
        pw_buf_append_u64(out, seq);
        pw_buf_append_str(out, "\",\"producer\":\"");
        pw_buf_append_json_escaped(out, producer, plen);
        pw_buf_append_str(out, "\",\"run\":");
        pw_buf_append_u64(out, run);
        pw_buf_append_str(out, ",\"seq\":");
        pw_buf_append_u64(out, seq);
    } else {
        pw_buf_append_str(out, ",\"id\":null,\"producer\":null,\"run\":null,\"seq\":null");
    }
    pw_buf_append_str(out, ",\"worker\":");
    append_json_string(out, worker);
    pw_buf_append_str(out, ",\"raw_len\":");
    pw_buf_append_u64(out, len);
    pw_buf_append_str(out, ",\"raw_b64\":\"");
    bool truncated = len > PW_DEAD_LETTER_RAW_MAX;
    pw_buf_append_base64(out, raw, truncated ? PW_DEAD_LETTER_RAW_MAX : len);
    pw_buf_append_char(out, '"');
    if (truncated)
        pw_buf_append_str(out, ",\"raw_truncated\":true");
    pw_buf_append_char(out, '}');
}

/* ---- faults --------------------------------------------------------------- */

static const char *const fault_names[PW_FAULT_COUNT] = {
    [PW_FAULT_NONE] = "none",
    [PW_FAULT_MALFORMED_JSON] = "malformed_json",
    [PW_FAULT_MISSING_FIELD] = "missing_field",
    [PW_FAULT_INVALID_VALUE] = "invalid_value",
    [PW_FAULT_OVERSIZE] = "oversize",
    [PW_FAULT_INVALID_UTF8] = "invalid_utf8",
    [PW_FAULT_EMPTY] = "empty",
    [PW_FAULT_POISON] = "poison",
};

const char *pw_fault_name(pw_fault f)
{
    if ((unsigned)f >= PW_FAULT_COUNT)
        return "unknown";
    return fault_names[f];
}

pw_record_error pw_fault_expected_error(pw_fault f)
{
    switch (f) {
    case PW_FAULT_MALFORMED_JSON: return PW_REC_MALFORMED_JSON;
    case PW_FAULT_MISSING_FIELD: return PW_REC_MISSING_FIELD;
    case PW_FAULT_INVALID_VALUE: return PW_REC_INVALID_VALUE;
    case PW_FAULT_OVERSIZE: return PW_REC_OVERSIZE;
    case PW_FAULT_INVALID_UTF8: return PW_REC_INVALID_UTF8;
    case PW_FAULT_EMPTY: return PW_REC_EMPTY;
    case PW_FAULT_POISON: return PW_REC_PROCESSING;
    case PW_FAULT_NONE:
    case PW_FAULT_COUNT:
        break;
    }
    return PW_REC_OK;
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
            if (strlen(fault_names[f]) == n && memcmp(q, fault_names[f], n) == 0) {
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

/* ---- generation ----------------------------------------------------------- */

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

enum gen_field {
    G_ID, G_SEQ, G_PRODUCER, G_TS, G_TRACE_ID, G_KIND, G_PAYLOAD,
    G_USER_ID, G_AMOUNT, G_ITEMS, G_FIELD_COUNT, G_NONE = -1
};

/* How a generated record departs from a valid one. */
struct gen_spec {
    int omit;             /* field left out */
    int replace;          /* field whose value is replace_json instead */
    const char *replace_json;
    int unquote;          /* field whose key is written without quotes */
    const char *note;     /* raw bytes of a top-level "note" string, or NULL */
    size_t note_len;
    size_t note_fill;     /* when note is NULL: this many 'x' */
};

static void append_repeat(pw_buf *b, char c, size_t n)
{
    if (pw_buf_reserve(b, n) != PW_OK)
        return;
    memset(b->data + b->len, c, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void gen_key(pw_buf *out, const struct gen_spec *g, int field, bool *first)
{
    if (!*first)
        pw_buf_append_char(out, ',');
    *first = false;
    static const char *const names[G_FIELD_COUNT] = {
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
static bool gen_field(pw_buf *out, const struct gen_spec *g, int field, bool *first)
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
                       const struct gen_spec *g)
{
    uint64_t state = fnv1a64(producer) ^ (seq * 0xD1B54A32D192ED03ull);
    uint64_t t1 = splitmix64(&state), t2 = splitmix64(&state);
    uint64_t r_kind = splitmix64(&state), r_user = splitmix64(&state);
    uint64_t r_amount = splitmix64(&state), r_items = splitmix64(&state);
    size_t plen = strlen(producer);
    bool first = true;

    pw_buf_append_char(out, '{');
    if (gen_field(out, g, G_ID, &first)) {
        pw_buf_append_char(out, '"');
        pw_buf_append_json_escaped(out, producer, plen);
        pw_buf_append_char(out, '-');
        pw_buf_append_u64(out, seq);
        pw_buf_append_char(out, '"');
    }
    if (gen_field(out, g, G_SEQ, &first))
        pw_buf_append_u64(out, seq);
    if (gen_field(out, g, G_PRODUCER, &first)) {
        pw_buf_append_char(out, '"');
        pw_buf_append_json_escaped(out, producer, plen);
        pw_buf_append_char(out, '"');
    }
    if (gen_field(out, g, G_TS, &first))
        append_fixed6(out, ts);
    if (gen_field(out, g, G_TRACE_ID, &first)) {
        char hex[34];
        hex[0] = hex[33] = '"';
        for (int i = 0; i < 16; i++) {
            hex[1 + i] = "0123456789abcdef"[t1 >> (60 - 4 * i) & 15];
            hex[17 + i] = "0123456789abcdef"[t2 >> (60 - 4 * i) & 15];
        }
        pw_buf_append(out, hex, sizeof hex);
    }
    if (gen_field(out, g, G_KIND, &first)) {
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
    if (gen_field(out, g, G_PAYLOAD, &first)) {
        bool pfirst = true;
        pw_buf_append_char(out, '{');
        if (gen_field(out, g, G_USER_ID, &pfirst))
            pw_buf_append_u64(out, r_user % 1000000 + 1);
        if (gen_field(out, g, G_AMOUNT, &pfirst)) {
            uint64_t cents = r_amount % 50000 + 1;
            char frac[3] = { '.', (char)('0' + cents / 10 % 10), (char)('0' + cents % 10) };
            pw_buf_append_u64(out, cents / 100);
            pw_buf_append(out, frac, sizeof frac);
        }
        if (gen_field(out, g, G_ITEMS, &pfirst))
            pw_buf_append_u64(out, r_items % 12);
        pw_buf_append_char(out, '}');
    }
    pw_buf_append_char(out, '}');
}

/* Invalid values, one per seq in turn; each breaks exactly one rule. */
static const struct { int field; const char *json; } invalid_values[] = {
    { G_AMOUNT, "-5.00" },
    { G_ITEMS, "\"three\"" },
    { G_TS, "\"1764020000.5\"" },
    { G_TRACE_ID, "\"0123456789abcdefghijklmnopqrstuv\"" },
    { G_SEQ, "-1" },
    { G_ITEMS, "10001" },
    { G_USER_ID, "12.5" },
    { G_PAYLOAD, "[1,2,3]" },
    { G_KIND, "\"\"" },
    { G_TS, "4102444800" },
    { G_ID, "42" },
    { G_TRACE_ID, "\"4BF92F3577B34DA6A3CE929D0E0E4736\"" },
};

/* Bytes that are not UTF-8, inside an otherwise valid string. */
static const struct { const char *bytes; size_t len; } invalid_utf8[] = {
    { "caf\xff\xfe", 5 },     /* bytes that never occur in UTF-8 */
    { "caf\xc3\x28", 5 },     /* lead byte followed by a non-continuation */
    { "euro \xe2\x82", 7 },   /* truncated sequence before the closing quote */
    { "\xed\xa0\x80", 3 },    /* UTF-16 surrogate encoded as UTF-8 */
    { "\xc0\xaf", 2 },        /* overlong '/' */
};

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
    append_fixed6(out, ts);

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
    out->data[out->len] = '\0';
}

void pw_record_generate_reference(pw_buf *out, const char *producer, uint64_t seq, double ts)
{
    struct gen_spec g = { G_NONE, G_NONE, NULL, G_NONE, NULL, 0, 0 };
    gen_record(out, producer ? producer : "", seq, ts, &g);
}

void pw_record_generate(pw_buf *out, const char *producer, uint64_t seq, double ts, pw_fault fault)
{
    if (fault == PW_FAULT_NONE && producer && plain_name(producer, strlen(producer))) {
        gen_valid_fast(out, producer, strlen(producer), seq, ts);
        return;
    }
    struct gen_spec g = { G_NONE, G_NONE, NULL, G_NONE, NULL, 0, 0 };
    if (!producer)
        producer = "";
    size_t start = out->len;

    switch (fault) {
    case PW_FAULT_NONE:
    case PW_FAULT_COUNT:
        break;
    case PW_FAULT_EMPTY:
        return;
    case PW_FAULT_MISSING_FIELD:
        g.omit = (int)(seq % G_FIELD_COUNT);
        break;
    case PW_FAULT_INVALID_VALUE:
        g.replace = invalid_values[seq % PW_ARRAY_LEN(invalid_values)].field;
        g.replace_json = invalid_values[seq % PW_ARRAY_LEN(invalid_values)].json;
        break;
    case PW_FAULT_OVERSIZE:
        g.note_fill = PW_RECORD_MAX_BYTES + 4464; /* 70000 bytes of note */
        break;
    case PW_FAULT_INVALID_UTF8:
        g.note = invalid_utf8[seq % PW_ARRAY_LEN(invalid_utf8)].bytes;
        g.note_len = invalid_utf8[seq % PW_ARRAY_LEN(invalid_utf8)].len;
        break;
    case PW_FAULT_POISON:
        /* Valid JSON and in range, but amount*100 has no exact integer. */
        g.replace = G_AMOUNT;
        g.replace_json = "1e300";
        break;
    case PW_FAULT_MALFORMED_JSON:
        switch (seq % 5) {
        case 0: /* truncated mid-object: handled below */
            break;
        case 1:
            g.unquote = G_KIND;
            break;
        case 2: /* trailing comma: handled below */
            break;
        case 3:
            g.replace = G_AMOUNT;
            g.replace_json = "NaN";
            break;
        case 4:
            g.replace = G_TRACE_ID;
            g.replace_json = "'4bf92f3577b34da6a3ce929d0e0e4736'";
            break;
        }
        break;
    }

    gen_record(out, producer, seq, ts, &g);
    if (fault != PW_FAULT_MALFORMED_JSON || !pw_buf_ok(out))
        return;
    size_t len = out->len - start;
    if (seq % 5 == 0) {
        /* Any proper prefix of an object is incomplete JSON; cut on a
         * character boundary so the fault stays malformed_json and does not
         * turn into invalid_utf8 when the producer name is not ASCII. */
        size_t cut = 1 + (size_t)(seq / 5 % (len - 1));
        while (cut > 1 && ((unsigned char)out->data[start + cut] & 0xC0) == 0x80)
            cut--;
        out->len = start + cut;
        out->data[out->len] = '\0';
    } else if (seq % 5 == 2) {
        out->len--; /* the final '}' */
        pw_buf_append_str(out, ",}");
    }
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

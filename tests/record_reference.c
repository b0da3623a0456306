/*
 * record_reference.c: the record contract of record.h implemented a second
 * way, with json-c, as the oracle that test_record and fuzz_record compare
 * the one-pass parser (common/record_parse.c) against.
 *
 * For: tests and fuzzers only; no stage links it, so json-c is a
 * dependency of their builds here.  Owns: a json-c tokener and the last
 * tree per pw_record_parser (kept in the parser's extension slot).  Never:
 * used on a hot path: it builds a tree per record.
 *
 * The byte-level checks, the strict syntax pass and the depth rule are the
 * shared pw_record_precheck: json-c's JSON_TOKENER_STRICT still accepts
 * NaN, Infinity, single-quoted strings, "00", "1." and raw control
 * characters, and counts a scalar as a nesting level.  What this file
 * checks independently is the field rules, read from json-c's tree.
 */
#include "record_reference.h"

#include <json-c/json.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pw.h"
#include "record_internal.h"

struct reference_state {
    struct json_tokener *tok;
    struct json_object *root; /* the last tree; the pw_record views point into it */
};

static void reference_free(void *extension)
{
    struct reference_state *st = extension;
    json_object_put(st->root);
    json_tokener_free(st->tok);
    free(st);
}

static struct reference_state *reference_state(pw_record_parser *p)
{
    if (p->extension)
        return p->extension;
    struct reference_state *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    /* json-c counts the innermost scalar as a level: one more than ours, so
     * that its limit is only a backstop behind pw_record_precheck. */
    st->tok = json_tokener_new_ex(PW_RECORD_MAX_DEPTH + 1);
    if (!st->tok) {
        free(st);
        return NULL;
    }
    json_tokener_set_flags(st->tok, JSON_TOKENER_STRICT);
    p->extension = st;
    p->extension_free = reference_free;
    return st;
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

static pw_record_error validate(struct json_object *root, pw_record *out, const char **detail)
{
    if (!json_object_is_type(root, json_type_object))
        return pw_record_fail(detail, PW_REC_INVALID_VALUE, "record is not a JSON object");

    /* Presence of every required field first, so a record that lacks one is
     * reported as missing_field whatever else is wrong with it. */
    struct json_object *f[PW_F_TOP_COUNT], *pf[PW_P_COUNT] = { NULL, NULL, NULL };
    for (int i = 0; i < PW_F_TOP_COUNT; i++)
        if (!json_object_object_get_ex(root, pw_record_top_fields[i], &f[i]))
            return pw_record_fail(detail, PW_REC_MISSING_FIELD, pw_record_top_missing[i]);
    bool payload_is_object = json_object_is_type(f[PW_F_PAYLOAD], json_type_object);
    if (payload_is_object)
        for (int i = 0; i < PW_P_COUNT; i++)
            if (!json_object_object_get_ex(f[PW_F_PAYLOAD], pw_record_payload_fields[i], &pf[i]))
                return pw_record_fail(detail, PW_REC_MISSING_FIELD, pw_record_payload_missing[i]);

    pw_record r;
    int64_t i64;
    const char *why;
    if ((why = string_problem(f[PW_F_ID], 128, "id is not a string", "id length out of range 1..128",
                              "id contains a NUL character")))
        return pw_record_fail(detail, PW_REC_INVALID_VALUE, why);
    r.id = json_object_get_string(f[PW_F_ID]);

    if (!json_object_is_type(f[PW_F_SEQ], json_type_int))
        return pw_record_fail(detail, PW_REC_INVALID_VALUE, "seq is not an integer");
    if (!nonneg_int(f[PW_F_SEQ], &i64))
        return pw_record_fail(detail, PW_REC_INVALID_VALUE, "seq out of range");
    r.seq = (uint64_t)i64;

    if ((why = string_problem(f[PW_F_PRODUCER], 64, "producer is not a string",
                              "producer length out of range 1..64",
                              "producer contains a NUL character")))
        return pw_record_fail(detail, PW_REC_INVALID_VALUE, why);
    r.producer = json_object_get_string(f[PW_F_PRODUCER]);

    if (!number(f[PW_F_TS], &r.ts)) {
        if (!json_object_is_type(f[PW_F_TS], json_type_double) &&
            !json_object_is_type(f[PW_F_TS], json_type_int))
            return pw_record_fail(detail, PW_REC_INVALID_VALUE, "ts is not a number");
        return pw_record_fail(detail, PW_REC_INVALID_VALUE, "ts out of range");
    }
    if (!(r.ts > 0 && r.ts < PW_RECORD_TS_MAX))
        return pw_record_fail(detail, PW_REC_INVALID_VALUE, "ts out of range");

    if (!trace_id_ok(f[PW_F_TRACE_ID]))
        return pw_record_fail(detail, PW_REC_INVALID_VALUE, "trace_id is not 32 lowercase hex digits");
    r.trace_id = json_object_get_string(f[PW_F_TRACE_ID]);

    if ((why = string_problem(f[PW_F_KIND], 32, "kind is not a string", "kind length out of range 1..32",
                              "kind contains a NUL character")))
        return pw_record_fail(detail, PW_REC_INVALID_VALUE, why);
    r.kind = json_object_get_string(f[PW_F_KIND]);

    if (!payload_is_object)
        return pw_record_fail(detail, PW_REC_INVALID_VALUE, "payload is not an object");

    if (!json_object_is_type(pf[PW_P_USER_ID], json_type_int))
        return pw_record_fail(detail, PW_REC_INVALID_VALUE, "payload.user_id is not an integer");
    if (!nonneg_int(pf[PW_P_USER_ID], &r.user_id))
        return pw_record_fail(detail, PW_REC_INVALID_VALUE, "payload.user_id out of range");

    if (!json_object_is_type(pf[PW_P_AMOUNT], json_type_double) &&
        !json_object_is_type(pf[PW_P_AMOUNT], json_type_int))
        return pw_record_fail(detail, PW_REC_INVALID_VALUE, "payload.amount is not a number");
    if (!number(pf[PW_P_AMOUNT], &r.amount) || !(r.amount >= 0))
        return pw_record_fail(detail, PW_REC_INVALID_VALUE, "payload.amount out of range");

    if (!json_object_is_type(pf[PW_P_ITEMS], json_type_int))
        return pw_record_fail(detail, PW_REC_INVALID_VALUE, "payload.items is not an integer");
    if (!nonneg_int(pf[PW_P_ITEMS], &r.items) || r.items > 10000)
        return pw_record_fail(detail, PW_REC_INVALID_VALUE, "payload.items out of range 0..10000");

    *out = r;
    if (detail)
        *detail = "ok";
    return PW_REC_OK;
}

pw_record_error pw_record_parse_reference(pw_record_parser *p, const char *bytes, size_t len,
                                          pw_record *out, const char **detail)
{
    struct reference_state *st = reference_state(p);
    if (!st)
        return pw_record_fail(detail, PW_REC_PROCESSING, "out of memory");
    json_object_put(st->root);
    st->root = NULL;
    pw_record_error err = pw_record_precheck(bytes, len, NULL, detail);
    if (err != PW_REC_OK)
        return err;

    json_tokener_reset(st->tok);
    st->root = json_tokener_parse_ex(st->tok, bytes, (int)len);
    if (!st->root)
        return pw_record_fail(detail, PW_REC_MALFORMED_JSON, "JSON parser rejected the record");
    size_t end = json_tokener_get_parse_end(st->tok);
    if (pw_json_skip_ws((const unsigned char *)bytes, end, len) != len)
        return pw_record_fail(detail, PW_REC_MALFORMED_JSON, "trailing bytes after the JSON value");

    return validate(st->root, out, detail);
}

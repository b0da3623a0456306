/*
 * test_record.c: the record contract of record.h, rule by rule.
 *
 * Records are built from a known-good template with one field left out or
 * replaced, so each test breaks exactly the rule it names.  Generated faults
 * are checked over many seqs because the generator varies how it breaks a
 * record by seq.
 */
#include <check.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pw.h"
#include "record.h"
#include "record_reference.h"
#include "support.h"

#define FAULT_SEQS 200

static pw_record_parser *parser;

static void setup(void)
{
    parser = pw_record_parser_new();
    ck_assert_ptr_nonnull(parser);
}

static void teardown(void)
{
    pw_record_parser_free(parser);
    parser = NULL;
}

/* ---- helpers -------------------------------------------------------------- */

static const char *const template_fields[][2] = {
    { "id", "\"p1-42\"" },
    { "seq", "42" },
    { "producer", "\"p1\"" },
    { "ts", "1764020000.123456" },
    { "trace_id", "\"4bf92f3577b34da6a3ce929d0e0e4736\"" },
    { "kind", "\"order\"" },
    { "payload", NULL },
    { "payload.user_id", "123" },
    { "payload.amount", "19.99" },
    { "payload.items", "3" },
};

/* The example record of docs/contract.md ("Records") with `field` ("ts",
 * "payload.amount", ...) left out (value NULL) or set to the raw JSON
 * `value`.  field NULL: unchanged. */
static void build_record(pw_buf *b, const char *field, const char *value)
{
    pw_buf_reset(b);
    pw_buf_append_char(b, '{');
    bool first = true, payload_replaced = false;
    for (size_t i = 0; i < PW_ARRAY_LEN(template_fields); i++) {
        const char *name = template_fields[i][0];
        const char *v = template_fields[i][1];
        bool in_payload = strncmp(name, "payload.", 8) == 0;
        if (in_payload && payload_replaced)
            continue;
        bool target = field && strcmp(field, name) == 0;
        if (target && !value) {
            if (strcmp(name, "payload") == 0)
                payload_replaced = true;
            continue;
        }
        if (strcmp(name, "payload") == 0) {
            pw_buf_append_str(b, first ? "\"payload\":" : ",\"payload\":");
            first = false;
            if (target) {
                pw_buf_append_str(b, value);
                payload_replaced = true;
            } else {
                pw_buf_append_char(b, '{');
            }
            continue;
        }
        const char *key = in_payload ? name + 8 : name;
        bool first_in_payload = in_payload && b->data[b->len - 1] == '{';
        if (!first && !first_in_payload)
            pw_buf_append_char(b, ',');
        first = false;
        pw_buf_printf(b, "\"%s\":%s", key, target ? value : v);
    }
    if (!payload_replaced)
        pw_buf_append_char(b, '}');
    pw_buf_append_char(b, '}');
}

static pw_record_error parse_bytes(const char *s, size_t len, pw_record *rec, const char **detail)
{
    pw_record tmp;
    const char *d = NULL;
    pw_record_error e = pw_record_parse(parser, s, len, rec ? rec : &tmp, &d);
    ck_assert_ptr_nonnull(d);
    if (detail)
        *detail = d;
    return e;
}

static pw_record_error parse_str(const char *s, const char **detail)
{
    return parse_bytes(s, strlen(s), NULL, detail);
}

static pw_record_error parse_with(const char *field, const char *value, const char **detail)
{
    pw_buf b = PW_BUF_INIT;
    build_record(&b, field, value);
    pw_record_error e = parse_bytes(b.data, b.len, NULL, detail);
    pw_buf_free(&b);
    return e;
}

static json_object *json_parse_checked(const char *s)
{
    json_object *o = json_tokener_parse(s);
    ck_assert_msg(o != NULL, "not JSON: %.300s", s);
    return o;
}

static json_object *get(json_object *o, const char *key)
{
    json_object *v = NULL;
    ck_assert_msg(json_object_object_get_ex(o, key, &v), "no field %s", key);
    return v;
}

/* ---- the template itself --------------------------------------------------- */

START_TEST(test_record_accepts_the_spec_example)
{
    pw_buf b = PW_BUF_INIT;
    build_record(&b, NULL, NULL);
    ck_assert_str_eq(b.data, "{\"id\":\"p1-42\",\"seq\":42,\"producer\":\"p1\",\"ts\":1764020000.123456,"
                             "\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"kind\":\"order\","
                             "\"payload\":{\"user_id\":123,\"amount\":19.99,\"items\":3}}");
    pw_record r;
    const char *detail;
    ck_assert_int_eq(parse_bytes(b.data, b.len, &r, &detail), PW_REC_OK);
    ck_assert_str_eq(r.id, "p1-42");
    ck_assert_str_eq(r.producer, "p1");
    ck_assert_uint_eq(r.seq, 42);
    ck_assert_double_eq_tol(r.ts, 1764020000.123456, 1e-6);
    ck_assert_str_eq(r.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    ck_assert_str_eq(r.kind, "order");
    ck_assert_int_eq(r.user_id, 123);
    ck_assert_double_eq_tol(r.amount, 19.99, 1e-9);
    ck_assert_int_eq(r.items, 3);
    pw_buf_free(&b);
}
END_TEST

/* ---- byte-level checks, in order ------------------------------------------- */

START_TEST(test_record_rejects_empty_and_whitespace_only_as_empty)
{
    const char *detail;
    ck_assert_int_eq(parse_bytes("", 0, NULL, &detail), PW_REC_EMPTY);
    ck_assert_int_eq(parse_bytes(NULL, 0, NULL, &detail), PW_REC_EMPTY);
    ck_assert_int_eq(parse_str(" ", &detail), PW_REC_EMPTY);
    ck_assert_int_eq(parse_str(" \t\r\n  \n", &detail), PW_REC_EMPTY);
    /* A vertical tab or NUL is not JSON whitespace. */
    ck_assert_int_eq(parse_str("\v", &detail), PW_REC_MALFORMED_JSON);
    ck_assert_int_eq(parse_bytes("\0", 1, NULL, &detail), PW_REC_MALFORMED_JSON);
}
END_TEST

/* The valid template padded with a top-level "note" to exactly `total` bytes. */
static void padded_record(pw_buf *b, size_t total)
{
    pw_buf base = PW_BUF_INIT;
    build_record(&base, NULL, NULL);
    pw_buf_reset(b);
    pw_buf_append(b, base.data, base.len - 1);
    pw_buf_append_str(b, ",\"note\":\"");
    size_t fill = total - b->len - 2;
    for (size_t i = 0; i < fill; i++)
        pw_buf_append_char(b, 'x');
    pw_buf_append_str(b, "\"}");
    ck_assert_uint_eq(b->len, total);
    pw_buf_free(&base);
}

START_TEST(test_record_accepts_exactly_64_kib_and_rejects_one_byte_more)
{
    pw_buf b = PW_BUF_INIT;
    const char *detail;
    padded_record(&b, PW_RECORD_MAX_BYTES);
    ck_assert_int_eq(parse_bytes(b.data, b.len, NULL, &detail), PW_REC_OK);
    padded_record(&b, PW_RECORD_MAX_BYTES + 1);
    ck_assert_int_eq(parse_bytes(b.data, b.len, NULL, &detail), PW_REC_OVERSIZE);
    pw_buf_free(&b);
}
END_TEST

START_TEST(test_record_rejects_oversize_before_parsing)
{
    /* Not JSON and not UTF-8 either: size is checked first. */
    size_t len = PW_RECORD_MAX_BYTES + 1;
    char *s = malloc(len);
    memset(s, 0xff, len);
    const char *detail;
    ck_assert_int_eq(parse_bytes(s, len, NULL, &detail), PW_REC_OVERSIZE);
    ck_assert_ptr_nonnull(strstr(detail, "65536"));
    free(s);
}
END_TEST

START_TEST(test_record_rejects_invalid_utf8_before_parsing)
{
    const char *detail;
    /* Broken JSON too, but the UTF-8 check comes first. */
    ck_assert_int_eq(parse_str("{\"id\":\"\xc3\x28", &detail), PW_REC_INVALID_UTF8);
    ck_assert_int_eq(parse_with("kind", "\"caf\xc3\xa9\"", &detail), PW_REC_OK);
    ck_assert_int_eq(parse_with("kind", "\"\xed\xa0\x80\"", &detail), PW_REC_INVALID_UTF8);
    ck_assert_int_eq(parse_with("kind", "\"\xc0\xaf\"", &detail), PW_REC_INVALID_UTF8);
    ck_assert_int_eq(parse_with("kind", "\"\xf4\x90\x80\x80\"", &detail), PW_REC_INVALID_UTF8);
    ck_assert_int_eq(parse_with("kind", "\"\xe2\x82\"", &detail), PW_REC_INVALID_UTF8);
}
END_TEST

/* ---- JSON syntax -------------------------------------------------------------- */

START_TEST(test_record_rejects_malformed_json)
{
    static const char *const bad[] = {
        "{",
        "{\"id\":",
        "{\"id\":\"p1-42\"",
        "{id:\"p1-42\"}",
        "{'id':'p1-42'}",
        "{\"a\":1,}",
        "{\"a\":[1,]}",
        "{,}",
        "{\"a\" 1}",
        "{\"a\":1 \"b\":2}",
        "{\"a\":NaN}",
        "{\"a\":Infinity}",
        "{\"a\":-Infinity}",
        "{\"a\":nan}",
        "{\"a\":01}",
        "{\"a\":00}",
        "{\"a\":-01}",
        "{\"a\":1.}",
        "{\"a\":.5}",
        "{\"a\":+1}",
        "{\"a\":1e}",
        "{\"a\":0x10}",
        "{\"a\":tru}",
        "{\"a\":True}",
        "{\"a\":NULL}",
        "{\"a\":\"x\ny\"}",
        "{\"a\":\"x\ty\"}",
        "{\"a\":\"\\x41\"}",
        "{\"a\":\"\\u12\"}",
        "{\"a\":1 /* c */}",
        "{\"a\":1} // c",
        "}",
        "]",
        "{]",
        "[}",
    };
    for (size_t i = 0; i < PW_ARRAY_LEN(bad); i++) {
        const char *detail;
        ck_assert_msg(parse_str(bad[i], &detail) == PW_REC_MALFORMED_JSON, "accepted: %s", bad[i]);
    }
}
END_TEST

START_TEST(test_record_rejects_trailing_garbage)
{
    pw_buf b = PW_BUF_INIT;
    const char *detail;
    static const char *const tails[] = { "x", "}", "{}", ",", "[]", "0", "\"\"" };
    for (size_t i = 0; i < PW_ARRAY_LEN(tails); i++) {
        build_record(&b, NULL, NULL);
        pw_buf_append_str(&b, tails[i]);
        ck_assert_msg(parse_bytes(b.data, b.len, NULL, &detail) == PW_REC_MALFORMED_JSON,
                      "tail %s", tails[i]);
    }
    build_record(&b, NULL, NULL);
    pw_buf_append(&b, "\0", 1);
    ck_assert_int_eq(parse_bytes(b.data, b.len, NULL, &detail), PW_REC_MALFORMED_JSON);
    /* Whitespace around the object is fine. */
    build_record(&b, NULL, NULL);
    pw_buf_append_str(&b, " \r\n\t");
    ck_assert_int_eq(parse_bytes(b.data, b.len, NULL, &detail), PW_REC_OK);
    pw_buf_free(&b);
}
END_TEST

/* The template with an extra field nested so that `depth` containers are
 * open at the innermost point (the record itself is level 1); the innermost
 * value is `inner`, or an empty container when inner is "". */
static void nested_record(pw_buf *b, int depth, const char *inner, bool objects)
{
    pw_buf base = PW_BUF_INIT;
    build_record(&base, NULL, NULL);
    pw_buf_reset(b);
    pw_buf_append(b, base.data, base.len - 1);
    pw_buf_append_str(b, ",\"deep\":");
    bool empty = !*inner;
    int holders = empty ? depth - 2 : depth - 1;
    for (int i = 0; i < holders; i++)
        pw_buf_append_str(b, objects ? "{\"k\":" : "[");
    pw_buf_append_str(b, empty ? (objects ? "{}" : "[]") : inner);
    for (int i = 0; i < holders; i++)
        pw_buf_append_char(b, objects ? '}' : ']');
    pw_buf_append_char(b, '}');
    pw_buf_free(&base);
}

START_TEST(test_record_accepts_depth_16_and_rejects_depth_17)
{
    pw_buf b = PW_BUF_INIT;
    const char *detail;
    static const char *const inners[] = { "", "1", "\"s\"", "null" };
    for (int objects = 0; objects <= 1; objects++) {
        for (size_t i = 0; i < PW_ARRAY_LEN(inners); i++) {
            nested_record(&b, PW_RECORD_MAX_DEPTH, inners[i], objects);
            ck_assert_msg(parse_bytes(b.data, b.len, NULL, &detail) == PW_REC_OK, "depth 16 %s: %s",
                          detail, b.data);
            nested_record(&b, PW_RECORD_MAX_DEPTH + 1, inners[i], objects);
            ck_assert_msg(parse_bytes(b.data, b.len, NULL, &detail) == PW_REC_MALFORMED_JSON,
                          "depth 17 accepted: %s", b.data);
        }
    }
    /* Far deeper than any tokener stack: rejected without trouble. */
    pw_buf_reset(&b);
    for (int i = 0; i < 10000; i++)
        pw_buf_append_char(&b, '[');
    ck_assert_int_eq(parse_bytes(b.data, b.len, NULL, &detail), PW_REC_MALFORMED_JSON);
    pw_buf_free(&b);
}
END_TEST

START_TEST(test_record_rejects_non_object_top_level_as_invalid_value)
{
    static const char *const tops[] = { "[]", "[1,2]", "\"s\"", "42", "null", "true", " [ {} ] " };
    for (size_t i = 0; i < PW_ARRAY_LEN(tops); i++) {
        const char *detail;
        ck_assert_msg(parse_str(tops[i], &detail) == PW_REC_INVALID_VALUE, "top %s", tops[i]);
    }
}
END_TEST

/* ---- fields ------------------------------------------------------------------- */

START_TEST(test_record_reports_each_missing_field_by_name)
{
    char want[64];
    for (size_t i = 0; i < PW_ARRAY_LEN(template_fields); i++) {
        const char *detail;
        const char *name = template_fields[i][0];
        ck_assert_msg(parse_with(name, NULL, &detail) == PW_REC_MISSING_FIELD, "without %s", name);
        snprintf(want, sizeof want, "missing field %s", name);
        ck_assert_str_eq(detail, want);
    }
}
END_TEST

START_TEST(test_record_reports_missing_field_before_type_errors)
{
    const char *detail;
    ck_assert_int_eq(parse_str("{\"seq\":\"x\",\"producer\":1,\"ts\":\"t\",\"trace_id\":2,"
                               "\"kind\":3,\"payload\":4}", &detail),
                     PW_REC_MISSING_FIELD);
    ck_assert_str_eq(detail, "missing field id");
    ck_assert_int_eq(parse_str("{}", &detail), PW_REC_MISSING_FIELD);
    /* payload present but not an object: nothing inside it can be missing. */
    ck_assert_int_eq(parse_with("payload", "[1]", &detail), PW_REC_INVALID_VALUE);
    ck_assert_str_eq(detail, "payload is not an object");
}
END_TEST

static const struct {
    const char *field;
    const char *value;
    pw_record_error want;
} value_cases[] = {
    { "id", "\"\"", PW_REC_INVALID_VALUE },
    { "id", "42", PW_REC_INVALID_VALUE },
    { "id", "null", PW_REC_INVALID_VALUE },
    { "id", "\"a\\u0000b\"", PW_REC_INVALID_VALUE },
    { "seq", "0", PW_REC_OK },
    { "seq", "-1", PW_REC_INVALID_VALUE },
    { "seq", "3.0", PW_REC_INVALID_VALUE },
    { "seq", "3.5", PW_REC_INVALID_VALUE },
    { "seq", "1e2", PW_REC_INVALID_VALUE },
    { "seq", "\"42\"", PW_REC_INVALID_VALUE },
    { "seq", "9223372036854775807", PW_REC_OK },
    { "seq", "9223372036854775808", PW_REC_INVALID_VALUE },
    { "seq", "18446744073709551615", PW_REC_INVALID_VALUE },
    { "seq", "99999999999999999999999", PW_REC_INVALID_VALUE },
    { "seq", "-99999999999999999999999", PW_REC_INVALID_VALUE },
    { "producer", "\"\"", PW_REC_INVALID_VALUE },
    { "producer", "[\"p1\"]", PW_REC_INVALID_VALUE },
    { "ts", "0", PW_REC_INVALID_VALUE },
    { "ts", "-1.5", PW_REC_INVALID_VALUE },
    { "ts", "0.000001", PW_REC_OK },
    { "ts", "1764020000", PW_REC_OK },
    { "ts", "4102444799.999", PW_REC_OK },
    { "ts", "4102444800", PW_REC_INVALID_VALUE },
    { "ts", "4102444800.0", PW_REC_INVALID_VALUE },
    { "ts", "1e400", PW_REC_INVALID_VALUE },
    { "ts", "\"1764020000.5\"", PW_REC_INVALID_VALUE },
    { "ts", "true", PW_REC_INVALID_VALUE },
    { "trace_id", "\"4BF92F3577B34DA6A3CE929D0E0E4736\"", PW_REC_INVALID_VALUE },
    { "trace_id", "\"4bf92f3577b34da6a3ce929d0e0e473\"", PW_REC_INVALID_VALUE },
    { "trace_id", "\"4bf92f3577b34da6a3ce929d0e0e47361\"", PW_REC_INVALID_VALUE },
    { "trace_id", "\"4bf92f3577b34da6a3ce929d0e0e473g\"", PW_REC_INVALID_VALUE },
    { "trace_id", "\"00000000000000000000000000000000\"", PW_REC_OK },
    { "trace_id", "12345678901234567890123456789012", PW_REC_INVALID_VALUE },
    { "kind", "\"\"", PW_REC_INVALID_VALUE },
    { "kind", "{}", PW_REC_INVALID_VALUE },
    { "payload", "null", PW_REC_INVALID_VALUE },
    { "payload", "\"{}\"", PW_REC_INVALID_VALUE },
    { "payload.user_id", "0", PW_REC_OK },
    { "payload.user_id", "-1", PW_REC_INVALID_VALUE },
    { "payload.user_id", "12.5", PW_REC_INVALID_VALUE },
    { "payload.user_id", "\"123\"", PW_REC_INVALID_VALUE },
    { "payload.user_id", "99999999999999999999", PW_REC_INVALID_VALUE },
    { "payload.amount", "0", PW_REC_OK },
    { "payload.amount", "19", PW_REC_OK },
    { "payload.amount", "0.0", PW_REC_OK },
    { "payload.amount", "-0.01", PW_REC_INVALID_VALUE },
    { "payload.amount", "\"19.99\"", PW_REC_INVALID_VALUE },
    { "payload.amount", "1e400", PW_REC_INVALID_VALUE },
    { "payload.amount", "1e300", PW_REC_OK },
    { "payload.amount", "null", PW_REC_INVALID_VALUE },
    { "payload.items", "0", PW_REC_OK },
    { "payload.items", "10000", PW_REC_OK },
    { "payload.items", "10001", PW_REC_INVALID_VALUE },
    { "payload.items", "-1", PW_REC_INVALID_VALUE },
    { "payload.items", "3.5", PW_REC_INVALID_VALUE },
    { "payload.items", "3.0", PW_REC_INVALID_VALUE },
    { "payload.items", "\"three\"", PW_REC_INVALID_VALUE },
};

START_TEST(test_record_checks_each_field_type_and_range)
{
    const char *field = value_cases[_i].field, *value = value_cases[_i].value;
    const char *detail;
    pw_record_error got = parse_with(field, value, &detail);
    ck_assert_msg(got == value_cases[_i].want, "%s=%s: got %s (%s)", field, value,
                  pw_record_error_reason(got), detail);
    if (got == PW_REC_INVALID_VALUE) {
        /* The detail names the field that broke the rule. */
        ck_assert_msg(strstr(detail, field) != NULL, "detail '%s' does not name %s", detail, field);
    }
}
END_TEST

/* A string of n copies of c, quoted. */
static void quoted_run(char *dst, char c, size_t n)
{
    dst[0] = '"';
    memset(dst + 1, c, n);
    dst[n + 1] = '"';
    dst[n + 2] = '\0';
}

START_TEST(test_record_checks_string_length_limits)
{
    static const struct { const char *field; size_t max; } limits[] = {
        { "id", 128 }, { "producer", 64 }, { "kind", 32 },
    };
    char value[200];
    const char *detail;
    for (size_t i = 0; i < PW_ARRAY_LEN(limits); i++) {
        quoted_run(value, 'x', limits[i].max);
        ck_assert_int_eq(parse_with(limits[i].field, value, &detail), PW_REC_OK);
        quoted_run(value, 'x', limits[i].max + 1);
        ck_assert_int_eq(parse_with(limits[i].field, value, &detail), PW_REC_INVALID_VALUE);
        ck_assert_ptr_nonnull(strstr(detail, limits[i].field));
        quoted_run(value, 'x', 1);
        ck_assert_int_eq(parse_with(limits[i].field, value, &detail), PW_REC_OK);
    }
    /* Limits count bytes, not characters: 64 x U+00E9 is 128 bytes. */
    strcpy(value, "\"");
    for (int i = 0; i < 33; i++)
        strcat(value, "\xc3\xa9");
    strcat(value, "\"");
    ck_assert_int_eq(parse_with("producer", value, &detail), PW_REC_INVALID_VALUE);
}
END_TEST

START_TEST(test_record_ignores_unknown_fields_and_accepts_any_key_order)
{
    const char *detail;
    ck_assert_int_eq(parse_str("{\"extra\":[1,{\"x\":null}],\"payload\":{\"items\":3,\"amount\":19.99,"
                               "\"user_id\":123,\"note\":\"n\"},\"kind\":\"order\","
                               "\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"ts\":1764020000.5,"
                               "\"producer\":\"p1\",\"seq\":42,\"id\":\"p1-42\"}", &detail),
                     PW_REC_OK);
}
END_TEST

START_TEST(test_record_parser_is_reusable_across_good_and_bad_records)
{
    pw_buf b = PW_BUF_INIT;
    for (uint64_t seq = 0; seq < 500; seq++) {
        pw_fault f = (pw_fault)(seq % PW_FAULT_COUNT);
        pw_buf_reset(&b);
        pw_record_generate(&b, "p1", seq, 1764020000.25, f);
        pw_record r;
        const char *detail;
        pw_record_error e = parse_bytes(b.data, b.len, &r, &detail);
        if (f == PW_FAULT_NONE || f == PW_FAULT_POISON) {
            ck_assert_int_eq(e, PW_REC_OK);
            ck_assert_uint_eq(r.seq, seq);
            ck_assert_str_eq(r.producer, "p1");
        } else {
            ck_assert_int_eq(e, pw_fault_expected_error(f));
        }
    }
    pw_buf_free(&b);
}
END_TEST

/* ---- transform ---------------------------------------------------------------- */

static void check_transformed(const char *raw, size_t len, const pw_record *r, const char *line,
                              double processed_at, const char *worker, uint64_t run)
{
    ck_assert_ptr_null(memchr(line, '\n', strlen(line)));
    json_object *o = json_parse_checked(line);
    ck_assert_double_eq_tol(json_object_get_double(get(o, "processed_at")), processed_at, 1e-6);
    ck_assert_str_eq(json_object_get_string(get(o, "worker")), worker);
    ck_assert_int_eq(json_object_get_int64(get(o, "amount_cents")), llround(r->amount * 100));
    ck_assert(json_object_is_type(get(o, "amount_cents"), json_type_int));
    ck_assert_uint_eq(json_object_get_uint64(get(o, "run")), run);
    /* The original fields survive unchanged. */
    ck_assert_str_eq(json_object_get_string(get(o, "id")), r->id);
    ck_assert_str_eq(json_object_get_string(get(o, "trace_id")), r->trace_id);
    ck_assert_uint_eq(json_object_get_uint64(get(o, "seq")), r->seq);
    json_object *payload = get(o, "payload");
    ck_assert_double_eq_tol(json_object_get_double(get(payload, "amount")), r->amount, 1e-9);
    /* ...and are the original bytes, copied, not re-serialised. */
    ck_assert_int_eq(memcmp(line, raw, len - 1), 0);
    json_object_put(o);
}

START_TEST(test_record_generated_valid_records_parse_and_transform)
{
    static const char *const producers[] = { "p1", "producer-\xc3\xa9t\xc3\xa9", "a\"b\\c" };
    pw_buf b = PW_BUF_INIT, out = PW_BUF_INIT;
    char want_id[160];
    for (size_t p = 0; p < PW_ARRAY_LEN(producers); p++) {
        for (uint64_t seq = 0; seq < FAULT_SEQS; seq++) {
            double ts = 1764020000.0 + (double)seq * 0.001;
            pw_buf_reset(&b);
            pw_record_generate(&b, producers[p], seq, ts, PW_FAULT_NONE);
            ck_assert_ptr_null(memchr(b.data, '\n', b.len));
            pw_record r;
            const char *detail;
            ck_assert_msg(parse_bytes(b.data, b.len, &r, &detail) == PW_REC_OK, "%s: %s", detail, b.data);
            snprintf(want_id, sizeof want_id, "%s-%llu", producers[p], (unsigned long long)seq);
            ck_assert_str_eq(r.id, want_id);
            ck_assert_str_eq(r.producer, producers[p]);
            ck_assert_uint_eq(r.seq, seq);
            ck_assert_double_eq_tol(r.ts, ts, 1e-6);
            ck_assert_uint_eq(strlen(r.trace_id), 32);
            ck_assert(r.amount > 0 && r.amount < 1000);
            /* Two decimals exactly: the amount is a whole number of cents. */
            ck_assert_double_eq_tol(r.amount * 100, (double)llround(r.amount * 100), 1e-6);
            pw_buf_reset(&out);
            ck_assert_int_eq(pw_record_transform(&r, b.data, b.len, ts + 0.5, "worker-1", 7, &out,
                                                 &detail),
                             PW_REC_OK);
            check_transformed(b.data, b.len, &r, out.data, ts + 0.5, "worker-1", 7);
        }
    }
    pw_buf_free(&b);
    pw_buf_free(&out);
}
END_TEST

START_TEST(test_record_generate_is_deterministic_and_varies_by_seq)
{
    pw_buf a = PW_BUF_INIT, b = PW_BUF_INIT;
    int kinds_seen = 0;
    const char *kinds[] = { "\"order\"", "\"refund\"", "\"signup\"" };
    for (int f = 0; f < PW_FAULT_COUNT; f++) {
        for (uint64_t seq = 0; seq < 50; seq++) {
            pw_buf_reset(&a);
            pw_buf_reset(&b);
            pw_record_generate(&a, "p1", seq, 1764020000.5, (pw_fault)f);
            pw_record_generate(&b, "p1", seq, 1764020000.5, (pw_fault)f);
            ck_assert_uint_eq(a.len, b.len);
            ck_assert_int_eq(memcmp(a.data ? a.data : "", b.data ? b.data : "", a.len), 0);
            if (f == PW_FAULT_NONE)
                for (size_t k = 0; k < PW_ARRAY_LEN(kinds); k++)
                    if (strstr(a.data, kinds[k]))
                        kinds_seen |= 1 << k;
        }
    }
    ck_assert_int_eq(kinds_seen, 7);
    /* Appends: existing content is kept. */
    pw_buf_reset(&a);
    pw_buf_append_str(&a, "prefix");
    pw_record_generate(&a, "p1", 1, 1764020000.5, PW_FAULT_NONE);
    ck_assert_int_eq(strncmp(a.data, "prefix{", 7), 0);
    /* Different seqs, different trace ids. */
    pw_record r1, r2;
    const char *detail;
    char trace1[33];
    pw_buf_reset(&a);
    pw_record_generate(&a, "p1", 1, 1764020000.5, PW_FAULT_NONE);
    ck_assert_int_eq(parse_bytes(a.data, a.len, &r1, &detail), PW_REC_OK);
    memcpy(trace1, r1.trace_id, 33);
    pw_buf_reset(&a);
    pw_record_generate(&a, "p1", 2, 1764020000.5, PW_FAULT_NONE);
    ck_assert_int_eq(parse_bytes(a.data, a.len, &r2, &detail), PW_REC_OK);
    ck_assert_str_ne(trace1, r2.trace_id);
    pw_buf_free(&a);
    pw_buf_free(&b);
}
END_TEST

START_TEST(test_record_transform_of_an_empty_object_has_no_leading_comma)
{
    pw_record r = { .amount = 1.25 };
    pw_buf out = PW_BUF_INIT;
    const char *detail;
    static const char *const raws[] = { "{}", "{ }", "  {\n}\r\n ", "{\t}" };
    for (size_t i = 0; i < PW_ARRAY_LEN(raws); i++) {
        pw_buf_reset(&out);
        ck_assert_int_eq(pw_record_transform(&r, raws[i], strlen(raws[i]), 1.5, "w", 3, &out, &detail),
                         PW_REC_OK);
        ck_assert_ptr_null(strchr(out.data, '\n'));
        json_object *o = json_parse_checked(out.data);
        ck_assert_int_eq(json_object_get_int64(get(o, "amount_cents")), 125);
        ck_assert_int_eq(json_object_object_length(o), 4);
        json_object_put(o);
    }
    pw_buf_free(&out);
}
END_TEST

START_TEST(test_record_transform_keeps_output_on_one_line)
{
    const char *raw = "\r\n{\n\"id\":\"p1-42\",\"seq\":42,\"producer\":\"p1\",\"ts\":1764020000.5,\r\n"
                      "\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"kind\":\"a\\nb\",\n"
                      "\"payload\":{\"user_id\":1,\"amount\":2.5,\"items\":1}\n}\n\n";
    pw_record r;
    const char *detail;
    ck_assert_int_eq(parse_bytes(raw, strlen(raw), &r, &detail), PW_REC_OK);
    ck_assert_str_eq(r.kind, "a\nb");
    pw_buf out = PW_BUF_INIT;
    ck_assert_int_eq(pw_record_transform(&r, raw, strlen(raw), 1.5, "w", 3, &out, &detail), PW_REC_OK);
    ck_assert_ptr_null(strchr(out.data, '\n'));
    ck_assert_ptr_null(strchr(out.data, '\r'));
    json_object *o = json_parse_checked(out.data);
    ck_assert_str_eq(json_object_get_string(get(o, "kind")), "a\nb");
    ck_assert_int_eq(json_object_get_int64(get(o, "amount_cents")), 250);
    json_object_put(o);
    pw_buf_free(&out);
}
END_TEST

START_TEST(test_record_transform_escapes_the_worker_name)
{
    pw_buf b = PW_BUF_INIT, out = PW_BUF_INIT;
    build_record(&b, NULL, NULL);
    pw_record r;
    const char *detail;
    ck_assert_int_eq(parse_bytes(b.data, b.len, &r, &detail), PW_REC_OK);
    const char *worker = "w\"1\\\n\x01\xff";
    ck_assert_int_eq(pw_record_transform(&r, b.data, b.len, 1764020001.25, worker, UINT64_MAX, &out,
                                         &detail),
                     PW_REC_OK);
    ck_assert(pw_utf8_valid(out.data, out.len));
    json_object *o = json_parse_checked(out.data);
    ck_assert_str_eq(json_object_get_string(get(o, "worker")), "w\"1\\\n\x01\xef\xbf\xbd");
    ck_assert_uint_eq(json_object_get_uint64(get(o, "run")), UINT64_MAX);
    ck_assert_int_eq(json_object_get_int64(get(o, "amount_cents")), 1999);
    ck_assert_ptr_nonnull(strstr(out.data, "\"processed_at\":1764020001.250000,"));
    json_object_put(o);
    pw_buf_free(&b);
    pw_buf_free(&out);
}
END_TEST

START_TEST(test_record_transform_refuses_poison_and_leaves_output_unchanged)
{
    pw_buf b = PW_BUF_INIT, out = PW_BUF_INIT;
    const char *detail;
    pw_record r;
    static const char *const poison[] = { "1e300", "90071992547409.92", "1e14", "1.7976931348623157e308" };
    for (size_t i = 0; i < PW_ARRAY_LEN(poison); i++) {
        build_record(&b, "payload.amount", poison[i]);
        ck_assert_int_eq(parse_bytes(b.data, b.len, &r, &detail), PW_REC_OK);
        pw_buf_reset(&out);
        pw_buf_append_str(&out, "keep");
        ck_assert_int_eq(pw_record_transform(&r, b.data, b.len, 1.0, "w", 1, &out, &detail),
                         PW_REC_PROCESSING);
        ck_assert_str_eq(out.data, "keep");
        ck_assert_uint_eq(out.len, 4);
        ck_assert_ptr_nonnull(strstr(detail, "amount"));
    }
    /* Just below the limit: exact cents. */
    build_record(&b, "payload.amount", "10000000000000.01");
    ck_assert_int_eq(parse_bytes(b.data, b.len, &r, &detail), PW_REC_OK);
    pw_buf_reset(&out);
    ck_assert_int_eq(pw_record_transform(&r, b.data, b.len, 1.0, "w", 1, &out, &detail), PW_REC_OK);
    ck_assert_ptr_nonnull(strstr(out.data, "\"amount_cents\":1000000000000001,"));
    pw_buf_free(&b);
    pw_buf_free(&out);
}
END_TEST

/* ---- generated faults ----------------------------------------------------------- */

START_TEST(test_record_every_fault_kind_yields_its_expected_error)
{
    pw_fault f = (pw_fault)_i;
    pw_record_error want = pw_fault_expected_error(f);
    pw_buf b = PW_BUF_INIT, out = PW_BUF_INIT;
    const char *details[16];
    size_t n_details = 0;
    for (uint64_t seq = 0; seq < FAULT_SEQS; seq++) {
        pw_buf_reset(&b);
        pw_record_generate(&b, seq % 2 ? "p1" : "pr\xc3\xb8""ducer", seq, 1764020000.0 + (double)seq,
                           f);
        ck_assert(pw_buf_ok(&b));
        if (b.len)
            ck_assert_ptr_null(memchr(b.data, '\n', b.len));
        pw_record r;
        const char *detail;
        pw_record_error got = parse_bytes(b.data, b.len, &r, &detail);
        if (got == PW_REC_OK) {
            pw_buf_reset(&out);
            got = pw_record_transform(&r, b.data, b.len, 1764020001.0, "w", 1, &out, &detail);
        }
        ck_assert_msg(got == want, "%s seq %llu: got %s (%s): %.200s", pw_fault_name(f),
                      (unsigned long long)seq, pw_record_error_reason(got), detail,
                      b.data ? b.data : "");
        size_t k = 0;
        while (k < n_details && strcmp(details[k], detail) != 0)
            k++;
        if (k == n_details && n_details < PW_ARRAY_LEN(details))
            details[n_details++] = detail;
    }
    /* The generator varies how it breaks a record, not just one way. */
    if (f == PW_FAULT_MISSING_FIELD)
        ck_assert_uint_ge(n_details, 10);
    if (f == PW_FAULT_INVALID_VALUE)
        ck_assert_uint_ge(n_details, 6);
    pw_buf_free(&b);
    pw_buf_free(&out);
}
END_TEST

START_TEST(test_record_generated_malformed_json_varies_and_stays_utf8)
{
    pw_buf b = PW_BUF_INIT;
    bool truncated = false, unquoted = false, trailing_comma = false;
    for (uint64_t seq = 0; seq < FAULT_SEQS; seq++) {
        pw_buf_reset(&b);
        pw_record_generate(&b, "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac", seq, 1764020000.5,
                           PW_FAULT_MALFORMED_JSON);
        ck_assert(pw_utf8_valid(b.data, b.len));
        json_object *o = json_tokener_parse(b.data);
        /* json-c's lenient mode takes the NaN, quote and comma variants;
         * the truncated and unquoted ones break every parser. */
        ck_assert_msg(o == NULL || seq % 5 >= 2, "json-c accepted %s", b.data);
        json_object_put(o);
        truncated |= b.data[b.len - 1] != '}';
        unquoted |= strstr(b.data, ",kind:") != NULL;
        trailing_comma |= strstr(b.data, ",}") != NULL;
    }
    ck_assert(truncated && unquoted && trailing_comma);
    pw_buf_free(&b);
}
END_TEST

START_TEST(test_record_oversize_fault_is_a_valid_shaped_record_over_the_limit)
{
    pw_buf b = PW_BUF_INIT;
    pw_record_generate(&b, "p1", 9, 1764020000.5, PW_FAULT_OVERSIZE);
    ck_assert_uint_gt(b.len, PW_RECORD_MAX_BYTES);
    json_object *o = json_parse_checked(b.data);
    ck_assert_str_eq(json_object_get_string(get(o, "id")), "p1-9");
    json_object_put(o);
    pw_buf_free(&b);
}
END_TEST

START_TEST(test_record_empty_fault_appends_nothing)
{
    pw_buf b = PW_BUF_INIT;
    pw_buf_append_str(&b, "x");
    pw_record_generate(&b, "p1", 3, 1764020000.5, PW_FAULT_EMPTY);
    ck_assert_uint_eq(b.len, 1);
    pw_buf_free(&b);
}
END_TEST

/* ---- dead letters ---------------------------------------------------------------- */

static void check_raw_b64(json_object *o, const char *raw, size_t len)
{
    const char *b64 = json_object_get_string(get(o, "raw_b64"));
    pw_buf decoded = PW_BUF_INIT;
    ck_assert_int_eq(pw_base64_decode(b64, strlen(b64), &decoded), PW_OK);
    ck_assert_uint_eq(decoded.len, len);
    if (len)
        ck_assert_int_eq(memcmp(decoded.data, raw, len), 0);
    pw_buf_free(&decoded);
}

START_TEST(test_record_dead_letter_line_parses_and_keeps_raw_bytes)
{
    char raw[256];
    for (int i = 0; i < 256; i++)
        raw[i] = (char)i;
    pw_buf out = PW_BUF_INIT;
    pw_buf_append_str(&out, "prefix:");
    pw_record_dead_letter(&out, PW_REC_MALFORMED_JSON, "bad \"quote\"\n", "p\"1", 5, 42, "w\xff",
                          1764020000.5, raw, sizeof raw);
    const char *head = "prefix:{\"dead_at\":1764020000.500000,\"reason\":\"malformed_json\",";
    ck_assert_int_eq(strncmp(out.data, head, strlen(head)), 0);
    const char *line = out.data + 7;
    ck_assert_ptr_null(strchr(line, '\n'));
    ck_assert(pw_utf8_valid(line, strlen(line)));
    json_object *o = json_parse_checked(line);
    ck_assert_str_eq(json_object_get_string(get(o, "reason")), "malformed_json");
    ck_assert_str_eq(json_object_get_string(get(o, "detail")), "bad \"quote\"\n");
    ck_assert_str_eq(json_object_get_string(get(o, "id")), "p\"1-42");
    ck_assert_str_eq(json_object_get_string(get(o, "producer")), "p\"1");
    ck_assert_uint_eq(json_object_get_uint64(get(o, "run")), 5);
    ck_assert_uint_eq(json_object_get_uint64(get(o, "seq")), 42);
    ck_assert_str_eq(json_object_get_string(get(o, "worker")), "w\xef\xbf\xbd");
    ck_assert_uint_eq(json_object_get_uint64(get(o, "raw_len")), 256);
    ck_assert(!json_object_object_get_ex(o, "raw_truncated", NULL));
    check_raw_b64(o, raw, sizeof raw);
    json_object_put(o);
    pw_buf_free(&out);
}
END_TEST

START_TEST(test_record_dead_letter_without_envelope_writes_nulls)
{
    pw_buf out = PW_BUF_INIT;
    pw_record_dead_letter(&out, PW_REC_EMPTY, "record is empty", NULL, 7, 8, "w", 1.0, "", 0);
    json_object *o = json_parse_checked(out.data);
    static const char *const nulls[] = { "id", "producer", "run", "seq" };
    for (size_t i = 0; i < PW_ARRAY_LEN(nulls); i++)
        ck_assert(json_object_is_type(get(o, nulls[i]), json_type_null));
    ck_assert_str_eq(json_object_get_string(get(o, "reason")), "empty");
    ck_assert_uint_eq(json_object_get_uint64(get(o, "raw_len")), 0);
    ck_assert_str_eq(json_object_get_string(get(o, "raw_b64")), "");
    json_object_put(o);
    ck_assert_str_eq(out.data, "{\"dead_at\":1.000000,\"reason\":\"empty\",\"detail\":\"record is empty\","
                               "\"id\":null,\"producer\":null,\"run\":null,\"seq\":null,\"worker\":\"w\","
                               "\"raw_len\":0,\"raw_b64\":\"\"}");
    pw_buf_free(&out);
}
END_TEST

START_TEST(test_record_dead_letter_truncates_raw_beyond_the_limit)
{
    size_t len = PW_DEAD_LETTER_RAW_MAX + 10;
    char *raw = malloc(len);
    for (size_t i = 0; i < len; i++)
        raw[i] = (char)(i * 7);
    pw_buf out = PW_BUF_INIT;
    pw_record_dead_letter(&out, PW_REC_OVERSIZE, "too big", "p1", 1, 2, "w", 1.0, raw, len);
    json_object *o = json_parse_checked(out.data);
    ck_assert_uint_eq(json_object_get_uint64(get(o, "raw_len")), len);
    ck_assert(json_object_get_boolean(get(o, "raw_truncated")));
    check_raw_b64(o, raw, PW_DEAD_LETTER_RAW_MAX);
    json_object_put(o);

    /* Exactly at the limit: nothing cut, no flag. */
    pw_buf_reset(&out);
    pw_record_dead_letter(&out, PW_REC_OVERSIZE, "too big", "p1", 1, 2, "w", 1.0, raw,
                          PW_DEAD_LETTER_RAW_MAX);
    o = json_parse_checked(out.data);
    ck_assert(!json_object_object_get_ex(o, "raw_truncated", NULL));
    check_raw_b64(o, raw, PW_DEAD_LETTER_RAW_MAX);
    json_object_put(o);
    pw_buf_free(&out);
    free(raw);
}
END_TEST

START_TEST(test_record_dead_letter_of_every_generated_fault_round_trips)
{
    pw_buf b = PW_BUF_INIT, out = PW_BUF_INIT;
    for (int f = 1; f < PW_FAULT_COUNT; f++) {
        for (uint64_t seq = 0; seq < 20; seq++) {
            pw_buf_reset(&b);
            pw_record_generate(&b, "p1", seq, 1764020000.5, (pw_fault)f);
            pw_record r;
            const char *detail;
            pw_record_error e = parse_bytes(b.data, b.len, &r, &detail);
            if (e == PW_REC_OK) {
                pw_buf_reset(&out);
                e = pw_record_transform(&r, b.data, b.len, 1.0, "w", 1, &out, &detail);
            }
            pw_buf_reset(&out);
            pw_record_dead_letter(&out, e, detail, "p1", 3, seq, "w", 1764020001.0, b.data, b.len);
            json_object *o = json_parse_checked(out.data);
            ck_assert_str_eq(json_object_get_string(get(o, "reason")), pw_record_error_reason(e));
            ck_assert_str_eq(json_object_get_string(get(o, "detail")), detail);
            check_raw_b64(o, b.data, b.len);
            json_object_put(o);
        }
    }
    pw_buf_free(&b);
    pw_buf_free(&out);
}
END_TEST

/* ---- names and fault lists --------------------------------------------------------- */

START_TEST(test_record_error_reasons_are_the_spec_labels)
{
    ck_assert_str_eq(pw_record_error_reason(PW_REC_OK), "ok");
    ck_assert_str_eq(pw_record_error_reason(PW_REC_MALFORMED_JSON), "malformed_json");
    ck_assert_str_eq(pw_record_error_reason(PW_REC_MISSING_FIELD), "missing_field");
    ck_assert_str_eq(pw_record_error_reason(PW_REC_INVALID_VALUE), "invalid_value");
    ck_assert_str_eq(pw_record_error_reason(PW_REC_OVERSIZE), "oversize");
    ck_assert_str_eq(pw_record_error_reason(PW_REC_INVALID_UTF8), "invalid_utf8");
    ck_assert_str_eq(pw_record_error_reason(PW_REC_EMPTY), "empty");
    ck_assert_str_eq(pw_record_error_reason(PW_REC_PROCESSING), "processing");
    ck_assert_ptr_nonnull(pw_record_error_reason(PW_REC_ERROR_COUNT));
}
END_TEST

START_TEST(test_record_fault_names_and_expected_errors)
{
    static const char *const names[] = { "none", "malformed_json", "missing_field", "invalid_value",
                                         "oversize", "invalid_utf8", "empty", "poison" };
    for (int f = 0; f < PW_FAULT_COUNT; f++)
        ck_assert_str_eq(pw_fault_name((pw_fault)f), names[f]);
    ck_assert_int_eq(pw_fault_expected_error(PW_FAULT_NONE), PW_REC_OK);
    ck_assert_int_eq(pw_fault_expected_error(PW_FAULT_POISON), PW_REC_PROCESSING);
    ck_assert_int_eq(pw_fault_expected_error(PW_FAULT_EMPTY), PW_REC_EMPTY);
    ck_assert_int_eq(pw_fault_expected_error(PW_FAULT_OVERSIZE), PW_REC_OVERSIZE);
    /* Every other fault is named like the reason it produces. */
    for (int f = PW_FAULT_MALFORMED_JSON; f <= PW_FAULT_EMPTY; f++)
        ck_assert_str_eq(pw_record_error_reason(pw_fault_expected_error((pw_fault)f)),
                         pw_fault_name((pw_fault)f));
}
END_TEST

START_TEST(test_record_fault_list_parses_names_and_all)
{
    unsigned mask = 0;
    const char *bad = NULL;
    unsigned all = 0;
    for (int f = 1; f < PW_FAULT_COUNT; f++)
        all |= 1u << f;
    ck_assert_int_eq(pw_fault_parse_list("all", &mask, &bad), PW_OK);
    ck_assert_uint_eq(mask, all);
    ck_assert_int_eq(pw_fault_parse_list("empty,poison", &mask, &bad), PW_OK);
    ck_assert_uint_eq(mask, 1u << PW_FAULT_EMPTY | 1u << PW_FAULT_POISON);
    ck_assert_int_eq(pw_fault_parse_list(" oversize , invalid_utf8 ", &mask, &bad), PW_OK);
    ck_assert_uint_eq(mask, 1u << PW_FAULT_OVERSIZE | 1u << PW_FAULT_INVALID_UTF8);
    ck_assert_int_eq(pw_fault_parse_list("malformed_json,malformed_json", &mask, &bad), PW_OK);
    ck_assert_uint_eq(mask, 1u << PW_FAULT_MALFORMED_JSON);
    ck_assert_int_eq(pw_fault_parse_list("poison,all", &mask, &bad), PW_OK);
    ck_assert_uint_eq(mask, all);
    for (int f = 1; f < PW_FAULT_COUNT; f++) {
        ck_assert_int_eq(pw_fault_parse_list(pw_fault_name((pw_fault)f), &mask, &bad), PW_OK);
        ck_assert_uint_eq(mask, 1u << f);
    }
}
END_TEST

START_TEST(test_record_fault_list_rejects_unknown_and_empty_items)
{
    static const struct { const char *list, *bad; } cases[] = {
        { "bogus", "bogus" },
        { "empty,bogus", "bogus" },
        { "", "" },
        { "empty,", "" },
        { ",empty", "" },
        { "empty,,poison", "" },
        { "none", "none" },
        { "ALL", "ALL" },
        { "processing", "processing" },
        { "empty;poison", "empty;poison" },
    };
    for (size_t i = 0; i < PW_ARRAY_LEN(cases); i++) {
        unsigned mask = 12345;
        const char *bad = NULL;
        ck_assert_msg(pw_fault_parse_list(cases[i].list, &mask, &bad) == PW_EINVAL, "accepted '%s'",
                      cases[i].list);
        ck_assert_ptr_nonnull(bad);
        ck_assert_str_eq(bad, cases[i].bad);
        ck_assert_uint_eq(mask, 12345);
    }
    /* A very long unknown name is reported cut, never overflowing. */
    char longname[300];
    memset(longname, 'z', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    const char *bad = NULL;
    unsigned mask;
    ck_assert_int_eq(pw_fault_parse_list(longname, &mask, &bad), PW_EINVAL);
    ck_assert_uint_gt(strlen(bad), 0);
    ck_assert_int_eq(strncmp(bad, longname, strlen(bad)), 0);
}
END_TEST

/* ---- the fast parser agrees with the json-c reference -------------------- */

static void assert_parsers_agree(pw_record_parser *fast, pw_record_parser *ref, const char *bytes,
                                 size_t len)
{
    pw_record a, b;
    const char *da = NULL, *db = NULL;
    pw_record_error ea = pw_record_parse(fast, bytes, len, &a, &da);
    pw_record_error eb = pw_record_parse_reference(ref, bytes, len, &b, &db);
    ck_assert_msg(ea == eb, "fast says %s (%s), json-c says %s (%s) for %.*s", pw_record_error_reason(ea), da,
                  pw_record_error_reason(eb), db, (int)(len > 300 ? 300 : len), bytes);
    if (ea != PW_REC_OK)
        return;
    ck_assert_str_eq(a.id, b.id);
    ck_assert_str_eq(a.producer, b.producer);
    ck_assert_str_eq(a.trace_id, b.trace_id);
    ck_assert_str_eq(a.kind, b.kind);
    ck_assert_uint_eq(a.seq, b.seq);
    ck_assert(a.ts == b.ts);
    ck_assert(a.amount == b.amount);
    ck_assert_int_eq(a.user_id, b.user_id);
    ck_assert_int_eq(a.items, b.items);
}

START_TEST(test_record_fast_parser_agrees_with_json_c_on_generated_records)
{
    pw_record_parser *fast = pw_record_parser_new(), *ref = pw_record_parser_new();
    pw_buf b = PW_BUF_INIT;
    for (int f = 0; f < PW_FAULT_COUNT; f++) {
        for (uint64_t seq = 0; seq < 500; seq++) {
            pw_buf_reset(&b);
            pw_record_generate(&b, seq % 3 ? "p1" : "producer-\xc3\xa9", seq, 1764020000.123456 + (double)seq,
                               (pw_fault)f);
            assert_parsers_agree(fast, ref, b.data ? b.data : "", b.len);
        }
    }
    pw_buf_free(&b);
    pw_record_parser_free(fast);
    pw_record_parser_free(ref);
}
END_TEST

START_TEST(test_record_fast_parser_agrees_with_json_c_on_edge_cases)
{
    static const char *const cases[] = {
        /* escaped keys and values */
        "{\"\\u0069d\":\"p1-1\",\"seq\":1,\"producer\":\"p\\u00e9\",\"ts\":1.5,\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\","
        "\"kind\":\"o\\/r\\n\",\"payload\":{\"user_id\":0,\"amount\":0,\"items\":0}}",
        /* duplicate keys: the last one counts */
        "{\"id\":\"a\",\"id\":\"b\",\"seq\":1,\"producer\":\"p\",\"ts\":1,\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\","
        "\"kind\":\"k\",\"payload\":{\"user_id\":1,\"amount\":1,\"items\":1},\"payload\":{\"user_id\":2,\"amount\":2,\"items\":2}}",
        "{\"id\":\"a\",\"seq\":1,\"producer\":\"p\",\"ts\":1,\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\","
        "\"kind\":\"k\",\"payload\":{\"user_id\":1,\"amount\":1,\"items\":1},\"payload\":{\"user_id\":2}}",
        "{\"id\":\"a\",\"seq\":1,\"producer\":\"p\",\"ts\":1,\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\","
        "\"kind\":\"k\",\"payload\":{\"user_id\":1,\"amount\":1,\"items\":1},\"payload\":7}",
        /* nested objects with the same key names are not the record's fields */
        "{\"x\":{\"id\":\"a\"},\"id\":\"b\",\"seq\":1,\"producer\":\"p\",\"ts\":1,\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\","
        "\"kind\":\"k\",\"payload\":{\"user_id\":1,\"amount\":1,\"items\":1,\"deep\":{\"items\":99999}}}",
        "{\"id\":\"b\",\"seq\":1,\"producer\":\"p\",\"ts\":1,\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\","
        "\"kind\":\"k\",\"payload\":{\"user_id\":1,\"amount\":1,\"deep\":{\"items\":1}}}",
        /* numbers at the edges */
        "{\"id\":\"b\",\"seq\":-0,\"producer\":\"p\",\"ts\":4102444799.999,\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\","
        "\"kind\":\"k\",\"payload\":{\"user_id\":9223372036854775807,\"amount\":-0.0,\"items\":10000}}",
        "{\"id\":\"b\",\"seq\":9223372036854775808,\"producer\":\"p\",\"ts\":1,\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\","
        "\"kind\":\"k\",\"payload\":{\"user_id\":1,\"amount\":1,\"items\":1}}",
        "{\"id\":\"b\",\"seq\":1,\"producer\":\"p\",\"ts\":1e400,\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\","
        "\"kind\":\"k\",\"payload\":{\"user_id\":1,\"amount\":1,\"items\":1}}",
        "{\"id\":\"b\",\"seq\":1,\"producer\":\"p\",\"ts\":1,\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\","
        "\"kind\":\"k\",\"payload\":{\"user_id\":1,\"amount\":1e2,\"items\":1.0}}",
        "{\"id\":\"b\",\"seq\":1,\"producer\":\"p\",\"ts\":1,\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\","
        "\"kind\":\"k\",\"payload\":{\"user_id\":1,\"amount\":18446744073709551616,\"items\":1}}",
        /* strings at the edges */
        "{\"id\":\"a\\u0000b\",\"seq\":1,\"producer\":\"p\",\"ts\":1,\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\","
        "\"kind\":\"k\",\"payload\":{\"user_id\":1,\"amount\":1,\"items\":1}}",
        "{\"id\":\"\",\"seq\":1,\"producer\":\"p\",\"ts\":1,\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\","
        "\"kind\":\"k\",\"payload\":{\"user_id\":1,\"amount\":1,\"items\":1}}",
        "{\"id\":\"b\",\"seq\":1,\"producer\":\"p\",\"ts\":1,\"trace_id\":\"\\u0034bf92f3577b34da6a3ce929d0e0e4736\","
        "\"kind\":\"k\",\"payload\":{\"user_id\":1,\"amount\":1,\"items\":1}}",
        "{\"id\":\"b\",\"seq\":1,\"producer\":\"p\",\"ts\":1,\"trace_id\":\"4BF92F3577B34DA6A3CE929D0E0E4736\","
        "\"kind\":\"k\",\"payload\":{\"user_id\":1,\"amount\":1,\"items\":1}}",
        "{\"id\":\"\\ud83d\\ude00\",\"seq\":1,\"producer\":\"p\",\"ts\":1,\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\","
        "\"kind\":\"k\",\"payload\":{\"user_id\":1,\"amount\":1,\"items\":1}}",
        /* wrong types */
        "{\"id\":1,\"seq\":\"1\",\"producer\":null,\"ts\":true,\"trace_id\":[],\"kind\":{},\"payload\":[]}",
        "{\"id\":\"b\",\"seq\":1,\"producer\":\"p\",\"ts\":1,\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\","
        "\"kind\":\"k\",\"payload\":{\"user_id\":true,\"amount\":\"1\",\"items\":null}}",
        "[1,2]", "\"text\"", "17", "{}", "{\"payload\":{}}",
    };
    static const char *const numbers[] = {
        "0", "-0", "-0.0", "0.1", "0.3", "19.99", "1764020000.123456", "1764020000.1234567",
        "0.000000000000000000000001", "0.0000000000000000000001", "123456789012345",
        "1234567890123456", "12345678901234567890", "9007199254740993.5", "1.5e3", "1E-7",
        "4102444799.9999995", "100.000000000000000000", "00000", "1e400", "-5",
    };
    pw_record_parser *fast = pw_record_parser_new(), *ref = pw_record_parser_new();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_parsers_agree(fast, ref, cases[i], strlen(cases[i]));
    char rec[512];
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++) {
        int n = snprintf(rec, sizeof rec,
                         "{\"id\":\"a\",\"seq\":1,\"producer\":\"p\",\"ts\":%s,\"trace_id\":"
                         "\"4bf92f3577b34da6a3ce929d0e0e4736\",\"kind\":\"k\",\"payload\":{\"user_id\":1,"
                         "\"amount\":%s,\"items\":1}}", numbers[i], numbers[i]);
        assert_parsers_agree(fast, ref, rec, (size_t)n);
        /* amounts only (ts must be positive) */
        n = snprintf(rec, sizeof rec,
                     "{\"id\":\"a\",\"seq\":1,\"producer\":\"p\",\"ts\":1,\"trace_id\":"
                     "\"4bf92f3577b34da6a3ce929d0e0e4736\",\"kind\":\"k\",\"payload\":{\"user_id\":1,"
                     "\"amount\":%s,\"items\":1}}", numbers[i]);
        assert_parsers_agree(fast, ref, rec, (size_t)n);
    }
    pw_record_parser_free(fast);
    pw_record_parser_free(ref);
}
END_TEST

START_TEST(test_record_fast_generator_writes_the_reference_bytes)
{
    pw_buf a = PW_BUF_INIT, b = PW_BUF_INIT;
    const char *producers[] = { "p1", "inject-1764020000", "a.b_c-d" };
    for (size_t p = 0; p < 3; p++) {
        for (uint64_t seq = 0; seq < 20000; seq += 7) {
            double ts = 1764020000.0 + (double)seq * 0.000731;
            pw_buf_reset(&a);
            pw_buf_reset(&b);
            pw_record_generate(&a, producers[p], seq, ts, PW_FAULT_NONE);
            pw_record_generate_reference(&b, producers[p], seq, ts);
            ck_assert_uint_eq(a.len, b.len);
            ck_assert_mem_eq(a.data, b.data, a.len);
        }
    }
    pw_buf_free(&a);
    pw_buf_free(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("record");
    TCase *tc = tcase_create("record");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_record_accepts_the_spec_example);
    tcase_add_test(tc, test_record_rejects_empty_and_whitespace_only_as_empty);
    tcase_add_test(tc, test_record_accepts_exactly_64_kib_and_rejects_one_byte_more);
    tcase_add_test(tc, test_record_rejects_oversize_before_parsing);
    tcase_add_test(tc, test_record_rejects_invalid_utf8_before_parsing);
    tcase_add_test(tc, test_record_rejects_malformed_json);
    tcase_add_test(tc, test_record_rejects_trailing_garbage);
    tcase_add_test(tc, test_record_accepts_depth_16_and_rejects_depth_17);
    tcase_add_test(tc, test_record_rejects_non_object_top_level_as_invalid_value);
    tcase_add_test(tc, test_record_reports_each_missing_field_by_name);
    tcase_add_test(tc, test_record_reports_missing_field_before_type_errors);
    tcase_add_loop_test(tc, test_record_checks_each_field_type_and_range, 0,
                        (int)PW_ARRAY_LEN(value_cases));
    tcase_add_test(tc, test_record_checks_string_length_limits);
    tcase_add_test(tc, test_record_ignores_unknown_fields_and_accepts_any_key_order);
    tcase_add_test(tc, test_record_parser_is_reusable_across_good_and_bad_records);
    tcase_add_test(tc, test_record_generated_valid_records_parse_and_transform);
    tcase_add_test(tc, test_record_generate_is_deterministic_and_varies_by_seq);
    tcase_add_test(tc, test_record_transform_of_an_empty_object_has_no_leading_comma);
    tcase_add_test(tc, test_record_transform_keeps_output_on_one_line);
    tcase_add_test(tc, test_record_transform_escapes_the_worker_name);
    tcase_add_test(tc, test_record_transform_refuses_poison_and_leaves_output_unchanged);
    tcase_add_loop_test(tc, test_record_every_fault_kind_yields_its_expected_error, 0, PW_FAULT_COUNT);
    tcase_add_test(tc, test_record_generated_malformed_json_varies_and_stays_utf8);
    tcase_add_test(tc, test_record_oversize_fault_is_a_valid_shaped_record_over_the_limit);
    tcase_add_test(tc, test_record_empty_fault_appends_nothing);
    tcase_add_test(tc, test_record_dead_letter_line_parses_and_keeps_raw_bytes);
    tcase_add_test(tc, test_record_dead_letter_without_envelope_writes_nulls);
    tcase_add_test(tc, test_record_dead_letter_truncates_raw_beyond_the_limit);
    tcase_add_test(tc, test_record_dead_letter_of_every_generated_fault_round_trips);
    tcase_add_test(tc, test_record_error_reasons_are_the_spec_labels);
    tcase_add_test(tc, test_record_fault_names_and_expected_errors);
    tcase_add_test(tc, test_record_fault_list_parses_names_and_all);
    tcase_add_test(tc, test_record_fault_list_rejects_unknown_and_empty_items);
    tcase_add_test(tc, test_record_fast_parser_agrees_with_json_c_on_generated_records);
    tcase_add_test(tc, test_record_fast_parser_agrees_with_json_c_on_edge_cases);
    tcase_add_test(tc, test_record_fast_generator_writes_the_reference_bytes);
    suite_add_tcase(s, tc);
    return pw_test_run(s);
}

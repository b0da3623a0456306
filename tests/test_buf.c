/*
 * test_buf.c: the growable buffer and its encoders (buf.h).
 *
 * The escaping and UTF-8 tests go byte by byte over all 256 values because
 * the dead-letter file and the logs must stay valid JSON whatever a record
 * contained.
 */
#include <check.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "pw.h"
#include "support.h"

static uint64_t rng_state = 0x243F6A8885A308D3ull;

static uint64_t rng(void) { return pw_test_rng(&rng_state); }

/* Escapes s, wraps it in quotes and parses it with json-c (strict); returns
 * the decoded string's bytes in *out.  Fails the test when not JSON. */
static void escape_and_decode(const char *s, size_t len, pw_buf *out)
{
    pw_buf b = PW_BUF_INIT;
    pw_buf_append_char(&b, '"');
    pw_buf_append_json_escaped(&b, s, len);
    pw_buf_append_char(&b, '"');
    ck_assert(pw_buf_ok(&b));
    ck_assert_msg(pw_utf8_valid(b.data, b.len), "escaped text is not UTF-8");
    for (size_t i = 0; i < b.len; i++)
        ck_assert_msg((unsigned char)b.data[i] >= 0x20, "raw control byte in escaped text");
    struct json_tokener *tok = json_tokener_new();
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    json_object *o = json_tokener_parse_ex(tok, b.data, (int)b.len);
    ck_assert_msg(o != NULL, "json-c rejected %s", b.data);
    ck_assert(json_object_is_type(o, json_type_string));
    pw_buf_reset(out);
    pw_buf_append(out, json_object_get_string(o), (size_t)json_object_get_string_len(o));
    json_object_put(o);
    json_tokener_free(tok);
    pw_buf_free(&b);
}

/* ---- growth ------------------------------------------------------------------ */

START_TEST(test_buf_grows_and_stays_nul_terminated)
{
    pw_buf b = PW_BUF_INIT;
    ck_assert_ptr_null(b.data);
    for (size_t i = 0; i < 100000; i++) {
        pw_buf_append_char(&b, (char)('a' + i % 26));
        ck_assert_uint_eq(b.len, i + 1);
        ck_assert_uint_gt(b.cap, b.len);
        ck_assert_int_eq(b.data[b.len], '\0');
    }
    for (size_t i = 0; i < 100000; i++)
        ck_assert_int_eq(b.data[i], 'a' + (int)(i % 26));
    pw_buf_append(&b, "xyz", 3);
    ck_assert_str_eq(b.data + 100000, "xyz");
    ck_assert(pw_buf_ok(&b));
    pw_buf_free(&b);
    ck_assert_ptr_null(b.data);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_uint_eq(b.cap, 0);
}
END_TEST

START_TEST(test_buf_reset_keeps_capacity_so_reuse_does_not_allocate)
{
    pw_buf b = PW_BUF_INIT;
    char chunk[1000];
    memset(chunk, 'q', sizeof chunk);
    for (int i = 0; i < 50; i++)
        pw_buf_append(&b, chunk, sizeof chunk);
    char *data = b.data;
    size_t cap = b.cap;
    for (int round = 0; round < 10; round++) {
        pw_buf_reset(&b);
        ck_assert_uint_eq(b.len, 0);
        ck_assert_str_eq(b.data, "");
        for (int i = 0; i < 50; i++)
            pw_buf_append(&b, chunk, sizeof chunk);
        ck_assert_ptr_eq(b.data, data);
        ck_assert_uint_eq(b.cap, cap);
    }
    pw_buf_free(&b);
    /* Reset of a never-used buffer is harmless. */
    pw_buf_reset(&b);
    ck_assert_ptr_null(b.data);
}
END_TEST

START_TEST(test_buf_append_of_nothing_is_harmless)
{
    pw_buf b = PW_BUF_INIT;
    pw_buf_append(&b, NULL, 0);
    pw_buf_append_str(&b, "");
    pw_buf_append_base64(&b, NULL, 0);
    pw_buf_append_json_escaped(&b, NULL, 0);
    ck_assert_uint_eq(b.len, 0);
    ck_assert(pw_buf_ok(&b));
    pw_buf_free(&b);
}
END_TEST

START_TEST(test_buf_failure_is_sticky_until_reset)
{
    pw_buf b = PW_BUF_INIT;
    pw_buf_append_str(&b, "abc");
    ck_assert_int_eq(pw_buf_reserve(&b, SIZE_MAX), PW_ENOMEM);
    ck_assert(!pw_buf_ok(&b));
    pw_buf_append_str(&b, "def");
    pw_buf_append_char(&b, 'g');
    pw_buf_printf(&b, "%d", 42);
    ck_assert_uint_eq(b.len, 3);
    ck_assert_int_eq(pw_buf_reserve(&b, 1), PW_ENOMEM);
    pw_buf_reset(&b);
    ck_assert(pw_buf_ok(&b));
    pw_buf_append_str(&b, "ok");
    ck_assert_str_eq(b.data, "ok");
    /* Escaping a length whose worst case cannot be sized also fails cleanly. */
    pw_buf_append_json_escaped(&b, "x", SIZE_MAX / 2);
    ck_assert(!pw_buf_ok(&b));
    ck_assert_str_eq(b.data, "ok");
    pw_buf_free(&b);
}
END_TEST

START_TEST(test_buf_printf_small_and_large)
{
    pw_buf b = PW_BUF_INIT;
    pw_buf_printf(&b, "%s=%d;", "n", 42);
    ck_assert_str_eq(b.data, "n=42;");
    size_t big = 100000;
    char *s = malloc(big + 1);
    memset(s, 'z', big);
    s[big] = '\0';
    pw_buf_printf(&b, "[%s]%llu", s, 18446744073709551615ull);
    ck_assert_uint_eq(b.len, 5 + 1 + big + 1 + 20);
    ck_assert_int_eq(b.data[5], '[');
    ck_assert_int_eq(b.data[5 + big + 1], ']');
    ck_assert_str_eq(b.data + 5 + big + 2, "18446744073709551615");
    ck_assert_uint_eq(strlen(b.data), b.len);
    /* Exactly around the internal small-buffer size. */
    for (size_t n = 120; n < 140; n++) {
        pw_buf_reset(&b);
        pw_buf_printf(&b, "%.*s", (int)n, s);
        ck_assert_uint_eq(b.len, n);
        ck_assert_uint_eq(strlen(b.data), n);
    }
    free(s);
    pw_buf_free(&b);
}
END_TEST

START_TEST(test_buf_append_u64_extremes)
{
    pw_buf b = PW_BUF_INIT;
    pw_buf_append_u64(&b, 0);
    pw_buf_append_char(&b, ' ');
    pw_buf_append_u64(&b, 9);
    pw_buf_append_char(&b, ' ');
    pw_buf_append_u64(&b, 10);
    pw_buf_append_char(&b, ' ');
    pw_buf_append_u64(&b, UINT64_MAX);
    ck_assert_str_eq(b.data, "0 9 10 18446744073709551615");
    pw_buf_free(&b);
}
END_TEST

/* ---- JSON escaping ------------------------------------------------------------- */

START_TEST(test_buf_json_escapes_every_single_byte)
{
    pw_buf decoded = PW_BUF_INIT;
    for (int c = 0; c < 256; c++) {
        char in = (char)c;
        escape_and_decode(&in, 1, &decoded);
        if (c < 0x80) {
            ck_assert_uint_eq(decoded.len, 1);
            ck_assert_int_eq((unsigned char)decoded.data[0], c);
        } else {
            /* A lone byte >= 0x80 is never UTF-8: it becomes U+FFFD. */
            ck_assert_uint_eq(decoded.len, 3);
            ck_assert_int_eq(memcmp(decoded.data, "\xef\xbf\xbd", 3), 0);
        }
    }
    pw_buf_free(&decoded);
}
END_TEST

START_TEST(test_buf_json_escapes_all_bytes_in_one_string)
{
    char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (char)i;
    pw_buf decoded = PW_BUF_INIT;
    escape_and_decode(all, sizeof all, &decoded);
    ck_assert_uint_eq(decoded.len, 128 + 128 * 3);
    ck_assert_int_eq(memcmp(decoded.data, all, 128), 0);
    pw_buf_free(&decoded);
}
END_TEST

START_TEST(test_buf_json_escape_uses_short_forms)
{
    pw_buf b = PW_BUF_INIT;
    pw_buf_append_json_escaped(&b, "\"\\\n\r\t\b\f\x01\x1f/\x7f", 11);
    ck_assert_str_eq(b.data, "\\\"\\\\\\n\\r\\t\\b\\f\\u0001\\u001f/\x7f");
    pw_buf_free(&b);
}
END_TEST

START_TEST(test_buf_json_escape_keeps_valid_utf8_and_replaces_invalid)
{
    static const struct { const char *in; size_t len; const char *want; } cases[] = {
        { "caf\xc3\xa9", 5, "caf\xc3\xa9" },
        { "\xe2\x82\xac", 3, "\xe2\x82\xac" },
        { "\xf0\x9f\x98\x80", 4, "\xf0\x9f\x98\x80" },
        { "\xf4\x8f\xbf\xbf", 4, "\xf4\x8f\xbf\xbf" },           /* U+10FFFF */
        { "\xc3\x28", 2, "\xef\xbf\xbd(" },
        { "\xc0\xaf", 2, "\xef\xbf\xbd\xef\xbf\xbd" },           /* overlong */
        { "\xe0\x80\xaf", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
        { "\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" }, /* surrogate */
        { "\xf4\x90\x80\x80", 4, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
        { "a\xe2\x82", 3, "a\xef\xbf\xbd\xef\xbf\xbd" },          /* truncated at end */
        { "\xff\xfe", 2, "\xef\xbf\xbd\xef\xbf\xbd" },
    };
    pw_buf decoded = PW_BUF_INIT;
    for (size_t i = 0; i < PW_ARRAY_LEN(cases); i++) {
        escape_and_decode(cases[i].in, cases[i].len, &decoded);
        ck_assert_msg(decoded.len == strlen(cases[i].want) &&
                          memcmp(decoded.data, cases[i].want, decoded.len) == 0,
                      "case %zu", i);
    }
    pw_buf_free(&decoded);
}
END_TEST

START_TEST(test_buf_json_escape_of_random_bytes_is_always_json)
{
    char s[64];
    pw_buf decoded = PW_BUF_INIT;
    for (int round = 0; round < 2000; round++) {
        size_t len = rng() % sizeof s;
        for (size_t i = 0; i < len; i++)
            s[i] = (char)rng();
        escape_and_decode(s, len, &decoded);
        /* Valid UTF-8 input comes back unchanged. */
        if (pw_utf8_valid(s, len))
            ck_assert(decoded.len == len && memcmp(decoded.data ? decoded.data : "", s, len) == 0);
    }
    pw_buf_free(&decoded);
}
END_TEST

/* ---- base64 ---------------------------------------------------------------------- */

START_TEST(test_buf_base64_matches_rfc4648_vectors)
{
    static const char *const vectors[][2] = {
        { "", "" },         { "f", "Zg==" },        { "fo", "Zm8=" },         { "foo", "Zm9v" },
        { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
    };
    pw_buf b = PW_BUF_INIT, d = PW_BUF_INIT;
    for (size_t i = 0; i < PW_ARRAY_LEN(vectors); i++) {
        pw_buf_reset(&b);
        pw_buf_append_base64(&b, vectors[i][0], strlen(vectors[i][0]));
        ck_assert_str_eq(b.data, vectors[i][1]);
        pw_buf_reset(&b);
        pw_buf_append_base64url(&b, vectors[i][0], strlen(vectors[i][0]));
        ck_assert_str_eq(b.data, vectors[i][1]);
        pw_buf_reset(&d);
        ck_assert_int_eq(pw_base64_decode(vectors[i][1], strlen(vectors[i][1]), &d), PW_OK);
        ck_assert_uint_eq(d.len, strlen(vectors[i][0]));
        ck_assert_int_eq(memcmp(d.data ? d.data : "", vectors[i][0], d.len), 0);
    }
    pw_buf_free(&b);
    pw_buf_free(&d);
}
END_TEST

START_TEST(test_buf_base64url_uses_dash_and_underscore)
{
    const unsigned char bytes[] = { 0xfb, 0xff, 0xbf };
    pw_buf b = PW_BUF_INIT;
    pw_buf_append_base64(&b, bytes, 3);
    ck_assert_str_eq(b.data, "+/+/");
    pw_buf_reset(&b);
    pw_buf_append_base64url(&b, bytes, 3);
    ck_assert_str_eq(b.data, "-_-_");
    pw_buf_reset(&b);
    pw_buf_append_base64url(&b, bytes, 2);
    ck_assert_str_eq(b.data, "-_8=");
    pw_buf_free(&b);
}
END_TEST

START_TEST(test_buf_base64_round_trips_every_length)
{
    unsigned char in[600];
    pw_buf enc = PW_BUF_INIT, dec = PW_BUF_INIT;
    for (size_t len = 0; len < sizeof in; len++) {
        for (size_t i = 0; i < len; i++)
            in[i] = (unsigned char)rng();
        pw_buf_reset(&enc);
        pw_buf_reset(&dec);
        pw_buf_append_str(&enc, "p:");
        pw_buf_append_base64(&enc, in, len);
        ck_assert_uint_eq(enc.len, 2 + (len + 2) / 3 * 4);
        ck_assert_int_eq(pw_base64_decode(enc.data + 2, enc.len - 2, &dec), PW_OK);
        ck_assert_uint_eq(dec.len, len);
        ck_assert_int_eq(memcmp(dec.data ? dec.data : "", in, len), 0);
    }
    pw_buf_free(&enc);
    pw_buf_free(&dec);
}
END_TEST

START_TEST(test_buf_base64_decode_rejects_malformed_input)
{
    static const char *const bad[] = {
        "Z", "Zg", "Zg=", "Zg===", "Z===", "====", "Zg=a", "Zg==Zg==", "Zm9v!A==", "Zm9v Zg==",
        "Zm9-", "Zm9_", "Zm\n9v",
    };
    pw_buf d = PW_BUF_INIT;
    for (size_t i = 0; i < PW_ARRAY_LEN(bad); i++) {
        pw_buf_reset(&d);
        ck_assert_msg(pw_base64_decode(bad[i], strlen(bad[i]), &d) == PW_EINVAL, "accepted %s", bad[i]);
    }
    pw_buf_reset(&d);
    ck_assert_int_eq(pw_base64_decode("", 0, &d), PW_OK);
    ck_assert_uint_eq(d.len, 0);
    pw_buf_free(&d);
}
END_TEST

/* ---- UTF-8 validation --------------------------------------------------------------- */

START_TEST(test_buf_utf8_validator_edge_cases)
{
    static const struct { const char *s; size_t len; bool valid; } cases[] = {
        { "", 0, true },
        { "plain ascii", 11, true },
        { "\0", 1, true },
        { "\x7f", 1, true },
        { "\xc2\x80", 2, true },              /* U+0080, smallest 2-byte */
        { "\xdf\xbf", 2, true },              /* U+07FF */
        { "\xe0\xa0\x80", 3, true },          /* U+0800, smallest 3-byte */
        { "\xed\x9f\xbf", 3, true },          /* U+D7FF, just below surrogates */
        { "\xee\x80\x80", 3, true },          /* U+E000, just above */
        { "\xef\xbf\xbf", 3, true },          /* U+FFFF */
        { "\xf0\x90\x80\x80", 4, true },      /* U+10000 */
        { "\xf4\x8f\xbf\xbf", 4, true },      /* U+10FFFF */
        { "\x80", 1, false },                 /* lone continuation */
        { "\xbf", 1, false },
        { "\xc0\x80", 2, false },             /* overlong NUL */
        { "\xc1\xbf", 2, false },             /* overlong */
        { "\xe0\x9f\xbf", 3, false },         /* overlong 3-byte */
        { "\xf0\x8f\xbf\xbf", 4, false },     /* overlong 4-byte */
        { "\xed\xa0\x80", 3, false },         /* U+D800 */
        { "\xed\xbf\xbf", 3, false },         /* U+DFFF */
        { "\xf4\x90\x80\x80", 4, false },     /* U+110000 */
        { "\xf5\x80\x80\x80", 4, false },
        { "\xf8\x88\x80\x80\x80", 5, false }, /* 5-byte form */
        { "\xfe", 1, false },
        { "\xff", 1, false },
        { "\xc3", 1, false },                 /* truncated 2-byte */
        { "\xe2\x82", 2, false },             /* truncated 3-byte */
        { "\xf0\x9f\x98", 3, false },         /* truncated 4-byte */
        { "\xc3\x28", 2, false },             /* bad continuation */
        { "\xe2\x28\xa1", 3, false },
        { "\xf0\x9f\x28\x80", 4, false },
        { "ok\xc3\xa9ok", 6, true },
        { "ok\xc3\xa9o\xc3", 6, false },
    };
    for (size_t i = 0; i < PW_ARRAY_LEN(cases); i++)
        ck_assert_msg(pw_utf8_valid(cases[i].s, cases[i].len) == cases[i].valid, "case %zu", i);
}
END_TEST

START_TEST(test_buf_utf8_validator_respects_length)
{
    /* The byte after len is never looked at: a sequence cut by len is invalid
     * even when the rest follows in memory. */
    const char *s = "a\xe2\x82\xac";
    ck_assert(pw_utf8_valid(s, 4));
    ck_assert(!pw_utf8_valid(s, 3));
    ck_assert(!pw_utf8_valid(s, 2));
    ck_assert(pw_utf8_valid(s, 1));
    char *heap = pw_test_exact_copy("\xe2\x82", 2);
    ck_assert_ptr_nonnull(heap);
    ck_assert(!pw_utf8_valid(heap, 2));
    free(heap);
}
END_TEST

START_TEST(test_buf_utf8_validator_agrees_with_every_code_point)
{
    char s[4];
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
        size_t n;
        if (cp < 0x80) {
            s[0] = (char)cp;
            n = 1;
        } else if (cp < 0x800) {
            s[0] = (char)(0xC0 | cp >> 6);
            s[1] = (char)(0x80 | (cp & 63));
            n = 2;
        } else if (cp < 0x10000) {
            s[0] = (char)(0xE0 | cp >> 12);
            s[1] = (char)(0x80 | (cp >> 6 & 63));
            s[2] = (char)(0x80 | (cp & 63));
            n = 3;
        } else {
            s[0] = (char)(0xF0 | cp >> 18);
            s[1] = (char)(0x80 | (cp >> 12 & 63));
            s[2] = (char)(0x80 | (cp >> 6 & 63));
            s[3] = (char)(0x80 | (cp & 63));
            n = 4;
        }
        bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;
        ck_assert_msg(pw_utf8_valid(s, n) == !surrogate, "U+%04X", cp);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("buf");
    TCase *tc = tcase_create("buf");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_buf_grows_and_stays_nul_terminated);
    tcase_add_test(tc, test_buf_reset_keeps_capacity_so_reuse_does_not_allocate);
    tcase_add_test(tc, test_buf_append_of_nothing_is_harmless);
    tcase_add_test(tc, test_buf_failure_is_sticky_until_reset);
    tcase_add_test(tc, test_buf_printf_small_and_large);
    tcase_add_test(tc, test_buf_append_u64_extremes);
    tcase_add_test(tc, test_buf_json_escapes_every_single_byte);
    tcase_add_test(tc, test_buf_json_escapes_all_bytes_in_one_string);
    tcase_add_test(tc, test_buf_json_escape_uses_short_forms);
    tcase_add_test(tc, test_buf_json_escape_keeps_valid_utf8_and_replaces_invalid);
    tcase_add_test(tc, test_buf_json_escape_of_random_bytes_is_always_json);
    tcase_add_test(tc, test_buf_base64_matches_rfc4648_vectors);
    tcase_add_test(tc, test_buf_base64url_uses_dash_and_underscore);
    tcase_add_test(tc, test_buf_base64_round_trips_every_length);
    tcase_add_test(tc, test_buf_base64_decode_rejects_malformed_input);
    tcase_add_test(tc, test_buf_utf8_validator_edge_cases);
    tcase_add_test(tc, test_buf_utf8_validator_respects_length);
    tcase_add_test(tc, test_buf_utf8_validator_agrees_with_every_code_point);
    suite_add_tcase(s, tc);
    return pw_test_run(s);
}

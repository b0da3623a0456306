/*
 * test_log.c: the log line contract (docs/contract.md, "Logs"), checked with the real jq.
 *
 * Lines go to a temp file through pw_log_init; jq then reads the file with
 * -R and parses every line on its own (fromjson), so two objects glued on
 * one line or a line split in two would fail, not slip through.
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "pw.h"
#include "support.h"

static char *log_path;
static int log_fd = -1;

static void setup(void)
{
    log_fd = pw_test_tmpfile("test-log", &log_path);
    ck_assert_int_ge(log_fd, 0);
    pw_log_init("tstage", "tstage-host", PW_LOG_DEBUG, log_fd);
}

static void teardown(void)
{
    pw_log_init("tstage", "tstage-host", PW_LOG_INFO, 1);
    if (log_fd >= 0)
        close(log_fd);
    log_fd = -1;
    if (log_path)
        unlink(log_path);
    free(log_path);
    log_path = NULL;
}

/* Runs `jq <args>` over the log file; returns jq's exit status, its stdout
 * in *out (may be NULL). */
static int jq_log(const char *args, pw_buf *out)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "jq %s < '%s'", args, log_path);
    return pw_test_shell(cmd, NULL, out);
}

/* jq -e over all lines: every line must parse on its own and `filter`,
 * given the array of parsed lines, must be true. */
static void assert_lines(const char *filter)
{
    char args[1024];
    snprintf(args, sizeof args, "-R -n -e '[inputs | fromjson] | %s'", filter);
    pw_buf out = PW_BUF_INIT;
    int rc = jq_log(args, &out);
    ck_assert_msg(rc == 0, "jq %s -> exit %d, output %.200s", args, rc, out.data ? out.data : "");
    pw_buf_free(&out);
}

/* jq's answer (-c) for `expr` applied to the last line, without its LF. */
static void jq_last(const char *expr, char *out, size_t cap)
{
    char args[512];
    snprintf(args, sizeof args, "-R -n -c '[inputs | fromjson] | last | %s'", expr);
    pw_buf got = PW_BUF_INIT;
    ck_assert_int_eq(jq_log(args, &got), 0);
    snprintf(out, cap, "%s", got.data ? got.data : "");
    pw_buf_free(&got);
    size_t n = strlen(out);
    if (n && out[n - 1] == '\n')
        out[n - 1] = '\0';
}

/* Codepoints jq decodes from the last line's field v, as "[1,2,...]". */
static void last_codepoints(char *out, size_t cap) { jq_last(".v | explode", out, cap); }

static char *codepoint_list(const unsigned *cps, size_t n)
{
    pw_buf b = PW_BUF_INIT;
    pw_buf_append_char(&b, '[');
    for (size_t i = 0; i < n; i++) {
        if (i)
            pw_buf_append_char(&b, ',');
        pw_buf_append_u64(&b, cps[i]);
    }
    pw_buf_append_char(&b, ']');
    return b.data;
}

START_TEST(test_log_line_has_keys_in_order_and_rfc3339_ts)
{
    PW_LOG(PW_LOG_INFO, "started", PW_STR("bind", "tcp://127.0.0.1:5557"), PW_INT("count", 3));
    PW_LOG(PW_LOG_ERROR, "failed", PW_STR("reason", "io"));

    FILE *f = fopen(log_path, "r");
    ck_assert_ptr_nonnull(f);
    regex_t re;
    ck_assert_int_eq(regcomp(&re,
        "^\\{\"ts\":\"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z\","
        "\"level\":\"(debug|info|warn|error)\",\"stage\":\"tstage\","
        "\"instance\":\"tstage-host\",\"msg\":\"[^\"]*\"(,|\\})", REG_EXTENDED | REG_NOSUB), 0);
    char line[PW_LOG_LINE_MAX + 2];
    int lines = 0;
    while (fgets(line, sizeof line, f)) {
        ck_assert_msg(regexec(&re, line, 0, NULL, 0) == 0, "bad prefix: %s", line);
        lines++;
    }
    regfree(&re);
    fclose(f);
    ck_assert_int_eq(lines, 2);

    assert_lines("length == 2 and all(.[]; keys_unsorted[0:5] == [\"ts\",\"level\",\"stage\",\"instance\",\"msg\"])");
    assert_lines(".[0] | keys_unsorted == [\"ts\",\"level\",\"stage\",\"instance\",\"msg\",\"bind\",\"count\"]");
    assert_lines(".[0] | .level == \"info\" and .msg == \"started\" and .count == 3");
    assert_lines(".[1] | .level == \"error\" and .reason == \"io\"");
    /* The timestamp is now, in UTC. */
    assert_lines("all(.[]; (.ts | sub(\"\\\\.[0-9]+Z$\"; \"Z\") | fromdateiso8601) - now | . < 60 and . > -60)");
}
END_TEST

START_TEST(test_log_escapes_quotes_backslash_and_all_control_bytes)
{
    char s[40];
    unsigned cps[40];
    size_t n = 0;
    for (unsigned c = 0; c < 0x20; c++)
        s[n] = (char)c, cps[n++] = c;
    const char extra[] = "\"\\/\x7f";
    for (size_t i = 0; i < sizeof extra - 1; i++)
        s[n] = extra[i], cps[n++] = (unsigned char)extra[i];

    PW_LOG(PW_LOG_INFO, "hostile \"msg\" \\ \n\t", PW_STRN("v", s, n));
    char got[1024];
    last_codepoints(got, sizeof got);
    char *want = codepoint_list(cps, n);
    ck_assert_str_eq(got, want);
    free(want);
    jq_last(".msg", got, sizeof got);
    ck_assert_str_eq(got, "\"hostile \\\"msg\\\" \\\\ \\n\\t\"");
}
END_TEST

static const struct utf8_case {
    const char *bytes;
    size_t len;
    unsigned cps[8];
    size_t ncps;
} utf8_cases[] = {
    { "\xff\xfe", 2, { 0xFFFD, 0xFFFD }, 2 },
    { "a\xc0\x80z", 4, { 'a', 0xFFFD, 0xFFFD, 'z' }, 4 },          /* overlong NUL */
    { "\xed\xa0\x80", 3, { 0xFFFD, 0xFFFD, 0xFFFD }, 3 },          /* lone surrogate */
    { "\xf0\x9f\x98\x80", 4, { 0x1F600 }, 1 },                    /* emoji */
    { "\xc3\xa9\xe2\x82\xac", 5, { 0xE9, 0x20AC }, 2 },           /* é € */
    { "x\xe2\x82", 3, { 'x', 0xFFFD, 0xFFFD }, 3 },               /* cut sequence */
    { "\xf4\x90\x80\x80", 4, { 0xFFFD, 0xFFFD, 0xFFFD, 0xFFFD }, 4 }, /* > U+10FFFF */
    { "\x80", 1, { 0xFFFD }, 1 },                                 /* lone continuation */
};

START_TEST(test_log_replaces_invalid_utf8_and_keeps_valid_utf8)
{
    const struct utf8_case *c = &utf8_cases[_i];
    PW_LOG(PW_LOG_WARN, c->bytes, PW_STRN("v", c->bytes, c->len));
    char got[256];
    last_codepoints(got, sizeof got);
    char *want = codepoint_list(c->cps, c->ncps);
    ck_assert_str_eq(got, want);
    free(want);
    /* msg (NUL-terminated path) decodes to the same thing. */
    jq_last(".msg == .v", got, sizeof got);
    ck_assert_str_eq(got, "true");
}
END_TEST

START_TEST(test_log_escaping_matches_buf_escaper)
{
    char hostile[512];
    for (size_t i = 0; i < sizeof hostile; i++)
        hostile[i] = (char)((i * 37 + 11) & 0xFF);
    pw_field f = PW_STRN("v", hostile, sizeof hostile);
    char line[PW_LOG_LINE_MAX];
    size_t len = pw_log_format(line, sizeof line, PW_LOG_INFO, "m", &f, 1);
    ck_assert_uint_gt(len, 0);

    pw_buf b = PW_BUF_INIT;
    pw_buf_append_str(&b, ",\"v\":\"");
    pw_buf_append_json_escaped(&b, hostile, sizeof hostile);
    pw_buf_append_str(&b, "\"}\n");
    ck_assert(pw_buf_ok(&b));
    ck_assert_uint_gt(len, b.len);
    ck_assert_str_eq(line + len - b.len, b.data);
    pw_buf_free(&b);
}
END_TEST

START_TEST(test_log_typed_fields)
{
    PW_LOG(PW_LOG_INFO, "numbers",
           PW_INT("imin", INT64_MIN), PW_INT("imax", INT64_MAX), PW_UINT("umax", UINT64_MAX),
           PW_DBL("tenth", 0.1), PW_DBL("big", 1e300), PW_DBL("tiny", 5e-324),
           PW_DBL("negzero", -0.0), PW_DBL("third", 1.0 / 3.0),
           PW_DBL("nan", NAN), PW_DBL("inf", INFINITY), PW_DBL("ninf", -INFINITY),
           PW_BOOL("yes", true), PW_BOOL("no", false), PW_STR("none", NULL));
    char line[1024];
    FILE *f = fopen(log_path, "r");
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    fclose(f);
    ck_assert_ptr_nonnull(strstr(line,
        ",\"imin\":-9223372036854775808,\"imax\":9223372036854775807,"
        "\"umax\":18446744073709551615,\"tenth\":0.1,\"big\":1e+300,\"tiny\":4.94065645841247e-324,"
        "\"negzero\":-0,\"third\":0.3333333333333333,"
        "\"nan\":null,\"inf\":null,\"ninf\":null,\"yes\":true,\"no\":false,\"none\":null}\n"));
    assert_lines(".[0] | .tenth == 0.1 and .third == (1/3) and .tiny > 0 and .nan == null and .yes == true");
}
END_TEST

START_TEST(test_log_level_filter)
{
    pw_log_init("tstage", "tstage-host", PW_LOG_WARN, log_fd);
    ck_assert(!pw_log_enabled(PW_LOG_DEBUG));
    ck_assert(!pw_log_enabled(PW_LOG_INFO));
    ck_assert(pw_log_enabled(PW_LOG_WARN));
    ck_assert(pw_log_enabled(PW_LOG_ERROR));
    pw_log(PW_LOG_INFO, "hidden", NULL, 0);
    pw_log(PW_LOG_DEBUG, "hidden too", NULL, 0);
    pw_log(PW_LOG_WARN, "shown", NULL, 0);
    pw_log(PW_LOG_ERROR, "shown too", NULL, 0);
    assert_lines("map(.msg) == [\"shown\", \"shown too\"] and map(.level) == [\"warn\", \"error\"]");
}
END_TEST

START_TEST(test_log_level_parse_and_name)
{
    static const char *const names[] = { "debug", "info", "warn", "error" };
    for (int i = 0; i < 4; i++) {
        pw_log_level l = PW_LOG_ERROR;
        ck_assert_int_eq(pw_log_level_parse(names[i], &l), PW_OK);
        ck_assert_int_eq((int)l, i);
        ck_assert_str_eq(pw_log_level_name(l), names[i]);
    }
    pw_log_level l;
    ck_assert_int_eq(pw_log_level_parse("INFO", &l), PW_EINVAL);
    ck_assert_int_eq(pw_log_level_parse("warning", &l), PW_EINVAL);
    ck_assert_int_eq(pw_log_level_parse("", &l), PW_EINVAL);
    ck_assert_int_eq(pw_log_level_parse(NULL, &l), PW_EINVAL);
}
END_TEST

START_TEST(test_log_truncates_long_strings_to_valid_json)
{
    size_t big = 100000;
    char *s = malloc(big + 1);
    for (size_t i = 0; i < big; i++)
        s[i] = "ab\"\\\n\x01\xc3\xa9\xff"[i % 9];
    s[big] = '\0';
    PW_LOG(PW_LOG_WARN, s, PW_STR("raw", s), PW_STR("reason", "oversize"),
           PW_STR("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736"), PW_UINT("n", 7));
    free(s);
    FILE *f = fopen(log_path, "r");
    char line[PW_LOG_LINE_MAX + 2];
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    ck_assert_ptr_null(fgets(line + strlen(line), 2, f)); /* exactly one line */
    fclose(f);
    ck_assert_uint_le(strlen(line), PW_LOG_LINE_MAX - 1);
    ck_assert_uint_gt(strlen(line), PW_LOG_LINE_MAX - 64); /* the room was used */
    /* Short fields after the huge ones survive intact. */
    assert_lines("length == 1 and (.[0] | .truncated == true and .reason == \"oversize\" and "
                 ".trace_id == \"4bf92f3577b34da6a3ce929d0e0e4736\" and .n == 7 and "
                 "(.msg | length) > 1000 and (.raw | length) > 10)");
}
END_TEST

/* A jq filter: more than `min` lines whose msg starts with codepoint cp,
 * and in each of them msg and v consist of cp only. */
static const char *first_cp_all_same(unsigned cp, int min)
{
    static char filter[512];
    snprintf(filter, sizeof filter,
             "map(select((.msg | explode | .[0]) == %u)) | length > %d and "
             "all(.[]; (.msg + (.v // \"\")) | explode | all(. == %u))", cp, min, cp);
    return filter;
}

START_TEST(test_log_truncates_at_utf8_and_escape_boundaries)
{
    /* Every cap from "too small" to "plenty": whatever comes out is one
     * whole line that parses, and a cut never leaves half a character. */
    static const char *const fills[] = {
        "\xf0\x9f\x98\x80",       /* 4-byte emoji: no U+FFFD may appear */
        "\xe2\x82\xac",           /* 3 bytes */
        "\x01",                   /* \u0001: 6-byte escape */
        "\"",                     /* \" */
    };
    char s[3000];
    for (size_t k = 0; k < PW_ARRAY_LEN(fills); k++) {
        size_t fl = strlen(fills[k]), n = 0;
        while (n + fl < sizeof s) {
            memcpy(s + n, fills[k], fl);
            n += fl;
        }
        s[n] = '\0';
        int emitted = 0;
        for (size_t cap = 0; cap < 700; cap++) {
            char line[800];
            memset(line, 'Z', sizeof line);
            pw_field f[] = { PW_STRN("v", s, n), PW_STR("after", "kept") };
            size_t len = pw_log_format(line, cap, PW_LOG_INFO, s, f, 2);
            ck_assert_uint_eq(line[cap], 'Z'); /* nothing past cap */
            if (len == 0)
                continue;
            ck_assert_uint_lt(len, cap);
            ck_assert_int_eq(line[len], '\0');
            ck_assert_int_eq(line[len - 1], '\n');
            ck_assert_ptr_eq(memchr(line, '\n', len), line + len - 1);
            /* Once there is any real room, the short field after the two
             * huge ones keeps its whole value. */
            if (cap >= 300)
                ck_assert_ptr_nonnull(strstr(line, ",\"after\":\"kept\",\"truncated\":true}\n"));
            ck_assert_int_eq(write(log_fd, line, len), (ssize_t)len);
            emitted++;
        }
        ck_assert_int_gt(emitted, 500); /* only tiny caps may refuse */
    }
    /* Emoji lines: every char of msg and v is the emoji; nothing got split. */
    assert_lines("all(.[]; .truncated == true and .stage == \"tstage\" and .instance == \"tstage-host\")");
    assert_lines(first_cp_all_same(128512, 500));
    assert_lines(first_cp_all_same(1, 500));
    assert_lines(first_cp_all_same(34, 500));
}
END_TEST

START_TEST(test_log_format_returns_line_without_writing)
{
    char line[256];
    pw_field f = PW_INT("count", 5);
    size_t len = pw_log_format(line, sizeof line, PW_LOG_DEBUG, "hello", &f, 1);
    ck_assert_uint_eq(len, strlen(line));
    ck_assert_ptr_nonnull(strstr(line, "\"level\":\"debug\",\"stage\":\"tstage\","
                                       "\"instance\":\"tstage-host\",\"msg\":\"hello\",\"count\":5}\n"));
    ck_assert_int_eq(lseek(log_fd, 0, SEEK_END), 0);
    ck_assert_uint_eq(pw_log_format(line, 0, PW_LOG_INFO, "x", NULL, 0), 0);
}
END_TEST

START_TEST(test_log_preserves_errno)
{
    errno = ENOSPC;
    PW_LOG(PW_LOG_ERROR, "write failed", PW_STR("reason", "io"));
    ck_assert_int_eq(errno, ENOSPC);
}
END_TEST

/* ---- threads ----------------------------------------------------------- */

#define THREADS 4
#define LINES_PER_THREAD 2000

static char long_pad[6000];

static void *writer_thread(void *arg)
{
    long id = (long)(intptr_t)arg;
    for (int i = 0; i < LINES_PER_THREAD; i++) {
        /* Every 50th line is longer than PIPE_BUF, where a pipe write is
         * no longer atomic by itself. */
        if (i % 50 == 0)
            PW_LOG(PW_LOG_INFO, "tick", PW_INT("thread", id), PW_INT("seq", i), PW_STR("pad", long_pad));
        else
            PW_LOG(PW_LOG_INFO, "tick", PW_INT("thread", id), PW_INT("seq", i));
    }
    return NULL;
}

typedef struct drain_args {
    int from, to;
} drain_args;

static void *drain_thread(void *arg)
{
    drain_args *d = arg;
    char buf[65536];
    ssize_t n;
    while ((n = read(d->from, buf, sizeof buf)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        ck_assert_int_gt(n, 0);
        ck_assert_int_eq(write(d->to, buf, (size_t)n), n);
    }
    return NULL;
}

START_TEST(test_log_threads_never_interleave_lines)
{
    memset(long_pad, 'p', sizeof long_pad - 1);
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    drain_args d = { p[0], log_fd };
    pthread_t drain, writers[THREADS];
    ck_assert_int_eq(pthread_create(&drain, NULL, drain_thread, &d), 0);
    pw_log_init("tstage", "tstage-host", PW_LOG_INFO, p[1]);
    for (long t = 0; t < THREADS; t++)
        ck_assert_int_eq(pthread_create(&writers[t], NULL, writer_thread, (void *)(intptr_t)t), 0);
    for (int t = 0; t < THREADS; t++)
        pthread_join(writers[t], NULL);
    pw_log_init("tstage", "tstage-host", PW_LOG_INFO, log_fd);
    close(p[1]);
    pthread_join(drain, NULL);
    close(p[0]);

    /* Every line parses alone, none is missing, and each thread's lines
     * appear complete and in its own order. */
    assert_lines("length == 8000 and (group_by(.thread) | length == 4 and "
                 "all(.[]; map(.seq) == [range(2000)]))");
    assert_lines("map(select(.pad)) | length == 160 and all(.[]; .pad | length == 5999)");
}
END_TEST

/* ---- rate limiter ------------------------------------------------------ */

START_TEST(test_log_limiter_lets_one_line_per_interval)
{
    static pw_log_limiter lim = PW_LOG_LIMITER_INIT(3600 * 1000); /* an hour */
    for (int i = 0; i < 10; i++)
        PW_LOG_LIMITED(&lim, PW_LOG_WARN, "push failed", PW_INT("i", i));
    assert_lines("length == 1 and (.[0] | .i == 0 and has(\"suppressed\") == false)");
    ck_assert_uint_eq(atomic_load(&lim.suppressed), 9);

    /* The interval passes (the deadline is the limiter's public state). */
    atomic_store(&lim.next_ns, pw_now_ns());
    PW_LOG_LIMITED(&lim, PW_LOG_WARN, "push failed", PW_INT("i", 10));
    PW_LOG_LIMITED(&lim, PW_LOG_WARN, "push failed", PW_INT("i", 11));
    assert_lines("length == 2 and (.[1] | .i == 10 and .suppressed == 9 and "
                 "(keys_unsorted | .[-1] == \"suppressed\"))");
    ck_assert_uint_eq(atomic_load(&lim.suppressed), 1);
}
END_TEST

START_TEST(test_log_limiter_with_zero_interval_passes_everything)
{
    pw_log_limiter lim = PW_LOG_LIMITER_INIT(0);
    for (int i = 0; i < 5; i++)
        PW_LOG_LIMITED(&lim, PW_LOG_WARN, "w", PW_INT("i", i));
    assert_lines("map(.i) == [0,1,2,3,4] and all(.[]; has(\"suppressed\") == false)");
}
END_TEST

START_TEST(test_log_limiter_ignores_filtered_levels)
{
    pw_log_init("tstage", "tstage-host", PW_LOG_WARN, log_fd);
    pw_log_limiter lim = PW_LOG_LIMITER_INIT(3600 * 1000);
    pw_log_limited(&lim, PW_LOG_INFO, "below level", NULL, 0);
    ck_assert_uint_eq(atomic_load(&lim.next_ns), 0);
    ck_assert_uint_eq(atomic_load(&lim.suppressed), 0);
    pw_log_limited(&lim, PW_LOG_WARN, "first", NULL, 0);
    assert_lines("map(.msg) == [\"first\"]");
}
END_TEST

#define LIMITED_CALLS 20000

static pw_log_limiter shared_lim = PW_LOG_LIMITER_INIT(0);

static void *limited_thread(void *arg)
{
    (void)arg;
    for (int i = 0; i < LIMITED_CALLS; i++)
        pw_log_limited(&shared_lim, PW_LOG_WARN, "hot", NULL, 0);
    return NULL;
}

START_TEST(test_log_limiter_counts_every_drop_under_threads)
{
    shared_lim.interval_ns = 200000; /* 0.2 ms: a mix of passes and drops */
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, limited_thread, NULL), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    char args[256];
    snprintf(args, sizeof args,
             "-R -n -e '[inputs | fromjson] | (length + (map(.suppressed // 0) | add)) + %llu == %d'",
             (unsigned long long)atomic_load(&shared_lim.suppressed), THREADS * LIMITED_CALLS);
    ck_assert_int_eq(jq_log(args, NULL), 0);
    assert_lines("length >= 1 and length < 80000");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_log_line_has_keys_in_order_and_rfc3339_ts);
    tcase_add_test(tc, test_log_escapes_quotes_backslash_and_all_control_bytes);
    tcase_add_loop_test(tc, test_log_replaces_invalid_utf8_and_keeps_valid_utf8, 0,
                        (int)PW_ARRAY_LEN(utf8_cases));
    tcase_add_test(tc, test_log_escaping_matches_buf_escaper);
    tcase_add_test(tc, test_log_typed_fields);
    tcase_add_test(tc, test_log_level_filter);
    tcase_add_test(tc, test_log_level_parse_and_name);
    tcase_add_test(tc, test_log_truncates_long_strings_to_valid_json);
    tcase_add_test(tc, test_log_truncates_at_utf8_and_escape_boundaries);
    tcase_add_test(tc, test_log_format_returns_line_without_writing);
    tcase_add_test(tc, test_log_preserves_errno);
    tcase_add_test(tc, test_log_threads_never_interleave_lines);
    tcase_add_test(tc, test_log_limiter_lets_one_line_per_interval);
    tcase_add_test(tc, test_log_limiter_with_zero_interval_passes_everything);
    tcase_add_test(tc, test_log_limiter_ignores_filtered_levels);
    tcase_add_test(tc, test_log_limiter_counts_every_drop_under_threads);
    suite_add_tcase(s, tc);
    return pw_test_run(s);
}

/*
 * log.c: JSON-lines logging that never allocates.
 *
 * A line is built in a fixed buffer (pw_log: on the stack) in two passes.
 * The first pass only measures: the "skeleton" (braces, keys, quotes,
 * numbers) and the escaped length of every string value.  When the whole
 * line fits, the second pass writes it as measured.  When it does not, the
 * second pass gives each string a byte budget: everything that remains to
 * be written later keeps its skeleton plus up to TRUNC_MIN_SHARE bytes of
 * its value reserved, the current string gets the rest.  So a huge `msg`
 * is cut but a short `reason` or `trace_id` after it survives.  A string is
 * only ever cut between escape units (a whole \uXXXX, a whole UTF-8
 * sequence), so the result is valid JSON and valid UTF-8; a line that was
 * cut ends with "truncated":true so nobody mistakes it for the whole story.
 * Fields whose key alone no longer fits are dropped (same marker).  ts,
 * level, stage and instance are never cut; a buffer too small for them
 * gets no line at all (length 0).
 *
 * Escaping is buf.c's, unit by unit (pw_json_escape_unit, the same unit
 * pw_buf_append_json_escaped writes): quote, backslash and control bytes
 * are escaped, invalid UTF-8 becomes U+FFFD; one definition for both.
 *
 * Threads: stage, instance, fd and level are set by pw_log_init before other
 * threads exist and only read afterwards (fd and level are atomics so that
 * tests may re-initialise between cases).  Writing holds a mutex around the
 * write(2) loop: the kernel only promises atomic pipe writes up to PIPE_BUF
 * (4096 bytes) and a line may be PW_LOG_LINE_MAX long, so without it a
 * partial write could let another thread's line land in the middle of ours.
 * Formatting happens outside the lock.
 *
 * The rate limiter is lock-free: one compare-and-swap on the deadline
 * decides which caller gets the slot; losers count themselves in
 * `suppressed`, which the winner swaps to zero.  No dropped line is ever
 * lost from the count: it is reported by exactly one later line (or is still
 * pending in the limiter).
 */
#include "log.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "pw.h"

/* Bytes kept of stage and instance (instance names are short labels; this
 * also bounds the fixed part of every line). */
#define NAME_COPY_MAX 256
/* Value bytes reserved for each later string when a line must be cut. */
#define TRUNC_MIN_SHARE 128
/* How long a write to a non-blocking fd may wait for room before the rest
 * of the line is dropped: logging must not hang the stage forever. */
#define WRITE_STALL_MS 1000

static const char TRUNC_TAIL[] = ",\"truncated\":true}\n";
#define TRUNC_TAIL_LEN (sizeof TRUNC_TAIL - 1)

static char g_stage[NAME_COPY_MAX];
static char g_instance[NAME_COPY_MAX];
static _Atomic int g_min_level = PW_LOG_INFO;
static _Atomic int g_fd = 1;
static pthread_mutex_t g_write_lock = PTHREAD_MUTEX_INITIALIZER;

const char *const pw_log_level_names[] = { "debug", "info", "warn", "error", NULL };
#define LEVEL_COUNT (PW_ARRAY_LEN(pw_log_level_names) - 1)
_Static_assert(PW_ARRAY_LEN(pw_log_level_names) - 1 == PW_LOG_ERROR + 1, "one name per level");

int pw_log_level_parse(const char *s, pw_log_level *out)
{
    if (!s)
        return PW_EINVAL;
    for (size_t i = 0; i < LEVEL_COUNT; i++) {
        if (strcmp(s, pw_log_level_names[i]) == 0) {
            *out = (pw_log_level)i;
            return PW_OK;
        }
    }
    return PW_EINVAL;
}

const char *pw_log_level_name(pw_log_level level)
{
    if ((unsigned)level < LEVEL_COUNT)
        return pw_log_level_names[level];
    return "unknown";
}

/* Copies at most NAME_COPY_MAX-1 bytes, never ending inside a UTF-8
 * sequence. */
static void copy_name(char *dst, const char *src)
{
    if (!src)
        src = "";
    size_t n = strlen(src);
    if (n >= NAME_COPY_MAX) {
        n = NAME_COPY_MAX - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

void pw_log_init(const char *stage, const char *instance, pw_log_level min_level, int fd)
{
    copy_name(g_stage, stage);
    copy_name(g_instance, instance);
    atomic_store(&g_min_level, (int)min_level);
    atomic_store(&g_fd, fd);
}

bool pw_log_enabled(pw_log_level level)
{
    return (int)level >= atomic_load_explicit(&g_min_level, memory_order_relaxed);
}

/* ---- escaping ---------------------------------------------------------- */

static size_t escaped_len(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t total = 0;
    for (size_t i = 0; i < len;) {
        char unit[6];
        size_t used;
        total += pw_json_escape_unit(p + i, len - i, unit, &used);
        i += used;
    }
    return total;
}

/* ---- the line writer --------------------------------------------------- */

typedef struct line_writer {
    char *buf;
    size_t limit; /* bytes that may be written (the NUL and tail excluded) */
    size_t len;
    bool overflow; /* a put did not fit: the plan was wrong, emit nothing */
} line_writer;

static void put(line_writer *w, const char *s, size_t n)
{
    if (w->overflow || n > w->limit - w->len) {
        w->overflow = true;
        return;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
}

/* Writes whole escape units of s while they fit in `budget` bytes. */
static void put_escaped(line_writer *w, const char *s, size_t len, size_t budget)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t used = 0;
    for (size_t i = 0; i < len;) {
        char unit[6];
        size_t consumed;
        size_t n = pw_json_escape_unit(p + i, len - i, unit, &consumed);
        if (n > budget - used)
            break;
        put(w, unit, n);
        used += n;
        i += consumed;
    }
}

/* JSON has no inf/nan: those become null. */
static size_t format_double(double d, char out[40])
{
    if (!isfinite(d)) {
        memcpy(out, "null", 4);
        return 4;
    }
    return pw_format_double(out, d);
}

static size_t format_ts(char out[40])
{
    struct timespec t;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &t);
    gmtime_r(&t.tv_sec, &tm);
    int n = snprintf(out, 40, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (long)(t.tv_nsec / 1000000));
    if (n < 0)
        return 0;
    return (size_t)n < 38 ? (size_t)n : 38; /* quote_literal's limit */
}

/* One key/value of the line, whatever its source (header or field). */
typedef struct line_item {
    const char *key;
    bool is_string;  /* value is s/len, quoted and escaped */
    const char *s;
    size_t len;
    char text[40];   /* otherwise the literal JSON value */
    size_t text_len;
} line_item;

/* "s" for s known to need no escaping and to fit in 38 bytes. */
static size_t quote_literal(char out[40], const char *s, size_t len)
{
    out[0] = '"';
    memcpy(out + 1, s, len);
    out[len + 1] = '"';
    return len + 2;
}

/* Items 0..4 are ts, level, stage, instance, msg; then the fields; then
 * `extra` (the limiter's "suppressed") when given. */
#define HEADER_ITEMS 5
#define IDENTITY_ITEMS 4 /* ts, level, stage, instance */

static void get_item(size_t i, line_item *it, const char *ts, size_t ts_len,
                     pw_log_level level, const char *msg, const pw_field *fields,
                     size_t nfields, const pw_field *extra)
{
    it->is_string = false;
    it->text_len = 0;
    switch (i) {
    case 0: /* ts and level are literals: never cut, never escaped */
        it->key = "ts";
        it->text_len = quote_literal(it->text, ts, ts_len);
        return;
    case 1: {
        const char *name = pw_log_level_name(level);
        it->key = "level";
        it->text_len = quote_literal(it->text, name, strlen(name));
        return;
    }
    case 2:
        it->key = "stage";
        it->is_string = true;
        it->s = g_stage;
        it->len = strlen(g_stage);
        return;
    case 3:
        it->key = "instance";
        it->is_string = true;
        it->s = g_instance;
        it->len = strlen(g_instance);
        return;
    case 4:
        it->key = "msg";
        it->is_string = true;
        it->s = msg ? msg : "";
        it->len = strlen(it->s);
        return;
    default:
        break;
    }
    const pw_field *f = i - HEADER_ITEMS < nfields ? &fields[i - HEADER_ITEMS] : extra;
    it->key = f->key ? f->key : "_";
    int n = 0;
    switch (f->type) {
    case PW_FIELD_STR:
        if (f->v.s) {
            it->is_string = true;
            it->s = f->v.s;
            it->len = f->has_len ? f->len : strlen(f->v.s);
            return;
        }
        memcpy(it->text, "null", 4);
        it->text_len = 4;
        return;
    case PW_FIELD_INT:
        n = snprintf(it->text, sizeof it->text, "%lld", f->v.i);
        break;
    case PW_FIELD_UINT:
        n = snprintf(it->text, sizeof it->text, "%llu", f->v.u);
        break;
    case PW_FIELD_DOUBLE:
        it->text_len = format_double(f->v.d, it->text);
        return;
    case PW_FIELD_BOOL:
        n = snprintf(it->text, sizeof it->text, "%s", f->v.b ? "true" : "false");
        break;
    default:
        n = snprintf(it->text, sizeof it->text, "null");
        break;
    }
    it->text_len = n < 0 ? 0 : (size_t)n;
}

/* `{"key":` or `,"key":` plus the quotes or literal of the value. */
static size_t item_skeleton(const line_item *it)
{
    size_t key_len = escaped_len(it->key, strlen(it->key));
    return 1 + 1 + key_len + 2 + (it->is_string ? 2 : it->text_len);
}

static void put_item(line_writer *w, size_t i, const line_item *it, size_t budget)
{
    put(w, i == 0 ? "{\"" : ",\"", 2);
    put_escaped(w, it->key, strlen(it->key), SIZE_MAX);
    put(w, "\":", 2);
    if (it->is_string) {
        put(w, "\"", 1);
        put_escaped(w, it->s, it->len, budget);
        put(w, "\"", 1);
    } else {
        put(w, it->text, it->text_len);
    }
}

static size_t format_line(char *buf, size_t cap, pw_log_level level, const char *msg,
                          const pw_field *fields, size_t nfields, const pw_field *extra)
{
    if (!buf || cap == 0)
        return 0;
    if (!fields)
        nfields = 0;
    char ts[40];
    size_t ts_len = format_ts(ts);
    size_t nitems = HEADER_ITEMS + nfields + (extra ? 1 : 0);

    /* Pass one: measure. */
    size_t skeleton = 0, strings = 0, reserve = 0;
    for (size_t i = 0; i < nitems; i++) {
        line_item it;
        get_item(i, &it, ts, ts_len, level, msg, fields, nfields, extra);
        skeleton += item_skeleton(&it);
        if (it.is_string) {
            size_t e = escaped_len(it.s, it.len);
            strings += e;
            reserve += e < TRUNC_MIN_SHARE ? e : TRUNC_MIN_SHARE;
        }
    }

    /* The common case: everything fits, write it as measured. */
    if (skeleton + strings + 2 < cap) {
        line_writer w = { buf, cap - 1, 0, false };
        for (size_t i = 0; i < nitems; i++) {
            line_item it;
            get_item(i, &it, ts, ts_len, level, msg, fields, nfields, extra);
            put_item(&w, i, &it, SIZE_MAX);
        }
        put(&w, "}\n", 2);
        if (w.overflow)
            return 0;
        buf[w.len] = '\0';
        return w.len;
    }

    /* Pass two, cutting: the tail and the NUL are held back from the start. */
    if (cap < TRUNC_TAIL_LEN + 1)
        return 0;
    line_writer w = { buf, cap - 1 - TRUNC_TAIL_LEN, 0, false };
    for (size_t i = 0; i < nitems; i++) {
        line_item it;
        get_item(i, &it, ts, ts_len, level, msg, fields, nfields, extra);
        size_t skel = item_skeleton(&it);
        skeleton -= skel;
        size_t min_share = 0;
        if (it.is_string) {
            size_t e = escaped_len(it.s, it.len);
            min_share = e < TRUNC_MIN_SHARE ? e : TRUNC_MIN_SHARE;
        }
        reserve -= min_share;
        if (i < IDENTITY_ITEMS) {
            /* Who logged is never cut: a line with half a stage name
             * would be counted against the wrong stage. */
            size_t whole = skel + (it.is_string ? escaped_len(it.s, it.len) : 0);
            if (whole > w.limit - w.len)
                return 0; /* cap cannot hold even an empty line */
            put_item(&w, i, &it, SIZE_MAX);
            continue;
        }
        if (skel > w.limit - w.len) {
            if (i < HEADER_ITEMS)
                return 0;
            break; /* drop this field and the rest */
        }
        size_t budget = 0;
        if (it.is_string) {
            size_t room = w.limit - w.len - skel;
            size_t later = skeleton + reserve;
            /* When even the later skeletons cannot fit, some fields will be
             * dropped anyway; keep a share of the room for this value. */
            budget = room > later ? room - later : room / 4;
        }
        put_item(&w, i, &it, budget);
    }
    w.limit += TRUNC_TAIL_LEN;
    put(&w, TRUNC_TAIL, TRUNC_TAIL_LEN);
    if (w.overflow)
        return 0;
    buf[w.len] = '\0';
    return w.len;
}

size_t pw_log_format(char *buf, size_t cap, pw_log_level level, const char *msg,
                     const pw_field *fields, size_t nfields)
{
    return format_line(buf, cap, level, msg, fields, nfields, NULL);
}

static void write_line(const char *p, size_t len)
{
    int fd = atomic_load_explicit(&g_fd, memory_order_relaxed);
    pthread_mutex_lock(&g_write_lock);
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pfd = { .fd = fd, .events = POLLOUT };
            if (poll(&pfd, 1, WRITE_STALL_MS) > 0)
                continue;
        }
        break; /* there is nowhere to report a failing log; drop the rest */
    }
    pthread_mutex_unlock(&g_write_lock);
}

static void log_line(pw_log_level level, const char *msg, const pw_field *fields,
                     size_t nfields, const pw_field *extra)
{
    /* Callers log right before reporting errno-based failures. */
    int saved_errno = errno;
    char line[PW_LOG_LINE_MAX];
    size_t len = format_line(line, sizeof line, level, msg, fields, nfields, extra);
    if (len)
        write_line(line, len);
    errno = saved_errno;
}

void pw_log(pw_log_level level, const char *msg, const pw_field *fields, size_t nfields)
{
    if (!pw_log_enabled(level))
        return;
    log_line(level, msg, fields, nfields, NULL);
}

void pw_log_limited(pw_log_limiter *lim, pw_log_level level, const char *msg,
                    const pw_field *fields, size_t nfields)
{
    /* Filtered lines neither take the slot nor count as suppressed. */
    if (!pw_log_enabled(level))
        return;
    uint64_t now = pw_now_ns();
    uint64_t next = atomic_load_explicit(&lim->next_ns, memory_order_relaxed);
    if (now < next ||
        !atomic_compare_exchange_strong(&lim->next_ns, &next, now + lim->interval_ns)) {
        atomic_fetch_add(&lim->suppressed, 1);
        return;
    }
    uint64_t dropped = atomic_exchange(&lim->suppressed, 0);
    if (dropped) {
        pw_field extra = PW_UINT("suppressed", dropped);
        log_line(level, msg, fields, nfields, &extra);
    } else {
        log_line(level, msg, fields, nfields, NULL);
    }
}

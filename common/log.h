/*
 * log.h: structured JSON-lines logging to stdout (docs/contract.md, "Logs").
 *
 * Every line is one JSON object: ts (RFC 3339 UTC, milliseconds), level,
 * stage, instance, msg, then the caller's typed fields in order.  A line is
 * formatted into a stack buffer, then written under a mutex by a write(2)
 * loop (a pipe only takes PIPE_BUF bytes atomically), so lines from
 * different threads never interleave.  Keys and string values are escaped
 * (quotes, backslashes, control characters; invalid UTF-8 becomes U+FFFD):
 * any input produces a line `jq` accepts.  Lines longer than PW_LOG_LINE_MAX
 * have their string fields truncated, never split.
 *
 * Threads: pw_log_init() once from main before other threads start; then
 * pw_log*() from any thread.  Never allocates.
 */
#ifndef PW_LOG_H
#define PW_LOG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PW_LOG_LINE_MAX 8192

typedef enum pw_log_level {
    PW_LOG_DEBUG = 0,
    PW_LOG_INFO = 1,
    PW_LOG_WARN = 2,
    PW_LOG_ERROR = 3,
} pw_log_level;

/* The level names, indexed by pw_log_level, NULL-terminated (the
 * --log-level choices). */
extern const char *const pw_log_level_names[];
/* "debug" | "info" | "warn" | "error" -> level; PW_OK or PW_EINVAL. */
int pw_log_level_parse(const char *s, pw_log_level *out);
const char *pw_log_level_name(pw_log_level level);

/* stage and instance are copied.  fd is where lines go (1 = stdout). */
void pw_log_init(const char *stage, const char *instance, pw_log_level min_level, int fd);
bool pw_log_enabled(pw_log_level level);

typedef enum pw_field_type {
    PW_FIELD_STR,
    PW_FIELD_INT,
    PW_FIELD_UINT,
    PW_FIELD_DOUBLE, /* non-finite values are written as null */
    PW_FIELD_BOOL,
} pw_field_type;

typedef struct pw_field {
    const char *key;   /* must be a plain ASCII identifier; not escaped */
    pw_field_type type;
    union {
        const char *s; /* NULL is written as null */
        long long i;
        unsigned long long u;
        double d;
        bool b;
    } v;
    size_t len;        /* for PW_FIELD_STR with PW_FIELD_STR_LEN: byte length */
    bool has_len;      /* false: s is NUL-terminated */
} pw_field;

#define PW_STR(k, x) ((pw_field){ .key = (k), .type = PW_FIELD_STR, .v.s = (x) })
#define PW_STRN(k, x, n) ((pw_field){ .key = (k), .type = PW_FIELD_STR, .v.s = (x), .len = (n), .has_len = true })
#define PW_INT(k, x) ((pw_field){ .key = (k), .type = PW_FIELD_INT, .v.i = (long long)(x) })
#define PW_UINT(k, x) ((pw_field){ .key = (k), .type = PW_FIELD_UINT, .v.u = (unsigned long long)(x) })
#define PW_DBL(k, x) ((pw_field){ .key = (k), .type = PW_FIELD_DOUBLE, .v.d = (double)(x) })
#define PW_BOOL(k, x) ((pw_field){ .key = (k), .type = PW_FIELD_BOOL, .v.b = (x) })

void pw_log(pw_log_level level, const char *msg, const pw_field *fields, size_t nfields);

/* Formats a line (with trailing '\n') into buf; returns its length.  Used by
 * pw_log and by tests/benchmarks that want the text without writing it. */
size_t pw_log_format(char *buf, size_t cap, pw_log_level level, const char *msg,
                     const pw_field *fields, size_t nfields);

/* PW_LOG(PW_LOG_INFO, "started", PW_STR("bind", ep), PW_INT("count", n)); */
#define PW_LOG(level, msg, ...)                                                     \
    do {                                                                            \
        if (pw_log_enabled(level)) {                                                \
            const pw_field pw_log_fields_[] = { { 0 }, __VA_ARGS__ };               \
            pw_log((level), (msg), pw_log_fields_ + 1,                              \
                   sizeof pw_log_fields_ / sizeof pw_log_fields_[0] - 1);           \
        }                                                                           \
    } while (0)

/*
 * Rate limiting for repeated warnings: one limiter per kind of event
 * (usually a static at the call site).  At most one line per interval gets
 * through; the next line that does carries "suppressed": N, the number of
 * lines dropped since the previous one.  Lock-free; any thread.
 */
typedef struct pw_log_limiter {
    uint64_t interval_ns;
    _Atomic uint64_t next_ns;
    _Atomic uint64_t suppressed;
} pw_log_limiter;

#define PW_LOG_LIMITER_INIT(interval_ms) { (uint64_t)(interval_ms) * 1000000u, 0, 0 }

void pw_log_limited(pw_log_limiter *lim, pw_log_level level, const char *msg,
                    const pw_field *fields, size_t nfields);

#define PW_LOG_LIMITED(lim, level, msg, ...)                                        \
    do {                                                                            \
        if (pw_log_enabled(level)) {                                                \
            const pw_field pw_log_fields_[] = { { 0 }, __VA_ARGS__ };               \
            pw_log_limited((lim), (level), (msg), pw_log_fields_ + 1,               \
                           sizeof pw_log_fields_ / sizeof pw_log_fields_[0] - 1);   \
        }                                                                           \
    } while (0)

#endif

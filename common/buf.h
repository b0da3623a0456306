/*
 * buf.h: a growable byte buffer and the small encoders built on it.
 *
 * A pw_buf owns its bytes (free with pw_buf_free).  The hot paths reuse one
 * buffer per loop: pw_buf_reset() keeps the capacity, so after warm-up an
 * append does not allocate.  Growth failure is sticky: once an append could
 * not allocate, `failed` is set, later appends are ignored and the caller
 * checks pw_buf_ok() once at the end instead of after every append.
 *
 * Not thread-safe; a buffer belongs to one thread at a time.
 */
#ifndef PW_BUF_H
#define PW_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pw_buf {
    char *data;   /* NUL-terminated when non-NULL (the NUL is not counted) */
    size_t len;
    size_t cap;
    bool failed;  /* an allocation failed; contents are incomplete */
} pw_buf;

#define PW_BUF_INIT { NULL, 0, 0, false }

void pw_buf_free(pw_buf *b);
static inline void pw_buf_reset(pw_buf *b) { b->len = 0; b->failed = false; if (b->data) b->data[0] = '\0'; }
static inline bool pw_buf_ok(const pw_buf *b) { return !b->failed; }

/* Makes room for `extra` more bytes; returns PW_OK or PW_ENOMEM. */
int pw_buf_reserve(pw_buf *b, size_t extra);
void pw_buf_append(pw_buf *b, const void *data, size_t len);
void pw_buf_append_str(pw_buf *b, const char *s);
void pw_buf_append_char(pw_buf *b, char c);
void pw_buf_printf(pw_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pw_buf_append_u64(pw_buf *b, uint64_t v);
/* Appends v as printf's %.6f would (timestamps: "1764020000.123456"), fast
 * for 0 <= v < 9e9; NaN and infinities become null, so the text is JSON. */
void pw_buf_append_fixed6(pw_buf *b, double v);
/* Writes v in decimal at o (at most 20 bytes, no NUL); returns the end. */
char *pw_put_u64(char *o, uint64_t v);

/* Appends `s` as the inside of a JSON string (no quotes): escapes quote,
 * backslash and control characters; bytes that are not valid UTF-8 become
 * U+FFFD, so the result is always valid JSON text. */
void pw_buf_append_json_escaped(pw_buf *b, const char *s, size_t len);

/* One escape unit of the same escaping, for writers into fixed buffers
 * that may only cut a string between units (log.c): the escaped form of
 * the character at p (at most 6 bytes) goes to out; returns its length and
 * sets *consumed to the input bytes it stands for. */
size_t pw_json_escape_unit(const unsigned char *p, size_t left, char out[6], size_t *consumed);

/* The shortest %g text (15, 16 or 17 digits) that reads back as exactly d,
 * with '.' as decimal point whatever the locale; d must be finite (JSON
 * writes null, Prometheus NaN/+Inf/-Inf for the others).  Returns the
 * length written to out (NUL-terminated). */
size_t pw_format_double(char out[40], double d);

/* Standard base64 (RFC 4648 section 4, with padding). */
void pw_buf_append_base64(pw_buf *b, const void *data, size_t len);
/* URL-safe base64 (RFC 4648 section 5, with padding), as the Pushgateway's
 * `@base64` path segments expect. */
void pw_buf_append_base64url(pw_buf *b, const void *data, size_t len);
/* Decodes standard base64; returns PW_OK or PW_EINVAL. */
int pw_base64_decode(const char *in, size_t len, pw_buf *out);

/* True when [s, s+len) is well-formed UTF-8 (no overlongs, no surrogates,
 * nothing above U+10FFFF). */
bool pw_utf8_valid(const char *s, size_t len);

#endif

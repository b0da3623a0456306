/*
 * buf.c: growable buffers, JSON string escaping, base64 and UTF-8 checks.
 *
 * Growth doubles capacity so appends are amortised O(1); a buffer that is
 * reset and reused stops allocating once it has seen its largest content.
 *
 * The invariant every writer keeps, asserted where a writer fills reserved
 * space itself (active in the test and sanitizer builds; b_ndebug=if-release
 * compiles them out of release builds): len < cap, and data[len] is the
 * terminating NUL.  Writing past cap would corrupt the heap silently.
 */
#include "buf.h"

#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pw.h"

void pw_buf_free(pw_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->failed = false;
}

int pw_buf_reserve(pw_buf *b, size_t extra)
{
    if (b->failed)
        return PW_ENOMEM;
    if (extra > SIZE_MAX - b->len - 1) {
        b->failed = true;
        return PW_ENOMEM;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return PW_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->failed = true;
        return PW_ENOMEM;
    }
    b->data = p;
    b->cap = cap;
    return PW_OK;
}

void pw_buf_append(pw_buf *b, const void *data, size_t len)
{
    if (pw_buf_reserve(b, len) != PW_OK)
        return;
    assert(b->len + len < b->cap);
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void pw_buf_append_str(pw_buf *b, const char *s) { pw_buf_append(b, s, strlen(s)); }

void pw_buf_append_char(pw_buf *b, char c)
{
    if (pw_buf_reserve(b, 1) != PW_OK)
        return;
    assert(b->len + 1 < b->cap);
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
}

void pw_buf_printf(pw_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[128];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if ((size_t)n < sizeof small) {
        pw_buf_append(b, small, (size_t)n);
        return;
    }
    if (pw_buf_reserve(b, (size_t)n) != PW_OK)
        return;
    va_start(ap, fmt);
    assert(b->len + (size_t)n < b->cap);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

char *pw_put_u64(char *o, uint64_t v)
{
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *o++ = tmp[--n];
    return o;
}

void pw_buf_append_u64(pw_buf *b, uint64_t v)
{
    char tmp[20];
    pw_buf_append(b, tmp, (size_t)(pw_put_u64(tmp, v) - tmp));
}

/* The common case (timestamps) is formatted by hand: printf's exact
 * decimal conversion costs more than the rest of a record's transform.
 * Below 2^53 microseconds the scaled value is an exact integer
 * and this rounds the same as printf except, at most, for exact ties. */
void pw_buf_append_fixed6(pw_buf *out, double v)
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

/* Length of the valid UTF-8 sequence starting at s (at most `left` bytes),
 * or 0 when the bytes there are not one. */
static size_t utf8_seq_len(const unsigned char *s, size_t left)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t n;
    unsigned cp;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (left < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

bool pw_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        /* Records are mostly ASCII: skip 8 bytes at a time while no byte has
         * its high bit set. */
        while (i + 8 <= len) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if (w & 0x8080808080808080u)
                break;
            i += 8;
        }
        if (i >= len)
            break;
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t n = utf8_seq_len(p + i, len - i);
        if (!n)
            return false;
        i += n;
    }
    return true;
}

size_t pw_json_escape_unit(const unsigned char *p, size_t left, char out[6], size_t *consumed)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char c = p[0];
    *consumed = 1;
    if (c == '"' || c == '\\') {
        out[0] = '\\';
        out[1] = (char)c;
        return 2;
    }
    if (c >= 0x20 && c < 0x80) {
        out[0] = (char)c;
        return 1;
    }
    if (c < 0x20) {
        out[0] = '\\';
        switch (c) {
        case '\n': out[1] = 'n'; return 2;
        case '\r': out[1] = 'r'; return 2;
        case '\t': out[1] = 't'; return 2;
        case '\b': out[1] = 'b'; return 2;
        case '\f': out[1] = 'f'; return 2;
        default:
            out[1] = 'u';
            out[2] = '0';
            out[3] = '0';
            out[4] = hex[c >> 4];
            out[5] = hex[c & 15];
            return 6;
        }
    }
    size_t n = utf8_seq_len(p, left);
    if (n) {
        memcpy(out, p, n);
        *consumed = n;
        return n;
    }
    memcpy(out, "\xEF\xBF\xBD", 3); /* U+FFFD */
    return 3;
}

void pw_buf_append_json_escaped(pw_buf *b, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    /* Worst case every byte becomes \u00XX (6 bytes). */
    if (len > (SIZE_MAX - 1) / 6 || pw_buf_reserve(b, len * 6) != PW_OK) {
        b->failed = true;
        return;
    }
    char *o = b->data + b->len;
    size_t i = 0;
    while (i < len) {
        unsigned char c = p[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') { /* the common case, inline */
            *o++ = (char)c;
            i++;
            continue;
        }
        size_t used;
        o += pw_json_escape_unit(p + i, len - i, o, &used);
        i += used;
    }
    b->len = (size_t)(o - b->data);
    assert(b->len < b->cap);
    b->data[b->len] = '\0';
}

size_t pw_format_double(char out[40], double d)
{
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(out, 40, "%.*g", prec, d);
        if (strtod(out, NULL) == d)
            break;
    }
    if (n < 0)
        n = 0;
    /* A stage that set LC_NUMERIC to a comma locale must still emit numbers. */
    for (int i = 0; i < n; i++)
        if (out[i] == ',')
            out[i] = '.';
    return (size_t)n;
}

static void base64_encode(pw_buf *b, const void *data, size_t len, const char *alphabet)
{
    const unsigned char *p = data;
    if (pw_buf_reserve(b, (len + 2) / 3 * 4) != PW_OK)
        return;
    char *o = b->data + b->len;
    size_t i = 0;
    for (; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = alphabet[v >> 18];
        *o++ = alphabet[(v >> 12) & 63];
        *o++ = alphabet[(v >> 6) & 63];
        *o++ = alphabet[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0);
        *o++ = alphabet[v >> 18];
        *o++ = alphabet[(v >> 12) & 63];
        *o++ = i + 1 < len ? alphabet[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    b->len = (size_t)(o - b->data);
    assert(b->len < b->cap);
    b->data[b->len] = '\0';
}

void pw_buf_append_base64(pw_buf *b, const void *data, size_t len)
{
    base64_encode(b, data, len, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
}

void pw_buf_append_base64url(pw_buf *b, const void *data, size_t len)
{
    base64_encode(b, data, len, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_");
}

static int base64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

int pw_base64_decode(const char *in, size_t len, pw_buf *out)
{
    if (len % 4)
        return PW_EINVAL;
    const unsigned char *p = (const unsigned char *)in;
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            if (p[i + k] == '=' && i + 4 == len && k >= 2) {
                v[k] = 0;
                pad++;
            } else {
                if (pad)
                    return PW_EINVAL;
                v[k] = base64_value(p[i + k]);
                if (v[k] < 0)
                    return PW_EINVAL;
            }
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        char bytes[3] = { (char)(w >> 16), (char)(w >> 8), (char)w };
        pw_buf_append(out, bytes, (size_t)(3 - pad));
    }
    return pw_buf_ok(out) ? PW_OK : PW_ENOMEM;
}

/*
 * fuzz_common.h: oracles shared by the libFuzzer targets in fuzz/.
 *
 * A target never trusts the code under test to say its output is fine: it
 * re-reads the output with an independent parser (json-c for JSON, a
 * hand-written one for the Prometheus text format) and abort()s on any
 * violation, which libFuzzer reports as a crash with the input saved.
 * Oracle messages go straight to fd 2 (dprintf), so they survive a target
 * that silences the stdio streams of the code under test.
 */
#ifndef PW_FUZZ_COMMON_H
#define PW_FUZZ_COMMON_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FUZZ_CHECK(cond, what)                                                       \
    do {                                                                             \
        if (!(cond)) {                                                               \
            dprintf(2, "fuzz oracle: %s (%s:%d: %s)\n", (what), __FILE__,             \
                    __LINE__, #cond);                                                \
            abort();                                                                 \
        }                                                                            \
    } while (0)

/* Parses [s, s+len) as exactly one JSON value with json-c in strict mode
 * (UTF-8 validated, nothing after the value).  Returns the tree (caller
 * puts it) or NULL. */
static inline struct json_object *fuzz_json_parse_strict(const char *s, size_t len)
{
    static struct json_tokener *tok;
    if (!tok) {
        tok = json_tokener_new_ex(64);
        if (!tok)
            abort();
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    }
    if (len > (size_t)INT32_MAX)
        return NULL;
    json_tokener_reset(tok);
    struct json_object *o = json_tokener_parse_ex(tok, s, (int)len);
    if (!o)
        return NULL;
    if (json_tokener_get_error(tok) != json_tokener_success ||
        json_tokener_get_parse_end(tok) != len) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

/* Splits data on NUL into at most max words (NUL-terminated copies in one
 * block owned by the caller: free(*block)).  The last word takes the rest. */
static inline size_t fuzz_split(const uint8_t *data, size_t size, char **words, size_t max,
                                char **block)
{
    char *b = malloc(size + 1);
    if (!b)
        abort();
    if (size)
        memcpy(b, data, size);
    b[size] = '\0';
    *block = b;
    size_t n = 0;
    char *p = b, *end = b + size;
    while (n < max) {
        words[n++] = p;
        char *nul = memchr(p, '\0', (size_t)(end - p));
        if (!nul || nul == end)
            break;
        p = nul + 1;
    }
    return n;
}

#endif

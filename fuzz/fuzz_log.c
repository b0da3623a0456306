/*
 * fuzz_log: pw_log_format with arbitrary strings everywhere a caller can
 * put one (instance, msg, string fields with and without a length) and an
 * arbitrary buffer size.
 *
 * Input: 2 bytes of buffer size (0..PW_LOG_LINE_MAX), 1 byte of level,
 * 1 byte choosing field types, then NUL-separated words: instance, msg,
 * then field values.  The buffer is allocated at exactly the size given,
 * so ASan sees any write past it.
 * Oracles: a line that is produced is strict JSON (one object) followed by
 * exactly one '\n' and a NUL inside the buffer; ts, level, stage and
 * instance are present and whole; a line that was not cut ("truncated"
 * absent) carries every string value byte for byte when it was valid
 * UTF-8; a buffer of PW_LOG_LINE_MAX always gets a line.
 */
#include <math.h>

#include "buf.h"
#include "fuzz_common.h"
#include "log.h"
#include "pw.h"

#define MAX_FIELDS 12

static const char *const keys[MAX_FIELDS] = {
    "trace_id", "reason", "count", "detail", "a", "b", "c", "d", "e", "f", "g", "h",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    size_t cap = ((size_t)data[0] | (size_t)data[1] << 8) % (PW_LOG_LINE_MAX + 1);
    pw_log_level level = (pw_log_level)(data[2] % 5); /* 4: an unknown level */
    uint8_t types = data[3];
    data += 4;
    size -= 4;

    char *words[MAX_FIELDS + 2], *block;
    size_t n = fuzz_split(data, size, words, MAX_FIELDS + 2, &block);
    const char *instance = words[0];
    const char *msg = n > 1 ? words[1] : NULL;
    pw_field fields[MAX_FIELDS];
    size_t nfields = n > 2 ? n - 2 : 0;
    for (size_t i = 0; i < nfields; i++) {
        const char *s = words[i + 2];
        switch ((types >> (i % 4 * 2)) & 3) {
        case 0:
            fields[i] = PW_STR(keys[i], s);
            break;
        case 1: /* with a length: may run into the NUL and the next word */
            fields[i] = PW_STRN(keys[i], s, strlen(s));
            break;
        case 2: {
            double d;
            size_t len = strlen(s);
            memset(&d, 0, sizeof d);
            memcpy(&d, s, len < sizeof d ? len : sizeof d);
            fields[i] = PW_DBL(keys[i], d);
            break;
        }
        default:
            fields[i] = i % 2 ? PW_INT(keys[i], (long long)strlen(s) - 3) : PW_STR(keys[i], NULL);
            break;
        }
    }

    pw_log_init("worker", instance, PW_LOG_DEBUG, -1);
    char *buf = malloc(cap ? cap : 1);
    if (!buf)
        abort();
    size_t len = pw_log_format(cap ? buf : NULL, cap, level, msg, fields, nfields);
    /* A stage name and instance of up to 255 bytes, each byte escaped to at
     * most 6, plus ts, level and keys: beyond that a line must come out. */
    size_t inst_len = strlen(instance) < 255 ? strlen(instance) : 255;
    if (cap == PW_LOG_LINE_MAX || cap > 6 * inst_len + 256)
        FUZZ_CHECK(len > 0, "no line although the buffer holds the identity fields");
    if (len == 0) {
        free(buf);
        free(block);
        return 0;
    }
    FUZZ_CHECK(len < cap, "line does not leave room for its NUL");
    FUZZ_CHECK(buf[len] == '\0', "line is not NUL-terminated");
    FUZZ_CHECK(buf[len - 1] == '\n', "line does not end with a newline");
    FUZZ_CHECK(memchr(buf, '\n', len - 1) == NULL, "line has more than one newline");
    struct json_object *o = fuzz_json_parse_strict(buf, len - 1);
    if (!o) {
        fprintf(stderr, "log line is not strict JSON: %.*s\n", (int)len, buf);
        abort();
    }
    FUZZ_CHECK(json_object_is_type(o, json_type_object), "log line is not an object");
    struct json_object *v;
    FUZZ_CHECK(json_object_object_get_ex(o, "ts", &v) && json_object_get_string_len(v) == 24,
               "ts missing or not RFC 3339 with milliseconds");
    FUZZ_CHECK(json_object_object_get_ex(o, "level", &v), "level missing");
    FUZZ_CHECK(json_object_object_get_ex(o, "stage", &v) &&
               strcmp(json_object_get_string(v), "worker") == 0, "stage missing or changed");
    FUZZ_CHECK(json_object_object_get_ex(o, "instance", &v), "instance missing");
    if (pw_utf8_valid(instance, inst_len) && strlen(instance) == inst_len)
        FUZZ_CHECK(strcmp(json_object_get_string(v), instance) == 0, "instance changed");
    FUZZ_CHECK(json_object_object_get_ex(o, "msg", &v), "msg missing");

    if (!json_object_object_get_ex(o, "truncated", &v)) {
        if (msg && pw_utf8_valid(msg, strlen(msg))) {
            json_object_object_get_ex(o, "msg", &v);
            FUZZ_CHECK(strcmp(json_object_get_string(v), msg) == 0, "msg changed");
        }
        for (size_t i = 0; i < nfields; i++) {
            FUZZ_CHECK(json_object_object_get_ex(o, keys[i], &v), "field dropped without truncated");
            if (fields[i].type == PW_FIELD_STR && fields[i].v.s &&
                pw_utf8_valid(fields[i].v.s, strlen(fields[i].v.s)))
                FUZZ_CHECK(strcmp(json_object_get_string(v), fields[i].v.s) == 0,
                           "string field changed");
            if (fields[i].type == PW_FIELD_DOUBLE && !isfinite(fields[i].v.d))
                FUZZ_CHECK(json_object_is_type(v, json_type_null), "non-finite double not null");
            if (fields[i].type == PW_FIELD_DOUBLE && isfinite(fields[i].v.d))
                FUZZ_CHECK(json_object_get_double(v) == fields[i].v.d, "double does not round-trip");
        }
    } else {
        FUZZ_CHECK(json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v),
                   "truncated is not true");
    }
    json_object_put(o);
    free(buf);
    free(block);
    return 0;
}

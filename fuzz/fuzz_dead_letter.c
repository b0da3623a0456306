/*
 * fuzz_dead_letter: the dead-letter encoder alone, with every string it
 * takes chosen by the input.
 *
 * Input: 8 bytes of dead_at (any double: NaN, infinities, huge), 8 of run,
 * 8 of seq, 1 of reason (out-of-range values too), 1 of flags (bit 0: no
 * producer, bit 1: NULL detail, bit 2: NULL worker), then detail, producer
 * and worker separated by NUL, then the raw bytes (NULs allowed).
 * Oracle: one strict JSON object, no raw newline, the fields it names hold
 * what was given (strings compared after the encoder's U+FFFD repair only
 * when the input was valid UTF-8), raw_b64 decodes to the raw bytes.
 */
#include <math.h>

#include "buf.h"
#include "fuzz_common.h"
#include "pw.h"
#include "record.h"

static void expect_string(struct json_object *o, const char *key, const char *want)
{
    struct json_object *v;
    FUZZ_CHECK(json_object_object_get_ex(o, key, &v), key);
    if (!want) {
        FUZZ_CHECK(json_object_is_type(v, json_type_null) ||
                   (json_object_is_type(v, json_type_string) && json_object_get_string_len(v) == 0),
                   "NULL string field is neither null nor empty");
        return;
    }
    FUZZ_CHECK(json_object_is_type(v, json_type_string), key);
    if (pw_utf8_valid(want, strlen(want)))
        FUZZ_CHECK(strcmp(json_object_get_string(v), want) == 0, "string field does not round-trip");
}

static void expect_uint(struct json_object *o, const char *key, uint64_t want)
{
    struct json_object *v;
    FUZZ_CHECK(json_object_object_get_ex(o, key, &v), key);
    FUZZ_CHECK(json_object_is_type(v, json_type_int), key);
    FUZZ_CHECK(json_object_get_uint64(v) == want, "integer field does not round-trip");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static pw_buf out = PW_BUF_INIT;
    if (size < 26)
        return 0;
    double dead_at;
    uint64_t run, seq;
    memcpy(&dead_at, data, 8);
    memcpy(&run, data + 8, 8);
    memcpy(&seq, data + 16, 8);
    pw_record_error reason = (pw_record_error)(data[24] % (PW_REC_ERROR_COUNT + 2));
    uint8_t flags = data[25];
    data += 26;
    size -= 26;

    char *words[4], *block;
    size_t n = fuzz_split(data, size, words, 3, &block);
    const char *detail = words[0];
    const char *producer = n > 1 ? words[1] : "p1";
    const char *worker = n > 2 ? words[2] : "w1";
    /* raw: whatever follows the third word's NUL, NULs and all */
    const char *raw = NULL;
    size_t raw_len = 0;
    if (n > 2) {
        const char *w = words[2];
        const char *nul = memchr(w, '\0', (size_t)(block + size - w) + 1);
        if (nul && nul < block + size) {
            raw = nul + 1;
            raw_len = (size_t)(block + size - raw);
            /* the worker word must stop at the NUL we split at */
        }
    }
    if (flags & 1)
        producer = NULL;
    if (flags & 2)
        detail = NULL;
    if (flags & 4)
        worker = NULL;

    pw_buf_reset(&out);
    pw_record_dead_letter(&out, reason, detail, producer, run, seq, worker, dead_at, raw, raw_len);
    FUZZ_CHECK(pw_buf_ok(&out), "encoder ran out of memory");
    FUZZ_CHECK(memchr(out.data, '\n', out.len) == NULL, "dead letter contains a raw newline");
    struct json_object *o = fuzz_json_parse_strict(out.data, out.len);
    if (!o) {
        fprintf(stderr, "dead letter is not strict JSON: %.*s\n", (int)(out.len > 4000 ? 4000 : out.len),
                out.data);
        abort();
    }
    FUZZ_CHECK(json_object_is_type(o, json_type_object), "dead letter is not an object");

    struct json_object *v;
    FUZZ_CHECK(json_object_object_get_ex(o, "reason", &v) && json_object_is_type(v, json_type_string),
               "reason missing");
    FUZZ_CHECK(strcmp(json_object_get_string(v), pw_record_error_reason(reason)) == 0,
               "reason differs");
    expect_string(o, "detail", detail);
    expect_string(o, "worker", worker);
    FUZZ_CHECK(json_object_object_get_ex(o, "dead_at", &v), "dead_at missing");
    if (!isfinite(dead_at))
        FUZZ_CHECK(json_object_is_type(v, json_type_null), "non-finite dead_at is not null");
    else
        FUZZ_CHECK(json_object_is_type(v, json_type_double), "dead_at is not a number");
    if (producer) {
        expect_string(o, "producer", producer);
        expect_uint(o, "run", run);
        expect_uint(o, "seq", seq);
        FUZZ_CHECK(json_object_object_get_ex(o, "id", &v) && json_object_is_type(v, json_type_string),
                   "id missing");
    } else {
        FUZZ_CHECK(json_object_object_get_ex(o, "producer", &v) &&
                   json_object_is_type(v, json_type_null), "producer is not null");
    }
    expect_uint(o, "raw_len", raw_len);
    FUZZ_CHECK(json_object_object_get_ex(o, "raw_b64", &v), "raw_b64 missing");
    pw_buf dec = PW_BUF_INIT;
    FUZZ_CHECK(pw_base64_decode(json_object_get_string(v), (size_t)json_object_get_string_len(v),
                                &dec) == PW_OK, "raw_b64 is not base64");
    FUZZ_CHECK(dec.len == raw_len && (raw_len == 0 || memcmp(dec.data, raw, raw_len) == 0),
               "raw_b64 does not decode to the raw bytes");
    pw_buf_free(&dec);
    json_object_put(o);
    free(block);
    return 0;
}

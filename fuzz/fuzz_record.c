/*
 * fuzz_record: any bytes through the worker's per-record path.
 *
 * pw_record_parse on the raw bytes; when it accepts, pw_record_transform
 * (the output line); always pw_record_dead_letter (what the worker writes
 * when either fails).  Oracles: every line is one strict JSON object with
 * no raw newline (an NDJSON line), the transform's output is itself a
 * record the parser accepts with the same fields, and the dead letter's
 * raw_b64 decodes back to exactly the input.  Differential: the one-pass
 * parser and the json-c reference (pw_record_parse_reference) must give
 * the same verdict and, on success, the same field values.
 */
#include <math.h>

#include "buf.h"
#include "fuzz_common.h"
#include "pw.h"
#include "record.h"
#include "record_reference.h"

static void check_line(const pw_buf *b, const char *what)
{
    FUZZ_CHECK(pw_buf_ok(b), what);
    FUZZ_CHECK(memchr(b->data, '\n', b->len) == NULL, "output line contains a raw newline");
    struct json_object *o = fuzz_json_parse_strict(b->data, b->len);
    if (!o) {
        fprintf(stderr, "%s is not strict JSON: %.*s\n", what, (int)(b->len > 2000 ? 2000 : b->len),
                b->data);
        abort();
    }
    FUZZ_CHECK(json_object_is_type(o, json_type_object), what);
    json_object_put(o);
}

static void check_dead_letter(const pw_buf *b, const uint8_t *data, size_t size)
{
    check_line(b, "dead letter");
    struct json_object *o = fuzz_json_parse_strict(b->data, b->len), *v;
    FUZZ_CHECK(json_object_object_get_ex(o, "raw_len", &v), "dead letter lacks raw_len");
    FUZZ_CHECK((uint64_t)json_object_get_int64(v) == size, "raw_len differs from the input size");
    FUZZ_CHECK(json_object_object_get_ex(o, "raw_b64", &v), "dead letter lacks raw_b64");
    pw_buf raw = PW_BUF_INIT;
    FUZZ_CHECK(pw_base64_decode(json_object_get_string(v), (size_t)json_object_get_string_len(v),
                                &raw) == PW_OK, "raw_b64 is not base64");
    FUZZ_CHECK(raw.len == size && (size == 0 || memcmp(raw.data, data, size) == 0),
               "raw_b64 does not decode to the input");
    pw_buf_free(&raw);
    json_object_put(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static pw_record_parser *parser, *reference;
    static pw_buf out = PW_BUF_INIT, dead = PW_BUF_INIT;
    if (!parser && !(parser = pw_record_parser_new()))
        abort();
    if (!reference && !(reference = pw_record_parser_new()))
        abort();
    pw_buf_reset(&out);
    pw_buf_reset(&dead);

    const char *raw = (const char *)data;
    pw_record rec;
    const char *detail = NULL;
    pw_record_error err = pw_record_parse(parser, raw, size, &rec, &detail);
    FUZZ_CHECK((unsigned)err < PW_REC_ERROR_COUNT, "parse returned an unknown error");
    FUZZ_CHECK(detail != NULL, "parse left detail unset");
    {
        pw_record ref;
        const char *ref_detail = NULL;
        pw_record_error ref_err = pw_record_parse_reference(reference, raw, size, &ref, &ref_detail);
        if (ref_err != err) {
            fprintf(stderr, "one-pass parser says %s (%s), json-c reference says %s (%s)\n",
                    pw_record_error_reason(err), detail, pw_record_error_reason(ref_err), ref_detail);
            abort();
        }
        if (err == PW_REC_OK) {
            FUZZ_CHECK(strcmp(rec.id, ref.id) == 0 && strcmp(rec.producer, ref.producer) == 0 &&
                           strcmp(rec.kind, ref.kind) == 0 && strcmp(rec.trace_id, ref.trace_id) == 0,
                       "string fields differ from the json-c reference");
            FUZZ_CHECK(rec.seq == ref.seq && rec.user_id == ref.user_id && rec.items == ref.items,
                       "integer fields differ from the json-c reference");
            FUZZ_CHECK(memcmp(&rec.ts, &ref.ts, sizeof rec.ts) == 0 &&
                           memcmp(&rec.amount, &ref.amount, sizeof rec.amount) == 0,
                       "number fields differ from the json-c reference");
        }
    }
    const char *producer = NULL;
    uint64_t seq = 0;
    if (err == PW_REC_OK) {
        FUZZ_CHECK(size <= PW_RECORD_MAX_BYTES, "oversize record accepted");
        FUZZ_CHECK(rec.id && *rec.id && rec.producer && *rec.producer && rec.kind && *rec.kind,
                   "accepted record with an empty string field");
        FUZZ_CHECK(rec.trace_id && strlen(rec.trace_id) == 32, "bad trace_id accepted");
        FUZZ_CHECK(isfinite(rec.ts) && rec.ts > 0, "bad ts accepted");
        FUZZ_CHECK(isfinite(rec.amount) && rec.amount >= 0, "bad amount accepted");
        FUZZ_CHECK(rec.items >= 0 && rec.items <= 10000 && rec.user_id >= 0,
                   "bad payload integer accepted");
        producer = rec.producer;
        seq = rec.seq;
        size_t before = out.len;
        err = pw_record_transform(&rec, raw, size, 1764020000.123456, "worker-\"1\"\n", 42, &out,
                                  &detail);
        if (err == PW_REC_OK) {
            check_line(&out, "transform output");
            /* The output is still a record, with the same fields. */
            if (out.len <= PW_RECORD_MAX_BYTES) {
                pw_record again;
                char *copy = malloc(out.len ? out.len : 1);
                if (!copy)
                    abort();
                memcpy(copy, out.data, out.len);
                uint64_t want_seq = rec.seq;
                double want_ts = rec.ts, want_amount = rec.amount;
                pw_buf id = PW_BUF_INIT;
                pw_buf_append_str(&id, rec.id);
                const char *d2 = NULL;
                pw_record_error e2 = pw_record_parse(parser, copy, out.len, &again, &d2);
                if (e2 != PW_REC_OK) {
                    fprintf(stderr, "transform output rejected (%s): %.*s\n", d2, (int)out.len,
                            out.data);
                    abort();
                }
                FUZZ_CHECK(again.seq == want_seq && again.ts == want_ts &&
                           again.amount == want_amount && strcmp(again.id, id.data) == 0,
                           "transform changed a field");
                pw_buf_free(&id);
                free(copy);
                /* parser's tree was replaced: the views in rec are gone */
                producer = NULL;
                err = pw_record_parse(parser, raw, size, &rec, &detail);
                FUZZ_CHECK(err == PW_REC_OK, "parse is not deterministic");
                producer = rec.producer;
                err = PW_REC_OK;
            }
        } else {
            FUZZ_CHECK(err == PW_REC_PROCESSING, "transform failed with a non-processing error");
            FUZZ_CHECK(out.len == before, "failed transform left bytes in the output");
        }
    }
    pw_record_dead_letter(&dead, err == PW_REC_OK ? PW_REC_PROCESSING : err, detail, producer, 7,
                          seq, "worker-1", 1764020001.5, raw, size);
    check_dead_letter(&dead, data, size);
    /* Also without an envelope (bare record). */
    pw_buf_reset(&dead);
    pw_record_dead_letter(&dead, err, detail, NULL, 0, 0, NULL, NAN, raw, size);
    check_dead_letter(&dead, data, size);
    return 0;
}

/*
 * record_write.c: the two lines a worker writes for a record: the output
 * line (pw_record_transform) and the dead letter (pw_record_dead_letter).
 * Formats in record.h and docs/contract.md.
 *
 * For: encoding, on the per-record path.  Owns: the added output fields and
 * the dead-letter layout.  Never: parses or validates (record_parse.c did),
 * builds a JSON tree, or allocates beyond growing the caller's pw_buf.
 *
 * The transform never builds a second tree or serialises the first one: it
 * copies the validated bytes and splices the added fields in before the
 * final '}'.
 */
#include <assert.h>
#include <math.h>
#include <string.h>

#include "pw.h"
#include "record.h"
#include "record_internal.h"

/* Cents are exact while amount*100 stays below 2^53. */
#define CENTS_LIMIT 9007199254740992.0

static void append_json_string(pw_buf *out, const char *s)
{
    pw_buf_append_char(out, '"');
    if (s)
        pw_buf_append_json_escaped(out, s, strlen(s));
    pw_buf_append_char(out, '"');
}

pw_record_error pw_record_transform(const pw_record *rec, const char *raw, size_t len,
                                    double processed_at, const char *worker, uint64_t run,
                                    pw_buf *out, const char **detail)
{
    const unsigned char *s = (const unsigned char *)raw;
    double cents = rec->amount * 100.0;
    if (!(cents >= 0))
        return pw_record_fail(detail, PW_REC_PROCESSING, "payload.amount is negative");
    if (!(cents < CENTS_LIMIT))
        return pw_record_fail(detail, PW_REC_PROCESSING, "payload.amount too large for exact integer cents");

    size_t begin = raw ? pw_json_skip_ws(s, 0, len) : 0;
    size_t end = raw ? len : 0;
    while (end > begin && pw_json_is_ws(s[end - 1]))
        end--;
    if (end - begin < 2 || s[begin] != '{' || s[end - 1] != '}')
        return pw_record_fail(detail, PW_REC_PROCESSING, "record is not a JSON object");
    assert(begin < end && end <= len);
    size_t inner = end - 1;
    while (inner > begin && pw_json_is_ws(s[inner - 1]))
        inner--;
    bool empty_object = inner == begin + 1;

    size_t at = out->len;
    pw_buf_append(out, raw + begin, end - 1 - begin);
    /* Newlines can only be whitespace between tokens here (the syntax check
     * refuses raw control characters in strings); the output is one NDJSON
     * line, so they become spaces. */
    if (pw_buf_ok(out) && (memchr(out->data + at, '\n', out->len - at) ||
                           memchr(out->data + at, '\r', out->len - at)))
        for (size_t i = at; i < out->len; i++)
            if (out->data[i] == '\n' || out->data[i] == '\r')
                out->data[i] = ' ';

    pw_buf_append_str(out, empty_object ? "\"processed_at\":" : ",\"processed_at\":");
    pw_buf_append_fixed6(out, processed_at);
    pw_buf_append_str(out, ",\"worker\":");
    append_json_string(out, worker);
    pw_buf_append_str(out, ",\"amount_cents\":");
    pw_buf_append_u64(out, (uint64_t)llround(cents));
    pw_buf_append_str(out, ",\"run\":");
    pw_buf_append_u64(out, run);
    pw_buf_append_char(out, '}');
    if (detail)
        *detail = "ok";
    return PW_REC_OK;
}

void pw_record_dead_letter(pw_buf *out, pw_record_error reason, const char *detail,
                           const char *producer, uint64_t run, uint64_t seq,
                           const char *worker, double dead_at,
                           const char *raw, size_t len)
{
    if (!raw)
        len = 0;
    pw_buf_append_str(out, "{\"dead_at\":");
    pw_buf_append_fixed6(out, dead_at);
    pw_buf_append_str(out, ",\"reason\":\"");
    pw_buf_append_str(out, pw_record_error_reason(reason));
    pw_buf_append_str(out, "\",\"detail\":");
    append_json_string(out, detail);
    if (producer) {
        size_t plen = strlen(producer);
        pw_buf_append_str(out, ",\"id\":\"");
        pw_buf_append_json_escaped(out, producer, plen);
        pw_buf_append_char(out, '-');
        pw_buf_append_u64(out, seq);
        pw_buf_append_str(out, "\",\"producer\":\"");
        pw_buf_append_json_escaped(out, producer, plen);
        pw_buf_append_str(out, "\",\"run\":");
        pw_buf_append_u64(out, run);
        pw_buf_append_str(out, ",\"seq\":");
        pw_buf_append_u64(out, seq);
    } else {
        pw_buf_append_str(out, ",\"id\":null,\"producer\":null,\"run\":null,\"seq\":null");
    }
    pw_buf_append_str(out, ",\"worker\":");
    append_json_string(out, worker);
    pw_buf_append_str(out, ",\"raw_len\":");
    pw_buf_append_u64(out, len);
    pw_buf_append_str(out, ",\"raw_b64\":\"");
    bool truncated = len > PW_DEAD_LETTER_RAW_MAX;
    pw_buf_append_base64(out, raw, truncated ? PW_DEAD_LETTER_RAW_MAX : len);
    pw_buf_append_char(out, '"');
    if (truncated)
        pw_buf_append_str(out, ",\"raw_truncated\":true");
    pw_buf_append_char(out, '}');
}

/*
 * record.h: the record contract (docs/contract.md, "Records"): parse,
 * validate, transform, dead-letter, and generate (valid and faulty).
 * Implemented one concern per file: record_parse.c (parse and validate),
 * record_write.c (output and dead-letter lines), fault.c (the fault
 * catalogue), generate.c (the generator).  The json-c reference parser the
 * tests compare with is tests/record_reference.h.
 *
 * A record is a JSON object:
 *   {"id":"p1-42","seq":42,"producer":"p1","ts":1764020000.123456,
 *    "trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","kind":"order",
 *    "payload":{"user_id":123,"amount":19.99,"items":3}}
 *
 * Checks, in this order (the first failure decides the reason):
 *   empty           0 bytes, or only JSON whitespace
 *   oversize        more than PW_RECORD_MAX_BYTES (checked before parsing)
 *   invalid_utf8    bytes that are not well-formed UTF-8 (checked before parsing)
 *   malformed_json  not JSON, trailing garbage, or nested deeper than PW_RECORD_MAX_DEPTH
 *   invalid_value   not an object, a field of the wrong type or out of range:
 *                   id string 1..128 bytes; seq integer >= 0; producer string
 *                   1..64 bytes; ts finite number in (0, 4102444800); trace_id
 *                   32 lowercase hex digits; kind string 1..32 bytes; payload
 *                   object; payload.user_id integer >= 0; payload.amount finite
 *                   number >= 0; payload.items integer 0..10000
 *   missing_field   a required field above is absent (reported before type checks
 *                   of the remaining fields; `detail` names it)
 *   processing      valid, but the transform cannot be done (amount*100 is not
 *                   representable exactly as integer cents: amount >= 2^53/100);
 *                   this is what the `poison` fault produces
 *
 * Ownership and threads: a pw_record_parser owns the decoded string fields
 * of the last parse; pw_record views point into the parser and stay valid
 * until the next parse or free.  One parser per thread.  Generation and
 * dead-letter encoding only append to the caller's pw_buf.
 */
#ifndef PW_RECORD_H
#define PW_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define PW_RECORD_MAX_BYTES (64 * 1024)
#define PW_RECORD_MAX_DEPTH 16
/* Dead letters keep at most this many raw bytes (raw_len tells the original). */
#define PW_DEAD_LETTER_RAW_MAX (1024 * 1024)

typedef enum pw_record_error {
    PW_REC_OK = 0,
    PW_REC_MALFORMED_JSON,
    PW_REC_MISSING_FIELD,
    PW_REC_INVALID_VALUE,
    PW_REC_OVERSIZE,
    PW_REC_INVALID_UTF8,
    PW_REC_EMPTY,
    PW_REC_PROCESSING,
    PW_REC_ERROR_COUNT
} pw_record_error;

/* The `reason` label value (docs/contract.md, "Metrics"): "malformed_json", "missing_field",
 * "invalid_value", "oversize", "invalid_utf8", "empty", "processing"
 * (and "ok" for PW_REC_OK). */
const char *pw_record_error_reason(pw_record_error err);

typedef struct pw_record {
    const char *id;
    const char *producer;
    uint64_t seq;
    double ts;
    const char *trace_id;
    const char *kind;
    int64_t user_id;
    double amount;
    int64_t items;
} pw_record;

typedef struct pw_record_parser pw_record_parser;

pw_record_parser *pw_record_parser_new(void);
void pw_record_parser_free(pw_record_parser *p);

/* Parses and validates.  On failure returns the reason and sets *detail to a
 * static human-readable string (e.g. "missing field payload.amount"). */
pw_record_error pw_record_parse(pw_record_parser *p, const char *bytes, size_t len,
                                pw_record *out, const char **detail);

/* Appends the output line (no trailing newline) for a record that parsed:
 * the original object with "processed_at", "worker", "amount_cents" and
 * "run" added, written without building a second JSON tree.  Returns
 * PW_REC_PROCESSING (and leaves `out` unchanged) when the transform fails. */
pw_record_error pw_record_transform(const pw_record *rec, const char *raw, size_t len,
                                    double processed_at, const char *worker, uint64_t run,
                                    pw_buf *out, const char **detail);

/* Appends a dead-letter line (no trailing newline):
 *   {"dead_at":..,"reason":"..","detail":"..","id":"p1-42","producer":"p1",
 *    "run":N,"seq":N,"worker":"..","raw_len":N,"raw_b64":".."}
 * producer may be NULL (record arrived without an envelope): id, producer,
 * run and seq are then written as null.  Raw bytes beyond
 * PW_DEAD_LETTER_RAW_MAX are cut and "raw_truncated":true is added. */
void pw_record_dead_letter(pw_buf *out, pw_record_error reason, const char *detail,
                           const char *producer, uint64_t run, uint64_t seq,
                           const char *worker, double dead_at,
                           const char *raw, size_t len);

typedef enum pw_fault {
    PW_FAULT_NONE = 0,
    PW_FAULT_MALFORMED_JSON,
    PW_FAULT_MISSING_FIELD,
    PW_FAULT_INVALID_VALUE,
    PW_FAULT_OVERSIZE,
    PW_FAULT_INVALID_UTF8,
    PW_FAULT_EMPTY,
    PW_FAULT_POISON,
    PW_FAULT_COUNT
} pw_fault;

/* "malformed_json", ... "poison" ("none" for PW_FAULT_NONE). */
const char *pw_fault_name(pw_fault f);
/* The error a worker reports for a record of this fault kind. */
pw_record_error pw_fault_expected_error(pw_fault f);
/* Parses a comma list of fault names or "all" into a bit mask (bit f set for
 * fault f).  PW_OK, or PW_EINVAL with *bad pointing at the unknown name
 * (a static copy, valid until the next call). */
int pw_fault_parse_list(const char *list, unsigned *mask, const char **bad);
/* The same list as the fault kinds it names, in catalogue order, into
 * out[PW_FAULT_COUNT]; *n of them.  PW_OK or PW_EINVAL. */
int pw_fault_kinds(const char *list, pw_fault *out, size_t *n);
/* The fault of record `seq` of a run: PW_FAULT_NONE with probability
 * 1 - rate, else one of faults[0..n).  A pure function of (run, seq), so a
 * re-send regenerates exactly the same record. */
pw_fault pw_fault_pick(uint64_t run, uint64_t seq, double rate, const pw_fault *faults, size_t n);

/* Appends a record for (producer, seq) with event time ts: valid when fault
 * is PW_FAULT_NONE, else a record that fails with pw_fault_expected_error().
 * Deterministic: the same inputs give the same bytes (the producer
 * regenerates a record to re-send it instead of keeping its bytes). */
void pw_record_generate(pw_buf *out, const char *producer, uint64_t seq, double ts, pw_fault fault);

/* The valid record by the general (slow) generator: pw_record_generate's
 * fast path for PW_FAULT_NONE must produce exactly these bytes (tested). */
void pw_record_generate_reference(pw_buf *out, const char *producer, uint64_t seq, double ts);

#endif

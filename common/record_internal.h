/*
 * record_internal.h: what the record modules share with each other and
 * nothing else: record_parse.c, record_write.c, fault.c, generate.c, and
 * the json-c reference parser that the tests and fuzzers build
 * (tests/record_reference.c).  Not part of the library's interface: the
 * stages include record.h only.
 *
 * Owns the layout of pw_record_parser, the field names and their
 * missing-field details (one list, read by both parsers), the shared
 * pre-check, and the recipe a fault kind gives the generator.
 */
#ifndef PW_RECORD_INTERNAL_H
#define PW_RECORD_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "record.h"

/* ts upper bound: 2100-01-01T00:00:00Z; anything later is a unit mistake. */
#define PW_RECORD_TS_MAX 4102444800.0

struct pw_record_parser {
    /* Unescaped string fields of the last one-pass parse; the pw_record
     * views point here.  Sized for the longest valid value plus NUL. */
    char id[129], producer[65], trace_id[33], kind[33];
    /* State an alternative parser keeps with this one (the json-c
     * reference's tokener and last tree), freed by pw_record_parser_free. */
    void *extension;
    void (*extension_free)(void *extension);
};

/* The fields the contract requires, in the order they are checked. */
enum { PW_F_ID, PW_F_SEQ, PW_F_PRODUCER, PW_F_TS, PW_F_TRACE_ID, PW_F_KIND, PW_F_PAYLOAD, PW_F_TOP_COUNT };
enum { PW_P_USER_ID, PW_P_AMOUNT, PW_P_ITEMS, PW_P_COUNT };
extern const char *const pw_record_top_fields[PW_F_TOP_COUNT];
extern const char *const pw_record_payload_fields[PW_P_COUNT];
/* "missing field id", ..., "missing field payload.items". */
extern const char *const pw_record_top_missing[PW_F_TOP_COUNT];
extern const char *const pw_record_payload_missing[PW_P_COUNT];

static inline bool pw_json_is_ws(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static inline size_t pw_json_skip_ws(const unsigned char *s, size_t i, size_t len)
{
    while (i < len && pw_json_is_ws(s[i]))
        i++;
    return i;
}

/* Sets *detail (when not NULL) to why and returns err. */
static inline pw_record_error pw_record_fail(const char **detail, pw_record_error err, const char *why)
{
    if (detail)
        *detail = why;
    return err;
}

/* Where the one-pass scan found the record's fields (record_parse.c). */
struct pw_scan_fields;

/* The checks both parsers share, in the contract's order: empty, oversize,
 * invalid_utf8, then the strict RFC 8259 syntax and depth pass
 * (malformed_json), then "the top-level value is an object"
 * (invalid_value).  PW_REC_OK when all pass.  With fields not NULL the same
 * single pass also notes where the record's fields are. */
pw_record_error pw_record_precheck(const char *bytes, size_t len, struct pw_scan_fields *fields,
                                   const char **detail);

/* How a generated record departs from the valid one: fault.c writes one
 * per fault kind, generate.c follows it. */
enum pw_gen_field {
    PW_G_ID, PW_G_SEQ, PW_G_PRODUCER, PW_G_TS, PW_G_TRACE_ID, PW_G_KIND, PW_G_PAYLOAD,
    PW_G_USER_ID, PW_G_AMOUNT, PW_G_ITEMS, PW_G_FIELD_COUNT, PW_G_NONE = -1
};

struct pw_gen_recipe {
    bool empty;               /* no bytes at all */
    int omit;                 /* field left out */
    int replace;              /* field whose value is replace_json instead */
    const char *replace_json;
    int unquote;              /* field whose key is written without quotes */
    const char *note;         /* raw bytes of a top-level "note" string, or NULL */
    size_t note_len;
    size_t note_fill;         /* when note is NULL: this many 'x' */
    bool truncate;            /* cut to a proper prefix (chosen by seq) */
    bool trailing_comma;      /* "...}" becomes "...,}" */
};

#define PW_GEN_RECIPE_VALID { false, PW_G_NONE, PW_G_NONE, NULL, PW_G_NONE, NULL, 0, 0, false, false }

/* The recipe of record `seq` with fault f (fault.c); the valid recipe for
 * PW_FAULT_NONE and for values out of range. */
void pw_fault_recipe(pw_fault f, uint64_t seq, struct pw_gen_recipe *recipe);

#endif

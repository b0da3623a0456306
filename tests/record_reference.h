/*
 * record_reference.h: the json-c reference parser (tests and fuzzers only).
 *
 * pw_record_parse_reference keeps the contract of pw_record_parse (record.h)
 * and must reach the same verdict and field values; it is slower (it builds
 * a tree).  It keeps a json-c tokener and the last tree with the parser
 * (freed by pw_record_parser_free); its views point into that tree and stay
 * valid until the next parse with this parser.  One parser per thread.
 */
#ifndef PW_RECORD_REFERENCE_H
#define PW_RECORD_REFERENCE_H

#include "record.h"

pw_record_error pw_record_parse_reference(pw_record_parser *p, const char *bytes, size_t len,
                                          pw_record *out, const char **detail);

#endif

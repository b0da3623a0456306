/*
 * stage.h: what every stage does besides its loop.
 *
 * Owns the stage's registry and the metrics every stage pushes
 * (docs/contract.md, "Metrics"; registered once, in pw_stage_init, not in
 * each stage), the pusher, signal handling and the periodic `stats` log
 * line.  A stage's
 * main() reads: parse options, pw_stage_init, open sockets, pw_stage_start,
 * loop while pw_stage_running(), drain, pw_stage_finish.
 *
 * Signals: SIGINT/SIGTERM set a flag (pw_stage_running() turns false) and
 * interrupt blocking ZeroMQ calls (EINTR); a second signal makes
 * pw_stage_hurry() true so a drain can give up early.  SIGPIPE is ignored.
 * The push thread runs with these signals blocked, so they always reach the
 * main thread.
 *
 * Threads: everything here is called from the main thread, except metric
 * updates, which are lock-free.
 */
#ifndef PW_STAGE_H
#define PW_STAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "log.h"
#include "metrics.h"
#include "options.h"
#include "push.h"
#include "record.h"
#include "transport.h"

/* The CURVE flags every stage takes (see transport.h), as option-table rows. */
#define PW_SECURITY_OPTIONS(sec)                                                           \
    { .name = "curve-secret-file", .type = PW_OPT_STRING, .dest = &(sec).secret_key_file,  \
      .metavar = "FILE", .help = "this stage's CURVE secret key (turns encryption on)" },   \
    { .name = "curve-public-file", .type = PW_OPT_STRING, .dest = &(sec).public_key_file,  \
      .metavar = "FILE", .help = "this stage's CURVE public key (needed when connecting)" },\
    { .name = "curve-server-file", .type = PW_OPT_STRING, .dest = &(sec).server_key_file,  \
      .metavar = "FILE", .help = "public key of the binding stages (needed when connecting)" }, \
    { .name = "curve-allow-file", .type = PW_OPT_STRING, .dest = &(sec).allow_file,        \
      .metavar = "FILE", .help = "client public keys admitted by binding sockets, one per line" }

/* Index of each `reason` value in pw_stage.errors.  The first ones follow
 * pw_record_error (reason = record error - 1). */
enum pw_reason {
    PW_REASON_MALFORMED_JSON,
    PW_REASON_MISSING_FIELD,
    PW_REASON_INVALID_VALUE,
    PW_REASON_OVERSIZE,
    PW_REASON_INVALID_UTF8,
    PW_REASON_EMPTY,
    PW_REASON_PROCESSING,
    PW_REASON_PUSH_FAILED,
    PW_REASON_COUNT
};

_Static_assert(PW_REASON_PROCESSING == PW_REC_PROCESSING - 1 && PW_REASON_MALFORMED_JSON == PW_REC_MALFORMED_JSON - 1,
               "the record reasons follow pw_record_error");

static inline enum pw_reason pw_reason_of(pw_record_error e) { return (enum pw_reason)(e - 1); }

typedef struct pw_stage {
    pw_common_options opts;
    pw_registry *registry;
    /* the metrics every stage pushes (docs/contract.md, "Metrics") */
    pw_counter *processed;
    pw_counter_vec *errors;
    pw_gauge *lag;               /* an age (pw_age_register): set the watermark, 0 = caught up */
    pw_histogram *duration;
    pw_gauge *up;
    pw_gauge *build_info;
    pw_pusher *pusher;
    /* stats line bookkeeping */
    uint64_t started_ns;
    uint64_t stats_every_ns;
    uint64_t next_stats_ns;
    uint64_t last_stats_ns;
    uint64_t last_stats_processed;
} pw_stage;

/* After option parsing: starts logging and registers the common metrics.
 * The stage then registers its own metrics in st->registry.  PW_OK or
 * PW_ENOMEM (logged). */
int pw_stage_init(pw_stage *st);

/* Installs signal handlers, sets pipeline_stage_up 1 and starts pushing
 * (when a Pushgateway is configured).  Logs "started". */
int pw_stage_start(pw_stage *st);

bool pw_stage_running(void);
bool pw_stage_hurry(void);
/* Ask the loop to stop as if a signal came (used on fatal errors). */
void pw_stage_request_stop(void);

/* Logs a `stats` line when one is due: processed, rate (records/s since the
 * previous line), lag_seconds, errors, pushes and push_failures (when
 * pushing), plus up to 4 stage-specific fields. */
void pw_stage_stats(pw_stage *st, uint64_t now_ns, const pw_field *extra, size_t nextra);

/* Sets up 0, pushes the final metrics (or deletes the group), logs
 * "stopped", frees the registry.  Returns the exit code to use. */
int pw_stage_finish(pw_stage *st, int exit_code);

/* Total of st->errors over all reasons. */
uint64_t pw_stage_errors_total(const pw_stage *st);

#endif

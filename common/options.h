/*
 * options.h: command-line parsing shared by the stages (getopt_long).
 *
 * Each stage describes its own flags in a table of pw_option; the flags
 * every stage takes (docs/contract.md, "Command lines") are added here, with PUSHGATEWAY_URL as the
 * fallback for --pushgateway.  Numbers are parsed strictly: the whole
 * string must be a number ("12abc" is refused), in range, and negative
 * values are refused where they mean nothing.  A bad flag prints exactly
 *     <stage>: --<flag>: <reason>
 *     usage: <stage> [OPTIONS]   (try --help)
 * on stderr and the parse returns PW_OPTIONS_USAGE; main exits 2.
 * --help prints every flag with its help text (the documentation of the
 * flag) on stdout; --version prints "<stage> <version>".
 *
 * Strings stored into `const char **` destinations point into argv or the
 * environment; they live as long as the process.  Not thread-safe; call from
 * main before starting threads.
 */
#ifndef PW_OPTIONS_H
#define PW_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"
#include "pw.h"

typedef enum pw_option_type {
    PW_OPT_STRING,  /* dest: const char ** */
    PW_OPT_U64,     /* dest: uint64_t *, inclusive range [min, max] */
    PW_OPT_DOUBLE,  /* dest: double *, inclusive range [dmin, dmax], finite */
    PW_OPT_FLAG,    /* dest: bool *, no argument, sets true */
    PW_OPT_CHOICE,  /* dest: int *, index into choices (NULL-terminated) */
} pw_option_type;

typedef struct pw_option {
    const char *name;     /* long name without "--" */
    pw_option_type type;
    void *dest;
    const char *metavar;  /* e.g. "EP", "N" */
    const char *help;     /* one line; the default should be stated in it */
    uint64_t min, max;
    double dmin, dmax;
    const char *const *choices;
    /* PW_OPT_STRING only, optional: NULL when the value is acceptable, else
     * the reason, reported like every other bad value (exit 2). */
    const char *(*check)(const char *value);
} pw_option;

typedef struct pw_common_options {
    const char *stage;         /* "producer", "worker", "sink" */
    const char *pushgateway;   /* base URL or NULL: do not push */
    double push_interval;      /* seconds, default 2 */
    const char *job;           /* default "pipeline" */
    char instance[256];        /* default "<stage>-<hostname>" */
    pw_log_level log_level;    /* default info */
    bool delete_on_exit;       /* DELETE the push group instead of a final push */
    const char *push_auth_file; /* file holding "user:password" or "Bearer TOKEN" */
    const char *push_ca_file;  /* CA bundle for an https:// Pushgateway */
} pw_common_options;

/* What pw_options_parse returns, by pw.h's convention: PW_OK, a positive
 * second kind of success, or a negative PW_E* code. */
enum {
    PW_OPTIONS_CONTINUE = PW_OK,   /* run the stage */
    PW_OPTIONS_EXIT_OK = 1,        /* --help or --version was printed; exit 0 */
    PW_OPTIONS_USAGE = PW_EINVAL,  /* error printed on stderr; exit 2 */
};

/* Parses argv.  stage_opts may be NULL when n is 0.  `summary` is the first
 * line of --help.  Destinations keep their values (defaults) unless a flag
 * sets them. */
int pw_options_parse(int argc, char **argv, const char *stage, const char *summary,
                     const pw_option *stage_opts, size_t n, pw_common_options *common);

/* Strict parsers, also used by tests.  Return PW_OK or PW_EINVAL, and set
 * *why to a static reason ("not a number", "out of range [0, 100]" is built
 * by the caller from min/max). */
int pw_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out, const char **why);
int pw_parse_double(const char *s, double min, double max, double *out, const char **why);

#endif

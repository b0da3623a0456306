/*
 * options.c: one getopt_long loop for every stage.
 *
 * The common flags are described with the same pw_option records as a
 * stage's own, appended after them, so parsing, validation and --help treat
 * both alike; only the few rules that belong to a common flag (push interval
 * must be > 0, empty --pushgateway means "none", instance fits its array)
 * are special-cased by index.
 *
 * Decisions an operator would ask about:
 *  - Numbers are decimal only.  "0x10" and "010" as octal are surprises in a
 *    rate or a count, so hex is refused and leading zeros are plain decimal.
 *    No sign, no surrounding spaces; doubles accept [-]digits[.digits][e±N]
 *    and nothing else (no inf, nan, hex floats).
 *  - Long names must be written in full.  getopt_long would accept a unique
 *    prefix ("--rat 5"), which silently changes meaning the day a new flag
 *    shares the prefix, so abbreviations are refused.
 *  - A separate value that starts with "--" is taken as a forgotten value
 *    ("--instance --job x"), not as the value; --flag=--x still works.
 *  - String values must not be empty, except --pushgateway "" which
 *    explicitly turns pushing off even when PUSHGATEWAY_URL is set.
 *  - Endpoint flags (every option whose check is pw_endpoints_check) also
 *    get their tcp:// ports checked here: 1..65535 or "*".  libzmq does not
 *    check: "tcp://127.0.0.1:99999" silently listens on 34463 (99999 mod
 *    65536).  --pushgateway (and PUSHGATEWAY_URL) must be an http:// or
 *    https:// URL with a host; anything else would only fail at the first
 *    push, minutes later, as a warning.
 *
 * No static state survives a call: optind is reset to 0 (GNU getopt's full
 * re-initialisation), so tests may parse many command lines in one process.
 * The only allocation is the getopt_long table, freed before returning.
 * getopt keeps its state in globals, so this is main-thread-only code.
 */
#include "options.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pw.h"
#include "transport.h"

enum common_flag {
    C_PUSHGATEWAY,
    C_PUSH_INTERVAL,
    C_JOB,
    C_INSTANCE,
    C_LOG_LEVEL,
    C_DELETE_ON_EXIT,
    C_PUSH_AUTH_FILE,
    C_PUSH_CA_FILE,
    C_HELP,
    C_VERSION,
    C_COUNT
};

/* getopt_long returns OPT_VAL_BASE + index: above every short-option byte,
 * so it cannot be confused with '?' or ':'. */
#define OPT_VAL_BASE 0x100
#define PUSH_INTERVAL_DEFAULT 2.0
#define PUSH_INTERVAL_MAX 3600.0
#define HELP_COLUMN 30

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* The port of every tcp:// endpoint of a list that pw_endpoints_check
 * accepted: decimal 1..65535, or "*" (any free port). */
static const char *endpoint_ports_check(const char *list)
{
    static const char bad[] = "port out of range (1-65535, or * for any free port)";
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, ",");
        if (n > 6 && strncmp(p, "tcp://", 6) == 0) {
            const char *port = NULL;
            for (const char *q = p + 6; q < p + n; q++)
                if (*q == ':')
                    port = q + 1;
            size_t len = port ? (size_t)(p + n - port) : 0;
            if (port && !(len == 1 && *port == '*')) {
                unsigned long v = 0;
                if (len == 0 || len > 5)
                    return bad;
                for (size_t i = 0; i < len; i++) {
                    if (!is_digit(port[i]))
                        return bad;
                    v = v * 10 + (unsigned long)(port[i] - '0');
                }
                if (v < 1 || v > 65535)
                    return bad;
            }
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return NULL;
}

/* --pushgateway: empty (no pushing) or http(s)://HOST[...]. */
static const char *pushgateway_url_check(const char *value)
{
    if (!*value)
        return NULL;
    size_t scheme = strncmp(value, "http://", 7) == 0 ? 7 : strncmp(value, "https://", 8) == 0 ? 8 : 0;
    if (!scheme)
        return "not an http:// or https:// URL";
    const char *host = value + scheme;
    const char *at = strchr(host, '@'); /* user:pass@host */
    if (at && at < host + strcspn(host, "/"))
        host = at + 1;
    if (!*host || *host == '/' || *host == ':')
        return "URL has no host";
    return NULL;
}

/* Values of common flags that need post-processing. */
typedef struct common_scratch {
    const char *instance;
    int log_level;
    bool help;
    bool version;
} common_scratch;

static void build_common_table(pw_option t[C_COUNT], pw_common_options *c, common_scratch *s)
{
    memset(t, 0, sizeof(pw_option) * C_COUNT);
    t[C_PUSHGATEWAY] = (pw_option){ .name = "pushgateway", .type = PW_OPT_STRING,
        .dest = &c->pushgateway, .metavar = "URL",
        .help = "Pushgateway base URL, http(s)://HOST:PORT, e.g. http://127.0.0.1:9091 "
                "(default: $PUSHGATEWAY_URL; empty: do not push)",
        .check = pushgateway_url_check };
    t[C_PUSH_INTERVAL] = (pw_option){ .name = "push-interval", .type = PW_OPT_DOUBLE,
        .dest = &c->push_interval, .metavar = "SECONDS",
        .help = "seconds between pushes, > 0 and <= 3600 (default 2)",
        .dmin = 0, .dmax = PUSH_INTERVAL_MAX };
    t[C_JOB] = (pw_option){ .name = "job", .type = PW_OPT_STRING, .dest = &c->job,
        .metavar = "NAME", .help = "Pushgateway job label (default pipeline)" };
    t[C_INSTANCE] = (pw_option){ .name = "instance", .type = PW_OPT_STRING,
        .dest = &s->instance, .metavar = "NAME",
        .help = "instance label; keep it stable across restarts (default <stage>-<hostname>)" };
    t[C_LOG_LEVEL] = (pw_option){ .name = "log-level", .type = PW_OPT_CHOICE,
        .dest = &s->log_level, .metavar = "LEVEL",
        .help = "lowest level logged: debug, info, warn or error (default info)",
        .choices = pw_log_level_names };
    t[C_DELETE_ON_EXIT] = (pw_option){ .name = "delete-on-exit", .type = PW_OPT_FLAG,
        .dest = &c->delete_on_exit,
        .help = "on clean exit delete this instance's Pushgateway group "
                "instead of pushing pipeline_stage_up 0" };
    t[C_PUSH_AUTH_FILE] = (pw_option){ .name = "push-auth-file", .type = PW_OPT_STRING,
        .dest = &c->push_auth_file, .metavar = "FILE",
        .help = "file holding user:password or \"Bearer TOKEN\" for the Pushgateway (default none)" };
    t[C_PUSH_CA_FILE] = (pw_option){ .name = "push-ca-file", .type = PW_OPT_STRING,
        .dest = &c->push_ca_file, .metavar = "FILE",
        .help = "CA bundle to verify an https:// Pushgateway (default: system CAs)" };
    t[C_HELP] = (pw_option){ .name = "help", .type = PW_OPT_FLAG, .dest = &s->help,
        .help = "print this help and exit" };
    t[C_VERSION] = (pw_option){ .name = "version", .type = PW_OPT_FLAG, .dest = &s->version,
        .help = "print the version and exit" };
}

static void set_common_defaults(pw_common_options *c, const char *stage)
{
    memset(c, 0, sizeof *c);
    c->stage = stage;
    const char *env = getenv("PUSHGATEWAY_URL");
    c->pushgateway = env && *env ? env : NULL;
    c->push_interval = PUSH_INTERVAL_DEFAULT;
    c->job = "pipeline";
    c->log_level = PW_LOG_INFO;

    char host[256];
    if (gethostname(host, sizeof host) != 0 || host[0] == '\0')
        snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    int n = snprintf(c->instance, sizeof c->instance, "%s-%s", stage, host);
    if (n < 0)
        c->instance[0] = '\0';
}

/* Prints `<stage>: <dashes><name>: <reason>` and the usage line. */
static int usage_error(const char *stage, const char *dashes, const char *name,
                       size_t name_len, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int usage_error(const char *stage, const char *dashes, const char *name,
                       size_t name_len, const char *fmt, ...)
{
    fprintf(stderr, "%s: %s%.*s: ", stage, dashes, (int)name_len, name);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nusage: %s [OPTIONS]   (try --help)\n", stage);
    return PW_OPTIONS_USAGE;
}

/* `<stage>: --<flag>: <why> (got '<value>')`, or without the value. */
static int flag_error(const char *stage, const pw_option *o, const char *why, const char *value)
{
    if (value)
        return usage_error(stage, "--", o->name, strlen(o->name), "%s (got '%s')", why, value);
    return usage_error(stage, "--", o->name, strlen(o->name), "%s", why);
}

int pw_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out, const char **why)
{
    const char *ignored;
    if (!why)
        why = &ignored;
    if (!s || !*s) {
        *why = "not a number";
        return PW_EINVAL;
    }
    if (s[0] == '-') {
        *why = "must not be negative";
        return PW_EINVAL;
    }
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') {
            *why = "not a number";
            return PW_EINVAL;
        }
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) {
            *why = "out of range";
            return PW_EINVAL;
        }
        v = v * 10 + d;
    }
    if (v < min || v > max) {
        *why = "out of range";
        return PW_EINVAL;
    }
    *out = v;
    return PW_OK;
}

int pw_parse_double(const char *s, double min, double max, double *out, const char **why)
{
    const char *ignored;
    if (!why)
        why = &ignored;
    *why = "not a number";
    if (!s || !*s)
        return PW_EINVAL;
    /* strtod alone would take " 1", "+1", "inf", "nan" and "0x1p3". */
    const char *p = s[0] == '-' ? s + 1 : s;
    if (!is_digit(p[0]) && !(p[0] == '.' && is_digit(p[1])))
        return PW_EINVAL;
    if (strpbrk(s, "xXpP"))
        return PW_EINVAL;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end != '\0')
        return PW_EINVAL;
    if (errno == ERANGE || !isfinite(v) || v < min || v > max) {
        *why = "out of range";
        return PW_EINVAL;
    }
    *out = v == 0 ? 0.0 : v; /* no -0 */
    return PW_OK;
}

/* Stores `value` into o->dest after checking it; prints the error itself. */
static int apply_value(const char *stage, const pw_option *o, const char *value, bool allow_empty)
{
    const char *why = NULL;
    switch (o->type) {
    case PW_OPT_STRING:
        if (!*value && !allow_empty)
            return flag_error(stage, o, "must not be empty", NULL);
        if (o->check && (why = o->check(value)))
            return flag_error(stage, o, why, value);
        if (o->check == pw_endpoints_check && (why = endpoint_ports_check(value)))
            return flag_error(stage, o, why, value);
        *(const char **)o->dest = value;
        return PW_OPTIONS_CONTINUE;
    case PW_OPT_U64: {
        uint64_t v;
        if (pw_parse_u64(value, o->min, o->max, &v, &why) != PW_OK) {
            if (strcmp(why, "out of range") == 0)
                return usage_error(stage, "--", o->name, strlen(o->name),
                                   "out of range [%llu, %llu] (got '%s')",
                                   (unsigned long long)o->min, (unsigned long long)o->max, value);
            return flag_error(stage, o, why, value);
        }
        *(uint64_t *)o->dest = v;
        return PW_OPTIONS_CONTINUE;
    }
    case PW_OPT_DOUBLE: {
        double v;
        if (pw_parse_double(value, o->dmin, o->dmax, &v, &why) != PW_OK) {
            if (strcmp(why, "out of range") == 0)
                return usage_error(stage, "--", o->name, strlen(o->name),
                                   "out of range [%g, %g] (got '%s')", o->dmin, o->dmax, value);
            return flag_error(stage, o, why, value);
        }
        *(double *)o->dest = v;
        return PW_OPTIONS_CONTINUE;
    }
    case PW_OPT_CHOICE:
        for (int i = 0; o->choices && o->choices[i]; i++) {
            if (strcmp(value, o->choices[i]) == 0) {
                *(int *)o->dest = i;
                return PW_OPTIONS_CONTINUE;
            }
        }
        fprintf(stderr, "%s: --%s: must be one of ", stage, o->name);
        for (int i = 0; o->choices && o->choices[i]; i++)
            fprintf(stderr, "%s%s", i ? ", " : "", o->choices[i]);
        fprintf(stderr, " (got '%s')\nusage: %s [OPTIONS]   (try --help)\n", value, stage);
        return PW_OPTIONS_USAGE;
    case PW_OPT_FLAG:
        *(bool *)o->dest = true;
        return PW_OPTIONS_CONTINUE;
    }
    return flag_error(stage, o, "unsupported option type", NULL);
}

/* The rules of common flags beyond their pw_option record. */
static int check_common(const char *stage, int which, const pw_option *o, const char *value,
                        pw_common_options *c, common_scratch *s)
{
    switch (which) {
    case C_PUSHGATEWAY:
        if (!*value)
            c->pushgateway = NULL;
        return PW_OPTIONS_CONTINUE;
    case C_PUSH_INTERVAL:
        if (!(c->push_interval > 0))
            return usage_error(stage, "--", o->name, strlen(o->name),
                               "out of range (0, %g] (got '%s')", PUSH_INTERVAL_MAX, value);
        return PW_OPTIONS_CONTINUE;
    case C_INSTANCE:
        if (strlen(s->instance) >= sizeof c->instance)
            return usage_error(stage, "--", o->name, strlen(o->name),
                               "too long (at most %zu bytes)", sizeof c->instance - 1);
        memcpy(c->instance, s->instance, strlen(s->instance) + 1);
        return PW_OPTIONS_CONTINUE;
    case C_LOG_LEVEL:
        c->log_level = (pw_log_level)s->log_level;
        return PW_OPTIONS_CONTINUE;
    default:
        return PW_OPTIONS_CONTINUE;
    }
}

static size_t option_left_column(const pw_option *o, char *out, size_t cap)
{
    int n;
    if (o->type == PW_OPT_FLAG) {
        n = snprintf(out, cap, "--%s", o->name);
    } else if (o->metavar) {
        n = snprintf(out, cap, "--%s %s", o->name, o->metavar);
    } else if (o->type == PW_OPT_CHOICE && o->choices) {
        n = snprintf(out, cap, "--%s ", o->name);
        for (int i = 0; o->choices[i] && n >= 0 && (size_t)n < cap; i++)
            n += snprintf(out + n, cap - (size_t)n, "%s%s", i ? "|" : "", o->choices[i]);
    } else {
        n = snprintf(out, cap, "--%s %s", o->name,
                     o->type == PW_OPT_STRING ? "VALUE" : o->type == PW_OPT_U64 ? "N" : "X");
    }
    if (n < 0)
        return 0;
    return (size_t)n < cap ? (size_t)n : cap - 1;
}

static void print_option(const pw_option *o)
{
    char left[160];
    size_t len = option_left_column(o, left, sizeof left);
    const char *help = o->help ? o->help : "";
    if (len <= HELP_COLUMN - 4)
        printf("  %-*s  %s\n", HELP_COLUMN - 4, left, help);
    else
        printf("  %s\n  %-*s  %s\n", left, HELP_COLUMN - 4, "", help);
}

static void print_help(const char *stage, const char *summary, const pw_option *stage_opts,
                       size_t n, const pw_option *common_opts)
{
    printf("usage: %s [OPTIONS]\n", stage);
    if (summary && *summary)
        printf("%s\n", summary);
    if (n) {
        printf("\n%s options:\n", stage);
        for (size_t i = 0; i < n; i++)
            print_option(&stage_opts[i]);
    }
    printf("\ncommon options:\n");
    for (size_t i = 0; i < C_COUNT; i++)
        print_option(&common_opts[i]);
    fflush(stdout);
}

/* True when `token` spells --name in full (optionally followed by =value). */
static bool spelled_in_full(const char *token, const char *name)
{
    if (strncmp(token, "--", 2) != 0)
        return false;
    size_t len = strlen(name);
    return strncmp(token + 2, name, len) == 0 && (token[2 + len] == '\0' || token[2 + len] == '=');
}

static int parse_loop(int argc, char **argv, const char *stage, const char *summary,
                      const pw_option *stage_opts, size_t n, const pw_option *common_opts,
                      const struct option *longs, pw_common_options *common,
                      common_scratch *scratch)
{
    opterr = 0;  /* every message is ours, in the contract's format */
    optind = 0;  /* GNU: full re-initialisation, so parsing can happen again */
    for (;;) {
        int at = optind ? optind : 1; /* "+" mode: the token getopt is about to read */
        int c = getopt_long(argc, argv, "+:", longs, NULL);
        if (c == -1)
            break;
        const char *token = at < argc ? argv[at] : "";
        size_t token_len = strcspn(token, "=");
        if (c == ':') {
            const pw_option *o = optopt >= OPT_VAL_BASE
                ? ((size_t)(optopt - OPT_VAL_BASE) < n ? &stage_opts[optopt - OPT_VAL_BASE]
                                                       : &common_opts[(size_t)(optopt - OPT_VAL_BASE) - n])
                : NULL;
            if (o)
                return usage_error(stage, "--", o->name, strlen(o->name), "missing value");
            return usage_error(stage, "", token, token_len, "missing value");
        }
        if (c == '?') {
            if (optopt >= OPT_VAL_BASE)
                return usage_error(stage, "", token, token_len, "takes no value");
            return usage_error(stage, "", token, token_len, "unknown option");
        }
        if (c < OPT_VAL_BASE)
            return usage_error(stage, "", token, token_len, "unknown option");

        size_t k = (size_t)(c - OPT_VAL_BASE);
        const pw_option *o = k < n ? &stage_opts[k] : &common_opts[k - n];
        if (!spelled_in_full(token, o->name))
            return usage_error(stage, "", token, token_len,
                               "unknown option (abbreviations are not accepted; did you mean --%s?)",
                               o->name);
        if (o->type != PW_OPT_FLAG && token[token_len] != '=' && strncmp(optarg, "--", 2) == 0)
            return usage_error(stage, "--", o->name, strlen(o->name),
                               "missing value (next argument '%s' is an option; "
                               "write --%s=%s to mean it)", optarg, o->name, optarg);

        const char *value = o->type == PW_OPT_FLAG ? "" : optarg;
        bool allow_empty = k >= n && k - n == C_PUSHGATEWAY;
        int rc = apply_value(stage, o, value, allow_empty);
        if (rc == PW_OPTIONS_CONTINUE && k >= n)
            rc = check_common(stage, (int)(k - n), o, value, common, scratch);
        if (rc != PW_OPTIONS_CONTINUE)
            return rc;
        if (scratch->help) {
            print_help(stage, summary, stage_opts, n, common_opts);
            return PW_OPTIONS_EXIT_OK;
        }
        if (scratch->version) {
            printf("%s %s\n", stage, PW_VERSION);
            fflush(stdout);
            return PW_OPTIONS_EXIT_OK;
        }
    }
    if (optind < argc)
        return usage_error(stage, "", argv[optind], strlen(argv[optind]),
                           "unexpected argument (every option starts with --)");
    return PW_OPTIONS_CONTINUE;
}

int pw_options_parse(int argc, char **argv, const char *stage, const char *summary,
                     const pw_option *stage_opts, size_t n, pw_common_options *common)
{
    if (!stage_opts)
        n = 0;
    set_common_defaults(common, stage);
    common_scratch scratch = { NULL, PW_LOG_INFO, false, false };
    pw_option common_opts[C_COUNT];
    build_common_table(common_opts, common, &scratch);

    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < C_COUNT; j++)
            if (strcmp(stage_opts[i].name, common_opts[j].name) == 0)
                return usage_error(stage, "--", stage_opts[i].name, strlen(stage_opts[i].name),
                                   "defined twice (stage bug)");

    struct option *longs = calloc(n + C_COUNT + 1, sizeof *longs);
    if (!longs) {
        fprintf(stderr, "%s: out of memory parsing options\n", stage);
        return PW_OPTIONS_USAGE;
    }
    for (size_t k = 0; k < n + C_COUNT; k++) {
        const pw_option *o = k < n ? &stage_opts[k] : &common_opts[k - n];
        longs[k].name = o->name;
        longs[k].has_arg = o->type == PW_OPT_FLAG ? no_argument : required_argument;
        longs[k].flag = NULL;
        longs[k].val = OPT_VAL_BASE + (int)k;
    }

    int rc = PW_OPTIONS_CONTINUE;
    if (argc > 1 && argv)
        rc = parse_loop(argc, argv, stage, summary, stage_opts, n, common_opts, longs, common,
                        &scratch);
    free(longs);
    /* A URL from the environment was not seen by the flag's check. */
    const char *why;
    if (rc == PW_OPTIONS_CONTINUE && common->pushgateway &&
        (why = pushgateway_url_check(common->pushgateway)))
        return usage_error(stage, "--", "pushgateway", strlen("pushgateway"),
                           "%s (got '%s' from PUSHGATEWAY_URL)", why, common->pushgateway);
    return rc;
}

/*
 * fuzz_options: pw_options_parse with an argv built from the input.
 *
 * The input is split on NUL into argv words (argv[0] is the stage name);
 * the option table is the producer's, so every option type is covered
 * (strings, ranged integers, a ranged double, flags, a choice, and the
 * CURVE flags every stage takes).  Oracles: never crash, return one of the
 * three documented codes, and when the stage may run, every destination
 * holds a value its flag allows.  The parser prints usage errors and --help
 * text; that would be the bottleneck, so the stdio streams are pointed at
 * /dev/null once.  Only the FILE pointers are swapped, not fds 1 and 2:
 * libFuzzer and the sanitizers keep reporting on the real stderr.
 */
#include <math.h>

#include "fuzz_common.h"
#include "options.h"
#include "pw.h"
#include "stage.h"
#include "transport.h"

#define MAX_ARGS 64

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    unsetenv("PUSHGATEWAY_URL");
    FILE *null = fopen("/dev/null", "w");
    if (!null)
        abort();
    stdout = null; /* glibc: plain variables, assignable */
    stderr = null;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct {
        const char *bind, *ack, *id, *fault_kinds;
        uint64_t rate, count, ack_timeout_ms, batch, max_in_flight, drain_timeout_ms;
        double fault_rate;
        pw_security security;
    } p = {
        .bind = "tcp://127.0.0.1:5557", .ack = "tcp://127.0.0.1:5559", .id = "p1",
        .fault_kinds = "all", .rate = 1000, .ack_timeout_ms = 5000, .batch = 100,
        .max_in_flight = 100000, .drain_timeout_ms = 10000,
    };
    static const char *const fsync_choices[] = { "always", "batch", "never", NULL };
    int fsync_policy = 1;
    bool flag = false;
    const pw_option opts[] = {
        { .name = "bind", .type = PW_OPT_STRING, .dest = &p.bind, .metavar = "EP", .help = "h" },
        { .name = "ack", .type = PW_OPT_STRING, .dest = &p.ack, .metavar = "EP", .help = "h" },
        { .name = "id", .type = PW_OPT_STRING, .dest = &p.id, .metavar = "NAME", .help = "h" },
        { .name = "rate", .type = PW_OPT_U64, .dest = &p.rate, .metavar = "N", .help = "h",
          .min = 0, .max = 100000000 },
        { .name = "count", .type = PW_OPT_U64, .dest = &p.count, .metavar = "N", .help = "h",
          .min = 0, .max = UINT64_MAX / 2 },
        { .name = "fault-rate", .type = PW_OPT_DOUBLE, .dest = &p.fault_rate, .metavar = "P",
          .help = "h", .dmin = 0, .dmax = 1 },
        { .name = "fault-kinds", .type = PW_OPT_STRING, .dest = &p.fault_kinds, .metavar = "LIST",
          .help = "h" },
        { .name = "ack-timeout", .type = PW_OPT_U64, .dest = &p.ack_timeout_ms, .metavar = "MS",
          .help = "h", .min = 10, .max = 3600000 },
        { .name = "batch", .type = PW_OPT_U64, .dest = &p.batch, .metavar = "N", .help = "h",
          .min = 1, .max = 10000 },
        { .name = "max-in-flight", .type = PW_OPT_U64, .dest = &p.max_in_flight, .metavar = "N",
          .help = "h", .min = 1, .max = 1u << 24 },
        { .name = "drain-timeout", .type = PW_OPT_U64, .dest = &p.drain_timeout_ms,
          .metavar = "MS", .help = "h", .min = 0, .max = 3600000 },
        { .name = "fsync", .type = PW_OPT_CHOICE, .dest = &fsync_policy, .help = "h",
          .choices = fsync_choices },
        { .name = "flag", .type = PW_OPT_FLAG, .dest = &flag, .help = "h" },
        PW_SECURITY_OPTIONS(p.security),
    };

    char *words[MAX_ARGS], *block;
    size_t n = fuzz_split(data, size, words, MAX_ARGS - 2, &block);
    char *argv[MAX_ARGS];
    argv[0] = "producer";
    for (size_t i = 0; i < n; i++)
        argv[i + 1] = words[i];
    argv[n + 1] = NULL;
    int argc = (int)n + 1;

    pw_common_options common;
    int rc = pw_options_parse(argc, argv, "producer", "producer: fuzzing", opts,
                              PW_ARRAY_LEN(opts), &common);
    FUZZ_CHECK(rc == PW_OPTIONS_CONTINUE || rc == PW_OPTIONS_EXIT_OK || rc == PW_OPTIONS_USAGE,
               "unknown return code");
    if (rc == PW_OPTIONS_CONTINUE) {
        FUZZ_CHECK(p.rate <= 100000000 && p.count <= UINT64_MAX / 2, "u64 out of range");
        FUZZ_CHECK(p.ack_timeout_ms >= 10 && p.ack_timeout_ms <= 3600000, "u64 out of range");
        FUZZ_CHECK(p.batch >= 1 && p.batch <= 10000, "u64 out of range");
        FUZZ_CHECK(p.max_in_flight >= 1 && p.max_in_flight <= (1u << 24), "u64 out of range");
        FUZZ_CHECK(p.drain_timeout_ms <= 3600000, "u64 out of range");
        FUZZ_CHECK(isfinite(p.fault_rate) && p.fault_rate >= 0 && p.fault_rate <= 1,
                   "double out of range");
        FUZZ_CHECK(fsync_policy >= 0 && fsync_policy <= 2, "choice out of range");
        FUZZ_CHECK(p.bind && p.ack && p.id && p.fault_kinds, "string option became NULL");
        FUZZ_CHECK(memchr(common.instance, '\0', sizeof common.instance) != NULL,
                   "instance is not NUL-terminated");
        FUZZ_CHECK(isfinite(common.push_interval) && common.push_interval > 0 &&
                   common.push_interval <= 3600, "push interval out of range");
        FUZZ_CHECK(common.job != NULL, "job became NULL");
        FUZZ_CHECK((unsigned)common.log_level <= PW_LOG_ERROR, "log level out of range");
        FUZZ_CHECK(strcmp(common.stage, "producer") == 0, "stage changed");
    }
    free(block);
    return 0;
}

/*
 * test_options.c: the command-line contract (docs/contract.md, "Command lines").
 *
 * Each parse runs with fd 1 and fd 2 redirected to temp files, so the tests
 * see exactly what an operator would: the stderr message naming the flag,
 * the usage line, and --help / --version on stdout.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "options.h"
#include "pw.h"
#include "support.h"
#include "transport.h"

#define USAGE_LINE "usage: tstage [OPTIONS]   (try --help)\n"

static const char *opt_bind;
static const char *opt_connect;
static uint64_t opt_rate;
static uint64_t opt_count;
static double opt_fault_rate;
static bool opt_verbose;
static int opt_fsync;

static const char *const fsync_choices[] = { "always", "batch", "never", NULL };

static const pw_option stage_opts[] = {
    { .name = "bind", .type = PW_OPT_STRING, .dest = &opt_bind, .metavar = "EP",
      .help = "endpoint to bind (default tcp://127.0.0.1:5557)" },
    { .name = "connect", .type = PW_OPT_STRING, .dest = &opt_connect, .metavar = "EP[,EP...]",
      .help = "endpoints to connect to, checked as the stages check theirs (default none)",
      .check = pw_endpoints_check },
    { .name = "rate", .type = PW_OPT_U64, .dest = &opt_rate, .metavar = "N",
      .help = "records per second, 0 = as fast as possible (default 0)", .min = 0, .max = 1000000 },
    { .name = "count", .type = PW_OPT_U64, .dest = &opt_count, .metavar = "N",
      .help = "records to send (default 10)", .min = 1, .max = 100 },
    { .name = "fault-rate", .type = PW_OPT_DOUBLE, .dest = &opt_fault_rate, .metavar = "P",
      .help = "share of faulty records, 0..1 (default 0)", .dmin = 0, .dmax = 1 },
    { .name = "verbose", .type = PW_OPT_FLAG, .dest = &opt_verbose, .help = "say more" },
    { .name = "fsync", .type = PW_OPT_CHOICE, .dest = &opt_fsync,
      .help = "when to fsync (default batch)", .choices = fsync_choices },
};

typedef struct parse_result {
    int rc;
    char out[16384];
    char err[4096];
    pw_common_options common;
} parse_result;

static parse_result R;

static void reset(void)
{
    opt_bind = "tcp://127.0.0.1:5557";
    opt_connect = NULL;
    opt_rate = 0;
    opt_count = 10;
    opt_fault_rate = 0;
    opt_verbose = false;
    opt_fsync = 1;
    unsetenv("PUSHGATEWAY_URL");
    memset(&R, 0, sizeof R);
}

static int temp_fd(void)
{
    int fd = pw_test_tmpfile("test-options", NULL);
    ck_assert_int_ge(fd, 0);
    return fd;
}

static void slurp(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    ssize_t n;
    lseek(fd, 0, SEEK_SET);
    while (len + 1 < cap && (n = read(fd, buf + len, cap - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    close(fd);
}

/* Parses {"tstage", args..., NULL} capturing stdout and stderr into R. */
static int parse_argv(const char *const *args)
{
    char *argv[64];
    int argc = 0;
    argv[argc++] = "tstage";
    for (; *args; args++)
        argv[argc++] = (char *)*args;
    argv[argc] = NULL;

    fflush(stdout);
    fflush(stderr);
    int out = temp_fd(), err = temp_fd();
    int saved_out = dup(1), saved_err = dup(2);
    dup2(out, 1);
    dup2(err, 2);
    R.rc = pw_options_parse(argc, argv, "tstage", "tstage: does test things", stage_opts,
                            PW_ARRAY_LEN(stage_opts), &R.common);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(saved_out);
    close(saved_err);
    slurp(out, R.out, sizeof R.out);
    slurp(err, R.err, sizeof R.err);
    return R.rc;
}

#define PARSE(...) parse_argv((const char *const[]){ __VA_ARGS__, NULL })

/* The error contract: exit-2 code, line one names the flag with a reason,
 * line two is the usage line, nothing else, nothing on stdout. */
static void assert_usage_error(const char *prefix)
{
    ck_assert_int_eq(R.rc, PW_OPTIONS_USAGE);
    ck_assert_msg(strncmp(R.err, prefix, strlen(prefix)) == 0, "stderr %s does not start with %s",
                  R.err, prefix);
    const char *nl = strchr(R.err, '\n');
    ck_assert_ptr_nonnull(nl);
    /* "<stage>: <flag>: <reason>" with a non-empty reason. */
    const char *flag = strstr(R.err, ": ");
    const char *reason = flag ? strstr(flag + 2, ": ") : NULL;
    ck_assert_msg(reason && reason + 2 < nl, "no reason in %s", R.err);
    ck_assert_str_eq(nl + 1, USAGE_LINE);
    ck_assert_str_eq(R.out, "");
}

START_TEST(test_options_defaults)
{
    char host[256] = "";
    gethostname(host, sizeof host);
    char want[600];
    snprintf(want, sizeof want, "tstage-%s", host);

    ck_assert_int_eq(PARSE(NULL), PW_OPTIONS_CONTINUE);
    ck_assert_str_eq(R.common.stage, "tstage");
    ck_assert_ptr_null(R.common.pushgateway);
    ck_assert_double_eq(R.common.push_interval, 2.0);
    ck_assert_str_eq(R.common.job, "pipeline");
    ck_assert_str_eq(R.common.instance, want);
    ck_assert_int_eq(R.common.log_level, PW_LOG_INFO);
    ck_assert(!R.common.delete_on_exit);
    ck_assert_ptr_null(R.common.push_auth_file);
    ck_assert_ptr_null(R.common.push_ca_file);
    /* Stage destinations keep their defaults. */
    ck_assert_str_eq(opt_bind, "tcp://127.0.0.1:5557");
    ck_assert_uint_eq(opt_count, 10);
    ck_assert_int_eq(opt_fsync, 1);
    ck_assert_str_eq(R.out, "");
    ck_assert_str_eq(R.err, "");
}
END_TEST

START_TEST(test_options_accepts_good_values)
{
    ck_assert_int_eq(PARSE("--bind", "tcp://0.0.0.0:1", "--rate=1000000", "--count", "007",
                           "--fault-rate", "0.25", "--verbose", "--fsync", "never",
                           "--pushgateway", "http://127.0.0.1:9091", "--push-interval=0.5",
                           "--job", "j1", "--instance", "w-1", "--log-level", "debug",
                           "--delete-on-exit", "--push-auth-file", "/etc/auth",
                           "--push-ca-file=/etc/ca.pem"),
                     PW_OPTIONS_CONTINUE);
    ck_assert_str_eq(R.err, "");
    ck_assert_str_eq(opt_bind, "tcp://0.0.0.0:1");
    ck_assert_uint_eq(opt_rate, 1000000);
    ck_assert_uint_eq(opt_count, 7); /* leading zeros are decimal, not octal */
    ck_assert_double_eq(opt_fault_rate, 0.25);
    ck_assert(opt_verbose);
    ck_assert_int_eq(opt_fsync, 2);
    ck_assert_str_eq(R.common.pushgateway, "http://127.0.0.1:9091");
    ck_assert_double_eq(R.common.push_interval, 0.5);
    ck_assert_str_eq(R.common.job, "j1");
    ck_assert_str_eq(R.common.instance, "w-1");
    ck_assert_int_eq(R.common.log_level, PW_LOG_DEBUG);
    ck_assert(R.common.delete_on_exit);
    ck_assert_str_eq(R.common.push_auth_file, "/etc/auth");
    ck_assert_str_eq(R.common.push_ca_file, "/etc/ca.pem");
}
END_TEST

START_TEST(test_options_accepts_range_edges)
{
    ck_assert_int_eq(PARSE("--rate", "0", "--count", "1", "--fault-rate", "0", "--push-interval", "3600"),
                     PW_OPTIONS_CONTINUE);
    ck_assert_uint_eq(opt_rate, 0);
    ck_assert_uint_eq(opt_count, 1);
    ck_assert_double_eq(R.common.push_interval, 3600);
    ck_assert_int_eq(PARSE("--count", "100", "--fault-rate", "1", "--fault-rate", "1e-3",
                           "--push-interval", ".001"),
                     PW_OPTIONS_CONTINUE);
    ck_assert_uint_eq(opt_count, 100);
    ck_assert_double_eq(opt_fault_rate, 0.001); /* the last one wins */
    ck_assert_double_eq(R.common.push_interval, 0.001);
    ck_assert_int_eq(PARSE("--fault-rate", "-0"), PW_OPTIONS_CONTINUE);
    ck_assert(!signbit(opt_fault_rate));
}
END_TEST

START_TEST(test_options_log_levels)
{
    static const char *const names[] = { "debug", "info", "warn", "error" };
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(PARSE("--log-level", names[i]), PW_OPTIONS_CONTINUE);
        ck_assert_int_eq(R.common.log_level, (pw_log_level)i);
    }
}
END_TEST

START_TEST(test_options_endpoint_ports_in_range)
{
    ck_assert_int_eq(PARSE("--connect", "tcp://127.0.0.1:1,tcp://[::1]:65535,tcp://127.0.0.1:*"),
                     PW_OPTIONS_CONTINUE);
    ck_assert_str_eq(opt_connect, "tcp://127.0.0.1:1,tcp://[::1]:65535,tcp://127.0.0.1:*");
    ck_assert_int_eq(PARSE("--connect", "ipc:///tmp/x:99999,inproc://a:b"), PW_OPTIONS_CONTINUE);
    opt_connect = NULL;
    ck_assert_int_eq(PARSE("--connect", "tcp://127.0.0.1:99999"), PW_OPTIONS_USAGE);
    ck_assert_ptr_null(opt_connect); /* a refused value is not stored */
    ck_assert_str_eq(R.err, "tstage: --connect: port out of range (1-65535, or * for any free port) "
                            "(got 'tcp://127.0.0.1:99999')\n" USAGE_LINE);
}
END_TEST

START_TEST(test_options_pushgateway_must_be_http_url)
{
    ck_assert_int_eq(PARSE("--pushgateway", "https://user:pw@gw.example:9091/prefix"), PW_OPTIONS_CONTINUE);
    ck_assert_int_eq(PARSE("--pushgateway", "http://127.0.0.1:9091"), PW_OPTIONS_CONTINUE);
    /* the environment fallback is checked too, and named */
    setenv("PUSHGATEWAY_URL", "gw:9091", 1);
    ck_assert_int_eq(PARSE(NULL), PW_OPTIONS_USAGE);
    ck_assert_str_eq(R.err, "tstage: --pushgateway: not an http:// or https:// URL "
                            "(got 'gw:9091' from PUSHGATEWAY_URL)\n" USAGE_LINE);
    /* a flag overrides a bad environment */
    ck_assert_int_eq(PARSE("--pushgateway", "http://gw:9091"), PW_OPTIONS_CONTINUE);
    ck_assert_int_eq(PARSE("--pushgateway", ""), PW_OPTIONS_CONTINUE);
}
END_TEST

START_TEST(test_options_pushgateway_env_fallback)
{
    setenv("PUSHGATEWAY_URL", "http://gw:9091", 1);
    ck_assert_int_eq(PARSE(NULL), PW_OPTIONS_CONTINUE);
    ck_assert_str_eq(R.common.pushgateway, "http://gw:9091");

    ck_assert_int_eq(PARSE("--pushgateway", "http://flag:9091"), PW_OPTIONS_CONTINUE);
    ck_assert_str_eq(R.common.pushgateway, "http://flag:9091"); /* the flag wins */

    ck_assert_int_eq(PARSE("--pushgateway", ""), PW_OPTIONS_CONTINUE);
    ck_assert_ptr_null(R.common.pushgateway); /* explicit "none" beats the env */

    ck_assert_int_eq(PARSE("--pushgateway="), PW_OPTIONS_CONTINUE);
    ck_assert_ptr_null(R.common.pushgateway);

    setenv("PUSHGATEWAY_URL", "", 1);
    ck_assert_int_eq(PARSE(NULL), PW_OPTIONS_CONTINUE);
    ck_assert_ptr_null(R.common.pushgateway); /* empty env = none */
}
END_TEST

START_TEST(test_options_can_parse_twice_in_one_process)
{
    ck_assert_int_eq(PARSE("--rate", "5", "--verbose"), PW_OPTIONS_CONTINUE);
    ck_assert_uint_eq(opt_rate, 5);
    ck_assert_int_eq(PARSE("--rate", "x"), PW_OPTIONS_USAGE);
    assert_usage_error("tstage: --rate: ");
    ck_assert_int_eq(PARSE("--rate", "6", "--job", "again"), PW_OPTIONS_CONTINUE);
    ck_assert_uint_eq(opt_rate, 6);
    ck_assert_str_eq(R.common.job, "again");
    ck_assert_int_eq(PARSE("--help"), PW_OPTIONS_EXIT_OK);
    ck_assert_int_eq(PARSE("--count", "3"), PW_OPTIONS_CONTINUE);
    ck_assert_uint_eq(opt_count, 3);
}
END_TEST

START_TEST(test_options_rejects_trailing_garbage)
{
    PARSE("--rate", "12abc");
    assert_usage_error("tstage: --rate: not a number");
    ck_assert_ptr_nonnull(strstr(R.err, "12abc"));
}
END_TEST

START_TEST(test_options_reports_the_range)
{
    PARSE("--rate", "1000001");
    assert_usage_error("tstage: --rate: out of range [0, 1000000]");
    PARSE("--count", "0");
    assert_usage_error("tstage: --count: out of range [1, 100]");
    PARSE("--fault-rate", "1.5");
    assert_usage_error("tstage: --fault-rate: out of range [0, 1]");
    PARSE("--push-interval", "0");
    assert_usage_error("tstage: --push-interval: out of range (0, 3600]");
}
END_TEST

START_TEST(test_options_rejects_negative_u64)
{
    PARSE("--rate", "-1");
    assert_usage_error("tstage: --rate: must not be negative");
    ck_assert_uint_eq(opt_rate, 0);
}
END_TEST

START_TEST(test_options_rejects_unknown_choice)
{
    PARSE("--fsync", "sometimes");
    assert_usage_error("tstage: --fsync: must be one of always, batch, never");
    PARSE("--log-level", "loud");
    assert_usage_error("tstage: --log-level: must be one of debug, info, warn, error");
}
END_TEST

START_TEST(test_options_rejects_too_long_instance)
{
    char name[300];
    memset(name, 'i', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    PARSE("--instance", name);
    assert_usage_error("tstage: --instance: too long");
    name[255] = '\0';
    ck_assert_int_eq(PARSE("--instance", name), PW_OPTIONS_CONTINUE);
    ck_assert_str_eq(R.common.instance, name);
}
END_TEST

/* Every row must be refused with a message that starts with `prefix`. */
static const struct bad_case {
    const char *args[4];
    const char *prefix;
} bad_cases[] = {
    { { "--rate", "" }, "tstage: --rate: " },
    { { "--rate", " 12" }, "tstage: --rate: " },
    { { "--rate", "12 " }, "tstage: --rate: " },
    { { "--rate", "+12" }, "tstage: --rate: " },
    { { "--rate", "0x10" }, "tstage: --rate: " },   /* decimal only */
    { { "--rate", "1e3" }, "tstage: --rate: " },
    { { "--rate", "1.0" }, "tstage: --rate: " },
    { { "--rate", "-0" }, "tstage: --rate: " },
    { { "--rate", "18446744073709551616" }, "tstage: --rate: " },
    { { "--rate", "99999999999999999999999" }, "tstage: --rate: " },
    { { "--rate=abc" }, "tstage: --rate: " },
    { { "--count", "101" }, "tstage: --count: " },
    { { "--fault-rate", "nan" }, "tstage: --fault-rate: " },
    { { "--fault-rate", "NaN" }, "tstage: --fault-rate: " },
    { { "--fault-rate", "inf" }, "tstage: --fault-rate: " },
    { { "--fault-rate", "-inf" }, "tstage: --fault-rate: " },
    { { "--fault-rate", "infinity" }, "tstage: --fault-rate: " },
    { { "--fault-rate", "1e999" }, "tstage: --fault-rate: " },
    { { "--fault-rate", "-0.1" }, "tstage: --fault-rate: " },
    { { "--fault-rate", "0.5x" }, "tstage: --fault-rate: " },
    { { "--fault-rate", "0x1p-1" }, "tstage: --fault-rate: " },
    { { "--fault-rate", "" }, "tstage: --fault-rate: " },
    { { "--fault-rate", " 0.5" }, "tstage: --fault-rate: " },
    { { "--fault-rate", "." }, "tstage: --fault-rate: " },
    { { "--fault-rate", "-" }, "tstage: --fault-rate: " },
    { { "--fsync", "ALWAYS" }, "tstage: --fsync: " },
    { { "--fsync", "" }, "tstage: --fsync: " },
    { { "--push-interval", "-1" }, "tstage: --push-interval: " },
    { { "--push-interval", "3601" }, "tstage: --push-interval: " },
    { { "--push-interval", "nan" }, "tstage: --push-interval: " },
    { { "--push-interval", "2s" }, "tstage: --push-interval: " },
    { { "--log-level", "INFO" }, "tstage: --log-level: " },
    { { "--job", "" }, "tstage: --job: " },
    { { "--instance", "" }, "tstage: --instance: " },
    { { "--bind", "" }, "tstage: --bind: " },
    /* libzmq would listen on 99999 mod 65536 = 34463 */
    { { "--connect", "tcp://127.0.0.1:99999" }, "tstage: --connect: port out of range" },
    { { "--connect", "tcp://127.0.0.1:65536" }, "tstage: --connect: port out of range" },
    { { "--connect", "tcp://127.0.0.1:0" }, "tstage: --connect: port out of range" },
    { { "--connect", "tcp://127.0.0.1:5557,tcp://127.0.0.1:70000" }, "tstage: --connect: port out of range" },
    { { "--connect", "tcp://127.0.0.1:55x7" }, "tstage: --connect: port out of range" },
    { { "--connect", "tcp://127.0.0.1:000005557" }, "tstage: --connect: port out of range" },
    { { "--connect", "tcp://127.0.0.1" }, "tstage: --connect: not an endpoint list" },
    { { "--pushgateway", "127.0.0.1:9091" }, "tstage: --pushgateway: not an http:// or https:// URL" },
    { { "--pushgateway", "ftp://gw:21" }, "tstage: --pushgateway: not an http:// or https:// URL" },
    { { "--pushgateway", "http://" }, "tstage: --pushgateway: URL has no host" },
    { { "--pushgateway", "https://:9091" }, "tstage: --pushgateway: URL has no host" },
    { { "--rate" }, "tstage: --rate: missing value" },
    { { "--job" }, "tstage: --job: missing value" },
    { { "--instance", "--job", "x" }, "tstage: --instance: missing value" },
    { { "--verbose=yes" }, "tstage: --verbose: takes no value" },
    { { "--help=me" }, "tstage: --help: takes no value" },
    { { "--no-such-flag" }, "tstage: --no-such-flag: unknown option" },
    { { "--no-such-flag=1" }, "tstage: --no-such-flag: unknown option" },
    { { "--rat", "5" }, "tstage: --rat: unknown option" },        /* no abbreviations */
    { { "--push", "x" }, "tstage: --push: unknown option" },      /* ambiguous prefix */
    { { "-x" }, "tstage: -x: unknown option" },
    { { "-rate", "5" }, "tstage: -rate: unknown option" },
    { { "stray" }, "tstage: stray: unexpected argument" },
    { { "--rate", "5", "extra" }, "tstage: extra: unexpected argument" },
    { { "--", "x" }, "tstage: x: unexpected argument" },
};

START_TEST(test_options_rejects_bad_value)
{
    const struct bad_case *c = &bad_cases[_i];
    const char *args[5] = { 0 };
    memcpy(args, c->args, sizeof c->args);
    parse_argv(args);
    assert_usage_error(c->prefix);
}
END_TEST

START_TEST(test_options_help_lists_every_flag)
{
    ck_assert_int_eq(PARSE("--help"), PW_OPTIONS_EXIT_OK);
    ck_assert_str_eq(R.err, "");
    ck_assert(strncmp(R.out, "usage: tstage [OPTIONS]\ntstage: does test things\n", 48) == 0);
    const char *last = R.out;
    for (size_t i = 0; i < PW_ARRAY_LEN(stage_opts); i++) {
        char flag[64];
        snprintf(flag, sizeof flag, "--%s", stage_opts[i].name);
        const char *at = strstr(R.out, flag);
        ck_assert_msg(at != NULL, "--help lacks %s", flag);
        ck_assert_msg(at > last, "%s out of order", flag); /* stage flags in table order */
        last = at;
        ck_assert_ptr_nonnull(strstr(at, stage_opts[i].help));
        if (stage_opts[i].metavar)
            ck_assert_ptr_nonnull(strstr(at, stage_opts[i].metavar));
    }
    ck_assert_ptr_nonnull(strstr(R.out, "--fsync always|batch|never"));
    static const char *const common[] = {
        "--pushgateway URL", "--push-interval SECONDS", "--job NAME", "--instance NAME",
        "--log-level LEVEL", "--delete-on-exit", "--push-auth-file FILE", "--push-ca-file FILE",
        "--help", "--version",
    };
    for (size_t i = 0; i < PW_ARRAY_LEN(common); i++) {
        const char *at = strstr(last, common[i]);
        ck_assert_msg(at != NULL, "--help lacks %s after the stage flags", common[i]);
        last = at;
    }
    ck_assert_ptr_nonnull(strstr(R.out, "PUSHGATEWAY_URL"));
    ck_assert_ptr_nonnull(strstr(R.out, "(default 2)"));
}
END_TEST

START_TEST(test_options_help_stops_parsing)
{
    ck_assert_int_eq(PARSE("--help", "--rate", "garbage"), PW_OPTIONS_EXIT_OK);
    ck_assert_str_eq(R.err, "");
    ck_assert_int_eq(PARSE("--rate", "garbage", "--help"), PW_OPTIONS_USAGE);
}
END_TEST

START_TEST(test_options_version_prints_stage_and_version)
{
    ck_assert_int_eq(PARSE("--version"), PW_OPTIONS_EXIT_OK);
    ck_assert_str_eq(R.out, "tstage " PW_VERSION "\n");
    ck_assert_str_eq(R.err, "");
}
END_TEST

START_TEST(test_parse_u64_is_strict)
{
    uint64_t v = 42;
    const char *why = NULL;
    ck_assert_int_eq(pw_parse_u64("18446744073709551615", 0, UINT64_MAX, &v, &why), PW_OK);
    ck_assert_uint_eq(v, UINT64_MAX);
    ck_assert_int_eq(pw_parse_u64("0", 0, 10, &v, &why), PW_OK);
    ck_assert_uint_eq(v, 0);
    v = 42;
    ck_assert_int_eq(pw_parse_u64("11", 0, 10, &v, &why), PW_EINVAL);
    ck_assert_str_eq(why, "out of range");
    ck_assert_uint_eq(v, 42); /* untouched on failure */
    ck_assert_int_eq(pw_parse_u64("12abc", 0, 100, &v, &why), PW_EINVAL);
    ck_assert_str_eq(why, "not a number");
    ck_assert_int_eq(pw_parse_u64("", 0, 100, &v, &why), PW_EINVAL);
    ck_assert_int_eq(pw_parse_u64(NULL, 0, 100, &v, &why), PW_EINVAL);
    ck_assert_int_eq(pw_parse_u64("-1", 0, 100, &v, &why), PW_EINVAL);
    ck_assert_str_eq(why, "must not be negative");
    ck_assert_int_eq(pw_parse_u64("0x10", 0, 100, &v, &why), PW_EINVAL);
    ck_assert_int_eq(pw_parse_u64("18446744073709551616", 0, UINT64_MAX, &v, &why), PW_EINVAL);
    ck_assert_str_eq(why, "out of range");
    ck_assert_int_eq(pw_parse_u64("5", 0, 100, &v, NULL), PW_OK); /* why is optional */
}
END_TEST

START_TEST(test_parse_double_is_strict)
{
    double v = 42;
    const char *why = NULL;
    ck_assert_int_eq(pw_parse_double("-1.5e2", -1000, 1000, &v, &why), PW_OK);
    ck_assert_double_eq(v, -150);
    ck_assert_int_eq(pw_parse_double("5.", 0, 10, &v, &why), PW_OK);
    ck_assert_double_eq(v, 5);
    v = 42;
    static const char *const bad[] = { "", " 1", "1 ", "+1", "nan", "-nan", "inf", "INF",
                                       "0x10", "1e", "e5", "1..2", "--1", "1,5" };
    for (size_t i = 0; i < PW_ARRAY_LEN(bad); i++) {
        ck_assert_msg(pw_parse_double(bad[i], -1e9, 1e9, &v, &why) == PW_EINVAL, "accepted '%s'", bad[i]);
        ck_assert_str_eq(why, "not a number");
    }
    ck_assert_int_eq(pw_parse_double("1e400", -INFINITY, INFINITY, &v, &why), PW_EINVAL);
    ck_assert_str_eq(why, "out of range");
    ck_assert_int_eq(pw_parse_double("2", 0, 1, &v, &why), PW_EINVAL);
    ck_assert_str_eq(why, "out of range");
    ck_assert_double_eq(v, 42);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("options");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, reset, NULL);
    tcase_add_test(tc, test_options_defaults);
    tcase_add_test(tc, test_options_accepts_good_values);
    tcase_add_test(tc, test_options_accepts_range_edges);
    tcase_add_test(tc, test_options_log_levels);
    tcase_add_test(tc, test_options_pushgateway_env_fallback);
    tcase_add_test(tc, test_options_endpoint_ports_in_range);
    tcase_add_test(tc, test_options_pushgateway_must_be_http_url);
    tcase_add_test(tc, test_options_can_parse_twice_in_one_process);
    tcase_add_test(tc, test_options_rejects_trailing_garbage);
    tcase_add_test(tc, test_options_reports_the_range);
    tcase_add_test(tc, test_options_rejects_negative_u64);
    tcase_add_test(tc, test_options_rejects_unknown_choice);
    tcase_add_test(tc, test_options_rejects_too_long_instance);
    tcase_add_loop_test(tc, test_options_rejects_bad_value, 0, (int)PW_ARRAY_LEN(bad_cases));
    tcase_add_test(tc, test_options_help_lists_every_flag);
    tcase_add_test(tc, test_options_help_stops_parsing);
    tcase_add_test(tc, test_options_version_prints_stage_and_version);
    tcase_add_test(tc, test_parse_u64_is_strict);
    tcase_add_test(tc, test_parse_double_is_strict);
    suite_add_tcase(s, tc);
    return pw_test_run(s);
}

/*
 * stage.c: the shared life cycle of a stage (see stage.h).
 *
 * Signal handling uses sigaction without SA_RESTART so a blocking
 * zmq_poll/zmq_msg_recv returns EINTR and the loop notices the flag at
 * once, instead of sleeping out its poll timeout.
 */
#include "stage.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "pw.h"

static volatile sig_atomic_t stop_signals;

static void on_stop_signal(int sig)
{
    (void)sig;
    if (stop_signals < 2)
        stop_signals++;
}

/* The --pushgateway URL as logged: "scheme://user:password@host/..." loses
 * its userinfo, so credentials put in the URL never reach a log line. */
static const char *url_for_log(const char *url, char *out, size_t n)
{
    if (!url)
        return NULL;
    const char *scheme_end = strstr(url, "://");
    const char *authority = scheme_end ? scheme_end + 3 : url;
    const char *at = NULL;
    for (const char *q = authority; *q && !strchr("/?#", *q); q++)
        if (*q == '@')
            at = q;
    if (!at)
        return url;
    snprintf(out, n, "%.*s%s", (int)(authority - url), url, at + 1);
    return out;
}

bool pw_stage_running(void) { return stop_signals == 0; }
bool pw_stage_hurry(void) { return stop_signals >= 2; }
void pw_stage_request_stop(void) { if (!stop_signals) stop_signals = 1; }

int pw_stage_init(pw_stage *st)
{
    pw_log_init(st->opts.stage, st->opts.instance, st->opts.log_level, 1);
    st->registry = pw_registry_new();
    if (!st->registry)
        goto nomem;
    st->processed = pw_counter_register(st->registry, "pipeline_records_processed_total",
                                        "Records this stage handled successfully.");
    /* The record reasons are record_parse.c's labels; the registry copies them. */
    const char *reasons[PW_REASON_COUNT];
    for (int i = 0; i < PW_REASON_PUSH_FAILED; i++)
        reasons[i] = pw_record_error_reason((pw_record_error)(i + 1));
    reasons[PW_REASON_PUSH_FAILED] = "push_failed";
    st->errors = pw_counter_vec_register(st->registry, "pipeline_errors_total",
                                         "Records or operations that failed, by reason.", "reason",
                                         reasons, PW_REASON_COUNT);
    /* An age gauge: the stage sets the event time it has completed up to
     * (its watermark, 0 when it holds nothing), the encoder pushes now
     * minus it, so a stalled stage's lag climbs between updates. */
    st->lag = pw_age_register(st->registry, "pipeline_lag_seconds",
                              "Freshness: now minus the event time this stage has completed everything "
                              "up to (0 when nothing is waiting here); computed when pushed.");
    st->duration = pw_histogram_register(st->registry, "pipeline_record_duration_seconds",
                                         "Time a record spends inside this stage.",
                                         pw_buckets_stage_duration, pw_buckets_stage_duration_len);
    st->up = pw_gauge_register(st->registry, "pipeline_stage_up",
                               "1 while the stage runs; 0 is pushed on clean shutdown.");
    st->build_info = pw_gauge_register_labelled(st->registry, "pipeline_build_info",
                                                "Build information; always 1.", "version", PW_VERSION);
    if (!st->processed || !st->errors || !st->lag || !st->duration || !st->up || !st->build_info ||
        pw_registry_add_process_metrics(st->registry) != PW_OK)
        goto nomem;
    pw_gauge_set(st->build_info, 1);
    st->stats_every_ns = 5000000000u;
    return PW_OK;
nomem:
    PW_LOG(PW_LOG_ERROR, "cannot register metrics", PW_STR("reason", "out of memory"));
    return PW_ENOMEM;
}

int pw_stage_start(pw_stage *st)
{
    char url[1024];
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    pw_gauge_set(st->up, 1);
    st->started_ns = pw_now_ns();
    st->last_stats_ns = st->started_ns;
    st->next_stats_ns = st->started_ns + st->stats_every_ns;

    if (st->opts.pushgateway) {
        pw_push_config cfg = {
            .url = st->opts.pushgateway,
            .job = st->opts.job,
            .stage = st->opts.stage,
            .instance = st->opts.instance,
            .interval_s = st->opts.push_interval,
            .registry = st->registry,
            .errors = st->errors,
            .failed_index = PW_REASON_PUSH_FAILED,
            .auth_file = st->opts.push_auth_file,
            .ca_file = st->opts.push_ca_file,
        };
        /* The pusher thread inherits this mask: signals stay with main. */
        sigset_t block, old;
        sigemptyset(&block);
        sigaddset(&block, SIGINT);
        sigaddset(&block, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &block, &old);
        int rc = pw_push_start(&cfg, &st->pusher);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (rc != PW_OK) {
            PW_LOG(PW_LOG_ERROR, "cannot start pushing",
                   PW_STR("pushgateway", url_for_log(st->opts.pushgateway, url, sizeof url)),
                   PW_INT("status", rc));
            return rc;
        }
    }
    PW_LOG(PW_LOG_INFO, "started", PW_STR("version", PW_VERSION),
           PW_STR("pushgateway", url_for_log(st->opts.pushgateway, url, sizeof url)),
           PW_DBL("push_interval", st->opts.push_interval));
    return PW_OK;
}

uint64_t pw_stage_errors_total(const pw_stage *st)
{
    uint64_t total = 0;
    for (size_t i = 0; i < PW_REASON_COUNT; i++)
        total += pw_counter_get(&st->errors->counters[i]);
    return total;
}

void pw_stage_stats(pw_stage *st, uint64_t now_ns, const pw_field *extra, size_t nextra)
{
    if (now_ns < st->next_stats_ns)
        return;
    uint64_t processed = pw_counter_get(st->processed);
    double secs = (double)(now_ns - st->last_stats_ns) / 1e9;
    double rate = secs > 0 ? (double)(processed - st->last_stats_processed) / secs : 0;
    pw_field f[10];
    size_t n = 0;
    f[n++] = PW_UINT("processed", processed);
    f[n++] = PW_DBL("rate", rate);
    f[n++] = PW_DBL("lag_seconds", pw_age_value(st->lag, pw_wall_seconds()));
    f[n++] = PW_UINT("errors", pw_stage_errors_total(st));
    if (st->pusher) {
        f[n++] = PW_UINT("pushes", pw_push_successes(st->pusher));
        f[n++] = PW_UINT("push_failures", pw_push_failures(st->pusher));
    }
    for (size_t i = 0; i < nextra && n < PW_ARRAY_LEN(f); i++)
        f[n++] = extra[i];
    pw_log(PW_LOG_INFO, "stats", f, n);
    st->last_stats_ns = now_ns;
    st->last_stats_processed = processed;
    st->next_stats_ns = now_ns + st->stats_every_ns;
}

int pw_stage_finish(pw_stage *st, int exit_code)
{
    pw_gauge_set(st->up, 0);
    uint64_t now = pw_now_ns();
    st->next_stats_ns = now; /* a last stats line with the final figures */
    pw_stage_stats(st, now, NULL, 0);
    if (st->pusher) {
        /* A failed final push is logged by pw_push_stop, once. */
        pw_push_stop(st->pusher, 5.0, st->opts.delete_on_exit);
        st->pusher = NULL;
    }
    PW_LOG(PW_LOG_INFO, "stopped", PW_INT("exit_code", exit_code));
    pw_registry_free(st->registry);
    st->registry = NULL;
    return exit_code;
}

/*
 * test_push.c: the Pushgateway client, as a spec.
 *
 * The happy paths run against a real prometheus-pushgateway that each test
 * starts on its own loopback port with its state in its own temp dir.  The
 * unhappy paths use a closed port, a listener that accepts connections into
 * its backlog but never answers, and a tiny in-test HTTP server that
 * records what it was sent and answers with a chosen status.  Every wait is
 * a poll against a deadline.
 */
#include <arpa/inet.h>
#include <check.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "push.h"
#include "pw.h"
#include "support.h"

/* ---- helpers -------------------------------------------------------------- */

static double now_s(void) { return (double)pw_now_ns() / 1e9; }

/* Polls cond(arg) until true or timeout_s passes (short naps bound CPU). */
static bool wait_until(bool (*cond)(void *), void *arg, double timeout_s)
{
    double deadline = now_s() + timeout_s;
    while (!cond(arg)) {
        if (now_s() > deadline)
            return false;
        struct timespec nap = { 0, 10 * 1000 * 1000 };
        nanosleep(&nap, NULL);
    }
    return true;
}

static const char *const reasons[] = { "malformed_json", "missing_field", "invalid_value", "oversize",
                                       "invalid_utf8", "processing", "push_failed" };
enum { PUSH_FAILED = 6 };

typedef struct stage {
    pw_registry *reg;
    pw_counter *processed;
    pw_counter_vec *errors;
    pw_gauge *up;
    pw_histogram *duration;
} stage;

static stage stage_new(void)
{
    stage s = { 0 };
    s.reg = pw_registry_new();
    s.processed = pw_counter_register(s.reg, "pipeline_records_processed_total", "Records this stage handled successfully.");
    s.errors = pw_counter_vec_register(s.reg, "pipeline_errors_total", "Records or operations that failed, by reason.",
                                       "reason", reasons, PW_ARRAY_LEN(reasons));
    s.up = pw_gauge_register(s.reg, "pipeline_stage_up", "1 while running, 0 pushed on clean shutdown.");
    s.duration = pw_histogram_register(s.reg, "pipeline_record_duration_seconds", "Time a record spends inside this stage.",
                                       pw_buckets_stage_duration, pw_buckets_stage_duration_len);
    ck_assert_ptr_nonnull(s.processed);
    ck_assert_ptr_nonnull(s.errors);
    ck_assert_ptr_nonnull(s.up);
    ck_assert_ptr_nonnull(s.duration);
    /* The gateway exposes its own process_* families; ours must agree with
     * them on HELP and TYPE or it rejects the push. */
    ck_assert_int_eq(pw_registry_add_process_metrics(s.reg), PW_OK);
    pw_gauge_set(s.up, 1);
    return s;
}

static pw_push_config config(stage *s, const char *url, const char *instance, double interval)
{
    return (pw_push_config){
        .url = url, .job = "pipeline", .stage = "worker", .instance = instance,
        .interval_s = interval, .registry = s->reg, .errors = s->errors, .failed_index = PUSH_FAILED,
    };
}

/* A real gateway, per test. */
typedef struct gateway {
    char *dir;
    pid_t pid;
    int port;
    char url[64];
} gateway;

static gateway gateway_start(void)
{
    gateway g = { 0 };
    g.dir = pw_test_tmpdir("push");
    ck_assert_ptr_nonnull(g.dir);
    g.pid = pw_test_start_pushgateway(g.dir, &g.port);
    ck_assert_msg(g.pid > 0, "prometheus-pushgateway did not start (see %s/pushgateway.log)", g.dir);
    snprintf(g.url, sizeof g.url, "http://127.0.0.1:%d", g.port);
    return g;
}

static void gateway_stop(gateway *g)
{
    pw_test_stop(g->pid, SIGTERM, 5.0);
    pw_test_rmrf(g->dir);
    free(g->dir);
}

typedef struct series_is {
    int port;
    const char *series;
    double want;   /* NAN: wait until absent */
} series_is;

static bool series_has_value(void *arg)
{
    series_is *w = arg;
    double v = pw_test_gateway_value(w->port, w->series);
    return isnan(w->want) ? isnan(v) : v == w->want;
}

static bool wait_series(int port, const char *series, double want, double timeout_s)
{
    series_is w = { port, series, want };
    return wait_until(series_has_value, &w, timeout_s);
}

typedef struct at_least {
    pw_pusher *p;
    stage *s;
    unsigned long n;
} at_least;

static bool failures_at_least(void *arg)
{
    at_least *w = arg;
    return pw_push_failures(w->p) >= w->n && pw_counter_get(&w->s->errors->counters[PUSH_FAILED]) >= w->n;
}

static bool successes_at_least(void *arg)
{
    at_least *w = arg;
    return pw_push_successes(w->p) >= w->n;
}

/* The stage's hot loop, timed: it must not notice the pusher at all. */
static double hot_loop_seconds(stage *s, long n)
{
    double t0 = now_s();
    for (long i = 0; i < n; i++)
        pw_counter_inc(s->processed);
    return now_s() - t0;
}

/* A listening socket on 127.0.0.1 that is never accepted from: the kernel
 * completes handshakes into the backlog, so requests are sent and then
 * nothing ever answers. */
static int silent_listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = { .sin_family = AF_INET };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(fd, 128), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* ---- a recording HTTP server ----------------------------------------------- */

#define MAX_REQUESTS 16

typedef struct recorder {
    int fd;
    int port;
    int status;                        /* what to answer */
    char url[64];                      /* http://127.0.0.1:<port> */
    pthread_t thread;
    _Atomic bool stop;
    _Atomic int nrequests;
    char requests[MAX_REQUESTS][8192]; /* head and body as received */
    double times[MAX_REQUESTS];        /* monotonic arrival, seconds */
} recorder;

static void read_request(recorder *r, int c, char *out, size_t cap)
{
    size_t n = 0;
    double deadline = now_s() + 5;
    out[0] = '\0';
    for (;;) {
        struct pollfd pfd = { c, POLLIN, 0 };
        if (now_s() > deadline || poll(&pfd, 1, 100) < 0)
            return;
        if (atomic_load(&r->stop))
            return;
        if (!(pfd.revents & (POLLIN | POLLHUP)))
            continue;
        ssize_t got = read(c, out + n, cap - 1 - n);
        if (got <= 0)
            return;
        n += (size_t)got;
        out[n] = '\0';
        char *end = strstr(out, "\r\n\r\n");
        if (end) {
            const char *cl = strcasestr(out, "\r\nContent-Length:");
            size_t body = cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0;
            if (n >= (size_t)(end + 4 - out) + body || n == cap - 1)
                return;
        }
    }
}

static void *recorder_thread(void *arg)
{
    recorder *r = arg;
    while (!atomic_load(&r->stop)) {
        struct pollfd pfd = { r->fd, POLLIN, 0 };
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        int c = accept(r->fd, NULL, NULL);
        if (c < 0)
            continue;
        int i = atomic_load(&r->nrequests);
        char scratch[8192];
        char *buf = i < MAX_REQUESTS ? r->requests[i] : scratch;
        read_request(r, c, buf, sizeof scratch);
        if (i < MAX_REQUESTS)
            r->times[i] = now_s();
        /* Counted before answering: once the client has its answer, the
         * test may look at the count. */
        atomic_fetch_add(&r->nrequests, 1);
        char reply[128];
        int n = snprintf(reply, sizeof reply, "HTTP/1.1 %d X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", r->status);
        ssize_t w = write(c, reply, (size_t)n);
        (void)w;
        close(c);
    }
    return NULL;
}

static recorder *recorder_start(int status)
{
    recorder *r = calloc(1, sizeof *r);
    r->status = status;
    r->fd = silent_listener(&r->port);
    snprintf(r->url, sizeof r->url, "http://127.0.0.1:%d", r->port);
    ck_assert_int_eq(pthread_create(&r->thread, NULL, recorder_thread, r), 0);
    return r;
}

static void recorder_stop(recorder *r)
{
    atomic_store(&r->stop, true);
    pthread_join(r->thread, NULL);
    close(r->fd);
    free(r);
}

typedef struct requests_at_least {
    recorder *r;
    int n;
} requests_at_least;

static bool recorder_has(void *arg)
{
    requests_at_least *w = arg;
    return atomic_load(&w->r->nrequests) >= w->n;
}

static char *write_file(const char *dir, const char *name, const char *content)
{
    char *path = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(content, f);
    fclose(f);
    return path;
}

/* The set-up of the tests that read what the pusher sent: a recorder
 * answering `status`, and an auth file holding `auth` in a fresh temp dir. */
typedef struct auth_recorder {
    recorder *r;
    char *dir;
    char *auth_file;
} auth_recorder;

static auth_recorder auth_recorder_start(int status, const char *tag, const char *auth)
{
    auth_recorder a = { .r = recorder_start(status), .dir = pw_test_tmpdir(tag) };
    ck_assert_ptr_nonnull(a.dir);
    a.auth_file = write_file(a.dir, "auth", auth);
    return a;
}

static void auth_recorder_stop(auth_recorder *a)
{
    recorder_stop(a->r);
    free(a->auth_file);
    pw_test_rmrf(a->dir);
    free(a->dir);
}

/* ---- tests ------------------------------------------------------------------ */

START_TEST(test_group_path_uses_base64_for_empty_slash_and_unsafe_values)
{
    pw_buf b = PW_BUF_INIT;
    pw_push_group_path(&b, "pipeline", "worker", "worker-host1");
    ck_assert_str_eq(b.data, "/metrics/job/pipeline/stage/worker/instance/worker-host1");
    pw_buf_reset(&b);
    pw_push_group_path(&b, "pipeline", "sink", "a/b");
    ck_assert_str_eq(b.data, "/metrics/job/pipeline/stage/sink/instance@base64/YS9i");
    pw_buf_reset(&b);
    pw_push_group_path(&b, "pipeline", "sink", "");
    ck_assert_str_eq(b.data, "/metrics/job/pipeline/stage/sink/instance@base64/=");
    /* URL-safe alphabet: "?\?>" is "Pz8+" in standard base64. */
    pw_buf_reset(&b);
    pw_push_group_path(&b, "j/x", "?\?>", "host:9091");
    ck_assert_str_eq(b.data, "/metrics/job@base64/ai94/stage@base64/Pz8-/instance@base64/aG9zdDo5MDkx");
    pw_buf_free(&b);
}
END_TEST

START_TEST(test_start_rejects_bad_config_and_unreadable_auth_file)
{
    stage s = stage_new();
    pw_pusher *p = (pw_pusher *)&s; /* must be overwritten with NULL */
    pw_push_config c = config(&s, "http://127.0.0.1:1", "i", 1);
    c.interval_s = 0;
    ck_assert_int_eq(pw_push_start(&c, &p), PW_EINVAL);
    ck_assert_ptr_null(p);
    c = config(&s, NULL, "i", 1);
    ck_assert_int_eq(pw_push_start(&c, &p), PW_EINVAL);
    c = config(&s, "http://127.0.0.1:1", "i", 1);
    c.job = "";
    ck_assert_int_eq(pw_push_start(&c, &p), PW_EINVAL);
    c = config(&s, "http://127.0.0.1:1", "i", 1);
    c.registry = NULL;
    ck_assert_int_eq(pw_push_start(&c, &p), PW_EINVAL);

    char *dir = pw_test_tmpdir("push-auth");
    c = config(&s, "http://127.0.0.1:1", "i", 1);
    c.auth_file = "/nonexistent/pipewatch/auth";
    ck_assert_int_eq(pw_push_start(&c, &p), PW_EINVAL);
    c.auth_file = dir; /* a directory cannot be read as a file */
    ck_assert_int_eq(pw_push_start(&c, &p), PW_EINVAL);
    char *empty = write_file(dir, "empty", "\n");
    c.auth_file = empty;
    ck_assert_int_eq(pw_push_start(&c, &p), PW_EINVAL);
    char *neither = write_file(dir, "neither", "no-colon-no-bearer\n");
    c.auth_file = neither;
    ck_assert_int_eq(pw_push_start(&c, &p), PW_EINVAL);
    ck_assert_ptr_null(p);
    free(empty);
    free(neither);
    pw_test_rmrf(dir);
    free(dir);
    ck_assert_int_eq(pw_push_stop(NULL, 1, false), PW_EINVAL);
    pw_registry_free(s.reg);
}
END_TEST

START_TEST(test_push_values_appear_at_gateway_with_grouping_labels)
{
    gateway g = gateway_start();
    stage s = stage_new();
    pw_counter_add(s.processed, 42);
    pw_histogram_observe(s.duration, 0.003);
    /* An instance name with '/' travels as @base64 and comes back intact. */
    pw_push_config c = config(&s, g.url, "host/with/slash", 0.2);
    pw_pusher *p = NULL;
    ck_assert_int_eq(pw_push_start(&c, &p), PW_OK);

    const char *labels = "{instance=\"host/with/slash\",job=\"pipeline\",stage=\"worker\"}";
    char series[256];
    snprintf(series, sizeof series, "pipeline_records_processed_total%s", labels);
    ck_assert_msg(wait_series(g.port, series, 42, 10), "42 never reached the gateway");

    /* Later pushes replace the group with fresh values. */
    pw_counter_add(s.processed, 58);
    ck_assert_msg(wait_series(g.port, series, 100, 10), "the periodic push did not update the value");
    snprintf(series, sizeof series, "pipeline_stage_up%s", labels);
    ck_assert_double_eq(pw_test_gateway_value(g.port, series), 1);
    snprintf(series, sizeof series,
             "pipeline_record_duration_seconds_bucket{instance=\"host/with/slash\",job=\"pipeline\",stage=\"worker\",le=\"0.005\"}");
    ck_assert_double_eq(pw_test_gateway_value(g.port, series), 1);
    snprintf(series, sizeof series, "pipeline_errors_total{instance=\"host/with/slash\",job=\"pipeline\",reason=\"push_failed\",stage=\"worker\"}");
    ck_assert_double_eq(pw_test_gateway_value(g.port, series), 0);
    snprintf(series, sizeof series, "process_open_fds%s", labels);
    ck_assert(pw_test_gateway_value(g.port, series) > 0);
    ck_assert_uint_eq(pw_push_failures(p), 0);
    ck_assert_uint_ge(pw_push_successes(p), 2);

    /* Clean shutdown: the stage says it is down, the final push carries it. */
    pw_gauge_set(s.up, 0);
    ck_assert_int_eq(pw_push_stop(p, 5, false), PW_OK);
    snprintf(series, sizeof series, "pipeline_stage_up%s", labels);
    ck_assert_msg(wait_series(g.port, series, 0, 5), "final push with stage_up 0 not seen");

    gateway_stop(&g);
    pw_registry_free(s.reg);
}
END_TEST

START_TEST(test_delete_group_removes_group)
{
    gateway g = gateway_start();
    stage s = stage_new();
    stage other = stage_new();
    pw_push_config c = config(&s, g.url, "doomed", 0.2);
    pw_push_config keep = config(&other, g.url, "survivor", 0.2);
    pw_pusher *p = NULL, *q = NULL;
    ck_assert_int_eq(pw_push_start(&c, &p), PW_OK);
    ck_assert_int_eq(pw_push_start(&keep, &q), PW_OK);
    const char *doomed = "pipeline_stage_up{instance=\"doomed\",job=\"pipeline\",stage=\"worker\"}";
    const char *survivor = "pipeline_stage_up{instance=\"survivor\",job=\"pipeline\",stage=\"worker\"}";
    ck_assert(wait_series(g.port, doomed, 1, 10));
    ck_assert(wait_series(g.port, survivor, 1, 10));

    ck_assert_int_eq(pw_push_stop(p, 5, true), PW_OK);
    ck_assert_msg(wait_series(g.port, doomed, NAN, 5), "group still present after DELETE");
    ck_assert(isnan(pw_test_gateway_value(g.port, "push_time_seconds{instance=\"doomed\",job=\"pipeline\",stage=\"worker\"}")));
    /* Only that group: the other instance is untouched. */
    ck_assert_double_eq(pw_test_gateway_value(g.port, survivor), 1);
    ck_assert_int_eq(pw_push_stop(q, 5, false), PW_OK);

    gateway_stop(&g);
    pw_registry_free(s.reg);
    pw_registry_free(other.reg);
}
END_TEST

START_TEST(test_push_to_closed_port_counts_failures_without_delaying_caller)
{
    stage s = stage_new();
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", pw_test_free_port());
    pw_push_config c = config(&s, url, "nobody-listens", 0.05);
    pw_pusher *p = NULL;
    ck_assert_int_eq(pw_push_start(&c, &p), PW_OK);
    at_least two = { p, &s, 2 };
    ck_assert_msg(wait_until(failures_at_least, &two, 10), "failures were not counted");

    /* While the pusher keeps failing, the stage's loop runs at full speed. */
    double loop = hot_loop_seconds(&s, 1000000);
    ck_assert_msg(loop < 1.0, "1e6 increments took %.3f s", loop);
    ck_assert_uint_eq(pw_counter_get(s.processed), 1000000);
    ck_assert_uint_eq(pw_push_successes(p), 0);

    double t0 = now_s();
    int rc = pw_push_stop(p, 1.0, false);
    double took = now_s() - t0;
    ck_assert_int_ne(rc, PW_OK);
    ck_assert_msg(took < 1.0 + 1.0, "stop took %.3f s", took);
    pw_registry_free(s.reg);
}
END_TEST

START_TEST(test_push_to_silent_listener_times_out_without_delaying_caller)
{
    stage s = stage_new();
    int port = 0;
    int fd = silent_listener(&port);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    /* interval 0.2 s: each request times out after the 200 ms floor. */
    pw_push_config c = config(&s, url, "nobody-answers", 0.2);
    pw_pusher *p = NULL;
    double t0 = now_s();
    ck_assert_int_eq(pw_push_start(&c, &p), PW_OK);

    /* The first push is hanging right now; the loop does not care. */
    double loop = hot_loop_seconds(&s, 1000000);
    ck_assert_msg(loop < 1.0, "1e6 increments took %.3f s", loop);
    ck_assert_uint_eq(pw_counter_get(s.processed), 1000000);

    at_least one = { p, &s, 1 };
    ck_assert_msg(wait_until(failures_at_least, &one, 10), "timeouts were not counted as failures");
    ck_assert_msg(now_s() - t0 >= 0.15, "the first failure came before the request could time out");
    ck_assert_uint_eq(pw_push_successes(p), 0);

    /* Stop is bounded even though the gateway never answers: the hung
     * request is abandoned and the final push gets only its timeout. */
    const double timeout = 0.5;
    t0 = now_s();
    int rc = pw_push_stop(p, timeout, false);
    double took = now_s() - t0;
    ck_assert_int_eq(rc, PW_ETIMEDOUT);
    ck_assert_msg(took >= timeout * 0.9, "the final push gave up early (%.3f s)", took);
    ck_assert_msg(took < timeout + 1.5, "stop took %.3f s", took);
    close(fd);
    pw_registry_free(s.reg);
}
END_TEST

START_TEST(test_push_sends_put_with_text_format_and_basic_auth)
{
    auth_recorder a = auth_recorder_start(200, "push-basic", "pipe:s3cret:with-colon\n");
    recorder *r = a.r;
    stage s = stage_new();
    pw_counter_add(s.processed, 7);
    char url[80];
    snprintf(url, sizeof url, "%s/", r->url); /* trailing '/' is tolerated */
    pw_push_config c = config(&s, url, "a/b", 5);
    c.auth_file = a.auth_file;
    pw_pusher *p = NULL;
    ck_assert_int_eq(pw_push_start(&c, &p), PW_OK);
    requests_at_least one = { r, 1 };
    ck_assert(wait_until(recorder_has, &one, 10));
    at_least ok = { p, &s, 1 };
    ck_assert(wait_until(successes_at_least, &ok, 10));

    const char *req = r->requests[0];
    const char *put = "PUT /metrics/job/pipeline/stage/worker/instance@base64/YS9i HTTP/1.1\r\n";
    ck_assert_msg(strncmp(req, put, strlen(put)) == 0, "%s", req);
    ck_assert_msg(strcasestr(req, "\r\nContent-Type: text/plain; version=0.0.4\r\n"), "%s", req);
    /* base64("pipe:s3cret:with-colon"): the trailing newline is not part of the password. */
    ck_assert_msg(strstr(req, "\r\nAuthorization: Basic cGlwZTpzM2NyZXQ6d2l0aC1jb2xvbg==\r\n"), "%s", req);
    ck_assert_ptr_nonnull(strstr(req, "\r\n\r\n# HELP pipeline_records_processed_total "));
    ck_assert_ptr_nonnull(strstr(req, "\npipeline_records_processed_total 7\n"));
    ck_assert_ptr_null(strcasestr(req, "Expect:"));

    ck_assert_int_eq(pw_push_stop(p, 5, true), PW_OK);
    ck_assert_int_eq(atomic_load(&r->nrequests), 2);
    const char *del = "DELETE /metrics/job/pipeline/stage/worker/instance@base64/YS9i HTTP/1.1\r\n";
    ck_assert_msg(strncmp(r->requests[1], del, strlen(del)) == 0, "%s", r->requests[1]);
    ck_assert_ptr_nonnull(strstr(r->requests[1], "\r\nAuthorization: Basic "));
    ck_assert_ptr_null(strcasestr(r->requests[1], "Content-Type:")); /* no body, no type */
    auth_recorder_stop(&a);
    pw_registry_free(s.reg);
}
END_TEST

START_TEST(test_push_sends_bearer_token_from_auth_file)
{
    auth_recorder a = auth_recorder_start(200, "push-bearer", "Bearer tok.en-123\r\n");
    recorder *r = a.r;
    stage s = stage_new();
    pw_push_config c = config(&s, r->url, "i", 5);
    c.auth_file = a.auth_file;
    pw_pusher *p = NULL;
    ck_assert_int_eq(pw_push_start(&c, &p), PW_OK);
    requests_at_least one = { r, 1 };
    ck_assert(wait_until(recorder_has, &one, 10));
    ck_assert_msg(strstr(r->requests[0], "\r\nAuthorization: Bearer tok.en-123\r\n"), "%s", r->requests[0]);
    ck_assert_int_eq(pw_push_stop(p, 5, false), PW_OK);
    auth_recorder_stop(&a);
    pw_registry_free(s.reg);
}
END_TEST

START_TEST(test_http_error_status_is_a_failure_logged_without_credentials)
{
    auth_recorder a = auth_recorder_start(500, "push-500", "pipe:hunter2-secret\n");
    char logpath[4200];
    snprintf(logpath, sizeof logpath, "%s/log", a.dir);
    int logfd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    ck_assert_int_ge(logfd, 0);
    pw_log_init("worker", "test", PW_LOG_DEBUG, logfd);

    stage s = stage_new();
    char url[96];
    snprintf(url, sizeof url, "http://pipe:url-secret@127.0.0.1:%d", a.r->port);
    pw_push_config c = config(&s, url, "i", 0.05);
    c.auth_file = a.auth_file;
    pw_pusher *p = NULL;
    ck_assert_int_eq(pw_push_start(&c, &p), PW_OK);
    at_least two = { p, &s, 2 };
    ck_assert(wait_until(failures_at_least, &two, 10));
    ck_assert_uint_eq(pw_push_successes(p), 0);
    ck_assert_int_eq(pw_push_stop(p, 2, false), PW_EIO);
    pw_log_init("worker", "test", PW_LOG_DEBUG, 2);
    close(logfd);

    char *log = pw_test_read_file(logpath);
    ck_assert_ptr_nonnull(log);
    ck_assert_msg(strstr(log, "\"msg\":\"push failed\""), "%s", log);
    ck_assert_msg(strstr(log, "\"status\":500"), "%s", log);
    ck_assert_msg(strstr(log, "\"msg\":\"final push failed\""), "%s", log);
    ck_assert_msg(!strstr(log, "hunter2") && !strstr(log, "url-secret"), "credentials leaked: %s", log);
    /* Rate-limited: two-plus failures within the limiter interval, one line. */
    ck_assert_ptr_null(strstr(strstr(log, "\"msg\":\"push failed\"") + 1, "\"msg\":\"push failed\""));
    free(log);
    auth_recorder_stop(&a);
    pw_registry_free(s.reg);
}
END_TEST

START_TEST(test_failures_back_off_exponentially)
{
    recorder *r = recorder_start(503);
    stage s = stage_new();
    const double interval = 0.05;
    pw_push_config c = config(&s, r->url, "i", interval);
    pw_pusher *p = NULL;
    ck_assert_int_eq(pw_push_start(&c, &p), PW_OK);
    requests_at_least five = { r, 5 };
    ck_assert(wait_until(recorder_has, &five, 20));
    ck_assert_int_eq(pw_push_stop(p, 0.5, false), PW_EIO);
    /* Gaps after the n-th failure in a row: interval * 2^(n-1).  Only
     * lower bounds are asserted; a loaded machine may be late, never early. */
    for (int k = 1; k < 5; k++) {
        double gap = r->times[k] - r->times[k - 1];
        double want = interval * (double)(1 << (k - 1));
        ck_assert_msg(gap >= want * 0.9, "gap %d was %.3f s, expected >= %.3f s", k, gap, want);
    }
    ck_assert_uint_ge(pw_counter_get(&s.errors->counters[PUSH_FAILED]), 5);
    recorder_stop(r);
    pw_registry_free(s.reg);
}
END_TEST

int main(void)
{
    PW_TEST_SKIP_WITHOUT_METRICS();
    Suite *s = suite_create("push");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_group_path_uses_base64_for_empty_slash_and_unsafe_values);
    tcase_add_test(tc, test_start_rejects_bad_config_and_unreadable_auth_file);
    tcase_add_test(tc, test_push_values_appear_at_gateway_with_grouping_labels);
    tcase_add_test(tc, test_delete_group_removes_group);
    tcase_add_test(tc, test_push_to_closed_port_counts_failures_without_delaying_caller);
    tcase_add_test(tc, test_push_to_silent_listener_times_out_without_delaying_caller);
    tcase_add_test(tc, test_push_sends_put_with_text_format_and_basic_auth);
    tcase_add_test(tc, test_push_sends_bearer_token_from_auth_file);
    tcase_add_test(tc, test_http_error_status_is_a_failure_logged_without_credentials);
    tcase_add_test(tc, test_failures_back_off_exponentially);
    suite_add_tcase(s, tc);
    return pw_test_run(s);
}

/*
 * push.c: the Pushgateway client thread.
 *
 * Design: one pthread per pusher owns a libcurl easy handle (reused, so the
 * connection is kept alive between pushes) and one pw_buf that is reset
 * and refilled by pw_registry_encode() for every push; after the first push
 * nothing allocates except what libcurl does internally.  The stage's loop
 * shares nothing with this thread but the metric atomics, so a slow, hung
 * or absent gateway can delay only this thread, never a record.
 *
 * Every request is bounded by CURLOPT_TIMEOUT_MS (well under the interval),
 * and the wait between pushes is a pthread_cond_timedwait on
 * CLOCK_MONOTONIC, so pw_push_stop() wakes the thread at once; a request in
 * flight is aborted from curl's progress callback when stop is requested.
 * After a failure the next attempt waits interval * 2^(n-1) for the n-th
 * failure in a row, capped at 30 s (or the interval, if that is longer),
 * so a dead gateway is not hammered and a recovered one is found soon.
 *
 * Credentials (auth_file) are read once at start, kept only in memory,
 * wiped on free and never logged; log lines name the group path, not the
 * URL, because a URL may carry user:password@.
 *
 * Owns: the thread, the curl handle, the body buffer, copies of the config
 * strings.  Does not own the registry or the errors counter vector.
 */
#include "push.h"

#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pw.h"

#define PW_PUSH_BACKOFF_CAP_S 30.0
#define PW_PUSH_TIMEOUT_MIN_MS 200L
#define PW_PUSH_TIMEOUT_MAX_MS 5000L
#define PW_PUSH_AUTH_MAX 4096

struct pw_pusher {
    char *url;                 /* base URL + group path */
    char *group_path;          /* for log lines: never contains credentials */
    char *userpwd;             /* "user:password" or NULL */
    char *ca_file;
    struct curl_slist *put_headers;    /* Content-Type, Expect:, auth */
    struct curl_slist *delete_headers; /* auth only; NULL without a token */
    double interval_s;
    long timeout_ms;
    pw_registry *registry;
    pw_counter_vec *errors;
    size_t failed_index;

    CURL *curl;                /* push thread while it runs, then the stopper */
    pw_buf body;
    char errbuf[CURL_ERROR_SIZE];

    pthread_t thread;
    bool thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cond;       /* CLOCK_MONOTONIC */
    bool stop;                 /* under mu: for the timed wait */
    _Atomic bool stopping;     /* lock-free copy for curl's progress callback */

    _Atomic unsigned long successes;
    _Atomic unsigned long failures;
    /* One limiter per pusher: a stage has one, and tests that start several
     * pushers in one process each see their own first failure. */
    pw_log_limiter failed_limiter;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result = CURLE_FAILED_INIT;
static void curl_init_once(void) { curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT); }

/* ---- group path ---------------------------------------------------------- */

static bool url_safe(const char *s)
{
    if (!*s)
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '.' || c == '_' || c == '~';
        if (!ok)
            return false;
    }
    return true;
}

/* Values that are empty or contain '/' cannot be plain path segments; we
 * also base64 anything outside the URL-unreserved set, which sidesteps
 * percent-encoding questions entirely (the gateway decodes both forms to
 * the same label value).  An empty value is "=" per the Pushgateway README,
 * since base64 of nothing would be an empty segment. */
static void append_segment(pw_buf *out, const char *name, const char *value)
{
    if (!value)
        value = "";
    pw_buf_append_char(out, '/');
    pw_buf_append_str(out, name);
    if (url_safe(value)) {
        pw_buf_append_char(out, '/');
        pw_buf_append_str(out, value);
    } else {
        pw_buf_append_str(out, "@base64/");
        if (*value)
            pw_buf_append_base64url(out, value, strlen(value));
        else
            pw_buf_append_char(out, '=');
    }
}

void pw_push_group_path(pw_buf *out, const char *job, const char *stage, const char *instance)
{
    pw_buf_append_str(out, "/metrics");
    append_segment(out, "job", job);
    append_segment(out, "stage", stage);
    append_segment(out, "instance", instance);
}

/* ---- setup --------------------------------------------------------------- */

static void wipe_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

/* Reads the credentials file: "user:password" or "Bearer <token>", with
 * trailing CR/LF stripped.  Anything else is a configuration error. */
static int load_auth(pw_pusher *p, const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return PW_EINVAL;
    char buf[PW_PUSH_AUTH_MAX];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    bool too_long = n == sizeof buf - 1 && fgetc(f) != EOF;
    bool read_error = ferror(f);
    fclose(f);
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    int rc = PW_OK;
    if (too_long || read_error || n == 0 || strlen(buf) != n || strpbrk(buf, "\r\n")) {
        rc = PW_EINVAL;
    } else if (strncmp(buf, "Bearer ", 7) == 0) {
        if (buf[7] == '\0')
            rc = PW_EINVAL;
        else {
            char header[PW_PUSH_AUTH_MAX + 32];
            snprintf(header, sizeof header, "Authorization: %s", buf);
            struct curl_slist *h = curl_slist_append(p->put_headers, header);
            if (h)
                p->put_headers = h;
            struct curl_slist *d = h ? curl_slist_append(p->delete_headers, header) : NULL;
            if (d)
                p->delete_headers = d;
            else
                rc = PW_ENOMEM;
            explicit_bzero(header, sizeof header);
        }
    } else if (strchr(buf, ':')) {
        p->userpwd = strdup(buf);
        if (!p->userpwd)
            rc = PW_ENOMEM;
    } else {
        rc = PW_EINVAL;
    }
    explicit_bzero(buf, sizeof buf);
    return rc;
}

static void pusher_free(pw_pusher *p)
{
    if (!p)
        return;
    if (p->curl)
        curl_easy_cleanup(p->curl);
    /* The Authorization line holds the token. */
    struct curl_slist *lists[] = { p->put_headers, p->delete_headers };
    for (size_t i = 0; i < PW_ARRAY_LEN(lists); i++) {
        for (struct curl_slist *h = lists[i]; h; h = h->next)
            explicit_bzero(h->data, strlen(h->data));
        curl_slist_free_all(lists[i]);
    }
    wipe_free(p->userpwd);
    free(p->url);
    free(p->group_path);
    free(p->ca_file);
    pw_buf_free(&p->body);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cond);
    free(p);
}

/* ---- one request --------------------------------------------------------- */

static size_t discard_body(char *data, size_t size, size_t n, void *user)
{
    (void)data;
    (void)user;
    return size * n; /* the gateway's reply must not reach stdout (our log stream) */
}

static int abort_on_stop(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    pw_pusher *p = user;
    return atomic_load_explicit(&p->stopping, memory_order_relaxed) ? 1 : 0;
}

typedef struct push_result {
    CURLcode code;
    long status;   /* HTTP status, 0 when there was no answer */
    bool ok;
} push_result;

/* PUT the current registry (or DELETE the group).  Runs on the push thread,
 * or on the stopping thread after the push thread has been joined. */
static push_result request(pw_pusher *p, bool delete_group, long timeout_ms, bool abortable)
{
    push_result r = { CURLE_OK, 0, false };
    CURL *c = p->curl;
    p->errbuf[0] = '\0';
    curl_easy_setopt(c, CURLOPT_URL, p->url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, delete_group ? p->delete_headers : p->put_headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard_body);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, p->errbuf);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, abortable ? 0L : 1L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, abort_on_stop);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, p);
    if (p->userpwd) {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERPWD, p->userpwd);
    }
    if (p->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, p->ca_file);

    if (delete_group) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "DELETE");
    } else {
        pw_buf_reset(&p->body);
        if (pw_registry_encode(p->registry, &p->body) != PW_OK) {
            r.code = CURLE_OUT_OF_MEMORY;
            snprintf(p->errbuf, sizeof p->errbuf, "cannot encode metrics: out of memory");
            return r;
        }
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PUT");
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, p->body.data ? p->body.data : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)p->body.len);
    }
    r.code = curl_easy_perform(c);
    if (r.code == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
        r.ok = r.status >= 200 && r.status < 300;
    }
    return r;
}

static const char *result_error(const pw_pusher *p, const push_result *r)
{
    if (r->code != CURLE_OK)
        return p->errbuf[0] ? p->errbuf : curl_easy_strerror(r->code);
    return "unexpected HTTP status";
}

static void count_failure(pw_pusher *p)
{
    atomic_fetch_add_explicit(&p->failures, 1, memory_order_relaxed);
    if (p->errors && p->failed_index < p->errors->n)
        pw_counter_vec_inc(p->errors, p->failed_index);
}

/* ---- the thread ---------------------------------------------------------- */

static double backoff_s(const pw_pusher *p, unsigned failures_in_row)
{
    double cap = p->interval_s > PW_PUSH_BACKOFF_CAP_S ? p->interval_s : PW_PUSH_BACKOFF_CAP_S;
    double d = p->interval_s;
    for (unsigned i = 1; i < failures_in_row && d < cap; i++)
        d *= 2;
    return d < cap ? d : cap;
}

static struct timespec deadline_after(double seconds)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    if (seconds > 1e7)
        seconds = 1e7; /* an absurd interval must not overflow time_t */
    double whole = floor(seconds);
    t.tv_sec += (time_t)whole;
    t.tv_nsec += (long)((seconds - whole) * 1e9);
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

/* Sleeps until the deadline or until stop is requested; true when stopping. */
static bool wait_or_stop(pw_pusher *p, double seconds)
{
    struct timespec until = deadline_after(seconds);
    pthread_mutex_lock(&p->mu);
    int rc = 0;
    while (!p->stop && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&p->cond, &p->mu, &until);
    bool stop = p->stop;
    pthread_mutex_unlock(&p->mu);
    return stop;
}

static void *push_thread(void *arg)
{
    pw_pusher *p = arg;
    unsigned failures_in_row = 0;
    for (;;) {
        push_result r = request(p, false, p->timeout_ms, true);
        double next = p->interval_s;
        if (r.ok) {
            atomic_fetch_add_explicit(&p->successes, 1, memory_order_relaxed);
            if (failures_in_row)
                PW_LOG(PW_LOG_INFO, "push recovered", PW_STR("path", p->group_path),
                       PW_UINT("failed_attempts", failures_in_row));
            failures_in_row = 0;
        } else if (r.code == CURLE_ABORTED_BY_CALLBACK) {
            break; /* stop requested mid-request: not a gateway failure */
        } else {
            count_failure(p);
            failures_in_row++;
            next = backoff_s(p, failures_in_row);
            PW_LOG_LIMITED(&p->failed_limiter, PW_LOG_WARN, "push failed",
                           PW_STR("path", p->group_path), PW_STR("error", result_error(p, &r)),
                           PW_INT("status", r.status), PW_UINT("failures", failures_in_row),
                           PW_DBL("retry_in_s", next));
        }
        if (wait_or_stop(p, next))
            break;
    }
    return NULL;
}

/* ---- public -------------------------------------------------------------- */

static long request_timeout_ms(double interval_s)
{
    double ms = interval_s * 500.0;
    if (!(ms >= PW_PUSH_TIMEOUT_MIN_MS))
        return PW_PUSH_TIMEOUT_MIN_MS;
    if (ms > PW_PUSH_TIMEOUT_MAX_MS)
        return PW_PUSH_TIMEOUT_MAX_MS;
    return (long)ms;
}

int pw_push_start(const pw_push_config *cfg, pw_pusher **out)
{
    if (!out)
        return PW_EINVAL;
    *out = NULL;
    if (!cfg || !cfg->url || !*cfg->url || !cfg->job || !*cfg->job || !cfg->stage ||
        !cfg->instance || !cfg->registry || !(cfg->interval_s > 0) || !isfinite(cfg->interval_s))
        return PW_EINVAL;
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_result != CURLE_OK)
        return PW_ERR;

    pw_pusher *p = calloc(1, sizeof *p);
    if (!p)
        return PW_ENOMEM;
    p->failed_limiter.interval_ns = 10000000000u;
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cond, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&p->stopping, false);
    atomic_init(&p->successes, 0);
    atomic_init(&p->failures, 0);
    p->interval_s = cfg->interval_s;
    p->timeout_ms = request_timeout_ms(cfg->interval_s);
    p->registry = cfg->registry;
    p->errors = cfg->errors;
    p->failed_index = cfg->failed_index;

    int rc = PW_OK;
    pw_buf path = PW_BUF_INIT, url = PW_BUF_INIT;
    pw_push_group_path(&path, cfg->job, cfg->stage, cfg->instance);
    size_t base = strlen(cfg->url);
    while (base > 0 && cfg->url[base - 1] == '/')
        base--; /* "http://gw:9091/" must not become "//metrics" */
    pw_buf_append(&url, cfg->url, base);
    pw_buf_append(&url, path.data, path.len);
    if (!pw_buf_ok(&path) || !pw_buf_ok(&url)) {
        rc = PW_ENOMEM;
    } else {
        p->group_path = path.data;
        p->url = url.data;
        path = (pw_buf)PW_BUF_INIT;
        url = (pw_buf)PW_BUF_INIT;
    }
    pw_buf_free(&path);
    pw_buf_free(&url);

    if (rc == PW_OK) {
        /* "Expect:" off: the gateway answers at once, a 100-continue round
         * trip would only add latency to large bodies. */
        struct curl_slist *h = curl_slist_append(NULL, "Content-Type: text/plain; version=0.0.4");
        struct curl_slist *h2 = h ? curl_slist_append(h, "Expect:") : NULL;
        p->put_headers = h2 ? h2 : h;
        if (!h2)
            rc = PW_ENOMEM;
    }
    if (rc == PW_OK && cfg->auth_file)
        rc = load_auth(p, cfg->auth_file);
    if (rc == PW_OK && cfg->ca_file && !(p->ca_file = strdup(cfg->ca_file)))
        rc = PW_ENOMEM;
    if (rc == PW_OK && !(p->curl = curl_easy_init()))
        rc = PW_ENOMEM;
    if (rc == PW_OK && pthread_create(&p->thread, NULL, push_thread, p) != 0)
        rc = PW_ERR;
    if (rc != PW_OK) {
        pusher_free(p);
        return rc;
    }
    p->thread_started = true;
    *out = p;
    return PW_OK;
}

int pw_push_stop(pw_pusher *p, double timeout_s, bool delete_group)
{
    if (!p)
        return PW_EINVAL;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    atomic_store_explicit(&p->stopping, true, memory_order_relaxed);
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->mu);
    if (p->thread_started)
        pthread_join(p->thread, NULL);

    int rc = PW_ETIMEDOUT;
    if (timeout_s > 0 && isfinite(timeout_s)) {
        double ms = timeout_s * 1000.0;
        long timeout_ms = ms < 1.0 ? 1L : ms > 3600e3 ? 3600000L : (long)ms;
        push_result r = request(p, delete_group, timeout_ms, false);
        if (r.ok) {
            atomic_fetch_add_explicit(&p->successes, 1, memory_order_relaxed);
            rc = PW_OK;
        } else {
            count_failure(p);
            /* The last word on shutdown is always logged, not rate-limited. */
            PW_LOG(PW_LOG_WARN, delete_group ? "final push delete failed" : "final push failed",
                   PW_STR("path", p->group_path), PW_STR("error", result_error(p, &r)),
                   PW_INT("status", r.status));
            rc = r.code == CURLE_OPERATION_TIMEDOUT ? PW_ETIMEDOUT : PW_EIO;
        }
    }
    pusher_free(p);
    return rc;
}

unsigned long pw_push_successes(const pw_pusher *p)
{
    return p ? atomic_load_explicit(&((pw_pusher *)p)->successes, memory_order_relaxed) : 0;
}

unsigned long pw_push_failures(const pw_pusher *p)
{
    return p ? atomic_load_explicit(&((pw_pusher *)p)->failures, memory_order_relaxed) : 0;
}

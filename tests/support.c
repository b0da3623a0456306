/*
 * support.c: the loopback test harness behind tests/support.h.
 *
 * Design: tests run in parallel (meson test) and inside Check's forked
 * children, so nothing here uses fixed ports, fixed paths or global state
 * that another test could see.  Ports come from binding 127.0.0.1:0, and
 * because a port can be taken between our probe and the child's bind,
 * pw_test_start_pushgateway verifies that the gateway answering is the one
 * it started (its status page names our persistence file) and retries on
 * another port otherwise.
 *
 * Children: each runs in its own process group, gets SIGKILL when the test
 * process dies (PR_SET_PDEATHSIG, so a crashed or timed-out test never
 * leaks a gateway), and is stopped by pid.  The death signal is tied to the
 * thread that spawned the child: spawn from a thread that outlives it
 * (normally the test's main thread).
 *
 * Waiting is always polling a condition against a monotonic deadline; the
 * short naps between polls only bound CPU use, they never stand in for the
 * condition itself.
 *
 * Not thread-safe beyond what libcurl guarantees: call from the test thread.
 *
 * Also here: the small file, command and data helpers that more than one
 * suite needs (temp files, reading a file, running a shell command with
 * captured output, exact-size heap copies, a seeded generator).
 */
#include "support.h"

#include <check.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pw.h"

extern char **environ;

/* Attempts at finding a port the gateway can keep; each costs one spawn. */
#define PW_TEST_GATEWAY_ATTEMPTS 5
#define PW_TEST_GATEWAY_START_S 15.0

static void nap_ms(long ms)
{
    struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&t, &t) == -1 && errno == EINTR) {
    }
}

static double now_s(void) { return (double)pw_now_ns() / 1e9; }

static char *dup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *dup_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    return n < 0 ? NULL : s;
}

/* Below the kernel's ephemeral range (32768-60999 by default), so that no
 * other test's outgoing connection can take the port between our check and
 * the server's bind (see pwtest.py's free_port for the same rule). */
int pw_test_free_port(void)
{
    static unsigned seed;
    if (!seed)
        seed = (unsigned)getpid() ^ (unsigned)time(NULL);
    for (int tries = 0; tries < 200; tries++) {
        int port = 20000 + (int)(rand_r(&seed) % 12000);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -1;
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
        close(fd);
        if (ok)
            return port;
    }
    return -1;
}

static char *tmp_template(const char *tag)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    return dup_printf("%s/pipewatch-%s-XXXXXX", base, tag ? tag : "test");
}

char *pw_test_tmpdir(const char *tag)
{
    char *path = tmp_template(tag);
    if (!path)
        return NULL;
    if (!mkdtemp(path)) {
        free(path);
        return NULL;
    }
    return path;
}

static int rmrf_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0; /* keep going: teardown removes what it can */
}

void pw_test_rmrf(const char *path)
{
    if (!path || !*path || strcmp(path, "/") == 0)
        return;
    nftw(path, rmrf_entry, 16, FTW_DEPTH | FTW_PHYS);
}

const char *pw_test_build_root(void)
{
    const char *s = getenv("PW_BUILD_ROOT");
    return s && *s ? s : ".";
}

const char *pw_test_source_root(void)
{
    const char *s = getenv("PW_SOURCE_ROOT");
    return s && *s ? s : "..";
}

/* PATH search done in the parent: after fork() in a threaded process the
 * child may only call async-signal-safe functions, and execvp may not be. */
static char *resolve_program(const char *name)
{
    if (strchr(name, '/'))
        return strdup(name);
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        const char *end = strchr(path, ':');
        size_t n = end ? (size_t)(end - path) : strlen(path);
        char *cand = dup_printf("%.*s/%s", (int)n, n ? path : ".", name);
        if (n == 0) {
            free(cand);
            cand = dup_printf("./%s", name);
        }
        if (cand && access(cand, X_OK) == 0)
            return cand;
        free(cand);
        path += n;
        if (*path == ':')
            path++;
    }
    return NULL;
}

static int open_output(const char *path)
{
    return open(path ? path : "/dev/null", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

pid_t pw_test_spawn(char *const argv[], const char *stdout_path, const char *stderr_path)
{
    if (!argv || !argv[0])
        return -1;
    char *prog = resolve_program(argv[0]);
    if (!prog)
        return -1;
    int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int out = open_output(stdout_path);
    int err = open_output(stderr_path);
    pid_t parent = getpid();
    pid_t pid = -1;
    if (in >= 0 && out >= 0 && err >= 0)
        pid = fork();
    if (pid == 0) {
        /* Child: async-signal-safe calls only. */
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127); /* the test died before we armed the death signal */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        struct sigaction dfl = { .sa_handler = SIG_DFL };
        sigaction(SIGPIPE, &dfl, NULL); /* ignored dispositions survive exec */
        sigaction(SIGINT, &dfl, NULL);
        sigaction(SIGTERM, &dfl, NULL);
        if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
            _exit(127);
        execve(prog, argv, environ);
        _exit(127);
    }
    if (pid > 0)
        setpgid(pid, pid); /* also from the parent, so a kill(-pid) right away works */
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    if (err >= 0)
        close(err);
    free(prog);
    return pid > 0 ? pid : -1;
}

bool pw_test_wait_exit(pid_t pid, double timeout_s, int *status)
{
    if (pid <= 0)
        return false;
    double deadline = now_s() + timeout_s;
    long nap = 1;
    for (;;) {
        int st = 0;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            if (status)
                *status = st;
            return true;
        }
        if (r < 0 && errno != EINTR)
            return false; /* not our child, or already reaped */
        if (now_s() >= deadline)
            return false;
        nap_ms(nap);
        if (nap < 20)
            nap *= 2;
    }
}

int pw_test_stop(pid_t pid, int sig, double timeout_s)
{
    if (pid <= 0)
        return -1;
    int status = -1;
    kill(pid, sig);
    if (pw_test_wait_exit(pid, timeout_s, &status))
        return status;
    kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            return -1;
    }
    return status;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

static size_t collect_body(char *data, size_t size, size_t n, void *user)
{
    pw_buf *body = user;
    if (body)
        pw_buf_append(body, data, size * n);
    return size * n;
}

static long http_get(const char *url, pw_buf *body, long timeout_ms)
{
    pthread_once(&curl_once, curl_init_once);
    CURL *c = curl_easy_init();
    if (!c)
        return -1;
    if (body)
        pw_buf_reset(body);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*"); /* tests only ever talk to loopback */
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
    long status = -1;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    return status;
}

long pw_test_http_get(const char *url, pw_buf *body) { return http_get(url, body, 5000); }

bool pw_test_wait_http(const char *url, double timeout_s)
{
    double deadline = now_s() + timeout_s;
    long nap = 5;
    for (;;) {
        if (http_get(url, NULL, 1000) == 200)
            return true;
        if (now_s() >= deadline)
            return false;
        nap_ms(nap);
        if (nap < 100)
            nap *= 2;
    }
}

/* The gateway on `port` is ours when its status page reports our listen
 * address and persistence file (another test's gateway could have won the
 * port race and be answering instead). */
static bool gateway_is_ours(int port, const char *persist)
{
    char *url = dup_printf("http://127.0.0.1:%d/api/v1/status", port);
    char *want_file = dup_printf("\"persistence.file\":\"%s\"", persist);
    char *want_addr = dup_printf("\"web.listen-address\":\"127.0.0.1:%d\"", port);
    bool ours = false;
    if (url && want_file && want_addr) {
        pw_buf body = PW_BUF_INIT;
        if (http_get(url, &body, 1000) == 200 && body.data)
            ours = strstr(body.data, want_file) && strstr(body.data, want_addr);
        pw_buf_free(&body);
    }
    free(url);
    free(want_file);
    free(want_addr);
    return ours;
}

pid_t pw_test_start_pushgateway(const char *dir, int *port)
{
    if (!dir || !port)
        return -1;
    char *persist = dup_printf("%s/pg.persist", dir);
    char *log = dup_printf("%s/pushgateway.log", dir);
    pid_t result = -1;
    for (int attempt = 0; persist && log && attempt < PW_TEST_GATEWAY_ATTEMPTS && result < 0; attempt++) {
        int p = pw_test_free_port();
        if (p <= 0)
            continue;
        char listen[64], persist_flag[4200];
        snprintf(listen, sizeof listen, "--web.listen-address=127.0.0.1:%d", p);
        snprintf(persist_flag, sizeof persist_flag, "--persistence.file=%s", persist);
        char *argv[] = { "prometheus-pushgateway", listen, persist_flag, "--log.level=warn", NULL };
        pid_t pid = pw_test_spawn(argv, log, log);
        if (pid < 0)
            break; /* not installed: retrying will not help */

        char *ready = dup_printf("http://127.0.0.1:%d/-/ready", p);
        double deadline = now_s() + PW_TEST_GATEWAY_START_S;
        long nap = 5;
        bool exited = false;
        while (ready && now_s() < deadline) {
            if (pw_test_wait_exit(pid, 0, NULL)) {
                exited = true; /* most likely lost the port; try another */
                break;
            }
            if (http_get(ready, NULL, 1000) == 200 && gateway_is_ours(p, persist)) {
                result = pid;
                *port = p;
                break;
            }
            nap_ms(nap);
            if (nap < 100)
                nap *= 2;
        }
        free(ready);
        if (result < 0 && !exited)
            pw_test_stop(pid, SIGKILL, 2.0);
    }
    if (result < 0 && log) {
        /* Leave a trace for --print-errorlogs: why did the gateway not start? */
        fprintf(stderr, "pw_test_start_pushgateway: gateway did not become ready; log at %s\n", log);
    }
    free(persist);
    free(log);
    return result;
}

double pw_test_gateway_value(int port, const char *series)
{
    if (!series || !*series)
        return NAN;
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", port);
    pw_buf body = PW_BUF_INIT;
    double value = NAN;
    size_t n = strlen(series);
    bool has_labels = strchr(series, '{') != NULL;
    if (pw_test_http_get(url, &body) == 200 && body.data) {
        for (const char *line = body.data; line && *line;) {
            const char *eol = strchr(line, '\n');
            /* Exact series: the name must not merely be a prefix of a longer
             * name, so the next character ends the series. */
            if (line[0] != '#' && strncmp(line, series, n) == 0 &&
                (line[n] == ' ' || (!has_labels && line[n] == '{'))) {
                /* The gateway prints no timestamps, so the value is the last
                 * field; label values may themselves contain spaces. */
                const char *v = NULL;
                for (const char *q = line + n; q < (eol ? eol : line + strlen(line)); q++)
                    if (*q == ' ')
                        v = q + 1;
                char *end = NULL;
                double d = v ? strtod(v, &end) : NAN;
                if (v && end != v) {
                    value = d;
                    break;
                }
            }
            line = eol ? eol + 1 : NULL;
        }
    }
    pw_buf_free(&body);
    return value;
}

long pw_test_count_lines(const char *path)
{
    FILE *f = path ? fopen(path, "rb") : NULL;
    if (!f)
        return -1;
    long lines = 0;
    int c, last = '\n';
    while ((c = getc(f)) != EOF) {
        if (c == '\n')
            lines++;
        last = c;
    }
    if (last != '\n')
        lines++; /* a final line without its LF still counts */
    fclose(f);
    return lines;
}

int pw_test_tmpfile(const char *tag, char **path)
{
    char *name = tmp_template(tag);
    int fd = name ? mkostemp(name, O_CLOEXEC) : -1;
    if (fd >= 0 && path)
        *path = name;
    else {
        if (fd >= 0)
            unlink(name);
        free(name);
    }
    return fd;
}

/* Appends everything from fd's offset 0 to its end. */
static void append_fd(int fd, pw_buf *out)
{
    char chunk[4096];
    ssize_t n;
    off_t at = 0;
    while ((n = pread(fd, chunk, sizeof chunk, at)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        pw_buf_append(out, chunk, (size_t)n);
        at += n;
    }
}

char *pw_test_read_file(const char *path)
{
    int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    if (fd < 0)
        return NULL;
    pw_buf b = PW_BUF_INIT;
    pw_buf_append_str(&b, ""); /* an empty file is "", not NULL */
    append_fd(fd, &b);
    close(fd);
    if (!pw_buf_ok(&b)) {
        pw_buf_free(&b);
        return NULL;
    }
    return b.data;
}

int pw_test_shell(const char *cmd, const char *input, pw_buf *out)
{
    if (out)
        pw_buf_reset(out);
    int in = pw_test_tmpfile("shell-in", NULL);
    int captured = pw_test_tmpfile("shell-out", NULL);
    int status = -1;
    pid_t pid = -1;
    size_t len = input ? strlen(input) : 0;
    if (in >= 0 && captured >= 0 && (len == 0 || write(in, input, len) == (ssize_t)len) &&
        lseek(in, 0, SEEK_SET) == 0)
        pid = fork();
    if (pid == 0) {
        /* Child: async-signal-safe calls only (the test may have threads). */
        if (dup2(in, 0) < 0 || dup2(captured, 1) < 0)
            _exit(127);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    if (pid > 0) {
        int st = 0;
        pid_t r;
        while ((r = waitpid(pid, &st, 0)) < 0 && errno == EINTR) {
        }
        if (r == pid && WIFEXITED(st))
            status = WEXITSTATUS(st);
        if (out)
            append_fd(captured, out);
    }
    if (in >= 0)
        close(in);
    if (captured >= 0)
        close(captured);
    return status;
}

void *pw_test_exact_copy(const void *data, size_t len)
{
    void *p = malloc(len ? len : 1);
    if (p && len)
        memcpy(p, data, len);
    return p;
}

uint64_t pw_test_rng(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

int pw_test_run(Suite *s)
{
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define PW_UNDER_VALGRIND RUNNING_ON_VALGRIND
#endif
#endif
#ifndef PW_UNDER_VALGRIND
#define PW_UNDER_VALGRIND 0
#endif

void pw_test_model_runs(const char *name, long iterations, long under_valgrind, void (*run)(uint64_t seed))
{
    const char *it = getenv("PW_MODEL_ITERATIONS");
    const char *fixed = getenv("PW_MODEL_SEED");
    long n = it ? atol(it) : PW_UNDER_VALGRIND ? under_valgrind : iterations;
    uint64_t seed0 = fixed ? strtoull(fixed, NULL, 10) : (uint64_t)time(NULL);
    printf("%s model: %ld sequences from seed %llu (PW_MODEL_SEED replays)\n", name, n,
           (unsigned long long)seed0);
    fflush(stdout);
    for (long i = 0; i < n; i++)
        run(seed0 + (uint64_t)i);
}

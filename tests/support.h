/*
 * support.h: helpers for tests that run real processes on loopback.
 *
 * Every test gets its own temp dir and its own free ports so that tests run
 * in parallel under `meson test`.  Children are stopped by PID.  Waiting is
 * always "poll a condition until a deadline", never a bare sleep.
 *
 * Paths and strings returned are malloc'd; the caller frees them.
 */
#ifndef PW_TEST_SUPPORT_H
#define PW_TEST_SUPPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "buf.h"

/* A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0). */
int pw_test_free_port(void);
/* A new directory under $TMPDIR (or /tmp) named pipewatch-<tag>-XXXXXX. */
char *pw_test_tmpdir(const char *tag);
/* rm -rf path (used in teardown; ignores errors). */
void pw_test_rmrf(const char *path);
/* $PW_BUILD_ROOT / $PW_SOURCE_ROOT set by tests/meson.build. */
const char *pw_test_build_root(void);
const char *pw_test_source_root(void);

/* Starts argv[0] (searched in PATH when it has no '/') with stdout and
 * stderr appended to the given files (NULL: /dev/null).  Returns the pid
 * (the child runs in its own process group) or -1. */
pid_t pw_test_spawn(char *const argv[], const char *stdout_path, const char *stderr_path);
/* Waits up to timeout_s for pid to exit; true with *status (waitpid
 * status) when it did. */
bool pw_test_wait_exit(pid_t pid, double timeout_s, int *status);
/* Sends sig, waits up to timeout_s, then SIGKILLs and reaps. Returns the
 * waitpid status. */
int pw_test_stop(pid_t pid, int sig, double timeout_s);

/* GET over libcurl; returns the HTTP status (or -1 when no answer) and the
 * body in *body (may be NULL).  Timeout 5 s. */
long pw_test_http_get(const char *url, pw_buf *body);
/* Polls url until it answers 200 or timeout_s passes. */
bool pw_test_wait_http(const char *url, double timeout_s);

/* Starts Debian's prometheus-pushgateway on a free loopback port with its
 * persistence file in dir.  Returns the pid and sets *port, after the
 * gateway answers; -1 on failure. */
pid_t pw_test_start_pushgateway(const char *dir, int *port);

/* Fetches <gateway>/metrics and returns the value of the first sample
 * whose line starts with `series` (exact name plus label set as the
 * gateway prints it, e.g. `pipeline_records_processed_total{instance="x",job="j",stage="sink"}`).
 * NAN when absent. */
double pw_test_gateway_value(int port, const char *series);

/* First statement of main() in a suite that checks metric values: with
 * -Dmetrics=false every update is compiled out and there is nothing to
 * verify, so the test reports meson's "skipped" (exit 77). */
#ifdef PW_METRICS_DISABLED
#define PW_TEST_SKIP_WITHOUT_METRICS()                                                     \
    do {                                                                                   \
        fputs("metric updates compiled out (-Dmetrics=false); skipping\n", stderr);        \
        return 77;                                                                         \
    } while (0)
#else
#define PW_TEST_SKIP_WITHOUT_METRICS() ((void)0)
#endif

/* Drives a model-based test: runs run(seed) for `iterations` consecutive
 * seeds (under Valgrind `under_valgrind` of them), from PW_MODEL_SEED when
 * set, else from the clock; PW_MODEL_ITERATIONS overrides the count.
 * Prints "<name> model: N sequences from seed S" first, so any failure can
 * be replayed with PW_MODEL_SEED=<the failing seed> PW_MODEL_ITERATIONS=1. */
void pw_test_model_runs(const char *name, long iterations, long under_valgrind, void (*run)(uint64_t seed));

/* Runs a Check suite (CK_NORMAL output) and returns the exit status for
 * main: EXIT_SUCCESS when every test passed.  Frees the suite. */
struct Suite;
int pw_test_run(struct Suite *s);

/* Counts lines in a file (-1 when it cannot be read). */
long pw_test_count_lines(const char *path);

/* A new file $TMPDIR/pipewatch-<tag>-XXXXXX, open read-write.  Returns the
 * fd or -1.  With path NULL the name is unlinked at once (the file lives as
 * long as the fd); otherwise *path gets the name and the caller unlinks. */
int pw_test_tmpfile(const char *tag, char **path);
/* The whole file as a NUL-terminated string, or NULL when unreadable. */
char *pw_test_read_file(const char *path);

/* Runs `/bin/sh -c cmd` with `input` on its stdin (NULL: empty) and its
 * stdout collected in *out (may be NULL); stderr is the test's.  Returns
 * the exit status, or -1 when it could not run or died by a signal. */
int pw_test_shell(const char *cmd, const char *input, pw_buf *out);

/* A heap copy of exactly len bytes (at least one allocated), so that under
 * AddressSanitizer a read one byte past the end fails the test. */
void *pw_test_exact_copy(const void *data, size_t len);

/* splitmix64: a reproducible stream of pseudo-random numbers from *state,
 * for tests that want varied input that is the same on every run. */
uint64_t pw_test_rng(uint64_t *state);

#endif

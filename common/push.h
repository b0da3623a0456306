/*
 * push.h: pushes a registry to a Prometheus Pushgateway from a background
 * thread (docs/contract.md, "Pushgateway").
 *
 * Every `interval` seconds the thread encodes the registry and PUTs it to
 *     <url>/metrics/job/<job>/stage/<stage>/instance/<instance>
 * (values containing '/' or empty use the `@base64` form).  PUT replaces the
 * group, so each push carries every series of the stage.  Connect and total
 * timeouts are well under the interval; after a failure the next attempt
 * backs off (doubling, capped at 30 s), the failure is counted in the
 * caller's errors counter at `failed_index` and logged (rate-limited warn).
 *
 * The stage's loop never waits for the gateway: it only updates atomics
 * that this thread reads.  pw_push_stop() ends the thread, then makes one
 * last synchronous push (or DELETE of the group) bounded by `timeout_s`,
 * and logs it (always, not rate-limited) when that fails.
 *
 * Credentials: auth_file holds either "user:password" (basic auth) or
 * "Bearer <token>"; it is read once at start.  ca_file enables a custom CA
 * for https:// URLs.  Neither ever appears in logs.
 *
 * The pusher does not own the registry or the config strings' targets; it
 * copies the strings it keeps.  Start and stop from the same (main) thread.
 */
#ifndef PW_PUSH_H
#define PW_PUSH_H

#include <stdbool.h>
#include <stddef.h>

#include "metrics.h"

typedef struct pw_push_config {
    const char *url;          /* e.g. "http://127.0.0.1:9091"; required */
    const char *job;
    const char *stage;
    const char *instance;
    double interval_s;        /* > 0 */
    pw_registry *registry;
    pw_counter_vec *errors;   /* may be NULL */
    size_t failed_index;      /* index of reason "push_failed" in errors */
    const char *auth_file;    /* may be NULL */
    const char *ca_file;      /* may be NULL */
} pw_push_config;

typedef struct pw_pusher pw_pusher;

/* Starts the thread.  The first push happens immediately.  PW_OK, PW_EINVAL
 * (bad config, unreadable auth file) or PW_ENOMEM. */
int pw_push_start(const pw_push_config *cfg, pw_pusher **out);

/* Stops the thread and pushes the registry once more (delete_group: DELETE
 * the group instead).  Returns PW_OK when that last request succeeded.
 * Frees the pusher. */
int pw_push_stop(pw_pusher *p, double timeout_s, bool delete_group);

/* Number of pushes that succeeded / failed so far: the `pushes` and
 * `push_failures` fields of a stage's stats line.  Any thread. */
unsigned long pw_push_successes(const pw_pusher *p);
unsigned long pw_push_failures(const pw_pusher *p);

/* Builds the group path "/metrics/job/.../instance/..." into out. */
void pw_push_group_path(pw_buf *out, const char *job, const char *stage, const char *instance);

#endif

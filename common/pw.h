/*
 * pw.h: the project-wide conventions every module shares.
 *
 * One error convention (curl's lesson): functions return an int status,
 * PW_OK on success and a negative PW_E* code on failure; values travel
 * through out-parameters.  Nothing in common/ calls exit(); only a stage's
 * main() decides how the process ends.
 *
 * Also here: the clocks.  Monotonic time measures durations and deadlines;
 * wall time is what records carry as event time (`ts`).
 */
#ifndef PW_H
#define PW_H

#include <stdint.h>
#include <time.h>

#ifndef PW_VERSION
#define PW_VERSION "0.1.0"
#endif

enum pw_status {
    PW_OK = 0,
    PW_ERR = -1,       /* generic failure; details were logged */
    PW_EINVAL = -2,    /* bad argument or input */
    PW_ENOMEM = -3,
    PW_EIO = -4,       /* file or socket I/O failed */
    PW_ETIMEDOUT = -5,
};

/* Exit codes of the stages (SPEC: bad usage 2, runtime failure 1). */
enum pw_exit {
    PW_EXIT_OK = 0,
    PW_EXIT_FAILURE = 1,
    PW_EXIT_USAGE = 2,
};

static inline uint64_t pw_now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* Wall-clock Unix time in seconds, microsecond resolution. */
static inline double pw_wall_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

#define PW_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif

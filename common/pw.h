/*
 * pw.h: the project-wide conventions every module shares.
 *
 * One error convention (curl's lesson), followed by every module:
 *
 *   - A function that can fail returns an int: PW_OK (0) on success, a
 *     negative PW_E* code on failure.  Values travel through
 *     out-parameters.  A negative return is always a PW_E* code, never an
 *     errno (errno values are positive): code that meets an errno logs
 *     strerror() and returns PW_EIO (or the PW_E* that fits).
 *   - Where success has more than one outcome, the others are small
 *     positive values named at the declaration: a reader returns 1 with
 *     an item and 0 at the end (pw_batch_read_next); pw_options_parse
 *     returns PW_OPTIONS_EXIT_OK when --help or --version was printed.
 *     So `rc < 0` always means failure.
 *   - What cannot fail says so by its type: predicates return bool, sizes
 *     size_t, lookups the index found (>= 0) or -1 for "none"
 *     (pw_dispatch_pick), record checks a pw_record_error.  Constructors
 *     and registrations return the object, or NULL (out of memory, or the
 *     bad argument their declaration names).
 *   - Nothing in common/ calls exit(); only a stage's main() decides how
 *     the process ends, with an exit code from enum pw_exit.
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

/* Exit codes of the stages (docs/contract.md, "Command lines"): bad usage
 * 2, runtime failure 1. */
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

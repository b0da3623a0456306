/*
 * proc.h: this process's figures from /proc/self (Linux), for the process_*
 * metric families.  Each returns PW_OK with the value in *out, or PW_EIO
 * when /proc is missing or unreadable.  Any thread; no state.
 */
#ifndef PW_PROC_H
#define PW_PROC_H

/* User + system CPU time, seconds. */
int pw_proc_cpu_seconds(double *out);
/* Resident set size, bytes. */
int pw_proc_resident_bytes(double *out);
/* Process start, Unix time in seconds (boot time + start ticks). */
int pw_proc_start_seconds(double *out);
/* Open file descriptors, not counting the one this call opens. */
int pw_proc_open_fds(double *out);

#endif

/*
 * proc.c: what the kernel says about this process, read from /proc (Linux):
 * CPU seconds, resident memory, start time, open file descriptors.
 *
 * For: the process_* metric families, read at encode time on the push
 * thread.  Owns nothing and keeps no state: every call reads the files
 * again into stack buffers.  Never allocates (beyond stdio's FILE and
 * opendir) and never logs: a caller that gets PW_EIO leaves the value out.
 */
#include "proc.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pw.h"

static long clock_ticks(void)
{
    long t = sysconf(_SC_CLK_TCK);
    return t > 0 ? t : 100;
}

/* Reads a small /proc file whole; /proc sizes are not known in advance. */
static bool read_proc_file(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = '\0';
    return n > 0;
}

/* Fields of /proc/self/stat after the command name, which may itself
 * contain spaces and parentheses; so parse from the last ')'.  index 0 is
 * field 3 (state) in proc(5) numbering. */
static bool proc_stat_fields(unsigned long long *utime, unsigned long long *stime,
                             unsigned long long *starttime)
{
    char buf[2048];
    if (!read_proc_file("/proc/self/stat", buf, sizeof buf))
        return false;
    char *p = strrchr(buf, ')');
    if (!p)
        return false;
    p++;
    int got = 0;
    for (int field = 3; field <= 22 && *p; field++) {
        while (*p == ' ')
            p++;
        char *end = NULL;
        unsigned long long v = strtoull(p, &end, 10);
        if (field == 14) {
            *utime = v;
            got++;
        } else if (field == 15) {
            *stime = v;
            got++;
        } else if (field == 22) {
            *starttime = v;
            got++;
        }
        p = strchr(p, ' ');
        if (!p)
            break;
    }
    return got == 3;
}

int pw_proc_cpu_seconds(double *out)
{
    unsigned long long ut = 0, st = 0, start = 0;
    if (!proc_stat_fields(&ut, &st, &start))
        return PW_EIO;
    *out = (double)(ut + st) / (double)clock_ticks();
    return PW_OK;
}

int pw_proc_resident_bytes(double *out)
{
    char buf[256];
    unsigned long long size = 0, resident = 0;
    if (!read_proc_file("/proc/self/statm", buf, sizeof buf) ||
        sscanf(buf, "%llu %llu", &size, &resident) != 2)
        return PW_EIO;
    long page = sysconf(_SC_PAGESIZE);
    *out = (double)resident * (double)(page > 0 ? page : 4096);
    return PW_OK;
}

int pw_proc_start_seconds(double *out)
{
    unsigned long long ut = 0, st = 0, start = 0;
    if (!proc_stat_fields(&ut, &st, &start))
        return PW_EIO;
    FILE *f = fopen("/proc/stat", "re");
    if (!f)
        return PW_EIO;
    char line[512];
    unsigned long long btime = 0;
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = sscanf(line, "btime %llu", &btime) == 1;
    fclose(f);
    if (!found)
        return PW_EIO;
    *out = (double)btime + (double)start / (double)clock_ticks();
    return PW_OK;
}

int pw_proc_open_fds(double *out)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return PW_EIO;
    int self = dirfd(d);
    double n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (atoi(e->d_name) == self)
            continue; /* our own directory handle is not the process's */
        n++;
    }
    closedir(d);
    *out = n;
    return PW_OK;
}

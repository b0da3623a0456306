/*
 * journal.c: the sink's files, their recovery, and acks held until a
 * covering sync (see journal.h for the rule and the failure policy).
 *
 * Offsets: per file, `written` is the file's length as this process knows
 * it (recovered length + every byte written since), `synced` the prefix a
 * completed fdatasync covers, `appended` written + buffered.  Pending acks
 * form a FIFO whose `need` offsets never decrease, so release is always a
 * prefix.
 */
#include "journal.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <libgen.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "pw.h"
#include "record.h"

typedef struct journal_file {
    char *path;
    int fd;
    bool created;       /* this open created it: its directory entry needs a sync */
    pw_buf buf;         /* complete lines not yet written */
    uint64_t written, synced;
} journal_file;

struct pw_journal {
    journal_file f[PW_JOURNAL_FILES];
    enum pw_journal_policy policy;
    uint64_t interval_ns, next_sync_ns;
    bool recovered, failed;
    pw_journal_ack *acks;
    size_t nacks, acks_cap;
    json_tokener *tok;
    json_object *last;       /* the tree pw_journal_line_identity's answer points into */
    /* syncer thread: the loop posts targets, the syncer answers on done_fd */
    bool thread_started, syncing;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool requested, exiting;
    uint64_t target[PW_JOURNAL_FILES];
    int result;              /* errno of the failed fdatasync, 0 when fine */
    int failed_file;
    int done_fd;
};

static int fail_io(pw_journal *j, const journal_file *f, const char *what, int err)
{
    j->failed = true;
    PW_LOG(PW_LOG_ERROR, what, PW_STR("file", f->path), PW_STR("error", strerror(err)),
           PW_INT("errno", err));
    return PW_EIO;
}

/* Write lock on the whole file; on conflict names the holder. */
static int lock_file(const journal_file *f)
{
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
    if (fcntl(f->fd, F_SETLK, &fl) == 0)
        return PW_OK;
    int err = errno;
    if (err != EAGAIN && err != EACCES) {
        PW_LOG(PW_LOG_ERROR, "cannot lock file", PW_STR("file", f->path), PW_STR("error", strerror(err)));
        return PW_EIO;
    }
    struct flock who = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
    long long pid = fcntl(f->fd, F_GETLK, &who) == 0 && who.l_type != F_UNLCK ? (long long)who.l_pid : -1;
    PW_LOG(PW_LOG_ERROR, "file is locked by another sink; refusing to write it too", PW_STR("file", f->path),
           PW_INT("holder_pid", pid));
    return PW_EIO;
}

static int open_file(journal_file *f)
{
    f->fd = open(f->path, O_RDWR | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0640);
    f->created = f->fd >= 0;
    if (f->fd < 0 && errno == EEXIST)
        f->fd = open(f->path, O_RDWR | O_APPEND | O_CLOEXEC);
    if (f->fd < 0) {
        PW_LOG(PW_LOG_ERROR, "cannot open file", PW_STR("file", f->path), PW_STR("error", strerror(errno)));
        return PW_EIO;
    }
    return lock_file(f);
}

int pw_journal_open(const pw_journal_config *cfg, pw_journal **out)
{
    *out = NULL;
    pw_journal *j = calloc(1, sizeof *j);
    if (!j)
        return PW_ENOMEM;
    j->policy = cfg->policy;
    j->interval_ns = cfg->interval_ms * 1000000u;
    j->done_fd = -1;
    for (int i = 0; i < PW_JOURNAL_FILES; i++) {
        j->f[i].fd = -1;
        j->f[i].buf = (pw_buf)PW_BUF_INIT;
    }
    j->tok = json_tokener_new_ex(PW_RECORD_MAX_DEPTH + 4);
    for (int i = 0; i < PW_JOURNAL_FILES; i++)
        if (!(j->f[i].path = strdup(cfg->path[i])))
            j->failed = true;
    if (!j->tok || j->failed) {
        pw_journal_close(j);
        return PW_ENOMEM;
    }
    for (int i = 0; i < PW_JOURNAL_FILES; i++) {
        if (open_file(&j->f[i]) != PW_OK) {
            pw_journal_close(j);
            return PW_EIO;
        }
    }
    *out = j;
    return PW_OK;
}

void pw_journal_close(pw_journal *j)
{
    if (!j)
        return;
    if (j->thread_started) {
        pthread_mutex_lock(&j->lock);
        j->exiting = true;
        pthread_cond_signal(&j->wake);
        pthread_mutex_unlock(&j->lock);
        pthread_join(j->thread, NULL);
        pthread_mutex_destroy(&j->lock);
        pthread_cond_destroy(&j->wake);
    }
    if (j->done_fd >= 0)
        close(j->done_fd);
    for (int i = 0; i < PW_JOURNAL_FILES; i++) {
        if (j->f[i].fd >= 0)
            close(j->f[i].fd);
        free(j->f[i].path);
        pw_buf_free(&j->f[i].buf);
    }
    json_object_put(j->last);
    if (j->tok)
        json_tokener_free(j->tok);
    free(j->acks);
    free(j);
}

/* ---- identity and recovery ------------------------------------------------ */

int pw_journal_line_identity(pw_journal *j, const char *line, size_t len, pw_line_identity *id)
{
    json_object_put(j->last);
    json_tokener_reset(j->tok);
    j->last = len <= INT32_MAX ? json_tokener_parse_ex(j->tok, line, (int)len) : NULL;
    json_object *producer, *seq, *run, *ts;
    if (!j->last || !json_object_is_type(j->last, json_type_object) ||
        !json_object_object_get_ex(j->last, "producer", &producer) ||
        !json_object_is_type(producer, json_type_string) || !json_object_object_get_ex(j->last, "seq", &seq) ||
        !json_object_is_type(seq, json_type_int) || json_object_get_int64(seq) < 0)
        return PW_EINVAL;
    id->producer = json_object_get_string(producer);
    id->producer_len = (size_t)json_object_get_string_len(producer);
    id->seq = (uint64_t)json_object_get_int64(seq);
    id->run = json_object_object_get_ex(j->last, "run", &run) && json_object_is_type(run, json_type_int)
                  ? (uint64_t)json_object_get_int64(run) : 0;
    id->ts = json_object_object_get_ex(j->last, "ts", &ts) &&
                     (json_object_is_type(ts, json_type_double) || json_object_is_type(ts, json_type_int))
                 ? json_object_get_double(ts) : 0;
    return PW_OK;
}

static int recover_file(pw_journal *j, enum pw_journal_file which, pw_journal_line_fn fn, void *ctx,
                        uint64_t *lines)
{
    journal_file *f = &j->f[which];
    struct stat sb;
    if (fstat(f->fd, &sb) != 0)
        return fail_io(j, f, "cannot stat file", errno);
    /* Read in chunks of up to 1 MiB, grown only for a longer line. */
    pw_buf chunk = PW_BUF_INIT;
    if (pw_buf_reserve(&chunk, sb.st_size < (1 << 20) ? (size_t)sb.st_size + 64 : 1 << 20) != PW_OK)
        return PW_ENOMEM;
    uint64_t offset = 0, complete = 0;
    int rc = PW_OK;
    while (rc == PW_OK) {
        ssize_t n = pread(f->fd, chunk.data + chunk.len, chunk.cap - chunk.len - 1, (off_t)offset);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = fail_io(j, f, "cannot read file", errno);
            break;
        }
        if (n == 0)
            break;
        offset += (uint64_t)n;
        chunk.len += (size_t)n;
        size_t start = 0;
        char *nl;
        while (rc == PW_OK && (nl = memchr(chunk.data + start, '\n', chunk.len - start))) {
            size_t len = (size_t)(nl - (chunk.data + start));
            pw_line_identity id;
            bool has = pw_journal_line_identity(j, chunk.data + start, len, &id) == PW_OK;
            rc = fn(ctx, which, chunk.data + start, len, has ? &id : NULL);
            (*lines)++;
            start += len + 1;
            complete += len + 1;
        }
        memmove(chunk.data, chunk.data + start, chunk.len - start);
        chunk.len -= start;
        if (rc == PW_OK && chunk.len + 1 >= chunk.cap && pw_buf_reserve(&chunk, chunk.cap) != PW_OK)
            rc = PW_ENOMEM;
    }
    pw_buf_free(&chunk);
    if (rc != PW_OK)
        return rc;
    if (complete < (uint64_t)sb.st_size) {
        PW_LOG(PW_LOG_WARN, "cutting a torn last line left by a crash", PW_STR("file", f->path),
               PW_UINT("bytes", (uint64_t)sb.st_size - complete));
        if (ftruncate(f->fd, (off_t)complete) != 0)
            return fail_io(j, f, "cannot cut a torn last line", errno);
    }
    f->written = complete;
    return PW_OK;
}

static int sync_dir_of(pw_journal *j, const journal_file *f)
{
    char *copy = strdup(f->path);
    if (!copy)
        return PW_ENOMEM;
    int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = PW_OK;
    if (dfd < 0 || fsync(dfd) != 0)
        rc = fail_io(j, f, "cannot sync the directory of a new file", errno);
    if (dfd >= 0)
        close(dfd);
    free(copy);
    return rc;
}

int pw_journal_recover(pw_journal *j, pw_journal_line_fn fn, void *ctx, uint64_t *lines)
{
    assert(!j->recovered);
    *lines = 0;
    for (int i = 0; i < PW_JOURNAL_FILES; i++) {
        int rc = recover_file(j, (enum pw_journal_file)i, fn, ctx, lines);
        if (rc != PW_OK)
            return rc;
    }
    /* Before anything can be acknowledged: what a previous run wrote but
     * may never have synced is made durable now (see journal.h). */
    for (int i = 0; i < PW_JOURNAL_FILES; i++) {
        journal_file *f = &j->f[i];
        if (fdatasync(f->fd) != 0)
            return fail_io(j, f, "cannot fdatasync a recovered file", errno);
        if (f->created && sync_dir_of(j, f) != PW_OK)
            return PW_EIO;
        f->synced = f->written;
    }
    json_object_put(j->last);
    j->last = NULL;
    j->recovered = true;
    return PW_OK;
}

/* ---- appending and writing ------------------------------------------------ */

void pw_journal_append(pw_journal *j, enum pw_journal_file file, const char *line, size_t len)
{
    assert(j->recovered && file < PW_JOURNAL_FILES);
    pw_buf_append(&j->f[file].buf, line, len);
    pw_buf_append_char(&j->f[file].buf, '\n');
}

size_t pw_journal_buffered(const pw_journal *j)
{
    return j->f[PW_JOURNAL_OUT].buf.len + j->f[PW_JOURNAL_DEAD].buf.len;
}

uint64_t pw_journal_appended(const pw_journal *j, enum pw_journal_file file)
{
    return j->f[file].written + j->f[file].buf.len;
}

int pw_journal_queue_ack(pw_journal *j, void *stream, uint64_t seq)
{
    if (j->nacks == j->acks_cap) {
        size_t cap = j->acks_cap ? j->acks_cap * 2 : 4096;
        pw_journal_ack *p = realloc(j->acks, cap * sizeof *p);
        if (!p)
            return PW_ENOMEM; /* the producer re-sends; the duplicate is acked then */
        j->acks = p;
        j->acks_cap = cap;
    }
    j->acks[j->nacks++] = (pw_journal_ack){ stream, seq,
                                            { pw_journal_appended(j, PW_JOURNAL_OUT),
                                              pw_journal_appended(j, PW_JOURNAL_DEAD) } };
    return PW_OK;
}

size_t pw_journal_pending_acks(const pw_journal *j) { return j->nacks; }

static int write_file(pw_journal *j, journal_file *f)
{
    size_t done = 0;
    while (done < f->buf.len) {
        ssize_t n = write(f->fd, f->buf.data + done, f->buf.len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int err = errno;
            /* Keep the complete lines that made it; cut the partial one. */
            size_t keep = done;
            while (keep > 0 && f->buf.data[keep - 1] != '\n')
                keep--;
            fail_io(j, f, "cannot write; stopping (nothing unwritten is acknowledged)", err);
            if (keep < done && ftruncate(f->fd, (off_t)(f->written + keep)) != 0)
                PW_LOG(PW_LOG_ERROR, "cannot cut a partly written line", PW_STR("file", f->path),
                       PW_STR("error", strerror(errno)));
            f->written += keep;
            pw_buf_reset(&f->buf);
            return PW_EIO;
        }
        done += (size_t)n;
    }
    f->written += f->buf.len;
    pw_buf_reset(&f->buf);
    if (j->policy == PW_JOURNAL_SYNC_NEVER)
        f->synced = f->written;
    return PW_OK;
}

int pw_journal_write(pw_journal *j)
{
    if (j->failed)
        return PW_EIO;
    for (int i = 0; i < PW_JOURNAL_FILES; i++) {
        if (!pw_buf_ok(&j->f[i].buf)) {
            j->failed = true;
            PW_LOG(PW_LOG_ERROR, "out of memory buffering lines", PW_STR("file", j->f[i].path));
            return PW_ENOMEM;
        }
    }
    /* Dead letters first: whoever sees a line in the output file can rely on
     * every dead letter processed before it being complete on disk. */
    if (write_file(j, &j->f[PW_JOURNAL_DEAD]) != PW_OK || write_file(j, &j->f[PW_JOURNAL_OUT]) != PW_OK)
        return PW_EIO;
    return PW_OK;
}

int pw_journal_sync(pw_journal *j)
{
    assert(!j->syncing);
    int rc = pw_journal_write(j);
    for (int i = 0; rc == PW_OK && i < PW_JOURNAL_FILES; i++) {
        journal_file *f = &j->f[i];
        if (f->synced == f->written)
            continue;
        if (fdatasync(f->fd) != 0)
            return fail_io(j, f, "cannot fdatasync; stopping (nothing it covers is acknowledged)", errno);
        f->synced = f->written;
    }
    return rc;
}

/* ---- the syncer thread ---------------------------------------------------- */

static void *syncer_main(void *arg)
{
    pw_journal *j = arg;
    pthread_mutex_lock(&j->lock);
    for (;;) {
        while (!j->requested && !j->exiting)
            pthread_cond_wait(&j->wake, &j->lock);
        if (j->exiting)
            break;
        j->requested = false;
        bool todo[PW_JOURNAL_FILES];
        for (int i = 0; i < PW_JOURNAL_FILES; i++)
            todo[i] = j->target[i] > j->f[i].synced;
        pthread_mutex_unlock(&j->lock);
        int err = 0, which = 0;
        for (int i = 0; i < PW_JOURNAL_FILES && !err; i++) {
            if (todo[i] && fdatasync(j->f[i].fd) != 0) {
                err = errno;
                which = i;
            }
        }
        pthread_mutex_lock(&j->lock);
        j->result = err;
        j->failed_file = which;
        uint64_t one = 1;
        while (write(j->done_fd, &one, sizeof one) < 0 && errno == EINTR) {
        }
    }
    pthread_mutex_unlock(&j->lock);
    return NULL;
}

int pw_journal_syncer_start(pw_journal *j)
{
    j->done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    int rc = j->done_fd < 0 ? errno : pthread_mutex_init(&j->lock, NULL);
    if (rc == 0 && (rc = pthread_cond_init(&j->wake, NULL)) != 0)
        pthread_mutex_destroy(&j->lock);
    if (rc == 0 && (rc = pthread_create(&j->thread, NULL, syncer_main, j)) != 0) {
        pthread_mutex_destroy(&j->lock);
        pthread_cond_destroy(&j->wake);
    }
    if (rc != 0) {
        PW_LOG(PW_LOG_ERROR, "cannot start the syncer thread", PW_STR("error", strerror(rc)));
        return PW_ERR;
    }
    j->thread_started = true;
    return PW_OK;
}

int pw_journal_event_fd(const pw_journal *j) { return j->done_fd; }
bool pw_journal_syncing(const pw_journal *j) { return j->syncing; }

bool pw_journal_request_sync(pw_journal *j)
{
    if (j->failed || j->syncing || !j->thread_started)
        return false;
    if (j->f[0].synced == j->f[0].written && j->f[1].synced == j->f[1].written)
        return false;
    pthread_mutex_lock(&j->lock);
    for (int i = 0; i < PW_JOURNAL_FILES; i++)
        j->target[i] = j->f[i].written;
    j->requested = true;
    pthread_cond_signal(&j->wake);
    pthread_mutex_unlock(&j->lock);
    j->syncing = true;
    return true;
}

long pw_journal_tick(pw_journal *j, uint64_t now_ns, long max_ms)
{
    if (j->policy == PW_JOURNAL_SYNC_NEVER)
        return max_ms;
    if ((j->policy == PW_JOURNAL_SYNC_ALWAYS || now_ns >= j->next_sync_ns) && pw_journal_request_sync(j))
        j->next_sync_ns = now_ns + j->interval_ns;
    if (j->syncing || (j->f[0].synced == j->f[0].written && j->f[1].synced == j->f[1].written))
        return max_ms; /* the eventfd or new records wake the loop */
    long due = now_ns >= j->next_sync_ns ? 0 : (long)((j->next_sync_ns - now_ns) / 1000000u) + 1;
    return due < max_ms ? due : max_ms;
}

int pw_journal_sync_done(pw_journal *j)
{
    uint64_t v;
    if (!j->syncing || read(j->done_fd, &v, sizeof v) < 0)
        return j->failed ? PW_EIO : PW_OK; /* nothing finished yet */
    pthread_mutex_lock(&j->lock);
    int err = j->result, which = j->failed_file;
    pthread_mutex_unlock(&j->lock);
    j->syncing = false;
    if (err)
        return fail_io(j, &j->f[which], "cannot fdatasync; stopping (nothing it covers is acknowledged)", err);
    for (int i = 0; i < PW_JOURNAL_FILES; i++)
        if (j->target[i] > j->f[i].synced)
            j->f[i].synced = j->target[i];
    return PW_OK;
}

int pw_journal_wait_syncer(pw_journal *j)
{
    while (j->syncing) {
        struct pollfd p = { .fd = j->done_fd, .events = POLLIN };
        if (poll(&p, 1, 1000) < 0 && errno != EINTR)
            return PW_EIO;
        int rc = pw_journal_sync_done(j);
        if (rc != PW_OK)
            return rc;
    }
    return j->failed ? PW_EIO : PW_OK;
}

size_t pw_journal_release(pw_journal *j, pw_journal_release_fn fn, void *ctx)
{
    if (j->failed)
        return 0;
    size_t n = 0;
    while (n < j->nacks && j->acks[n].need[PW_JOURNAL_OUT] <= j->f[PW_JOURNAL_OUT].synced &&
           j->acks[n].need[PW_JOURNAL_DEAD] <= j->f[PW_JOURNAL_DEAD].synced)
        n++;
    if (n == 0)
        return 0;
    fn(ctx, j->acks, n);
    memmove(j->acks, j->acks + n, (j->nacks - n) * sizeof *j->acks);
    j->nacks -= n;
    return n;
}

uint64_t pw_journal_written(const pw_journal *j, enum pw_journal_file file) { return j->f[file].written; }
uint64_t pw_journal_synced(const pw_journal *j, enum pw_journal_file file) { return j->f[file].synced; }
bool pw_journal_failed(const pw_journal *j) { return j->failed; }
const char *pw_journal_path(const pw_journal *j, enum pw_journal_file file) { return j->f[file].path; }

/*
 * sink: writes records durably, exactly once, and acknowledges them
 * (docs/contract.md "Wire"; README "Delivery guarantee, and its limits").
 *
 * Order of events for every record: dedup check -> append to the output or
 * dead-letter file -> (fdatasync, per --fsync) -> ack to the producer.  An
 * ack therefore always means "on disk under the chosen policy"; a crash
 * before the ack makes the producer re-send, and the re-sent copy is found
 * in the dedup index and only re-acknowledged.  On start the index is
 * rebuilt from both files (a torn last line from a kill is cut off first),
 * so a restarted sink neither loses nor duplicates.
 *
 * Writes are batched: everything ZeroMQ has ready is processed into two
 * buffers and written with one write(2) per file, so under load a syscall
 * carries many records and under light load a record waits for nothing.
 *
 * fdatasync runs on a syncer thread: the loop hands it "make durable what
 * is written so far", keeps receiving and writing meanwhile, and sends the
 * acks covered by that sync when the syncer reports back through an
 * eventfd in the loop's zmq_poll.  A slow disk delays acks, never the
 * records behind them.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "buf.h"
#include "dedup.h"
#include "log.h"
#include "metrics.h"
#include "options.h"
#include "pw.h"
#include "record.h"
#include "stage.h"
#include "transport.h"
#include "wire.h"

/* A worker's result batch is at most its 16 MiB input with dead letters'
 * raw bytes in base64 (4/3) plus their envelopes: 32 MiB is room enough. */
#define SINK_MAXMSGSIZE (32 * 1024 * 1024)
#define SINK_MAX_STREAMS 64
/* Stop collecting and write once this much is buffered. */
#define SINK_WRITE_CHUNK (128 * 1024)

enum fsync_policy { FSYNC_ALWAYS, FSYNC_BATCH, FSYNC_NEVER };
static const char *const fsync_names[] = { "always", "batch", "never", NULL };

typedef struct sink_file {
    const char *path;
    int fd;
    pw_buf buf;     /* lines not yet written */
    bool dirty;     /* written since the last fdatasync */
} sink_file;

typedef struct pending_ack {
    pw_dedup_stream *stream; /* holds one pin on the stream until sent */
    uint64_t seq;
} pending_ack;

typedef struct sink {
    pw_stage st;
    const char *bind, *ack;
    int fsync;
    uint64_t fsync_interval_ms, dedup_window;
    pw_security security;
    void *ctx, *pull, *pub;
    sink_file out, dead;
    pw_dedup *dedup;
    pending_ack *acks;          /* written, not yet acknowledged */
    size_t nacks, acks_cap;
    pw_buf ackmsg;
    uint64_t next_sync_ns;
    /* syncer thread: the loop sets a request, the syncer answers on done_fd */
    pthread_t syncer;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool sync_requested, sync_out, sync_dead, syncer_exit;
    int sync_result;
    int done_fd;               /* eventfd: the syncer finished a request */
    bool syncing;              /* a request is in progress */
    size_t acks_in_sync;       /* acks [0, acks_in_sync) wait for the running sync */
    pw_buf written_ts;         /* event times of output records not yet written */
    pw_counter *dead_lettered, *duplicates;
    pw_histogram *e2e;
} sink;

static int open_file(sink_file *f)
{
    f->fd = open(f->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (f->fd < 0) {
        PW_LOG(PW_LOG_ERROR, "cannot open file", PW_STR("file", f->path), PW_STR("error", strerror(errno)));
        return PW_EIO;
    }
    return PW_OK;
}

/* Marks the record a recovered line stands for; lines without a stream
 * identity (bare records that failed) need no dedup. */
static void recover_line(sink *s, json_tokener *tok, const char *line, size_t len, uint64_t *marked)
{
    json_tokener_reset(tok);
    json_object *obj = json_tokener_parse_ex(tok, line, (int)len);
    json_object *producer, *run, *seq;
    if (obj && json_object_object_get_ex(obj, "producer", &producer) &&
        json_object_is_type(producer, json_type_string) && json_object_object_get_ex(obj, "seq", &seq) &&
        json_object_is_type(seq, json_type_int)) {
        uint64_t r = 0;
        if (json_object_object_get_ex(obj, "run", &run) && json_object_is_type(run, json_type_int))
            r = (uint64_t)json_object_get_int64(run);
        const char *name = json_object_get_string(producer);
        pw_dedup_stream *st = pw_dedup_stream_get(s->dedup, name, strlen(name), r);
        if (st && pw_dedup_mark(st, (uint64_t)json_object_get_int64(seq)))
            (*marked)++;
    }
    json_object_put(obj);
}

/* Rebuilds the dedup index from a file and cuts a torn last line. */
static int recover_file(sink *s, sink_file *f, uint64_t *lines)
{
    struct stat sb;
    if (fstat(f->fd, &sb) != 0)
        return PW_EIO;
    json_tokener *tok = json_tokener_new_ex(PW_RECORD_MAX_DEPTH + 4);
    pw_buf chunk = PW_BUF_INIT;
    if (!tok || pw_buf_reserve(&chunk, 1 << 20) != PW_OK) {
        json_tokener_free(tok);
        pw_buf_free(&chunk);
        return PW_ENOMEM;
    }
    off_t offset = 0, complete = 0;
    uint64_t marked = 0;
    int rc = PW_OK;
    for (;;) {
        ssize_t n = pread(f->fd, chunk.data + chunk.len, chunk.cap - chunk.len - 1, offset);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = PW_EIO;
            break;
        }
        if (n == 0)
            break;
        offset += n;
        chunk.len += (size_t)n;
        size_t start = 0;
        for (;;) {
            char *nl = memchr(chunk.data + start, '\n', chunk.len - start);
            if (!nl)
                break;
            size_t len = (size_t)(nl - (chunk.data + start));
            recover_line(s, tok, chunk.data + start, len, &marked);
            (*lines)++;
            start += len + 1;
            complete += (off_t)len + 1;
        }
        memmove(chunk.data, chunk.data + start, chunk.len - start);
        chunk.len -= start;
        if (chunk.len + 1 >= chunk.cap && pw_buf_reserve(&chunk, chunk.cap) != PW_OK) {
            rc = PW_ENOMEM;
            break;
        }
    }
    if (rc == PW_OK && complete < sb.st_size) {
        PW_LOG(PW_LOG_WARN, "cutting a torn last line left by a crash", PW_STR("file", f->path),
               PW_INT("bytes", (long long)(sb.st_size - complete)));
        if (ftruncate(f->fd, complete) != 0)
            rc = PW_EIO;
    }
    json_tokener_free(tok);
    pw_buf_free(&chunk);
    return rc;
}

static int write_all(sink_file *f)
{
    size_t done = 0;
    while (done < f->buf.len) {
        ssize_t n = write(f->fd, f->buf.data + done, f->buf.len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            PW_LOG(PW_LOG_ERROR, "cannot write", PW_STR("file", f->path), PW_STR("error", strerror(errno)));
            return PW_EIO;
        }
        done += (size_t)n;
    }
    if (f->buf.len)
        f->dirty = true;
    pw_buf_reset(&f->buf);
    return PW_OK;
}

static void add_ack(sink *s, pw_dedup_stream *st, uint64_t seq)
{
    if (s->nacks == s->acks_cap) {
        size_t cap = s->acks_cap ? s->acks_cap * 2 : 4096;
        pending_ack *p = realloc(s->acks, cap * sizeof *p);
        if (!p)
            return; /* the producer re-sends; the duplicate is acked then */
        s->acks = p;
        s->acks_cap = cap;
    }
    pw_dedup_stream_pin(st, true);
    s->acks[s->nacks++] = (pending_ack){ st, seq };
}

/* Sends every pending ack: one message per stream, consecutive seqs merged
 * into ranges.  PUB never blocks; an ack dropped on the way is recovered by
 * the producer's re-send. */
static void send_acks(sink *s)
{
    for (size_t i = 0; i < s->nacks; i++) {
        pw_dedup_stream *st = s->acks[i].stream;
        if (!st)
            continue;
        const char *producer;
        size_t len;
        uint64_t run;
        pw_dedup_stream_identity(st, &producer, &len, &run);
        pw_ack_writer w;
        pw_ack_begin(&w, &s->ackmsg, producer, len, run);
        for (size_t j = i; j < s->nacks; j++) {
            if (s->acks[j].stream == st) {
                pw_ack_add(&w, s->acks[j].seq);
                pw_dedup_stream_pin(st, false);
                s->acks[j].stream = NULL;
            }
        }
        pw_ack_finish(&w);
        if (pw_buf_ok(&s->ackmsg))
            zmq_send(s->pub, s->ackmsg.data, s->ackmsg.len, ZMQ_DONTWAIT);
    }
    s->nacks = 0;
}

/* A message that is not a well-formed batch: dead-letter its bytes. */
static void dead_letter_message(sink *s, const char *msg, size_t len)
{
    pw_record_dead_letter(&s->dead.buf, PW_REC_MALFORMED_JSON, "message is not a pipewatch batch",
                          NULL, 0, 0, s->st.opts.instance, pw_wall_seconds(), msg, len);
    pw_buf_append_char(&s->dead.buf, '\n');
    pw_counter_inc(s->dead_lettered);
    pw_counter_vec_inc(s->st.errors, PW_REASON_MALFORMED_JSON);
    static pw_log_limiter lim = PW_LOG_LIMITER_INIT(5000);
    PW_LOG_LIMITED(&lim, PW_LOG_WARN, "malformed message dead-lettered", PW_STR("reason", "malformed_json"),
                   PW_UINT("bytes", len));
}

/* A producer subscribing to its acks is answered at once with an empty
 * ack: until it has seen one, the producer knows its acks would be dropped
 * (PUB sends nothing to a subscriber it has not heard from) and waits. */
static void answer_subscriptions(sink *s)
{
    zmq_msg_t m;
    zmq_msg_init(&m);
    while (zmq_msg_recv(&m, s->pub, ZMQ_DONTWAIT) >= 0) {
        const char *d = zmq_msg_data(&m);
        size_t n = zmq_msg_size(&m);
        if (n < 2 || d[0] != 1 || d[n - 1] != '\0')
            continue; /* unsubscribe, or not a producer's topic */
        pw_greeting_write(&s->ackmsg, d + 1, n - 2, s->dedup_window);
        if (pw_buf_ok(&s->ackmsg))
            zmq_send(s->pub, s->ackmsg.data, s->ackmsg.len, ZMQ_DONTWAIT);
    }
    zmq_msg_close(&m);
}

static void process_message(sink *s, const char *msg, size_t len, uint64_t received_ns)
{
    if (!pw_batch_valid(msg, len)) {
        dead_letter_message(s, msg, len);
        return;
    }
    pw_batch_reader r;
    pw_batch_item item;
    pw_batch_read_begin(&r, msg, len);
    pw_dedup_stream *st = NULL;
    if (r.producer_len > 0) {
        st = pw_dedup_stream_get(s->dedup, r.producer, r.producer_len, r.run);
        if (!st) {
            /* Rate-limited: a peer sending many fake streams must not flood the log. */
            static pw_log_limiter lim = PW_LOG_LIMITER_INIT(5000);
            PW_LOG_LIMITED(&lim, PW_LOG_ERROR, "dedup index full; batch left for the producer to re-send",
                           PW_UINT("streams", pw_dedup_streams(s->dedup)));
            return;
        }
    }
    double now = pw_wall_seconds();
    double newest_ts = 0;
    while (pw_batch_read_next(&r, &item) == 1) {
        if (st && !pw_dedup_mark(st, item.seq)) {
            pw_counter_inc(s->duplicates);
            add_ack(s, st, item.seq); /* the earlier ack may have been lost */
            continue;
        }
        sink_file *f = item.flags == PW_ITEM_DEAD ? &s->dead : &s->out;
        pw_buf_append(&f->buf, item.bytes, item.len);
        pw_buf_append_char(&f->buf, '\n');
        if (item.flags == PW_ITEM_DEAD) {
            pw_counter_inc(s->dead_lettered);
        } else {
            pw_counter_inc(s->st.processed);
            pw_buf_append(&s->written_ts, &item.ts, sizeof item.ts);
        }
        if (item.ts > newest_ts)
            newest_ts = item.ts;
        if (st)
            add_ack(s, st, item.seq);
    }
    if (newest_ts > 0)
        pw_gauge_set(s->st.lag, now - newest_ts);
    double inside = (double)(pw_now_ns() - received_ns) / 1e9;
    for (uint32_t i = 0; i < r.count; i++)
        pw_histogram_observe(s->st.duration, inside);
}

static void *syncer_main(void *arg)
{
    sink *s = arg;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (!s->sync_requested && !s->syncer_exit)
            pthread_cond_wait(&s->wake, &s->lock);
        if (s->syncer_exit)
            break;
        bool out = s->sync_out, dead = s->sync_dead;
        s->sync_requested = false;
        pthread_mutex_unlock(&s->lock);
        int rc = PW_OK;
        if (out && fdatasync(s->out.fd) != 0)
            rc = errno;
        if (dead && rc == PW_OK && fdatasync(s->dead.fd) != 0)
            rc = errno;
        pthread_mutex_lock(&s->lock);
        s->sync_result = rc;
        uint64_t one = 1;
        while (write(s->done_fd, &one, sizeof one) < 0 && errno == EINTR) {
        }
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* Hands the syncer everything written so far; the acks pending now are
 * sent when it reports back. */
static void request_sync(sink *s, uint64_t now)
{
    pthread_mutex_lock(&s->lock);
    s->sync_out = s->out.dirty;
    s->sync_dead = s->dead.dirty;
    s->sync_requested = true;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    s->out.dirty = s->dead.dirty = false;
    s->acks_in_sync = s->nacks;
    s->syncing = true;
    s->next_sync_ns = now + s->fsync_interval_ms * 1000000u;
}

/* Sends the acks [0, n) and keeps the rest for later. */
static void send_acks_upto(sink *s, size_t n)
{
    size_t total = s->nacks;
    s->nacks = n;
    send_acks(s);
    memmove(s->acks, s->acks + n, (total - n) * sizeof *s->acks);
    s->nacks = total - n;
}

/* The syncer reported: acks covered by its sync may go. */
static int sync_done(sink *s)
{
    uint64_t v;
    if (read(s->done_fd, &v, sizeof v) < 0)
        return PW_OK; /* spurious wake-up */
    pthread_mutex_lock(&s->lock);
    int rc = s->sync_result;
    pthread_mutex_unlock(&s->lock);
    s->syncing = false;
    if (rc != PW_OK) {
        PW_LOG(PW_LOG_ERROR, "cannot fdatasync", PW_STR("file", s->out.path), PW_STR("error", strerror(rc)));
        return PW_EIO;
    }
    send_acks_upto(s, s->acks_in_sync);
    s->acks_in_sync = 0;
    return PW_OK;
}

/* Writes the buffers and records end-to-end latency at write time, then
 * acknowledges per policy: never -> at once; always/batch -> after a sync
 * (always: one is requested whenever the syncer is free). */
static int flush(sink *s, uint64_t now)
{
    if (!pw_buf_ok(&s->out.buf) || !pw_buf_ok(&s->dead.buf) || !pw_buf_ok(&s->written_ts)) {
        PW_LOG(PW_LOG_ERROR, "out of memory buffering records", PW_STR("reason", "memory"));
        return PW_ENOMEM;
    }
    /* Dead letters first: whoever sees a line in the output file can rely on
     * every dead letter processed before it being complete on disk. */
    if (write_all(&s->dead) != PW_OK || write_all(&s->out) != PW_OK)
        return PW_EIO;
    if (s->written_ts.len) {
        double wall = pw_wall_seconds();
        const double *ts = (const double *)(void *)s->written_ts.data;
        size_t n = s->written_ts.len / sizeof *ts;
        for (size_t i = 0; i < n; i++) {
            double ts_i;
            memcpy(&ts_i, ts + i, sizeof ts_i);
            pw_histogram_observe(s->e2e, wall - ts_i);
        }
        pw_buf_reset(&s->written_ts);
    }
    if (s->fsync == FSYNC_NEVER) {
        send_acks(s);
        return PW_OK;
    }
    bool unsynced = s->nacks > s->acks_in_sync;
    if (unsynced && !s->syncing && (s->fsync == FSYNC_ALWAYS || now >= s->next_sync_ns))
        request_sync(s, now);
    return PW_OK;
}

/* Waits until the syncer has answered the running request (if any). */
static int wait_for_syncer(sink *s)
{
    int rc = PW_OK;
    zmq_pollitem_t item = { NULL, s->done_fd, ZMQ_POLLIN, 0 };
    while (s->syncing && rc == PW_OK) {
        zmq_poll(&item, 1, 1000);
        rc = sync_done(s);
    }
    return rc;
}

/* Clean shutdown: wait for a running sync, then sync and ack the rest. */
static int final_sync(sink *s)
{
    int rc = wait_for_syncer(s);
    if (rc == PW_OK && s->fsync != FSYNC_NEVER && (s->out.dirty || s->dead.dirty || s->nacks)) {
        request_sync(s, pw_now_ns());
        rc = wait_for_syncer(s);
    }
    if (rc == PW_OK)
        send_acks(s); /* --fsync never: what is left */
    return rc;
}

static int syncer_start(sink *s)
{
    s->done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->done_fd < 0 || pthread_mutex_init(&s->lock, NULL) != 0 || pthread_cond_init(&s->wake, NULL) != 0 ||
        pthread_create(&s->syncer, NULL, syncer_main, s) != 0) {
        PW_LOG(PW_LOG_ERROR, "cannot start the syncer thread", PW_STR("error", strerror(errno)));
        return PW_ERR;
    }
    return PW_OK;
}

static void syncer_stop(sink *s)
{
    pthread_mutex_lock(&s->lock);
    s->syncer_exit = true;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->syncer, NULL);
    close(s->done_fd);
}

static int run(sink *s)
{
    zmq_msg_t m;
    zmq_msg_init(&m);
    int rc = PW_OK;
    s->next_sync_ns = pw_now_ns();
    while (rc == PW_OK) {
        bool stopping = !pw_stage_running();
        long timeout = 200;
        if (s->fsync == FSYNC_BATCH && s->nacks > s->acks_in_sync && !s->syncing) {
            uint64_t now = pw_now_ns();
            timeout = now >= s->next_sync_ns ? 0 : (long)((s->next_sync_ns - now) / 1000000u) + 1;
        }
        zmq_pollitem_t items[] = {
            { s->pull, 0, ZMQ_POLLIN, 0 },
            { s->pub, 0, ZMQ_POLLIN, 0 },
            { NULL, s->done_fd, ZMQ_POLLIN, 0 },
        };
        if (!stopping)
            zmq_poll(items, 3, timeout);
        answer_subscriptions(s);
        if (s->syncing && (rc = sync_done(s)) != PW_OK)
            break;
        /* Take everything ZeroMQ has ready, up to a chunk, then write once. */
        size_t taken = 0;
        while (s->out.buf.len + s->dead.buf.len < SINK_WRITE_CHUNK &&
               zmq_msg_recv(&m, s->pull, ZMQ_DONTWAIT) >= 0) {
            process_message(s, zmq_msg_data(&m), zmq_msg_size(&m), pw_now_ns());
            taken++;
        }
        uint64_t now = pw_now_ns();
        rc = flush(s, now);
        /* dedup_overflows > 0 means a producer's --max-in-flight exceeds
         * --dedup-window: duplicates may then slip through. */
        pw_field extra[] = { PW_UINT("dead_lettered", pw_counter_get(s->dead_lettered)),
                             PW_UINT("duplicates", pw_counter_get(s->duplicates)),
                             PW_UINT("dedup_overflows", pw_dedup_overflows(s->dedup)),
                             PW_UINT("dedup_evictions", pw_dedup_evictions(s->dedup)) };
        pw_stage_stats(&s->st, now, extra, PW_ARRAY_LEN(extra));
        if (stopping && taken == 0)
            break; /* drained: nothing more was waiting */
    }
    if (rc == PW_OK)
        rc = final_sync(s);
    zmq_msg_close(&m);
    return rc == PW_OK ? PW_EXIT_OK : PW_EXIT_FAILURE;
}

int main(int argc, char **argv)
{
    static sink s = {
        .bind = "tcp://127.0.0.1:5558",
        .ack = "tcp://127.0.0.1:5559",
        .fsync = FSYNC_BATCH,
        .fsync_interval_ms = 20,
        .dedup_window = 1u << 18,
        .out = { .path = "pipewatch-out.ndjson", .fd = -1, .buf = PW_BUF_INIT },
        .dead = { .path = "pipewatch-dead-letter.ndjson", .fd = -1, .buf = PW_BUF_INIT },
        .ackmsg = PW_BUF_INIT,
        .written_ts = PW_BUF_INIT,
        .done_fd = -1,
    };
    const pw_option opts[] = {
        { .name = "bind", .type = PW_OPT_STRING, .dest = &s.bind, .metavar = "EP",
          .help = "endpoint the workers push results to (default tcp://127.0.0.1:5558)",
          .check = pw_endpoints_check },
        { .name = "ack", .type = PW_OPT_STRING, .dest = &s.ack, .metavar = "EP",
          .help = "endpoint acks are published on, for the producers (default tcp://127.0.0.1:5559)",
          .check = pw_endpoints_check },
        { .name = "out", .type = PW_OPT_STRING, .dest = &s.out.path, .metavar = "FILE",
          .help = "NDJSON file good records are appended to (default pipewatch-out.ndjson)" },
        { .name = "dead-letter", .type = PW_OPT_STRING, .dest = &s.dead.path, .metavar = "FILE",
          .help = "NDJSON file dead letters are appended to (default pipewatch-dead-letter.ndjson)" },
        { .name = "fsync", .type = PW_OPT_CHOICE, .dest = &s.fsync, .metavar = "always|batch|never",
          .help = "always: fdatasync before every ack; batch: every --fsync-interval; never: leave it "
                  "to the kernel (default batch)", .choices = fsync_names },
        { .name = "fsync-interval", .type = PW_OPT_U64, .dest = &s.fsync_interval_ms, .metavar = "MS",
          .help = "with --fsync batch, how often to sync and ack (default 20)", .min = 1, .max = 60000 },
        { .name = "dedup-window", .type = PW_OPT_U64, .dest = &s.dedup_window, .metavar = "N",
          .help = "seqs remembered above each stream's contiguous mark; must be >= the producers' "
                  "--max-in-flight (default 262144, 32 KiB per stream)", .min = 64, .max = 1u << 30 },
        PW_SECURITY_OPTIONS(s.security),
    };
    int rc = pw_options_parse(argc, argv, "sink", "sink: write records and dead letters exactly once, then acknowledge them",
                              opts, PW_ARRAY_LEN(opts), &s.st.opts);
    if (rc != PW_OPTIONS_CONTINUE)
        return rc == PW_OPTIONS_EXIT_OK ? PW_EXIT_OK : PW_EXIT_USAGE;
    if (pw_stage_init(&s.st) != PW_OK)
        return PW_EXIT_FAILURE;
    s.dead_lettered = pw_counter_register(s.st.registry, "pipeline_records_dead_lettered_total",
                                          "Records appended to the dead-letter file.");
    s.duplicates = pw_counter_register(s.st.registry, "pipeline_records_duplicate_total",
                                       "Records received again after they were written; discarded.");
    s.e2e = pw_histogram_register(s.st.registry, "pipeline_end_to_end_latency_seconds",
                                  "Write time minus event time of records written to the output file.",
                                  pw_buckets_latency, pw_buckets_latency_len);
    s.dedup = pw_dedup_new(s.dedup_window, SINK_MAX_STREAMS);
    int exit_code = PW_EXIT_FAILURE;
    if (!s.dead_lettered || !s.duplicates || !s.e2e || !s.dedup) {
        PW_LOG(PW_LOG_ERROR, "out of memory", PW_UINT("dedup_window", s.dedup_window));
        goto done;
    }
    if (open_file(&s.out) != PW_OK || open_file(&s.dead) != PW_OK)
        goto done;
    uint64_t lines = 0, t0 = pw_now_ns();
    if (recover_file(&s, &s.out, &lines) != PW_OK || recover_file(&s, &s.dead, &lines) != PW_OK) {
        PW_LOG(PW_LOG_ERROR, "cannot recover written records", PW_STR("file", s.out.path));
        goto done;
    }
    PW_LOG(PW_LOG_INFO, "recovered written records", PW_UINT("lines", lines),
           PW_UINT("streams", pw_dedup_streams(s.dedup)),
           PW_DBL("seconds", (double)(pw_now_ns() - t0) / 1e9));
    s.ctx = pw_transport_context();
    if (!s.ctx)
        goto done;
    pw_socket_opts in_opts = { .rcvhwm = 4, .maxmsgsize = SINK_MAXMSGSIZE, .linger_ms = 0,
                               .heartbeat_ms = 1000, .security = &s.security };
    /* The ack socket receives only subscriptions (a producer name): 4 KiB. */
    pw_socket_opts ack_opts = { .sndhwm = 1000, .maxmsgsize = 4096, .linger_ms = 1000,
                                .security = &s.security };
    s.pull = pw_socket_open(s.ctx, ZMQ_PULL, s.bind, true, &in_opts);
    s.pub = s.pull ? pw_socket_open(s.ctx, ZMQ_XPUB, s.ack, true, &ack_opts) : NULL;
    if (s.pub) {
        int verbose = 1; /* hear every subscription, also a re-subscribing producer's */
        zmq_setsockopt(s.pub, ZMQ_XPUB_VERBOSE, &verbose, sizeof verbose);
    }
    if (s.pub && syncer_start(&s) == PW_OK && pw_stage_start(&s.st) == PW_OK) {
        PW_LOG(PW_LOG_INFO, "sinking", PW_STR("bind", s.bind), PW_STR("ack", s.ack),
               PW_STR("out", s.out.path), PW_STR("dead_letter", s.dead.path),
               PW_STR("fsync", fsync_names[s.fsync]));
        exit_code = run(&s);
    }
    if (s.done_fd > 0)
        syncer_stop(&s);
done:
    pw_socket_close(s.pull);
    pw_socket_close(s.pub);
    pw_transport_close(s.ctx);
    if (s.out.fd >= 0)
        close(s.out.fd);
    if (s.dead.fd >= 0)
        close(s.dead.fd);
    pw_buf_free(&s.out.buf);
    pw_buf_free(&s.dead.buf);
    pw_buf_free(&s.ackmsg);
    pw_buf_free(&s.written_ts);
    free(s.acks);
    pw_dedup_free(s.dedup);
    return pw_stage_finish(&s.st, exit_code);
}

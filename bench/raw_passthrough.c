/*
 * raw_passthrough: the transport ceiling for `./pipeline bench` (figure 1).
 *
 * The pipewatch topology with nothing but ZeroMQ and a file in it:
 *
 *   raw_passthrough producer --bind EP1 --done EP3 --count N
 *   raw_passthrough worker   --in EP1 --out EP2
 *   raw_passthrough sink     --bind EP2 --done EP3 --count N --out FILE
 *
 * The producer sends the very bytes the real producer sends (one batch of
 * --batch records made once with pw_record_generate and re-sent), the
 * workers forward each message unchanged, the sink splits batches into
 * lines, appends them to a file with one write(2) per MiB or whenever the
 * socket runs dry, and fdatasyncs every 20 ms like `sink --fsync batch`.
 * No parsing, no metrics, no acks: the sink tells the producer once it has
 * written N records, and the producer prints its own measurement,
 * first send to "done", as one JSON line on stdout.
 *
 * Socket options (high-water marks, linger) are the real stages' so that
 * the ratio to this ceiling measures pipewatch's own work.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "buf.h"
#include "pw.h"
#include "record.h"
#include "wire.h"

typedef struct args {
    const char *mode, *bind, *in, *out, *done, *file;
    uint64_t count, batch, fsync_ms;
} args;

static int usage(void)
{
    fprintf(stderr,
            "usage: raw_passthrough producer --bind EP --done EP --count N [--batch N]\n"
            "       raw_passthrough worker --in EP --out EP\n"
            "       raw_passthrough sink --bind EP --done EP --count N --out FILE [--fsync-ms N]\n");
    return 2;
}

static int parse(int argc, char **argv, args *a)
{
    if (argc < 2)
        return -1;
    a->mode = argv[1];
    for (int i = 2; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--bind")) a->bind = v;
        else if (!strcmp(k, "--in")) a->in = v;
        else if (!strcmp(k, "--out") && !strcmp(a->mode, "sink")) a->file = v;
        else if (!strcmp(k, "--out")) a->out = v;
        else if (!strcmp(k, "--done")) a->done = v;
        else if (!strcmp(k, "--count")) a->count = strtoull(v, NULL, 10);
        else if (!strcmp(k, "--batch")) a->batch = strtoull(v, NULL, 10);
        else if (!strcmp(k, "--fsync-ms")) a->fsync_ms = strtoull(v, NULL, 10);
        else return -1;
    }
    if ((argc - 2) % 2)
        return -1;
    return 0;
}

static void *open_socket(void *ctx, int type, const char *ep, int bind, int sndhwm, int rcvhwm,
                         int linger)
{
    void *s = zmq_socket(ctx, type);
    if (sndhwm)
        zmq_setsockopt(s, ZMQ_SNDHWM, &sndhwm, sizeof sndhwm);
    if (rcvhwm)
        zmq_setsockopt(s, ZMQ_RCVHWM, &rcvhwm, sizeof rcvhwm);
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    int rc = bind ? zmq_bind(s, ep) : zmq_connect(s, ep);
    if (rc != 0) {
        fprintf(stderr, "raw_passthrough: %s %s: %s\n", bind ? "bind" : "connect", ep, zmq_strerror(errno));
        exit(1);
    }
    return s;
}

static int run_producer(void *ctx, const args *a)
{
    if (!a->bind || !a->done || !a->count)
        return usage();
    void *out = open_socket(ctx, ZMQ_PUSH, a->bind, 1, 64, 0, 2000);
    void *done = open_socket(ctx, ZMQ_PULL, a->done, 1, 0, 0, 0);
    uint64_t batch = a->batch ? a->batch : 256; /* the producer's --batch default */
    pw_buf msg = PW_BUF_INIT, rec = PW_BUF_INIT;
    pw_batch_writer w;
    double ts = pw_wall_seconds();
    pw_batch_begin(&w, &msg, "p1", 2, 1);
    for (uint64_t seq = 0; seq < batch; seq++) {
        pw_buf_reset(&rec);
        pw_record_generate(&rec, "p1", seq, ts, PW_FAULT_NONE);
        pw_batch_add(&w, seq, PW_ITEM_RECORD, ts, rec.data, rec.len);
    }
    /* The sink says "ready" once it is up; workers are started before it. */
    char word[16];
    if (zmq_recv(done, word, sizeof word, 0) < 0)
        return 1;
    uint64_t t0 = pw_now_ns();
    uint64_t sent = 0;
    while (sent < a->count) {
        uint64_t n = a->count - sent < batch ? a->count - sent : batch;
        if (n < batch) { /* last, shorter batch */
            pw_batch_begin(&w, &msg, "p1", 2, 1);
            for (uint64_t seq = 0; seq < n; seq++) {
                pw_buf_reset(&rec);
                pw_record_generate(&rec, "p1", seq, ts, PW_FAULT_NONE);
                pw_batch_add(&w, seq, PW_ITEM_RECORD, ts, rec.data, rec.len);
            }
        }
        if (zmq_send(out, msg.data, msg.len, 0) < 0) {
            if (errno == EINTR)
                continue;
            return 1;
        }
        sent += n;
    }
    if (zmq_recv(done, word, sizeof word, 0) < 0)
        return 1;
    double secs = (double)(pw_now_ns() - t0) / 1e9;
    printf("{\"records\":%" PRIu64 ",\"seconds\":%.6f,\"records_per_s\":%.1f}\n", a->count, secs,
           (double)a->count / secs);
    fflush(stdout);
    zmq_close(out);
    zmq_close(done);
    pw_buf_free(&msg);
    pw_buf_free(&rec);
    return 0;
}

static int run_worker(void *ctx, const args *a)
{
    if (!a->in || !a->out)
        return usage();
    void *in = open_socket(ctx, ZMQ_PULL, a->in, 0, 0, 32, 0);
    void *out = open_socket(ctx, ZMQ_PUSH, a->out, 0, 64, 0, 5000);
    zmq_msg_t m;
    zmq_msg_init(&m);
    for (;;) {
        if (zmq_msg_recv(&m, in, 0) < 0) {
            if (errno == EINTR)
                continue;
            break; /* context terminated or killed */
        }
        while (zmq_msg_send(&m, out, 0) < 0 && errno == EINTR) {
        }
    }
    zmq_msg_close(&m);
    return 0;
}

static void write_all(int fd, pw_buf *b)
{
    size_t off = 0;
    while (off < b->len) {
        ssize_t n = write(fd, b->data + off, b->len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            perror("raw_passthrough: write");
            exit(1);
        }
        off += (size_t)n;
    }
    pw_buf_reset(b);
}

static int run_sink(void *ctx, const args *a)
{
    if (!a->bind || !a->done || !a->count || !a->file)
        return usage();
    int fd = open(a->file, O_WRONLY | O_CREAT | O_APPEND | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) {
        perror("raw_passthrough: open");
        return 1;
    }
    void *in = open_socket(ctx, ZMQ_PULL, a->bind, 1, 0, 256, 0);
    void *done = open_socket(ctx, ZMQ_PUSH, a->done, 0, 0, 0, 2000);
    zmq_send(done, "ready", 5, 0);
    uint64_t fsync_ns = (a->fsync_ms ? a->fsync_ms : 20) * 1000000u;
    uint64_t next_sync = pw_now_ns() + fsync_ns, got = 0;
    pw_buf lines = PW_BUF_INIT;
    pw_buf_reserve(&lines, 2u << 20);
    zmq_msg_t m;
    zmq_msg_init(&m);
    while (got < a->count) {
        int flags = lines.len ? ZMQ_DONTWAIT : 0;
        if (zmq_msg_recv(&m, in, flags) < 0) {
            if (errno == EAGAIN) {
                write_all(fd, &lines);
                continue;
            }
            if (errno == EINTR)
                continue;
            return 1;
        }
        pw_batch_reader r;
        pw_batch_item item;
        if (pw_batch_read_begin(&r, zmq_msg_data(&m), zmq_msg_size(&m)) != PW_OK)
            continue;
        while (pw_batch_read_next(&r, &item) == 1) {
            pw_buf_append(&lines, item.bytes, item.len);
            pw_buf_append_char(&lines, '\n');
            got++;
        }
        if (lines.len >= (1u << 20))
            write_all(fd, &lines);
        uint64_t now = pw_now_ns();
        if (now >= next_sync) {
            write_all(fd, &lines);
            fdatasync(fd);
            next_sync = now + fsync_ns;
        }
    }
    write_all(fd, &lines);
    fdatasync(fd);
    zmq_send(done, "done", 4, 0);
    zmq_msg_close(&m);
    zmq_close(in);
    zmq_close(done);
    close(fd);
    pw_buf_free(&lines);
    return 0;
}

int main(int argc, char **argv)
{
    args a = { 0 };
    if (parse(argc, argv, &a) != 0)
        return usage();
    void *ctx = zmq_ctx_new();
    int rc;
    if (!strcmp(a.mode, "producer"))
        rc = run_producer(ctx, &a);
    else if (!strcmp(a.mode, "worker"))
        rc = run_worker(ctx, &a);
    else if (!strcmp(a.mode, "sink"))
        rc = run_sink(ctx, &a);
    else
        rc = usage();
    zmq_ctx_term(ctx);
    return rc;
}

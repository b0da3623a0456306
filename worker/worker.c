/*
 * worker: validates and transforms records (SPEC "Topology and wire").
 *
 * Pulls batches from every --in endpoint (fair-queued by one PULL socket),
 * turns each record into either an output line or a dead-letter line, and
 * pushes the results as one batch to the sink.  Nothing is dropped here: a
 * record that fails any check travels on as a dead letter with its reason
 * and its raw bytes, and its envelope (producer, run, seq) so the sink can
 * deduplicate and acknowledge it like any other record.
 *
 * A message of any size or content is safe: ZMQ_MAXMSGSIZE caps what
 * ZeroMQ will buffer, batch framing is bounds-checked, and a message that
 * is not a well-formed batch is handled as one bare record (SPEC: one
 * message may carry one record) and, if it is not a valid one either,
 * dead-lettered.  Per record nothing is allocated by us: the result batch
 * is built in a reused buffer; only json-c allocates its parse tree.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "buf.h"
#include "log.h"
#include "metrics.h"
#include "options.h"
#include "pw.h"
#include "record.h"
#include "stage.h"
#include "transport.h"
#include "wire.h"

/* Largest message a worker accepts: a full batch of oversize records
 * (100 x 70 KB) fits many times over, and a hostile 10 MiB message is
 * received and counted rather than disconnected. */
#define WORKER_MAXMSGSIZE (16 * 1024 * 1024)

typedef struct worker {
    pw_stage st;
    const char *in, *out;
    uint64_t delay_ms;
    pw_security security;
    void *ctx, *pull, *push;
    pw_record_parser *parser;
    pw_buf result;
} worker;

static void delay(uint64_t ms)
{
    struct timespec t = { .tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L };
    while (nanosleep(&t, &t) != 0 && errno == EINTR && pw_stage_running()) {
    }
}

static void dead_letter(worker *w, pw_batch_writer *bw, const char *producer, uint64_t run,
                        uint64_t seq, double ts, pw_record_error err, const char *detail,
                        const char *bytes, size_t len, double wall_now)
{
    size_t start = pw_batch_item_start(bw, seq, PW_ITEM_DEAD, ts);
    pw_record_dead_letter(bw->buf, err, detail, producer, run, seq, w->st.opts.instance, wall_now,
                          bytes, len);
    pw_batch_item_end(bw, start);
    pw_counter_vec_inc(w->st.errors, pw_reason_of(err));
    static pw_log_limiter lim = PW_LOG_LIMITER_INIT(5000);
    PW_LOG_LIMITED(&lim, PW_LOG_WARN, "record dead-lettered", PW_STR("reason", pw_record_error_reason(err)),
                   PW_STR("detail", detail), PW_STR("producer", producer), PW_UINT("seq", seq));
}

/* Turns one parsed record (err is pw_record_parse's verdict) into an output
 * or dead-letter item of the result batch.  t0 is when the record's
 * processing began (the previous record's end: one clock read per record);
 * returns when it ended. */
static uint64_t finish_record(worker *w, pw_batch_writer *bw, const char *producer, uint64_t run,
                              uint64_t seq, double ts, const char *bytes, size_t len,
                              pw_record_error err, const pw_record *rec, const char *detail,
                              uint64_t t0, double wall_now)
{
    if (w->delay_ms) {
        delay(w->delay_ms);
        wall_now = pw_wall_seconds();
    }
    if (err == PW_REC_OK) {
        size_t start = pw_batch_item_start(bw, seq, PW_ITEM_OUTPUT, rec->ts);
        err = pw_record_transform(rec, bytes, len, wall_now, w->st.opts.instance, run, bw->buf, &detail);
        if (err == PW_REC_OK) {
            pw_batch_item_end(bw, start);
            pw_counter_inc(w->st.processed);
            pw_gauge_set(w->st.lag, wall_now - rec->ts);
            PW_LOG(PW_LOG_DEBUG, "record processed", PW_STR("id", rec->id), PW_STR("trace_id", rec->trace_id));
        } else {
            pw_batch_item_cancel(bw, start);
        }
    }
    if (err != PW_REC_OK)
        dead_letter(w, bw, producer, run, seq, ts, err, detail, bytes, len, wall_now);
    uint64_t t1 = pw_now_ns();
    pw_histogram_observe(w->st.duration, (double)(t1 - t0) / 1e9);
    return t1;
}

static void process_message(worker *w, const char *msg, size_t len)
{
    pw_batch_writer bw;
    pw_record rec;
    const char *detail = NULL;
    /* processed_at is read once per message: the records of a batch are
     * processed within microseconds of each other. */
    double wall_now = pw_wall_seconds();
    uint64_t t = pw_now_ns();
    if (pw_batch_valid(msg, len)) {
        pw_batch_reader r;
        pw_batch_item item;
        pw_batch_read_begin(&r, msg, len);
        char producer[PW_WIRE_PRODUCER_MAX + 1];
        memcpy(producer, r.producer, r.producer_len);
        producer[r.producer_len] = '\0';
        pw_batch_begin(&bw, &w->result, r.producer, r.producer_len, r.run);
        while (pw_batch_read_next(&r, &item) == 1) {
            pw_record_error err = pw_record_parse(w->parser, item.bytes, item.len, &rec, &detail);
            t = finish_record(w, &bw, producer, r.run, item.seq, item.ts, item.bytes, item.len, err, &rec,
                              detail, t, wall_now);
        }
    } else {
        /* A bare record: its identity, if it has one, comes from its own
         * fields (run 0); an invalid one has none and is not deduplicated. */
        pw_record_error err = pw_record_parse(w->parser, msg, len, &rec, &detail);
        char producer[PW_WIRE_PRODUCER_MAX + 1] = "";
        size_t n = 0;
        if (err == PW_REC_OK) {
            n = strlen(rec.producer); /* at most 64 bytes: validated */
            memcpy(producer, rec.producer, n + 1);
        }
        pw_batch_begin(&bw, &w->result, producer, n, 0);
        finish_record(w, &bw, n ? producer : NULL, 0, err == PW_REC_OK ? rec.seq : 0,
                      err == PW_REC_OK ? rec.ts : 0, msg, len, err, &rec, detail, t, wall_now);
    }
    if (!pw_buf_ok(&w->result)) {
        PW_LOG(PW_LOG_ERROR, "out of memory building a result batch; the producer will re-send",
               PW_UINT("bytes", len));
        return;
    }
    /* Blocking send: back-pressure from the sink slows us down, never drops.
     * On stop we keep trying until the drain gives up (second signal). */
    while (zmq_send(w->push, w->result.data, w->result.len, 0) < 0) {
        if (errno != EINTR || pw_stage_hurry()) {
            PW_LOG(PW_LOG_WARN, "result batch not sent; the producer will re-send",
                   PW_STR("error", zmq_strerror(errno)));
            return;
        }
    }
}

static int run(worker *w)
{
    zmq_msg_t m;
    zmq_msg_init(&m);
    while (pw_stage_running()) {
        zmq_pollitem_t item = { w->pull, 0, ZMQ_POLLIN, 0 };
        int n = zmq_poll(&item, 1, 200);
        uint64_t now = pw_now_ns();
        pw_stage_stats(&w->st, now, NULL, 0);
        if (n <= 0)
            continue;
        while (zmq_msg_recv(&m, w->pull, ZMQ_DONTWAIT) >= 0) {
            process_message(w, zmq_msg_data(&m), zmq_msg_size(&m));
            if (!pw_stage_running())
                break;
        }
    }
    /* Drain: what ZeroMQ already delivered to this process is processed and
     * forwarded; anything else is re-sent by the producer after its timeout. */
    size_t drained = 0;
    while (!pw_stage_hurry() && zmq_msg_recv(&m, w->pull, ZMQ_DONTWAIT) >= 0) {
        process_message(w, zmq_msg_data(&m), zmq_msg_size(&m));
        drained++;
    }
    zmq_msg_close(&m);
    PW_LOG(PW_LOG_INFO, "drained", PW_UINT("messages", drained));
    return PW_EXIT_OK;
}

int main(int argc, char **argv)
{
    static worker w = {
        .in = "tcp://127.0.0.1:5557",
        .out = "tcp://127.0.0.1:5558",
        .result = PW_BUF_INIT,
    };
    const pw_option opts[] = {
        { .name = "in", .type = PW_OPT_STRING, .dest = &w.in, .metavar = "EP[,EP...]",
          .help = "producer endpoints to pull records from (default tcp://127.0.0.1:5557)",
          .check = pw_endpoints_check },
        { .name = "out", .type = PW_OPT_STRING, .dest = &w.out, .metavar = "EP",
          .help = "sink endpoint to push results to (default tcp://127.0.0.1:5558)",
          .check = pw_endpoints_check },
        { .name = "delay-ms", .type = PW_OPT_U64, .dest = &w.delay_ms, .metavar = "N",
          .help = "artificial processing time per record, to create lag (default 0)",
          .min = 0, .max = 600000 },
        PW_SECURITY_OPTIONS(w.security),
    };
    int rc = pw_options_parse(argc, argv, "worker",
                              "worker: validate and transform records; dead-letter the bad ones",
                              opts, PW_ARRAY_LEN(opts), &w.st.opts);
    if (rc != PW_OPTIONS_CONTINUE)
        return rc == PW_OPTIONS_EXIT_OK ? PW_EXIT_OK : PW_EXIT_USAGE;
    if (pw_stage_init(&w.st) != PW_OK)
        return PW_EXIT_FAILURE;
    int exit_code = PW_EXIT_FAILURE;
    w.parser = pw_record_parser_new();
    w.ctx = w.parser ? pw_transport_context() : NULL;
    if (w.ctx) {
        pw_socket_opts in_opts = { .rcvhwm = 4, .maxmsgsize = WORKER_MAXMSGSIZE, .linger_ms = 0,
                                   .security = &w.security };
        pw_socket_opts out_opts = { .sndhwm = 8, .maxmsgsize = -1, .linger_ms = 5000,
                                    .security = &w.security };
        w.pull = pw_socket_open(w.ctx, ZMQ_PULL, w.in, false, &in_opts);
        w.push = w.pull ? pw_socket_open(w.ctx, ZMQ_PUSH, w.out, false, &out_opts) : NULL;
        if (w.push && pw_stage_start(&w.st) == PW_OK) {
            PW_LOG(PW_LOG_INFO, "working", PW_STR("in", w.in), PW_STR("out", w.out),
                   PW_UINT("delay_ms", w.delay_ms));
            exit_code = run(&w);
        }
    }
    pw_socket_close(w.pull);
    pw_socket_close(w.push);
    pw_transport_close(w.ctx);
    pw_record_parser_free(w.parser);
    pw_buf_free(&w.result);
    return pw_stage_finish(&w.st, exit_code);
}

/*
 * worker: validates and transforms records (docs/contract.md "Topology", "Records").
 *
 * Takes batches from every --in endpoint (one DEALER each, polled in turn),
 * turns each record into either an output line or a dead-letter line, and
 * pushes the results as one batch to the sink.  Nothing is dropped here: a
 * record that fails any check travels on as a dead letter with its reason
 * and its raw bytes, and its envelope (producer, run, seq) so the sink can
 * deduplicate and acknowledge it like any other record.
 *
 * A message of any size or content is safe: ZMQ_MAXMSGSIZE caps what
 * ZeroMQ will buffer, batch framing is bounds-checked, and a message that
 * is not a well-formed batch is handled as one bare record (contract: one
 * message may carry one record) and, if it is not a valid one either,
 * dead-lettered.  Per record nothing is allocated: the one-pass parser
 * (record_parse.c) builds no tree and the result batch is built in a
 * reused buffer.
 *
 * Input: one DEALER per --in endpoint; the worker asks each producer for
 * about 50 ms of work as it measures itself (credit, common/dispatch.h and
 * docs/design.md) and heartbeats every PW_WIRE_HEARTBEAT_MS, also while
 * it is busy, so the producer can tell slow from lost.
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

/* Work a worker asks each producer for: about this much time's worth of
 * records (measured), at least 1, at most --credit. */
#define WORKER_CREDIT_SECONDS 0.05
#define WORKER_INITIAL_CREDIT 16  /* until measured: a slow worker must not start with a long hold */
#define WORKER_MAX_SOURCES 16
#define WORKER_STOP_SEND_NS 5000000000ull

/* One producer endpoint: a DEALER socket and the credit asked of it. */
typedef struct source {
    void *sock;
    uint64_t asked;          /* records asked for and not yet received */
    uint64_t last_sent_ns;   /* last credit message (heartbeat when idle) */
} source;

typedef struct worker {
    pw_stage st;
    const char *in, *out;
    uint64_t delay_ms, max_credit;
    pw_security security;
    void *ctx, *push;
    source sources[WORKER_MAX_SOURCES];
    size_t nsources;
    double seconds_per_record;  /* moving average; 0 until measured */
    pw_record_parser *parser;
    pw_buf result, credit_msg;
    pw_gauge *credit;
} worker;

static uint64_t credit_target(const worker *w)
{
    if (w->seconds_per_record <= 0)
        return WORKER_INITIAL_CREDIT < w->max_credit ? WORKER_INITIAL_CREDIT : w->max_credit;
    double n = WORKER_CREDIT_SECONDS / w->seconds_per_record;
    return n < 1 ? 1 : n > (double)w->max_credit ? w->max_credit : (uint64_t)n;
}

static void send_credit(worker *w, source *s, uint64_t grant, uint64_t now)
{
    s->asked += grant;
    pw_credit_write(&w->credit_msg, (uint32_t)grant, (uint32_t)s->asked);
    if (zmq_send(s->sock, w->credit_msg.data, w->credit_msg.len, ZMQ_DONTWAIT) < 0) {
        s->asked -= grant; /* not connected yet: asked again at the next heartbeat */
        return;
    }
    s->last_sent_ns = now;
}

/* Asks for more when what is asked for fell a quarter below the target. */
static void replenish(worker *w, source *s, uint64_t now)
{
    uint64_t target = credit_target(w);
    if (s->asked < target && target - s->asked >= (target + 3) / 4)
        send_credit(w, s, target - s->asked, now);
}

/* Heartbeats: every source hears from us at least every PW_WIRE_HEARTBEAT_MS,
 * also while a long batch is processed, so the producer can tell a slow
 * worker from a lost one; and credit that could not be sent is asked again. */
static void tick(worker *w, uint64_t now)
{
    double asked = 0;
    for (size_t i = 0; i < w->nsources; i++) {
        source *s = &w->sources[i];
        if (now - s->last_sent_ns >= PW_WIRE_HEARTBEAT_MS * 1000000ull) {
            replenish(w, s, now);
            if (now - s->last_sent_ns >= PW_WIRE_HEARTBEAT_MS * 1000000ull)
                send_credit(w, s, 0, now);
        }
        asked += (double)s->asked;
    }
    pw_gauge_set(w->credit, asked);
}

static void delay(worker *w, uint64_t ms)
{
    uint64_t end = pw_now_ns() + ms * 1000000u;
    for (;;) {
        uint64_t now = pw_now_ns();
        if (now >= end || !pw_stage_running())
            return;
        uint64_t left = end - now, slice = left < 100000000u ? left : 100000000u;
        struct timespec t = { .tv_sec = 0, .tv_nsec = (long)slice };
        nanosleep(&t, NULL);
        tick(w, pw_now_ns());
    }
}

/* Sends the result batch, blocking while the sink applies back-pressure
 * (never dropping) but heartbeating meanwhile.  On stop we keep trying for
 * WORKER_STOP_SEND_NS, or until a second signal: what is not sent then is
 * re-sent by the producer. */
static void send_result(worker *w)
{
    if (!pw_buf_ok(&w->result)) {
        PW_LOG(PW_LOG_ERROR, "out of memory building a result batch; the producer will re-send",
               PW_UINT("bytes", w->result.len));
        return;
    }
    uint64_t give_up = 0;
    while (zmq_send(w->push, w->result.data, w->result.len, ZMQ_DONTWAIT) < 0) {
        uint64_t now = pw_now_ns();
        if (!pw_stage_running() && !give_up)
            give_up = now + WORKER_STOP_SEND_NS;
        if ((errno != EAGAIN && errno != EINTR) || pw_stage_hurry() || (give_up && now >= give_up)) {
            PW_LOG(PW_LOG_WARN, "result batch not sent; the producer will re-send",
                   PW_STR("error", zmq_strerror(errno)));
            return;
        }
        zmq_pollitem_t item = { w->push, 0, ZMQ_POLLOUT, 0 };
        zmq_poll(&item, 1, 100);
        tick(w, pw_now_ns());
        pw_stage_stats(&w->st, pw_now_ns(), NULL, 0);
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
        delay(w, w->delay_ms);
        wall_now = pw_wall_seconds();
    }
    if (err == PW_REC_OK) {
        size_t start = pw_batch_item_start(bw, seq, PW_ITEM_OUTPUT, rec->ts);
        err = pw_record_transform(rec, bytes, len, wall_now, w->st.opts.instance, run, bw->buf, &detail);
        if (err == PW_REC_OK) {
            pw_batch_item_end(bw, start);
            pw_counter_inc(w->st.processed);
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

/* Processes one message; returns the records it carried. */
static uint32_t process_message(worker *w, const char *msg, size_t len)
{
    pw_batch_writer bw;
    pw_record rec;
    const char *detail = NULL;
    /* processed_at is read once per message: the records of a batch are
     * processed within microseconds of each other. */
    double wall_now = pw_wall_seconds();
    uint64_t t = pw_now_ns(), t_start = t;
    uint32_t records = 1;
    if (pw_batch_valid(msg, len)) {
        pw_batch_reader r;
        pw_batch_item item;
        pw_batch_read_begin(&r, msg, len);
        records = r.count;
        char producer[PW_WIRE_PRODUCER_MAX + 1];
        memcpy(producer, r.producer, r.producer_len);
        producer[r.producer_len] = '\0';
        pw_batch_begin(&bw, &w->result, r.producer, r.producer_len, r.run);
        bool first = true;
        while (pw_batch_read_next(&r, &item) == 1) {
            if (first) /* freshness: the oldest record held is this batch's first */
                pw_gauge_set(w->st.lag, item.ts > 0 ? item.ts : wall_now);
            first = false;
            pw_record_error err = pw_record_parse(w->parser, item.bytes, item.len, &rec, &detail);
            /* The sink deduplicates on the envelope and recovers identity from
             * the line: the two must name the same record. */
            if (err == PW_REC_OK && (rec.seq != item.seq || strcmp(rec.producer, producer) != 0)) {
                err = PW_REC_INVALID_VALUE;
                detail = "producer/seq differ from the batch envelope";
            }
            t = finish_record(w, &bw, producer, r.run, item.seq, item.ts, item.bytes, item.len, err, &rec,
                              detail, t, wall_now);
            if (w->result.len >= PW_WIRE_MAX_MESSAGE) { /* keep results within PW_WIRE_MAX_RESULT */
                send_result(w);
                pw_batch_begin(&bw, &w->result, r.producer, r.producer_len, r.run);
            }
        }
    } else {
        /* A bare record: its identity, if it has one, comes from its own
         * fields (run 0); an invalid one has none and is not deduplicated. */
        pw_gauge_set(w->st.lag, wall_now);
        pw_record_error err = pw_record_parse(w->parser, msg, len, &rec, &detail);
        char producer[PW_WIRE_PRODUCER_MAX + 1] = "";
        size_t n = 0;
        if (err == PW_REC_OK) {
            n = strlen(rec.producer); /* at most 64 bytes: validated */
            memcpy(producer, rec.producer, n + 1);
        }
        pw_batch_begin(&bw, &w->result, producer, n, 0);
        t = finish_record(w, &bw, n ? producer : NULL, 0, err == PW_REC_OK ? rec.seq : 0,
                          err == PW_REC_OK ? rec.ts : 0, msg, len, err, &rec, detail, t, wall_now);
    }
    if (bw.count > 0)
        send_result(w);
    pw_gauge_set(w->st.lag, 0); /* holding nothing */
    if (records > 0) {
        double per = (double)(t - t_start) / 1e9 / records;
        w->seconds_per_record = w->seconds_per_record > 0 ? 0.8 * w->seconds_per_record + 0.2 * per : per;
    }
    return records;
}

static int run(worker *w)
{
    zmq_msg_t m;
    zmq_msg_init(&m);
    uint64_t now = pw_now_ns();
    for (size_t i = 0; i < w->nsources; i++)
        send_credit(w, &w->sources[i], credit_target(w), now);
    zmq_pollitem_t items[WORKER_MAX_SOURCES];
    while (pw_stage_running()) {
        for (size_t i = 0; i < w->nsources; i++)
            items[i] = (zmq_pollitem_t){ w->sources[i].sock, 0, ZMQ_POLLIN, 0 };
        int n = zmq_poll(items, (int)w->nsources, PW_WIRE_HEARTBEAT_MS / 2);
        now = pw_now_ns();
        tick(w, now);
        pw_stage_stats(&w->st, now, NULL, 0);
        if (n <= 0)
            continue;
        for (size_t i = 0; i < w->nsources && pw_stage_running(); i++) {
            source *s = &w->sources[i];
            while (pw_stage_running() && zmq_msg_recv(&m, s->sock, ZMQ_DONTWAIT) >= 0) {
                uint32_t k = process_message(w, zmq_msg_data(&m), zmq_msg_size(&m));
                s->asked = s->asked > k ? s->asked - k : 0;
                now = pw_now_ns();
                replenish(w, s, now);
                tick(w, now);
            }
        }
    }
    /* Drain: what ZeroMQ already delivered to this process is processed and
     * forwarded; anything else is re-sent by the producer after its timeout. */
    size_t drained = 0;
    for (size_t i = 0; i < w->nsources; i++) {
        while (!pw_stage_hurry() && zmq_msg_recv(&m, w->sources[i].sock, ZMQ_DONTWAIT) >= 0) {
            process_message(w, zmq_msg_data(&m), zmq_msg_size(&m));
            drained++;
        }
    }
    zmq_msg_close(&m);
    PW_LOG(PW_LOG_INFO, "drained", PW_UINT("messages", drained));
    return PW_EXIT_OK;
}

/* One DEALER per producer endpoint: credit is asked of each separately. */
static int open_sources(worker *w)
{
    pw_socket_opts in_opts = { .sndhwm = 100, .rcvhwm = 100, .maxmsgsize = PW_WIRE_MAX_MESSAGE, .linger_ms = 0,
                               .heartbeat_ms = 1000, .security = &w->security };
    char list[4096];
    snprintf(list, sizeof list, "%s", w->in);
    char *save = NULL;
    for (char *ep = strtok_r(list, ",", &save); ep; ep = strtok_r(NULL, ",", &save)) {
        if (w->nsources == WORKER_MAX_SOURCES) {
            PW_LOG(PW_LOG_ERROR, "too many --in endpoints", PW_UINT("max", WORKER_MAX_SOURCES));
            return PW_EINVAL;
        }
        void *sock = pw_socket_open(w->ctx, ZMQ_DEALER, ep, false, &in_opts);
        if (!sock)
            return PW_ERR;
        w->sources[w->nsources++] = (source){ .sock = sock };
    }
    return PW_OK;
}

int main(int argc, char **argv)
{
    static worker w = {
        .in = "tcp://127.0.0.1:5557",
        .out = "tcp://127.0.0.1:5558",
        .max_credit = 1024,
        .result = PW_BUF_INIT,
        .credit_msg = PW_BUF_INIT,
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
        { .name = "credit", .type = PW_OPT_U64, .dest = &w.max_credit, .metavar = "N",
          .help = "most records asked of each producer at once; the worker asks for about 50 ms of "
                  "work as it measures itself (default 1024)", .min = 1, .max = 1000000 },
        PW_SECURITY_OPTIONS(w.security),
    };
    int rc = pw_options_parse(argc, argv, "worker",
                              "worker: validate and transform records; dead-letter the bad ones",
                              opts, PW_ARRAY_LEN(opts), &w.st.opts);
    if (rc != PW_OPTIONS_CONTINUE)
        return rc == PW_OPTIONS_EXIT_OK ? PW_EXIT_OK : PW_EXIT_USAGE;
    if (pw_stage_init(&w.st) != PW_OK)
        return PW_EXIT_FAILURE;
    w.credit = pw_gauge_register(w.st.registry, "pipeline_worker_credit",
                                 "Records this worker has asked its producers for and not yet received.");
    int exit_code = PW_EXIT_FAILURE;
    w.parser = w.credit ? pw_record_parser_new() : NULL;
    w.ctx = w.parser ? pw_transport_context() : NULL;
    if (w.ctx && open_sources(&w) == PW_OK) {
        pw_socket_opts out_opts = { .sndhwm = 8, .maxmsgsize = -1, .linger_ms = 5000,
                                    .security = &w.security };
        w.push = pw_socket_open(w.ctx, ZMQ_PUSH, w.out, false, &out_opts);
        if (w.push && pw_stage_start(&w.st) == PW_OK) {
            PW_LOG(PW_LOG_INFO, "working", PW_STR("in", w.in), PW_STR("out", w.out),
                   PW_UINT("delay_ms", w.delay_ms), PW_UINT("credit", w.max_credit));
            exit_code = run(&w);
        }
    }
    for (size_t i = 0; i < w.nsources; i++)
        pw_socket_close(w.sources[i].sock);
    pw_socket_close(w.push);
    pw_transport_close(w.ctx);
    pw_record_parser_free(w.parser);
    pw_buf_free(&w.result);
    pw_buf_free(&w.credit_msg);
    return pw_stage_finish(&w.st, exit_code);
}

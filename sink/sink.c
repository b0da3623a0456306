/*
 * sink: writes records durably, exactly once, and acknowledges them
 * (docs/contract.md "Wire"; README "Delivery guarantee, and its limits").
 *
 * For every record: dedup check (common/dedup.h) -> append to the output
 * or dead-letter file -> ack once a sync covers it (common/journal.h keeps
 * that rule, recovers the files on start and runs the syncer thread).
 * This file is the loop and the wiring: options, sockets, metrics.
 *
 * Writes are batched: everything ZeroMQ has ready, up to SINK_WRITE_CHUNK
 * bytes, is processed into the journal's buffers and written with one
 * write(2) per file.  A slow disk delays acks, never the records behind them.
 *
 * A write or sync error (disk full) ends the sink with exit 1, nothing it
 * covers acknowledged: see journal.h for why.
 */
#include <zmq.h>

#include "buf.h"
#include "dedup.h"
#include "journal.h"
#include "log.h"
#include "metrics.h"
#include "options.h"
#include "pw.h"
#include "record.h"
#include "stage.h"
#include "transport.h"
#include "wire.h"

#define SINK_HOT_STREAMS 64
/* Stop collecting and write once this much is buffered. */
#define SINK_WRITE_CHUNK (128 * 1024)
/* How often the lag watermark and the dedup gauges are computed. */
#define SINK_GAUGE_EVERY_NS 1000000000u

static const char *const fsync_names[] = { "always", "batch", "never", NULL }; /* pw_journal_policy */
static const char *const refusal_causes[PW_DEDUP_CAUSES] = { "window", "memory" };

typedef struct sink {
    pw_stage st;
    const char *bind, *ack, *paths[PW_JOURNAL_FILES];
    int fsync;
    uint64_t fsync_interval_ms, dedup_window, dedup_memory_mb;
    pw_security security;
    void *ctx, *pull, *pub;
    pw_journal *journal;
    pw_dedup *dedup;
    pw_buf ackmsg;
    uint64_t next_gauges_ns;
    pw_counter *dead_lettered, *duplicates;
    pw_counter_vec *refused;
    pw_gauge *hot, *cold, *dedup_bytes, *recovery;
    pw_histogram *e2e;
} sink;

/* Recovery: every line with an identity is marked written. */
static int recover_line(void *ctx, enum pw_journal_file file, const char *line, size_t len,
                        const pw_line_identity *id)
{
    sink *s = ctx;
    (void)file, (void)line, (void)len;
    if (id && pw_dedup_recover(s->dedup, id->producer, id->producer_len, id->run, id->seq, id->ts,
                               pw_wall_seconds()) != PW_OK) {
        PW_LOG(PW_LOG_ERROR, "dedup memory budget exhausted while recovering; raise --dedup-memory",
               PW_UINT("dedup_memory_mb", s->dedup_memory_mb), PW_UINT("streams", pw_dedup_cold_streams(s->dedup)));
        return PW_ENOMEM;
    }
    return PW_OK;
}

static void publish(sink *s)
{
    if (pw_buf_ok(&s->ackmsg)) /* PUB never blocks; a message dropped costs a re-send */
        zmq_send(s->pub, s->ackmsg.data, s->ackmsg.len, ZMQ_DONTWAIT);
}

/* Released acks: one message per stream, consecutive seqs merged into
 * ranges. */
static void send_acks(void *ctx, const pw_journal_ack *acks, size_t n)
{
    sink *s = ctx;
    const void *sent[64]; /* streams already answered; past 64, look back */
    size_t nsent = 0;
    for (size_t i = 0; i < n; i++) {
        const pw_dedup_stream *st = acks[i].stream;
        bool seen = false;
        for (size_t k = 0; k < nsent && !seen; k++)
            seen = sent[k] == st;
        for (size_t k = 0; k < i && !seen && nsent == PW_ARRAY_LEN(sent); k++)
            seen = acks[k].stream == st;
        if (seen)
            continue;
        if (nsent < PW_ARRAY_LEN(sent))
            sent[nsent++] = st;
        const char *producer;
        size_t len;
        uint64_t run;
        pw_dedup_stream_identity(st, &producer, &len, &run);
        pw_ack_writer w;
        pw_ack_begin(&w, &s->ackmsg, producer, len, run);
        for (size_t j = i; j < n; j++)
            if (acks[j].stream == st)
                pw_ack_add(&w, acks[j].seq);
        pw_ack_finish(&w);
        publish(s);
    }
}

/* A message that is not a well-formed batch: dead-letter its bytes. */
static void dead_letter_message(sink *s, const char *msg, size_t len)
{
    pw_buf line = PW_BUF_INIT;
    pw_record_dead_letter(&line, PW_REC_MALFORMED_JSON, "message is not a pipewatch batch",
                          NULL, 0, 0, s->st.opts.instance, pw_wall_seconds(), msg, len);
    pw_journal_append(s->journal, PW_JOURNAL_DEAD, line.data ? line.data : "", line.len);
    pw_buf_free(&line);
    pw_counter_inc(s->dead_lettered);
    pw_counter_vec_inc(s->st.errors, PW_REASON_MALFORMED_JSON);
    static pw_log_limiter lim = PW_LOG_LIMITER_INIT(5000);
    PW_LOG_LIMITED(&lim, PW_LOG_WARN, "malformed message dead-lettered", PW_STR("reason", "malformed_json"),
                   PW_UINT("bytes", len));
}

/* Every subscription is answered with a greeting carrying the dedup
 * window: until a producer has seen it, its acks would be dropped (PUB
 * sends nothing to a subscriber it has not heard from), and the window
 * bounds the producer's in-flight span. */
static void answer_subscriptions(sink *s)
{
    zmq_msg_t m;
    zmq_msg_init(&m);
    while (zmq_msg_recv(&m, s->pub, ZMQ_DONTWAIT) >= 0) {
        const char *d = zmq_msg_data(&m);
        size_t n = zmq_msg_size(&m);
        if (n < 2 || d[0] != 1 || d[n - 1] != '\0' || n - 2 > PW_WIRE_PRODUCER_MAX)
            continue; /* unsubscribe, or not a producer's topic */
        pw_greeting_write(&s->ackmsg, d + 1, n - 2, pw_dedup_window(s->dedup));
        publish(s);
    }
    zmq_msg_close(&m);
}

/* Refused records are neither written nor acknowledged: the producer re-sends. */
static void refuse(sink *s, const pw_batch_reader *r, enum pw_dedup_cause cause, uint64_t seq, uint64_t n)
{
    static pw_log_limiter lim = PW_LOG_LIMITER_INIT(5000);
    pw_counter_vec_add(s->refused, cause, n);
    PW_LOG_LIMITED(&lim, PW_LOG_ERROR, cause == PW_DEDUP_CAUSE_WINDOW
                   ? "seq beyond the dedup window refused: the producer's in-flight span exceeds --dedup-window"
                   : "dedup memory budget exhausted: records refused (raise --dedup-memory)",
                   PW_STR("cause", refusal_causes[cause]), PW_STRN("producer", r->producer, r->producer_len),
                   PW_UINT("run", r->run), PW_UINT("seq", seq), PW_UINT("dedup_window", pw_dedup_window(s->dedup)),
                   PW_UINT("dedup_memory_mb", s->dedup_memory_mb));
}

static void process_message(sink *s, const char *msg, size_t len, uint64_t received_ns, double now)
{
    if (!pw_batch_valid(msg, len)) {
        dead_letter_message(s, msg, len);
        return;
    }
    pw_batch_reader r;
    pw_batch_item item;
    pw_batch_read_begin(&r, msg, len);
    pw_dedup_stream *st = NULL;
    if (r.producer_len > 0 && pw_dedup_stream_get(s->dedup, r.producer, r.producer_len, r.run, now, &st) != PW_OK) {
        refuse(s, &r, PW_DEDUP_CAUSE_MEMORY, 0, r.count);
        return;
    }
    while (pw_batch_read_next(&r, &item) == 1) {
        enum pw_dedup_verdict v = st ? pw_dedup_mark(s->dedup, st, item.seq, item.ts) : PW_DEDUP_NEW;
        if (v == PW_DEDUP_REFUSED_WINDOW || v == PW_DEDUP_REFUSED_MEMORY) {
            refuse(s, &r, v == PW_DEDUP_REFUSED_WINDOW ? PW_DEDUP_CAUSE_WINDOW : PW_DEDUP_CAUSE_MEMORY, item.seq, 1);
            continue;
        }
        if (v == PW_DEDUP_NEW) {
            bool dead = item.flags == PW_ITEM_DEAD;
            pw_journal_append(s->journal, dead ? PW_JOURNAL_DEAD : PW_JOURNAL_OUT, item.bytes, item.len);
            pw_counter_inc(dead ? s->dead_lettered : s->st.processed);
            if (!dead) /* written in this turn of the loop, microseconds from now */
                pw_histogram_observe(s->e2e, now - item.ts);
        } else {
            pw_counter_inc(s->duplicates); /* acked again: the earlier ack may have been lost */
        }
        if (st)
            pw_journal_queue_ack(s->journal, st, item.seq);
    }
    double inside = (double)(pw_now_ns() - received_ns) / 1e9;
    for (uint32_t i = 0; i < r.count; i++)
        pw_histogram_observe(s->st.duration, inside);
}

static void update_gauges(sink *s, uint64_t now)
{
    if (now < s->next_gauges_ns)
        return;
    s->next_gauges_ns = now + SINK_GAUGE_EVERY_NS;
    pw_gauge_set(s->st.lag, pw_dedup_lag_watermark(s->dedup, pw_wall_seconds()));
    pw_gauge_set(s->hot, (double)pw_dedup_hot_streams(s->dedup));
    pw_gauge_set(s->cold, (double)pw_dedup_cold_streams(s->dedup));
    pw_gauge_set(s->dedup_bytes, (double)pw_dedup_memory_bytes(s->dedup));
}

static int run(sink *s)
{
    zmq_msg_t m;
    zmq_msg_init(&m);
    int rc = PW_OK;
    long timeout = 200;
    while (rc == PW_OK) {
        bool stopping = !pw_stage_running();
        zmq_pollitem_t items[] = {
            { s->pull, 0, ZMQ_POLLIN, 0 },
            { s->pub, 0, ZMQ_POLLIN, 0 },
            { NULL, pw_journal_event_fd(s->journal), ZMQ_POLLIN, 0 },
        };
        if (!stopping)
            zmq_poll(items, 3, timeout);
        answer_subscriptions(s);
        if ((rc = pw_journal_sync_done(s->journal)) != PW_OK)
            break;
        /* Take everything ZeroMQ has ready, up to a chunk, then write once. */
        size_t taken = 0;
        double wall = pw_wall_seconds();
        while (pw_journal_buffered(s->journal) < SINK_WRITE_CHUNK && zmq_msg_recv(&m, s->pull, ZMQ_DONTWAIT) >= 0) {
            process_message(s, zmq_msg_data(&m), zmq_msg_size(&m), pw_now_ns(), wall);
            taken++;
        }
        /* Write once, ask for a sync per --fsync, send what a sync covered. */
        uint64_t now = pw_now_ns();
        if ((rc = pw_journal_write(s->journal)) != PW_OK)
            break;
        timeout = pw_journal_tick(s->journal, now, 200);
        pw_journal_release(s->journal, send_acks, s);
        update_gauges(s, now);
        pw_field extra[] = { PW_UINT("dead_lettered", pw_counter_get(s->dead_lettered)),
                             PW_UINT("duplicates", pw_counter_get(s->duplicates)),
                             PW_UINT("refused_window", pw_dedup_refusals(s->dedup, PW_DEDUP_CAUSE_WINDOW)),
                             PW_UINT("cold_streams", pw_dedup_cold_streams(s->dedup)) };
        pw_stage_stats(&s->st, now, extra, PW_ARRAY_LEN(extra));
        if (stopping && taken == 0)
            break; /* drained: nothing more was waiting */
    }
    /* Clean shutdown: sync and ack the rest.  After a failure: nothing. */
    if (rc == PW_OK && (rc = pw_journal_wait_syncer(s->journal)) == PW_OK &&
        (rc = pw_journal_sync(s->journal)) == PW_OK)
        pw_journal_release(s->journal, send_acks, s);
    zmq_msg_close(&m);
    return rc == PW_OK ? PW_EXIT_OK : PW_EXIT_FAILURE;
}

static int register_metrics(sink *s)
{
    pw_registry *reg = s->st.registry;
    const struct { pw_gauge **g; const char *name, *help; } gauges[] = {
        { &s->hot, "pipeline_sink_dedup_hot_streams", "Streams whose dedup state is a bitmap (at most 64)." },
        { &s->cold, "pipeline_sink_dedup_cold_streams",
          "Streams whose dedup state is kept as written ranges (idle or evicted)." },
        { &s->dedup_bytes, "pipeline_sink_dedup_memory_bytes",
          "Bytes held by the dedup index: hot bitmaps, streams, ranges, table." },
        { &s->recovery, "pipeline_sink_recovery_seconds",
          "Seconds the sink spent at start reading, repairing and syncing its files." },
    };
    for (size_t i = 0; i < PW_ARRAY_LEN(gauges); i++)
        if (!(*gauges[i].g = pw_gauge_register(reg, gauges[i].name, gauges[i].help)))
            return PW_ENOMEM;
    s->dead_lettered = pw_counter_register(reg, "pipeline_records_dead_lettered_total",
                                           "Records appended to the dead-letter file.");
    s->duplicates = pw_counter_register(reg, "pipeline_records_duplicate_total",
                                        "Records received again after they were written; discarded.");
    s->e2e = pw_histogram_register(reg, "pipeline_end_to_end_latency_seconds",
                                   "Write time minus event time of records written to the output file.",
                                   pw_buckets_latency, pw_buckets_latency_len);
    s->refused = pw_counter_vec_register(reg, "pipeline_sink_dedup_refused_total",
                                         "Records the sink refused (not written, not acknowledged; the producer "
                                         "re-sends them): cause window = seq beyond the stream's dedup window, "
                                         "memory = dedup memory budget exhausted.",
                                         "cause", refusal_causes, PW_DEDUP_CAUSES);
    return s->dead_lettered && s->duplicates && s->e2e && s->refused ? PW_OK : PW_ENOMEM;
}

/* Opens, locks and recovers the files, then starts the syncer. */
static int open_journal(sink *s)
{
    pw_journal_config cfg = { .path = { s->paths[0], s->paths[1] }, .policy = (enum pw_journal_policy)s->fsync,
                              .interval_ms = s->fsync_interval_ms };
    if (pw_journal_open(&cfg, &s->journal) != PW_OK)
        return PW_EIO;
    uint64_t lines = 0, t0 = pw_now_ns();
    if (pw_journal_recover(s->journal, recover_line, s, &lines) != PW_OK) {
        PW_LOG(PW_LOG_ERROR, "cannot recover written records", PW_STR("file", s->paths[0]));
        return PW_EIO;
    }
    double seconds = (double)(pw_now_ns() - t0) / 1e9;
    pw_gauge_set(s->recovery, seconds);
    PW_LOG(PW_LOG_INFO, "recovered written records", PW_UINT("lines", lines),
           PW_UINT("streams", pw_dedup_hot_streams(s->dedup) + pw_dedup_cold_streams(s->dedup)),
           PW_DBL("seconds", seconds), PW_STR("synced", "both files, before any ack"));
    return pw_journal_syncer_start(s->journal);
}

int main(int argc, char **argv)
{
    static sink s = {
        .bind = "tcp://127.0.0.1:5558",
        .ack = "tcp://127.0.0.1:5559",
        .paths = { "pipewatch-out.ndjson", "pipewatch-dead-letter.ndjson" },
        .fsync = PW_JOURNAL_SYNC_BATCH,
        .fsync_interval_ms = 20,
        .dedup_window = 1u << 18,
        .dedup_memory_mb = 64,
        .ackmsg = PW_BUF_INIT,
    };
    const pw_option opts[] = {
        { .name = "bind", .type = PW_OPT_STRING, .dest = &s.bind, .metavar = "EP",
          .help = "endpoint the workers push results to (default tcp://127.0.0.1:5558)",
          .check = pw_endpoints_check },
        { .name = "ack", .type = PW_OPT_STRING, .dest = &s.ack, .metavar = "EP",
          .help = "endpoint acks are published on, for the producers (default tcp://127.0.0.1:5559)",
          .check = pw_endpoints_check },
        { .name = "out", .type = PW_OPT_STRING, .dest = &s.paths[PW_JOURNAL_OUT], .metavar = "FILE",
          .help = "NDJSON file good records are appended to (default pipewatch-out.ndjson)" },
        { .name = "dead-letter", .type = PW_OPT_STRING, .dest = &s.paths[PW_JOURNAL_DEAD], .metavar = "FILE",
          .help = "NDJSON file dead letters are appended to (default pipewatch-dead-letter.ndjson)" },
        { .name = "fsync", .type = PW_OPT_CHOICE, .dest = &s.fsync, .metavar = "always|batch|never",
          .help = "always: fdatasync before every ack; batch: every --fsync-interval; never: leave it "
                  "to the kernel (default batch)", .choices = fsync_names },
        { .name = "fsync-interval", .type = PW_OPT_U64, .dest = &s.fsync_interval_ms, .metavar = "MS",
          .help = "with --fsync batch, how often to sync and ack (default 20)", .min = 1, .max = 60000 },
        { .name = "dedup-window", .type = PW_OPT_U64, .dest = &s.dedup_window, .metavar = "N",
          .help = "seqs remembered above each stream's contiguous mark, announced to producers, which keep "
                  "their in-flight span within it; a seq beyond it is refused (default 262144: 64 KiB per "
                  "hot stream, 64 hot streams)", .min = 64, .max = 1u << 30 },
        { .name = "dedup-memory", .type = PW_OPT_U64, .dest = &s.dedup_memory_mb, .metavar = "MB",
          .help = "budget for idle (cold) streams' dedup state; when it is exhausted a new stream is "
                  "refused, nothing written is forgotten (default 64)", .min = 1, .max = 1u << 20 },
        PW_SECURITY_OPTIONS(s.security),
    };
    int rc = pw_options_parse(argc, argv, "sink", "sink: write records and dead letters exactly once, then acknowledge them",
                              opts, PW_ARRAY_LEN(opts), &s.st.opts);
    if (rc != PW_OPTIONS_CONTINUE)
        return rc == PW_OPTIONS_EXIT_OK ? PW_EXIT_OK : PW_EXIT_USAGE;
    if (pw_stage_init(&s.st) != PW_OK)
        return PW_EXIT_FAILURE;
    int exit_code = PW_EXIT_FAILURE;
    s.dedup = pw_dedup_new(s.dedup_window, SINK_HOT_STREAMS, (size_t)s.dedup_memory_mb << 20);
    if (register_metrics(&s) != PW_OK || !s.dedup) {
        PW_LOG(PW_LOG_ERROR, "out of memory", PW_UINT("dedup_window", s.dedup_window));
        goto done;
    }
    if (open_journal(&s) != PW_OK)
        goto done;
    s.ctx = pw_transport_context();
    if (!s.ctx)
        goto done;
    pw_socket_opts in_opts = { .rcvhwm = 4, .maxmsgsize = PW_WIRE_MAX_RESULT, .linger_ms = 0,
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
    if (s.pub && pw_stage_start(&s.st) == PW_OK) {
        PW_LOG(PW_LOG_INFO, "sinking", PW_STR("bind", s.bind), PW_STR("ack", s.ack),
               PW_STR("out", s.paths[PW_JOURNAL_OUT]), PW_STR("dead_letter", s.paths[PW_JOURNAL_DEAD]),
               PW_STR("fsync", fsync_names[s.fsync]), PW_UINT("dedup_window", pw_dedup_window(s.dedup)));
        exit_code = run(&s);
    }
done:
    pw_socket_close(s.pull);
    pw_socket_close(s.pub);
    pw_transport_close(s.ctx);
    pw_journal_close(s.journal);
    pw_buf_free(&s.ackmsg);
    pw_dedup_free(s.dedup);
    return pw_stage_finish(&s.st, exit_code);
}

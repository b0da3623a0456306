/*
 * producer: generates records, hands them to the workers that ask for
 * them, and keeps each one until the sink acknowledges it (contract:
 * docs/contract.md "Delivery").
 *
 * Workers connect DEALER sockets to our ROUTER and ask for records with
 * credit messages (common/dispatch.h: who may get how many); records go in
 * batches to the worker with the most credit.  Every record sent and not
 * acknowledged lives in the window (common/window.h: slots, re-send timer,
 * batch limits); a worker that goes silent has what it held re-sent at
 * once.  The window's span never exceeds --max-in-flight nor the dedup
 * window the sink announces in its greeting.  No credit, a full window or
 * no sink: the producer waits (back-pressure, never growth or loss).
 *
 * Acks arrive on a SUB socket connected to the sink's PUB socket,
 * subscribed to this producer's name: several producers (the main one and
 * an injector) share one ack endpoint, and an ack lost on the way costs
 * only a re-send, which the sink discards as a duplicate and acks again.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "buf.h"
#include "dispatch.h"
#include "log.h"
#include "metrics.h"
#include "options.h"
#include "pw.h"
#include "record.h"
#include "stage.h"
#include "transport.h"
#include "wire.h"
#include "window.h"

typedef struct producer {
    pw_stage st;
    /* options */
    const char *bind, *ack, *id, *fault_kinds;
    uint64_t count, ack_timeout_ms, batch, max_in_flight, drain_timeout_ms;
    double fault_rate;
    pw_security security;
    /* state */
    void *ctx, *out, *acks;
    uint64_t run;
    pw_window window;
    pw_dispatch workers;
    pw_fault faults[PW_FAULT_COUNT];
    size_t nfaults;
    pw_buf msg;
    pw_pace pace;              /* --rate, from the sink's greeting */
    double blocked_since;      /* records due, none in flight, none sendable (no sink or no credit) since */
    uint64_t next_scan_ns, started_ns;
    bool sink_heard;           /* the sink's greeting has arrived */
    uint64_t sink_window;      /* its dedup window (0 until heard) */
    /* producer-only metrics */
    pw_gauge *sink_connected, *workers_connected;
} producer;

static void write_record(void *ctx, pw_buf *out, uint64_t seq, double ts)
{
    producer *p = ctx;
    pw_record_generate(out, p->id, seq, ts, pw_fault_pick(p->run, seq, p->fault_rate, p->faults, p->nfaults));
}

/* New records the rate and --count allow now. */
static uint64_t records_due(const producer *p, uint64_t now)
{
    if (!pw_stage_running() || (p->count && p->window.next_seq >= p->count))
        return 0;
    uint64_t left = p->count ? p->count - p->window.next_seq : UINT64_MAX;
    uint64_t due = pw_pace_due(&p->pace, p->window.next_seq, now);
    return due < left ? due : left;
}

/* The sink's greeting: it is listening, and how far apart our in-flight
 * seqs may be before its dedup index would have to refuse them. */
static void sink_greeted(producer *p, uint64_t window)
{
    if (!p->sink_heard) {
        p->sink_heard = true;
        if (p->window.next_seq == 0)
            p->pace.started_ns = pw_now_ns(); /* pace from the first send */
        PW_LOG(PW_LOG_INFO, "sink is listening; sending records", PW_STR("ack", p->ack),
               PW_UINT("dedup_window", window));
    }
    if (window != p->sink_window) {
        p->sink_window = window;
        pw_window_set_limit(&p->window, window);
        if (window < p->max_in_flight)
            PW_LOG(PW_LOG_WARN, "in-flight limit lowered to the sink's dedup window",
                   PW_UINT("max_in_flight", p->max_in_flight), PW_UINT("dedup_window", window));
    }
}

static void handle_acks(producer *p, uint64_t now)
{
    zmq_msg_t m;
    zmq_msg_init(&m);
    size_t idlen = strlen(p->id);
    while (zmq_msg_recv(&m, p->acks, ZMQ_DONTWAIT) >= 0) {
        const char *name;
        size_t len;
        uint64_t window;
        if (pw_greeting_read(zmq_msg_data(&m), zmq_msg_size(&m), &name, &len, &window) == PW_OK) {
            if (len == idlen && memcmp(name, p->id, len) == 0)
                sink_greeted(p, window);
            continue;
        }
        pw_ack_reader r;
        if (pw_ack_read_begin(&r, zmq_msg_data(&m), zmq_msg_size(&m)) != PW_OK || r.producer_len != idlen ||
            memcmp(r.producer, p->id, idlen) != 0 || r.run != p->run)
            continue; /* not ours, or an earlier run of ours */
        uint64_t first;
        uint32_t n;
        while (pw_ack_read_next(&r, &first, &n) == 1)
            pw_window_ack(&p->window, first, n, now);
    }
    zmq_msg_close(&m);
}

/* Credit messages from the workers: [routing id][PWC1 ...]. */
static void handle_credit(producer *p, uint64_t now)
{
    unsigned char id[256];
    char body[PW_WIRE_CREDIT_LEN + 1];
    size_t idn, n;
    while (pw_router_recv(p->out, id, sizeof id, &idn, body, sizeof body, &n) == 1) {
        uint32_t grant, outstanding;
        if (pw_credit_read(body, n, &grant, &outstanding) != PW_OK)
            continue;
        if (pw_dispatch_credit(&p->workers, id, idn, grant, outstanding, now) < 0) {
            static pw_log_limiter lim = PW_LOG_LIMITER_INIT(5000);
            PW_LOG_LIMITED(&lim, PW_LOG_ERROR, "worker ignored: too many workers",
                           PW_UINT("max", p->workers.max_workers));
        }
    }
}

/* Workers silent for too long are lost: what they held is re-sent now. */
static void expire_workers(producer *p, uint64_t now)
{
    int i;
    while ((i = pw_dispatch_expire(&p->workers, now)) >= 0) {
        uint64_t n = pw_window_requeue_peer(&p->window, (uint16_t)i);
        PW_LOG(PW_LOG_WARN, "worker lost; re-sending what it held", PW_UINT("records", n),
               PW_UINT("silent_ms", PW_WIRE_WORKER_LOST_MS));
    }
}

/* Sends batches while a worker has credit and there is something to send. */
static void dispatch(producer *p, uint64_t now)
{
    int i;
    while (p->sink_heard && (i = pw_dispatch_pick(&p->workers)) >= 0) {
        pw_worker_peer *w = &p->workers.peers[i];
        pw_fill f = { .max_records = w->credit < p->batch ? w->credit : p->batch,
                      .max_bytes = PW_WIRE_MAX_MESSAGE, .fresh_allowed = records_due(p, now),
                      .fresh_ts = pw_wall_seconds(), .peer = (uint16_t)i, .write = write_record, .ctx = p };
        pw_batch_writer bw;
        pw_batch_begin(&bw, &p->msg, p->id, strlen(p->id), p->run);
        if (pw_window_fill(&p->window, &bw, &f, now) == 0)
            return;
        if (!pw_buf_ok(&p->msg)) {
            PW_LOG(PW_LOG_ERROR, "out of memory building a message", PW_STR("reason", "memory"));
            pw_stage_request_stop();
            return;
        }
        assert(p->msg.len <= PW_WIRE_MAX_MESSAGE && bw.count <= f.max_records);
        pw_dispatch_sent(&p->workers, i, bw.count, now);
        if (zmq_send(p->out, w->id, w->id_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
            zmq_send(p->out, p->msg.data, p->msg.len, ZMQ_DONTWAIT) < 0) {
            /* The worker's connection is gone (or its queue is full): take
             * it out and re-send what it held, this batch included. */
            PW_LOG(PW_LOG_WARN, "worker unreachable; re-sending what it held",
                   PW_STR("error", zmq_strerror(errno)));
            pw_dispatch_drop(&p->workers, i);
            pw_window_requeue_batch(&p->window, p->msg.data, p->msg.len);
            pw_window_requeue_peer(&p->window, (uint16_t)i);
            continue;
        }
        if (f.fresh) {
            double secs = (double)(pw_now_ns() - now) / 1e9;
            for (uint64_t k = 0; k < f.fresh; k++)
                pw_histogram_observe(p->st.duration, secs);
            pw_counter_add(p->st.processed, f.fresh);
        }
    }
}

/* Metrics that mirror the window and the workers (updated once per loop). */
static void update_metrics(producer *p)
{
    const pw_window *w = &p->window;
    pw_window_metrics_update(&p->window);
    /* Freshness: everything before the oldest unacknowledged record is
     * done.  With nothing in flight but records due that cannot go out (no
     * sink, no worker with credit), it counts from when that began: a
     * pipeline with no sink or no worker is stalled, not caught up. */
    bool blocked = w->in_flight == 0 && records_due(p, pw_now_ns()) > 0 &&
                   (!p->sink_heard || pw_dispatch_credit_total(&p->workers) == 0);
    if (!blocked)
        p->blocked_since = 0;
    else if (p->blocked_since == 0)
        p->blocked_since = pw_wall_seconds();
    pw_gauge_set(p->st.lag, w->in_flight ? pw_window_oldest_ts(w) : p->blocked_since);
    pw_gauge_set(p->sink_connected, p->sink_heard ? 1 : 0);
    pw_gauge_set(p->workers_connected, (double)p->workers.live);
}

static int open_sockets(producer *p)
{
    p->ctx = pw_transport_context();
    if (!p->ctx)
        return PW_ERR;
    /* Credit bounds what is queued per worker; the HWM only backs it up. */
    pw_socket_opts out_opts = { .sndhwm = 10000, .rcvhwm = 10000, .maxmsgsize = 4096, .linger_ms = 2000,
                                .security = &p->security };
    p->out = pw_socket_open(p->ctx, ZMQ_ROUTER, p->bind, true, &out_opts);
    if (!p->out)
        return PW_ERR;
    int mandatory = 1; /* a send to a vanished worker fails instead of vanishing */
    zmq_setsockopt(p->out, ZMQ_ROUTER_MANDATORY, &mandatory, sizeof mandatory);
    pw_socket_opts ack_opts = { .rcvhwm = 10000, .maxmsgsize = 16 * 1024 * 1024, .linger_ms = 0,
                                .security = &p->security };
    p->acks = pw_socket_open(p->ctx, ZMQ_SUB, p->ack, false, &ack_opts);
    if (!p->acks)
        return PW_ERR;
    char topic[PW_WIRE_PRODUCER_MAX + 1];
    size_t n = strlen(p->id);
    memcpy(topic, p->id, n);
    topic[n] = '\0';
    zmq_setsockopt(p->acks, ZMQ_SUBSCRIBE, topic, n + 1);
    return PW_OK;
}

static bool finished(const producer *p)
{
    return p->count && p->window.next_seq == p->count && p->window.in_flight == 0;
}

/* How long the loop may sleep: an ack or a credit message wakes it; work
 * it can do now (re-sends, records due) makes it not sleep; otherwise
 * until the next record is due, the next scan, or 100 ms at most. */
static long poll_timeout_ms(const producer *p, uint64_t now)
{
    long limit = 100;
    if (p->next_scan_ns > now) {
        uint64_t scan_ms = (p->next_scan_ns - now) / 1000000u + 1;
        if ((long)scan_ms < limit)
            limit = (long)scan_ms;
    } else {
        return 0;
    }
    if (!p->sink_heard || p->workers.live == 0 || pw_dispatch_credit_total(&p->workers) == 0)
        return limit;
    if (pw_window_has_resends(&p->window))
        return 0;
    if (!pw_stage_running() || (p->count && p->window.next_seq >= p->count) || pw_window_room(&p->window) == 0)
        return limit; /* an ack wakes us */
    return pw_pace_wait_ms(&p->pace, p->window.next_seq, now, limit);
}

static int run(producer *p)
{
    p->started_ns = p->pace.started_ns = pw_now_ns();
    uint64_t drain_deadline = 0, last_wait_log = 0;
    while (!finished(p)) {
        uint64_t now = pw_now_ns();
        if (!pw_stage_running()) {
            if (!drain_deadline) {
                drain_deadline = now + p->drain_timeout_ms * 1000000u;
                PW_LOG(PW_LOG_INFO, "draining", PW_UINT("in_flight", p->window.in_flight));
            }
            if (p->window.in_flight == 0 || now >= drain_deadline || pw_stage_hurry())
                break;
        }
        handle_acks(p, now);
        if (finished(p))
            break; /* the last ack just came: do not sleep out a poll first */
        handle_credit(p, now);
        expire_workers(p, now);
        uint64_t overdue = pw_window_scan_if_due(&p->window, now, &p->next_scan_ns);
        if (overdue) {
            static pw_log_limiter lim = PW_LOG_LIMITER_INIT(5000);
            PW_LOG_LIMITED(&lim, PW_LOG_WARN, "re-sending unacknowledged records", PW_UINT("count", overdue),
                           PW_UINT("ack_timeout_ms", p->window.rto_ms));
        }
        dispatch(p, now);
        if (!p->sink_heard && now - last_wait_log >= 10000000000ull) {
            last_wait_log = now;
            PW_LOG(PW_LOG_WARN, "waiting for the sink to answer on the ack endpoint", PW_STR("ack", p->ack),
                   PW_DBL("waited_seconds", (double)(now - p->started_ns) / 1e9));
        }
        update_metrics(p);
        pw_field extra[] = { PW_UINT("in_flight", p->window.in_flight),
                             PW_UINT("retried", p->window.resent[0] + p->window.resent[1]),
                             PW_UINT("workers", p->workers.live),
                             PW_UINT("ack_timeout_ms", p->window.rto_ms) };
        pw_stage_stats(&p->st, now, extra, PW_ARRAY_LEN(extra));

        zmq_pollitem_t items[] = {
            { p->acks, 0, ZMQ_POLLIN, 0 },
            { p->out, 0, ZMQ_POLLIN, 0 },
        };
        long timeout_ms = poll_timeout_ms(p, now);
        if (timeout_ms > 0)
            zmq_poll(items, 2, timeout_ms);
    }
    update_metrics(p);
    if (finished(p))
        PW_LOG(PW_LOG_INFO, "all records acknowledged", PW_UINT("count", p->window.next_seq));
    else if (p->window.in_flight)
        PW_LOG(PW_LOG_WARN, "stopping with unacknowledged records", PW_UINT("in_flight", p->window.in_flight),
               PW_STR("reason", "drain timeout"));
    else
        PW_LOG(PW_LOG_INFO, "stopped before --count; every record sent was acknowledged",
               PW_UINT("sent", p->window.next_seq), PW_UINT("count", p->count));
    /* A requested stop is a clean stop even when the drain ran out of time:
     * what is still unacknowledged is reported above. */
    return PW_EXIT_OK;
}

/* Option checks: the id heads every record id and the ack topic. */
static const char *id_check(const char *id)
{
    if (strlen(id) > PW_WIRE_PRODUCER_MAX || strcspn(id, "\"\\/ \t\n") != strlen(id))
        return "must be 1..64 characters without quotes, slashes or spaces";
    return NULL;
}

static const char *fault_kinds_check(const char *list)
{
    pw_fault faults[PW_FAULT_COUNT];
    size_t n;
    return pw_fault_kinds(list, faults, &n) == PW_OK ? NULL : "unknown fault kind";
}

int main(int argc, char **argv)
{
    static producer p = {
        .bind = "tcp://127.0.0.1:5557",
        .ack = "tcp://127.0.0.1:5559",
        .id = "p1",
        .fault_kinds = "all",
        .pace = { .rate = 1000 },
        .ack_timeout_ms = 5000,
        .batch = 256,
        .max_in_flight = 65536,
        .drain_timeout_ms = 5000,
        .msg = PW_BUF_INIT,
    };
    const pw_option opts[] = {
        { .name = "bind", .type = PW_OPT_STRING, .dest = &p.bind, .metavar = "EP",
          .help = "endpoint the workers connect to and ask for records (default tcp://127.0.0.1:5557)",
          .check = pw_endpoints_check },
        { .name = "ack", .type = PW_OPT_STRING, .dest = &p.ack, .metavar = "EP",
          .help = "sink's ack endpoint to subscribe to (default tcp://127.0.0.1:5559)",
          .check = pw_endpoints_check },
        { .name = "id", .type = PW_OPT_STRING, .dest = &p.id, .metavar = "NAME",
          .help = "producer name, prefix of record ids (default p1)", .check = id_check },
        { .name = "rate", .type = PW_OPT_U64, .dest = &p.pace.rate, .metavar = "N",
          .help = "records per second, 0 = as fast as the pipeline takes them (default 1000)",
          .min = 0, .max = 100000000 },
        { .name = "count", .type = PW_OPT_U64, .dest = &p.count, .metavar = "N",
          .help = "records to produce, then wait for every ack and exit; 0 = forever (default 0)",
          .min = 0, .max = UINT64_MAX / 2 },
        { .name = "fault-rate", .type = PW_OPT_DOUBLE, .dest = &p.fault_rate, .metavar = "P",
          .help = "share of records that are faulty, 0..1 (default 0)", .dmin = 0, .dmax = 1 },
        { .name = "fault-kinds", .type = PW_OPT_STRING, .dest = &p.fault_kinds, .metavar = "LIST",
          .help = "comma list of malformed_json,missing_field,invalid_value,oversize,invalid_utf8,"
                  "empty,poison or all (default all)", .check = fault_kinds_check },
        { .name = "ack-timeout", .type = PW_OPT_U64, .dest = &p.ack_timeout_ms, .metavar = "MS",
          .help = "ceiling (and starting value) of the re-send timeout, which otherwise follows the "
                  "measured ack latency with back-off (default 5000)",
          .min = 10, .max = 3600000 },
        { .name = "batch", .type = PW_OPT_U64, .dest = &p.batch, .metavar = "N",
          .help = "most records per ZeroMQ message (default 256)", .min = 1, .max = 10000 },
        { .name = "max-in-flight", .type = PW_OPT_U64, .dest = &p.max_in_flight, .metavar = "N",
          .help = "most unacknowledged records (window span); lowered to the sink's "
                  "--dedup-window when that is smaller (default 65536)", .min = 1, .max = 1u << 24 },
        { .name = "drain-timeout", .type = PW_OPT_U64, .dest = &p.drain_timeout_ms, .metavar = "MS",
          .help = "on SIGINT/SIGTERM, wait this long for outstanding acks (default 5000)",
          .min = 0, .max = 3600000 },
        PW_SECURITY_OPTIONS(p.security),
    };
    int rc = pw_options_parse(argc, argv, "producer",
                              "producer: generate records and send them to the workers until the "
                              "sink acknowledges them",
                              opts, PW_ARRAY_LEN(opts), &p.st.opts);
    if (rc != PW_OPTIONS_CONTINUE)
        return rc == PW_OPTIONS_EXIT_OK ? PW_EXIT_OK : PW_EXIT_USAGE;
    pw_fault_kinds(p.fault_kinds, p.faults, &p.nfaults); /* checked while parsing */

    if (pw_stage_init(&p.st) != PW_OK)
        return PW_EXIT_FAILURE;
    pw_registry *reg = p.st.registry;
    p.sink_connected = pw_gauge_register(reg, "pipeline_sink_connected",
                                         "1 once the sink has answered on the ack endpoint, 0 while waiting for it.");
    p.workers_connected = pw_gauge_register(reg, "pipeline_workers_connected",
                                            "Workers currently asking this producer for records.");
    p.run = (uint64_t)(pw_wall_seconds() * 1e6);
    uint64_t now = pw_now_ns();
    uint32_t rto_min = p.ack_timeout_ms < 200 ? (uint32_t)p.ack_timeout_ms : 200;
    int wrc = pw_window_init(&p.window, p.max_in_flight, rto_min, (uint32_t)p.ack_timeout_ms, now);
    int drc = pw_dispatch_init(&p.workers, 1024, PW_WIRE_HEARTBEAT_MS, PW_WIRE_WORKER_LOST_MS);
    int exit_code = PW_EXIT_FAILURE;
    if (!p.sink_connected || !p.workers_connected || wrc != PW_OK || drc != PW_OK ||
        pw_window_metrics_register(&p.window, reg) != PW_OK) {
        PW_LOG(PW_LOG_ERROR, "out of memory", PW_UINT("max_in_flight", p.max_in_flight));
    } else if (open_sockets(&p) == PW_OK && pw_stage_start(&p.st) == PW_OK) {
        PW_LOG(PW_LOG_INFO, "producing", PW_STR("bind", p.bind), PW_STR("ack", p.ack),
               PW_STR("id", p.id), PW_UINT("run", p.run), PW_UINT("rate", p.pace.rate),
               PW_UINT("count", p.count), PW_DBL("fault_rate", p.fault_rate));
        exit_code = run(&p);
    }
    pw_socket_close(p.out);
    pw_socket_close(p.acks);
    pw_transport_close(p.ctx);
    pw_window_free(&p.window);
    pw_dispatch_free(&p.workers);
    pw_buf_free(&p.msg);
    return pw_stage_finish(&p.st, exit_code);
}

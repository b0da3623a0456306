/*
 * producer: generates records, sends them to the workers in batches and
 * keeps each one until the sink acknowledges it (SPEC "Delivery guarantee").
 *
 * The unacknowledged window is a ring of small slots indexed by seq: a slot
 * holds the event time and last send time, not the record's bytes, because
 * generation is deterministic and a re-send regenerates the same record.
 * The window's span (newest seq - oldest unacked seq) never exceeds
 * --max-in-flight, which bounds this process's memory and is the bound the
 * sink's dedup window relies on.  When the window is full, or ZeroMQ's
 * high-water mark is reached, the producer waits: back-pressure, not growth.
 *
 * Acks arrive on a SUB socket connected to the sink's PUB socket,
 * subscribed to this producer's name: several producers (the main one and
 * an injector) share one ack endpoint, and an ack lost on the way costs
 * only a re-send, which the sink discards as a duplicate and acks again.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

enum slot_state { SLOT_ACKED = 0, SLOT_UNACKED = 1, SLOT_QUEUED = 2 };

/* 16 bytes: the window is the producer's largest allocation. */
typedef struct slot {
    double ts;         /* event time, kept so a re-send is the same record */
    uint32_t sent_ms;  /* last send, ms since the producer's epoch (49 days of range) */
    uint32_t state;
} slot;

typedef struct producer {
    pw_stage st;
    /* options */
    const char *bind, *ack, *id, *fault_kinds;
    uint64_t rate, count, ack_timeout_ms, batch, max_in_flight, drain_timeout_ms;
    double fault_rate;
    pw_security security;
    /* state */
    void *ctx, *out, *acks;
    uint64_t run;
    slot *window;
    uint64_t mask;
    uint64_t next_seq, oldest, in_flight;
    uint64_t *resend;          /* seqs queued for re-send */
    size_t resend_len, resend_pos;
    unsigned fault_mask;
    pw_fault faults[PW_FAULT_COUNT];
    size_t nfaults;
    pw_buf msg;
    bool pending;              /* msg is built but not yet accepted by ZeroMQ */
    uint64_t pending_new;      /* records in msg sent for the first time */
    uint64_t pending_built_ns;
    uint64_t started_ns;       /* pacing starts here (the first send) */
    uint64_t epoch_ns;         /* process start: slot send times count from here */
    uint64_t next_scan_ns;
    bool sink_heard;           /* an ack (or the sink's greeting) has arrived */
    /* producer-only metrics */
    pw_gauge *in_flight_gauge;
    pw_counter *retried;
} producer;

static uint32_t ms_since_epoch(const producer *p, uint64_t now_ns)
{
    return (uint32_t)((now_ns - p->epoch_ns) / 1000000u);
}

static uint64_t mix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15u;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9u;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBu;
    return x ^ (x >> 31);
}

/* The fault kind of a seq is a pure function of (run, seq) so that a
 * re-send regenerates exactly the same record. */
static pw_fault fault_for(const producer *p, uint64_t seq)
{
    if (p->fault_rate <= 0 || p->nfaults == 0)
        return PW_FAULT_NONE;
    uint64_t h = mix64(p->run ^ (seq * 0x2545F4914F6CDD1Du));
    double u = (double)(h >> 11) * 0x1.0p-53;
    if (u >= p->fault_rate)
        return PW_FAULT_NONE;
    return p->faults[mix64(h) % p->nfaults];
}

static void add_record(producer *p, pw_batch_writer *w, uint64_t seq, double ts)
{
    size_t start = pw_batch_item_start(w, seq, PW_ITEM_RECORD, ts);
    pw_record_generate(w->buf, p->id, seq, ts, fault_for(p, seq));
    pw_batch_item_end(w, start);
}

/* Records the rate allows now (all of them when --rate is 0). */
static uint64_t records_due(const producer *p, uint64_t now)
{
    if (p->rate == 0)
        return UINT64_MAX;
    double elapsed = (double)(now - p->started_ns) / 1e9;
    double allowed = floor(elapsed * (double)p->rate) + 1;
    uint64_t sent = p->next_seq;
    return allowed > (double)sent ? (uint64_t)(allowed - (double)sent) : 0;
}

/* Builds the next message: re-sends first, then new records. */
static bool build_message(producer *p, uint64_t now)
{
    pw_batch_writer w;
    pw_batch_begin(&w, &p->msg, p->id, strlen(p->id), p->run);
    p->pending_new = 0;
    while (p->resend_pos < p->resend_len && w.count < p->batch) {
        uint64_t seq = p->resend[p->resend_pos++];
        slot *s = &p->window[seq & p->mask];
        if (seq < p->oldest || s->state != SLOT_QUEUED)
            continue; /* acked since it was queued */
        add_record(p, &w, seq, s->ts);
        s->state = SLOT_UNACKED;
        s->sent_ms = ms_since_epoch(p, now);
        pw_counter_inc(p->retried);
    }
    if (p->resend_pos == p->resend_len)
        p->resend_pos = p->resend_len = 0;
    if (pw_stage_running() && (p->count == 0 || p->next_seq < p->count)) {
        uint64_t n = p->batch - w.count;
        uint64_t room = p->max_in_flight - (p->next_seq - p->oldest);
        uint64_t due = records_due(p, now);
        if (n > room)
            n = room;
        if (n > due)
            n = due;
        if (p->count && n > p->count - p->next_seq)
            n = p->count - p->next_seq;
        double ts = pw_wall_seconds();
        for (uint64_t i = 0; i < n; i++) {
            uint64_t seq = p->next_seq++;
            slot *s = &p->window[seq & p->mask];
            s->ts = ts;
            s->sent_ms = ms_since_epoch(p, now);
            s->state = SLOT_UNACKED;
            add_record(p, &w, seq, ts);
        }
        p->in_flight += n;
        p->pending_new = n;
    }
    if (w.count == 0)
        return false;
    if (!pw_buf_ok(&p->msg)) {
        PW_LOG(PW_LOG_ERROR, "out of memory building a message", PW_STR("reason", "memory"));
        pw_stage_request_stop();
        return false;
    }
    p->pending_built_ns = now;
    return true;
}

static void send_pending(producer *p)
{
    if (zmq_send(p->out, p->msg.data, p->msg.len, ZMQ_DONTWAIT) < 0)
        return; /* EAGAIN: high-water mark reached, poll for POLLOUT; EINTR: loop */
    p->pending = false;
    if (p->pending_new) {
        uint64_t now = pw_now_ns();
        double secs = (double)(now - p->pending_built_ns) / 1e9;
        for (uint64_t i = 0; i < p->pending_new; i++)
            pw_histogram_observe(p->st.duration, secs);
        pw_counter_add(p->st.processed, p->pending_new);
        pw_gauge_set(p->st.lag, pw_wall_seconds() - p->window[(p->next_seq - 1) & p->mask].ts);
    }
}

static void handle_acks(producer *p)
{
    zmq_msg_t m;
    zmq_msg_init(&m);
    while (zmq_msg_recv(&m, p->acks, ZMQ_DONTWAIT) >= 0) {
        pw_ack_reader r;
        if (pw_ack_read_begin(&r, zmq_msg_data(&m), zmq_msg_size(&m)) != PW_OK ||
            r.producer_len != strlen(p->id) || memcmp(r.producer, p->id, r.producer_len) != 0)
            continue;
        if (!p->sink_heard) {
            p->sink_heard = true;
            if (p->next_seq == 0)
                p->started_ns = pw_now_ns(); /* pace from the first send */
            PW_LOG(PW_LOG_INFO, "sink is listening; sending records", PW_STR("ack", p->ack));
        }
        if (r.run != p->run)
            continue; /* the sink's greeting (run 0) or an earlier run of ours */
        uint64_t first;
        uint32_t n;
        while (pw_ack_read_next(&r, &first, &n) == 1) {
            uint64_t lo = first < p->oldest ? p->oldest : first;
            uint64_t hi = first + n > p->next_seq ? p->next_seq : first + n;
            for (uint64_t seq = lo; seq < hi; seq++) {
                slot *s = &p->window[seq & p->mask];
                if (s->state != SLOT_ACKED) {
                    s->state = SLOT_ACKED;
                    p->in_flight--;
                }
            }
        }
        while (p->oldest < p->next_seq && p->window[p->oldest & p->mask].state == SLOT_ACKED)
            p->oldest++;
    }
    zmq_msg_close(&m);
    pw_gauge_set(p->in_flight_gauge, (double)p->in_flight);
}

/* Queues every record whose ack is overdue for a re-send. */
static void scan_for_resends(producer *p, uint64_t now)
{
    uint64_t timeout_ns = p->ack_timeout_ms * 1000000u;
    uint32_t now_ms = ms_since_epoch(p, now);
    size_t queued = 0;
    for (uint64_t seq = p->oldest; seq < p->next_seq; seq++) {
        slot *s = &p->window[seq & p->mask];
        if (s->state == SLOT_UNACKED && now_ms - s->sent_ms >= p->ack_timeout_ms) {
            s->state = SLOT_QUEUED;
            p->resend[p->resend_len++] = seq;
            queued++;
        }
    }
    if (queued) {
        static pw_log_limiter lim = PW_LOG_LIMITER_INIT(5000);
        PW_LOG_LIMITED(&lim, PW_LOG_WARN, "re-sending unacknowledged records",
                       PW_UINT("count", queued), PW_UINT("ack_timeout_ms", p->ack_timeout_ms));
    }
    uint64_t every = timeout_ns / 4;
    if (every > 250000000u)
        every = 250000000u;
    p->next_scan_ns = now + every;
}

static int open_sockets(producer *p)
{
    p->ctx = pw_transport_context();
    if (!p->ctx)
        return PW_ERR;
    pw_socket_opts out_opts = { .sndhwm = 8, .maxmsgsize = -1, .linger_ms = 2000,
                                .security = &p->security };
    p->out = pw_socket_open(p->ctx, ZMQ_PUSH, p->bind, true, &out_opts);
    if (!p->out)
        return PW_ERR;
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
    return p->count && p->next_seq == p->count && p->in_flight == 0;
}

/* How long the loop may sleep: until an ack arrives, ZeroMQ takes the
 * pending message, or there is work (a queued re-send, a record due);
 * never longer than 100 ms, so stats and signals are seen. */
static long poll_timeout_ms(const producer *p)
{
    if (p->pending || !p->sink_heard)
        return 100; /* POLLOUT or the sink's greeting wakes us */
    if (p->resend_len)
        return 0;
    bool can_generate = pw_stage_running() && (p->count == 0 || p->next_seq < p->count) &&
                        p->next_seq - p->oldest < p->max_in_flight;
    if (!can_generate)
        return 100; /* an ack wakes us */
    if (p->rate == 0)
        return 0;
    double next_at = (double)(p->next_seq + 1) / (double)p->rate;
    double wait_ms = (next_at - (double)(pw_now_ns() - p->started_ns) / 1e9) * 1000.0;
    return wait_ms <= 0 ? 0 : wait_ms < 100 ? (long)ceil(wait_ms) : 100;
}

static int run(producer *p)
{
    p->started_ns = pw_now_ns();
    p->epoch_ns = p->started_ns;
    p->next_scan_ns = p->started_ns;
    uint64_t drain_deadline = 0;
    while (!finished(p)) {
        uint64_t now = pw_now_ns();
        if (!pw_stage_running()) {
            if (!drain_deadline) {
                drain_deadline = now + p->drain_timeout_ms * 1000000u;
                PW_LOG(PW_LOG_INFO, "draining", PW_UINT("in_flight", p->in_flight));
            }
            if (p->in_flight == 0 || now >= drain_deadline || pw_stage_hurry())
                break;
        }
        handle_acks(p);
        if (finished(p))
            break; /* the last ack just came: do not sleep out a poll first */
        if (now >= p->next_scan_ns)
            scan_for_resends(p, now);
        /* Until the sink has answered our subscription its acks would be
         * lost, and every record sent would wait out --ack-timeout. */
        if (!p->pending && p->sink_heard)
            p->pending = build_message(p, now);
        if (p->pending)
            send_pending(p);

        pw_field extra[] = { PW_UINT("in_flight", p->in_flight),
                             PW_UINT("retried", pw_counter_get(p->retried)) };
        pw_stage_stats(&p->st, now, extra, PW_ARRAY_LEN(extra));

        long timeout_ms = poll_timeout_ms(p);
        zmq_pollitem_t items[] = {
            { p->acks, 0, ZMQ_POLLIN, 0 },
            { p->out, 0, ZMQ_POLLOUT, 0 },
        };
        if (timeout_ms > 0)
            zmq_poll(items, p->pending ? 2 : 1, timeout_ms);
    }
    if (p->in_flight)
        PW_LOG(PW_LOG_WARN, "stopping with unacknowledged records", PW_UINT("in_flight", p->in_flight),
               PW_STR("reason", "drain timeout"));
    else if (p->count)
        PW_LOG(PW_LOG_INFO, "all records acknowledged", PW_UINT("count", p->next_seq));
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
    unsigned mask;
    const char *bad;
    return pw_fault_parse_list(list, &mask, &bad) == PW_OK ? NULL : "unknown fault kind";
}

int main(int argc, char **argv)
{
    static producer p = {
        .bind = "tcp://127.0.0.1:5557",
        .ack = "tcp://127.0.0.1:5559",
        .id = "p1",
        .fault_kinds = "all",
        .rate = 1000,
        .ack_timeout_ms = 5000,
        .batch = 256,
        .max_in_flight = 65536,
        .drain_timeout_ms = 5000,
        .msg = PW_BUF_INIT,
    };
    const pw_option opts[] = {
        { .name = "bind", .type = PW_OPT_STRING, .dest = &p.bind, .metavar = "EP",
          .help = "endpoint the workers pull records from (default tcp://127.0.0.1:5557)",
          .check = pw_endpoints_check },
        { .name = "ack", .type = PW_OPT_STRING, .dest = &p.ack, .metavar = "EP",
          .help = "sink's ack endpoint to subscribe to (default tcp://127.0.0.1:5559)",
          .check = pw_endpoints_check },
        { .name = "id", .type = PW_OPT_STRING, .dest = &p.id, .metavar = "NAME",
          .help = "producer name, prefix of record ids (default p1)", .check = id_check },
        { .name = "rate", .type = PW_OPT_U64, .dest = &p.rate, .metavar = "N",
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
          .help = "re-send a record not acknowledged after this long (default 5000)",
          .min = 10, .max = 3600000 },
        { .name = "batch", .type = PW_OPT_U64, .dest = &p.batch, .metavar = "N",
          .help = "most records per ZeroMQ message (default 256)", .min = 1, .max = 10000 },
        { .name = "max-in-flight", .type = PW_OPT_U64, .dest = &p.max_in_flight, .metavar = "N",
          .help = "most unacknowledged records (window span); must not exceed the sink's "
                  "--dedup-window (default 65536)", .min = 1, .max = 1u << 24 },
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
    const char *unused;
    pw_fault_parse_list(p.fault_kinds, &p.fault_mask, &unused); /* checked while parsing */
    for (int f = 1; f < PW_FAULT_COUNT; f++)
        if (p.fault_mask & (1u << f))
            p.faults[p.nfaults++] = (pw_fault)f;

    if (pw_stage_init(&p.st) != PW_OK)
        return PW_EXIT_FAILURE;
    p.in_flight_gauge = pw_gauge_register(p.st.registry, "pipeline_records_in_flight",
                                          "Records sent and not yet acknowledged by the sink.");
    p.retried = pw_counter_register(p.st.registry, "pipeline_records_retried_total",
                                    "Records re-sent after --ack-timeout without an ack.");
    uint64_t cap = 1;
    while (cap < p.max_in_flight)
        cap <<= 1;
    p.window = calloc(cap, sizeof *p.window);
    p.resend = malloc(cap * sizeof *p.resend);
    p.mask = cap - 1;
    p.run = (uint64_t)(pw_wall_seconds() * 1e6);
    int exit_code = PW_EXIT_FAILURE;
    if (!p.in_flight_gauge || !p.retried || !p.window || !p.resend) {
        PW_LOG(PW_LOG_ERROR, "out of memory", PW_UINT("max_in_flight", p.max_in_flight));
    } else if (open_sockets(&p) == PW_OK && pw_stage_start(&p.st) == PW_OK) {
        PW_LOG(PW_LOG_INFO, "producing", PW_STR("bind", p.bind), PW_STR("ack", p.ack),
               PW_STR("id", p.id), PW_UINT("run", p.run), PW_UINT("rate", p.rate),
               PW_UINT("count", p.count), PW_DBL("fault_rate", p.fault_rate));
        exit_code = run(&p);
    }
    pw_socket_close(p.out);
    pw_socket_close(p.acks);
    pw_transport_close(p.ctx);
    free(p.window);
    free(p.resend);
    pw_buf_free(&p.msg);
    return pw_stage_finish(&p.st, exit_code);
}

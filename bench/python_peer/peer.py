#!/usr/bin/python3
"""The pipewatch pipeline written plainly in Python: what a user would
otherwise write with pyzmq, json and prometheus_client (figure 4 of
`./pipeline bench`).

    peer.py producer --bind EP --done EP --count N [--pushgateway URL]
    peer.py worker   --in EP --out EP --instance NAME [--pushgateway URL]
    peer.py sink     --bind EP --done EP --count N --out FILE [--pushgateway URL]

Same topology and same work per record as the C stages: the producer makes
the same JSON records, a worker json.loads each one, validates the same
fields and ranges, adds processed_at, worker and amount_cents, json.dumps
it and pushes it on; the sink appends lines to a file (fdatasync every
20 ms, like `sink --fsync batch`) or to the dead-letter file.  Each stage
keeps prometheus_client Counter/Gauge/Histogram metrics and pushes them
with push_to_gateway from a thread.

Differences, on purpose (a plain script): one record per ZeroMQ message,
no acknowledgements, re-sends or dedup (at-most-once).  The sink tells the
producer once it has written --count records; the producer prints its
measurement (first send to "done") as a JSON line, like raw_passthrough.
Debian's python3-zmq and python3-prometheus-client; run with /usr/bin/python3.
"""
import argparse
import json
import os
import random
import re
import signal
import sys
import threading
import time

import zmq
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, push_to_gateway

DURATION_BUCKETS = (0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
TRACE_ID = re.compile(r"[0-9a-f]{32}")
REQUIRED = ("id", "seq", "producer", "ts", "trace_id", "kind", "payload")


class Metrics:
    def __init__(self, stage, instance, gateway, interval):
        self.registry = CollectorRegistry()
        self.processed = Counter("pipeline_records_processed", "Records handled.", registry=self.registry)
        self.errors = Counter("pipeline_errors", "Failures by reason.", ["reason"], registry=self.registry)
        self.lag = Gauge("pipeline_lag_seconds", "Now minus newest ts.", registry=self.registry)
        self.duration = Histogram("pipeline_record_duration_seconds", "Time in stage.",
                                  buckets=DURATION_BUCKETS, registry=self.registry)
        self.up = Gauge("pipeline_stage_up", "1 while running.", registry=self.registry)
        self.up.set(1)
        self.gateway, self.interval = gateway, interval
        self.key = {"stage": stage, "instance": instance}
        self.stopping = threading.Event()
        if gateway:
            self.thread = threading.Thread(target=self._pusher, daemon=True)
            self.thread.start()

    def push(self):
        try:
            push_to_gateway(self.gateway, job="pypeer", registry=self.registry, grouping_key=self.key,
                            timeout=2)
        except Exception:
            self.errors.labels("push_failed").inc()

    def _pusher(self):
        while not self.stopping.wait(self.interval):
            self.push()

    def stop(self):
        self.up.set(0)
        self.stopping.set()
        if self.gateway:
            self.push()


def validate(rec):
    """None when the record is valid, else the reason (common/record.h's rules)."""
    if not isinstance(rec, dict):
        return "invalid_value"
    for k in REQUIRED:
        if k not in rec:
            return "missing_field"
    p = rec["payload"]
    if not isinstance(p, dict):
        return "invalid_value"
    for k in ("user_id", "amount", "items"):
        if k not in p:
            return "missing_field"

    def is_int(v):
        return isinstance(v, int) and not isinstance(v, bool)

    def is_num(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    ok = (isinstance(rec["id"], str) and 1 <= len(rec["id"].encode()) <= 128
          and is_int(rec["seq"]) and rec["seq"] >= 0
          and isinstance(rec["producer"], str) and 1 <= len(rec["producer"].encode()) <= 64
          and is_num(rec["ts"]) and 0 < rec["ts"] < 4102444800
          and isinstance(rec["trace_id"], str) and TRACE_ID.fullmatch(rec["trace_id"])
          and isinstance(rec["kind"], str) and 1 <= len(rec["kind"].encode()) <= 32
          and is_int(p["user_id"]) and p["user_id"] >= 0
          and is_num(p["amount"]) and p["amount"] >= 0
          and is_int(p["items"]) and 0 <= p["items"] <= 10000)
    if not ok:
        return "invalid_value"
    if p["amount"] * 100 >= 2 ** 53:
        return "processing"
    return None


def producer(a):
    ctx = zmq.Context()
    out = ctx.socket(zmq.PUSH)
    out.bind(a.bind)
    done = ctx.socket(zmq.PULL)
    done.bind(a.done)
    m = Metrics("producer", a.instance, a.pushgateway, a.push_interval)
    done.recv()  # the sink is up
    rng = random.Random(1)
    t0 = time.monotonic()
    for seq in range(a.count):
        ts = time.time()
        rec = {"id": "p1-%d" % seq, "seq": seq, "producer": "p1", "ts": ts,
               "trace_id": "%032x" % rng.getrandbits(128), "kind": "order",
               "payload": {"user_id": rng.randrange(1000000), "amount": rng.randrange(10000) / 100,
                           "items": rng.randrange(20)}}
        out.send(json.dumps(rec, separators=(",", ":")).encode())
        m.processed.inc()
        m.lag.set(time.time() - ts)
    done.recv()
    secs = time.monotonic() - t0
    print(json.dumps({"records": a.count, "seconds": secs, "records_per_s": a.count / secs}), flush=True)
    m.stop()


def worker(a):
    ctx = zmq.Context()
    inp = ctx.socket(zmq.PULL)
    inp.connect(a.inp)
    inp.setsockopt(zmq.RCVTIMEO, 200)  # to notice SIGTERM
    out = ctx.socket(zmq.PUSH)
    out.connect(a.out)
    m = Metrics("worker", a.instance, a.pushgateway, a.push_interval)
    running = [True]

    def stop(*_):
        running[0] = False
    signal.signal(signal.SIGTERM, stop)
    while running[0]:
        try:
            raw = inp.recv()
        except zmq.Again:
            continue
        t0 = time.perf_counter()
        try:
            rec = json.loads(raw)
            reason = validate(rec)
        except (ValueError, UnicodeDecodeError):
            rec, reason = None, "malformed_json"
        now = time.time()
        if reason is None:
            rec["processed_at"] = now
            rec["worker"] = a.instance
            rec["amount_cents"] = round(rec["payload"]["amount"] * 100)
            out.send_multipart([b"out", repr(rec["ts"]).encode(), json.dumps(rec, separators=(",", ":")).encode()])
            m.processed.inc()
            m.lag.set(now - rec["ts"])
        else:
            dead = {"dead_at": now, "reason": reason, "worker": a.instance,
                    "raw": raw.decode("utf-8", "replace")}
            out.send_multipart([b"dead", b"0", json.dumps(dead).encode()])
            m.errors.labels(reason).inc()
        m.duration.observe(time.perf_counter() - t0)
    m.stop()


def sink(a):
    ctx = zmq.Context()
    inp = ctx.socket(zmq.PULL)
    inp.bind(a.bind)
    done = ctx.socket(zmq.PUSH)
    done.connect(a.done)
    m = Metrics("sink", a.instance, a.pushgateway, a.push_interval)
    e2e = Histogram("pipeline_end_to_end_latency_seconds", "Write time minus ts.",
                    buckets=LATENCY_BUCKETS, registry=m.registry)
    out = open(a.file, "ab")
    dead = open(a.file + ".dead", "ab")
    done.send(b"ready")
    next_sync = time.monotonic() + 0.02
    for _ in range(a.count):
        kind, ts, line = inp.recv_multipart()
        if kind == b"out":
            out.write(line + b"\n")
            m.processed.inc()
            e2e.observe(time.time() - float(ts))
        else:
            dead.write(line + b"\n")
            m.errors.labels("dead_lettered").inc()
        if time.monotonic() >= next_sync:
            for f in (out, dead):
                f.flush()
                os.fdatasync(f.fileno())
            next_sync = time.monotonic() + 0.02
    for f in (out, dead):
        f.flush()
        os.fdatasync(f.fileno())
    done.send(b"done")
    m.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=("producer", "worker", "sink"))
    ap.add_argument("--bind")
    ap.add_argument("--in", dest="inp")
    ap.add_argument("--out")
    ap.add_argument("--done")
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--instance", default="py")
    ap.add_argument("--pushgateway")
    ap.add_argument("--push-interval", type=float, default=1.0)
    a = ap.parse_args()
    if a.mode == "sink":
        a.file = a.out
    {"producer": producer, "worker": worker, "sink": sink}[a.mode](a)
    return 0


if __name__ == "__main__":
    sys.exit(main())

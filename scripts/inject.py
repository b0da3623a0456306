#!/usr/bin/env python3
"""inject: send faulty records into a running demo (what `./pipeline inject` runs).

  inject.py --producer PATH --kind KIND[,KIND...]|all --count N [--rate R]
            [--gateway URL] [--job JOB] [--bind EP] [--ack EP]

Runs a second producer (--fault-rate 1) that binds the injection endpoint the
demo's workers also read, and waits until the sink has acknowledged every
record.  Before that it checks that a pipeline is there to take them: the
sink's ack endpoint must accept connections, else it says so and exits 1
instead of waiting for ever.  It prints what it does, and at the end a
summary: records sent and acknowledged, and the records the workers
rejected by reason over the run (from the Pushgateway: the change of
pipeline_errors_total{stage="worker"} by reason, which is the fault kind;
`poison` shows as `processing`).  Exit 0 when every record was acknowledged,
1 otherwise, 2 for a bad flag (checked before anything starts).
Standard library only.
"""
import argparse
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pipeline_status import parse_samples  # noqa: E402

KINDS = ("malformed_json", "missing_field", "invalid_value", "oversize", "invalid_utf8", "empty", "poison")


def usage_error(flag, why):
    print("pipeline inject: %s: %s" % (flag, why), file=sys.stderr)
    print("usage: ./pipeline inject --kind KIND[,KIND...]|all --count N [--rate R]", file=sys.stderr)
    sys.exit(2)


class Parser(argparse.ArgumentParser):
    def error(self, message):
        req = re.search(r"arguments are required: (--[\w-]+)", message)
        if req:
            usage_error(req.group(1), "required")
        m = re.search(r"argument (--[\w-]+)", message)
        why = message.split(": ", 1)[-1] if m else message
        usage_error(m.group(1) if m else "inject", "missing value" if why == "expected one argument" else why)


def reachable(endpoint, timeout=1.0):
    m = re.fullmatch(r"tcp://([^:]+):(\d+)", endpoint)
    if not m:
        return True  # not a TCP endpoint: cannot check, let the producer try
    try:
        with socket.create_connection((m.group(1), int(m.group(2))), timeout=timeout):
            return True
    except OSError:
        return False


def worker_errors(gateway, job):
    """{reason: count} of pipeline_errors_total summed over the job's workers
    (push_failed left out); None when the Pushgateway cannot be read."""
    try:
        with urllib.request.urlopen(gateway.rstrip("/") + "/metrics", timeout=3) as r:
            body = r.read().decode("utf-8", "replace")
    except OSError:
        return None
    out = {}
    for name, labels, value in parse_samples(body):
        if (name == "pipeline_errors_total" and labels.get("job") == job and labels.get("stage") == "worker"
                and labels.get("reason", "push_failed") != "push_failed"):
            out[labels["reason"]] = out.get(labels["reason"], 0) + value
    return out


def main():
    ap = Parser(description=__doc__.splitlines()[0])
    ap.add_argument("--producer", required=True)
    ap.add_argument("--kind", required=True)
    ap.add_argument("--count", required=True)
    ap.add_argument("--rate", default="1000")
    ap.add_argument("--gateway", default=os.environ.get("PUSHGATEWAY_URL") or "http://127.0.0.1:9091")
    ap.add_argument("--job", default="pipeline")
    ap.add_argument("--bind", default="tcp://127.0.0.1:5556")
    ap.add_argument("--ack", default="tcp://127.0.0.1:5559")
    a = ap.parse_args()

    kinds = list(KINDS) if a.kind == "all" else a.kind.split(",")
    bad = [k for k in kinds if k not in KINDS]
    if not a.kind or bad:
        usage_error("--kind", "unknown kind %s (one of %s, or all)" % (
            ", ".join(repr(k) for k in bad) or "''", ", ".join(KINDS)))
    if not re.fullmatch(r"[1-9][0-9]*", a.count):
        usage_error("--count", "a positive whole number is required (got %r)" % a.count)
    if not re.fullmatch(r"[1-9][0-9]*", a.rate):
        usage_error("--rate", "a positive whole number of records per second is required (got %r)" % a.rate)
    count, rate = int(a.count), int(a.rate)

    if not reachable(a.ack):
        print("pipeline inject: no pipeline is running: nothing accepts connections on the sink's ack "
              "endpoint %s.  Start one with ./pipeline demo (then inject from another terminal)." % a.ack,
              file=sys.stderr)
        return 1
    before = worker_errors(a.gateway, a.job)
    pid_name = "inject-%d" % int(time.time())
    print("inject: sending %d faulty record(s) of kind %s at %d/s from producer %s on %s" % (
        count, ",".join(kinds), rate, pid_name, a.bind), flush=True)
    argv = [a.producer, "--id", pid_name, "--instance", "injector", "--job", a.job,
            "--bind", a.bind, "--ack", a.ack, "--pushgateway", a.gateway,
            "--fault-rate", "1", "--fault-kinds", ",".join(kinds), "--count", str(count),
            "--rate", str(rate), "--log-level", "warn"]
    # Sending takes count/rate seconds; acks follow within a few ack timeouts.
    deadline = time.monotonic() + count / rate + 60
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)  # polling the child's exit against a deadline
        if proc.poll() is None:
            proc.terminate()
            out, err = proc.communicate(timeout=15)
            print("pipeline inject: the records were not all acknowledged within %.0fs: is the demo's sink "
                  "still running?  (producer stopped; its last log lines follow)" % (count / rate + 60),
                  file=sys.stderr)
            for line in (out.strip().splitlines() + err.strip().splitlines())[-5:]:
                print("  " + line, file=sys.stderr)
            return 1
    except KeyboardInterrupt:
        proc.terminate()
        proc.wait(timeout=15)
        print("\npipeline inject: interrupted", file=sys.stderr)
        return 1
    out, err = proc.communicate()
    if proc.returncode != 0:
        print("pipeline inject: the injecting producer exited with status %d:" % proc.returncode, file=sys.stderr)
        for line in (err.strip().splitlines() + out.strip().splitlines())[-5:]:
            print("  " + line, file=sys.stderr)
        return 1
    print("inject: %d record(s) sent and acknowledged by the sink" % count)
    # The workers push every 2 s: give their counters a few pushes to catch up.
    after = None
    if before is not None:
        end = time.monotonic() + 8
        while time.monotonic() < end:
            after = worker_errors(a.gateway, a.job)
            if after is not None and sum(after.values()) - sum(before.values()) >= count:
                break
            time.sleep(0.5)  # waiting for the workers' next pushes, with a deadline
    if before is None or after is None:
        print("inject: (no per-reason summary: cannot read the Pushgateway at %s)" % a.gateway)
        return 0
    delta = {r: after.get(r, 0) - before.get(r, 0) for r in after}
    delta = {r: int(v) for r, v in delta.items() if v > 0}
    total = sum(delta.values())
    print("inject: the workers rejected %d record(s) meanwhile, by reason: %s" % (
        total, ", ".join("%s %d" % kv for kv in sorted(delta.items())) or "none yet"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

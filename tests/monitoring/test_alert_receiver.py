"""The demo's alert receiver (scripts/alert_receiver.py): an Alertmanager
webhook (version 4) notification to /pipewatch/page prints one line per
alert (severity, FIRING/RESOLVED, alert name, stage/instance, job, summary,
runbook link) on its stdout and in its log; /runbook.md serves
docs/runbook.md (the base of every alert's runbook_url in the demo); a body
that is not JSON is refused with 400.  Real process on a free loopback
port, stopped by PID."""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url, data):
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def main():
    tmp = tempfile.mkdtemp(prefix="pipewatch-alert-receiver-")
    log_path = os.path.join(tmp, "alerts.log")
    out_path = os.path.join(tmp, "stdout")
    for _ in range(5):
        port = free_port()
        proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "scripts", "alert_receiver.py"),
                                 "--listen", "127.0.0.1:%d" % port, "--log", log_path],
                                stdout=open(out_path, "w"), stderr=subprocess.STDOUT)
        base = "http://127.0.0.1:%d" % port
        deadline = time.monotonic() + 10
        ready = False
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(base + "/-/ready", timeout=1) as r:
                    ready = r.status == 200
                    break
            except OSError:
                time.sleep(0.05)
        if ready:
            break
        proc.kill()
        proc.wait()
    else:
        fail("the receiver did not start")
    try:
        body = {"version": "4", "status": "firing", "receiver": "page", "alerts": [
            {"status": "firing", "labels": {"alertname": "PipelineStageDown", "severity": "page", "job": "pipeline",
                                            "stage": "worker", "instance": "worker-1"},
             "annotations": {"summary": "pipeline: stage worker instance worker-1 stopped pushing metrics",
                             "runbook_url": "http://127.0.0.1:5001/runbook.md#pipelinestagedown"}},
            {"status": "resolved", "labels": {"alertname": "PipelineLagHigh", "severity": "ticket", "job": "pipeline",
                                              "stage": "producer", "instance": "producer-1"},
             "annotations": {"summary": "s2", "runbook_url": "u2"}}]}
        if post(base + "/pipewatch/page", json.dumps(body).encode()) != 200:
            fail("the notification was not accepted")
        if post(base + "/pipewatch/ticket", b"not json") != 400:
            fail("a body that is not JSON was not refused with 400")
        want = ["ALERT page FIRING PipelineStageDown worker/worker-1 (job pipeline): pipeline: stage worker instance "
                "worker-1 stopped pushing metrics  runbook: http://127.0.0.1:5001/runbook.md#pipelinestagedown",
                "ALERT ticket RESOLVED PipelineLagHigh producer/producer-1 (job pipeline): s2  runbook: u2"]
        deadline = time.monotonic() + 10
        while True:
            out = open(out_path).read()
            logged = open(log_path).read() if os.path.exists(log_path) else ""
            if all(w in out and w in logged for w in want):
                break
            if time.monotonic() > deadline:
                fail("printed %r, logged %r; want lines %r" % (out, logged, want))
            time.sleep(0.05)
        with urllib.request.urlopen(base + "/runbook.md", timeout=5) as r:
            served = r.read().decode()
        if served != open(os.path.join(ROOT, "docs", "runbook.md"), encoding="utf-8").read():
            fail("/runbook.md does not serve docs/runbook.md")
        print("PASS: %s" % " | ".join(out.strip().splitlines()))
        shutil.rmtree(tmp, ignore_errors=True)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""alert_receiver: the demo's Alertmanager webhook receiver (stdlib only).

  alert_receiver.py [--listen 127.0.0.1:5001] [--log FILE] [--runbook docs/runbook.md]

alertmanager/alertmanager.yml posts pages to /pipewatch/page and tickets to
/pipewatch/ticket on 127.0.0.1:5001.  This prints one line per alert of each
notification, on stdout (the demo's terminal) and appended to --log:

  ALERT page FIRING PipelineStageDown worker/worker-1 (job pipeline): <summary>  runbook: <url>

and serves the runbook at /runbook.md, the base the demo's Prometheus puts
in front of every alert's runbook_url (external label runbook_base), so a
notification's link opens.  Binds loopback only.
"""
import argparse
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def alert_lines(receiver, body):
    """One line per alert of an Alertmanager webhook (version 4) body."""
    out = []
    for a in body.get("alerts", []):
        labels, ann = a.get("labels", {}), a.get("annotations", {})
        where = "/".join(x for x in (labels.get("stage"), labels.get("instance")) if x) or labels.get("sloth_slo", "-")
        out.append("ALERT %s %s %s %s (job %s): %s  runbook: %s" % (
            labels.get("severity", receiver), a.get("status", "?").upper(), labels.get("alertname", "?"),
            where, labels.get("job", "-"), ann.get("summary", ""), ann.get("runbook_url", "-")))
    return out


class Handler(BaseHTTPRequestHandler):
    server_version = "pipewatch-alert-receiver"

    def log_message(self, fmt, *args):  # no per-request access log on the terminal
        pass

    def emit(self, line):
        stamp = time.strftime("%H:%M:%S")
        text = "%s %s" % (stamp, line)
        # The demo's status line is redrawn in place on a terminal: start on a
        # clean line so the alert stays readable above it.
        sys.stdout.write(("\r\033[K" if sys.stdout.isatty() else "") + text + "\n")
        sys.stdout.flush()
        if self.server.log_path:
            with open(self.server.log_path, "a", encoding="utf-8") as f:
                f.write(text + "\n")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(min(length, 1 << 20))
        receiver = self.path.rstrip("/").rsplit("/", 1)[-1] or "webhook"
        try:
            body = json.loads(raw)
        except ValueError:
            self.send_response(400)
            self.end_headers()
            self.emit("alert receiver: a POST to %s that is not JSON (%d bytes)" % (self.path, len(raw)))
            return
        for line in alert_lines(receiver, body):
            self.emit(line)
        self.send_response(200)
        self.end_headers()

    def do_GET(self):
        if self.path.split("#")[0] in ("/runbook.md", "/runbook"):
            data = open(self.server.runbook, "rb").read()
            self.send_response(200)
            self.send_header("Content-Type", "text/markdown; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if self.path == "/-/ready":
            self.send_response(200)
            self.end_headers()
            return
        self.send_response(404)
        self.end_headers()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--listen", default="127.0.0.1:5001")
    ap.add_argument("--log", default="")
    ap.add_argument("--runbook", default=os.path.join(ROOT, "docs", "runbook.md"))
    a = ap.parse_args()
    host, _, port = a.listen.rpartition(":")
    if host not in ("127.0.0.1", "localhost"):
        ap.error("--listen: loopback only (127.0.0.1:PORT)")
    srv = ThreadingHTTPServer((host, int(port)), Handler)
    srv.log_path = a.log
    srv.runbook = a.runbook
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

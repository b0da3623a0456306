#!/usr/bin/env python3
"""pipeline_status: what the Pushgateway knows about the pipeline's stages.

  pipeline_status.py [--gateway URL] [--job JOB]          print a table
  pipeline_status.py --watch SECONDS [--duration S] ...   live one-line status

The table has one row per stage instance: processed, errors, lag, in-flight
(producer), up, and the age of its last push.  The live line shows records/s
per stage (from the change in processed counters between two reads), the
worst lag, in-flight records and errors; on a terminal it updates in place.
Standard library only.
"""
import argparse
import os
import re
import sys
import time
import urllib.request

# The Prometheus text exposition format, as the Pushgateway's /metrics
# serves it.  parse_samples is the one parser of it in the repository: the
# integration tests (tests/integration/pwtest.py) and bench/run import it.
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?[0-9]+)?$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
ESCAPE = re.compile(r'\\(.)')


def unescape(value):
    """A label value as written between the quotes: \\\\, \\" and \\n escaped."""
    return ESCAPE.sub(lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def parse_samples(body):
    """Yields (name, {label: value}, value) for every sample line of a
    text-format body; comments, blank lines and what does not parse are skipped."""
    for line in body.splitlines():
        if not line or line[0] == "#":
            continue
        m = SAMPLE.match(line)
        if not m:
            continue
        labels = {k: unescape(v) for k, v in LABEL.findall(m.group(2) or "")}
        yield m.group(1), labels, float(m.group(3))


def scrape(url):
    with urllib.request.urlopen(url.rstrip("/") + "/metrics", timeout=3) as r:
        body = r.read().decode("utf-8", "replace")
    groups = {}
    for name, labels, value in parse_samples(body):
        if "stage" not in labels:
            continue
        key = (labels.get("job", ""), labels["stage"], labels.get("instance", ""))
        g = groups.setdefault(key, {})
        if name == "pipeline_errors_total":
            g["errors"] = g.get("errors", 0) + value
        else:
            g[name] = value
    return groups


ORDER = {"producer": 0, "worker": 1, "sink": 2}


def rows(groups, job):
    out = []
    for (j, stage, inst), g in sorted(groups.items(), key=lambda kv: (kv[0][0], ORDER.get(kv[0][1], 9), kv[0][2])):
        if job and j != job:
            continue
        out.append((j, stage, inst, g))
    return out


def fmt_age(t):
    if not t:
        return "never"
    return "%.1fs" % max(0.0, time.time() - t)


def table(url, job):
    groups = scrape(url)
    r = rows(groups, job)
    if not r:
        print("no pipeline stages at %s%s" % (url, " for job " + job if job else ""))
        return 1
    hdr = ("JOB", "STAGE", "INSTANCE", "PROCESSED", "ERRORS", "LAG", "IN_FLIGHT", "UP", "LAST_PUSH")
    lines = [hdr]
    for j, stage, inst, g in r:
        lines.append((j, stage, inst, "%d" % g.get("pipeline_records_processed_total", 0),
                      "%d" % g.get("errors", 0), "%.3fs" % g.get("pipeline_lag_seconds", 0),
                      "%d" % g["pipeline_records_in_flight"] if "pipeline_records_in_flight" in g else "-",
                      "%d" % g.get("pipeline_stage_up", 0), fmt_age(g.get("push_time_seconds"))))
    widths = [max(len(l[i]) for l in lines) for i in range(len(hdr))]
    for l in lines:
        print("  ".join(c.ljust(w) for c, w in zip(l, widths)).rstrip())
    return 0


def watch(url, job, interval, duration):
    """Live line.  Rates come from the change of each group's processed
    counter between two of its pushes (push_time_seconds), so they are
    right whatever the relation of our polling to the push interval."""
    tty = sys.stdout.isatty()
    last = {}    # group -> (push_time, processed)
    rates = {}   # group -> records/s between its last two pushes
    end = time.monotonic() + duration if duration else None
    while end is None or time.monotonic() < end:
        try:
            groups = scrape(url)
            per_stage = {}
            lag = 0.0
            errors = 0
            in_flight = 0
            for j, stage, inst, g in rows(groups, job):
                key = (j, stage, inst)
                if not g.get("pipeline_stage_up"):
                    rates.pop(key, None)
                    continue
                pushed = g.get("push_time_seconds", 0)
                processed = g.get("pipeline_records_processed_total", 0)
                if key in last and pushed > last[key][0]:
                    rates[key] = max(0.0, (processed - last[key][1]) / (pushed - last[key][0]))
                if key not in last or pushed > last[key][0]:
                    last[key] = (pushed, processed)
                if key in rates:
                    per_stage[stage] = per_stage.get(stage, 0) + rates[key]
                lag = max(lag, g.get("pipeline_lag_seconds", 0))
                errors += g.get("errors", 0)
                in_flight += g.get("pipeline_records_in_flight", 0)
            parts = ["%s %.0f/s" % (st, per_stage[st]) for st in ("producer", "worker", "sink") if st in per_stage]
            line = "%s | lag %.3fs | in flight %d | errors %d" % (
                "  ".join(parts) or "waiting for pushes", lag, in_flight, errors)
        except Exception as e:  # the gateway may be starting or gone
            line = "pushgateway not answering (%s)" % e.__class__.__name__
        if tty:
            sys.stdout.write("\r\033[K" + line)
        else:
            sys.stdout.write(line + "\n")
        sys.stdout.flush()
        time.sleep(interval)
    if tty:
        sys.stdout.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gateway", default=os.environ.get("PUSHGATEWAY_URL", "http://127.0.0.1:9091"))
    ap.add_argument("--job", default="")
    ap.add_argument("--watch", type=float, default=0, metavar="SECONDS")
    ap.add_argument("--duration", type=float, default=0)
    a = ap.parse_args()
    try:
        if a.watch:
            watch(a.gateway, a.job, a.watch, a.duration)
            return 0
        return table(a.gateway, a.job)
    except KeyboardInterrupt:
        return 0
    except OSError as e:
        print("pipeline status: cannot read %s: %s" % (a.gateway, e), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

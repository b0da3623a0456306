#!/usr/bin/env python3
"""pipeline_status: what the Pushgateway knows about the pipeline's stages.

  pipeline_status.py [--gateway URL] [--job JOB] [--sample S]  print a table
  pipeline_status.py --watch SECONDS [--duration S] ...        live one-line status

The table has one row per stage instance: its state, records/s, processed,
errors, freshness (pipeline_lag_seconds), in flight and oldest unacked age
(producer), and the age of its last push.  The live line shows records/s per
stage, the end-to-end freshness, the oldest unacked age, in-flight records
and errors; on a terminal it updates in place.

State: UP while the stage says it runs (pipeline_stage_up 1) and pushed
within --stale seconds (15, the threshold of PipelineStageDown and of the
recording rule job_stage_instance:pipeline_stage_running:bool: 7 pushes of
the default 2 s missed); DOWN when it says it runs but stopped pushing
(crashed, killed, hung: the Pushgateway keeps its last values for ever);
STOPPED after a clean exit (it pushed pipeline_stage_up 0).  The rate, the
freshness and the other gauges of a stage that is not UP are shown as "?":
its last values are not current.  Rates come from the change of a group's
processed counter between two of its pushes: the table reads the gateway
twice, --sample seconds apart (default 2.5, a bit more than one push); the
live line between its refreshes.
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

# Seconds without a push after which a stage that says it runs is DOWN.
STALE_SECONDS = 15.0


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
        elif name == "pipeline_records_retried_total":
            g[name] = g.get(name, 0) + value
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


def push_age(g, now=None):
    t = g.get("push_time_seconds")
    if not t:
        return None
    return max(0.0, (now or time.time()) - t)


def state(g, stale=STALE_SECONDS, now=None):
    """UP, DOWN (says it runs, stopped pushing) or STOPPED (clean exit)."""
    if not g.get("pipeline_stage_up"):
        return "STOPPED"
    age = push_age(g, now)
    if age is None or age > stale:
        return "DOWN"
    return "UP"


def fmt_age(g):
    age = push_age(g)
    return "never" if age is None else "%.1fs" % age


def rate_between(old, new):
    """records/s between two reads of one group, from the change of its
    processed counter between two of its pushes; None when it did not push
    in between (or restarted: the counter went down)."""
    if not old or not new:
        return None
    t0, t1 = old.get("push_time_seconds", 0), new.get("push_time_seconds", 0)
    p0 = old.get("pipeline_records_processed_total", 0)
    p1 = new.get("pipeline_records_processed_total", 0)
    if t1 <= t0 or p1 < p0:
        return None
    return (p1 - p0) / (t1 - t0)


def table(url, job, sample, stale):
    first = scrape(url) if sample > 0 else {}
    if sample > 0:
        time.sleep(sample)  # the interval between the two reads a rate needs, not a synchronisation
    groups = scrape(url)
    r = rows(groups, job)
    if not r:
        print("no pipeline stages at %s%s" % (url, " for job " + job if job else ""))
        return 1
    hdr = ("JOB", "STAGE", "INSTANCE", "STATE", "RATE", "PROCESSED", "ERRORS", "FRESHNESS", "IN_FLIGHT",
           "OLDEST_UNACKED", "LAST_PUSH")
    lines = [hdr]
    now = time.time()
    down = 0
    for j, stage, inst, g in r:
        st = state(g, stale, now)
        up = st == "UP"
        down += st == "DOWN"
        rate = rate_between(first.get((j, stage, inst)), g) if up else None
        producer_only = lambda name, fmt: ("-" if name not in g else (fmt % g[name] if up else "?"))
        lines.append((j, stage, inst, st,
                      "%.0f/s" % rate if rate is not None else ("?" if st == "DOWN" or sample > 0 else "-"),
                      "%d" % g.get("pipeline_records_processed_total", 0),
                      "%d" % g.get("errors", 0),
                      ("%.3fs" % g.get("pipeline_lag_seconds", 0)) if up else "?",
                      producer_only("pipeline_records_in_flight", "%d"),
                      producer_only("pipeline_oldest_unacked_age_seconds", "%.3fs"),
                      fmt_age(g)))
    widths = [max(len(l[i]) for l in lines) for i in range(len(hdr))]
    for l in lines:
        print("  ".join(c.ljust(w) for c, w in zip(l, widths)).rstrip())
    if down:
        print("%d stage instance(s) DOWN: pipeline_stage_up is 1 but no push for more than %.0fs "
              "(crashed, killed or hung); their last values are not current" % (down, stale))
    return 0


def status_line(groups, job, last, rates, stale):
    """One live line; `last` and `rates` carry state between calls."""
    per_stage = {}
    down = []
    freshness = 0.0
    oldest = 0.0
    errors = 0
    in_flight = 0
    now = time.time()
    for j, stage, inst, g in rows(groups, job):
        key = (j, stage, inst)
        st = state(g, stale, now)
        if st != "UP":
            rates.pop(key, None)
            last.pop(key, None)
            if st == "DOWN":
                down.append(inst)
            continue
        r = rate_between(last.get(key), g)
        if r is not None:
            rates[key] = r
        if key not in last or g.get("push_time_seconds", 0) > last[key].get("push_time_seconds", 0):
            last[key] = g
        if key in rates:
            per_stage[stage] = per_stage.get(stage, 0) + rates[key]
        freshness = max(freshness, g.get("pipeline_lag_seconds", 0))
        oldest = max(oldest, g.get("pipeline_oldest_unacked_age_seconds", 0))
        errors += g.get("errors", 0)
        in_flight += g.get("pipeline_records_in_flight", 0)
    parts = ["%s %.0f/s" % (st, per_stage[st]) for st in ("producer", "worker", "sink") if st in per_stage]
    if down:
        parts.append("DOWN: %s (rate ?)" % ", ".join(sorted(down)))
    return "%s | freshness %.3fs | oldest unacked %.3fs | in flight %d | errors %d" % (
        "  ".join(parts) or "waiting for pushes", freshness, oldest, in_flight, errors)


def watch(url, job, interval, duration, stale):
    """Live line.  Rates come from the change of each group's processed
    counter between two of its pushes (push_time_seconds), so they are
    right whatever the relation of our polling to the push interval."""
    tty = sys.stdout.isatty()
    last = {}    # group -> its samples at its last push we saw
    rates = {}   # group -> records/s between its last two pushes
    end = time.monotonic() + duration if duration else None
    while end is None or time.monotonic() < end:
        try:
            line = status_line(scrape(url), job, last, rates, stale)
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
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--gateway", default=os.environ.get("PUSHGATEWAY_URL", "http://127.0.0.1:9091"))
    ap.add_argument("--job", default="")
    ap.add_argument("--watch", type=float, default=0, metavar="SECONDS")
    ap.add_argument("--duration", type=float, default=0)
    ap.add_argument("--sample", type=float, default=2.5, metavar="SECONDS",
                    help="table: seconds between the two reads a rate needs (0: no rate)")
    ap.add_argument("--stale", type=float, default=STALE_SECONDS, metavar="SECONDS",
                    help="a stage that says it runs is DOWN after this long without a push (default 15)")
    a = ap.parse_args()
    try:
        if a.watch:
            watch(a.gateway, a.job, a.watch, a.duration, a.stale)
            return 0
        return table(a.gateway, a.job, a.sample, a.stale)
    except KeyboardInterrupt:
        return 0
    except OSError as e:
        print("pipeline status: cannot read %s: %s" % (a.gateway, e), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

"""A slow worker beside a fast one cannot make the sink look caught up
when it is not: the sink's pipeline_lag_seconds (freshness: now - the
oldest event time still missing below records it already wrote) agrees with
the hole that really is in its output file, and the slow worker's backlog
shows where it is, on the slow worker.

The slow worker (--delay-ms 2000) starts first and takes its first credit
of records; then a fast worker joins and the sink writes newer records
through it.  With credit-based dispatch the producer re-sends what the
slow worker holds after its adaptive ack timeout (to the fast worker), so
the records are written and the hole at the sink closes within about that
timeout: the truth the sink must report is "caught up", not the slow
worker's stale copies.  Checked while it runs, every ~0.25 s:

  * the slow worker's own freshness (its oldest held record) climbs to
    several seconds: its backlog is visible (the issue saw the old
    newest-record lag hide it);
  * the producer re-sends those records (pipeline_records_retried_total
    {cause="ack_timeout"}) and its end-to-end freshness stays low;
  * the sink's pushed freshness matches an oracle computed from the output
    file (now - ts of the oldest seq missing below the newest seq written,
    0 when none), within a push interval and the file's read lag; it is
    never the ~1.8e9 s of a sink without a watermark.
"""
import json
import os
import time

from pwtest import (Pipeline, Pushgateway, check, check_no_sanitizer_reports, log, sum_samples, tool_or_skip,
                    wait_for)

PUSH = 0.5
RATE = 100
DELAY_MS = 2000
WATCH_SECONDS = 12
TOLERANCE = 1.5  # a push interval, the file read, the sink's write batching


def file_hole(path, producer, now):
    """now - ts of the oldest seq of `producer` missing below the newest
    written one (ts taken from its nearest written neighbour), or 0."""
    seqs = {}
    try:
        with open(path, "rb") as f:
            for line in f:
                if not line.endswith(b"\n"):
                    break
                try:
                    r = json.loads(line)
                except ValueError:
                    continue
                if r.get("producer") == producer:
                    seqs[r["seq"]] = r["ts"]
    except FileNotFoundError:
        return 0.0, 0
    if not seqs:
        return 0.0, 0
    top = max(seqs)
    for s in range(0, top):
        if s not in seqs:
            above = next(seqs[t] for t in range(s + 1, top + 1) if t in seqs)
            return max(0.0, now - above), len(seqs)
    return 0.0, len(seqs)


def main():
    tool_or_skip("prometheus-pushgateway")
    pipe = Pipeline("lag-slow-worker", push_interval=str(PUSH))
    gw = None
    ok = False
    try:
        gw = Pushgateway(pipe.tmp)
        pipe.gateway_url = gw.url
        pipe.start_sink()
        slow = pipe.start_worker("worker-slow", "--delay-ms", str(DELAY_MS))
        t_start = time.monotonic()
        pipe.start_producer("--rate", str(RATE))
        wait_for(lambda: (gw.value("pipeline_lag_seconds", job=pipe.job, instance="worker-slow") or 0) >= 0.5,
                 30, "the slow worker holding records", interval=0.1)
        pipe.start_worker("worker-fast")
        t0 = time.monotonic()
        rows = []
        while time.monotonic() - t0 < WATCH_SECONDS:
            s = gw.samples()
            now = time.time()
            row = {i: sum_samples(s, "pipeline_lag_seconds", job=pipe.job, instance=i)
                   for i in ("sink", "worker-slow", "worker-fast", "producer")}
            row["retried"] = sum_samples(s, "pipeline_records_retried_total", job=pipe.job, cause="ack_timeout")
            row["oracle"], row["written"] = file_hole(pipe.out, "p1", now)
            row["t"] = time.monotonic() - t0
            rows.append(row)
            # No record is older than the run: a larger value is not a freshness.
            age = time.monotonic() - t_start + 1
            check(row["sink"] is None or row["sink"] <= age,
                  "the sink pushed pipeline_lag_seconds %.1f s, more than the %.0f s the pipeline has existed: "
                  "not a freshness (is the sink's watermark in this build?)" % (row["sink"], age))
            time.sleep(0.25)  # sampling period of the watch, not a synchronisation
        check(slow.alive(), "the slow worker died")
        def show(v):
            return "-" if v is None else "%.2f" % v
        for r in rows[::8]:
            log("t=%4.1fs sink %s (file: %.2f) slow %s fast %s producer %s re-sent %s written %d"
                % (r["t"], show(r["sink"]), r["oracle"], show(r["worker-slow"]), show(r["worker-fast"]),
                   show(r["producer"]), r["retried"], r["written"]))
        full = [r for r in rows if None not in (r["sink"], r["worker-slow"], r["producer"], r["retried"])]
        check(len(full) >= WATCH_SECONDS, "too few complete samples: %s" % rows[-3:])
        slow_max = max(r["worker-slow"] for r in full)
        check(slow_max >= 4, "the slow worker's freshness only reached %.2f s: its backlog is not visible"
              % slow_max)
        check(full[-1]["retried"] >= 1, "nothing was re-sent on ack timeout: %s" % full[-1])
        check(full[-1]["written"] > rows[0]["written"] + RATE * (WATCH_SECONDS - 4),
              "the sink wrote too little meanwhile: %d -> %d" % (rows[0]["written"], full[-1]["written"]))
        late = [r for r in full if r["t"] >= 3]
        check(max(r["producer"] for r in late) < 2,
              "the producer's freshness reached %.2f s although the held records were re-sent"
              % max(r["producer"] for r in late))
        bad = [r for r in full if abs(r["sink"] - r["oracle"]) > TOLERANCE]
        check(not bad, "the sink's freshness disagrees with the hole in its output file (tolerance %.1f s): %s"
              % (TOLERANCE, [(round(r["t"], 1), round(r["sink"], 2), round(r["oracle"], 2)) for r in bad[:5]]))
        log("slow worker's freshness up to %.1f s; sink's freshness up to %.2f s, file hole up to %.2f s; "
            "%d records re-sent on ack timeout" % (slow_max, max(r["sink"] for r in full),
                                                  max(r["oracle"] for r in full), full[-1]["retried"]))
        check_no_sanitizer_reports(pipe.procs)
        log("PASS")
        ok = True
    finally:
        pipe.cleanup(ok)
        if gw:
            gw.stop()


if __name__ == "__main__":
    main()

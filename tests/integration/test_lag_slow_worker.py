"""A slow worker beside a fast one can no longer make the sink look caught
up: the records the slow worker holds leave a hole below what the sink has
already written, and the sink's pushed pipeline_lag_seconds (freshness:
the oldest event time still missing) reflects that backlog.

The slow worker (--delay-ms 2000) starts first and takes its initial credit
of records; then a fast worker joins and the sink keeps writing newer
records through it.  While the slow worker still holds records:

  * the sink's freshness climbs to several seconds (the issue's symptom was
    0.000-0.001 s there, with 30-47 s of backlog in the worker);
  * it tracks the slow worker's own freshness (its oldest held record),
    within a push interval plus one record's delay;
  * the fast worker is caught up and the sink keeps writing (so the hole is
    not a stall);
  * PipelineLagHigh fires for the sink in a real Prometheus with the repo's
    rules (only its `for:` shortened to 3s; the 10 s threshold is shipped).
Then, with the slow worker gone (SIGTERM: it drains what it holds), the
sink's freshness falls back under a second."""
import os
import signal
import time

from pwtest import (Pipeline, Prometheus, Pushgateway, check, log, tool_or_skip, wait_for)

PUSH = 0.5
RATE = 100
DELAY_MS = 2000


def main():
    for t in ("prometheus", "prometheus-pushgateway"):
        tool_or_skip(t)
    pipe = Pipeline("lag-slow-worker", push_interval=str(PUSH))
    gw = prom = None
    ok = False
    try:
        gw = Pushgateway(pipe.tmp)
        pipe.gateway_url = gw.url
        prom = Prometheus(pipe.tmp, gw.port, {"PipelineLagHigh": "3s"})
        wait_for(prom.rules_loaded, 30, "Prometheus to load the rules", interval=0.2)
        pipe.start_sink()
        slow = pipe.start_worker("worker-slow", "--delay-ms", str(DELAY_MS))
        t_start = time.monotonic()
        pipe.start_producer("--rate", str(RATE))

        def lag(instance):
            return gw.value("pipeline_lag_seconds", job=pipe.job, instance=instance)

        # The slow worker holds records (its freshness rises) ...
        wait_for(lambda: (lag("worker-slow") or 0) >= 1, 30, "the slow worker holding records", interval=0.1)
        # ... and a fast worker joins: the sink writes newer records through it.
        pipe.start_worker("worker-fast")
        written0 = gw.value("pipeline_records_processed_total", job=pipe.job, stage="sink") or 0
        t0 = time.monotonic()
        samples = []

        def backlog_seen():
            s = gw.samples()
            from pwtest import sum_samples
            row = {i: sum_samples(s, "pipeline_lag_seconds", job=pipe.job, instance=i)
                   for i in ("sink", "worker-slow", "worker-fast")}
            row["written"] = sum_samples(s, "pipeline_records_processed_total", job=pipe.job, stage="sink")
            if None not in row.values():
                samples.append((time.monotonic() - t0, row))
                # No record is older than the run: a larger value is not a
                # freshness (main before the sink's freshness landed pushed
                # now - (now - newest ts), i.e. ~1.8e9 s).
                age = time.monotonic() - t_start + 1
                check(row["sink"] <= age, "the sink pushed pipeline_lag_seconds %.1f s, more than the %.0f s the "
                      "pipeline has existed: not a freshness (is the sink's watermark in this build?)"
                      % (row["sink"], age))
            return row["sink"] is not None and row["sink"] >= 5 and (row["written"] or 0) > written0 + RATE
        wait_for(backlog_seen, 40, "the sink's freshness >= 5 s while the fast worker writes", interval=0.25)
        check(slow.alive(), "the slow worker died")
        t_sink, row = samples[-1]
        log("sink freshness %.2f s, slow worker %.2f s, fast worker %.3f s, %d written since the fast "
            "worker joined" % (row["sink"], row["worker-slow"], row["worker-fast"], row["written"] - written0))
        check(row["worker-fast"] < 1, "the fast worker is behind too (%.2f s): not the case under test"
              % row["worker-fast"])
        # The sink's hole is the slow worker's oldest record.
        tol = 2 * PUSH + DELAY_MS / 1000.0
        close = [(t, r) for t, r in samples if r["worker-slow"] >= 3]
        check(close, "no sample with the slow worker >= 3 s behind: %s" % samples[-5:])
        for t, r in close:
            check(abs(r["sink"] - r["worker-slow"]) <= tol,
                  "at %.1fs the sink's freshness %.2f s does not track the slow worker's %.2f s (tolerance %.1f s)"
                  % (t, r["sink"], r["worker-slow"], tol))

        alert = wait_for(lambda: prom.alerts("PipelineLagHigh", pipe.job, "firing").get(("sink", "sink")),
                         40, "PipelineLagHigh firing for the sink", interval=0.25)
        log("PipelineLagHigh firing for the sink %.1fs after the fast worker joined (value %s)"
            % (time.monotonic() - t0, alert["value"]))
        written1 = gw.value("pipeline_records_processed_total", job=pipe.job, stage="sink")
        check(written1 > written0 + 5 * RATE, "the sink wrote only %d records meanwhile: a stall, not a hole"
              % (written1 - written0))

        # The slow worker leaves: its held records are done or re-sent, the hole closes.
        slow.stop(signal.SIGTERM, timeout=120)
        wait_for(lambda: (lag("sink") or 99) < 1, 90, "the sink's freshness back under 1 s", interval=0.25)
        log("sink freshness back under 1 s after the slow worker left")
        for p in pipe.procs:
            err = p.stderr()
            check("Sanitizer" not in err and "runtime error:" not in err,
                  "%s reported a sanitizer error:\n%s" % (p.name, err[-3000:]))
        log("PASS")
        ok = True
    finally:
        pipe.cleanup(ok)
        if prom:
            prom.stop()
        if gw:
            gw.stop()


if __name__ == "__main__":
    main()

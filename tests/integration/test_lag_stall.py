"""A stall climbs: freshness and the oldest unacknowledged age grow one
second per second, and PipelineLagHigh fires in a real Prometheus with the
repository's rules, then resolves when records move again.

  (1) SIGSTOP of the sink under a running pipeline: the producer's pushed
      pipeline_lag_seconds and pipeline_oldest_unacked_age_seconds grow
      monotonically with the wall clock (within one push interval),
      PipelineLagHigh fires for the producer; SIGCONT: it resolves and the
      values fall back.
  (2) kill -9 of the only worker: the same; a new worker: it resolves.

Prometheus scrapes the test's Pushgateway every second and evaluates every
second; the only change to the shipped rules is PipelineLagHigh's `for:`
(2m -> 3s); its 10 s threshold is the shipped one.  Stages push every
0.5 s."""
import os
import signal
import time

from pwtest import (GrowthWatch, Pipeline, Prometheus, Pushgateway, check, check_no_sanitizer_reports, log,
                    tool_or_skip, wait_for)

PUSH = 0.5
RATE = 200
FOR_LAG_HIGH = "3s"


def stall_and_recover(pipe, gw, prom, what, stall, recover):
    """Runs one stall: `stall()` stops progress, `recover()` restores it."""
    watch = GrowthWatch(gw, ["pipeline_lag_seconds", "pipeline_oldest_unacked_age_seconds"],
                        job=pipe.job, stage="producer", instance="producer")
    t_stall = time.monotonic()
    stall()

    def lag_high_firing():
        watch.sample()
        return prom.alerts("PipelineLagHigh", pipe.job, "firing").get(("producer", "producer"))
    alert = wait_for(lag_high_firing, 60, "PipelineLagHigh firing for the producer (%s)" % what, interval=0.25)
    fired_after = time.monotonic() - t_stall
    # A few more pushes of the climb, then the checks.
    n = len(watch.samples)
    wait_for(lambda: watch.sample() and len(watch.samples) >= n + 3, 10, "three more pushes", interval=0.1)
    # The first push or two after the stall may still carry the last
    # in-flight record's age from before it; from the third on, both climb.
    watch.samples = watch.samples[2:]
    lag = watch.check_monotonic("pipeline_lag_seconds", PUSH)
    age = watch.check_monotonic("pipeline_oldest_unacked_age_seconds", PUSH)
    elapsed = time.monotonic() - t_stall
    last_lag, last_age = lag[-1][1], age[-1][1]
    check(elapsed - 2 * PUSH - 1 <= last_lag <= elapsed + 2 * PUSH + 1,
          "producer freshness %.2f s, %.2f s after the %s" % (last_lag, elapsed, what))
    check(last_age <= last_lag + PUSH, "oldest unacked age %.2f above freshness %.2f" % (last_age, last_lag))
    check(last_age >= elapsed - 2 * PUSH - 1, "oldest unacked age %.2f s, %.2f s after the %s"
          % (last_age, elapsed, what))
    check(float(alert["value"]) > 10, "PipelineLagHigh value %s is not above 10" % alert["value"])
    log("%s: PipelineLagHigh firing %.1fs after it (threshold 10 s + for %s); pushed freshness %s"
        % (what, fired_after, FOR_LAG_HIGH, ", ".join("%.1f" % v for _, v in lag)))
    log("%s: pushed oldest unacked age %s" % (what, ", ".join("%.1f" % v for _, v in age)))

    t_rec = time.monotonic()
    recover()

    def resolved():
        lag_now = gw.value("pipeline_lag_seconds", job=pipe.job, stage="producer")
        active = prom.alerts("PipelineLagHigh", pipe.job).get(("producer", "producer"))
        return lag_now is not None and lag_now < 2 and not active
    wait_for(resolved, 60, "PipelineLagHigh resolved and producer freshness < 2 s after the %s ended" % what,
             interval=0.25)
    log("%s: resolved %.1fs after recovery" % (what, time.monotonic() - t_rec))


def main():
    for t in ("prometheus", "prometheus-pushgateway"):
        tool_or_skip(t)
    pipe = Pipeline("lag-stall", push_interval=str(PUSH))
    gw = prom = None
    ok = False
    try:
        gw = Pushgateway(pipe.tmp)
        pipe.gateway_url = gw.url
        prom = Prometheus(pipe.tmp, gw.port, {"PipelineLagHigh": FOR_LAG_HIGH})
        wait_for(prom.rules_loaded, 30, "Prometheus to load the rules", interval=0.2)
        sink = pipe.start_sink()
        worker = pipe.start_worker("worker-1")
        pipe.start_producer("--rate", str(RATE))

        def flowing():
            r = prom.query('job_stage_instance:pipeline_records_processed:rate1m{job="%s",stage="sink"} > 0'
                           % pipe.job)
            lag = gw.value("pipeline_lag_seconds", job=pipe.job, stage="producer")
            return r and lag is not None and lag < 1
        wait_for(flowing, 60, "records reaching the sink, producer freshness < 1 s", interval=0.25)
        check(("producer", "producer") not in prom.alerts("PipelineLagHigh", pipe.job),
              "PipelineLagHigh active for the producer while flowing")

        # (1) the sink stops (SIGSTOP), then continues.
        stall_and_recover(pipe, gw, prom, "SIGSTOP of the sink",
                          lambda: os.kill(sink.pid, signal.SIGSTOP),
                          lambda: os.kill(sink.pid, signal.SIGCONT))

        # (2) the only worker dies (kill -9); a new one takes over.
        stall_and_recover(pipe, gw, prom, "kill -9 of the only worker",
                          worker.kill9, lambda: pipe.start_worker("worker-2"))
        for p in pipe.procs:
            if p.name != "worker-1":
                check(p.alive(), "%s died" % p.name)
        check_no_sanitizer_reports(pipe.procs)
        log("PASS")
        ok = True
    finally:
        for p in pipe.procs:
            if p.alive():
                try:
                    os.kill(p.pid, signal.SIGCONT)
                except OSError:
                    pass
        pipe.cleanup(ok)
        if prom:
            prom.stop()
        if gw:
            gw.stop()


if __name__ == "__main__":
    main()

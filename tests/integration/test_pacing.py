"""--rate paces the producer accurately: at 1 000 and at 50 000 records/s
the achieved rate, from the first send to the last ack, is within 5 % of
the target and never above it by more than 0.1 % (record k may not leave
before k / rate seconds; the 0.1 % covers the log clock's milliseconds).
Sizes shrink in sanitizer builds, where 50 000/s is not reachable."""
from pwtest import Pipeline, SANITIZED, check, log, send_to_ack_seconds


def paced_run(pipe, rate, count, name):
    prod = pipe.start_producer("--rate", str(rate), "--count", str(count), name=name, pid=name)
    check(prod.wait(120) == 0, "%s exited non-zero" % name)
    elapsed = send_to_ack_seconds(prod, name)
    # count records need (count - 1) / rate seconds of pacing plus the
    # pipeline's latency for the last one.
    achieved = (count - 1) / elapsed
    log("--rate %d: %d records in %.3f s = %.0f records/s (%.2f%% of target)"
        % (rate, count, elapsed, achieved, 100.0 * achieved / rate))
    check(abs(achieved - rate) / rate < 0.05, "--rate %d achieved %.0f records/s" % (rate, achieved))
    check(achieved <= rate * 1.001, "--rate %d achieved %.1f records/s: faster than paced" % (rate, achieved))


def main():
    pipe = Pipeline("pacing")
    ok = False
    try:
        pipe.start_sink()
        pipe.start_worker("worker-1")
        pipe.start_worker("worker-2")
        paced_run(pipe, 1000, 3001, "slow")
        fast_rate, fast_count = (10000, 20001) if SANITIZED else (50000, 150001)
        paced_run(pipe, fast_rate, fast_count, "fast")
        pipe.assert_exactly_once("slow", 3001)
        pipe.assert_exactly_once("fast", fast_count)
        ok = True
    finally:
        if ok:
            pipe.stop_all()
        pipe.cleanup(ok)


if __name__ == "__main__":
    main()

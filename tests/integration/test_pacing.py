"""--rate paces the producer accurately: at 1 000 and at 50 000 records/s
the achieved rate, from the first send to the last ack, is within 5 % of
the target (and never above it by more than the rounding of one record).
Sizes shrink in sanitizer builds, where 50 000/s is not reachable."""
import datetime

from pwtest import Pipeline, SANITIZED, check, log


def seconds(ts):
    return datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()


def paced_run(pipe, rate, count, name):
    prod = pipe.start_producer("--rate", str(rate), "--count", str(count), name=name, pid=name)
    check(prod.wait(120) == 0, "%s exited non-zero" % name)
    logs = prod.logs()
    first = [l for l in logs if l["msg"] == "sink is listening; sending records"][0]
    last = [l for l in logs if l["msg"] == "all records acknowledged"][0]
    elapsed = seconds(last["ts"]) - seconds(first["ts"])
    # count records need (count - 1) / rate seconds of pacing plus the
    # pipeline's latency for the last one.
    achieved = (count - 1) / elapsed
    log("--rate %d: %d records in %.3f s = %.0f records/s (%.2f%% of target)"
        % (rate, count, elapsed, achieved, 100.0 * achieved / rate))
    check(abs(achieved - rate) / rate < 0.05, "--rate %d achieved %.0f records/s" % (rate, achieved))


def main():
    pipe = Pipeline("pacing")
    ok = False
    try:
        pipe.start_sink()
        pipe.start_worker("worker-1")
        pipe.start_worker("worker-2")
        paced_run(pipe, 1000, 3001, "slow")
        if SANITIZED:
            paced_run(pipe, 10000, 20001, "fast")
        else:
            paced_run(pipe, 50000, 150001, "fast")
        pipe.assert_exactly_once("slow", 3001)
        ok = True
    finally:
        pipe.stop_all() if ok else None
        pipe.cleanup(ok)


if __name__ == "__main__":
    main()

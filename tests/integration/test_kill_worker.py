"""kill -9 of one of two workers in the middle of a paced run loses no
record and duplicates none: the producer re-sends what the dead worker
held after --ack-timeout, the sink discards whatever arrives twice."""
from pwtest import Pipeline, SANITIZED, check, count_lines, log, wait_for

COUNT = 20000 if SANITIZED else 60000
RATE = 5000 if SANITIZED else 15000


def main():
    pipe = Pipeline("kill-worker")
    ok = False
    try:
        pipe.start_sink()
        w1 = pipe.start_worker("worker-1")
        pipe.start_worker("worker-2")
        prod = pipe.start_producer("--rate", str(RATE), "--count", str(COUNT), "--fault-rate", "0.02",
                                   "--ack-timeout", "1000")
        wait_for(lambda: count_lines(pipe.out) >= COUNT // 3, 60, "a third of the records written")
        w1.kill9()
        log("killed worker-1 (pid %d) after %d records written" % (w1.pid, count_lines(pipe.out)))
        rc = prod.wait(120)
        check(rc == 0, "producer exited %s" % rc)
        retried = [l for l in prod.logs() if l.get("msg") == "stats"]
        log("producer final stats:", retried[-1] if retried else None)
        pipe.assert_exactly_once("p1", COUNT)
        ok = True
    finally:
        pipe.stop_all() if ok else None
        pipe.cleanup(ok)


if __name__ == "__main__":
    main()

"""kill -9 of the sink in the middle of a run and a restart on the same
files: still every id exactly once.  The restarted sink rebuilds its dedup
index from both files (cutting a torn last line), the producer re-sends
whatever was not acknowledged."""
from pwtest import Pipeline, SANITIZED, check, count_lines, log, wait_for

COUNT = 20000 if SANITIZED else 60000
RATE = 5000 if SANITIZED else 15000


def main():
    pipe = Pipeline("kill-sink")
    ok = False
    try:
        sink = pipe.start_sink("--fsync", "batch")
        pipe.start_worker("worker-1")
        pipe.start_worker("worker-2")
        prod = pipe.start_producer("--rate", str(RATE), "--count", str(COUNT), "--fault-rate", "0.02",
                                   "--ack-timeout", "1000")
        wait_for(lambda: count_lines(pipe.out) >= COUNT // 3, 60, "a third of the records written")
        sink.kill9()
        before = count_lines(pipe.out) + count_lines(pipe.dead)
        log("killed sink (pid %d) with %d lines written" % (sink.pid, before))
        sink2 = pipe.start_sink("--fsync", "batch", name="sink-restarted")
        recovered = [l for l in sink2.logs() if l.get("msg") == "recovered written records"]
        check(recovered and recovered[0]["lines"] >= before,
              "restarted sink recovered %s, files had %d lines" % (recovered, before))
        rc = prod.wait(120)
        check(rc == 0, "producer exited %s" % rc)
        dups = [l for l in sink2.logs() if l.get("msg") == "stats"]
        log("restarted sink final stats:", dups[-1] if dups else None)
        pipe.assert_exactly_once("p1", COUNT)
        ok = True
    finally:
        pipe.stop_all() if ok else None
        pipe.cleanup(ok)


if __name__ == "__main__":
    main()

"""kill -9 of the sink in the middle of a run and a restart on the same
files: still every id exactly once.  The restarted sink rebuilds its dedup
index from both files (cutting a torn last line), the producer re-sends
whatever was not acknowledged."""
from pwtest import Pipeline, SANITIZED, check, kill9_mid_run, log

COUNT = 20000 if SANITIZED else 60000
RATE = 5000 if SANITIZED else 15000


def main():
    pipe = Pipeline("kill-sink")
    ok = False
    try:
        sink = pipe.start_sink("--fsync", "batch")
        pipe.start_worker("worker-1")
        pipe.start_worker("worker-2")
        restarted = []

        def restart(lines_before):
            sink2 = pipe.start_sink("--fsync", "batch", name="sink-restarted")
            recovered = [l for l in sink2.logs() if l.get("msg") == "recovered written records"]
            check(recovered and recovered[0]["lines"] >= lines_before,
                  "restarted sink recovered %s, files had %d lines" % (recovered, lines_before))
            restarted.append(sink2)

        kill9_mid_run(pipe, sink, COUNT, RATE, after_kill=restart)
        pipe.stop_all()
        stats = [l for l in restarted[0].logs() if l.get("msg") == "stats"]
        log("restarted sink's final stats:", stats[-1] if stats else None)
        ok = True
    finally:
        if ok:
            pipe.stop_all()
        pipe.cleanup(ok)


if __name__ == "__main__":
    main()

"""kill -9 of one of two workers in the middle of a paced run loses no
record and duplicates none: the producer re-sends what the dead worker
held after --ack-timeout, the sink discards whatever arrives twice."""
from pwtest import Pipeline, SANITIZED, kill9_mid_run, log

COUNT = 20000 if SANITIZED else 60000
RATE = 5000 if SANITIZED else 15000


def main():
    pipe = Pipeline("kill-worker")
    ok = False
    try:
        pipe.start_sink()
        w1 = pipe.start_worker("worker-1")
        pipe.start_worker("worker-2")
        prod = kill9_mid_run(pipe, w1, COUNT, RATE)
        stats = [l for l in prod.logs() if l.get("msg") == "stats"]
        log("producer final stats:", stats[-1] if stats else None)
        ok = True
    finally:
        if ok:
            pipe.stop_all()
        pipe.cleanup(ok)


if __name__ == "__main__":
    main()

"""More live producers than the sink has hot dedup slots (64): 80 producers
at 1000 records/s each into one sink through 2 workers.  The sink's least
recently used streams are converted to their exact cold form and back as
they send again; nothing written may be forgotten, so every id of every
producer ends in the files exactly once."""
from pwtest import Pipeline, SANITIZED, check, exactly_once_many, free_port, log

PRODUCERS = 80
COUNT = 1000 if SANITIZED else 5000
RATE = 200 if SANITIZED else 1000


def main():
    pipe = Pipeline("sink-many")
    ok = False
    try:
        sink = pipe.start_sink()
        ports = [free_port() for _ in range(PRODUCERS)]
        inputs = ",".join(pipe.ep(p) for p in ports)
        pipe.start_worker("worker-1", inputs=inputs)
        pipe.start_worker("worker-2", inputs=inputs)
        prods = []
        for i, port in enumerate(ports):
            prods.append(pipe.start_producer("--rate", str(RATE), "--count", str(COUNT), "--fault-rate", "0.02",
                                             "--ack-timeout", "3000", name="producer-%d" % i,
                                             pid="p%d" % i, port=port))
        for p in prods:
            rc = p.wait(300)
            check(rc == 0, "%s exited %s: %s" % (p.name, rc, p.log_lines()[-3:]))
        pipe.stop_all()
        check(sink.p.returncode == 0, "sink exited %s" % sink.p.returncode)
        exactly_once_many(pipe, {"p%d" % i: COUNT for i in range(PRODUCERS)})
        stats = [l for l in sink.logs() if l.get("msg") == "stats"]
        cold = max([l.get("cold_streams", 0) for l in stats] or [0])
        log("sink: most cold streams in a stats line: %d; last stats: %s" % (cold, stats[-1] if stats else None))
        ok = True
    finally:
        pipe.cleanup(ok)


if __name__ == "__main__":
    main()

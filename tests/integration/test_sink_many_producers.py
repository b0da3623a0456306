"""More live producers than the sink has hot dedup slots (64): 80 producers
at 1000 records/s each into one sink through 2 workers.  The sink's least
recently used streams are converted to their exact cold form and back as
they send again; nothing written may be forgotten, so every id of every
producer ends in the files exactly once."""
from pwtest import Pipeline, Proc, SANITIZED, binary, check, exactly_once_many, fail, free_port, log, wait_for

PRODUCERS = 80
COUNT = 1000 if SANITIZED else 5000
RATE = 200 if SANITIZED else 1000


def start_producer(pipe, i):
    for attempt in range(5):
        port = free_port()
        name = "producer-%d-%d" % (i, attempt)
        p = Proc(name, [binary("producer"), "--bind", pipe.ep(port), "--ack", pipe.ep(pipe.ack_port),
                        "--id", "p%d" % i, "--rate", str(RATE), "--count", str(COUNT), "--fault-rate", "0.02",
                        "--ack-timeout", "3000"] + pipe.common(name), pipe.tmp)
        wait_for(lambda: (not p.alive()) or p.has_log("producing"), 20, "%s to start" % name)
        if p.alive():
            pipe.procs.append(p)
            return p, port
        check(any("cannot bind" in line for line in p.log_lines()), "%s failed: %s" % (name, p.log_lines()[-3:]))
    fail("producer %d found no free port" % i)


def main():
    pipe = Pipeline("sink-many")
    ok = False
    try:
        sink = pipe.start_sink()
        # Producers bind first, each retrying on another port if its free
        # port was taken meanwhile (by a parallel test's connection).
        prods, ports = [], []
        for i in range(PRODUCERS):
            prod, port = start_producer(pipe, i)
            prods.append(prod)
            ports.append(port)
        inputs = ",".join(pipe.ep(p) for p in ports)
        pipe.start_worker("worker-1", inputs=inputs)
        pipe.start_worker("worker-2", inputs=inputs)
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

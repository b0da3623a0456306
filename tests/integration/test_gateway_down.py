"""A Pushgateway that is unreachable (closed port) or hanging (accepts,
never answers) never slows or stops the pipeline: the run completes, no
stage dies, failures are counted and logged, and throughput stays near a
run with a live gateway measured in this same test.  Only a generous
bound is asserted (2 noisy cores, other tests in parallel); the figures
are printed for the record."""
import socket
import time

from pwtest import Pipeline, Pushgateway, SANITIZED, check, free_port, log, send_to_ack_seconds

COUNT = 30000 if SANITIZED else 150000


def run_once(tag, gateway_url):
    pipe = Pipeline("gw-" + tag, gateway_url=gateway_url, push_interval="0.5")
    ok = False
    try:
        pipe.start_sink()
        pipe.start_worker("worker-1")
        pipe.start_worker("worker-2")
        prod = pipe.start_producer("--rate", "0", "--count", str(COUNT))
        rc = prod.wait(240)
        # From the first send to the last ack, by the producer's own log
        # clock: process exit also includes the final push, which against
        # a hanging gateway rightly waits out its timeout.
        elapsed = send_to_ack_seconds(prod, "[%s] producer" % tag)
        check(rc == 0, "[%s] producer exited %s" % (tag, rc))
        pipe.assert_exactly_once("p1", COUNT)
        for p in pipe.procs:
            if p.alive():
                t = time.monotonic()
                code = p.stop()
                check(code == 0, "[%s] %s exited %s" % (tag, p.name, code))
                check(time.monotonic() - t < 15, "[%s] %s took %.1fs to stop" % (tag, p.name, time.monotonic() - t))
        # A failed periodic push logs "push failed"; a run shorter than one
        # push timeout may only see its final push fail ("final push failed").
        warned = any(l.get("msg") in ("push failed", "final push failed")
                     for p in pipe.procs for l in p.logs())
        ok = True
        return COUNT / elapsed, warned
    finally:
        pipe.cleanup(ok)


def main():
    tmp_gw = Pipeline("gw-live-gateway")
    gw = Pushgateway(tmp_gw.tmp)
    closed_port = free_port()  # nothing listens here
    hang = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    hang.bind(("127.0.0.1", 0))
    hang.listen(1024)  # the kernel completes handshakes; nobody ever reads
    try:
        live, live_warned = run_once("live", gw.url)
        closed, closed_warned = run_once("closed", "http://127.0.0.1:%d" % closed_port)
        hanging, hanging_warned = run_once("hanging", "http://127.0.0.1:%d" % hang.getsockname()[1])
        log("throughput records/s: live %.0f, closed port %.0f (%.2fx), hanging %.0f (%.2fx)"
            % (live, closed, closed / live, hanging, hanging / live))
        check(not live_warned, "push failures logged with a live gateway")
        check(closed_warned, "no 'push failed' log line with a closed port")
        check(hanging_warned, "no 'push failed' log line with a hanging gateway")
        check(closed / live > 0.5, "closed-port run %.2fx of live" % (closed / live))
        check(hanging / live > 0.5, "hanging-gateway run %.2fx of live" % (hanging / live))
    finally:
        hang.close()
        gw.stop()
        tmp_gw.cleanup(True)


if __name__ == "__main__":
    main()

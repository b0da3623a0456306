"""The producer's slow paths (issue: delivery core): a slow worker with a
tiny ack timeout (many re-sends), the heap overflow's reproduction (the old
producer overflowed its re-send array under a slow worker: ASan abort), an
all-oversize burst at full speed (the old
producer built messages the workers refused, forever), a sink whose dedup
window is smaller than the producer's --max-in-flight (the old sink
acknowledged records it never wrote), and a stop before --count (the old
producer logged "all records acknowledged")."""
import signal

from pwtest import SANITIZED, check, count_lines, log, scenario, wait_for

SCALE = 4 if SANITIZED else 1


def part_many_resends():
    count = 3000 // SCALE
    with scenario("slow-resends") as (pipe, _):
        pipe.start_sink()
        pipe.start_worker("worker-1", "--delay-ms", "1")
        prod = pipe.start_producer("--rate", "0", "--count", str(count), "--max-in-flight", "4096",
                                   "--ack-timeout", "20")
        check(prod.wait(180) == 0, "producer did not finish cleanly: %s" % prod.stderr()[-3000:])
        pipe.assert_exactly_once("p1", count)
        resent = [l for l in prod.logs() if l["msg"] == "re-sending unacknowledged records"]
        log("slow worker, --ack-timeout 20: %d re-send log lines (rate-limited)" % len(resent))
        check(resent, "the 20 ms ceiling never made the producer re-send: the path was not exercised")


def part_issue_reproduction():
    """The heap overflow's reproduction: a worker at 1 ms per record, an
    unpaced producer with --max-in-flight 4096 --ack-timeout 1000.  Under
    ASan the old producer aborted in scan_for_resends within 20 000
    records; not scaled down, the overflow needs the run's length."""
    count = 20000
    with scenario("slow-repro") as (pipe, _):
        pipe.start_sink()
        pipe.start_worker("worker-1", "--delay-ms", "1")
        prod = pipe.start_producer("--rate", "0", "--count", str(count), "--max-in-flight", "4096",
                                   "--ack-timeout", "1000")
        rc = prod.wait(240)
        check(rc == 0, "producer exited %s: %s" % (rc, prod.stderr()[-3000:]))
        pipe.assert_exactly_once("p1", count)


def part_oversize_burst():
    count = 1000 // SCALE
    with scenario("slow-oversize") as (pipe, _):
        pipe.start_sink()
        pipe.start_worker("worker-1")
        prod = pipe.start_producer("--rate", "0", "--count", str(count), "--fault-rate", "1",
                                   "--fault-kinds", "oversize")
        check(prod.wait(120) == 0, "producer did not finish an all-oversize burst")
        outs, deads = pipe.assert_exactly_once("p1", count)
        check(len(deads) == count and all(d["reason"] == "oversize" for d in deads),
              "oversize records not all dead-lettered as oversize")


def part_small_sink_window():
    count = 200000 // SCALE
    with scenario("slow-small-window") as (pipe, _):
        pipe.start_sink("--dedup-window", "1024")
        pipe.start_worker("worker-1")
        pipe.start_worker("worker-2")
        prod = pipe.start_producer("--rate", "0", "--count", str(count))  # --max-in-flight 65536
        check(prod.wait(240) == 0, "producer did not finish cleanly")
        check(any(l["msg"] == "in-flight limit lowered to the sink's dedup window" for l in prod.logs()),
              "the producer did not say it lowered its in-flight limit to the sink's window")
        pipe.assert_exactly_once("p1", count)


def part_stop_before_count():
    with scenario("slow-stop-early") as (pipe, _):
        pipe.start_sink()
        pipe.start_worker("worker-1")
        prod = pipe.start_producer("--rate", "2000", "--count", "100000")
        wait_for(lambda: count_lines(pipe.out) >= 1000, 30, "records flowing")
        prod.p.send_signal(signal.SIGTERM)
        check(prod.wait(30) == 0, "producer did not stop cleanly on SIGTERM")
        msgs = [l["msg"] for l in prod.logs()]
        check("all records acknowledged" not in msgs,
              "a producer stopped before --count claimed all records acknowledged")
        check("stopped before --count; every record sent was acknowledged" in msgs,
              "the producer did not say it stopped before --count")


def main():
    part_many_resends()
    part_issue_reproduction()
    part_oversize_burst()
    part_small_sink_window()
    part_stop_before_count()


if __name__ == "__main__":
    main()

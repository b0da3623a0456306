"""Conservation: every record the producer emits ends in exactly one of the
sink's files, exactly once; each dead letter carries the reason its bytes
deserve; the counters pushed to a real Pushgateway agree with the files."""
import collections
import json

from pwtest import (Pipeline, Pushgateway, SANITIZED, check, dead_letter_raw, expected_reason, log,
                    wait_for)

COUNT = 20000 if SANITIZED else 100000


def main():
    pipe = Pipeline("conservation")
    gw = Pushgateway(pipe.tmp)
    pipe.gateway_url = gw.url
    ok = False
    try:
        pipe.start_sink()
        pipe.start_worker("worker-1")
        pipe.start_worker("worker-2")
        prod = pipe.start_producer("--rate", "0", "--count", str(COUNT), "--fault-rate", "0.05",
                                   "--fault-kinds", "all", "--ack-timeout", "10000")
        rc = prod.wait(240)
        check(rc == 0, "producer exited %s" % rc)
        outs, deads = pipe.assert_exactly_once("p1", COUNT)
        check(len(outs) + len(deads) == COUNT, "output %d + dead %d != %d" % (len(outs), len(deads), COUNT))
        share = len(deads) / COUNT
        check(0.03 < share < 0.07, "dead-letter share %.4f is not near the 5%% fault rate" % share)

        reasons = collections.Counter()
        for d in deads:
            raw = dead_letter_raw(d)
            want = expected_reason(raw)
            check(d["reason"] == want, "seq %s dead-lettered as %s, its bytes say %s: %r"
                  % (d["seq"], d["reason"], want, raw[:120]))
            check(d["id"] == "p1-%d" % d["seq"], "dead letter id %r does not match seq %s" % (d["id"], d["seq"]))
            reasons[d["reason"]] += 1
        log("dead letters by reason:", dict(reasons))
        for r in ("malformed_json", "missing_field", "invalid_value", "oversize", "invalid_utf8", "empty",
                  "processing"):
            check(reasons[r] > 0, "no dead letter with reason %s" % r)
        for o in outs:
            check(expected_reason(input_record(o)) is None, "bad record in output: %r" % o)
            check(o["amount_cents"] == round(o["payload"]["amount"] * 100), "amount_cents wrong in %r" % o)
            check(o["worker"] in ("worker-1", "worker-2"), "worker field %r" % o.get("worker"))

        # Clean stop: every stage pushes its final figures.
        pipe.stop_all()
        for p in pipe.procs:
            check(p.p.returncode == 0, "%s exited %s on SIGTERM" % (p.name, p.p.returncode))
        job = pipe.job
        wait_for(lambda: gw.value("pipeline_stage_up", job=job, stage="sink") == 0, 10, "final sink push")
        produced = gw.value("pipeline_records_processed_total", job=job, stage="producer")
        written = gw.value("pipeline_records_processed_total", job=job, stage="sink")
        dead = gw.value("pipeline_records_dead_lettered_total", job=job, stage="sink")
        in_flight = gw.value("pipeline_records_in_flight", job=job, stage="producer")
        worker_ok = gw.value("pipeline_records_processed_total", job=job, stage="worker")
        worker_err = sum(gw.value("pipeline_errors_total", job=job, stage="worker", reason=r) or 0
                         for r in reasons)
        log("pushed: producer=%s sink=%s dead=%s in_flight=%s worker_ok=%s worker_err=%s"
            % (produced, written, dead, in_flight, worker_ok, worker_err))
        check(produced == COUNT, "producer pushed %s records, not %d" % (produced, COUNT))
        check(written == len(outs), "sink pushed %s written, file has %d" % (written, len(outs)))
        check(dead == len(deads), "sink pushed %s dead-lettered, file has %d" % (dead, len(deads)))
        check(in_flight == 0, "producer ended with %s in flight" % in_flight)
        retried = gw.value("pipeline_records_retried_total", job=job, stage="producer")
        log("producer re-sent %s records" % retried)
        if retried == 0:
            check(worker_ok == len(outs) and worker_err == len(deads),
                  "workers pushed %s ok / %s errors, files have %d / %d" % (worker_ok, worker_err, len(outs), len(deads)))
        else:
            # A re-sent record is handled (and counted) by a worker again,
            # and the sink drops the second copy: at least the files' counts.
            check(worker_ok >= len(outs) and worker_err >= len(deads),
                  "workers pushed %s ok / %s errors, fewer than the files' %d / %d (%s re-sent)"
                  % (worker_ok, worker_err, len(outs), len(deads), retried))
        ok = True
    finally:
        pipe.cleanup(ok)
        gw.stop()


def input_record(o):
    """The bytes of the input record an output line came from (the line
    without the fields a worker adds)."""
    rec = {k: v for k, v in o.items() if k not in ("processed_at", "worker", "amount_cents", "run")}
    return json.dumps(rec).encode()


if __name__ == "__main__":
    main()

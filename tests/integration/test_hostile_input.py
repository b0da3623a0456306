"""Hostile wire input sent straight to a worker's --in: random bytes, a
10 MiB message, deep nesting, invalid UTF-8, empty, a JSON array, a lying
batch header.  The worker survives, counts each under the right reason,
the sink dead-letters each, and valid records sent afterwards arrive."""
import random

import zmq

import pwtest

from pwtest import (Pipeline, Pushgateway, check, dead_letter_raw, expected_reason, log, valid_record,
                    wait_for)


def main():
    pipe = Pipeline("hostile")
    gw = Pushgateway(pipe.tmp)
    pipe.gateway_url = gw.url
    ctx = zmq.Context()
    # Another client sending bare records binds a DEALER (the worker's input
    # sockets are DEALERs); the worker's credit messages arrive and are ignored.
    push = ctx.socket(zmq.DEALER)
    port = pwtest.free_port()
    push.bind("tcp://127.0.0.1:%d" % port)
    ok = False
    try:
        pipe.start_sink()
        worker = pipe.start_worker("worker-1", inputs="tcp://127.0.0.1:%d" % port)
        rnd = random.Random(7)
        hostile = [
            ("malformed_json", bytes(rnd.randrange(256) for _ in range(4000)).replace(b"\n", b" ")
             .replace(b"{", b"(").lstrip(b" \t\r\n") or b"x"),
            ("oversize", b"{" + b" " * (10 * 1024 * 1024) + b"}"),
            ("malformed_json", b"[" * 1000 + b"]" * 1000),
            ("invalid_utf8", b'{"id":"\xff\xfe","seq":1}'),
            ("empty", b""),
            ("invalid_value", b"[1,2,3]"),
            # A batch header whose only item claims far more bytes than follow.
            ("malformed_json", b"PWB1\x05hello" + b"\x00" * 8 + b"\x01\x00\x00\x00" + b"\x00" * 17
             + b"\x7f\x7f\x7f\x7f"),
        ]
        # Random bytes can happen to be valid UTF-8 or not; the oracle decides.
        hostile[0] = (expected_reason(hostile[0][1]), hostile[0][1])
        for reason, msg in hostile:
            push.send(msg)
        for seq in range(100):
            push.send(valid_record("ext", seq))

        def delivered():
            # The sink writes the output file and then the dead-letter file:
            # wait for both, reading while it may still be writing.
            outs, deads = pipe.read_files(partial_ok=True)
            return len([o for o in outs if o.get("producer") == "ext"]) == 100 and len(deads) >= len(hostile)
        wait_for(delivered, 60, "the 100 valid records and a dead letter for each hostile message")
        check(worker.alive(), "worker died")
        _, deads = pipe.read_files()
        got = sorted(d["reason"] for d in deads)
        want = sorted(r for r, _ in hostile)
        check(got == want, "dead-letter reasons %s, expected %s" % (got, want))
        for d in deads:
            check(d["id"] is None and d["producer"] is None, "bare dead letter got an identity: %r" % d)
            raw = dead_letter_raw(d)
            check(len(raw) <= 1024 * 1024, "dead letter kept %d raw bytes" % len(raw))
        big = [d for d in deads if d["reason"] == "oversize"][0]
        check(big["raw_len"] == 10 * 1024 * 1024 + 2 and big.get("raw_truncated") is True,
              "oversize dead letter raw_len %s truncated %s" % (big["raw_len"], big.get("raw_truncated")))

        def counted():
            vals = {}
            for r in set(want):
                vals[r] = gw.value("pipeline_errors_total", job=pipe.job, stage="worker", reason=r) or 0
            return vals if all(vals[r] == want.count(r) for r in vals) else None
        vals = wait_for(counted, 20, "worker error counters at the Pushgateway")
        log("worker errors by reason at the gateway:", vals)
        ok = True
    finally:
        push.close(0)
        ctx.term()
        if ok:
            pipe.stop_all()
        pipe.cleanup(ok)
        gw.stop()


if __name__ == "__main__":
    main()

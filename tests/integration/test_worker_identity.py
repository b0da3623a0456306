"""The identity the sink deduplicates on (the batch envelope's producer,
run, seq) and the one its recovery reads back from a written line (the
record's own "producer" and "seq", plus "run") must name the same record.
A worker therefore dead-letters a valid record whose own producer or seq
differ from its envelope (the old worker wrote it as output: after a sink
restart it would have been recovered under another identity), and passes
one whose fields agree."""
import time

import zmq

import pwtest
from pwtest import batch, check, log, scenario, valid_record, wait_for


def main():
    with scenario("worker-identity") as (pipe, _):
        ctx = zmq.Context()
        client = ctx.socket(zmq.DEALER)  # plays a producer endpoint
        port = pwtest.free_port()
        client.bind("tcp://127.0.0.1:%d" % port)
        try:
            pipe.start_sink()
            pipe.start_worker("worker-1", inputs="tcp://127.0.0.1:%d" % port)
            now = time.time()
            items = [
                (5, 0, now, valid_record("idp", 6)),     # seq differs from the envelope's
                (7, 0, now, valid_record("other", 7)),   # producer differs
                (8, 0, now, valid_record("idp", 8)),     # agrees
            ]
            client.send(batch("idp", 42, items))

            def written():
                outs, deads = pipe.read_files(partial_ok=True)
                return (outs, deads) if len(outs) + len(deads) >= 3 else None
            outs, deads = wait_for(written, 30, "the three records in the sink's files")
            check(len(outs) == 1 and outs[0]["seq"] == 8 and outs[0]["producer"] == "idp" and outs[0]["run"] == 42,
                  "output lines: %r" % outs)
            check(len(deads) == 2 and all(d["reason"] == "invalid_value" for d in deads),
                  "dead letters: %r" % deads)
            check(sorted(d["seq"] for d in deads) == [5, 7] and all(d["producer"] == "idp" for d in deads),
                  "dead letters must carry the envelope's identity: %r" % deads)
            check(all("envelope" in d.get("detail", "") for d in deads), "detail does not say why: %r" % deads)
            log("identity mismatches dead-lettered under the envelope's identity; the matching record written")
        finally:
            client.close(0)
            ctx.term()


if __name__ == "__main__":
    main()

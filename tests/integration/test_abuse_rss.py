"""Hostile input for a while, and memory stays flat.

Each stage gets a flood it must survive without growing: VmRSS (from
/proc/PID/status) is sampled once the first tenth of the flood has been
handled (allocators and ZeroMQ buffers warm) and again at the end; the
growth must stay under GROWTH_LIMIT.  "Handled" is proven, not guessed: a
probe sent after a phase on the same connection comes out the other end
(ZeroMQ keeps one connection's messages in order).

  worker: 100 000 garbage messages on its --in (random bytes, 100 KiB
          oversize, deep nesting, empty, invalid UTF-8, JSON that is no
          record, lying "PWB1" batch headers); each becomes exactly one
          dead letter, then valid records still arrive.
  sink:   the same garbage straight to its --bind (dead-lettered as "not
          a pipewatch batch"), interleaved with well-formed batches from
          thousands of fake producers (far more than the 64 streams the
          dedup table holds: LRU eviction) and with absurd seqs (window
          slides); then a real run is still exactly once.
  producer: the test binds the ack endpoint itself (an XPUB, in place of a
          sink) and floods it with garbage acks, acks of other runs and
          acks of seqs never sent; none of them may acknowledge a record,
          and the real acks still finish the run.
Counts are scaled down 5x on sanitizer builds (pwtest.SANITIZED)."""
import json
import os
import random
import struct
import time

import zmq

import pwtest
from pwtest import Pipeline, Pushgateway, batch, check, credit_message, greeting, log, valid_record, wait_for

SCALE = 5 if pwtest.SANITIZED else 1
FLOOD = 100000 // SCALE
WARM = FLOOD // 10
# ASan's allocator keeps a quarantine and per-size-class regions that only
# grow to the working set: a looser bound there, the strict one in plain builds.
GROWTH_LIMIT = (16 if pwtest.SANITIZED else 8) * 1024 * 1024
OVERSIZE = 100 * 1024


def rss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS for %d" % pid)


def mib(n):
    return n / (1024.0 * 1024.0)


def garbage(rnd, i):
    """Message i of the flood.  Every one is a single dead letter wherever it
    lands: never a valid record, never a well-formed batch."""
    if i % 1000 == 999:
        return b'{"id":"' + b"x" * OVERSIZE + b'"}'
    k = i % 10
    if k in (0, 9):
        data = rnd.randbytes(rnd.randint(1, 300 if k == 0 else 2000))
        return b"(" + data if data.startswith(b"PWB1") else data
    if k == 1:
        n = rnd.randint(17, 2000)  # deeper than the limit of 16; kept small so the flood is about count, not bytes
        return rnd.choice([b"[" * n + b"]" * n, b'{"a":' * n + b"1" + b"}" * n, b"[" * n])
    if k == 2:
        return b""
    if k == 3:
        return b'{"id":"' + rnd.choice([b"\xff\xfe", b"\xc0\x80", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"]) + b'","seq":1}'
    if k == 4:
        # Header claims many items; one empty item follows, then nothing.
        name = rnd.randbytes(rnd.randint(0, 64))
        return (b"PWB1" + bytes([len(name)]) + name + struct.pack("<QI", rnd.getrandbits(64), rnd.randint(2, 2**32 - 1))
                + struct.pack("<QBdI", 1, 0, 1.0, 0))
    if k == 5:
        # One item whose length runs past the end of the message.
        name = b"liar"
        body = rnd.randbytes(rnd.randint(0, 100))
        return (b"PWB1" + bytes([len(name)]) + name + struct.pack("<QI", 7, 1)
                + struct.pack("<QBdI", 3, 1, 1.0, len(body) + rnd.randint(1, 2**31)) + body)
    if k == 6:
        # Producer length byte larger than the rest of the message.
        return b"PWB1" + bytes([rnd.randint(10, 255)]) + rnd.randbytes(rnd.randint(0, 9))
    if k == 7:
        return rnd.choice([b'{"id":1}', b"[1,2,3]", b"null", b'"str"', b"{}", b'{"seq":-1,"payload":[]}'])
    return "".join(chr(rnd.randint(0x20, 0x2FFF)) for _ in range(rnd.randint(1, 200))).encode("utf-8", "replace")


def tail_has(path, needle):
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.path.getsize(path) - 65536))
            return needle in f.read()
    except FileNotFoundError:
        return False


def report(stage, before, after):
    growth = after - before
    log("%s RSS after %d hostile messages %.1f MiB, after %d %.1f MiB: growth %+.2f MiB (limit %.0f MiB)"
        % (stage, WARM, mib(before), FLOOD, mib(after), mib(growth), mib(GROWTH_LIMIT)))
    check(growth < GROWTH_LIMIT, "%s grew %.1f MiB under hostile input" % (stage, mib(growth)))


def test_worker():
    pipe = Pipeline("abuse-worker")
    ctx = zmq.Context()
    push = ctx.socket(zmq.DEALER)  # bare-record clients bind a DEALER
    push.sndhwm = 1000
    port = pwtest.free_port()
    push.bind("tcp://127.0.0.1:%d" % port)
    ok = False
    try:
        pipe.start_sink()
        worker = pipe.start_worker("worker-1", inputs="tcp://127.0.0.1:%d" % port)
        rnd = random.Random(11)
        samples = []
        for lo, hi, probe in ((0, WARM, 0), (WARM, FLOOD, 1)):
            for i in range(lo, hi):
                push.send(garbage(rnd, i))
            push.send(valid_record("probe", probe))
            wait_for(lambda: tail_has(pipe.out, b'"probe-%d"' % probe), 120,
                     "the worker to get through %d hostile messages" % hi)
            check(worker.alive(), "worker died under hostile input")
            samples.append(rss_bytes(worker.pid))
        for seq in range(100):
            push.send(valid_record("ext", seq))
        wait_for(lambda: pwtest.count_lines(pipe.out) == 102, 60, "the valid records after the flood")
        pipe.assert_exactly_once("ext", 100)
        dead = pwtest.count_lines(pipe.dead)
        check(dead == FLOOD, "%d dead letters for %d hostile messages" % (dead, FLOOD))
        report("worker", *samples)
        stop_cleanly(pipe)
        ok = True
    finally:
        push.close(0)
        ctx.term()
        pipe.cleanup(ok)


def test_sink():
    pipe = Pipeline("abuse-sink")
    ctx = zmq.Context()
    push = ctx.socket(zmq.PUSH)
    push.sndhwm = 1000
    ok = False
    try:
        sink = pipe.start_sink()
        push.connect(pipe.ep(pipe.out_port))
        rnd = random.Random(13)
        samples, fake_streams, fake_items = [], 0, 0
        for lo, hi, probe in ((0, WARM, 0), (WARM, FLOOD, 1)):
            for i in range(lo, hi):
                push.send(garbage(rnd, i))
                if i % 25 == 0:
                    # A fresh fake producer stream (most are evicted again at once).
                    name = "fake-%d" % i
                    run = rnd.getrandbits(63)
                    base = rnd.choice([0, 1000, 2**40, 2**63])
                    items = [(base + s * rnd.choice([1, 1, 300000]), rnd.choice([1, 2]), time.time(),
                              json.dumps({"producer": name, "seq": base + s, "fake": True}).encode())
                             for s in range(5)]
                    push.send(batch(name, run, items))
                    fake_streams += 1
                    fake_items += len(items)
            # No stream identity: written without dedup or ack, so it cannot be
            # turned away when the table is full of fakes.
            push.send(batch("", 0, [(0, 1, time.time(), json.dumps({"probe": probe}).encode())]))
            wait_for(lambda: tail_has(pipe.out, b'{"probe": %d}' % probe), 120,
                     "the sink to get through %d hostile messages" % hi)
            check(sink.alive(), "sink died under hostile input")
            samples.append(rss_bytes(sink.pid))
        outs, deads = pipe.read_files()
        garbage_dead = len([d for d in deads if d.get("reason") == "malformed_json" and d.get("producer") is None])
        check(garbage_dead == FLOOD, "%d of %d garbage messages dead-lettered" % (garbage_dead, FLOOD))
        written_fakes = len(outs) + len(deads) - garbage_dead - 2
        full = len([l for l in sink.logs() if l.get("msg", "").startswith("dedup index full")])
        log("sink: %d garbage messages dead-lettered; %d fake streams sent %d items, %d written, "
            "%d 'dedup index full' log lines (rate-limited)" % (FLOOD, fake_streams, fake_items, written_fakes, full))
        report("sink", *samples)

        # A real run afterwards: exactly once.
        count = 2000 // SCALE
        pipe.start_worker("worker-1")
        prod = pipe.start_producer("--rate", "0", "--count", str(count))
        check(prod.wait(60) == 0, "producer after the sink flood did not finish cleanly")
        pipe.assert_exactly_once("p1", count)
        stop_cleanly(pipe)
        ok = True
    finally:
        push.close(0)
        ctx.term()
        pipe.cleanup(ok)


def ack(producer, run, ranges):
    body = struct.pack("<QI", run, len(ranges)) + b"".join(struct.pack("<QI", f, n) for f, n in ranges)
    return producer.encode() + b"\0PWA1" + body


def test_producer():
    pipe = Pipeline("abuse-producer")
    gw = Pushgateway(pipe.tmp)
    pipe.gateway_url = gw.url
    pipe.push_interval = "0.2"
    ctx = zmq.Context()
    xpub = ctx.socket(zmq.XPUB)
    xpub.sndhwm = 0  # queue every hostile message here; none may be dropped unseen
    xpub.setsockopt(zmq.XPUB_VERBOSE, 1)
    xpub.bind(pipe.ep(pipe.ack_port))
    pull = ctx.socket(zmq.DEALER)  # plays a worker: asks for every record at once
    ok = False
    try:
        count, held = 1000, 10
        prod = pipe.start_producer("--rate", "0", "--count", str(count), "--ack-timeout", "600000")
        pull.connect(pipe.ep(pipe.in_port))
        pull.send(credit_message(count, count))
        check(xpub.poll(10000), "the producer never subscribed to the ack endpoint")
        sub = xpub.recv()
        check(sub == b"\x01p1\0", "unexpected subscription %r" % sub)
        xpub.send(greeting("p1", 1 << 18))  # the sink's greeting

        # Receive every record; acknowledge all but the first `held`.
        seen, run = set(), None
        while len(seen) < count:
            check(pull.poll(20000), "records stopped coming (%d of %d)" % (len(seen), count))
            msg = pull.recv()
            plen = msg[4]
            run, n = struct.unpack_from("<QI", msg, 5 + plen)
            pos, seqs = 5 + plen + 12, []
            for _ in range(n):
                seq, _, _, ln = struct.unpack_from("<QBdI", msg, pos)
                pos += 21 + ln
                seqs.append(seq)
            seen.update(seqs)
            xpub.send(ack("p1", run, [(s, 1) for s in seqs if s >= held]))
        in_flight = lambda: gw.value("pipeline_records_in_flight", job=pipe.job, instance="producer")
        wait_for(lambda: in_flight() == held, 20, "in flight to settle at %d" % held)

        rnd = random.Random(17)
        wrap = 2**64 - 5

        def hostile(i):
            k = i % 8
            if k == 0:
                return b"p1\0" + garbage(rnd, i)
            if k == 1:  # another run of ours: must not count
                return ack("p1", run ^ (1 + rnd.getrandbits(40)), [(0, held)])
            if k == 2:  # seqs never sent, and a range that wraps around 2^64
                return ack("p1", run, [(count + rnd.getrandbits(32), rnd.randint(1, 2**32 - 1)), (wrap, 10)])
            if k == 3:  # header claims more ranges than follow
                return b"p1\0PWA1" + struct.pack("<QI", run, 1000) + struct.pack("<QI", 0, held)[:rnd.randint(0, 11)]
            if k == 4:  # another producer's topic
                return ack("p2", run, [(0, held)])
            if k == 5:
                return b"p1\0PWA1" + rnd.randbytes(rnd.randint(0, 40))
            if k == 6:
                return b"p1"  # topic without the terminator
            return rnd.randbytes(rnd.randint(0, 200))

        samples = []
        for lo, hi, release in ((0, WARM, 0), (WARM, FLOOD, 1)):
            for i in range(lo, hi):
                xpub.send(hostile(i))
            # One real ack after the phase: when it counts, the phase is handled.
            xpub.send(ack("p1", run, [(release, 1)]))
            wait_for(lambda: in_flight() == held - release - 1, 60,
                     "the producer to get through %d hostile acks" % hi)
            check(prod.alive(), "producer died under hostile acks")
            samples.append(rss_bytes(prod.pid))
        check(in_flight() == held - 2, "hostile acks acknowledged records")
        xpub.send(ack("p1", run, [(2, held - 2)]))
        check(prod.wait(30) == 0, "producer did not finish once the real acks came")
        check(prod.has_log("all records acknowledged"), "producer did not log the end of its run")
        report("producer", *samples)
        stop_cleanly(pipe)
        ok = True
    finally:
        pull.close(0)
        xpub.close(0)
        ctx.term()
        pipe.cleanup(ok)
        gw.stop()


def stop_cleanly(pipe):
    """Stops every stage and insists on exit 0 (under ASan: also no leak report)."""
    for p in reversed(pipe.procs):
        if p.alive():
            rc = p.stop()
            check(rc == 0, "%s exited %s: %s" % (p.name, rc, p.stderr()[-2000:]))


def main():
    if pwtest.SANITIZED:
        # ASan holds freed blocks in a quarantine (256 MiB by default) before
        # reuse, which is growth by design; a small one keeps the RSS check
        # meaningful while use-after-free detection stays on.
        opts = os.environ.get("ASAN_OPTIONS", "")
        os.environ["ASAN_OPTIONS"] = (opts + ":" if opts else "") + "quarantine_size_mb=1"
    t = time.monotonic()
    test_worker()
    log("worker part took %.1fs" % (time.monotonic() - t))
    t = time.monotonic()
    test_sink()
    log("sink part took %.1fs" % (time.monotonic() - t))
    t = time.monotonic()
    test_producer()
    log("producer part took %.1fs" % (time.monotonic() - t))


if __name__ == "__main__":
    main()

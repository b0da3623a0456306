"""CURVE on every ZeroMQ socket, keys from `./pipeline keys`.

1. A CURVE pipeline (sink, one worker, producer, all with the right keys)
   delivers every record exactly once.
2. Intruders get nothing in and push nothing out: with a CURVE producer and
   sink up and records waiting, a worker speaking plain TCP and a worker
   with a valid CURVE pair that is not in the allow list both connect;
   raw pyzmq clients (a DEALER asking the producer for credit, PUSH of valid records to the
   sink; plain and with an unlisted key) are refused at the handshake and
   receive nothing within 2 s.  Then an allowed worker starts and every
   record arrives exactly once; nothing an intruder sent is in the files
   and the intruders' processed counters at the Pushgateway stay 0.
3. A binding stage with a secret key but no allow list refuses to start."""
import os
import subprocess

import zmq
import zmq.utils.monitor as zmon

import pwtest
from pwtest import Pipeline, Pushgateway, binary, check, credit_message, log, valid_record, wait_for

KEYS_SCRIPT = os.path.join(pwtest.SOURCE, "scripts", "keys")
COUNT = 400 if pwtest.SANITIZED else 2000
HANDSHAKE_FAILED = (zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                    | zmq.EVENT_HANDSHAKE_FAILED_AUTH)


def make_keys(directory, *names):
    r = subprocess.run(["/usr/bin/python3", KEYS_SCRIPT, directory] + list(names),
                       capture_output=True, text=True, timeout=30)
    check(r.returncode == 0, "scripts/keys failed: %s" % r.stderr)
    for n in names:
        key, pub = os.path.join(directory, n + ".key"), os.path.join(directory, n + ".pub")
        check(os.stat(key).st_mode & 0o777 == 0o600, "%s is not mode 0600" % key)
        check(os.stat(pub).st_mode & 0o777 == 0o644, "%s is not mode 0644" % pub)
        check(len(read_key(key)) == 40, "%s does not hold a 40-character key" % key)


def read_key(path):
    with open(path) as f:
        return f.read().strip()


def server_flags(keys):
    """Binding stages (and the producer, which also connects to the sink's acks)."""
    k = lambda n: os.path.join(keys, n)
    return ["--curve-secret-file", k("server.key"), "--curve-public-file", k("server.pub"),
            "--curve-server-file", k("server.pub"), "--curve-allow-file", k("allowed.pub")]


def client_flags(keys, name, server_keys=None):
    k = lambda n: os.path.join(keys, n)
    return ["--curve-secret-file", k(name + ".key"), "--curve-public-file", k(name + ".pub"),
            "--curve-server-file", os.path.join(server_keys or keys, "server.pub")]


def part_pipeline_delivers():
    pipe = Pipeline("curve-ok")
    ok = False
    try:
        keys = os.path.join(pipe.tmp, "keys")
        make_keys(keys, "server", "worker-1")
        pipe.start_sink(*server_flags(keys))
        pipe.start_worker("worker-1", *client_flags(keys, "worker-1"))
        prod = pipe.start_producer("--rate", "0", "--count", str(COUNT), *server_flags(keys))
        check(prod.wait(60) == 0, "CURVE producer did not finish cleanly")
        pipe.assert_exactly_once("p1", COUNT)
        for p in pipe.procs:
            if p.alive():
                check(p.stop() == 0, "%s did not stop cleanly" % p.name)
        ok = True
    finally:
        pipe.cleanup(ok)


class Intruder:
    """A raw pyzmq socket with a monitor, plain or with an unlisted CURVE key."""

    def __init__(self, ctx, kind, endpoint, server_pub, rogue_dir):
        self.name = "%s %s" % ({zmq.DEALER: "DEALER", zmq.PUSH: "PUSH"}[kind],
                               "with unlisted key" if rogue_dir else "plain")
        self.sock = ctx.socket(kind)
        self.sock.linger = 0
        if rogue_dir:
            self.sock.curve_secretkey = read_key(os.path.join(rogue_dir, "rogue.key")).encode()
            self.sock.curve_publickey = read_key(os.path.join(rogue_dir, "rogue.pub")).encode()
            self.sock.curve_serverkey = server_pub.encode()
        self.mon = self.sock.get_monitor_socket()
        self.failed = 0
        self.succeeded = 0
        self.sock.connect(endpoint)

    def drain_events(self):
        while self.mon.poll(0):
            ev = zmon.recv_monitor_message(self.mon)
            if ev["event"] & HANDSHAKE_FAILED:
                self.failed += 1
            if ev["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self.succeeded += 1
        return self.failed

    def close(self):
        self.sock.disable_monitor()
        self.mon.close(0)
        self.sock.close(0)


def part_intruders_refused():
    pipe = Pipeline("curve-intruder")
    gw = Pushgateway(pipe.tmp)
    pipe.gateway_url = gw.url
    ctx = zmq.Context()
    intruders = []
    ok = False
    try:
        keys = os.path.join(pipe.tmp, "keys")
        rogue = os.path.join(pipe.tmp, "rogue-keys")
        make_keys(keys, "server", "worker-1")
        make_keys(rogue, "rogue")  # a perfectly valid pair, just not in keys/allowed.pub
        server_pub = read_key(os.path.join(keys, "server.pub"))
        count = 100
        sink = pipe.start_sink(*server_flags(keys))
        prod = pipe.start_producer("--rate", "0", "--count", str(count), "--ack-timeout", "500",
                                   "--drain-timeout", "1000", *server_flags(keys))
        wait_for(lambda: prod.has_log("sink is listening; sending records"), 20,
                 "the CURVE producer to hear the CURVE sink")

        plain_worker = pipe.start_worker("intruder-plain")
        # Right server key, own valid pair, but not allowed.
        rogue_worker = pipe.start_worker("intruder-rogue", *client_flags(rogue, "rogue", server_keys=keys))
        for kind, ep in ((zmq.DEALER, pipe.ep(pipe.in_port)), (zmq.PUSH, pipe.ep(pipe.out_port))):
            for rdir in (None, rogue):
                intruders.append(Intruder(ctx, kind, ep, server_pub, rdir))
        for it in intruders:
            # What an intruder would send: credit asking the producer for
            # records, or records for the sink.  A refused client's send may
            # queue or fail (no connection ever completes); either is fine:
            # what counts is that nothing gets in or out, checked below.
            msgs = ([credit_message(count, count)] if it.sock.socket_type == zmq.DEALER
                    else [valid_record("evil", seq) for seq in range(count)])
            for m in msgs:
                try:
                    it.sock.send(m, zmq.NOBLOCK)
                except zmq.Again:
                    pass

        # Positive evidence first: every raw client saw its handshake refused,
        # and both binding stages logged the refused worker key.
        for it in intruders:
            wait_for(it.drain_events, 10, "a refused handshake for the %s client" % it.name)
        for stage in (prod, sink):
            wait_for(lambda: stage.has_log("connection refused: client key not allowed"), 10,
                     "%s to log the unlisted key" % stage.name)
        # Then the bounded wait for what must not happen: 2 s in which
        # nothing reaches any intruder and nothing reaches the sink's files.
        pullers = [it for it in intruders if it.sock.socket_type == zmq.DEALER]
        poller = zmq.Poller()
        for it in pullers:
            poller.register(it.sock, zmq.POLLIN)
        got = dict(poller.poll(2000))
        check(not got, "an intruder DEALER socket received a record from the CURVE producer")
        for it in intruders:
            it.drain_events()
            check(it.succeeded == 0, "the %s client completed a handshake" % it.name)
        check(pwtest.count_lines(pipe.out) == 0 and pwtest.count_lines(pipe.dead) == 0,
              "the sink wrote something while only intruders were connected")
        check(plain_worker.alive() and rogue_worker.alive(), "an intruder worker died")
        for w in (plain_worker, rogue_worker):
            wait_for(lambda: gw.value("pipeline_records_processed_total", job=pipe.job,
                                      instance=w.name) is not None, 10, "%s to push its metrics" % w.name)
            v = gw.value("pipeline_records_processed_total", job=pipe.job, instance=w.name)
            check(v == 0, "%s processed %s records" % (w.name, v))
        in_flight = gw.value("pipeline_records_in_flight", job=pipe.job, instance="producer")
        log("while only intruders were connected: sink files empty, producer in flight %s" % in_flight)

        # Now the allowed worker: everything arrives, once.
        pipe.start_worker("worker-1", *client_flags(keys, "worker-1"))
        check(prod.wait(60) == 0, "producer did not finish once an allowed worker came")
        pipe.assert_exactly_once("p1", count)
        outs, deads = pipe.read_files()
        strangers = [r for r in outs + deads if r.get("producer") != "p1"]
        check(not strangers, "records from intruders reached the files: %r" % strangers[:2])
        for w in (plain_worker, rogue_worker):
            check(w.stop() == 0, "%s did not stop cleanly" % w.name)
            # The final push after a clean stop carries the final figures.
            processed = gw.value("pipeline_records_processed_total", job=pipe.job, instance=w.name)
            errors = gw.value("pipeline_errors_total", job=pipe.job, instance=w.name)
            check(processed == 0 and errors == 0,
                  "%s ended with processed=%s errors=%s" % (w.name, processed, errors))
            stats = [l for l in w.logs() if l.get("msg") == "stats"]
            check(stats and all(l["processed"] == 0 for l in stats), "%s stats lines: %r" % (w.name, stats[-1:]))
        log("intruders: %s refused at the handshake, 0 records in or out; %d records exactly once after"
            % (", ".join(it.name for it in intruders) + ", plain worker, unlisted-key worker", count))
        pipe.stop_all()
        ok = True
    finally:
        for it in intruders:
            it.close()
        ctx.term()
        pipe.cleanup(ok)
        gw.stop()


def part_server_needs_allow_list():
    pipe = Pipeline("curve-noallow")
    ok = False
    try:
        keys = os.path.join(pipe.tmp, "keys")
        make_keys(keys, "server")
        flags = server_flags(keys)[:-2]  # no --curve-allow-file
        p = pwtest.Proc("sink-noallow", [binary("sink"), "--bind", pipe.ep(pipe.out_port), "--ack",
                                         pipe.ep(pipe.ack_port), "--out", pipe.out, "--dead-letter",
                                         pipe.dead] + flags, pipe.tmp)
        pipe.procs.append(p)
        rc = p.wait(20)
        check(rc == 1, "a CURVE sink without an allow list exited %s, expected 1" % rc)
        check(any(l.get("level") == "error" for l in p.logs()), "no error log line for the missing allow list")
        ok = True
    finally:
        pipe.cleanup(ok)


def main():
    part_pipeline_delivers()
    log("CURVE pipeline: %d records exactly once" % COUNT)
    part_intruders_refused()
    part_server_needs_allow_list()
    log("CURVE server without an allow list: refused to start (exit 1)")


if __name__ == "__main__":
    main()

"""Every stdout line of every stage is a JSON object with ts, level,
stage, msg (and instance); bad flags exit 2 with a one-line message naming
the flag; --help and --version exit 0; a runtime failure (cannot bind)
is a JSON error line and exit 1."""
import json
import re
import socket
import subprocess

from pwtest import Pipeline, binary, check, free_port, log

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

BAD_FLAGS = {
    "producer": [["--rate", "12abc"], ["--rate", "-5"], ["--count", ""], ["--fault-rate", "1.5"],
                 ["--fault-rate", "nan"], ["--fault-kinds", "all,bogus"], ["--ack-timeout", "0"],
                 ["--bind", "localhost"], ["--push-interval", "0"], ["--log-level", "loud"],
                 ["--no-such-flag"], ["--id", ""]],
    "worker": [["--delay-ms", "1e3"], ["--in", "tcp://127.0.0.1:1,"], ["--out", ""],
               ["--push-interval", "-1"], ["--bogus"]],
    "sink": [["--fsync", "sometimes"], ["--bind", "udp://x:1"], ["--dedup-window", "10"],
             ["--fsync-interval", "abc"], ["--job"]],
}


def check_flags():
    for stage, cases in BAD_FLAGS.items():
        for args in cases:
            r = subprocess.run([binary(stage)] + args, capture_output=True, text=True, timeout=10)
            flag = args[0]
            check(r.returncode == 2, "%s %s exited %d, not 2" % (stage, args, r.returncode))
            first = r.stderr.splitlines()[0] if r.stderr else ""
            check(first.startswith("%s: %s" % (stage, flag)),
                  "%s %s: stderr does not name the flag: %r" % (stage, args, r.stderr))
            check(r.stdout == "", "%s %s wrote to stdout on a usage error" % (stage, args))
        h = subprocess.run([binary(stage), "--help"], capture_output=True, text=True, timeout=10)
        check(h.returncode == 0 and "--pushgateway" in h.stdout, "%s --help" % stage)
        v = subprocess.run([binary(stage), "--version"], capture_output=True, text=True, timeout=10)
        check(v.returncode == 0 and v.stdout.startswith(stage + " "), "%s --version: %r" % (stage, v.stdout))
    log("bad flags: %d cases exit 2 naming the flag" % sum(len(c) for c in BAD_FLAGS.values()))


def check_lines(proc):
    lines = proc.log_lines()
    check(lines, "%s wrote no log lines" % proc.name)
    for rec in proc.logs():
        for k in ("ts", "level", "stage", "instance", "msg"):
            check(k in rec, "%s log line without %s: %r" % (proc.name, k, rec))
        check(TS.match(rec["ts"]), "%s ts %r is not RFC 3339 UTC with ms" % (proc.name, rec["ts"]))
        check(rec["level"] in ("debug", "info", "warn", "error"), "bad level %r" % rec["level"])
    return len(lines)


def main():
    check_flags()
    pipe = Pipeline("logs")
    ok = False
    try:
        pipe.start_sink("--log-level", "debug")
        pipe.start_worker("worker-1", "--log-level", "debug")
        prod = pipe.start_producer("--rate", "2000", "--count", "3000", "--fault-rate", "0.2",
                                   "--log-level", "debug")
        check(prod.wait(60) == 0, "producer failed")
        pipe.stop_all()
        n = sum(check_lines(p) for p in pipe.procs)
        for p in pipe.procs:
            check(p.has_log("stopped"), "%s did not log 'stopped'" % p.name)
        log("%d log lines from 3 stages all parse" % n)

        # Runtime failure: the port is taken -> JSON error line, exit 1.
        busy = Pipeline("logs-busy")
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        busy.out_port = s.getsockname()[1]
        r = subprocess.run([binary("sink"), "--bind", busy.ep(busy.out_port), "--ack", busy.ep(free_port()),
                            "--out", busy.out, "--dead-letter", busy.dead], capture_output=True, text=True,
                           timeout=20)
        s.close()
        check(r.returncode == 1, "sink on a taken port exited %d, not 1" % r.returncode)
        errs = [json.loads(l) for l in r.stdout.splitlines() if '"error"' in l]
        check(any(e["level"] == "error" and "bind" in e["msg"] for e in errs),
              "no JSON error line about the bind: %r" % r.stdout)
        busy.cleanup(True)
        ok = True
    finally:
        pipe.cleanup(ok)


if __name__ == "__main__":
    main()

"""kill -9 of the sink between write and sync, then a restart on the same
files.  The first sink syncs once at start and then only every 60 s, so
when it is killed its files hold written lines no sync covered; the
producer re-sends them and the restarted sink finds them recovered.  It
must fdatasync both recovered files before it can acknowledge anything:
strace of the restarted sink shows fdatasync of both files before the ack
socket is even bound and before the first ack or greeting is sent.  The
run still ends with every id exactly once."""
import os
import re
import shutil
import signal
import subprocess
import sys

from pwtest import Pipeline, Proc, SANITIZED, check, count_lines, log, sink_argv, wait_for

COUNT = 5000 if SANITIZED else 20000
RATE = 2000 if SANITIZED else 5000


def strace_works():
    exe = shutil.which("strace")
    if not exe:
        return None, "strace is not installed"
    r = subprocess.run([exe, "-f", "-o", os.devnull, "true"], capture_output=True)
    if r.returncode != 0:
        return None, "strace cannot trace here: %s" % r.stderr.decode(errors="replace").strip()
    return exe, None


def parse_trace(path, out, dead):
    """Events in order: ("open", path, fd), ("fdatasync", fd), ("bind",), ("send", payload)."""
    events = []
    with open(path, errors="replace") as f:
        for line in f:
            m = re.search(r'openat\([^,]+, "([^"]+)", [^)]*\)\s+=\s+(\d+)', line)
            if m and m.group(1) in (out, dead):
                events.append(("open", m.group(1), int(m.group(2))))
                continue
            m = re.search(r"fdatasync\((\d+)\)\s+=\s+0", line)
            if m:
                events.append(("fdatasync", int(m.group(1))))
                continue
            if re.search(r"\bbind\(", line) and "= 0" in line:
                events.append(("bind",))
                continue
            m = re.search(r'\bsend(?:to|msg)?\(\d+, (.*)', line)
            if m and ("PWA1" in m.group(1) or "PWG1" in m.group(1)):
                events.append(("send", m.group(1)[:80]))
    return events


def main():
    exe, why = strace_works()
    if not exe:
        log("SKIP: " + why)
        sys.exit(77)
    pipe = Pipeline("sink-recovery-sync")
    ok = False
    try:
        first = pipe.start_sink("--fsync", "batch", "--fsync-interval", "60000")
        pipe.start_worker("worker-1")
        pipe.start_worker("worker-2")
        prod = pipe.start_producer("--rate", str(RATE), "--count", str(COUNT), "--fault-rate", "0.05",
                                   "--ack-timeout", "1000")
        wait_for(lambda: count_lines(pipe.out) >= COUNT // 4, 60, "a quarter of the records written")
        first.kill9()
        lines = count_lines(pipe.out) + count_lines(pipe.dead)
        log("killed the first sink with %d lines written, most never synced" % lines)

        trace = os.path.join(pipe.tmp, "sink.strace")
        # LeakSanitizer cannot run under ptrace: off for this one process.
        asan = "ASAN_OPTIONS=" + ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"), "detect_leaks=0"]))
        argv = ["env", asan, exe, "-f", "-s", "64", "-o", trace,
                "-e", "trace=openat,fdatasync,bind,sendto,sendmsg"] + sink_argv(pipe, "sink-restarted",
                                                                                 "--fsync", "batch")
        second = Proc("sink-restarted", argv, pipe.tmp)
        wait_for(lambda: (not second.alive()) or second.has_log("sinking"), 60, "the restarted sink")
        check(second.alive(), "restarted sink exited: %s" % second.stderr()[-2000:])
        rc = prod.wait(180)
        check(rc == 0, "producer exited %s" % rc)
        os.killpg(second.pid, signal.SIGTERM)
        second.wait(30)

        recovered = [l for l in second.logs() if l.get("msg") == "recovered written records"]
        check(recovered and recovered[0]["lines"] >= lines,
              "restarted sink recovered %s, files had %d lines" % (recovered, lines))
        events = parse_trace(trace, pipe.out, pipe.dead)
        fds = {}
        for e in events:
            if e[0] == "open":
                fds.setdefault(e[1], e[2])
        check(pipe.out in fds and pipe.dead in fds, "strace saw no open of both files: %s" % events[:10])
        first_bind = next((i for i, e in enumerate(events) if e[0] == "bind"), None)
        first_send = next((i for i, e in enumerate(events) if e[0] == "send"), None)
        check(first_bind is not None and first_send is not None, "strace saw no bind or no ack sent")
        for path, fd in fds.items():
            sync = next((i for i, e in enumerate(events) if e == ("fdatasync", fd)), None)
            check(sync is not None, "recovered %s (fd %d) was never fdatasynced" % (path, fd))
            check(sync < first_bind and sync < first_send,
                  "fdatasync of %s at event %d, after the first bind (%d) or send (%d)"
                  % (path, sync, first_bind, first_send))
        log("strace: both recovered files fdatasynced before the first bind (event %d) and the first ack "
            "or greeting on the wire (event %d)" % (first_bind, first_send))
        pipe.assert_exactly_once("p1", COUNT)
        ok = True
    finally:
        pipe.cleanup(ok)
        if not ok:
            for p in pipe.procs:
                if p.alive():
                    p.kill9()


if __name__ == "__main__":
    main()

"""Disk full: the sink's files on a 512 KiB tmpfs.  When a write fails the
sink logs the file and the errno text and exits 1; no record it did not
write was acknowledged (a SUB on the ack endpoint records every ack, and
each acknowledged id is in the files), the files hold whole lines only, and
no id twice.  With space back (the tmpfs grown) a restarted sink on the
same files takes the producer's re-sends: every id exactly once.

Needs mount(2) (CI runs as root); skipped (77) with the reason otherwise."""
import os
import subprocess
import sys

from pwtest import AckListener, Pipeline, check, log, wait_for

COUNT = 4000


def run(*argv):
    return subprocess.run(list(argv), capture_output=True, text=True)


def main():
    pipe = Pipeline("sink-disk-full")
    mnt = os.path.join(pipe.tmp, "small")
    os.mkdir(mnt)
    r = run("mount", "-t", "tmpfs", "-o", "size=512k,mode=0700", "tmpfs", mnt)
    if r.returncode != 0:
        log("SKIP: cannot mount a small tmpfs (needs root/CAP_SYS_ADMIN): %s" % r.stderr.strip())
        pipe.cleanup(True)
        sys.exit(77)
    pipe.out = os.path.join(mnt, "out.ndjson")
    pipe.dead = os.path.join(mnt, "dead.ndjson")
    ok = False
    listener = None
    try:
        sink = pipe.start_sink()
        listener = AckListener(pipe.ep(pipe.ack_port), "p1")
        wait_for(lambda: listener.window is not None, 20, "the sink's greeting")
        pipe.start_worker("worker-1")
        pipe.start_worker("worker-2")
        prod = pipe.start_producer("--rate", "2000", "--count", str(COUNT), "--fault-rate", "0.05",
                                   "--fault-kinds", "malformed_json,missing_field,invalid_value,empty",
                                   "--ack-timeout", "1000")
        rc = sink.wait(120)
        check(rc == 1, "sink exited %s on a full disk, not 1" % rc)
        errors = [l for l in sink.logs() if l.get("level") == "error" and l.get("file") in (pipe.out, pipe.dead)]
        check(errors and errors[0].get("error") == "No space left on device",
              "no error naming the file and ENOSPC: %s" % sink.log_lines()[-5:])
        log("sink stopped: %s" % errors[0])
        acked = listener.acked_seqs()
        outs, deads = pipe.read_files()  # every line whole (read_files checks each ends in a newline)
        written = [r["seq"] for r in outs + deads]
        check(len(written) == len(set(written)), "an id written twice before the disk filled")
        missing = acked - set(written)
        check(not missing, "%d acknowledged ids are not in the files, e.g. %s" % (len(missing), sorted(missing)[:5]))
        check(len(written) < COUNT, "the disk did not fill (%d lines)" % len(written))
        check(acked, "nothing was acknowledged before the disk filled: the test proves too little")
        log("before restart: %d lines written, %d acknowledged, all acknowledged ones written"
            % (len(written), len(acked)))

        r = run("mount", "-o", "remount,size=64m", mnt)
        check(r.returncode == 0, "cannot grow the tmpfs: %s" % r.stderr)
        pipe.start_sink(name="sink-restarted")
        rc = prod.wait(120)
        check(rc == 0, "producer exited %s" % rc)
        pipe.stop_all()
        pipe.assert_exactly_once("p1", COUNT)
        ok = True
    finally:
        if listener:
            listener.stop()
        for p in pipe.procs:
            if p.alive():
                p.kill9()
        run("umount", "-l", mnt)
        pipe.cleanup(ok)


if __name__ == "__main__":
    main()

"""A second sink started on the files another sink is writing exits 1 at
once with a JSON error naming the file and the pid holding it, and touches
nothing; the first sink goes on unaffected, and once it has stopped a new
sink may open the files."""
import os

from pwtest import Pipeline, Proc, check, free_port, log, sink_argv


def main():
    pipe = Pipeline("sink-second")
    ok = False
    try:
        first = pipe.start_sink()
        pipe.start_worker("worker-1")
        prod = pipe.start_producer("--rate", "2000", "--count", "2000")
        sizes = (os.path.getsize(pipe.out), os.path.getsize(pipe.dead))
        second = Proc("sink-2", sink_argv(pipe, "sink-2", out_port=free_port(), ack_port=free_port()), pipe.tmp)
        rc = second.wait(30)
        check(rc == 1, "second sink exited %s, not 1" % rc)
        errors = [l for l in second.logs() if l.get("level") == "error" and "locked" in l.get("msg", "")]
        check(errors, "second sink logged no lock error: %s" % second.log_lines()[-5:])
        e = errors[0]
        check(e.get("file") in (pipe.out, pipe.dead), "lock error names no file: %r" % e)
        check(e.get("holder_pid") == first.pid, "lock error names holder %s, not %d" % (e.get("holder_pid"), first.pid))
        log("second sink: %s" % e)
        check(os.path.getsize(pipe.out) >= sizes[0] and os.path.getsize(pipe.dead) >= sizes[1],
              "the second sink cut a file")
        check(prod.wait(60) == 0, "producer failed")
        pipe.assert_exactly_once("p1", 2000)
        first.stop()
        check(first.p.returncode == 0, "first sink exited %s" % first.p.returncode)
        pipe.start_sink(name="sink-3")  # the lock went with its holder
        ok = True
    finally:
        pipe.stop_all()
        pipe.cleanup(ok)


if __name__ == "__main__":
    main()

"""`./pipeline up` with a test Pushgateway: `./pipeline inject` into it
reports what it sent and what the workers rejected by reason (and says so,
exit 1, when no pipeline is there; names a bad flag, exit 2); kill -9 of a
worker makes
`./pipeline status` (and the launcher's live line) say DOWN for it, with
its rate unknown, while the other stages stay UP and the run goes on; a
stage that exits on its own (the sink cannot open its output file) ends
`up` with the stage's message and status 1; a bad flag exits 2 before
anything starts.

Stages and the launcher run on free loopback ports (PIPEWATCH_PORT_BASE),
files and pids in the test's temp dir (PIPEWATCH_RUN_DIR), binaries of this
build (PIPEWATCH_BUILD)."""
import os
import signal
import subprocess
import time

import shutil
import tempfile

from pwtest import BUILD, SOURCE, Proc, Pushgateway, check, free_port_block, log, wait_for

LAUNCHER = os.path.join(SOURCE, "pipeline")


def env_for(tmp, gw_url, base):
    env = dict(os.environ, PIPEWATCH_BUILD=os.path.abspath(BUILD), PIPEWATCH_RUN_DIR=tmp,
               PIPEWATCH_PORT_BASE=str(base), PUSHGATEWAY_URL=gw_url)
    return env


def status(env):
    """(exit code, {instance: row dict}) of `./pipeline status --sample 0`."""
    r = subprocess.run([LAUNCHER, "status", "--sample", "0", "--job", "pipeline"], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
    lines = r.stdout.splitlines()
    rows = {}
    if lines and lines[0].startswith("JOB"):
        hdr = lines[0].split()
        for line in lines[1:]:
            cols = line.split()
            if len(cols) == len(hdr):
                rows[cols[2]] = dict(zip(hdr, cols))
    return r.returncode, rows, r.stdout


def pids(tmp):
    out = {}
    with open(os.path.join(tmp, "pids")) as f:
        for line in f:
            name, pid = line.split()
            out[name] = int(pid)
    return out


def main():
    tmp = tempfile.mkdtemp(prefix="pipewatch-lag-stage-down-")
    ok = False
    gw = Pushgateway(tmp)
    up = None
    try:
        # A bad flag: exit 2 naming it, nothing started.
        base = free_port_block(4)
        env = env_for(tmp, gw.url, base)
        r = subprocess.run([LAUNCHER, "up", "--fault-rate", "5"], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=30)
        check(r.returncode == 2 and "--fault-rate" in r.stderr,
              "up --fault-rate 5: exit %d, stderr %r" % (r.returncode, r.stderr))
        check(not os.path.exists(os.path.join(tmp, "pids")), "up --fault-rate 5 started something")

        # A stage that exits on its own ends `up` with its message and status 1.
        bad_dir = os.path.join(tmp, "bad")
        os.makedirs(os.path.join(bad_dir, "out.ndjson"))  # the sink cannot open a directory as its file
        r = subprocess.run([LAUNCHER, "up"], env=dict(env, PIPEWATCH_RUN_DIR=bad_dir), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=90)
        check(r.returncode == 1 and "stage sink exited on its own" in r.stderr,
              "up with an unwritable sink output: exit %d, stderr %r" % (r.returncode, r.stderr[-1500:]))
        log("a stage exiting on its own ends `up` (exit 1): %s" % r.stderr.splitlines()[0])

        # The real run: kill -9 worker-1 and watch it go DOWN.
        base = free_port_block(4)
        env = env_for(tmp, gw.url, base)
        os.environ.update(env)  # Proc passes its environment on
        up = Proc("up", [LAUNCHER, "up", "--rate", "500"], tmp)

        def all_up():
            check(up.alive(), "`./pipeline up` exited: %s" % up.stderr()[-2000:])
            rc, rows, _ = status(env)
            want = {"producer-1", "worker-1", "worker-2", "sink-1"}
            return rows if rc == 0 and want <= set(rows) and all(rows[i]["STATE"] == "UP" for i in want) else None
        wait_for(all_up, 60, "all four stages UP in ./pipeline status", interval=0.5)
        # inject into it: progress, acknowledgement and the summary by reason.
        r = subprocess.run([LAUNCHER, "inject", "--kind", "malformed_json,empty", "--count", "200",
                            "--rate", "400"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=120)
        check(r.returncode == 0, "inject exited %d: %s %s" % (r.returncode, r.stdout, r.stderr))
        check("inject: sending 200 faulty record(s) of kind malformed_json,empty" in r.stdout
              and "inject: 200 record(s) sent and acknowledged by the sink" in r.stdout
              and "by reason: empty " in r.stdout and "malformed_json " in r.stdout,
              "inject output: %r" % r.stdout)
        log(r.stdout.rstrip())
        # inject with no pipeline there: says so, exit 1, no waiting for ever.
        r = subprocess.run([LAUNCHER, "inject", "--kind", "empty", "--count", "5"],
                           env=dict(env, PIPEWATCH_PORT_BASE=str(free_port_block(4))),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
        check(r.returncode == 1 and "no pipeline is running" in r.stderr,
              "inject without a pipeline: exit %d, %r" % (r.returncode, r.stderr))
        r = subprocess.run([LAUNCHER, "inject", "--count", "10", "--kind"], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=30)
        check(r.returncode == 2 and r.stderr.startswith("pipeline inject: --kind: missing value"),
              "inject --kind without a value: exit %d, %r" % (r.returncode, r.stderr))
        r = subprocess.run([LAUNCHER, "inject", "--count", "10", "--kind", "bogus"], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
        check(r.returncode == 2 and "--kind: unknown kind 'bogus'" in r.stderr and "fault-kinds" not in r.stderr,
              "inject --kind bogus: exit %d, %r" % (r.returncode, r.stderr))

        victim = pids(tmp)["worker-1"]
        t_kill = time.monotonic()
        os.kill(victim, signal.SIGKILL)

        def down():
            rc, rows, text = status(env)
            w = rows.get("worker-1")
            return (rows, text) if w and w["STATE"] == "DOWN" else None
        rows, text = wait_for(down, 60, "worker-1 DOWN in ./pipeline status", interval=0.5)
        waited = time.monotonic() - t_kill
        log(text.rstrip())
        check(rows["worker-1"]["RATE"] == "?" and rows["worker-1"]["FRESHNESS"] == "?",
              "DOWN worker-1 shows a rate or freshness: %s" % rows["worker-1"])
        for inst in ("producer-1", "worker-2", "sink-1"):
            check(rows[inst]["STATE"] == "UP", "%s is %s, not UP" % (inst, rows[inst]["STATE"]))
        # its last push was at most one push interval (2 s) before the kill
        check(waited >= 12.5, "worker-1 DOWN after %.1fs, before 15 s without a push" % waited)
        check("DOWN" in text.split("\n", 1)[1] and "1 stage instance(s) DOWN" in text, "no DOWN note: %s" % text)
        check(up.alive(), "`./pipeline up` stopped after a worker was killed: %s" % up.stderr()[-1500:])
        check("was killed by signal 9" in up.stderr(), "up did not report the kill: %r" % up.stderr()[-800:])
        # The launcher's live line says it too.
        wait_for(lambda: "DOWN: worker-1 (rate ?)" in open(up.stdout_path).read(), 10,
                 "the live status line to show worker-1 DOWN", interval=0.2)
        log("worker-1 DOWN in ./pipeline status %.1fs after kill -9; live line too" % waited)

        # Ctrl-C (SIGINT to the launcher): stages stop first, their final
        # pushes land (pipeline_stage_up 0 -> STOPPED), then `up` exits 0.
        os.kill(up.pid, signal.SIGINT)
        rc = up.wait(60)
        check(rc == 0, "up exited %s after SIGINT" % rc)
        rc, rows, text = status(env)
        for inst in ("producer-1", "worker-2", "sink-1"):
            check(rows[inst]["STATE"] == "STOPPED", "%s after Ctrl-C is %s, want STOPPED (final push lost?)\n%s"
                  % (inst, rows[inst]["STATE"], text))
        check(rows["worker-1"]["STATE"] == "DOWN", "worker-1 after Ctrl-C: %s" % rows["worker-1"])
        for name, pid in pids(tmp).items():
            check(not os.path.exists("/proc/%d" % pid) or open("/proc/%d/stat" % pid).read().split()[2] == "Z",
                  "%s (pid %d) still runs after up exited" % (name, pid))
        log("PASS")
        ok = True
    finally:
        if up and up.alive():
            up.stop(signal.SIGTERM, 60)
        try:
            for name, pid in pids(tmp).items():
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        except OSError:
            pass
        gw.stop()
        if ok and not os.environ.get("PW_KEEP_TMP"):
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            log("kept temp dir " + tmp)


if __name__ == "__main__":
    main()

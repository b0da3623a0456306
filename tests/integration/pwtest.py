"""pwtest: harness for the integration tests (real binaries, real Pushgateway).

Every test gets its own temp dir and free loopback ports, so tests run in
parallel under `meson test`.  Processes are stopped by PID.  Waiting is
always "poll a condition until a deadline" (wait_for), never a bare sleep.
"""
import base64
import contextlib
import datetime
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

BUILD = os.environ.get("PW_BUILD_ROOT") or os.path.join(os.path.dirname(__file__), "..", "..", "build")
SOURCE = os.environ.get("PW_SOURCE_ROOT") or os.path.join(os.path.dirname(__file__), "..", "..")

# The Prometheus text-format parser is the one `./pipeline status` uses.
sys.dont_write_bytecode = True  # no __pycache__ in scripts/
sys.path.insert(0, os.path.join(SOURCE, "scripts"))
from pipeline_status import parse_samples  # noqa: E402
# Sanitizer builds are several times slower; tests scale their sizes down.
SANITIZED = "san" in os.path.basename(os.path.normpath(BUILD)) or os.environ.get("PW_SANITIZED") == "1"


def log(*args):
    print(*args, flush=True)


def fail(msg):
    log("FAIL: " + msg)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


# Ports handed out below the kernel's ephemeral range (32768-60999 by
# default): a port the kernel picks for bind(0) is also what it picks for the
# local side of other tests' outgoing connections, so a "free" port from
# there can be taken by a connect() in a parallel test before our server
# binds it.  Random ports from this range only race with other tests' own
# picks (1 in ~12 000 per pair), and never twice in one process.
_PORT_LO, _PORT_HI = 20000, 32000
_ports_given = set()
_port_rng = random.Random(os.getpid() ^ int(time.time() * 1e6))


def free_port():
    for _ in range(200):
        port = _port_rng.randrange(_PORT_LO, _PORT_HI)
        if port in _ports_given:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _ports_given.add(port)
        return port
    fail("no free loopback port in %d-%d" % (_PORT_LO, _PORT_HI))


def wait_for(cond, timeout, what, interval=0.02):
    """Polls cond() until it returns a truthy value or timeout passes."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            fail("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def http_get(url, timeout=5):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except Exception:
        return None, ""


def count_lines(path):
    try:
        with open(path, "rb") as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0


class Proc:
    def __init__(self, name, argv, logdir):
        self.name = name
        self.argv = argv
        self.stdout_path = os.path.join(logdir, name + ".out")
        self.stderr_path = os.path.join(logdir, name + ".err")
        self.p = subprocess.Popen(argv, stdout=open(self.stdout_path, "ab"),
                                  stderr=open(self.stderr_path, "ab"),
                                  stdin=subprocess.DEVNULL, start_new_session=True)
        self.pid = self.p.pid

    def alive(self):
        return self.p.poll() is None

    def wait(self, timeout):
        try:
            return self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            fail("%s did not exit within %.0fs" % (self.name, timeout))

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.p.poll() is None:
            os.kill(self.pid, sig)
            try:
                self.p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.p.wait()
                fail("%s ignored signal %d for %.0fs" % (self.name, sig, timeout))
        return self.p.returncode

    def kill9(self):
        if self.p.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
            self.p.wait()

    def log_lines(self):
        with open(self.stdout_path, "rb") as f:
            return f.read().decode("utf-8", "replace").splitlines()

    def logs(self):
        out = []
        for line in self.log_lines():
            try:
                out.append(json.loads(line))
            except ValueError:
                fail("%s wrote a stdout line that is not JSON: %r" % (self.name, line[:200]))
        return out

    def has_log(self, msg):
        return any(l.get("msg") == msg for l in self.logs())

    def stderr(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")


def start_server(name, argv_for_port, tmp, ready, timeout=15):
    """Starts a server on a free loopback port, retrying with another port if
    it does not come up (the port may have been taken meanwhile).
    argv_for_port(port) -> argv; ready(port) -> True once it answers.
    Returns (Proc, port)."""
    for _ in range(5):
        port = free_port()
        proc = Proc(name, argv_for_port(port), tmp)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.alive():
            if ready(port):
                return proc, port
            time.sleep(0.05)
        log("%s did not become ready on port %d: %s" % (name, port, proc.stderr()[-2000:]))
        proc.kill9()
    fail("could not start " + name)


def pushgateway_exe():
    return shutil.which("prometheus-pushgateway") or "/usr/bin/prometheus-pushgateway"


class Pushgateway:
    def __init__(self, tmp):
        self.proc, self.port = start_server("pushgateway", lambda port: [
            pushgateway_exe(), "--web.listen-address=127.0.0.1:%d" % port,
            "--persistence.file=" + os.path.join(tmp, "pushgateway.data"),
            "--log.level=warn"], tmp, lambda port: http_get("http://127.0.0.1:%d/-/ready" % port, 1)[0] == 200)

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def samples(self):
        """{(name, frozenset(labels)): value} of everything the gateway holds."""
        status, body = http_get(self.url + "/metrics")
        check(status == 200, "pushgateway /metrics answered %s" % status)
        return parse_text_format(body)

    def value(self, name, **labels):
        """Sum of the samples of `name` whose labels include `labels`."""
        return sum_samples(self.samples(), name, **labels)

    def stop(self):
        self.proc.stop()


def parse_text_format(body):
    """{(name, frozenset(labels.items())): value} of a Prometheus text-format body."""
    return {(name, frozenset(labels.items())): value for name, labels, value in parse_samples(body)}


def sum_samples(samples, name, **labels):
    """Sum of the samples (parse_text_format's dict) of `name` whose labels
    include `labels`; None when there is none."""
    total, found = 0.0, False
    for (n, ls), v in samples.items():
        d = dict(ls)
        if n == name and all(d.get(k) == val for k, val in labels.items()):
            total += v
            found = True
    return total if found else None


def binary(stage):
    return os.path.join(BUILD, stage, stage)


class Pipeline:
    """A producer/worker/sink set on free loopback ports in a temp dir."""

    def __init__(self, tag, gateway_url=None, push_interval="0.5"):
        self.tmp = tempfile.mkdtemp(prefix="pipewatch-%s-" % tag)
        self.in_port, self.out_port, self.ack_port = free_port(), free_port(), free_port()
        self.gateway_url = gateway_url
        self.push_interval = push_interval
        self.out = os.path.join(self.tmp, "out.ndjson")
        self.dead = os.path.join(self.tmp, "dead.ndjson")
        self.procs = []
        self.job = "itest-" + tag

    def ep(self, port):
        return "tcp://127.0.0.1:%d" % port

    def common(self, instance):
        args = ["--instance", instance, "--job", self.job, "--push-interval", self.push_interval]
        if self.gateway_url:
            args += ["--pushgateway", self.gateway_url]
        return args

    def _start(self, name, argv, ready_msg):
        p = Proc(name, argv, self.tmp)
        self.procs.append(p)
        wait_for(lambda: (not p.alive()) or p.has_log(ready_msg), 20, "%s to start" % name)
        check(p.alive(), "%s exited at start: %s %s" % (name, p.stderr(), p.log_lines()[-3:]))
        return p

    def start_sink(self, *extra, name="sink"):
        return self._start(name, [binary("sink"), "--bind", self.ep(self.out_port),
                                  "--ack", self.ep(self.ack_port), "--out", self.out,
                                  "--dead-letter", self.dead] + self.common(name) + list(extra), "sinking")

    def start_worker(self, name, *extra, inputs=None):
        ins = inputs or self.ep(self.in_port)
        return self._start(name, [binary("worker"), "--in", ins, "--out", self.ep(self.out_port)]
                           + self.common(name) + list(extra), "working")

    def start_producer(self, *extra, name="producer", pid="p1", port=None):
        return self._start(name, [binary("producer"), "--bind", self.ep(port or self.in_port),
                                  "--ack", self.ep(self.ack_port), "--id", pid]
                           + self.common(name) + list(extra), "producing")

    def stop_all(self):
        for p in reversed(self.procs):
            if p.alive():
                p.stop()

    def cleanup(self, ok=True):
        for p in self.procs:
            if p.alive():
                p.kill9()
        if ok and not os.environ.get("PW_KEEP_TMP"):
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            log("kept temp dir " + self.tmp)

    def read_files(self, partial_ok=False):
        """Returns (outputs, dead_letters) as lists of parsed JSON lines.
        partial_ok: the sink may be writing right now (polling while it
        runs): a last line without its newline yet is skipped, not an error."""
        outs, deads = [], []
        for path, dest in ((self.out, outs), (self.dead, deads)):
            if not os.path.exists(path):
                continue
            with open(path, "rb") as f:
                for n, line in enumerate(f, 1):
                    if partial_ok and not line.endswith(b"\n"):
                        break
                    check(line.endswith(b"\n"), "%s line %d has no newline" % (path, n))
                    try:
                        dest.append(json.loads(line))
                    except ValueError as e:
                        fail("%s line %d is not JSON (%s): %r" % (path, n, e, line[:200]))
        return outs, deads

    def assert_exactly_once(self, producer_id, count):
        """Every seq 0..count-1 of producer_id is in exactly one file, once."""
        outs, deads = self.read_files()
        seen = {}
        for rec in outs + deads:
            if rec.get("producer") != producer_id:
                continue
            seq = rec["seq"]
            seen[seq] = seen.get(seq, 0) + 1
        dups = [s for s, n in seen.items() if n > 1]
        missing = [s for s in range(count) if s not in seen]
        extra = [s for s in seen if not 0 <= s < count]
        check(not dups, "%d ids written more than once, e.g. %s" % (len(dups), dups[:5]))
        check(not missing, "%d ids never written, e.g. %s" % (len(missing), missing[:5]))
        check(not extra, "ids outside the produced range: %s" % extra[:5])
        log("exactly once: %d ids (%d output, %d dead letters)" % (count, len(outs), len(deads)))
        return outs, deads


def _reject_constant(name):
    raise ValueError("%s is not JSON" % name)


def expected_reason(raw):
    """Independent oracle: the reason a worker must give for these bytes
    (the rules of common/record.h, written again here in Python)."""
    if len(raw.strip(b" \t\r\n")) == 0:
        return "empty"
    if len(raw) > 64 * 1024:
        return "oversize"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "invalid_utf8"
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except ValueError:
        return "malformed_json"
    if not isinstance(obj, dict):
        return "invalid_value"
    required = ["id", "seq", "producer", "ts", "trace_id", "kind", "payload"]
    for k in required:
        if k not in obj:
            return "missing_field"
    if not isinstance(obj["payload"], dict):
        return "invalid_value"
    for k in ["user_id", "amount", "items"]:
        if k not in obj["payload"]:
            return "missing_field"
    p = obj["payload"]
    def is_int(v):
        return isinstance(v, int) and not isinstance(v, bool)
    def is_num(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    ok = (isinstance(obj["id"], str) and 1 <= len(obj["id"].encode()) <= 128
          and is_int(obj["seq"]) and obj["seq"] >= 0
          and isinstance(obj["producer"], str) and 1 <= len(obj["producer"].encode()) <= 64
          and is_num(obj["ts"]) and 0 < obj["ts"] < 4102444800
          and isinstance(obj["trace_id"], str) and re.fullmatch(r"[0-9a-f]{32}", obj["trace_id"])
          and isinstance(obj["kind"], str) and 1 <= len(obj["kind"].encode()) <= 32
          and is_int(p["user_id"]) and p["user_id"] >= 0
          and is_num(p["amount"]) and p["amount"] >= 0
          and is_int(p["items"]) and 0 <= p["items"] <= 10000)
    if not ok:
        return "invalid_value"
    if p["amount"] * 100 >= 2 ** 53:
        return "processing"
    return None


def dead_letter_raw(d):
    return base64.b64decode(d["raw_b64"])


def valid_record(producer, seq, amount=1.25):
    """The bytes of one valid record, as a raw client would send it."""
    return json.dumps({"id": "%s-%d" % (producer, seq), "seq": seq, "producer": producer, "ts": time.time(),
                       "trace_id": "%032x" % (seq + 1), "kind": "order",
                       "payload": {"user_id": seq, "amount": amount, "items": 1}}).encode()


def log_seconds(ts):
    """Seconds since the epoch of a log line's ts (RFC 3339 UTC with
    milliseconds, e.g. 2026-11-29T12:00:38.306Z)."""
    return datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def send_to_ack_seconds(prod, what="producer"):
    """Seconds from a producer's first send ("sink is listening; sending
    records") to its last ack ("all records acknowledged"), by its own log
    clock: unlike process exit, without the final push."""
    logs = prod.logs()
    start = [l for l in logs if l["msg"] == "sink is listening; sending records"]
    end = [l for l in logs if l["msg"] == "all records acknowledged"]
    check(start and end, "%s log lacks its first-send or all-acknowledged line" % what)
    return log_seconds(end[0]["ts"]) - log_seconds(start[0]["ts"])


def kill9_mid_run(pipe, victim, count, rate, after_kill=None):
    """A paced run of `count` records (2 % faulty, --ack-timeout 1000) in
    which `victim` is killed with SIGKILL once a third of them is written;
    after_kill(lines) runs right after the kill, with the number of lines
    in both files then (e.g. to restart the victim).  Then the producer
    must finish cleanly and every id be written exactly once.
    Returns the producer."""
    prod = pipe.start_producer("--rate", str(rate), "--count", str(count), "--fault-rate", "0.02",
                               "--ack-timeout", "1000")
    wait_for(lambda: count_lines(pipe.out) >= count // 3, 60, "a third of the records written")
    victim.kill9()
    lines = count_lines(pipe.out) + count_lines(pipe.dead)
    log("killed %s (pid %d) with %d lines written" % (victim.name, victim.pid, lines))
    if after_kill:
        after_kill(lines)
    rc = prod.wait(120)
    check(rc == 0, "producer exited %s" % rc)
    pipe.assert_exactly_once("p1", count)
    return prod


def credit_message(grant, outstanding):
    """A worker's credit message (wire.h "Credit")."""
    return b"PWC1" + struct.pack("<II", grant, outstanding)


def greeting(producer, dedup_window):
    """The sink's answer to a producer's subscription (wire.h "Greeting")."""
    return producer.encode() + b"\0PWG1" + struct.pack("<Q", dedup_window)


GATEWAY_OWN_FAMILIES = ("push_time_seconds", "push_failure_time_seconds")


def pushed_families(gw, job):
    """What the stages of `job` pushed to the gateway, as
    {stage: {family: (type, frozenset(label names))}}; label names leave
    out the grouping key (job, stage, instance) and a histogram's `le`.
    Families the gateway adds to every group itself are left out."""
    status, body = http_get(gw.url + "/metrics")
    check(status == 200, "pushgateway /metrics answered %s" % status)
    family, ftype = None, None
    out = {}
    for line in body.splitlines():
        if line.startswith("# TYPE "):
            _, _, family, ftype = line.split(" ", 3)
            continue
        for name, labels, _ in parse_samples(line):
            if labels.get("job") != job or family in GATEWAY_OWN_FAMILIES:
                continue
            suffixes = ("_bucket", "_sum", "_count") if ftype == "histogram" else ("",)
            check(any(name == family + s for s in suffixes),
                  "sample %s outside its family %s (%s)" % (name, family, ftype))
            names = frozenset(labels) - {"job", "stage", "instance", "le"}
            fams = out.setdefault(labels.get("stage"), {})
            prev = fams.get(family)
            check(prev is None or prev == (ftype, names),
                  "%s pushed %s with label sets %s and %s" % (labels.get("stage"), family, prev, names))
            fams[family] = (ftype, names)
    return out


@contextlib.contextmanager
def scenario(tag, gateway=False):
    """A Pipeline (and a Pushgateway it pushes to, with gateway=True) for
    one test part: yields (pipe, gateway or None); on success stops every
    stage cleanly and removes the temp dir, on failure kills and keeps it."""
    pipe = Pipeline(tag)
    gw = None
    ok = False
    try:
        if gateway:
            gw = Pushgateway(pipe.tmp)
            pipe.gateway_url = gw.url
        yield pipe, gw
        pipe.stop_all()
        ok = True
    finally:
        pipe.cleanup(ok)
        if gw:
            gw.stop()
# ---- sink tests (test_sink_*.py) ----------------------------------------

def exactly_once_many(pipe, counts):
    """Like Pipeline.assert_exactly_once for several producers, reading the
    files once: counts = {producer_id: records}.  Returns (outs, deads)."""
    outs, deads = pipe.read_files()
    seen = {}
    for rec in outs + deads:
        key = (rec.get("producer"), rec.get("seq"))
        seen[key] = seen.get(key, 0) + 1
    dups = [k for k, n in seen.items() if n > 1]
    check(not dups, "%d ids written more than once, e.g. %s" % (len(dups), dups[:5]))
    missing = [(p, s) for p, n in counts.items() for s in range(n) if (p, s) not in seen]
    check(not missing, "%d ids never written, e.g. %s" % (len(missing), missing[:5]))
    extra = [k for k in seen if k[0] not in counts or not 0 <= k[1] < counts[k[0]]]
    check(not extra, "ids nobody produced: %s" % extra[:5])
    log("exactly once: %d ids from %d producers (%d output, %d dead letters)"
        % (sum(counts.values()), len(counts), len(outs), len(deads)))
    return outs, deads


class AckListener:
    """A SUB socket on the sink's ack endpoint, on its own thread, recording
    every seq acknowledged to `producer` (any run) and whether the sink's
    greeting (and its dedup window) arrived.  Lets a test check what was
    acknowledged against what is in the files."""

    def __init__(self, endpoint, producer):
        import struct
        import threading
        import zmq
        self._struct, self._zmq = struct, zmq
        self.producer = producer.encode()
        self.acked = set()
        self.window = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, args=(endpoint,), daemon=True)
        self._thread.start()

    def _run(self, endpoint):
        zmq, struct = self._zmq, self._struct
        ctx = zmq.Context()
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.SUBSCRIBE, self.producer + b"\0")
        sub.connect(endpoint)
        head = len(self.producer) + 1
        while not self._stop.is_set():
            if not sub.poll(100):
                continue
            msg = sub.recv()
            kind = msg[head:head + 4]
            if kind == b"PWG1":
                self.window = struct.unpack_from("<Q", msg, head + 4)[0]
            elif kind == b"PWA1":
                count = struct.unpack_from("<I", msg, head + 12)[0]
                seqs = []
                for i in range(count):
                    first, n = struct.unpack_from("<QI", msg, head + 16 + 12 * i)
                    seqs.extend(range(first, first + n))
                with self._lock:
                    self.acked.update(seqs)
        sub.close()
        ctx.term()

    def acked_seqs(self):
        with self._lock:
            return set(self.acked)

    def stop(self):
        self._stop.set()
        self._thread.join(5)


def sink_argv(pipe, name, *extra, out_port=None, ack_port=None):
    """The argv Pipeline.start_sink uses, for a sink a test starts itself
    (one expected to fail, or one under strace)."""
    return [binary("sink"), "--bind", pipe.ep(out_port or pipe.out_port), "--ack", pipe.ep(ack_port or pipe.ack_port),
            "--out", pipe.out, "--dead-letter", pipe.dead] + pipe.common(name) + list(extra)




# ---- helpers for the lag tests (tests/integration/test_lag_*.py) ----------

def free_port_block(n, tries=200):
    """A base port such that base .. base+n-1 are free on 127.0.0.1 now
    (for `./pipeline up`, whose endpoints are PIPEWATCH_PORT_BASE + 0..3).
    Picked like free_port (below the ephemeral range, never given twice in
    this process) and checked by binding each."""
    for _ in range(tries):
        base = free_port()
        if base + n > 65535:
            continue
        socks = []
        try:
            for p in range(base, base + n):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                s.bind(("127.0.0.1", p))
            _ports_given.update(range(base, base + n))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    fail("no block of %d free ports" % n)


class Prometheus:
    """A real Prometheus with the repository's rules, for the lag tests.

    Config rendered from prometheus/prometheus.yml.in by
    tests/monitoring/render-prometheus-config (as test_e2e_alerts does),
    scraping `gateway_port` with scrape and evaluation intervals of 1 s.
    Rules: copies of prometheus/rules/*.yml where only the `for:` of the
    alerts named in `for_overrides` ({alert: duration}) changes; thresholds
    and expressions are the shipped ones.  No Alertmanager (alerts are read
    from Prometheus's API).  Stopped by PID."""

    def __init__(self, tmp, gateway_port, for_overrides=None):
        import re as _re
        rules_src = os.path.join(SOURCE, "prometheus", "rules")
        rules = os.path.join(tmp, "rules")
        os.makedirs(rules, exist_ok=True)
        replaced = {}
        for name in sorted(os.listdir(rules_src)):
            if not name.endswith(".yml"):
                continue
            text = open(os.path.join(rules_src, name), encoding="utf-8").read()
            for alert, dur in (for_overrides or {}).items():
                text, n = _re.subn(r"(- alert: %s\n(?:(?!\s*- alert:).*\n)*?\s+for: )\S+\n" % _re.escape(alert),
                                   r"\g<1>%s\n" % dur, text)
                replaced[alert] = replaced.get(alert, 0) + n
            with open(os.path.join(rules, name), "w", encoding="utf-8") as f:
                f.write(text)
        for alert in (for_overrides or {}):
            check(replaced.get(alert, 0) >= 1, "no `for:` of %s to override in prometheus/rules" % alert)
        cfg = os.path.join(tmp, "prometheus.yml")
        subprocess.run([os.path.join(SOURCE, "tests", "monitoring", "render-prometheus-config"),
                        "--pushgateway", "127.0.0.1:%d" % gateway_port,
                        "--alertmanager", "127.0.0.1:%d" % free_port(),
                        "--rules-dir", rules, "-o", cfg], check=True)
        text = open(cfg, encoding="utf-8").read()
        for key in ("scrape_interval", "scrape_timeout", "evaluation_interval"):
            text, n = re.subn(r"^(  %s:) \S+$" % key, r"\g<1> 1s", text, flags=re.M)
            check(n == 1, "template has no global %s" % key)
        with open(cfg, "w", encoding="utf-8") as f:
            f.write(text)
        exe = shutil.which("prometheus") or "/usr/bin/prometheus"
        self.proc, self.port = start_server("prometheus", lambda port: [
            exe, "--config.file=" + cfg, "--storage.tsdb.path=" + os.path.join(tmp, "prometheus-data"),
            "--web.listen-address=127.0.0.1:%d" % port, "--log.level=warn"], tmp,
            lambda port: http_get("http://127.0.0.1:%d/-/ready" % port, 1)[0] == 200, timeout=60)
        self.url = "http://127.0.0.1:%d" % self.port

    def _get(self, path):
        status, body = http_get(self.url + path, 5)
        if status != 200:
            return None
        try:
            data = json.loads(body)
        except ValueError:
            return None
        return data.get("data") if data.get("status") == "success" else None

    def query(self, expr):
        """[(labels, value)] of an instant query; [] on error."""
        import urllib.parse
        data = self._get("/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        if not data:
            return []
        return [(r["metric"], float(r["value"][1])) for r in data.get("result", [])]

    def alerts(self, name, job, state=None):
        """{(stage, instance): alert} of the alerts named `name` for `job`."""
        data = self._get("/api/v1/alerts")
        out = {}
        for a in (data or {}).get("alerts", []):
            lab = a.get("labels", {})
            if lab.get("alertname") == name and lab.get("job") == job and (state is None or a.get("state") == state):
                out[(lab.get("stage"), lab.get("instance"))] = a
        return out

    def rules_loaded(self):
        data = self._get("/api/v1/rules")
        return bool(data) and any(r.get("name") == "PipelineLagHigh" for g in data["groups"] for r in g["rules"])

    def stop(self):
        if self.proc.alive():
            self.proc.stop()


def tool_or_skip(name):
    path = shutil.which(name) or os.path.join("/usr/bin", name)
    if not os.access(path, os.X_OK):
        log("SKIP: %s not found (./pipeline setup installs it)" % name)
        sys.exit(77)
    return path


class GrowthWatch:
    """Samples of pushed gauges of one group, read from the gateway, to
    check they grow with the wall clock (a stall: freshness climbs 1 s/s)."""

    def __init__(self, gateway, names, **labels):
        self.gateway, self.names, self.labels = gateway, names, labels
        self.samples = []  # (monotonic time, {name: value, "push_time_seconds": t})

    def sample(self):
        s = self.gateway.samples()
        row = {n: sum_samples(s, n, **self.labels) for n in self.names + ["push_time_seconds"]}
        if all(v is not None for v in row.values()):
            if not self.samples or row["push_time_seconds"] > self.samples[-1][1]["push_time_seconds"]:
                self.samples.append((time.monotonic(), row))
        return row

    def check_monotonic(self, name, tolerance):
        """Each pushed value at least the previous minus `tolerance`, and the
        growth between two pushes equal to the time between them within
        `tolerance` (the value is computed at push time)."""
        vals = [(r["push_time_seconds"], r[name]) for _, r in self.samples]
        check(len(vals) >= 3, "too few pushes of %s sampled: %s" % (name, vals))
        for (t0, v0), (t1, v1) in zip(vals, vals[1:]):
            check(v1 >= v0 - tolerance, "%s fell from %.3f to %.3f between pushes at %.1f and %.1f"
                  % (name, v0, v1, t0, t1))
            check(abs((v1 - v0) - (t1 - t0)) <= tolerance,
                  "%s grew %.3f s in %.3f s between two pushes (want 1 s/s within %.1f s)"
                  % (name, v1 - v0, t1 - t0, tolerance))
        return vals


def batch(producer, run, items):
    """A well-formed batch message (wire.h): items = [(seq, flags, ts, bytes)]."""
    name = producer.encode()
    out = [b"PWB1", bytes([len(name)]), name, struct.pack("<QI", run, len(items))]
    for seq, flags, ts, data in items:
        out.append(struct.pack("<QBdI", seq, flags, ts, len(data)))
        out.append(data)
    return b"".join(out)


def check_no_sanitizer_reports(procs):
    """No stage printed an AddressSanitizer/UBSan report on stderr."""
    for p in procs:
        err = p.stderr()
        check("Sanitizer" not in err and "runtime error:" not in err,
              "%s reported a sanitizer error:\n%s" % (p.name, err[-3000:]))

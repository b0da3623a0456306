"""End to end: the repository's alert rules in a real Prometheus, routed to a
real Alertmanager, fed by a real pipeline through a real Pushgateway.

  * prometheus-pushgateway, prometheus and prometheus-alertmanager on free
    127.0.0.1 ports, state in a temp dir;
  * Prometheus config rendered from prometheus/prometheus.yml.in by
    tests/monitoring/render-prometheus-config, then scrape and evaluation
    intervals set to 1 s (scrape_timeout 1 s) so that the test is quick;
  * rules: copies of prometheus/rules/*.yml.  The ONLY change is the `for:` of
    PipelineStageDown, 30s -> 2s (its 15 s push-age threshold in the
    expression is kept), to keep the test short.  Everything else, including
    PipelineHighErrorRate's `for: 15s`, is the shipped rule;
  * Alertmanager with alertmanager/alertmanager.yml as shipped (its webhook
    receivers point at 127.0.0.1:5001; deliveries fail, which does not matter:
    the test reads /api/v2/alerts);
  * sink, 2 workers reading from two producer endpoints, a producer at a paced
    rate; stages push every 0.5 s.

Then:
  (a) an injector (a second producer, --fault-rate 1 --fault-kinds
      malformed_json) feeds the workers: PipelineHighErrorRate must fire in
      Prometheus for the worker(s) handling the injected records
      (credit-based dispatch may use only one at this rate), for no other
      stage, and reach Alertmanager with
      severity=ticket, stage=worker and the instance;
  (c) tests/monitoring/dashboard_queries.py: every dashboard panel's
      expression returns data against this Prometheus;
  (b) kill -9 of worker-1: PipelineStageDown (severity=page) fires for
      worker-1 in Prometheus and Alertmanager, never for worker-2.

Waiting is polling with deadlines; every process is stopped by PID in the
finally block.  PW_KEEP_TMP=1 keeps the temp dir (logs of every process).
"""
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request

SOURCE = os.environ.get("PW_SOURCE_ROOT") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, os.path.join(SOURCE, "tests", "integration"))

import pwtest  # noqa: E402
from pwtest import (Pipeline, Pushgateway, SANITIZED, check, free_port, http_get, log,  # noqa: E402
                    wait_for)

HERE = os.path.dirname(os.path.abspath(__file__))
RULES_DIR = os.path.join(SOURCE, "prometheus", "rules")
AM_CONFIG = os.path.join(SOURCE, "alertmanager", "alertmanager.yml")

RATE = 200            # main producer, records/s (100 per worker)
INJECT_COUNT = 3000   # malformed records, at INJECT_RATE: ~1500 per worker, ~20 % of a minute's records
INJECT_RATE = 500
STAGE_DOWN_FOR = "2s"


def tool(name):
    path = shutil.which(name) or os.path.join("/usr/bin", name)
    if not os.access(path, os.X_OK):
        log("SKIP: %s not found (./pipeline setup installs it)" % name)
        sys.exit(77)
    return path


def write_rules(dst):
    """Copies the shipped rules, shortening only PipelineStageDown's `for:`."""
    os.makedirs(dst)
    replaced = 0
    for name in sorted(os.listdir(RULES_DIR)):
        if not name.endswith(".yml"):
            continue
        text = open(os.path.join(RULES_DIR, name), encoding="utf-8").read()
        text, n = re.subn(r"(- alert: PipelineStageDown\n(?:(?!\s*- alert:).*\n)*?\s+for: )30s\n",
                          r"\g<1>%s\n" % STAGE_DOWN_FOR, text)
        replaced += n
        with open(os.path.join(dst, name), "w", encoding="utf-8") as f:
            f.write(text)
    check(replaced == 1, "expected to shorten PipelineStageDown's `for: 30s` once, did %d times "
          "(did the shipped rule change? adjust write_rules)" % replaced)


def write_prometheus_config(path, rules_dir, gateway_port, am_port):
    subprocess.run([os.path.join(HERE, "render-prometheus-config"),
                    "--pushgateway", "127.0.0.1:%d" % gateway_port,
                    "--alertmanager", "127.0.0.1:%d" % am_port,
                    "--rules-dir", rules_dir, "-o", path], check=True)
    text = open(path, encoding="utf-8").read()
    for key, value in (("scrape_interval", "1s"), ("scrape_timeout", "1s"), ("evaluation_interval", "1s")):
        text, n = re.subn(r"^(  %s:) \S+$" % key, r"\1 %s" % value, text, flags=re.M)
        check(n == 1, "template has no global %s to override" % key)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def start_server(name, argv_for_port, tmp, ready_path):
    """Starts a server on a free port (retrying if the port got taken)."""
    return pwtest.start_server(name, argv_for_port, tmp,
                               lambda port: http_get("http://127.0.0.1:%d%s" % (port, ready_path), 1)[0] == 200,
                               timeout=60)


def get_json(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return json.load(r)
    except (OSError, ValueError):
        return None


class Alerts:
    def __init__(self, prom_port, am_port, job):
        self.prom = "http://127.0.0.1:%d" % prom_port
        self.am = "http://127.0.0.1:%d" % am_port
        self.job = job

    def prometheus(self, name, state=None):
        """Alerts of this job named `name` in Prometheus, {instance: alert}."""
        body = get_json(self.prom + "/api/v1/alerts")
        if not body or body.get("status") != "success":
            return {}
        return {a["labels"].get("instance"): a for a in body["data"]["alerts"]
                if a["labels"].get("alertname") == name and a["labels"].get("job") == self.job
                and (state is None or a.get("state") == state)}

    def alertmanager(self, name):
        """Active alerts of this job named `name` that Alertmanager holds, {instance: alert}."""
        body = get_json(self.am + "/api/v2/alerts?active=true&silenced=true&inhibited=true&unprocessed=true")
        if body is None:
            return {}
        return {a["labels"].get("instance"): a for a in body
                if a["labels"].get("alertname") == name and a["labels"].get("job") == self.job}


def check_am_labels(alert, name, severity, stage, instance):
    labels = alert["labels"]
    want = {"alertname": name, "severity": severity, "stage": stage, "instance": instance}
    got = {k: labels.get(k) for k in want}
    check(got == want, "Alertmanager has %s with labels %s, want %s" % (name, labels, want))
    summary = alert.get("annotations", {}).get("summary", "")
    check(stage in summary and instance in summary, "summary %r does not name %s/%s" % (summary, stage, instance))
    # An absolute link a notification can carry (external label runbook_base
    # of the rendered config), to the alert's section.
    url = alert.get("annotations", {}).get("runbook_url", "")
    want_url = "http://127.0.0.1:5001/runbook.md#" + name.lower()
    check(url == want_url, "runbook_url %r, want %r" % (url, want_url))


def main():
    t0 = time.monotonic()
    for t in ("prometheus", "promtool", "prometheus-alertmanager", "prometheus-pushgateway"):
        tool(t)
    pipe = Pipeline("e2e-alerts", push_interval="0.5")
    servers = []
    ok = False
    try:
        gw = Pushgateway(pipe.tmp)
        servers.append(gw.proc)
        pipe.gateway_url = gw.url

        am, am_port = start_server("alertmanager", lambda port: [
            tool("prometheus-alertmanager"), "--config.file=" + AM_CONFIG,
            "--storage.path=" + os.path.join(pipe.tmp, "alertmanager"),
            "--web.listen-address=127.0.0.1:%d" % port, "--cluster.listen-address=",
            "--log.level=warn"], pipe.tmp, "/-/ready")
        servers.append(am)

        rules = os.path.join(pipe.tmp, "rules")
        write_rules(rules)
        prom_yml = os.path.join(pipe.tmp, "prometheus.yml")
        write_prometheus_config(prom_yml, rules, gw.port, am_port)
        subprocess.run([tool("promtool"), "check", "config", prom_yml], check=True, stdout=subprocess.DEVNULL)
        prom, prom_port = start_server("prometheus", lambda port: [
            tool("prometheus"), "--config.file=" + prom_yml,
            "--storage.tsdb.path=" + os.path.join(pipe.tmp, "prometheus"),
            "--web.listen-address=127.0.0.1:%d" % port, "--log.level=warn"], pipe.tmp, "/-/ready")
        servers.append(prom)
        alerts = Alerts(prom_port, am_port, pipe.job)
        log("servers up after %.1fs: pushgateway %d, alertmanager %d, prometheus %d"
            % (time.monotonic() - t0, gw.port, am_port, prom_port))

        # Pipeline: the workers read the main producer and the injector endpoint.
        inject_port = free_port()
        inputs = "%s,%s" % (pipe.ep(pipe.in_port), pipe.ep(inject_port))
        pipe.start_sink()
        workers = {name: pipe.start_worker(name, inputs=inputs) for name in ("worker-1", "worker-2")}
        pipe.start_producer("--rate", str(RATE), "--ack-timeout", "2000")

        def rule_group_loaded():
            body = get_json(alerts.prom + "/api/v1/rules")
            return body and any(r.get("name") == "PipelineHighErrorRate"
                                for g in body["data"]["groups"] for r in g["rules"])
        wait_for(rule_group_loaded, 30, "Prometheus to load the rules", interval=0.2)

        # Clean traffic first: the workers handling records, no error alert.
        # Credit-based dispatch may give every record to one worker at this
        # rate (the first one with enough credit), so the alert is expected
        # for the workers that handle records, whichever they are.
        def flowing_workers():
            body = get_json(alerts.prom + "/api/v1/query?" + urllib.parse.urlencode({
                "query": 'job_stage_instance:pipeline_records_handled:rate1m{job="%s",stage="worker"} >= 1' % pipe.job}))
            return body and {r["metric"]["instance"] for r in body["data"]["result"]}
        wait_for(flowing_workers, 60, "a worker handling >= 1 record/s in Prometheus", interval=0.5)
        check(not alerts.prometheus("PipelineHighErrorRate"),
              "PipelineHighErrorRate active on clean traffic: %s" % alerts.prometheus("PipelineHighErrorRate"))
        log("clean traffic flowing after %.1fs" % (time.monotonic() - t0))

        # (a) injection -> PipelineHighErrorRate in Prometheus and Alertmanager
        # for the worker(s) that got the injected records, and only workers.
        t_inject = time.monotonic()
        pipe.start_producer("--rate", str(INJECT_RATE), "--count", str(INJECT_COUNT), "--fault-rate", "1",
                            "--fault-kinds", "malformed_json", "--ack-timeout", "2000",
                            name="injector", pid="inj", port=inject_port)

        firing = wait_for(lambda: alerts.prometheus("PipelineHighErrorRate", "firing"), 60,
                          "PipelineHighErrorRate firing in Prometheus", interval=0.5)
        log("PipelineHighErrorRate firing in Prometheus %.1fs after the injection started: %s"
            % (time.monotonic() - t_inject, {i: a["value"] for i, a in firing.items()}))
        for inst, a in firing.items():
            check(a["labels"].get("stage") == "worker" and a["labels"].get("severity") == "ticket",
                  "PipelineHighErrorRate labels %s" % a["labels"])
            check(float(a["value"]) > 0.05, "PipelineHighErrorRate value %s is not above 5 %%" % a["value"])
        check(set(firing) <= set(workers), "PipelineHighErrorRate fires for %s, not only the workers" % sorted(firing))
        in_am = wait_for(lambda: (lambda a: a if set(a) >= set(firing) else None)(
            alerts.alertmanager("PipelineHighErrorRate")),
            30, "PipelineHighErrorRate for %s at Alertmanager" % sorted(firing), interval=0.5)
        for inst in firing:
            check_am_labels(in_am[inst], "PipelineHighErrorRate", "ticket", "worker", inst)
        log("PipelineHighErrorRate at Alertmanager %.1fs after the injection started"
            % (time.monotonic() - t_inject))

        # (c) every dashboard panel's query returns data on this run.
        dq = subprocess.run([sys.executable, os.path.join(HERE, "dashboard_queries.py"),
                             "--prometheus", alerts.prom, "--job", pipe.job, "--wait", "30"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
        log(dq.stdout.rstrip())
        check(dq.returncode == 0, "dashboard_queries.py failed (exit %d)" % dq.returncode)

        # (b) kill -9 worker-1 -> PipelineStageDown for worker-1 only.
        check(not alerts.prometheus("PipelineStageDown"),
              "PipelineStageDown active before any kill: %s" % sorted(alerts.prometheus("PipelineStageDown")))
        t_kill = time.monotonic()
        workers["worker-1"].kill9()

        def stage_down():
            active = alerts.prometheus("PipelineStageDown")
            check("worker-2" not in active, "PipelineStageDown for worker-2, which is running: %s"
                  % active.get("worker-2"))
            return active if active.get("worker-1", {}).get("state") == "firing" else None
        down = wait_for(stage_down, 60, "PipelineStageDown firing for worker-1", interval=0.5)
        check(set(down) == {"worker-1"}, "PipelineStageDown active for %s, want only worker-1" % sorted(down))
        a = down["worker-1"]["labels"]
        check(a.get("stage") == "worker" and a.get("severity") == "page", "PipelineStageDown labels %s" % a)
        log("PipelineStageDown firing for worker-1 %.1fs after kill -9" % (time.monotonic() - t_kill))
        in_am = wait_for(lambda: (lambda d: d if "worker-1" in d else None)(alerts.alertmanager("PipelineStageDown")),
                         30, "PipelineStageDown for worker-1 at Alertmanager", interval=0.5)
        check(set(in_am) == {"worker-1"}, "Alertmanager has PipelineStageDown for %s" % sorted(in_am))
        check_am_labels(in_am["worker-1"], "PipelineStageDown", "page", "worker", "worker-1")
        check(workers["worker-2"].alive(), "worker-2 died")
        check(not alerts.prometheus("PipelineStageDown").get("worker-2"), "PipelineStageDown for worker-2")
        for p in pipe.procs:
            err = p.stderr()
            check("Sanitizer" not in err and "runtime error:" not in err,
                  "%s reported a sanitizer error:\n%s" % (p.name, err[-3000:]))
        log("PASS in %.1fs%s" % (time.monotonic() - t0, " (sanitizer build)" if SANITIZED else ""))
        ok = True
    finally:
        # Stages first (kill -9 by PID), then the servers (SIGTERM by PID),
        # then the temp dir (kept on failure, with every process's logs).
        for p in pipe.procs:
            p.kill9()
        for p in reversed(servers):
            if p.alive():
                p.stop()
        if not ok:
            for p in servers + pipe.procs:
                if os.path.exists(p.stderr_path) and p.stderr().strip():
                    log("--- %s stderr (tail)\n%s" % (p.name, p.stderr()[-1500:]))
        pipe.cleanup(ok)


if __name__ == "__main__":
    main()

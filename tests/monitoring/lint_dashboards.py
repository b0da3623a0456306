#!/usr/bin/env python3
"""Lint the provisioned Grafana dashboards (stdlib only).

Checks the conventions of grafana/dashboard-linter that pipewatch follows,
plus the provisioning wiring:

  * a `datasource` template variable (type datasource, query prometheus) whose
    current/default value is the uid of the provisioned Prometheus datasource;
  * `job` and `instance` variables: type query on $datasource, label_values()
    queries, multi-select, include All with allValue ".+";
  * every panel and every target uses {"type": "prometheus", "uid": "${datasource}"};
  * every range selector is [$__rate_interval] (so every rate/irate/increase);
  * every series selector has job=~"$job", and instance=~"$instance" unless it
    reads per-job series (slo:* and job:* recording rules: no instance label);
  * every panel has a title, a description and a unit; panel ids are unique;
  * only known template variables are referenced;
  * the dashboard provider reads the folder compose mounts the dashboards in.

usage: lint_dashboards.py [--root REPO]    exit 0 when clean, 1 with a list of problems
"""
import argparse
import json
import os
import re
import sys

DS_REF = {"type": "prometheus", "uid": "${datasource}"}
KNOWN_VARS = {"datasource", "job", "instance", "__rate_interval", "__interval", "__range",
              "__range_s", "__interval_ms"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
            "unless", "bool", "offset", "inf", "nan"}


# Series that have no instance label by construction: Sloth's per-job SLO
# series and recording rules whose level is `job:` (aggregated to the job).
PER_JOB = ("slo:", "job:")


class Lint:
    def __init__(self):
        self.problems = []

    def err(self, where, msg):
        self.problems.append(f"{where}: {msg}")


def provisioned_uid(root, lint):
    path = os.path.join(root, "grafana", "provisioning", "datasources", "prometheus.yml")
    try:
        text = open(path, encoding="utf-8").read()
    except OSError as e:
        lint.err(path, f"cannot read: {e}")
        return None
    uids = re.findall(r"^\s*uid:\s*['\"]?([A-Za-z0-9_-]+)['\"]?\s*$", text, re.M)
    types = re.findall(r"^\s*type:\s*['\"]?(\w+)", text, re.M)
    if len(uids) != 1:
        lint.err(path, f"expected exactly one datasource uid, found {uids}")
        return None
    if types != ["prometheus"]:
        lint.err(path, f"expected one datasource of type prometheus, found {types}")
    return uids[0]


def check_provider(root, lint):
    path = os.path.join(root, "grafana", "provisioning", "dashboards", "pipewatch.yml")
    try:
        text = open(path, encoding="utf-8").read()
    except OSError as e:
        lint.err(path, f"cannot read: {e}")
        return
    m = re.search(r"^\s*path:\s*(\S+)\s*$", text, re.M)
    if not m:
        lint.err(path, "dashboard provider has no options.path")
        return
    compose = os.path.join(root, "compose", "docker-compose.yml")
    if os.path.exists(compose):
        ctext = open(compose, encoding="utf-8").read()
        if not re.search(r"grafana/dashboards:%s(:ro)?\b" % re.escape(m.group(1)), ctext):
            lint.err(path, f"provider path {m.group(1)} is not where compose mounts grafana/dashboards")


def selectors(expr):
    """Yield (metric name or '', matcher text) for every series selector."""
    blocks = []

    def keep(m):
        blocks.append(m.group(1))
        return "{#%d}" % (len(blocks) - 1)

    s = re.sub(r"\{([^{}]*)\}", keep, expr)
    s = re.sub(r'"(?:[^"\\]|\\.)*"', '""', s)          # string literals (label_replace args)
    s = re.sub(r"\[[^\]]*\]", "", s)                    # range / subquery brackets
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    for m in re.finditer(r"([A-Za-z_:][A-Za-z0-9_:]*)?\s*(\{#(\d+)\})?", s):
        name, block, idx = m.group(1), m.group(2), m.group(3)
        if not name and not block:
            continue
        if name:
            if name.lower() in KEYWORDS:
                continue
            rest = s[m.end():].lstrip()
            if not block and rest.startswith("("):
                continue                                 # function call
            if re.match(r"\d", name) or (m.start() > 0 and s[m.start() - 1] in "0123456789.$"):
                continue
        yield (name or "", blocks[int(idx)] if block else "")


def lint_expr(where, expr, lint):
    if not expr.strip():
        lint.err(where, "empty expression")
        return
    if expr.count("(") != expr.count(")") or expr.count("{") != expr.count("}"):
        lint.err(where, "unbalanced brackets")
    for rng in re.findall(r"\[([^\]]*)\]", expr):
        if rng != "$__rate_interval":
            lint.err(where, f"range [{rng}] is not [$__rate_interval]")
    n_fn = len(re.findall(r"\b(?:rate|irate|increase)\s*\(", expr))
    if n_fn > expr.count("[$__rate_interval]"):
        lint.err(where, "a rate/irate/increase without [$__rate_interval]")
    for var in re.findall(r"\$\{?(\w+)", expr):
        if var not in KNOWN_VARS:
            lint.err(where, f"unknown template variable ${var}")
    found = False
    for name, matchers in selectors(expr):
        found = True
        if 'job=~"$job"' not in matchers:
            lint.err(where, f"selector {name}{{{matchers}}} lacks job=~\"$job\"")
        if not name.startswith(PER_JOB) and 'instance=~"$instance"' not in matchers:
            lint.err(where, f"selector {name}{{{matchers}}} lacks instance=~\"$instance\"")
    if not found:
        lint.err(where, "no series selector found")


def iter_panels(panels):
    for p in panels:
        yield p
        yield from iter_panels(p.get("panels", []))


def lint_dashboard(path, uid, lint):
    try:
        dash = json.load(open(path, encoding="utf-8"))
    except (OSError, ValueError) as e:
        lint.err(path, f"not valid JSON: {e}")
        return
    name = os.path.basename(path)
    for key in ("uid", "title", "description"):
        if not dash.get(key):
            lint.err(name, f"dashboard has no {key}")

    variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
    ds = variables.get("datasource")
    if not ds:
        lint.err(name, "no `datasource` template variable")
    else:
        if ds.get("type") != "datasource" or ds.get("query") != "prometheus":
            lint.err(name, "`datasource` variable must be type datasource, query prometheus")
        if ds.get("label") != "Data Source":
            lint.err(name, "`datasource` variable label must be \"Data Source\"")
        current = (ds.get("current") or {}).get("value")
        if uid and current != uid:
            lint.err(name, f"`datasource` variable defaults to {current!r}, provisioned uid is {uid!r}")
    for var in ("job", "instance"):
        v = variables.get(var)
        if not v:
            lint.err(name, f"no `{var}` template variable")
            continue
        if v.get("type") != "query":
            lint.err(name, f"`{var}` variable must be type query")
        if v.get("label") != var:
            lint.err(name, f"`{var}` variable label must be {var!r}")
        if v.get("datasource") != DS_REF:
            lint.err(name, f"`{var}` variable must query {DS_REF}")
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        if not q or not re.fullmatch(r"label_values\(.*,\s*%s\s*\)" % var, q):
            lint.err(name, f"`{var}` variable query {q!r} is not label_values(..., {var})")
        if not v.get("multi") or not v.get("includeAll") or v.get("allValue") != ".+":
            lint.err(name, f"`{var}` variable must be multi-select with All = \".+\"")
    inst_q = variables.get("instance", {}).get("query")
    inst_q = inst_q.get("query", "") if isinstance(inst_q, dict) else (inst_q or "")
    if '$job' not in inst_q:
        lint.err(name, "`instance` variable query does not filter on $job")

    ids = set()
    n_targets = 0
    for p in iter_panels(dash.get("panels", [])):
        pid = p.get("id")
        where = f"{name} panel {pid} {p.get('title')!r}"
        if pid in ids:
            lint.err(where, "duplicate panel id")
        ids.add(pid)
        if p.get("type") == "row":
            continue
        if not p.get("title"):
            lint.err(where, "no title")
        if not (p.get("description") or "").strip():
            lint.err(where, "no description")
        if not (p.get("fieldConfig", {}).get("defaults", {}).get("unit") or "").strip():
            lint.err(where, "no unit (fieldConfig.defaults.unit)")
        if p.get("datasource") != DS_REF:
            lint.err(where, f"panel datasource {p.get('datasource')!r} is not {DS_REF}")
        targets = p.get("targets") or []
        if not targets:
            lint.err(where, "no targets")
        for i, t in enumerate(targets):
            n_targets += 1
            tw = f"{where} target {t.get('refId', i)}"
            if t.get("datasource") != DS_REF:
                lint.err(tw, f"target datasource {t.get('datasource')!r} is not {DS_REF}")
            lint_expr(tw, t.get("expr", ""), lint)
    if n_targets == 0:
        lint.err(name, "no queries at all")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    ap.add_argument("dashboards", nargs="*", help="dashboard files (default: grafana/dashboards/*.json)")
    args = ap.parse_args()
    root = os.path.abspath(args.root)
    lint = Lint()
    uid = provisioned_uid(root, lint)
    check_provider(root, lint)
    files = args.dashboards
    if not files:
        ddir = os.path.join(root, "grafana", "dashboards")
        files = sorted(os.path.join(ddir, f) for f in os.listdir(ddir) if f.endswith(".json"))
        for required in ("pipeline-overview.json", "pipeline-slo.json"):
            if os.path.join(ddir, required) not in files:
                lint.err(ddir, f"missing {required}")
    for f in files:
        lint_dashboard(f, uid, lint)
    if lint.problems:
        for p in lint.problems:
            print(f"FAIL {p}")
        print(f"{len(lint.problems)} problem(s) in {len(files)} dashboard(s)")
        return 1
    print(f"OK: {len(files)} dashboard(s) lint clean (datasource uid {uid})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Evaluate every query of the pipewatch dashboards against a live Prometheus.

Extracts the expression of every target of grafana/dashboards/pipeline-overview.json
and pipeline-slo.json (plus the job/instance template-variable queries),
substitutes the template variables the way Grafana would with "All" selected:

    $job              -> the --job name (regex-escaped)
    $instance         -> .+            (the variables' allValue)
    $__rate_interval  -> --rate-interval (default 1m)
    $__interval       -> --interval      (default 15s)
    $__range          -> --range         (default 1h); $__range_s in seconds
    $datasource       -> not used in expressions (panels select the datasource)

and runs each one with GET /api/v1/query.  Fails on any HTTP/PromQL error and
on any empty result.  A result whose samples are all NaN (e.g. a histogram
quantile over a window without records) counts as data but is reported.

EXPECTED_EMPTY lists the expressions allowed to be empty on a short run
(matched as substrings of the substituted expression).  It is empty: every
panel must show data on a running demo.

usage: dashboard_queries.py --prometheus http://127.0.0.1:9090 --job pipeline
                            [--rate-interval 1m] [--wait SECONDS] [-v] [DASHBOARD.json ...]
exit status 0 = every query returned data, 1 = failures (listed), 2 = usage
"""
import argparse
import json
import math
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

# Substrings of expressions allowed to return nothing on a short demo run.
EXPECTED_EMPTY = []

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DASHBOARDS = [os.path.join(HERE, "..", "..", "grafana", "dashboards", f)
                      for f in ("pipeline-overview.json", "pipeline-slo.json")]


def iter_panels(panels):
    for p in panels:
        yield p
        yield from iter_panels(p.get("panels", []))


def extract(path):
    """[(where, expr)] for every target and job/instance variable query."""
    dash = json.load(open(path, encoding="utf-8"))
    name = os.path.basename(path)
    out = []
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            q = v.get("query")
            q = q.get("query") if isinstance(q, dict) else q
            out.append((f"{name} variable ${v.get('name')}", q))
    for p in iter_panels(dash.get("panels", [])):
        for t in p.get("targets") or []:
            if t.get("expr"):
                out.append((f"{name} panel {p.get('title')!r} target {t.get('refId')}", t["expr"]))
    return out


def duration_seconds(d):
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    total = 0.0
    for num, unit in re.findall(r"(\d+)(ms|s|m|h|d|w|y)", d):
        total += int(num) * units[unit]
    return int(total)


def substitute(expr, args):
    job_re = re.sub(r"([\\.^$|?*+()\[\]{}])", r"\\\\\1", args.job)
    subs = {
        "job": job_re,
        "instance": ".+",
        "__rate_interval": args.rate_interval,
        "__interval": args.interval,
        "__range_s": str(duration_seconds(args.range)),
        "__range": args.range,
        "datasource": "",
    }

    def repl(m):
        name = m.group(1) or m.group(2)
        if name not in subs:
            raise ValueError(f"unknown template variable ${name}")
        return subs[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", repl, expr)


def label_values(expr):
    """label_values(selector, label) -> (selector, label), or None."""
    m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", expr)
    return (m.group(1), m.group(2)) if m else None


def api(base, path, params, timeout):
    url = base.rstrip("/") + path + "?" + urllib.parse.urlencode(params, doseq=True)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            body = json.load(r)
    except urllib.error.HTTPError as e:
        try:
            body = json.load(e)
        except ValueError:
            return None, f"HTTP {e.code}"
    except (urllib.error.URLError, OSError, ValueError) as e:
        return None, f"request failed: {e}"
    if body.get("status") != "success":
        return None, f"{body.get('errorType')}: {body.get('error')}"
    return body.get("data"), None


def run_one(args, expr):
    """(ok, message)."""
    lv = label_values(expr)
    if lv:
        selector, label = lv
        data, err = api(args.prometheus, "/api/v1/series", {"match[]": selector}, args.timeout)
        if err:
            return False, err
        values = sorted({s.get(label) for s in data if s.get(label)})
        if not values:
            return False, "no label values"
        return True, f"{label} = {', '.join(values)}"
    data, err = api(args.prometheus, "/api/v1/query", {"query": expr}, args.timeout)
    if err:
        return False, err
    result = data.get("result")
    if data.get("resultType") == "scalar":
        result = [{"metric": {}, "value": result}]
    if not result:
        return False, "empty result"
    vals = []
    for s in result:
        try:
            vals.append(float(s["value"][1]))
        except (KeyError, IndexError, TypeError, ValueError):
            pass
    series = len(result)
    if vals and all(math.isnan(v) for v in vals):
        return True, f"{series} series, all NaN (no records in the window)"
    return True, f"{series} series"


def main():
    ap = argparse.ArgumentParser(description="Evaluate every pipewatch dashboard query against Prometheus.")
    ap.add_argument("--prometheus", default="http://127.0.0.1:9090", help="Prometheus base URL")
    ap.add_argument("--job", default="pipeline", help="value of the job label the stages push with")
    ap.add_argument("--rate-interval", default="1m", help="substitute for $__rate_interval")
    ap.add_argument("--interval", default="15s", help="substitute for $__interval")
    ap.add_argument("--range", default="1h", help="substitute for $__range")
    ap.add_argument("--wait", type=float, default=0,
                    help="retry failing queries for up to this many seconds (recording rules, first scrapes)")
    ap.add_argument("--timeout", type=float, default=10, help="HTTP timeout per query, seconds")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every query and its outcome")
    ap.add_argument("dashboards", nargs="*", default=DEFAULT_DASHBOARDS)
    args = ap.parse_args()
    if not re.fullmatch(r"https?://[^/\s]+(/.*)?", args.prometheus):
        ap.error("--prometheus must be an http(s) URL")

    queries = []
    for path in args.dashboards:
        try:
            for where, expr in extract(path):
                queries.append((where, expr, substitute(expr, args)))
        except (OSError, ValueError) as e:
            print(f"FAIL {path}: {e}")
            return 1

    deadline = time.monotonic() + args.wait
    pending = list(queries)
    results = {}
    while True:
        still = []
        for q in pending:
            ok, msg = run_one(args, q[2])
            results[q[0]] = (ok, msg, q)
            if not ok:
                still.append(q)
        pending = still
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(min(5.0, max(0.5, deadline - time.monotonic())))

    failures = 0
    for where, expr, final in queries:
        ok, msg, _ = results[where]
        allowed = not ok and msg == "empty result" and any(s in final for s in EXPECTED_EMPTY)
        if ok or allowed:
            if args.verbose or "NaN" in msg or allowed:
                tag = "ALLOWED-EMPTY" if allowed else "ok"
                print(f"{tag:>13}  {where}: {msg}\n               {final}")
        else:
            failures += 1
            print(f"         FAIL  {where}: {msg}\n               {final}")
    print(f"{len(queries) - failures}/{len(queries)} dashboard queries returned data "
          f"(job={args.job}, Prometheus {args.prometheus})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

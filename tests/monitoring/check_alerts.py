#!/usr/bin/env python3
"""Check the alerting rules' metadata and test coverage (stdlib only).

For every `- alert:` in prometheus/rules/*.yml:
  * labels.severity is page or ticket;
  * annotations summary, description and runbook_url exist; the summary names
    the stage and instance ({{ $labels.stage }} / {{ $labels.instance }}) or,
    for alerts aggregated above the instance, says which stage;
  * runbook_url is the external label runbook_base (an absolute URL of the
    runbook) or else docs/runbook.md, then #<anchor>, and docs/runbook.md has
    a heading with that anchor (GitHub slug);
  * prometheus/tests/*.yml has at least one alert_rule_test where it fires
    (non-empty exp_alerts) and one where it stays silent (exp_alerts: []).
For the alerts in INLINED, the expression contains (whitespace aside) the
expression of each recording rule it writes out instead of reading it from
the other rule group, so that the two cannot drift apart.
The files are read line by line; they are written in one consistent layout.
"""
import glob
import os
import re
import sys

# alert -> recording rules whose expressions its expr must contain verbatim
INLINED = {
    "PipelineHighErrorRate": ["job_stage_instance:pipeline_record_errors:ratio_rate1m",
                              "job_stage_instance:pipeline_records_handled:rate1m"],
}

# runbook_url: the external label runbook_base (absolute URL of
# docs/runbook.md, set in prometheus.yml.in) or the repository path, then
# the section's anchor.
RUNBOOK_URL = (r"'\{\{ with \$externalLabels\.runbook_base \}\}\{\{ \. \}\}"
               r"\{\{ else \}\}docs/runbook\.md\{\{ end \}\}#([\w-]+)'")
RUNBOOK_URL_TEXT = ("'{{ with $externalLabels.runbook_base }}{{ . }}{{ else }}docs/runbook.md{{ end }}#anchor'")

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def slug(heading):
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def alert_blocks(text):
    """[(name, block)] for every alert rule."""
    out = []
    for m in re.finditer(r"^(\s*)- alert:\s*(\S+)\s*\n", text, re.M):
        indent = len(m.group(1))
        rest = text[m.end():]
        end = re.search(r"^\s{0,%d}\S" % indent, rest, re.M)   # next item at same or lower indent
        out.append((m.group(2), rest[: end.start()] if end else rest))
    return out


def rule_exprs(text, kind):
    """{name: expr with all whitespace removed} for every `- record:` or
    `- alert:` whose expr is inline or a `|` block."""
    out = {}
    pat = r"^(\s*)- %s:\s*(\S+)\s*\n\s+expr:\s*(\|\n((?:\1\s{4,}.*\n|\s*\n)+)|(.+)\n)" % kind
    for m in re.finditer(pat, text, re.M):
        out[m.group(2)] = re.sub(r"\s+", "", m.group(4) or m.group(5))
    return out


def main():
    problems = []
    runbook_path = os.path.join(ROOT, "docs", "runbook.md")
    try:
        runbook = open(runbook_path, encoding="utf-8").read()
    except OSError as e:
        print(f"FAIL cannot read {runbook_path}: {e}")
        return 1
    anchors = {slug(h) for h in re.findall(r"^#{1,6}\s+(.+?)\s*$", runbook, re.M)}

    tests_text = ""
    for f in sorted(glob.glob(os.path.join(ROOT, "prometheus", "tests", "*.yml"))):
        tests_text += open(f, encoding="utf-8").read() + "\n"

    names = set()
    records, alert_exprs = {}, {}
    for f in sorted(glob.glob(os.path.join(ROOT, "prometheus", "rules", "*.yml"))):
        text = open(f, encoding="utf-8").read()
        records.update(rule_exprs(text, "record"))
        alert_exprs.update(rule_exprs(text, "alert"))
        for name, block in alert_blocks(text):
            where = f"{os.path.relpath(f, ROOT)}: {name}"
            names.add(name)
            sev = re.search(r"^\s+severity:\s*(\S+)", block, re.M)
            if not sev or sev.group(1) not in ("page", "ticket"):
                problems.append(f"{where}: severity must be page or ticket")
            for ann in ("summary", "description", "runbook_url"):
                if not re.search(r"^\s+%s:" % ann, block, re.M):
                    problems.append(f"{where}: no {ann} annotation")
            summ = re.search(r"^\s+summary:\s*(.+)$", block, re.M)
            if summ and "stage" not in summ.group(1) and "Pushgateway" not in summ.group(1):
                problems.append(f"{where}: summary does not name the stage")
            if "$value" not in block.split("description:", 1)[-1]:
                problems.append(f"{where}: description does not show $value")
            rb = re.search(r"^\s+runbook_url:\s*(.+?)\s*$", block, re.M)
            if rb:
                m = re.fullmatch(RUNBOOK_URL, rb.group(1))
                if not m:
                    problems.append(f"{where}: runbook_url {rb.group(1)} is not {RUNBOOK_URL_TEXT}")
                elif m.group(1) not in anchors:
                    problems.append(f"{where}: docs/runbook.md has no section #{m.group(1)}")
    for name in sorted(names):
        fires = re.search(r"alertname:\s*%s\s*\n\s+exp_alerts:\s*\n\s+- exp_labels:" % re.escape(name), tests_text)
        silent = re.search(r"alertname:\s*%s\s*\n\s+exp_alerts:\s*\[\]" % re.escape(name), tests_text)
        if not fires:
            problems.append(f"{name}: no promtool test where it fires")
        if not silent:
            problems.append(f"{name}: no promtool test where it stays silent")
    for alert, rules in INLINED.items():
        for rule in rules:
            if alert not in alert_exprs or rule not in records:
                problems.append(f"{alert}: cannot find its expr or recording rule {rule}")
            elif records[rule] not in alert_exprs[alert]:
                problems.append(f"{alert}: expr no longer contains the expression of {rule}; keep them in step")
    if not names:
        problems.append("no alerting rules found")
    for p in problems:
        print(f"FAIL {p}")
    if problems:
        return 1
    print(f"OK: {len(names)} alerts: severity, annotations, runbook sections, fired and silent tests")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Check the alerting rules' metadata and test coverage (stdlib only).

For every `- alert:` in prometheus/rules/*.yml:
  * labels.severity is page or ticket;
  * annotations summary, description and runbook_url exist; the summary names
    the stage and instance ({{ $labels.stage }} / {{ $labels.instance }}) or,
    for alerts aggregated above the instance, says which stage;
  * runbook_url is docs/runbook.md#<anchor> and docs/runbook.md has a heading
    with that anchor (GitHub slug);
  * prometheus/tests/*.yml has at least one alert_rule_test where it fires
    (non-empty exp_alerts) and one where it stays silent (exp_alerts: []).
The files are read line by line; they are written in one consistent layout.
"""
import glob
import os
import re
import sys

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
    for f in sorted(glob.glob(os.path.join(ROOT, "prometheus", "rules", "*.yml"))):
        text = open(f, encoding="utf-8").read()
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
            rb = re.search(r"^\s+runbook_url:\s*(\S+)", block, re.M)
            if rb:
                m = re.fullmatch(r"docs/runbook\.md#([\w-]+)", rb.group(1))
                if not m:
                    problems.append(f"{where}: runbook_url {rb.group(1)} is not docs/runbook.md#anchor")
                elif m.group(1) not in anchors:
                    problems.append(f"{where}: docs/runbook.md has no section #{m.group(1)}")
    for name in sorted(names):
        fires = re.search(r"alertname:\s*%s\s*\n\s+exp_alerts:\s*\n\s+- exp_labels:" % re.escape(name), tests_text)
        silent = re.search(r"alertname:\s*%s\s*\n\s+exp_alerts:\s*\[\]" % re.escape(name), tests_text)
        if not fires:
            problems.append(f"{name}: no promtool test where it fires")
        if not silent:
            problems.append(f"{name}: no promtool test where it stays silent")
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

"""The metric table of docs/contract.md ("Metrics") is what the stages push.

A real pipeline (producer, worker, sink) pushes to a real Pushgateway; then
every family each stage pushed must be a row of the table with the same
type and label names (grouping labels and `le` aside), and every row must
be pushed by each stage it names."""
import os
import re

from pwtest import SOURCE, check, log, pushed_families, scenario, wait_for

STAGES = ("producer", "worker", "sink")
CONTRACT = os.path.join(SOURCE, "docs", "contract.md")


def contract_metrics(path):
    """{metric: (type, frozenset(labels), frozenset(stages))} from the rows of
    the table under "## Metrics" whose first cell is a `name`."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    section = re.search(r"^## Metrics\n(.*?)(?=^## )", text, re.M | re.S)
    check(section, "%s has no '## Metrics' section" % path)
    rows = {}
    for line in section.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) != 5 or not re.fullmatch(r"`[a-zA-Z_:][a-zA-Z0-9_:]*`", cells[0]):
            continue
        name, mtype, labels, stages = cells[0].strip("`"), cells[1], cells[2], cells[3]
        check(name not in rows, "%s is listed twice" % name)
        check(mtype in ("counter", "gauge", "histogram", "summary", "untyped"), "%s: type %r" % (name, mtype))
        label_set = frozenset(l.strip() for l in labels.split(",") if l.strip())
        stage_set = frozenset(STAGES) if stages == "all" else frozenset(s.strip() for s in stages.split(","))
        check(stage_set <= frozenset(STAGES), "%s: unknown stage in %r" % (name, stages))
        rows[name] = (mtype, label_set, stage_set)
    check(len(rows) >= 10, "only %d metric rows parsed from %s" % (len(rows), path))
    return rows


def main():
    doc = contract_metrics(CONTRACT)
    log("contract lists %d metric families" % len(doc))
    with scenario("contract", gateway=True) as (pipe, gw):
        pipe.start_sink()
        pipe.start_worker("worker-1")
        prod = pipe.start_producer("--rate", "0", "--count", "500", "--fault-rate", "0.1")
        check(prod.wait(120) == 0, "producer failed")
        # Every stage pushed at least once after the run (interval 0.5 s).
        wait_for(lambda: all(gw.value("pipeline_stage_up", job=pipe.job, stage=s) is not None for s in STAGES),
                 20, "a push from every stage")
        pipe.stop_all()
        for p in pipe.procs:
            check(p.p.returncode == 0, "%s exited %s" % (p.name, p.p.returncode))
        wait_for(lambda: gw.value("pipeline_stage_up", job=pipe.job, stage="sink") == 0, 10, "final sink push")
        pushed = pushed_families(gw, pipe.job)
        check(set(pushed) == set(STAGES), "stages seen at the gateway: %s" % sorted(pushed))

        problems = []
        for stage in STAGES:
            for family, (ftype, labels) in sorted(pushed[stage].items()):
                row = doc.get(family)
                if row is None:
                    problems.append("%s pushes %s (%s, labels %s), not in the contract"
                                    % (stage, family, ftype, sorted(labels)))
                    continue
                if row[0] != ftype:
                    problems.append("%s: contract says %s, %s pushes %s" % (family, row[0], stage, ftype))
                if row[1] != labels:
                    problems.append("%s: contract labels %s, %s pushes %s"
                                    % (family, sorted(row[1]), stage, sorted(labels)))
                if stage not in row[2]:
                    problems.append("%s: pushed by %s, contract names %s" % (family, stage, sorted(row[2])))
        for family, (_, _, stages) in sorted(doc.items()):
            for stage in sorted(stages):
                if family not in pushed[stage]:
                    problems.append("%s: contract says %s pushes it; it does not" % (family, stage))
        for p in problems:
            log("MISMATCH " + p)
        check(not problems, "%d differences between docs/contract.md and the pushed metrics" % len(problems))
        log("every pushed family is in the contract and every row is pushed (%d families)" % len(doc))


if __name__ == "__main__":
    main()

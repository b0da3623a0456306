#!/usr/bin/env python3
"""Validate compose/docker-compose.yml and compose/Dockerfile (stdlib only).

Static checks, always run (the file is parsed by indentation, which is how
it is written):
  * services pushgateway, prometheus, alertmanager, grafana, producer,
    worker-1, worker-2 and sink exist, each with a healthcheck;
  * only Grafana (3000) and Prometheus (9090) are published, on 127.0.0.1;
  * the Grafana admin password comes from ${GF_ADMIN_PASSWORD:?...} (no
    default) and anonymous access is off;
  * the stages bind 0.0.0.0 explicitly and push to the Pushgateway;
  * every host path mounted from the repository exists;
  * the Dockerfile is multi-stage from debian:bookworm, builds with meson, and
    its runtime stage runs as a non-root user.
Then `docker compose config` (or `docker-compose config`) when one is
available; otherwise prints "SKIP: no docker compose" and exits 77 (meson:
skipped) after the static checks passed.
"""
import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
COMPOSE_DIR = os.path.join(ROOT, "compose")
COMPOSE = os.path.join(COMPOSE_DIR, "docker-compose.yml")
DOCKERFILE = os.path.join(COMPOSE_DIR, "Dockerfile")
SERVICES = ["pushgateway", "prometheus", "alertmanager", "grafana",
            "producer", "worker-1", "worker-2", "sink"]
STAGES = ["producer", "worker-1", "worker-2", "sink"]
PUBLISHED = {"grafana": "127.0.0.1:3000:3000", "prometheus": "127.0.0.1:9090:9090"}

problems = []


def fail(msg):
    problems.append(msg)


def blocks_under(text, indent, parent_re):
    """{key: block} for the keys at `indent` spaces below the line matching parent_re."""
    blocks, key, inside = {}, None, parent_re is None
    for line in text.splitlines():
        if parent_re is not None and re.match(parent_re, line):
            inside = True
            continue
        if not inside:
            continue
        if line.strip() == "" or line.lstrip().startswith("#"):
            if key:
                blocks[key] += "\n"
            continue
        lead = len(line) - len(line.lstrip(" "))
        if lead < indent:
            if parent_re is not None:
                break
            key = None
            continue
        m = re.match(r"^ {%d}([A-Za-z0-9_.-]+):" % indent, line)
        if lead == indent and m:
            key = m.group(1)
            blocks[key] = line[indent:] + "\n"
        elif key:
            blocks[key] += line + "\n"
    return blocks


def service_blocks(text):
    """{service: block text} from the top-level services: mapping."""
    return blocks_under(text, 2, r"^services:\s*$")


def static_checks():
    text = open(COMPOSE, encoding="utf-8").read()
    blocks = service_blocks(text)
    for s in SERVICES:
        if s not in blocks:
            fail(f"compose: service {s} missing")
    for name, block in blocks.items():
        if "healthcheck:" not in block:
            fail(f"compose: service {name} has no healthcheck")
        ports = []
        if re.search(r"^    ports:", block, re.M):
            # only the list items directly under ports:
            pm = re.search(r"^    ports:\s*\n((?:^      - .*\n?)*)", block, re.M)
            ports = re.findall(r'^      - "?([^"\n]+?)"?\s*$', pm.group(1), re.M) if pm else []
        want = PUBLISHED.get(name)
        if want:
            if ports != [want]:
                fail(f"compose: {name} must publish exactly {want}, has {ports}")
        elif ports:
            fail(f"compose: {name} must not publish ports, has {ports}")
        if name in STAGES:
            if "*stage" not in block:
                fail(f"compose: stage {name} does not use the x-stage defaults")
            if "--pushgateway=http://pushgateway:9091" not in block:
                fail(f"compose: stage {name} does not push to the Pushgateway")
            if "healthcheck" in block and "pipewatch-healthcheck" not in block:
                fail(f"compose: stage {name} healthcheck does not use pipewatch-healthcheck")
        # host paths mounted from the repository must exist
        for src in re.findall(r"^      - (\.\.?/[^:\s]+):", block, re.M):
            if not os.path.exists(os.path.normpath(os.path.join(COMPOSE_DIR, src))):
                fail(f"compose: {name} mounts {src}, which does not exist")
    for name, flag in (("producer", "--bind=tcp://0.0.0.0:5557"), ("sink", "--bind=tcp://0.0.0.0:5558"),
                       ("sink", "--ack=tcp://0.0.0.0:5559"), ("producer", "--ack=tcp://sink:5559")):
        if flag not in blocks.get(name, ""):
            fail(f"compose: {name} lacks {flag}")
    g = blocks.get("grafana", "")
    if not re.search(r"GF_SECURITY_ADMIN_PASSWORD: \$\{GF_ADMIN_PASSWORD:\?[^}]+\}", g):
        fail("compose: grafana admin password must be ${GF_ADMIN_PASSWORD:?...} (no default)")
    if not re.search(r'GF_AUTH_ANONYMOUS_ENABLED: "false"', g):
        fail("compose: grafana anonymous access must be off")
    if re.search(r"admin/admin|PASSWORD: *['\"]?admin['\"]?\s*$", text, re.M):
        fail("compose: a default admin password is set")
    if "/etc/grafana/provisioning" not in g:
        fail("compose: grafana provisioning is not mounted")
    if re.search(r"^\s*network_mode:\s*host", text, re.M):
        fail("compose: network_mode host would expose every port")

    df = open(DOCKERFILE, encoding="utf-8").read()
    froms = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", df, re.M | re.I)
    if len(froms) < 2:
        fail("Dockerfile: not multi-stage")
    if not all(f[0].startswith("debian:bookworm") for f in froms):
        fail(f"Dockerfile: every stage must be debian:bookworm*, has {[f[0] for f in froms]}")
    build_part, _, runtime = df.rpartition("\nFROM ")
    if "meson setup" not in build_part or "ninja" not in build_part:
        fail("Dockerfile: the build stage does not build with meson/ninja")
    users = re.findall(r"^USER\s+(\S+)", runtime, re.M)
    if not users or users[-1].split(":")[0] in ("root", "0"):
        fail("Dockerfile: the runtime stage does not switch to a non-root USER")
    for src in re.findall(r"^COPY\s+(?!--from)(\S+)\s", runtime, re.M):
        if not os.path.exists(os.path.join(ROOT, src)):
            fail(f"Dockerfile: COPY {src}: no such file in the repository")


def compose_cmd():
    docker = shutil.which("docker")
    if docker:
        r = subprocess.run([docker, "compose", "version"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        if r.returncode == 0:
            return [docker, "compose"]
    dc = shutil.which("docker-compose")
    if dc:
        return [dc]
    return None


def main():
    static_checks()
    if problems:
        for p in problems:
            print(f"FAIL {p}")
        return 1
    print("OK: static compose and Dockerfile checks")
    cmd = compose_cmd()
    if not cmd:
        print("SKIP: no docker compose (docker compose / docker-compose not available); "
              "static checks passed, `compose config` not run")
        return 77
    env = dict(os.environ, GF_ADMIN_PASSWORD="compose-config-check")
    r = subprocess.run(cmd + ["-f", COMPOSE, "config", "--quiet"], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        print(f"FAIL {' '.join(cmd)} config:\n{r.stdout}")
        return 1
    env.pop("GF_ADMIN_PASSWORD")
    r = subprocess.run(cmd + ["-f", COMPOSE, "config", "--quiet"], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode == 0:
        print("FAIL compose config succeeds without GF_ADMIN_PASSWORD (the password has a default)")
        return 1
    print(f"OK: {' '.join(cmd)} config")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Pushing to a Pushgateway that demands credentials, over HTTP and HTTPS.

A real prometheus-pushgateway runs with --web.config.file: basic_auth_users
(bcrypt hash from `htpasswd -B`), and a second one also with
tls_server_config (a self-signed certificate for 127.0.0.1 made with
openssl).  Then:
  * the right "user:password" in --push-auth-file: the stage's metrics
    appear at the gateway;
  * a wrong password (and no auth file at all): every push is refused (401),
    each stage logs "push failed" and counts it (its stats line `errors`,
    which is pipeline_errors_total summed; nothing else fails here), while
    the pipeline still delivers every record exactly once;
  * HTTPS with --push-ca-file: pushes succeed; without the CA: refused by
    certificate verification and counted;
  * credentials in the URL (http://user:pass@host) work but are not logged;
  * the password never appears in any stage's stdout or stderr, and the
    auth-file runs never have it in their argv (/proc/PID/cmdline)."""
import base64
import os
import shutil
import ssl
import subprocess
import urllib.error
import urllib.request

import pwtest
from pwtest import Pipeline, check, fail, log, wait_for

USER = "pusher"
PASSWORD = "s3cret-Pa55-%d" % os.getpid()
WRONG = "not-the-password-%d" % os.getpid()
COUNT = 200 if pwtest.SANITIZED else 1000


def auth_header(user, password):
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


def http_get(url, cafile=None, user=USER, password=PASSWORD, timeout=3):
    req = urllib.request.Request(url)
    if user is not None:
        req.add_header("Authorization", auth_header(user, password))
    ctx = ssl.create_default_context(cafile=cafile) if url.startswith("https") else None
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=ctx) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, ""
    except Exception:
        return None, ""


def bcrypt_hash(password):
    htpasswd = shutil.which("htpasswd")
    if not htpasswd:
        fail("htpasswd not found (apache2-utils; ./pipeline setup installs it)")
    # -i: password on stdin, not in htpasswd's argv.
    r = subprocess.run([htpasswd, "-niBC", "10", USER], input=password, capture_output=True,
                       text=True, timeout=30)
    check(r.returncode == 0, "htpasswd failed: %s" % r.stderr)
    user, _, h = r.stdout.strip().partition(":")
    check(user == USER and h.startswith("$2"), "unexpected htpasswd output")
    return h


def make_cert(tmp):
    openssl = shutil.which("openssl")
    if not openssl:
        fail("openssl not found (Debian package openssl)")
    cert, key = os.path.join(tmp, "gw.crt"), os.path.join(tmp, "gw.key")
    r = subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"], capture_output=True, text=True, timeout=30)
    check(r.returncode == 0, "openssl req failed: %s" % r.stderr)
    return cert, key


class SecureGateway:
    def __init__(self, tmp, name, hashed, tls=None):
        self.cafile = tls[0] if tls else None
        config = os.path.join(tmp, name + ".web.yml")
        with open(config, "w") as f:
            f.write("basic_auth_users:\n  %s: '%s'\n" % (USER, hashed))
            if tls:
                f.write("tls_server_config:\n  cert_file: %s\n  key_file: %s\n" % tls)
        self.scheme = "https" if tls else "http"
        self.proc, self.port = pwtest.start_server(name, lambda port: [
            pwtest.pushgateway_exe(), "--web.listen-address=127.0.0.1:%d" % port,
            # its own state file: without it Debian's gateway writes the
            # system-wide default one (/var/lib/prometheus/pushgateway.data)
            "--persistence.file=" + os.path.join(tmp, name + ".data"),
            "--web.config.file=" + config, "--log.level=warn"], tmp,
            lambda port: http_get(self.url_for(port) + "/-/ready", self.cafile, timeout=1)[0] == 200)
        self.url = self.url_for(self.port)
        # The gate is really closed: no or wrong credentials are refused.
        check(http_get(self.url + "/metrics", self.cafile, user=None)[0] == 401,
              "%s answered without credentials" % name)
        check(http_get(self.url + "/metrics", self.cafile, password=WRONG)[0] == 401,
              "%s answered a wrong password" % name)

    def url_for(self, port):
        return "%s://127.0.0.1:%d" % (self.scheme, port)

    def value(self, name, **labels):
        status, body = http_get(self.url + "/metrics", self.cafile)
        check(status == 200, "gateway /metrics answered %s" % status)
        return pwtest.sum_samples(pwtest.parse_text_format(body), name, **labels)


def write_secret(tmp, name, text):
    path = os.path.join(tmp, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    return path


def standalone_sink(pipe, name, *extra):
    """A sink on its own: it pushes metrics whether or not records flow."""
    return pipe.start_sink("--push-interval", "0.5", *extra, name=name)


def final_stats(proc):
    stats = [l for l in proc.logs() if l.get("msg") == "stats"]
    check(stats, "%s wrote no stats line" % proc.name)
    return stats[-1]


def push_failures_logged(proc):
    return [l for l in proc.logs() if l.get("msg") in ("push failed", "final push failed")]


def check_no_secret(procs, secrets):
    for p in procs:
        text = "\n".join(p.log_lines()) + p.stderr()
        for s in secrets:
            check(s not in text, "%s logged a credential" % p.name)


def check_not_in_argv(proc, secrets):
    try:
        with open("/proc/%d/cmdline" % proc.pid, "rb") as f:
            argv = f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        fail("%s is gone before its argv could be read" % proc.name)
    for s in secrets:
        check(s not in argv, "%s has a credential in its argv" % proc.name)


def main():
    pipe = Pipeline("push-auth")
    gateways = []
    ok = False
    try:
        tmp = pipe.tmp
        hashed = bcrypt_hash(PASSWORD)
        gw = SecureGateway(tmp, "gw-basic", hashed)
        gateways.append(gw)
        good = write_secret(tmp, "good.auth", "%s:%s" % (USER, PASSWORD))
        bad = write_secret(tmp, "bad.auth", "%s:%s" % (USER, WRONG))
        pipe.gateway_url = gw.url

        # 1. Right credentials: the group appears.
        s1 = standalone_sink(pipe, "sink-good", "--push-auth-file", good)
        check_not_in_argv(s1, [PASSWORD])
        wait_for(lambda: gw.value("pipeline_stage_up", job=pipe.job, instance="sink-good") == 1, 15,
                 "sink-good's metrics at the authenticating gateway")
        log("basic auth over HTTP: metrics pushed with the right password")
        check(s1.stop() == 0, "sink-good did not stop cleanly")
        check(gw.value("pipeline_stage_up", job=pipe.job, instance="sink-good") == 0,
              "sink-good's final push (stage_up 0) did not land")
        check(not push_failures_logged(s1), "sink-good logged push failures with the right password")

        # 2. Wrong password, and no credentials at all: refused and counted,
        # and the pipeline does its work regardless.
        sink = pipe.start_sink("--push-auth-file", bad, name="sink-wrong")
        worker = pipe.start_worker("worker-nocreds")
        prod = pipe.start_producer("--rate", "0", "--count", str(COUNT), "--push-auth-file", bad,
                                   name="producer-wrong")
        check_not_in_argv(prod, [PASSWORD, WRONG])
        for p in (sink, worker, prod):
            wait_for(lambda: push_failures_logged(p), 15, "%s to log a refused push" % p.name)
        check(prod.wait(60) == 0, "producer with a refused gateway did not finish cleanly")
        pipe.assert_exactly_once("p1", COUNT)
        for p in (sink, worker):
            check(p.stop() == 0, "%s did not stop cleanly" % p.name)
        for p in (sink, worker, prod):
            failed = push_failures_logged(p)
            check(any(l.get("status") == 401 for l in failed if "status" in l),
                  "%s: no 401 among its push failures: %r" % (p.name, failed[:1]))
            errors = final_stats(p)["errors"]
            check(errors >= 1, "%s counted %s errors after refused pushes" % (p.name, errors))
            check(gw.value("pipeline_stage_up", job=pipe.job, instance=p.name) is None,
                  "%s's metrics reached the gateway without the right password" % p.name)
        log("wrong or missing password: every push refused (401) and counted; %d records exactly once anyway"
            % COUNT)

        # 3. Credentials in the URL work, but the URL is never logged with them.
        host = gw.url.split("://", 1)[1]
        s3 = pipe.start_sink("--pushgateway", "http://%s:%s@%s" % (USER, PASSWORD, host),
                             "--push-interval", "0.5", name="sink-url-creds")
        wait_for(lambda: gw.value("pipeline_stage_up", job=pipe.job, instance="sink-url-creds") == 1, 15,
                 "sink-url-creds' metrics (credentials in the URL)")
        check(s3.stop() == 0, "sink-url-creds did not stop cleanly")

        # 4. HTTPS: with the CA pushes succeed; without it they are refused.
        cert, key = make_cert(tmp)
        tls = SecureGateway(tmp, "gw-tls", hashed, tls=(cert, key))
        gateways.append(tls)
        pipe.gateway_url = tls.url
        s4 = standalone_sink(pipe, "sink-tls", "--push-auth-file", good, "--push-ca-file", cert)
        wait_for(lambda: tls.value("pipeline_stage_up", job=pipe.job, instance="sink-tls") == 1, 15,
                 "sink-tls' metrics over HTTPS with --push-ca-file")
        check(s4.stop() == 0, "sink-tls did not stop cleanly")
        check(not push_failures_logged(s4), "sink-tls logged push failures with the right CA")
        s5 = standalone_sink(pipe, "sink-tls-noca", "--push-auth-file", good)
        wait_for(lambda: push_failures_logged(s5), 15, "sink-tls-noca to log a refused push")
        check(s5.stop() == 0, "sink-tls-noca did not stop cleanly")
        check(final_stats(s5)["errors"] >= 1, "sink-tls-noca did not count its failed pushes")
        check(tls.value("pipeline_stage_up", job=pipe.job, instance="sink-tls-noca") is None,
              "a push without the CA reached the HTTPS gateway")
        log("HTTPS: pushed with --push-ca-file; without it refused (%s)"
            % push_failures_logged(s5)[0].get("error"))

        check_no_secret(pipe.procs, [PASSWORD, WRONG, auth_header(USER, PASSWORD).split()[1]])
        log("no credential in any stage's stdout or stderr (%d processes)" % len(pipe.procs))
        ok = True
    finally:
        pipe.cleanup(ok)
        for g in gateways:
            g.proc.stop()


if __name__ == "__main__":
    main()

"""gwtest.py — what the gateway tests share: starting a real hired-broker (ephemeral loopback
ports), fake or real workers and hired-gateway as processes of this build ($HIRED_BUILD_DIR),
plain HTTP requests with http.client, the broker's STATUS through the real `hired status --json`,
counting checks, and a cleanup that stops every process with SIGTERM and counts the ones that did
not exit 0 (a sanitizer build reports leaks and errors through the exit status). Every process
dies with the test (PR_SET_PDEATHSIG), and a watchdog alarm ends a test that hangs.
Not here: the tests themselves (test_gateway_*.py)."""

import base64
import ctypes
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse

BUILD = os.environ["HIRED_BUILD_DIR"]
FIXTURES = os.environ["HIRED_FIXTURES"]
LOG_LEVEL = os.environ.get("HIRED_TEST_LOG", "warn")
SCALE = int(os.environ.get("HIRED_TEST_TIMEOUT_SCALE", "1"))  # 3 in sanitizer builds
# The watchdog only catches hangs: below the integration label's ctest timeout (180 s x scale).
WATCHDOG_S = 170 * SCALE

_failures = 0
_checks = 0


def check(cond, msg=""):
    """Counts a check; prints the failure (with the caller's line) and goes on."""
    global _failures, _checks
    _checks += 1
    if not cond:
        _failures += 1
        f = sys._getframe(1)
        print(f"{os.path.basename(f.f_code.co_filename)}:{f.f_lineno}: CHECK failed: {msg}", file=sys.stderr, flush=True)
    return bool(cond)


def summary():
    print(f"{_checks} checks, {_failures} failed", flush=True)
    return 1 if _failures else 0


def _die_with_parent():
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def bin_path(rel):
    return os.path.join(BUILD, rel)


def fixture(rel):
    return os.path.join(FIXTURES, rel)


def data_uri(path, kind=None):
    with open(path, "rb") as f:
        raw = f.read()
    kind = kind or ("png" if path.endswith(".png") else "jpeg")
    return f"data:image/{kind};base64," + base64.b64encode(raw).decode()


def wait_for(what, fn, timeout_s, every_s=0.05):
    """Polls fn() until it returns something true; returns it. Fails the test (exit 1) after
    timeout_s, which only catches a hang: no test asserts how fast anything is."""
    end = time.monotonic() + timeout_s * SCALE
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > end:
            raise TimeoutError(f"{what} did not happen within {timeout_s * SCALE} s")
        time.sleep(every_s)


class Stack:
    """The processes of one test. Use as a context manager; exit() checks their exit statuses."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="hired-gw-")
        self.procs = []  # (name, Popen, log path)
        self.n = 0
        signal.signal(signal.SIGALRM, self._hung)
        signal.alarm(WATCHDOG_S)

    def _hung(self, *_):
        print("gwtest: watchdog expired, the test hung", file=sys.stderr, flush=True)
        for _, p, _ in self.procs:
            p.kill()
        self.dump_logs()
        os._exit(3)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        bad = self.cleanup()
        check(bad == 0, f"{bad} processes did not exit 0")
        return False

    def path(self, name):
        return os.path.join(self.dir, name)

    def spawn(self, name, argv, env=None, track=True):
        """Starts argv with its output in a log file; tracked processes are stopped and their
        exit statuses checked at cleanup."""
        self.n += 1
        log = self.path(f"{self.n:02d}-{name}.log")
        e = dict(os.environ)
        e.update(env or {})
        with open(log, "wb") as out:
            p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent, env=e)
        if track:
            self.procs.append((name, p, log))
        return p

    def broker(self, *opts):
        """Starts hired-broker on ephemeral loopback ports with the 200 ms heartbeat every process
        of these tests uses; returns (frontend, backend, Popen)."""
        ports = self.path(f"broker-ports-{self.n}")
        p = self.spawn("broker", [bin_path("broker/hired-broker"), "--broker.frontend=tcp://127.0.0.1:*",
                                  "--broker.backend=tcp://127.0.0.1:*", f"--broker.ports_file={ports}",
                                  "--broker.heartbeat_ms=200", f"--log.level={LOG_LEVEL}", *opts])
        kv = wait_for("the broker's ports file", lambda: _read_kv(ports, ("frontend", "backend")), 10)
        return kv["frontend"], kv["backend"], p

    def fake(self, back, service, model, capacity=2, delay_ms=0, *extra):
        return self.spawn(f"fake-{service}", [bin_path("tests/fake_worker"), "--endpoint", back, "--service", service,
                                              "--model", model, "--capacity", str(capacity), "--delay-ms",
                                              str(delay_ms), "--heartbeat-ms", "200", *extra])

    def worker(self, kind, back, model_dir, *opts):
        rel = "encoder_worker/hired-encoder" if kind == "encoder" else "decoder_worker/hired-decoder"
        return self.spawn(kind, [bin_path(rel), "--model", model_dir, f"--broker.endpoint={back}",
                                 "--broker.heartbeat_ms=200", f"--log.level={LOG_LEVEL}", *opts])

    def gateway(self, front, *opts):
        """Starts hired-gateway on an ephemeral loopback port; returns (base URL, Popen)."""
        ports = self.path(f"gw-ports-{self.n}")
        p = self.spawn("gateway", [bin_path("gateway/hired-gateway"), "--broker", front, "--port", "0",
                                   f"--http.ports_file={ports}", "--broker.heartbeat_ms=200",
                                   "--broker.status_interval_ms=200", f"--log.level={LOG_LEVEL}", *opts])
        kv = wait_for("the gateway's ports file", lambda: _read_kv(ports, ("http",)) or p.poll() is not None, 20)
        if kv is True:
            self.dump_logs()
            raise RuntimeError(f"hired-gateway exited with status {p.returncode} at start")
        return kv["http"], p

    def stop(self, p, timeout_s=15):
        """SIGTERM, then the exit status (SIGKILL and -9 after timeout_s x scale)."""
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        try:
            return p.wait(timeout_s * SCALE)
        except subprocess.TimeoutExpired:
            p.kill()
            return p.wait()

    def cleanup(self):
        """Stops everything (gateways first, then workers, then brokers) and returns how many
        processes did not exit 0; their logs are printed."""
        order = {"gateway": 0, "broker": 2}
        bad = 0
        for name, p, log in sorted(self.procs, key=lambda t: order.get(t[0], 1)):
            rc = self.stop(p)
            if rc != 0:
                bad += 1
                print(f"gwtest: {name} (pid {p.pid}) ended with status {rc}; its log:", file=sys.stderr)
                _tail(log)
        self.procs = []
        signal.alarm(0)
        if bad == 0:
            shutil.rmtree(self.dir, ignore_errors=True)
        return bad

    def dump_logs(self):
        for name, p, log in self.procs:
            print(f"--- {name} (pid {p.pid})", file=sys.stderr)
            _tail(log)


def _read_kv(path, keys):
    try:
        with open(path) as f:
            kv = dict(line.strip().split("=", 1) for line in f if "=" in line)
    except OSError:
        return None
    return kv if all(k in kv for k in keys) else None


def _tail(path, n=40):
    try:
        with open(path, errors="replace") as f:
            lines = f.readlines()
        sys.stderr.write("".join(lines[-n:]))
    except OSError:
        pass


def hired_status(front):
    """The broker's STATUS as a dict, through the real `hired status --json`; None when it fails."""
    r = subprocess.run([bin_path("client/hired"), "status", "--broker", front, "--json"], capture_output=True,
                       timeout=30 * SCALE)
    if r.returncode != 0:
        return None
    try:
        return json.loads(r.stdout)
    except ValueError:
        return None


def counter(front, name):
    st = hired_status(front) or {}
    return st.get("counters", {}).get(name, st.get(name))


def workers_ready(front, model, n_enc=1, n_dec=1):
    st = hired_status(front)
    if not st:
        return False
    have = {"encode": 0, "decode": 0}
    for pool in st.get("pools", []):
        if pool.get("model") == model:
            have[pool["service"]] = have.get(pool["service"], 0) + len(pool.get("workers", []))
    return have["encode"] >= n_enc and have["decode"] >= n_dec


def request(base, method, path, body=None, headers=None, timeout=60):
    """One HTTP request; (status, headers dict with lower-case names, body bytes)."""
    u = urllib.parse.urlsplit(base)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout * SCALE)
    h = {"Content-Type": "application/json"} if body is not None else {}
    h.update(headers or {})
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    hd = {k.lower(): v for k, v in r.getheaders()}
    c.close()
    return r.status, hd, data


def error_of(body):
    """The OpenAI error object of a response body, or {}."""
    try:
        return json.loads(body).get("error", {}) or {}
    except ValueError:
        return {}


def sse_events(raw):
    """The data: payloads of a server-sent event stream (bytes), in order."""
    out = []
    for block in raw.decode("utf-8").split("\n\n"):
        for line in block.split("\n"):
            if line.startswith("data: "):
                out.append(line[6:])
    return out


def chat_body(model, image_uri, text, **extra):
    body = {"model": model, "messages": [{"role": "user", "content": [
        {"type": "text", "text": text}, {"type": "image_url", "image_url": {"url": image_uri}}]}]}
    body.update(extra)
    return body

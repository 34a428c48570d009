"""test_gateway_errors.py — hired-gateway's refusals and faults, with a real hired-broker and the
fake workers (tests/integration/fake_worker.c: the decoder streams the prompt back word by word,
--delay-ms before each word, and stops at a CANCEL). Each fault is shown to have happened, each
bad request gets its status and an OpenAI error object naming the problem, and after all of them
the gateway still answers a good request correctly:

  - bad requests: seventeen images, <image> in the text, a last turn not the user's, broken
    base64, a non-image, a 50 MB body (413 before the body is read: raw headers, and curl sending it), a chunked body over the limit, wrong types,
    an unknown model (404), negative max_tokens, malformed JSON, a wrong method, an unknown path;
  - API keys (401 without or with a wrong key; /health and /metrics stay open);
  - BUSY from a full broker queue is 429 with Retry-After, and the admitted requests complete;
  - a deadline is 504, or an `error` event then [DONE] once a stream has begun; a worker's
    refusal of the job is a 400 with its message; text-only and two-image requests are served;
  - a client that disconnects mid-stream, or while waiting for a non-streaming answer, has its
    job cancelled: the broker's STATUS shows `cancelled` up by one and no active job within a
    moment (the job would have run 8 s; the time is printed);
  - /health is 503 with the reason when the decoder is gone, 200 again when it is back;
  - a broker that does not answer: 503 on /health, chat completions and /v1/models, and
    hired_broker_up 0 in /metrics;
  - http(s) image URLs: refused when images.fetch is off, fetched (from a local HTTP server) when
    on, with their failures (404, too large, not an image) named; file: URLs never;
  - gateway.models restricts the models served;
  - CURVE: a gateway with an authorised key pair is served, one with an unknown key is not;
  - the port in use: exit 1; SIGTERM with a stream in flight: the stream is cut after drain_ms,
    its job cancelled, exit 0;
  - sd_notify as systemd sees it: READY=1 once serving, WATCHDOG=1 while running, STOPPING=1
    on SIGTERM."""

import base64
import functools
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

import gwtest as g

MODEL = "m1"
IMAGE = g.fixture("images/tiny.png")
WORDS_SHORT = "alpha beta gamma delta"


def post(url, text=WORDS_SHORT, headers=None, **extra):
    """(status, response headers, the answer's text or the error body)."""
    st, hd, body = g.request(url, "POST", "/v1/chat/completions", g.chat_body(MODEL, g.data_uri(IMAGE), text, **extra),
                             headers=headers)
    if st != 200:
        return st, hd, body.decode(errors="replace")
    if extra.get("stream"):
        ev = g.sse_events(body)
        if not ev or ev[-1] != "[DONE]":
            return st, hd, "stream without [DONE]: " + body.decode(errors="replace")[-200:]
        return st, hd, "".join(json.loads(e)["choices"][0]["delta"].get("content") or "" for e in ev[:-1]
                               if json.loads(e).get("choices"))
    return st, hd, json.loads(body)["choices"][0]["message"]["content"]


def good(url, text=WORDS_SHORT, headers=None, **extra):
    st, _, t = post(url, text, headers, **extra)
    return st, t


def expect_error(url, body, status, needle, param=None, code=None, headers=None, what=""):
    st, hd, raw = g.request(url, "POST", "/v1/chat/completions", body, headers=headers)
    e = g.error_of(raw)
    ok = g.check(st == status and needle in e.get("message", ""), f"{what}: {st} {raw[:300]!r}")
    if param is not None:
        g.check(e.get("param") == param, f"{what}: param {e.get('param')!r} != {param!r}")
    if code is not None:
        g.check(e.get("code") == code, f"{what}: code {e.get('code')!r} != {code!r}")
    g.check("type" in e and "message" in e, f"{what}: not an OpenAI error object: {raw[:200]!r}")
    return ok, hd


def raw_http(url, head, body=b"", read_until=None, timeout=30):
    """Sends head (+ body) on a raw socket and returns what came back (until read_until appears,
    EOF, or timeout)."""
    u = urllib.parse.urlsplit(url)
    s = socket.create_connection((u.hostname, u.port), timeout=timeout * g.SCALE)
    s.sendall(head + body)
    got = b""
    try:
        while not (read_until and read_until in got):
            b = s.recv(65536)
            if not b:
                break
            got += b
    except socket.timeout:
        pass
    s.close()
    return got


def bad_requests(s, url):
    uri = g.data_uri(IMAGE)
    txt = {"type": "text", "text": "hi"}
    img = {"type": "image_url", "image_url": {"url": uri}}
    msgs = lambda *parts: [{"role": "user", "content": list(parts)}]
    cases = [
        ("seventeen images", {"model": MODEL, "messages": msgs(txt, *[img] * 17)}, 400, "at most 16 images", "messages"),
        ("<image> in the text", {"model": MODEL, "messages": msgs({"type": "text", "text": "see <image>"}, img)}, 400,
         "'<image>'", "messages[0].content[0]"),
        ("the last turn not the user's", {"model": MODEL, "messages": msgs(txt, img) + [
            {"role": "assistant", "content": "x"}]}, 400, "the last message must have role 'user'", "messages[1].role"),
        ("broken base64", {"model": MODEL, "messages": msgs(txt, {"type": "image_url", "image_url": {
            "url": "data:image/png;base64,iVBORw0K!!!"}})}, 400, "invalid base64 character '!'",
         "messages[0].content[1].image_url"),
        ("a non-image", {"model": MODEL, "messages": msgs(txt, {"type": "image_url", "image_url": {
            "url": "data:image/jpeg;base64," + base64.b64encode(b"this is not a picture").decode()}})}, 400,
         "not a JPEG or PNG image", "messages[0].content[1].image_url"),
        ("temperature as a string", g.chat_body(MODEL, uri, "hi", temperature="hot"), 400, "must be a number", "temperature"),
        ("messages as an object", {"model": MODEL, "messages": {"role": "user"}}, 400, "non-empty array", "messages"),
        ("model as a number", {"model": 5, "messages": msgs(txt, img)}, 400, "'model' must be a string", "model"),
        ("stream as a string", g.chat_body(MODEL, uri, "hi", stream="yes"), 400, "true or false", "stream"),
        ("negative max_tokens", g.chat_body(MODEL, uri, "hi", max_tokens=-3), 400, "(got -3)", "max_tokens"),
        ("an unknown strategy", g.chat_body(MODEL, uri, "hi", strategy="magic"), 400, "must be one of", "strategy"),
        ("a file: URL", {"model": MODEL, "messages": msgs(txt, {"type": "image_url", "image_url": {
            "url": "file:///etc/passwd"}})}, 400, "only data: URIs", "messages[0].content[1].image_url"),
        ("an http URL with fetching off", {"model": MODEL, "messages": msgs(txt, {"type": "image_url", "image_url": {
            "url": "http://127.0.0.1:1/x.png"}})}, 400, "does not fetch http(s) images", "messages[0].content[1].image_url"),
    ]
    for what, body, st, needle, param in cases:
        expect_error(url, body, st, needle, param=param, what=what)
    expect_error(url, g.chat_body("no-such-model", uri, "hi"), 404, "does not exist", param="model",
                 code="model_not_found", what="unknown model")
    expect_error(url, b"{\"model\": \"m1\", \"messages\": [", 400, "not valid JSON", code="invalid_json", what="bad JSON")
    st, _, raw = g.request(url, "GET", "/v1/chat/completions")
    g.check(st == 405 and g.error_of(raw).get("code") == "method_not_allowed", f"GET chat: {st} {raw[:200]}")
    st, _, raw = g.request(url, "GET", "/v2/nothing")
    g.check(st == 404 and "no such endpoint" in g.error_of(raw).get("message", ""), f"unknown path: {st} {raw[:200]}")

    # 50 MB: refused from its headers alone (nothing of the body is sent here) ...
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: 50000000\r\n\r\n").encode()
    got = raw_http(url, head, read_until=b"}}")
    g.check(got.startswith(b"HTTP/1.1 413") and b"http.max_body_bytes" in got, f"50 MB headers: {got[:400]!r}")
    # ... and as curl sends it (Expect: 100-continue)
    big = s.path("big.json")
    with open(big, "wb") as f:
        f.write(b"{\"model\":\"m1\",\"pad\":\"" + b"x" * 50_000_000 + b"\"}")
    c = subprocess.run(["curl", "-sS", "-o", s.path("big.out"), "-w", "%{http_code}", "-H", "Content-Type: application/json",
                        "--data-binary", "@" + big, url + "/v1/chat/completions"], capture_output=True, timeout=120 * g.SCALE)
    with open(s.path("big.out"), "rb") as f:
        e = g.error_of(f.read())
    g.check(c.stdout == b"413" and e.get("code") == "request_too_large" and "33554432" in e.get("message", ""),
            f"curl 50 MB: {c.stdout} {e} {c.stderr[:200]}")
    os.unlink(big)


def chunked_too_large(s, front):
    url, _ = s.gateway(front, "--http.max_body_bytes=200000")  # a good request (tiny.png) is ~75 kB
    chunk = b"x" * 10000
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(30)) + b"0\r\n\r\n"
    head = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    got = raw_http(url, head, body, read_until=b"}}")
    g.check(got.startswith(b"HTTP/1.1 413") and b"more than 200000 bytes" in got, f"chunked: {got[:400]!r}")
    g.check(good(url) == (200, WORDS_SHORT), "after a chunked 413")


def api_keys(s, front):
    keys = s.path("keys")
    with open(keys, "w") as f:
        f.write("# gateway keys\n\n  sk-first  \nsk-second\n")
    url, _ = s.gateway(front, f"--http.api_keys_file={keys}")
    body = g.chat_body(MODEL, g.data_uri(IMAGE), "hi")
    expect_error(url, body, 401, "API key", code="invalid_api_key", what="no key")
    _, hd = expect_error(url, body, 401, "API key", headers={"Authorization": "Bearer sk-third"}, what="wrong key")
    g.check(hd.get("www-authenticate") == "Bearer", f"WWW-Authenticate: {hd}")
    expect_error(url, body, 401, "API key", headers={"Authorization": "Bearer sk-firs"}, what="a prefix of a key")
    for k in ("sk-first", "sk-second"):
        g.check(good(url, headers={"Authorization": f"Bearer {k}"}) == (200, WORDS_SHORT), f"key {k}")
    st, _, _ = g.request(url, "GET", "/v1/models")
    g.check(st == 401, f"/v1/models without a key: {st}")
    g.check(g.request(url, "GET", "/health")[0] == 200, "/health needs no key")
    g.check(g.request(url, "GET", "/metrics")[0] == 200, "/metrics needs no key")


def busy(s):
    """A broker whose queues hold one job, one slow decoder: concurrent requests beyond that get
    429 (BUSY) with a retry hint, the admitted ones their answers."""
    front, back, _ = s.broker("--broker.queue_max=1")
    s.fake(back, "encode", MODEL, 1, 0)
    s.fake(back, "decode", MODEL, 1, 100)
    g.wait_for("workers", lambda: g.workers_ready(front, MODEL), 30)
    url, _ = s.gateway(front)
    results = [None] * 8

    def one(i):
        results[i] = post(url, text=f"w{i} x y z", stream=(i % 2 == 0))

    ths = [threading.Thread(target=one, args=(i,)) for i in range(len(results))]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    n429 = sum(1 for r in results if r[0] == 429)
    n200 = sum(1 for r in results if r[0] == 200)
    g.check(n429 >= 1 and n200 >= 1 and n429 + n200 == len(results), f"busy: {[r[0] for r in results]}")
    for i, (st, hd, text) in enumerate(results):
        if st == 200:
            g.check(text == f"w{i} x y z", f"busy: answer {i}: {text!r}")
        elif st == 429:
            g.check("server_busy" in text and "retry later" in text, f"busy: {text}")
            g.check(int(hd.get("retry-after", "0")) >= 1 and int(hd.get("retry-after-ms", "0")) > 0, f"429 headers {hd}")
    st, hd, raw = g.request(url, "GET", "/metrics")
    g.check(b"hired_gateway_busy_total %d\n" % n429 in raw, "hired_gateway_busy_total")
    g.check(g.counter(front, "busy") == n429, f"broker busy counter {g.counter(front, 'busy')} != {n429}")


def stream_first_events(url, text, n_events, stream=True):
    """Opens a request on a raw socket, reads until n_events SSE events (or, non-streaming, sends
    only), and returns the socket still open."""
    body = json.dumps(g.chat_body(MODEL, g.data_uri(IMAGE), text, stream=stream, max_tokens=1000)).encode()
    u = urllib.parse.urlsplit(url)
    sock = socket.create_connection((u.hostname, u.port), timeout=30 * g.SCALE)
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    got = b""
    while stream and got.count(b"data: ") < n_events:
        b = sock.recv(65536)
        if not b:
            break
        got += b
    return sock, got


def disconnects(front, url):
    long_text = " ".join(f"w{i}" for i in range(300))  # 300 words x 80 ms: 24 s when not cancelled
    for stream in (True, False):
        cancelled = g.counter(front, "cancelled")
        abandoned = g.counter(front, "abandoned")
        completed = g.counter(front, "completed")
        sock, got = stream_first_events(url, long_text, 3, stream)
        if stream:
            g.check(got.startswith(b"HTTP/1.1 200") and b"text/event-stream" in got, f"stream start: {got[:300]!r}")
        else:
            g.wait_for("the job running", lambda: (g.hired_status(front) or {}).get("active_jobs") == 1, 30)
        t0 = time.monotonic()
        sock.close()

        def freed():
            st = g.hired_status(front) or {}
            return st.get("active_jobs") == 0 and st.get("counters", {}).get("cancelled") == cancelled + 1

        # The broker counts a CANCEL from its client as "cancelled"; jobs it drops itself because
        # a client went silent or said BYE are "abandoned" instead, so the counter shows that the
        # gateway's own cancel freed the decoder, however slow the machine is.
        g.wait_for("the broker cancelling the job of a client that left", freed, 30)
        took = time.monotonic() - t0
        print(f"disconnect ({'stream' if stream else 'waiting'}): job cancelled, decoder free after {took:.3f} s")
        g.check(g.counter(front, "abandoned") == abandoned, "the job was abandoned, not cancelled by the gateway")
        g.check(g.counter(front, "completed") == completed, "the job completed instead of being cancelled")
    # Counted when the gateway cancels the job (the events thread saw the socket close) or when
    # MHD ends the request, whichever comes first; either is at most a moment after the cancel.
    g.wait_for("hired_gateway_client_disconnects_total 2",
               lambda: b"hired_gateway_client_disconnects_total 2\n" in g.request(url, "GET", "/metrics")[2], 10)


def deadline(url):
    body = g.chat_body(MODEL, g.data_uri(IMAGE), " ".join(f"w{i}" for i in range(40)), deadline_ms=300)
    expect_error(url, body, 504, "did not finish in time", code="deadline_exceeded", what="deadline")
    # streamed: the headers went out with the first token, so the deadline is an error event
    body["stream"] = True
    st, hd, raw = g.request(url, "POST", "/v1/chat/completions", body)
    ev = g.sse_events(raw)
    g.check(st == 200 and len(ev) >= 3 and ev[-1] == "[DONE]", f"streamed deadline: {st} {raw[-300:]!r}")
    err = json.loads(ev[-2]).get("error", {}) if len(ev) >= 2 else {}
    g.check(err.get("code") == "deadline_exceeded" and "did not finish in time" in err.get("message", ""),
            f"streamed deadline: the last event before [DONE] is {ev[-2:]!r}")
    got = "".join(json.loads(e)["choices"][0]["delta"].get("content") or "" for e in ev[:-2] if json.loads(e).get("choices"))
    g.check(got.startswith("w0 w1 ") and len(got) < len(" ".join(f"w{i}" for i in range(40))),
            f"streamed deadline: the text before the error: {got!r}")


def conversations(url):
    # protocol v5: text-only and several-image requests reach the (fake) workers; the fake decoder
    # streams the conversation's last text part back, having checked one record per image
    uri = g.data_uri(IMAGE)
    img = {"type": "image_url", "image_url": {"url": uri}}
    for what, msgs in (("text only", [{"role": "system", "content": "x"}, {"role": "user", "content": "w0 w1 w2"}]),
                       ("two images", [{"role": "user", "content": [img, {"type": "text", "text": "w0 w1"}, img]}])):
        st, _, raw = g.request(url, "POST", "/v1/chat/completions", {"model": MODEL, "messages": msgs})
        want = msgs[-1]["content"] if isinstance(msgs[-1]["content"], str) else "w0 w1"
        g.check(st == 200 and json.loads(raw)["choices"][0]["message"]["content"] == want, f"{what}: {st} {raw[:300]}")


def worker_refusal(url):
    # the fake decoder answers ERROR (EINVAL) to a prompt starting with FAIL: a 400 with its words
    expect_error(url, g.chat_body(MODEL, g.data_uri(IMAGE), "FAIL please"), 400, "fake failure requested",
                 code="invalid_input", what="a worker refusing the job")


def health_without_decoder(s, front, back, url, dec):
    g.check(s.stop(dec) == 0, "the fake decoder did not exit 0")

    def unhealthy():
        st, _, raw = g.request(url, "GET", "/health")
        return st == 503 and b"0 usable decode workers" in raw

    g.wait_for("/health 503 without a decoder", unhealthy, 30)
    st, _, raw = g.request(url, "POST", "/v1/chat/completions", g.chat_body(MODEL, g.data_uri(IMAGE), "q"))
    e = g.error_of(raw)
    g.check(st == 503 and e.get("code") == "no_workers", f"chat without a decoder: {st} {raw[:300]}")
    s.fake(back, "decode", MODEL, 2, 80)
    g.wait_for("/health 200 again", lambda: g.request(url, "GET", "/health")[0] == 200, 30)


def no_broker(s):
    # a port nothing listens on: ZeroMQ keeps trying, nobody ever answers
    with socket.socket() as tmp:
        tmp.bind(("127.0.0.1", 0))
        port = tmp.getsockname()[1]
    url, _ = s.gateway(f"tcp://127.0.0.1:{port}", "--broker.connect_timeout_ms=500", "--broker.status_timeout_ms=300")
    st, _, raw = g.request(url, "GET", "/health")
    g.check(st == 503 and b"did not answer" in raw, f"/health, no broker: {st} {raw[:200]}")
    st, _, raw = g.request(url, "POST", "/v1/chat/completions", g.chat_body(MODEL, g.data_uri(IMAGE), "q"))
    g.check(st == 503 and g.error_of(raw).get("code") == "broker_unreachable", f"chat, no broker: {st} {raw[:200]}")
    st, _, raw = g.request(url, "GET", "/v1/models")
    g.check(st == 503, f"/v1/models, no broker: {st}")
    st, _, raw = g.request(url, "GET", "/metrics")
    g.check(st == 200 and b"hired_broker_up 0\n" in raw, f"/metrics, no broker: {raw[-300:]}")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


class _Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # the gateway hangs up on an image that is too large: expected


def fetching(s, front):
    d = s.path("www")
    os.makedirs(d)
    with open(IMAGE, "rb") as f, open(os.path.join(d, "img.png"), "wb") as o:
        o.write(f.read())
    with open(os.path.join(d, "big.png"), "wb") as o:
        o.write(b"\x89PNG\r\n\x1a\n" + b"\0" * 300000)
    with open(os.path.join(d, "text.png"), "wb") as o:
        o.write(b"hello, not an image")
    srv = _Server(("127.0.0.1", 0), functools.partial(_Quiet, directory=d))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{srv.server_address[1]}"
    url, _ = s.gateway(front, "--images.fetch=true", "--images.max_bytes=200000")
    body = lambda u: {"model": MODEL, "messages": [{"role": "user", "content": [
        {"type": "text", "text": WORDS_SHORT}, {"type": "image_url", "image_url": {"url": u}}]}]}
    st, _, raw = g.request(url, "POST", "/v1/chat/completions", body(base + "/img.png"))
    g.check(st == 200 and json.loads(raw)["choices"][0]["message"]["content"] == WORDS_SHORT, f"fetch: {st} {raw[:200]}")
    for path, needle in (("/missing.png", "HTTP status 404"), ("/big.png", "larger than 200000"),
                         ("/text.png", "not a JPEG or PNG")):
        expect_error(url, body(base + path), 400, needle, what=f"fetch {path}")
    expect_error(url, body("file:///etc/hostname"), 400, "only data: URIs and http(s) URLs", what="file: with fetching on")
    st, _, raw = g.request(url, "GET", "/metrics")
    # fetched: img.png and text.png (then refused as no image); failed: the 404 and the one too large
    g.check(b"hired_gateway_images_fetched_total 2\n" in raw and b"hired_gateway_image_fetch_failures_total 2\n" in raw,
            "fetch counters")
    srv.shutdown()
    srv.server_close()


def models_filter(s, front):
    url, _ = s.gateway(front, "--gateway.models=other")
    expect_error(url, g.chat_body(MODEL, g.data_uri(IMAGE), "q"), 404, "not served here", code="model_not_found",
                 what="gateway.models")
    st, _, raw = g.request(url, "GET", "/v1/models")
    g.check(st == 200 and json.loads(raw)["data"] == [], f"/v1/models filtered: {raw[:200]}")
    st, _, raw = g.request(url, "GET", "/health")
    g.check(st == 503 and b"'other' has 0 usable encode" in raw, f"/health filtered: {raw[:200]}")


def curve(s):
    keys = s.path("keys.d")
    for name in ("broker", "worker", "gateway", "intruder"):
        r = subprocess.run([g.bin_path("client/hired"), "keygen", name, "--dir", keys], capture_output=True)
        g.check(r.returncode == 0, f"keygen {name}: {r.stderr}")
    os.makedirs(f"{keys}/clients")
    os.makedirs(f"{keys}/workers")
    os.rename(f"{keys}/gateway", f"{keys}/clients/gateway")
    os.rename(f"{keys}/worker", f"{keys}/workers/worker")
    front, back, _ = s.broker(f"--curve.server_cert={keys}/broker_secret", f"--curve.authorized_keys={keys}/clients",
                              f"--curve.worker_keys={keys}/workers")
    for svc in ("encode", "decode"):
        s.fake(back, svc, MODEL, 2, 0, "--curve-server-key", f"{keys}/broker", "--curve-cert", f"{keys}/worker_secret")
    url, _ = s.gateway(front, f"--curve.server_key={keys}/broker", f"--curve.cert={keys}/gateway_secret")
    g.wait_for("the CURVE gateway healthy", lambda: g.request(url, "GET", "/health")[0] == 200, 30)
    g.check(good(url) == (200, WORDS_SHORT), "a request through CURVE")
    url2, _ = s.gateway(front, f"--curve.server_key={keys}/broker", f"--curve.cert={keys}/intruder_secret",
                        "--broker.connect_timeout_ms=500", "--broker.status_timeout_ms=300")
    st, _, raw = g.request(url2, "GET", "/health")
    g.check(st == 503 and b"did not answer" in raw, f"an unauthorised gateway: {st} {raw[:200]}")


def systemd_notify(s, front):
    """As systemd runs it (Type=notify, WatchdogSec=): READY=1 once serving, WATCHDOG=1 while it
    runs, STOPPING=1 on SIGTERM, exit 0."""
    path = s.path("notify.sock")
    ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ns.bind(path)
    ns.settimeout(20 * g.SCALE)
    ports = s.path("notify.ports")
    p = s.spawn("gateway-notify", [g.bin_path("gateway/hired-gateway"), "--broker", front, "--port", "0",
                                   f"--http.ports_file={ports}", "--log.level=warn"],
                env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"})
    msgs = []
    try:
        while sum("WATCHDOG=1" in m for m in msgs) < 3:
            msgs.append(ns.recv(4096).decode())
        g.check(any("READY=1" in m for m in msgs[:2]), f"no READY=1 first: {msgs[:3]}")
        g.check(g.request(open(ports).read().split("=", 1)[1].strip(), "GET", "/metrics")[0] == 200, "serving at READY")
        p.send_signal(15)
        while not any("STOPPING=1" in m for m in msgs):
            msgs.append(ns.recv(4096).decode())
    except socket.timeout:
        g.check(False, f"sd_notify messages so far: {msgs}")
    g.check(sum("READY=1" in m for m in msgs) == 1, f"READY=1 not exactly once: {msgs}")
    g.check(s.stop(p) == 0, "the gateway did not exit 0 after SIGTERM")
    ns.close()


def port_in_use_and_shutdown(s, front, url):
    port = urllib.parse.urlsplit(url).port
    p = s.spawn("gateway-dup", [g.bin_path("gateway/hired-gateway"), "--broker", front, "--port", str(port),
                                "--log.level=error"], track=False)
    g.check(p.wait(30 * g.SCALE) == 1, f"a second gateway on port {port}: exit {p.returncode} (want 1)")
    # SIGTERM with a stream in flight: cut after drain_ms, its job cancelled, exit 0
    url2, gw2 = s.gateway(front, "--gateway.drain_ms=300")
    ended = lambda st: st.get("counters", {}).get("cancelled", 0) + st.get("counters", {}).get("abandoned", 0)
    before = ended(g.hired_status(front))
    sock, got = stream_first_events(url2, " ".join(f"w{i}" for i in range(100)), 2)
    g.check(got.startswith(b"HTTP/1.1 200"), f"stream before SIGTERM: {got[:200]!r}")
    g.check(s.stop(gw2) == 0, f"the gateway did not exit 0 on SIGTERM with a stream in flight ({gw2.returncode})")
    rest = b""
    try:
        while True:
            b = sock.recv(65536)
            if not b:
                break
            rest += b
    except OSError:
        pass
    sock.close()
    g.check(b"[DONE]" not in rest, "a cut-off stream must not end with [DONE]")
    # cancelled (the gateway's CANCEL) or abandoned (its BYE), whichever reached the broker first
    g.wait_for("the cut-off stream's job ended at the broker",
               lambda: ended(g.hired_status(front) or {}) == before + 1 and g.hired_status(front).get("active_jobs") == 0, 10)


def main():
    with g.Stack() as s:
        front, back, _ = s.broker()
        s.fake(back, "encode", MODEL, 4, 0)
        dec = s.fake(back, "decode", MODEL, 2, 80)
        g.wait_for("workers", lambda: g.workers_ready(front, MODEL), 30)
        url, _ = s.gateway(front)
        g.check(good(url) == (200, WORDS_SHORT), "a good request")
        bad_requests(s, url)
        g.check(good(url) == (200, WORDS_SHORT), "a good request after the bad ones")
        chunked_too_large(s, front)
        api_keys(s, front)
        deadline(url)
        worker_refusal(url)
        conversations(url)
        disconnects(front, url)
        g.check(good(url, stream=False) == (200, WORDS_SHORT), "a good request after the disconnects")
        health_without_decoder(s, front, back, url, dec)
        models_filter(s, front)
        fetching(s, front)
        port_in_use_and_shutdown(s, front, url)
        systemd_notify(s, front)
        g.check(good(url) == (200, WORDS_SHORT), "the first gateway still serves")
        no_broker(s)
        busy(s)
        curve(s)
    return g.summary()


if __name__ == "__main__":
    sys.exit(main())

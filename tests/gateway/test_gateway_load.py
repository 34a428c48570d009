"""test_gateway_load.py — 200 concurrent streaming chat completions through one hired-gateway,
with a real hired-broker whose queues hold 16 jobs and fast fake workers (the fake encoder hashes
the image bytes, the fake decoder streams the prompt back word by word), sent by the official
`openai` package's async client. Requests that find the queues full get 429 (the broker's BUSY)
with retry-after-ms, which the SDK honours and retries (max_retries is set high), as OpenAI
clients do. Checked: every one of the 200 requests ends with its stream complete and exactly its
own text (nothing lost, nothing crossed between streams); 429s happened (the queues were really
full) and the gateway's 429 count, its BUSY counter and the broker's agree; afterwards the broker
has no active job, completed 200 jobs, and /metrics shows 200 streams answered and none in
flight; the gateway exits 0 (no leak in the sanitizer build)."""

import asyncio
import base64
import sys

import openai

import gwtest as g

MODEL = "m1"
N = 200
# The fake workers never decode the image: any bytes that start like a PNG pass the gateway's
# check, and a small body keeps 200 requests light.
IMAGE_URI = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(range(56))).decode()


async def one(client, i):
    text = f"req{i} alpha beta gamma delta"
    msgs = [{"role": "user", "content": [{"type": "text", "text": text},
                                         {"type": "image_url", "image_url": {"url": IMAGE_URI}}]}]
    stream = await client.chat.completions.create(model=MODEL, messages=msgs, stream=True)
    parts, finish = [], None
    async for chunk in stream:
        if chunk.choices:
            parts.append(chunk.choices[0].delta.content or "")
            finish = chunk.choices[0].finish_reason or finish
    got = "".join(parts)
    return None if got == text and finish == "stop" else f"text {got!r} ({finish}) != {text!r}"


async def run(url):
    client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="unused", max_retries=100, timeout=120 * g.SCALE)
    res = await asyncio.gather(*(one(client, i) for i in range(N)), return_exceptions=True)
    await client.close()
    return res


def metric(m, line_start):
    for line in m.decode().splitlines():
        if line.startswith(line_start + " "):
            return float(line.split()[-1])
    return None


def main():
    with g.Stack() as s:
        front, back, _ = s.broker("--broker.queue_max=16")
        s.fake(back, "encode", MODEL, 8, 2)
        for _ in range(2):
            s.fake(back, "decode", MODEL, 8, 5)
        g.wait_for("workers", lambda: g.workers_ready(front, MODEL, 1, 2), 30)
        url, _ = s.gateway(front)
        res = asyncio.run(run(url))
        bad = [(i, r) for i, r in enumerate(res) if r is not None]
        g.check(not bad, f"{len(bad)} of {N} requests did not get their answer: {bad[:5]}")
        _, _, m = g.request(url, "GET", "/metrics")
        n429 = metric(m, 'hired_gateway_requests_total{endpoint="chat_completions",code="429"}') or 0
        print(f"{N} streams answered; {n429:.0f} answers on the way were 429 (BUSY) and retried by the SDK")
        g.check(n429 > 0, "no request was ever refused with 429: the queues were never full")
        g.check(metric(m, 'hired_gateway_requests_total{endpoint="chat_completions",code="200"}') == N, "200s in /metrics")
        g.check(metric(m, "hired_gateway_busy_total") == n429, "hired_gateway_busy_total != the 429s")
        g.check(metric(m, "hired_gateway_requests_in_flight") == 0, "requests still in flight")
        st = g.hired_status(front)
        g.check(st["active_jobs"] == 0, f"active jobs after the load: {st['active_jobs']}")
        g.check(st["counters"]["busy"] == n429, f"broker busy {st['counters']['busy']} != 429s {n429}")
        g.check(st["counters"]["completed"] == N, f"broker completed {st['counters']['completed']} != {N}")
    return g.summary()


if __name__ == "__main__":
    sys.exit(main())

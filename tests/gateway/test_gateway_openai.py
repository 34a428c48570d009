"""test_gateway_openai.py — hired-gateway in front of a real hired-broker, hired-encoder and
hired-decoder on the tiny LLaVA-1.5 fixture model, driven by the official `openai` Python package
and by curl:

  - non-streaming and streaming chat completions with a data: URI image give exactly the text
    the real `hired submit` gives for the same question, image, seed and max tokens (greedy, and
    sampled at temperature 0.9 with a seed); curl gets the same text through server-sent events
    ending with `data: [DONE]`;
  - a conversation (system message, earlier turns, the image in an earlier turn), a text-only
    request and two images in one request give what `hired submit` gives for the same messages
    (the gateway passes the messages and all images through, docs/gateway.md §3);
  - a stop string cuts the answer where it first occurs, finish_reason "stop";
  - usage carries the decoder's token counts and hired's figures; strategy "none" keeps every
    visual token and "hired" at budget 0.2 fewer;
  - /v1/models and /v1/models/{id} list the model, /health is 200;
  - /metrics parses with prometheus_client's text parser and its counters move by what one more
    request did (requests, tokens, visual tokens, broker completions, stage histograms);
  - every process exits 0 on SIGTERM (the sanitizer build's leak check included)."""

import json
import os
import subprocess
import sys

import openai
from prometheus_client.parser import text_string_to_metric_families

import gwtest as g

MODEL = "llava15-tiny"
MODEL_DIR = g.fixture("models/llava15-tiny")
IMAGE = g.fixture("images/rocket_odd.jpg")
QUESTION = "What is in the picture?"
MAX_TOKENS = 24


def hired_submit(front, prompt, seed=0, temperature=0.0, max_tokens=MAX_TOKENS, request=None, image=True):
    request = request if request is not None else [prompt]
    r = subprocess.run([g.bin_path("client/hired"), "submit", "--broker", front, "--model", MODEL] +
                       (["--image", IMAGE] if image else []) +
                       ["--seed", str(seed), "--temperature", str(temperature), "--max-tokens", str(max_tokens)] + request,
                       capture_output=True, timeout=120 * g.SCALE)
    g.check(r.returncode == 0, f"hired submit: status {r.returncode}: {r.stderr.decode(errors='replace')}")
    out = r.stdout.decode("utf-8", "replace")
    g.check(out.endswith("\n"), "hired submit ends the answer with a newline")
    return out[:-1]  # that newline (client/cmd_submit.c) is not part of the answer


def metrics(url):
    st, _, body = g.request(url, "GET", "/metrics")
    g.check(st == 200, f"/metrics status {st}")
    samples = {}
    for fam in text_string_to_metric_families(body.decode()):  # raises on a malformed exposition
        for s in fam.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def sample(m, name, **labels):
    return m.get((name, tuple(sorted(labels.items()))), 0.0)


def main():
    image_uri = g.data_uri(IMAGE)
    with g.Stack() as s:
        front, back, _ = s.broker()
        url, _ = s.gateway(front)
        # before any worker: not healthy, and it says why
        st, _, body = g.request(url, "GET", "/health")
        g.check(st == 503 and b"no workers" in body, f"/health without workers: {st} {body[:200]}")
        s.worker("encoder", back, MODEL_DIR, "--worker.warmup=false")
        s.worker("decoder", back, MODEL_DIR, "--worker.warmup=false")
        g.wait_for("both workers registering", lambda: g.workers_ready(front, MODEL), 120)
        st, _, body = g.request(url, "GET", "/health")
        g.check(st == 200 and json.loads(body)["status"] == "ok", f"/health: {st} {body[:200]}")

        client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=120 * g.SCALE)
        msgs = [{"role": "user", "content": [{"type": "text", "text": QUESTION},
                                             {"type": "image_url", "image_url": {"url": image_uri}}]}]

        # ---- the same text as `hired submit` -------------------------------------------------
        expect = hired_submit(front, QUESTION)
        g.check(len(expect) > 0, "hired submit gave no text")
        r = client.chat.completions.create(model=MODEL, messages=msgs, max_tokens=MAX_TOKENS, seed=0)
        text = r.choices[0].message.content
        g.check(text == expect, f"non-streaming: {text!r} != {expect!r}")
        g.check(r.choices[0].finish_reason in ("stop", "length"), f"finish_reason {r.choices[0].finish_reason}")
        g.check(r.object == "chat.completion" and r.id.startswith("chatcmpl-") and r.model == MODEL, f"{r.object} {r.id}")
        u = r.usage
        g.check(u.prompt_tokens > 0 and u.completion_tokens > 0 and u.total_tokens == u.prompt_tokens + u.completion_tokens,
                f"usage {u}")
        h = (u.model_extra or {}).get("hired", {})
        g.check(0 < h.get("visual_tokens_kept", 0) < h.get("visual_tokens_total", 0), f"hired usage {h}")
        g.check(h.get("result_bytes", 0) > 0 and h.get("timings_ms", {}).get("vit", -1) >= 0, f"hired usage {h}")

        stream = client.chat.completions.create(model=MODEL, messages=msgs, max_tokens=MAX_TOKENS, seed=0, stream=True,
                                                stream_options={"include_usage": True})
        parts, finish, usage = [], None, None
        for chunk in stream:
            if chunk.choices:
                parts.append(chunk.choices[0].delta.content or "")
                finish = chunk.choices[0].finish_reason or finish
            if chunk.usage:
                usage = chunk.usage
        g.check("".join(parts) == expect, f"streaming: {''.join(parts)!r} != {expect!r}")
        g.check(finish == r.choices[0].finish_reason, f"streaming finish {finish}")
        g.check(usage is not None and usage.completion_tokens == u.completion_tokens, f"streaming usage {usage}")

        # curl through SSE
        body_file = s.path("req.json")
        with open(body_file, "w") as f:
            json.dump(g.chat_body(MODEL, image_uri, QUESTION, max_tokens=MAX_TOKENS, seed=0, stream=True), f)
        c = subprocess.run(["curl", "-sSN", "-H", "Content-Type: application/json", "--data-binary", "@" + body_file,
                            url + "/v1/chat/completions"], capture_output=True, timeout=120 * g.SCALE)
        g.check(c.returncode == 0, f"curl status {c.returncode}: {c.stderr}")
        events = g.sse_events(c.stdout)
        g.check(events and events[-1] == "[DONE]", f"curl: the stream does not end with [DONE]: {events[-2:]}")
        chunks = [json.loads(e) for e in events[:-1]]
        curl_text = "".join(ch["choices"][0]["delta"].get("content") or "" for ch in chunks if ch["choices"])
        g.check(curl_text == expect, f"curl SSE: {curl_text!r} != {expect!r}")
        g.check(all(ch["object"] == "chat.completion.chunk" and ch["id"] == chunks[0]["id"] for ch in chunks), "chunk ids")

        # sampled, with a seed
        sampled = hired_submit(front, QUESTION, seed=11, temperature=0.9)
        r = client.chat.completions.create(model=MODEL, messages=msgs, max_tokens=MAX_TOKENS, seed=11, temperature=0.9)
        g.check(r.choices[0].message.content == sampled, f"sampled: {r.choices[0].message.content!r} != {sampled!r}")

        # a conversation travels as messages (docs/gateway.md §3): what `hired submit --messages`
        # gives for the same messages, the image where it was
        conv = [{"role": "system", "content": "Answer briefly."},
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": image_uri}},
                                             {"type": "text", "text": "What is it?"}]},
                {"role": "assistant", "content": "A rocket."},
                {"role": "user", "content": "What colour is it?"}]
        conv_file = s.path("conv.json")
        with open(conv_file, "w") as f:
            json.dump([conv[0], {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is it?"}]},
                       conv[2], conv[3]], f)
        want = hired_submit(front, None, request=["--messages", conv_file])
        r = client.chat.completions.create(model=MODEL, messages=conv, max_tokens=MAX_TOKENS, seed=0)
        g.check(r.choices[0].message.content == want, f"conversation: {r.choices[0].message.content!r} != {want!r}")
        # text only (no encoder work) and two images in one request, against `hired submit`
        text_only = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Say hello."}]
        want = hired_submit(front, "Say hello.", request=["--system", "Answer briefly.", "Say hello."],
                            image=False)
        r = client.chat.completions.create(model=MODEL, messages=text_only, max_tokens=MAX_TOKENS, seed=0)
        g.check(r.choices[0].message.content == want, f"text only: {r.choices[0].message.content!r} != {want!r}")
        g.check(r.usage.model_extra["hired"].get("visual_tokens_total", 0) == 0, f"text only usage {r.usage}")
        two = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": image_uri}},
                                            {"type": "image_url", "image_url": {"url": image_uri}},
                                            {"type": "text", "text": "Are they the same?"}]}]
        want = hired_submit(front, None, request=["--image", IMAGE, "Are they the same?"])
        r = client.chat.completions.create(model=MODEL, messages=two, max_tokens=MAX_TOKENS, seed=0)
        g.check(r.choices[0].message.content == want, f"two images: {r.choices[0].message.content!r} != {want!r}")

        # a stop string: cut where it first occurs
        stop = next((expect[i:i + 3] for i in range(2, len(expect) - 3) if expect[i:i + 3].strip()), None)
        if g.check(stop is not None, f"no stop string to take from {expect!r}"):
            r = client.chat.completions.create(model=MODEL, messages=msgs, max_tokens=MAX_TOKENS, seed=0, stop=[stop])
            cut = expect[:expect.index(stop)]
            g.check(r.choices[0].message.content == cut and r.choices[0].finish_reason == "stop",
                    f"stop {stop!r}: {r.choices[0].message.content!r} ({r.choices[0].finish_reason}) != {cut!r}")
            stream = client.chat.completions.create(model=MODEL, messages=msgs, max_tokens=MAX_TOKENS, seed=0, stop=stop,
                                                    stream=True)
            got = "".join((ch.choices[0].delta.content or "") for ch in stream if ch.choices)
            g.check(got == cut, f"streamed stop {stop!r}: {got!r} != {cut!r}")

        # hired's selection options as extra fields
        r = client.chat.completions.create(model=MODEL, messages=msgs, max_tokens=2,
                                           extra_body={"strategy": "none", "budget": 1.0})
        h_none = r.usage.model_extra["hired"]
        r = client.chat.completions.create(model=MODEL, messages=msgs, max_tokens=2,
                                           extra_body={"strategy": "hired", "budget": 0.2, "alpha": 0.5, "newline": "hf"})
        h_02 = r.usage.model_extra["hired"]
        g.check(h_none["visual_tokens_kept"] == h_none["visual_tokens_total"] > 0, f"strategy none: {h_none}")
        g.check(h_02["visual_tokens_kept"] < h_none["visual_tokens_kept"], f"budget 0.2: {h_02} vs {h_none}")
        g.check(h_02["result_bytes"] < h_none["result_bytes"], f"wire bytes: {h_02} vs {h_none}")

        # ---- models, health ---------------------------------------------------------------------
        models = client.models.list()
        ids = [m.id for m in models.data]
        g.check(ids == [MODEL], f"/v1/models: {ids}")
        g.check(client.models.retrieve(MODEL).id == MODEL, "/v1/models/{id}")
        try:
            client.models.retrieve("no-such-model")
            g.check(False, "/v1/models/no-such-model answered")
        except openai.NotFoundError:
            pass

        # ---- metrics move as a job runs -----------------------------------------------------------
        before = metrics(url)
        r = client.chat.completions.create(model=MODEL, messages=msgs, max_tokens=MAX_TOKENS, seed=0)
        h = r.usage.model_extra["hired"]
        after = metrics(url)
        ok200 = {"endpoint": "chat_completions", "code": "200"}
        g.check(sample(after, "hired_gateway_requests_total", **ok200) - sample(before, "hired_gateway_requests_total", **ok200) == 1,
                "requests_total{chat_completions,200} did not move by 1")
        g.check(sample(before, "hired_gateway_requests_total", **ok200) >= 8, "earlier requests not counted")
        for name, want_delta in (("hired_gateway_tokens_streamed_total", r.usage.completion_tokens),
                                 ("hired_gateway_visual_tokens_kept_total", h["visual_tokens_kept"]),
                                 ("hired_gateway_visual_tokens_input_total", h["visual_tokens_total"]),
                                 ("hired_gateway_result_bytes_total", h["result_bytes"]),
                                 ("hired_gateway_jobs_completed_total", 1),
                                 ("hired_gateway_stage_duration_seconds_count", 1),
                                 ("hired_gateway_request_duration_seconds_count", 1)):
            labels = {"stage": "vit"} if "stage" in name else {}
            d = sample(after, name, **labels) - sample(before, name, **labels)
            g.check(d == want_delta, f"{name} moved by {d}, want {want_delta}")
        d = sample(after, "hired_broker_completed_total") - sample(before, "hired_broker_completed_total")
        g.check(d == 1, f"hired_broker_completed_total moved by {d}")
        g.check(sample(after, "hired_broker_up") == 1, "hired_broker_up")
        g.check(sample(after, "hired_broker_workers", service="decode", model=MODEL) == 1, "hired_broker_workers{decode}")
        # the decoder's KV pool, from its heartbeats (it has run jobs, so it has reported it)
        kv_total = sample(after, "hired_broker_kv_blocks_total", service="decode", model=MODEL)
        kv_used = sample(after, "hired_broker_kv_blocks_used", service="decode", model=MODEL)
        g.check(kv_total > 0 and 0 <= kv_used <= kv_total, f"decoder KV blocks {kv_used}/{kv_total}")
        g.check(sample(after, "hired_broker_kv_blocks_total", service="encode", model=MODEL) == 0, "encoders have no KV pool")
        g.check(sample(after, "hired_broker_stage_seconds_count", stage="vit") >= 9, "broker stage summary")
    return g.summary()


if __name__ == "__main__":
    sys.exit(main())

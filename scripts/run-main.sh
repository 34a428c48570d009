#!/usr/bin/env bash
# The main job: installs what it needs, builds hired (the services, the `hired` command and
# libhired), starts a broker, one encoder worker and one decoder worker on 127.0.0.1 with the
# bundled tiny model, submits the bundled sample photo with a question through `hired submit`,
# streams the answer, then stops the services.
# Safe to re-run. $HIRED_MODEL is a model directory (the workers serve it under its last path
# component, which is what `hired submit` asks for). Point it at a real checkpoint with
#   HIRED_MODEL=/path/to/llava-v1.6-vicuna-7b-hf HIRED_IMAGE=photo.jpg scripts/run-main.sh "question"
# Opt-in: HIRED_GATEWAY=PORT also starts hired-gateway (the OpenAI-compatible HTTP API,
# docs/gateway.md) on 127.0.0.1:PORT and asks the same question through it with curl;
# HIRED_GATEWAY_HOLD=1 then keeps everything running until Ctrl-C. Unset, nothing changes.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
b=${HIRED_BUILD:-build}
cmake -S . -B "$b" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
# the services, the `hired` command and libhired (build/client/libhired.so; pkg-config with
# PKG_CONFIG_PATH=build/pkgconfig finds it through hired-uninstalled.pc)
gw_port=${HIRED_GATEWAY:-}
targets=(hired hired-broker hired-encoder hired-decoder hired_client)
[ -z "$gw_port" ] || targets+=(hired-gateway)
cmake --build "$b" -j "$(nproc)" --target "${targets[@]}" >/dev/null
model=${HIRED_MODEL:-tests/fixtures/models/llava-next-tiny}
image=${HIRED_IMAGE:-tests/fixtures/images/large.jpg}
question=${1:-What is in the picture?}
name=$(basename "$model")

run=$(mktemp -d)
pids=()
stop() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$run"
}
trap stop EXIT

# The broker binds ephemeral loopback ports and writes them to a file.
"$b/broker/hired-broker" --broker.frontend=tcp://127.0.0.1:0 --broker.backend=tcp://127.0.0.1:0 \
  --broker.ports_file="$run/ports" --log.level=warn 2>"$run/broker.log" &
pids+=($!)
for _ in $(seq 100); do [ -s "$run/ports" ] && break; sleep 0.1; done
frontend=$(sed -n "s/^frontend=//p" "$run/ports"); backend=$(sed -n "s/^backend=//p" "$run/ports")
[ -n "$frontend" ] && [ -n "$backend" ] || { cat "$run/broker.log"; echo "broker did not start" >&2; exit 1; }

"$b/encoder_worker/hired-encoder" --model "$model" --broker.endpoint="$backend" --log.level=warn 2>"$run/encoder.log" &
pids+=($!)
"$b/decoder_worker/hired-decoder" --model "$model" --broker.endpoint="$backend" --log.level=warn 2>"$run/decoder.log" &
pids+=($!)

if [ -n "$gw_port" ]; then
  "$b/gateway/hired-gateway" --broker "$frontend" --port "$gw_port" --http.ports_file="$run/gw.ports" \
    --log.level=warn 2>"$run/gateway.log" &
  pids+=($!)
  for _ in $(seq 100); do [ -s "$run/gw.ports" ] && break; sleep 0.1; done
  gw=$(sed -n "s/^http=//p" "$run/gw.ports")
  [ -n "$gw" ] || { cat "$run/gateway.log"; echo "the gateway did not start" >&2; exit 1; }
fi

echo "broker $frontend (workers on $backend); model $name; image $image"
if [ "$model" = tests/fixtures/models/llava-next-tiny ]; then
  echo "note: the bundled model is tiny and random (real LLaVA-NeXT geometry, random weights), so"
  echo "      the answer below is nonsense by design; set HIRED_MODEL to a llava-hf checkpoint"
  echo "      directory (e.g. llava-v1.6-vicuna-7b-hf as downloaded) for a real answer."
fi
echo "question: $question"
echo "answer:"
# submit waits for the workers to register (the broker queues the job meanwhile)
"$b/client/hired" submit --broker "$frontend" --model "$name" --image "$image" --max-tokens 32 "$question" || {
  echo "--- broker log"; cat "$run/broker.log"; echo "--- encoder log"; cat "$run/encoder.log"
  echo "--- decoder log"; cat "$run/decoder.log"; exit 1; }
echo
"$b/client/hired" status --broker "$frontend" | head -20

if [ -n "$gw_port" ]; then
  echo
  echo "gateway $gw/v1 (OpenAI chat completions; GET $gw/health, $gw/metrics)"
  echo "the same question through the gateway (curl, non-streaming):"
  kind=jpeg; case "$image" in *.png|*.PNG) kind=png ;; esac
  { printf '{"model": "%s", "max_tokens": 32, "messages": [{"role": "user", "content": [' "$name"
    printf '{"type": "text", "text": %s}, ' "$(printf '%s' "$question" | sed 's/\\/\\\\/g; s/"/\\"/g; s/^/"/; s/$/"/')"
    printf '{"type": "image_url", "image_url": {"url": "data:image/%s;base64,' "$kind"
    base64 -w0 "$image"
    printf '"}}]}]}'; } > "$run/request.json"
  curl -sS "$gw/v1/chat/completions" -H 'Content-Type: application/json' --data-binary @"$run/request.json" || {
    echo "--- gateway log"; cat "$run/gateway.log"; exit 1; }
  echo
  if [ "${HIRED_GATEWAY_HOLD:-}" = 1 ]; then
    echo "serving until Ctrl-C: broker $frontend, gateway $gw/v1"
    wait
  fi
fi

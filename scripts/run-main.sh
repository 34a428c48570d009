#!/usr/bin/env bash
# The main job as far as it exists: installs what it needs, builds hired, and runs the encoder
# path (decode -> LLaVA-NeXT anyres preprocessing -> CLIP vision tower -> CLS attention) with
# the bundled tiny model on a bundled sample photo. Safe to re-run.
# Override with: HIRED_MODEL=/path/to/llava-hf-dir HIRED_IMAGE=photo.jpg scripts/run-main.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
b=${HIRED_BUILD:-build}
cmake -S . -B "$b" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$b" -j "$(nproc)" --target hired >/dev/null
model=${HIRED_MODEL:-tests/fixtures/models/llava-next-tiny}
image=${HIRED_IMAGE:-tests/fixtures/images/large.jpg}
echo "hired encode --model $model --image $image"
echo "(the bundled model is tiny and random: the attention pattern is real computation, not meaning)"
"$b/client/hired" encode --model "$model" --image "$image"

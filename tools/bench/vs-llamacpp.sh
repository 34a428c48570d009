#!/usr/bin/env bash
# vs-llamacpp.sh — hired and llama.cpp side by side on the same model, the same dtype and the
# same thread count (issue 15's acceptance figures: text model prefill and decode, CLIP encode).
#
# The model is a random LLaMA text model of LLaVA-NeXT-7B widths (hidden 4096, 32 heads without
# GQA, MLP 11008, vocab 32064, RoPE theta 10000, RMS eps 1e-5, --layers N, default 2): the
# shape hired-bench-llm builds in memory. It is written once as GGUF F16 (numpy values through
# the `gguf` package, the vocabulary of tests/fixtures/models/llava-next-tiny so that llama.cpp
# loads it) and quantised to Q8_0 with llama-quantize; hired-bench-llm builds the same shapes
# with its own random F16 weights (the values do not change the cost).
#
# What is compared (best run of each engine, both at --threads; --reps prefill runs, --decode-reps
# decode runs, which are cheap):
#   prefill  llama-bench -p T            vs  hired-bench-llm --tokens T   (tokens/s of T tokens)
#   decode   llama-bench -n G -d T       vs  hired-bench-llm --steps G    (tokens/s of G steps
#            after a T-token prompt: both read a KV cache of ~T positions per step)
#   CLIP     llama-mtmd-cli on a 672x672 picture (5 slices) vs  hired-bench-vision --partitions 5
#            (seconds of encode; mmproj: a random CLIP ViT-L/14-336 + LLaVA-NeXT projector)
#   Q8       llama.cpp's Q8_0 copy        vs  hired's Q8 weights (--weights q8: blocks of 32 int8,
#            one half scale each; hired-bench-llm's rounds of consecutive Q8 steps after the
#            prompt, as its F16 rounds and as llama-bench's runs: the best round's tokens/s)
#   bf16     where the CPU has native bf16 dot products (AVX512-BF16/AMX), a second hired
#            row with the linear layers held in bf16 (hired-bench-llm --held bf16: rounded at
#            load, bf16 products, float32 sums; what decoder.weights = auto picks on such a CPU,
#            docs/numerics.md §9.2): prefill and decode, beside the F16 row's float32 products.
#
# llama.cpp: $LLAMA_CPP_DIR (a built tree with bin/llama-bench, bin/llama-quantize and, unless
# --no-clip, bin/llama-mtmd-cli), or else
# the cache folder ${XDG_CACHE_HOME:-$HOME/.cache}/hired/llama.cpp, which the script fills on
# first use from the llama-cpp-python source package on PyPI (its vendor/llama.cpp is the whole
# llama.cpp source): CPU backend only, Release, no CURL/OpenSSL, only the targets it runs.
# Python (gguf, numpy) runs in a venv the script makes under the same cache folder. Nothing it
# downloads or writes lands in this repository. Not a test: it prints figures and asserts nothing.
#
#   tools/bench/vs-llamacpp.sh [--layers N] [--tokens T] [--gen G] [--reps R] [--decode-reps D]
#                              [--rounds N] [--threads N] [--build-only] [--no-q8] [--no-clip] [--no-bf16]
# Defaults: --layers 2 --tokens 2900 --gen 32 --reps 2 --decode-reps 5 --rounds 1 --threads 2.
# --rounds N runs the whole comparison N times, the engines taking turns, and keeps each one's best.
# Environment: LLAMA_CPP_DIR, HIRED_BUILD_DIR (default: build), LLAMA_CPP_PYTHON_VERSION (pin the
# sdist; default: the newest), XDG_CACHE_HOME, PYTHON (for the venv; default python3),
# BUILD_NICE (niceness of the llama.cpp build, default 10).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
layers=2 tokens=2900 gen=32 reps=2 dreps=5 rounds=1 threads=2 build_only=0 do_q8=1 do_clip=1 do_bf16=1
usage() {
    echo "usage: tools/bench/vs-llamacpp.sh [--layers N] [--tokens T] [--gen G] [--reps R] [--decode-reps D]" >&2
    echo "                                  [--rounds N] [--threads N] [--build-only] [--no-q8] [--no-clip] [--no-bf16]" >&2
    echo "(the header of this script says what it measures and which environment it reads)" >&2
    exit 2
}
while [ $# -gt 0 ]; do
    case $1 in
    --layers) layers=${2:-}; shift 2 || usage ;;
    --tokens) tokens=${2:-}; shift 2 || usage ;;
    --gen) gen=${2:-}; shift 2 || usage ;;
    --reps) reps=${2:-}; shift 2 || usage ;;
    --decode-reps) dreps=${2:-}; shift 2 || usage ;;
    --rounds) rounds=${2:-}; shift 2 || usage ;;
    --threads) threads=${2:-}; shift 2 || usage ;;
    --build-only) build_only=1; shift ;;
    --no-q8) do_q8=0; shift ;;
    --no-clip) do_clip=0; shift ;;
    --no-bf16) do_bf16=0; shift ;;
    *) usage ;;
    esac
done
for v in "$layers" "$tokens" "$gen" "$reps" "$dreps" "$rounds" "$threads"; do
    case $v in '' | *[!0-9]* | 0) echo "vs-llamacpp: options take positive integers" >&2; exit 2 ;; esac
done

cache=${XDG_CACHE_HOME:-$HOME/.cache}/hired
hired_build=${HIRED_BUILD_DIR:-$root/build}
start_all=$(date +%s)
say() { printf '[vs-llamacpp %4ss] %s\n' "$(($(date +%s) - start_all))" "$*"; }

# ---- Python venv (gguf, numpy) ----------------------------------------------------------------
venv=$cache/venv-vs-llamacpp
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import gguf, numpy' 2>/dev/null; then
    say "making the Python venv $venv (gguf, numpy from PyPI)"
    "${PYTHON:-python3}" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet gguf numpy
fi
py=$venv/bin/python

# ---- llama.cpp ---------------------------------------------------------------------------------
llama_version=
if [ -n "${LLAMA_CPP_DIR:-}" ]; then
    lcpp=$LLAMA_CPP_DIR
    [ -x "$lcpp/bin/llama-bench" ] || { echo "vs-llamacpp: $lcpp/bin/llama-bench not found (LLAMA_CPP_DIR must be a built llama.cpp tree)" >&2; exit 1; }
    [ "$do_clip" = 0 ] || [ -x "$lcpp/bin/llama-mtmd-cli" ] ||
        { echo "vs-llamacpp: $lcpp/bin/llama-mtmd-cli not found (build it, or pass --no-clip)" >&2; exit 1; }
    llama_version="LLAMA_CPP_DIR=$lcpp (its commit: see 'build' below)"
else
    ldir=$cache/llama.cpp
    lcpp=$ldir/build
    targets=(llama-bench llama-quantize)
    [ "$do_clip" = 1 ] && targets+=(llama-mtmd-cli)
    missing=0
    for t in "${targets[@]}"; do [ -x "$lcpp/bin/$t" ] || missing=1; done
    if [ "$missing" = 1 ]; then
        t0=$(date +%s)
        if [ ! -f "$ldir/src/vendor/llama.cpp/CMakeLists.txt" ] || [ ! -f "$ldir/VERSION" ]; then
            rm -rf "$ldir/dl" "$ldir/src" "$lcpp"
            mkdir -p "$ldir/dl" "$ldir/src"
            spec=llama-cpp-python${LLAMA_CPP_PYTHON_VERSION:+==$LLAMA_CPP_PYTHON_VERSION}
            say "downloading the $spec source package (pip download --no-deps --no-binary :all:)"
            "$py" -m pip download --quiet --no-deps --no-binary :all: "$spec" -d "$ldir/dl"
            sdist=$(find "$ldir/dl" -maxdepth 1 -name 'llama_cpp_python-*.tar.gz' | head -n 1)
            [ -n "$sdist" ] || { echo "vs-llamacpp: pip download gave no llama_cpp_python sdist" >&2; exit 1; }
            tar -xzf "$sdist" -C "$ldir/src" --strip-components=1
            [ -f "$ldir/src/vendor/llama.cpp/CMakeLists.txt" ] || { echo "vs-llamacpp: $sdist has no vendor/llama.cpp" >&2; exit 1; }
            base=$(basename "$sdist" .tar.gz)
            ggml=$(sed -n 's/^set(GGML_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\)).*/\2/p' "$ldir/src/vendor/llama.cpp/ggml/CMakeLists.txt" | paste -sd. -)
            # the sdist carries the submodule's git data, so the vendored commit can be named
            commit=$(git -C "$ldir/src/vendor/llama.cpp" log -1 --format='%h of %cs' 2>/dev/null || echo 'commit unknown')
            echo "${base#llama_cpp_python-}: its vendor/llama.cpp is llama.cpp $commit (ggml $ggml)" >"$ldir/VERSION"
            rm -rf "$ldir/dl"
        fi
        if [ ! -f "$lcpp/CMakeCache.txt" ]; then
            say "configuring llama.cpp (CPU backend only, Release, no CURL/OpenSSL) in $lcpp"
            # GGML_NATIVE: llama.cpp's kernels for this CPU's own ISA, as a local build gets them.
            nice -n "${BUILD_NICE:-10}" cmake -S "$ldir/src/vendor/llama.cpp" -B "$lcpp" -DCMAKE_BUILD_TYPE=Release \
                -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=ON -DGGML_CUDA=OFF -DGGML_VULKAN=OFF -DGGML_METAL=OFF \
                -DGGML_BLAS=OFF -DGGML_RPC=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF \
                -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_TOOLS=ON \
                >"$ldir/cmake.log" 2>&1 || { tail -n 30 "$ldir/cmake.log" >&2; exit 1; }
        fi
        say "building ${targets[*]} (a first build takes a while on a small machine; log: $ldir/build.log)"
        nice -n "${BUILD_NICE:-10}" cmake --build "$lcpp" -j "$(nproc)" --target "${targets[@]}" \
            >"$ldir/build.log" 2>&1 || { tail -n 30 "$ldir/build.log" >&2; exit 1; }
        say "llama.cpp built in $(($(date +%s) - t0)) s"
    fi
    llama_version="llama-cpp-python $(cat "$ldir/VERSION" 2>/dev/null || echo '(version not recorded)')"
fi
say "llama.cpp: $llama_version"
[ "$build_only" = 1 ] && exit 0

bench_llm=$hired_build/tools/bench/hired-bench-llm
[ -x "$bench_llm" ] || { echo "vs-llamacpp: $bench_llm not found: build hired first (cmake --build build)" >&2; exit 1; }
[ -x "$hired_build/tools/bench/hired-bench-vision" ] || [ "$do_clip" = 0 ] ||
    { echo "vs-llamacpp: $hired_build/tools/bench/hired-bench-vision not found: build hired first" >&2; exit 1; }
btype=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$hired_build/CMakeCache.txt" 2>/dev/null || true)
say "hired: $hired_build (CMAKE_BUILD_TYPE=${btype:-unknown}; llama.cpp is built Release)"

# ---- the model ---------------------------------------------------------------------------------
mdir=$cache/vs-llamacpp
mkdir -p "$mdir" "$mdir/logs"
f16=$mdir/llava-next-7bw-L$layers-f16.gguf
q8=$mdir/llava-next-7bw-L$layers-q8_0.gguf
if [ ! -f "$f16.ok" ]; then
    t0=$(date +%s)
    say "writing $f16 (random, F16)"
    "$py" - "$f16" "$layers" "$root/tests/fixtures/models/llava-next-tiny/tokenizer.json" <<'PY'
import json, sys
import numpy as np
import gguf

out, layers, tok_path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
H, HEADS, FF, VOCAB = 4096, 32, 11008, 32064

# Vocabulary: the fixture's LLaMA tokenizer (32000 pieces + <image>, <pad>), padded with unused
# pieces to the 32064 rows of the embedding, as LLaVA-NeXT-7B pads it.
tj = json.load(open(tok_path, encoding="utf-8"))
pieces = {i: p for p, i in tj["model"]["vocab"].items()}
special = {t["id"]: t["content"] for t in tj.get("added_tokens", [])}
pieces.update(special)
tokens, scores, types = [], [], []
T = gguf.TokenType
for i in range(VOCAB):
    p = pieces.get(i)
    if p is None:
        tokens.append(f"<unused{i}>"); scores.append(0.0); types.append(T.UNUSED)
    elif i == 0:
        tokens.append(p); scores.append(0.0); types.append(T.UNKNOWN)
    elif i in special:
        tokens.append(p); scores.append(0.0); types.append(T.CONTROL)
    elif p.startswith("<0x") and p.endswith(">") and len(p) == 6:
        tokens.append(p); scores.append(0.0); types.append(T.BYTE)
    else:
        tokens.append(p); scores.append(-float(i)); types.append(T.NORMAL)

w = gguf.GGUFWriter(out, "llama")
w.add_name("random LLaVA-NeXT-7B-width text model (hired vs-llamacpp)")
w.add_context_length(4096)
w.add_embedding_length(H)
w.add_block_count(layers)
w.add_feed_forward_length(FF)
w.add_head_count(HEADS)
w.add_head_count_kv(HEADS)
w.add_rope_dimension_count(H // HEADS)
w.add_rope_freq_base(10000.0)
w.add_layer_norm_rms_eps(1e-5)
w.add_vocab_size(VOCAB)
w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
w.add_tokenizer_model("llama")
w.add_token_list(tokens)
w.add_token_scores(scores)
w.add_token_types(types)
w.add_bos_token_id(1)
w.add_eos_token_id(2)
w.add_unk_token_id(0)
w.add_pad_token_id(32001)
w.add_add_bos_token(True)
w.add_add_eos_token(False)

rng = np.random.default_rng(42)
def mat(rows, cols):  # N(0, 0.02), F16, numpy shape (out, in) as GGUF stores a weight
    return (rng.standard_normal((rows, cols), dtype=np.float32) * 0.02).astype(np.float16)
def norm():
    return np.ones(H, dtype=np.float32)

w.add_tensor("token_embd.weight", mat(VOCAB, H))
for b in range(layers):
    w.add_tensor(f"blk.{b}.attn_norm.weight", norm())
    for n in ("attn_q", "attn_k", "attn_v", "attn_output"):
        w.add_tensor(f"blk.{b}.{n}.weight", mat(H, H))
    w.add_tensor(f"blk.{b}.ffn_norm.weight", norm())
    w.add_tensor(f"blk.{b}.ffn_gate.weight", mat(FF, H))
    w.add_tensor(f"blk.{b}.ffn_up.weight", mat(FF, H))
    w.add_tensor(f"blk.{b}.ffn_down.weight", mat(H, FF))
w.add_tensor("output_norm.weight", norm())
w.add_tensor("output.weight", mat(VOCAB, H))
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
PY
    touch "$f16.ok"
    say "F16 GGUF written in $(($(date +%s) - t0)) s ($(du -h "$f16" | cut -f1))"
fi
if [ "$do_q8" = 1 ] && [ ! -f "$q8.ok" ]; then
    [ -x "$lcpp/bin/llama-quantize" ] || { echo "vs-llamacpp: $lcpp/bin/llama-quantize not found (or pass --no-q8)" >&2; exit 1; }
    t0=$(date +%s)
    say "quantising to Q8_0 with llama-quantize"
    "$lcpp/bin/llama-quantize" "$f16" "$q8" Q8_0 "$threads" >"$mdir/logs/quantize.log" 2>&1 ||
        { tail -n 20 "$mdir/logs/quantize.log" >&2; exit 1; }
    touch "$q8.ok"
    say "Q8_0 GGUF written in $(($(date +%s) - t0)) s ($(du -h "$q8" | cut -f1))"
fi

# ---- CLIP: an mmproj and a picture for llama-mtmd-cli ----------------------------------------
if [ "$do_clip" = 1 ]; then
    mmproj=$mdir/clip-vit-l-336-llava-next-f16.gguf
    img=$mdir/random-672x672.ppm
    if [ ! -f "$mmproj.ok" ]; then
        t0=$(date +%s)
        say "writing $mmproj (random CLIP ViT-L/14-336 + LLaVA-NeXT projector, F16) and a 672x672 picture"
        "$py" - "$mmproj" "$img" <<'PY'
import sys
import numpy as np
import gguf

out, ppm = sys.argv[1], sys.argv[2]
W, FF, LAYERS, HEADS, PATCH, SIZE, PROJ = 1024, 4096, 24, 16, 14, 336, 4096
NPOS = (SIZE // PATCH) ** 2 + 1

w = gguf.GGUFWriter(out, "clip")
w.add_name("random CLIP ViT-L/14-336 + LLaVA-NeXT projector (hired vs-llamacpp)")
w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
w.add_bool("clip.has_vision_encoder", True)
w.add_string("clip.projector_type", "mlp")
w.add_bool("clip.use_gelu", False)  # quick_gelu, as CLIP ViT-L
w.add_uint32("clip.vision.image_size", SIZE)
w.add_uint32("clip.vision.patch_size", PATCH)
w.add_uint32("clip.vision.embedding_length", W)
w.add_uint32("clip.vision.feed_forward_length", FF)
w.add_uint32("clip.vision.projection_dim", PROJ)
w.add_uint32("clip.vision.block_count", LAYERS)  # the llava graph runs LAYERS-1 (features of layer -2)
w.add_uint32("clip.vision.attention.head_count", HEADS)
w.add_float32("clip.vision.attention.layer_norm_epsilon", 1e-5)
w.add_array("clip.vision.image_mean", [0.48145466, 0.4578275, 0.40821073])
w.add_array("clip.vision.image_std", [0.26862954, 0.26130258, 0.27577711])
w.add_array("clip.vision.image_grid_pinpoints", [336, 672, 672, 336, 672, 672, 1008, 336, 336, 1008])
w.add_string("clip.vision.mm_patch_merge_type", "spatial_unpad")

rng = np.random.default_rng(43)
def f16(*shape):
    return (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float16)
def vec(n, v=0.0):
    return np.full(n, v, dtype=np.float32)

w.add_tensor("v.class_embd", rng.standard_normal(W, dtype=np.float32) * 0.02)
w.add_tensor("v.patch_embd.weight", f16(W, 3, PATCH, PATCH))
w.add_tensor("v.position_embd.weight", f16(NPOS, W))
w.add_tensor("v.pre_ln.weight", vec(W, 1.0))
w.add_tensor("v.pre_ln.bias", vec(W))
for b in range(LAYERS):
    p = f"v.blk.{b}."
    for n in ("attn_q", "attn_k", "attn_v", "attn_out"):
        w.add_tensor(p + n + ".weight", f16(W, W))
        w.add_tensor(p + n + ".bias", vec(W))
    for n in ("ln1", "ln2"):
        w.add_tensor(p + n + ".weight", vec(W, 1.0))
        w.add_tensor(p + n + ".bias", vec(W))
    w.add_tensor(p + "ffn_up.weight", f16(FF, W))
    w.add_tensor(p + "ffn_up.bias", vec(FF))
    w.add_tensor(p + "ffn_down.weight", f16(W, FF))
    w.add_tensor(p + "ffn_down.bias", vec(W))
w.add_tensor("mm.0.weight", f16(PROJ, W))
w.add_tensor("mm.0.bias", vec(PROJ))
w.add_tensor("mm.2.weight", f16(PROJ, PROJ))
w.add_tensor("mm.2.bias", vec(PROJ))
w.add_tensor("v.image_newline", rng.standard_normal(PROJ, dtype=np.float32) * 0.02)
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()

# A 672x672 picture (binary PPM, which llama.cpp's image loader reads): LLaVA-NeXT's grid for it
# is 2x2 tiles of 336 plus the resized whole, the 5 partitions hired-bench-vision encodes.
img = rng.integers(0, 256, size=(672, 672, 3), dtype=np.uint8)
with open(ppm, "wb") as f:
    f.write(b"P6\n672 672\n255\n")
    f.write(img.tobytes())
PY
        touch "$mmproj.ok"
        say "mmproj GGUF written in $(($(date +%s) - t0)) s"
    fi
fi

# ---- the runs ----------------------------------------------------------------------------------
# Benchmarks unset OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE for their own command (a forced BLAS
# kernel is not what a user gets); the caller's environment is otherwise left as it is.
say "benchmarks run with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset (for their own commands only), $threads threads each"
clean_env=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS="$threads")
rm -f "$mdir"/logs/*.json "$mdir"/logs/*.err "$mdir"/logs/hired-*.log "$mdir"/logs/clip-*

lbench() { # name model runs args... : llama-bench -o json into logs/name.json
    local name=$1 model=$2 runs=$3
    shift 3
    local t0
    t0=$(date +%s)
    "${clean_env[@]}" "$lcpp/bin/llama-bench" -m "$model" -t "$threads" -r "$runs" -o json "$@" \
        >"$mdir/logs/$name.json" 2>"$mdir/logs/$name.err" || { tail -n 20 "$mdir/logs/$name.err" >&2; exit 1; }
    say "llama-bench $name done in $(($(date +%s) - t0)) s"
}

# --rounds N repeats everything below N times, the engines taking turns, and keeps each engine's
# best: on a shared machine a busy minute then falls on both engines alike.
for round in $(seq 1 "$rounds"); do
    [ "$rounds" = 1 ] || say "round $round of $rounds"
    say "llama.cpp F16: prefill of $tokens tokens ($reps runs), then $gen decode steps after a $tokens-token prompt ($dreps runs)"
    lbench "f16-pp-$round" "$f16" "$reps" -p "$tokens" -n 0
    lbench "f16-tg-$round" "$f16" "$dreps" -p 0 -n "$gen" -d "$tokens"

    say "hired F16: hired-bench-llm --layers $layers --tokens $tokens --steps $gen --reps $reps --rounds $dreps"
    t0=$(date +%s)
    log=$mdir/logs/hired-llm-$round.log
    "${clean_env[@]}" "$bench_llm" --layers "$layers" --tokens "$tokens" --steps "$gen" --reps "$reps" --rounds "$dreps" \
        >"$log" 2>&1 || { tail -n 20 "$log" >&2; exit 1; }
    say "hired-bench-llm done in $(($(date +%s) - t0)) s"
    grep -E '^(kernels|machine|prefill: run|decode: round|decode f16 vs q8|decode q8: round)' "$log" | sed 's/^/  hired: /'

    if [ "$do_bf16" = 1 ] && grep -qE 'avx512_bf16|amx_bf16' /proc/cpuinfo; then
        say "hired, weights held in bf16 (--held bf16, the default decoder.weights = auto here): prefill of $tokens tokens ($reps runs), decode"
        t0=$(date +%s)
        log=$mdir/logs/hired-bf16-$round.log
        "${clean_env[@]}" "$bench_llm" --layers "$layers" --tokens "$tokens" --steps "$gen" \
            --reps "$reps" --rounds "$dreps" --weights native --held bf16 >"$log" 2>&1 || { tail -n 20 "$log" >&2; exit 1; }
        say "hired-bench-llm (bf16) done in $(($(date +%s) - t0)) s"
        grep -E '^(model|machine: measured|prefill: run|decode: round)' "$log" | sed 's/^/  hired bf16: /'
    fi

    if [ "$do_q8" = 1 ]; then
        say "llama.cpp Q8_0: the same"
        lbench "q8-pp-$round" "$q8" "$reps" -p "$tokens" -n 0
        lbench "q8-tg-$round" "$q8" "$dreps" -p 0 -n "$gen" -d "$tokens"
    fi

    if [ "$do_clip" = 1 ]; then
        for r in $(seq 1 "$reps"); do
            say "llama.cpp CLIP: llama-mtmd-cli encodes the 672x672 picture (5 slices), run $r/$reps"
            t0=$(date +%s)
            # -n 1: one generated token; the image's ~2,900 embeddings are also prefilled through the
            # text model, which is not part of the encode time that mtmd prints.
            "${clean_env[@]}" "$lcpp/bin/llama-mtmd-cli" -m "$f16" --mmproj "$mmproj" --image "$img" \
                -p "What is in the picture?" -n 1 -t "$threads" -c 4096 --chat-template vicuna --temp 0 \
                >"$mdir/logs/clip-llama-$round-$r.log" 2>&1 || { tail -n 20 "$mdir/logs/clip-llama-$round-$r.log" >&2; exit 1; }
            # the encode times it logs, one per batch of slices (summed): "mtmd batch encoding done in N
            # ms" (llama-mtmd-cli of late 2026) or "image slice encoded in N ms" (the helper's wording)
            ms=$(sed -n -e 's/.*mtmd batch encoding done in \([0-9]*\) ms.*/\1/p' \
                -e 's/.*image slice encoded in \([0-9]*\) ms.*/\1/p' "$mdir/logs/clip-llama-$round-$r.log" |
                awk '{ s += $1; n++ } END { if (n) print s, n }')
            [ -n "$ms" ] || { echo "vs-llamacpp: llama-mtmd-cli printed no encode time (log: $mdir/logs/clip-llama-$round-$r.log)" >&2; exit 1; }
            echo "${ms% *}" >>"$mdir/logs/clip-llama.txt"
            say "llama-mtmd-cli run $r: encode ${ms% *} ms in ${ms#* } batches (the whole command took $(($(date +%s) - t0)) s)"
        done
        say "hired CLIP: hired-bench-vision --partitions 5 --runs $reps"
        t0=$(date +%s)
        "${clean_env[@]}" "$hired_build/tools/bench/hired-bench-vision" --partitions 5 --runs "$reps" \
            >"$mdir/logs/hired-vision-$round.log" 2>&1 || { tail -n 20 "$mdir/logs/hired-vision-$round.log" >&2; exit 1; }
        say "hired-bench-vision done in $(($(date +%s) - t0)) s"
    fi
done

# ---- the table ---------------------------------------------------------------------------------
"$py" - "$mdir/logs" "$do_q8" "$do_clip" "$llama_version" <<'PY'
import json, os, sys

logs, do_q8, do_clip, version = sys.argv[1], sys.argv[2] == "1", sys.argv[3] == "1", sys.argv[4]

def lb(name):  # best run of a llama-bench test over the rounds, tokens/s; and the first test
    tests = [json.load(open(os.path.join(logs, f)))[0] for f in sorted(os.listdir(logs))
             if f.startswith(name + "-") and f.endswith(".json")]
    t = dict(tests[0], samples_ts=[x for u in tests for x in u["samples_ts"]])
    return max(t["samples_ts"]), t

def summaries(prefix, what):  # the key=value summary lines of hired's benchmarks, one per round
    out = []
    for f in sorted(os.listdir(logs)):
        if f.startswith(prefix) and f.endswith(".log"):
            out += [dict(kv.split("=", 1) for kv in line.split()[1:])
                    for line in open(os.path.join(logs, f)) if line.startswith("summary:")]
    if not out:
        sys.exit(f"vs-llamacpp: {what} printed no summary line")
    return out

hl = summaries("hired-llm-", "hired-bench-llm")
summary = hl[0]

f16_pp, t = lb("f16-pp")
f16_tg, ttg = lb("f16-tg")
print(f"llama.cpp: {version}; build {t.get('build_commit')} ({t.get('build_number')}); "
      f"cpu {t.get('cpu_info')}; flash_attn {t.get('flash_attn')}; KV cache {t.get('type_k')}/{t.get('type_v')}; "
      f"n_batch {t.get('n_batch')}, n_ubatch {t.get('n_ubatch')}; threads {t.get('n_threads')}")
print(f"hired: KV cache f16 (hired-bench-llm --kv f16, the decoder's default); threads {summary['threads']}")
print(f"model: {summary['layers']} LLaMA layers at LLaVA-NeXT-7B widths; prefill {summary['prefill_tokens']} tokens; "
      f"decode {ttg['n_gen']} steps after a {ttg['n_depth']}-token prompt; best run of each engine "
      f"({len(t['samples_ts'])} prefill runs, {len(ttg['samples_ts'])} decode runs of each)")
h_pp = max(float(x["prefill_best_tok_s"]) for x in hl)
h_tg = max(float(x["decode_best_tok_s"]) for x in hl)
rows = [("llama.cpp", "F16", f16_pp, f16_tg, "", ""),
        ("hired", "F16", h_pp, h_tg, f"{h_pp / f16_pp:.2f}x (target >= 1.2x)", f"{h_tg / f16_tg:.2f}x (target >= 1.0x)")]
if do_q8:
    q8_pp, _ = lb("q8-pp")
    q8_tg, _ = lb("q8-tg")
    rows.append(("llama.cpp", "Q8_0", q8_pp, q8_tg, "", ""))
    h_q8 = max(float(x.get("q8_decode_best_tok_s", 0)) for x in hl)
    rows.append(("hired", "Q8", None, h_q8 or None, "", f"{h_q8 / q8_tg:.2f}x of Q8_0 (target >= 1.0x)"
                 if h_q8 else "not measured"))
hb = [x for f in sorted(os.listdir(logs)) if f.startswith("hired-bf16-") for x in summaries(f[:-4], "hired-bench-llm (bf16)")]
if hb:
    h_bf = max(float(x["prefill_best_tok_s"]) for x in hb)
    h_bf_tg = max(float(x["decode_best_tok_s"]) for x in hb)
    rows.insert(2, ("hired", "BF16*", h_bf, h_bf_tg, f"{h_bf / f16_pp:.2f}x (target >= 1.2x)",
                    f"{h_bf_tg / f16_tg:.2f}x (target >= 1.0x)"))
fmt = "{:<10} {:<5} {:>16} {:>15}   {:<26} {}"
print(fmt.format("engine", "dtype", "prefill tok/s", "decode tok/s", "prefill hired/llama.cpp", "decode hired/llama.cpp"))
for e, d, pp, tg, rp, rt in rows:
    print(fmt.format(e, d, "-" if pp is None else f"{pp:.1f}", "-" if tg is None else f"{tg:.2f}", rp, rt))
if hb:
    print("BF16*: hired's default on this CPU (decoder.weights = auto): the F16 checkpoint's linear layers "
          "rounded to bf16 at load, bf16 products, float32 sums; the F16 row is decoder.weights = native "
          "(float32 products, the reference numbers)")
if do_clip:
    l_ms = [float(x) for x in open(os.path.join(logs, "clip-llama.txt")).read().split()]
    hv = summaries("hired-vision-", "hired-bench-vision")
    l_s, h_s = min(l_ms) / 1e3, min(float(x["encode_best_s"]) for x in hv)
    print()
    print("CLIP ViT-L/14-336, F16 weights, one 5-partition image (2x2 grid + base, 577 tokens each), "
          f"best of {len(l_ms)} runs of each:")
    print(f"  llama.cpp (llama-mtmd-cli, 23 layers + LLaVA projector): {l_s:.2f} s")
    print(f"  hired (hired-bench-vision, 23 layers + CLS rows of 2 layers, no projector): {h_s:.2f} s")
    print(f"  hired/llama.cpp time: {h_s / l_s:.2f}x (target <= 0.8x)")
PY
say "done; logs in $mdir/logs"

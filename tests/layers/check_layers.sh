#!/usr/bin/env bash
# check_layers.sh SRC DECODER ENCODER — the layering the source tree promises
# (docs/architecture.md §4), checked on the sources and on the two worker binaries:
#   1. no file outside kernels/ (and the kernel tests and benchmark) calls a k_<op>_cpu function
#      or includes a kernels/cpu/ header: model, pipeline and client code reach the CPU backend
#      only through the dispatcher (kernels/registry.h);
#   2. #include "..." only points down the DAG
#        daemons, tools -> pipeline -> model | image | text -> kernels -> common
#      and the halves stay apart: hired-decoder's sources never include the vision half (image/,
#      model/vision.h, model/select.h, pipeline/encode.h, pipeline/run.h), hired-encoder's never
#      the text half; libhired (client/hired_client.c) only common/;
#   3. hired-decoder links no image decoder (no libjpeg in its NEEDED entries) and holds no
#      vision-tower, image-decoding or encode-pipeline code (nm), while hired-encoder does (so
#      the symbol check is not vacuous).
# Prints every violation; exits 1 when there is one.
set -u
src=$1 dec=$2 enc=$3
cd "$src" || exit 2
bad=0
fail() { echo "layers: $*"; bad=1; }

# ---- 1. the CPU backend behind the dispatcher ------------------------------------------------
cpu_calls=$(grep -rEn '\bk_[a-z0-9_]+_cpu(_planned|_workspace)?[[:space:]]*\(|#include "(cpu_ops|cpu_util|simd_x86)\.h"' \
    --include='*.c' --include='*.h' common image text model pipeline encoder_worker decoder_worker broker client tools \
    | grep -v '^tools/bench/bench_kernels\.c:')
[ -n "$cpu_calls" ] && fail "CPU kernels called or included outside kernels/:"$'\n'"$cpu_calls"

# ---- 2. includes point down ------------------------------------------------------------------
# the layer that owns each project header
declare -A owner
for d in common kernels kernels/cpu kernels/cuda image text model pipeline broker client; do
    for h in "$d"/*.h; do [ -e "$h" ] && owner[$(basename "$h")]=$d; done
done
# allowed[layer] = the layers its files may include
declare -A allowed=(
    [common]="common"
    [kernels]="common kernels kernels/cpu kernels/cuda"
    [kernels/cpu]="common kernels kernels/cpu"
    [image]="common image"
    [text]="common text"
    [model]="common kernels model"
    [pipeline]="common kernels image text model pipeline"
    [encoder_worker]="common kernels image model pipeline"
    [decoder_worker]="common kernels text model pipeline"
    [broker]="common broker"
    [client]="common kernels image text model pipeline client"
)
check_file() { # file layer
    local f=$1 layer=$2 inc
    while IFS= read -r inc; do
        local o=${owner[$inc]:-}
        [ -z "$o" ] && continue # a system or third-party header
        case " ${allowed[$layer]} " in *" $o "*) ;; *) fail "$f includes $inc ($o/), which is not below $layer/" ;; esac
    done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f")
}
for layer in "${!allowed[@]}"; do
    for f in "$layer"/*.c "$layer"/*.h; do [ -e "$f" ] && check_file "$f" "$layer"; done
done
# the halves apart, and libhired on common alone
for f in decoder_worker/*.c; do
    grep -HEn '#include "(image|preprocess|resize|vision|select|encode|run)\.h"' "$f" && fail "$f reaches the vision half"
done
for f in encoder_worker/*.c; do
    grep -HEn '#include "(tokenizer|template|jinja|llm|projector|pack|sampler|kvcache|generate|run)\.h"' "$f" &&
        fail "$f reaches the text half"
done
while IFS= read -r inc; do
    [ "${owner[$inc]:-common}" = common ] || [ "$inc" = hired_client.h ] || fail "client/hired_client.c includes $inc"
done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' client/hired_client.c)

# ---- 3. the decoder binary ------------------------------------------------------------------
if readelf -d "$dec" | grep -q 'NEEDED.*libjpeg'; then fail "hired-decoder links libjpeg"; fi
forbidden='^(vision_load|vision_encode|enc_run|enc_model_load|image_decode|prep_for_model|jpeg_[a-z_]+|stbi_[a-z_]+)$'
dsyms=$(nm -P "$dec" | awk '$2 ~ /[TtDdBbRr]/ {print $1}' | grep -E "$forbidden")
[ -n "$dsyms" ] && fail "hired-decoder holds vision or image code:"$'\n'"$dsyms"
esyms=$(nm -P "$enc" | awk '$2 ~ /[TtDdBbRr]/ {print $1}' | grep -Ec "$forbidden")
[ "$esyms" -ge 3 ] || fail "hired-encoder lacks the vision symbols the decoder check looks for (found $esyms)"
readelf -d "$enc" | grep -q 'NEEDED.*libjpeg' || fail "hired-encoder does not link libjpeg: the decoder check is vacuous"

[ $bad = 0 ] && echo "layers: OK"
exit $bad

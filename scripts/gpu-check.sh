#!/usr/bin/env bash
# gpu-check.sh — the CUDA backend checked on a machine with an NVIDIA GPU, in one command.
#
#   scripts/gpu-check.sh --prepare   (here, on a Debian machine with apt and network)
#       Downloads the Debian packages hired builds against (scripts/deps.sh's libraries, their
#       library dependencies, pkgconf) with `apt-get download` into .gpu-deps/debs and unpacks
#       them with `dpkg -x` into .gpu-deps/root (an ignored folder, about 125 MB once docs, static
#       archives and unused packages are pruned; also packed as .gpu-deps/root.tar.xz, about
#       25 MB, which the run unpacks when the folder is absent), so a GPU machine that has only
#       a driver, nvcc, CMake and a C compiler can build hired without installing anything.
#       The packages are Debian 12's: the GPU machine needs glibc 2.36 or newer to load them.
#       HIRED_GPU_CHECK_DEPS=bundled uses them even where the system has the libraries.
#   scripts/gpu-check.sh [OUT_DIR]   (on the GPU machine; OUT_DIR defaults to build-gpu/check)
#       1. configures and builds hired with HIRED_CUDA=ON in build-gpu, for this machine's GPU
#          only (its compute capability from nvidia-smi; HIRED_CUDA_ARCH overrides; CI builds
#          every target), against the system's libraries or, when they are missing,
#          .gpu-deps/root;
#       2. runs the GPU tests (`ctest -L gpu`): the CUDA seam test, every registry op on cuda:0
#          against the reference, and the fidelity tests on cuda:0 (vision features and CLS
#          rows, logits and greedy tokens of both tiny models; HIRED_TEST_DEVICE=cuda:0);
#       3. runs `hired run` with greedy decoding on the tiny LLaVA-NeXT fixture on cpu and on
#          cuda:0 and compares the answers;
#       4. runs `hired bench` self-contained (broker + encoder on cuda:0 + decoder on cuda:0) on
#          the tiny fixture at budgets 1.0 and 0.2;
#       and prints one summary (tests passed/failed/not run per step). Exit 0 when every step
#       passed. Logs of every step are in OUT_DIR. Budget: under 8 minutes on one large GPU
#       with 16 cores (the build is most of it; the tests are the short CUDA entries).
# Nothing here needs Python or network on the GPU machine.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT_DIR=$PWD
DEPS=$ROOT_DIR/.gpu-deps

# Libraries hired links (scripts/deps.sh, without the tools, compilers and test-only packages).
BUILD_PKGS=(libopenblas-dev libopenblas-pthread-dev libjpeg62-turbo-dev libstb-dev libcjson-dev libconfig-dev
            libzmq3-dev libczmq-dev libmsgpack-dev libsystemd-dev libmicrohttpd-dev libcurl4-openssl-dev
            pkgconf pkgconf-bin libpkgconf3 libdnnl-dev libevent-dev)
# What any machine able to run nvcc already has (the C library and the compiler's runtime must
# stay the system's), and what the closure drags in that hired never loads (boost and ICU for
# msgpack-cxx and libxml2's tools, the other OpenBLAS builds, gcc 12's sanitizer runtimes and
# C++ headers, Kerberos' admin libraries). Checked on Debian 12: the binaries' ldd closure is
# inside what is kept.
BASE_RE='^(libc6|libc6-dev|libc-dev-bin|linux-libc-dev|libgcc-s1|libstdc\+\+6|gcc-[0-9]+-base|libcrypt1|libcrypt-dev|libgomp1|debconf|dpkg|perl-base|tar|coreutils|zlib1g|libselinux1|libpcre2-8-0)$'
SKIP_RE='^(libboost.*|libmsgpack-cxx-dev|libicu.*|icu-devtools|libopenblas0-(openmp|serial)|libopenblas-(openmp|serial)-dev|libstdc\+\+-[0-9]+-dev|libgcc-[0-9]+-dev|libasan[0-9]+|libtsan[0-9]+|liblsan[0-9]+|libubsan[0-9]+|libitm[0-9]+|libkadm5.*|libkdb5-.*)$'

prepare() {
    command -v apt-get >/dev/null || { echo "gpu-check --prepare: needs apt-get (a Debian machine)" >&2; exit 2; }
    rm -rf "$DEPS" && mkdir -p "$DEPS/debs" "$DEPS/root"
    local all
    all=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces \
            --no-enhances "${BUILD_PKGS[@]}" 2>/dev/null | grep -E '^[a-z0-9]' | sed 's/:amd64$//' | sort -u)
    local pkgs=()
    for p in $all; do
        [[ $p =~ $BASE_RE || $p =~ $SKIP_RE ]] && continue
        apt-cache show "$p" >/dev/null 2>&1 || continue # virtual packages
        pkgs+=("$p")
    done
    echo "gpu-check --prepare: downloading ${#pkgs[@]} packages" >&2
    (cd "$DEPS/debs" && apt-get download "${pkgs[@]}" >/dev/null) || { echo "apt-get download failed" >&2; exit 1; }
    for d in "$DEPS"/debs/*.deb; do dpkg -x "$d" "$DEPS/root"; done
    rm -rf "$DEPS/root/usr/share/doc" "$DEPS/root/usr/share/man" "$DEPS/root/usr/share/locale" \
           "$DEPS/root/usr/share/lintian" "$DEPS/root/etc"
    find "$DEPS/root" -name '*.a' -delete
    # openblas is chosen through update-alternatives on an installed system: point the
    # generic names at the pthread build, as the alternative would
    local ml=$DEPS/root/usr/lib/x86_64-linux-gnu
    if [ -d "$ml/openblas-pthread" ]; then
        for f in libopenblas.so libopenblas.so.0 libblas.so.3 liblapack.so.3; do
            [ -e "$ml/openblas-pthread/$f" ] && ln -sf "openblas-pthread/$f" "$ml/$f"
        done
        mkdir -p "$ml/pkgconfig"
        cp "$ml/openblas-pthread/pkgconfig/openblas.pc" "$ml/pkgconfig/openblas.pc"
    fi
    rm -rf "$DEPS/debs" "$ml/openblas-pthread/liblapack.so.3" # hired does not use LAPACK
    # one compressed file to carry to the GPU machine (about 25 MB; the folder is about 125 MB)
    tar -C "$DEPS" -cJf "$DEPS/root.tar.xz" root
    du -sh "$DEPS/root" "$DEPS/root.tar.xz" >&2
    echo "gpu-check --prepare: done; copy the repository (with .gpu-deps) to the GPU machine and run scripts/gpu-check.sh" >&2
}

# pkg-config for the build: the system's when it finds every library, else the unpacked root's
# (its .pc files rewritten to this checkout's absolute path, in the build folder). oneDNN has
# no .pc file: its header stands for it.
setup_deps() {
    local need=(libcjson libconfig openblas libjpeg stb libzmq msgpack libsystemd libczmq libmicrohttpd libcurl libevent)
    if [ "${HIRED_GPU_CHECK_DEPS:-}" != bundled ] && command -v pkg-config >/dev/null &&
       pkg-config --exists "${need[@]}" 2>/dev/null && [ -e /usr/include/oneapi/dnnl/dnnl.h ]; then
        echo "libraries: the system's" ; return 0
    fi
    local R=$DEPS/root
    [ ! -d "$R/usr" ] && [ -f "$DEPS/root.tar.xz" ] && tar -C "$DEPS" -xJf "$DEPS/root.tar.xz"
    if [ ! -d "$R/usr" ]; then
        echo "gpu-check: the libraries are missing and $R is absent: run scripts/gpu-check.sh --prepare on a" \
             "Debian machine first (or install the packages of scripts/deps.sh)" >&2
        return 1
    fi
    local ML=$R/usr/lib/x86_64-linux-gnu pc=$ROOT_DIR/build-gpu/pkgconfig
    mkdir -p "$pc"
    for f in "$ML"/pkgconfig/*.pc "$R"/usr/share/pkgconfig/*.pc; do
        [ -e "$f" ] && sed -e "s|=/usr|=$R/usr|g" -e "s| -I/usr| -I$R/usr|g" -e "s| -L/usr| -L$R/usr|g" "$f" >"$pc/$(basename "$f")"
    done
    export PKG_CONFIG_LIBDIR=$pc
    export PKG_CONFIG_PATH=$pc
    export LD_LIBRARY_PATH=$ML:$R/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    export LIBRARY_PATH=$ML${LIBRARY_PATH:+:$LIBRARY_PATH}
    export CPATH=$R/usr/include:$R/usr/include/x86_64-linux-gnu${CPATH:+:$CPATH}
    EXTRA_CMAKE+=(-DCMAKE_PREFIX_PATH="$R/usr" -DCMAKE_LIBRARY_PATH="$ML")
    if ! command -v pkg-config >/dev/null; then
        PKGCONF_BIN=$R/usr/bin/pkgconf
        EXTRA_CMAKE+=(-DPKG_CONFIG_EXECUTABLE="$PKGCONF_BIN")
    fi
    # built against Debian 12's glibc: an older one cannot load these libraries
    local have; have=$(ldd --version 2>/dev/null | head -1 | grep -oE '[0-9]+\.[0-9]+$')
    echo "libraries: $R (glibc here: ${have:-unknown}; the packages need 2.36 or newer)"
}

if [ "${1:-}" = "--prepare" ]; then prepare; exit 0; fi

OUT=${1:-$ROOT_DIR/build-gpu/check}
mkdir -p "$OUT"
EXTRA_CMAKE=()
SUMMARY=()
FAILED=0
note() { SUMMARY+=("$1"); echo "== $1"; }
t_start=$(date +%s)

if ! nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader >"$OUT/gpu.txt" 2>&1; then
    note "no NVIDIA GPU visible (nvidia-smi: $(head -1 "$OUT/gpu.txt")): the CUDA steps below cannot pass here"
    : >"$OUT/gpu.txt"
fi
NVCC=${CUDACXX:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
[ -x "$NVCC" ] || { echo "gpu-check: nvcc not found (set CUDACXX)" >&2; exit 2; }
setup_deps >"$OUT/deps.txt" 2>&1 || { cat "$OUT/deps.txt"; exit 2; }
cat "$OUT/deps.txt"

# ---- 1. build ----------------------------------------------------------------------------------
JOBS=$(nproc 2>/dev/null || echo 8)
# this GPU's compute capability only (nvidia-smi >= 510 reports it), else every target
CAP=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d '. ')
ARCH=${HIRED_CUDA_ARCH:-${CAP:-75;80;86;89;90}}
if cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DHIRED_CUDA=ON -DCMAKE_CUDA_COMPILER="$NVCC" \
        -DCMAKE_CUDA_ARCHITECTURES="$ARCH" "${EXTRA_CMAKE[@]}" >"$OUT/configure.log" 2>&1 &&
   cmake --build build-gpu -j"$JOBS" >"$OUT/build.log" 2>&1; then
    note "build: ok (CUDA architectures $ARCH, $(($(date +%s) - t_start)) s)"
else
    note "build: FAILED (see $OUT/configure.log, $OUT/build.log)"
    tail -30 "$OUT/build.log" "$OUT/configure.log" 2>/dev/null
    printf '%s\n' "${SUMMARY[@]}"
    exit 1
fi

# ---- 2. tests ----------------------------------------------------------------------------------
# ctest prints "N tests failed out of M" and lists "Not Run" entries; a GPU test that is not run
# on a GPU machine is a failure here (the device was not usable).
run_ctest() { # name, ctest args...
    local name=$1; shift
    (cd build-gpu && ctest --output-on-failure "$@") >"$OUT/$name.log" 2>&1
    local rc=$? total failed notrun
    total=$(grep -cE '^ *[0-9]+/[0-9]+ Test' "$OUT/$name.log")
    failed=$(grep -cE '\*\*\*(Failed|Timeout|Exception)|Failed +[0-9.]+ sec' "$OUT/$name.log")
    notrun=$(grep -cE 'Not Run|\*\*\*Skipped' "$OUT/$name.log")
    if [ $rc -eq 0 ] && [ "$notrun" -eq 0 ] && [ "$total" -gt 0 ]; then
        note "$name: $total tests, all passed"
    else
        note "$name: $total tests, $failed failed, $notrun not run (see $OUT/$name.log)"
        FAILED=1
    fi
}
run_ctest gpu-tests -L gpu
grep -E '^ *[0-9]+/[0-9]+ Test' "$OUT/gpu-tests.log" | sed 's/^ *[0-9]*\/[0-9]* Test *#[0-9]*: /   /'

# ---- 3. in-process generation: cpu vs cuda:0, greedy ---------------------------------------------
TINY=tests/fixtures/models/llava-next-tiny
IMG=tests/fixtures/images/astronaut.png
# both with native weights (float32 products on the CPU; `auto` would pick bf16 on a CPU with
# native bf16, and the two answers would then differ by that alone); file names without ':'
for dev in cpu cuda:0; do
    tag=${dev//:/}
    build-gpu/client/hired run --model $TINY --image $IMG --user "What is shown here?" \
        --max-tokens 24 --weights native --device $dev >"$OUT/run-$tag.txt" 2>"$OUT/run-$tag.err"
    echo $? >"$OUT/run-$tag.rc"
done
if [ "$(cat "$OUT/run-cuda0.rc")" = 0 ]; then
    if cmp -s "$OUT/run-cpu.txt" "$OUT/run-cuda0.txt"; then note "hired run: cuda:0 answer equals cpu's (greedy, 24 tokens)"
    else note "hired run: cuda:0 answer DIFFERS from cpu's (F16 rounding of activations may flip a near-tie; see $OUT/run-*.txt)"; fi
    for tag in cpu cuda0; do echo "   $tag: $(tail -1 "$OUT/run-$tag.err")"; echo "   $tag answer: $(head -c 300 "$OUT/run-$tag.txt")"; done
else
    note "hired run --device cuda:0: FAILED ($(tail -1 "$OUT/run-cuda0.err"))"
    FAILED=1
fi

# ---- 4. the pipeline: broker + encoder on cuda:0 + decoder on cuda:0 ------------------------------
if build-gpu/client/hired bench --model $TINY --device cuda:0 --strategies hired --budgets 1.0,0.2 --runs 3 \
        --warmup 1 --max-tokens 16 --json "$OUT/bench-cuda.json" >"$OUT/bench-cuda.txt" 2>&1; then
    note "hired bench (broker + encoder cuda:0 + decoder cuda:0, tiny model, budgets 1.0 and 0.2): ok"
    cat "$OUT/bench-cuda.txt"
else
    note "hired bench on cuda:0: FAILED (see $OUT/bench-cuda.txt)"
    tail -20 "$OUT/bench-cuda.txt"
    FAILED=1
fi

echo
echo "==== gpu-check summary ($(($(date +%s) - t_start)) s) ===="
[ -s "$OUT/gpu.txt" ] && echo "GPU: $(cat "$OUT/gpu.txt")"
printf '%s\n' "${SUMMARY[@]}"
exit $FAILED

#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds, runs ctest; then builds the same suite
# with AddressSanitizer + UndefinedBehaviorSanitizer and runs ctest again. Exits non-zero on any
# failure. Build trees: build/ and build-asan/ (override with HIRED_BUILD, HIRED_BUILD_ASAN).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
jobs=$(nproc)
b=${HIRED_BUILD:-build}
ba=${HIRED_BUILD_ASAN:-build-asan}

echo "== build ($b)"
# Warnings are errors here (HIRED_WERROR; CI runs this script): a warning fails CI, never a
# user's build, whose default leaves HIRED_WERROR off.
# Where nvcc exists the CUDA backend must compile (HIRED_CUDA=ON fails the configure instead of
# quietly leaving CUDA out), for every target (sm_75-sm_90); its gpu tests are Not Run without a GPU.
cuda=AUTO
if command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ]; then cuda=ON; fi
cmake -S . -B "$b" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHIRED_WERROR=ON -DHIRED_CUDA=$cuda >/dev/null
cmake --build "$b" -j "$jobs"
echo "== ctest ($b)"
ctest --test-dir "$b" --output-on-failure -j "$jobs"

echo "== build with ASan+UBSan ($ba)"
# CUDA objects are not instrumented; the sanitizer run covers the CPU code.
cmake -S . -B "$ba" -DCMAKE_BUILD_TYPE=Debug -DHIRED_SANITIZE=ON -DHIRED_CUDA=OFF -DHIRED_WERROR=ON >/dev/null
cmake --build "$ba" -j "$jobs"
echo "== ctest with ASan+UBSan ($ba)"
# The fidelity tests check three representative images per model here (HIRED_TEST_QUICK):
# this run is about memory and undefined behaviour; the numbers were checked on every image
# in the run above.
# Every test runs here (no label is excluded): the timeouts of a sanitizer build are 3 times
# the normal ones (tests/CMakeLists.txt) and only catch hangs.
HIRED_TEST_QUICK=1 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir "$ba" --output-on-failure -j "$jobs"

echo "== fuzz: the wire-message decoder under libFuzzer for 60 s (clang, ASan+UBSan)"
# Built by hand with clang: only the decoder and what it needs, not the whole project.
bf=${HIRED_BUILD_FUZZ:-build-fuzz}
mkdir -p "$bf"
clang -std=c11 -g -O1 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -Icommon tests/fuzz/fuzz_wire.c common/wire.c common/wire_parse.c common/wire_records.c common/wire_io.c common/err.c common/mem.c common/log.c \
  $(pkg-config --cflags --libs libzmq msgpack) -lpthread -lm -o "$bf/fuzz_wire"
rm -rf "$bf/corpus" && cp -r tests/fuzz/corpus "$bf/corpus"
"$bf/fuzz_wire" -max_total_time=60 -max_len=4096 -print_final_stats=1 "$bf/corpus" 2>"$bf/fuzz.log" || {
  tail -50 "$bf/fuzz.log"; echo "fuzz_wire found a crash (see $bf/fuzz.log)"; exit 1; }
grep -E "stat::number_of_executed_units|Done" "$bf/fuzz.log" | tail -2
echo "fuzz: no crash in 60 s"

#!/usr/bin/env bash
# test_install.sh — hired as a user installs it: `cmake --install BUILD --prefix TMP` into a
# fresh prefix, then, using only what was installed:
#   1. the layout: bin/ (5 programs), lib*/libhired.so, include/hired/{hired_client,hired_err}.h
#      (no err.h that would shadow the C library's), lib*/pkgconfig/hired.pc, the systemd units,
#      sysusers.d/hired.conf, tmpfiles.d/hired.conf and the example configurations;
#   2. a small C client (tests/install/client.c) compiled with
#      `cc client.c $(pkg-config --cflags --libs hired)` against the installed hired.pc;
#   3. the example configurations through each installed daemon's --check-config (exit 0), and a
#      missing model directory refused as a configuration error (exit 2);
#   4. the installed units name the installed binaries (ExecStart=PREFIX/bin/...) and pass
#      `systemd-analyze verify` with no message at all;
#   5. the installed hired-broker (ephemeral loopback ports through --broker.ports_file), one
#      installed hired-encoder and one hired-decoder on the bundled tiny LLaVA-NeXT model, and
#      the compiled client gets a DONE; `hired status --json` (installed) sees both pools first;
#      the installed hired-gateway in front of them answers GET /health 200 (curl).
# Exit 0 = all passed; 1 = a check failed (message on stderr); 77 = skipped, only when
# systemd-analyze is missing, and only after every other check passed (as test_real_systemd).
# Environment (set by tests/install.cmake): HIRED_BUILD_DIR, HIRED_SOURCE_DIR, HIRED_FIXTURES,
# CC (the build's C compiler), HIRED_TEST_CFLAGS (sanitizer flags of a sanitizer build).
set -euo pipefail

build=${HIRED_BUILD_DIR:?}
src=${HIRED_SOURCE_DIR:?}
fixtures=${HIRED_FIXTURES:?}
cc=${CC:-cc}
t=$(mktemp -d "${TMPDIR:-/tmp}/test_install.XXXXXX")
prefix=$t/prefix
pids=()

fail() {
  echo "test_install: FAIL: $*" >&2
  for f in "$t"/*.log; do [ -f "$f" ] && { echo "--- $f" >&2; tail -20 "$f" >&2; }; done
  exit 1
}
cleanup() {
  local rc=$?
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$t"
  exit $rc
}
trap cleanup EXIT

# Polls `cmd` every 0.2 s until it succeeds; a watchdog of $1 seconds only catches a hang.
wait_for() {
  local limit=$1 what=$2; shift 2
  local end=$((SECONDS + limit))
  until "$@"; do
    [ $SECONDS -lt $end ] || fail "$what did not happen within ${limit} s"
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null || fail "process $p died while waiting for: $what"; done
    sleep 0.2
  done
}

# ---- 1. install, layout ---------------------------------------------------------------------
cmake --install "$build" --prefix "$prefix" > "$t/install.log" 2>&1 || fail "cmake --install failed"
for b in hired hired-broker hired-encoder hired-decoder hired-gateway; do
  [ -x "$prefix/bin/$b" ] || fail "bin/$b not installed"
done
pc=$(find "$prefix" -name hired.pc -path '*/pkgconfig/*' | head -1)
[ -n "$pc" ] || fail "no pkgconfig/hired.pc installed"
libdir=$(dirname "$(dirname "$pc")")
[ -e "$libdir/libhired.so" ] || fail "libhired.so is not next to pkgconfig/ ($libdir)"
[ -f "$prefix/include/hired/hired_client.h" ] && [ -f "$prefix/include/hired/hired_err.h" ] ||
  fail "include/hired/hired_client.h and hired_err.h not installed"
[ ! -e "$prefix/include/hired/err.h" ] || fail "include/hired/err.h installed (it shadows <err.h> with -I.../hired)"
! grep -Eq "#[[:space:]]*define[[:space:]]+ARRAY_LEN" "$prefix"/include/hired/*.h || fail "an installed header defines ARRAY_LEN"
units=$prefix/lib/systemd/system
for u in hired.target hired-broker.target hired-encoders.target hired-decoders.target hired-gateway.target \
         hired-broker.service hired-encoder@.service hired-decoder@.service hired-gateway.service; do
  [ -f "$units/$u" ] || fail "unit $u not installed in lib/systemd/system"
done
[ -f "$prefix/lib/sysusers.d/hired.conf" ] || fail "sysusers.d/hired.conf not installed"
[ -f "$prefix/lib/tmpfiles.d/hired.conf" ] || fail "tmpfiles.d/hired.conf not installed"
examples=$prefix/share/doc/hired/examples
for s in broker encoder decoder gateway; do
  [ -f "$examples/hired-$s.cfg.example" ] || fail "example configuration hired-$s.cfg.example not installed"
done

# ---- 2. a client built against the installed hired.pc --------------------------------------
flags=$(PKG_CONFIG_PATH="$libdir/pkgconfig" PKG_CONFIG_DISABLE_UNINSTALLED=1 pkg-config --cflags --libs hired) ||
  fail "pkg-config cannot read the installed hired.pc"
case "$flags" in *"$build"*) fail "the installed hired.pc points into the build tree: $flags" ;; esac
# shellcheck disable=SC2086 # word splitting of the flags is intended
"$cc" -std=c11 -Wall -Wextra -Werror ${HIRED_TEST_CFLAGS:-} -o "$t/client" "$src/tests/install/client.c" $flags \
  > "$t/cc.log" 2>&1 || fail "cc client.c \$(pkg-config --cflags --libs hired) failed"
export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# ---- 3. --check-config of every installed daemon --------------------------------------------
model=$fixtures/models/llava-next-tiny
"$prefix/bin/hired-broker" -c "$examples/hired-broker.cfg.example" --check-config > "$t/check.log" 2>&1 ||
  fail "hired-broker --check-config refused the installed example"
"$prefix/bin/hired-gateway" -c "$examples/hired-gateway.cfg.example" --check-config > "$t/check.log" 2>&1 ||
  fail "hired-gateway --check-config refused the installed example"
for s in encoder decoder; do
  "$prefix/bin/hired-$s" -c "$examples/hired-$s.cfg.example" --model "$model" --check-config > "$t/check.log" 2>&1 ||
    fail "hired-$s --check-config refused the installed example"
  st=0
  "$prefix/bin/hired-$s" -c "$examples/hired-$s.cfg.example" --model "$t/no-such-model" --check-config \
    > "$t/check.log" 2>&1 || st=$?
  [ $st -eq 2 ] && grep -q "no-such-model" "$t/check.log" ||
    fail "hired-$s --check-config with a missing model: exit $st (want 2 naming the directory)"
done

# ---- 4. the installed units ------------------------------------------------------------------
grep -q "^ExecStart=$prefix/bin/hired-broker " "$units/hired-broker.service" || fail "hired-broker.service: ExecStart is not $prefix/bin/hired-broker"
grep -q "^ExecStart=$prefix/bin/hired-encoder " "$units/hired-encoder@.service" || fail "hired-encoder@.service: ExecStart"
grep -q "^ExecStart=$prefix/bin/hired-decoder " "$units/hired-decoder@.service" || fail "hired-decoder@.service: ExecStart"
grep -q "^ExecStart=$prefix/bin/hired-gateway " "$units/hired-gateway.service" || fail "hired-gateway.service: ExecStart"
! grep -q "Wants=hired-broker" "$units/hired.target" || fail "hired.target pulls in the broker on every host"
have_analyze=1
if command -v systemd-analyze > /dev/null 2>&1; then
  (cd "$units" && systemd-analyze verify --man=no hired.target hired-broker.target hired-encoders.target \
     hired-decoders.target hired-gateway.target hired-broker.service hired-encoder@cpu.service hired-decoder@0.service \
     hired-gateway.service) > "$t/verify.log" 2>&1 ||
    fail "systemd-analyze verify failed on the installed units"
  [ ! -s "$t/verify.log" ] || fail "systemd-analyze verify printed messages"
else
  have_analyze=0
fi

# ---- 5. the installed services answer the compiled client ------------------------------------
"$prefix/bin/hired-broker" --broker.frontend=tcp://127.0.0.1:0 --broker.backend=tcp://127.0.0.1:0 \
  --broker.ports_file="$t/ports" --broker.startup_grace_ms=600000 --log.level=warn > "$t/broker.log" 2>&1 &
pids+=($!)
wait_for 60 "the broker writing its ports file" test -s "$t/ports"
front=$(sed -n 's/^frontend=//p' "$t/ports")
back=$(sed -n 's/^backend=//p' "$t/ports")
[ -n "$front" ] && [ -n "$back" ] || fail "ports file without endpoints: $(cat "$t/ports")"
for s in encoder decoder; do
  "$prefix/bin/hired-$s" --model "$model" --broker "$back" --log.level=warn > "$t/$s.log" 2>&1 &
  pids+=($!)
done
pools_up() {
  "$prefix/bin/hired" status --broker "$front" --json > "$t/status.json" 2> /dev/null &&
    grep -q '"service":"encode"' "$t/status.json" && grep -q '"service":"decode"' "$t/status.json"
}
wait_for 300 "both workers registering with the broker (hired status)" pools_up
"$t/client" "$front" llava-next-tiny "$fixtures/images/large.jpg" > "$t/client.log" 2>&1 ||
  fail "the client built against the installed library got no DONE"
grep -q "^DONE finish=" "$t/client.log" || fail "no DONE line from the client"
echo "test_install: $(grep '^DONE' "$t/client.log")"
"$prefix/bin/hired-gateway" --broker "$front" --port 0 --http.ports_file="$t/gw.ports" --log.level=warn > "$t/gateway.log" 2>&1 &
pids+=($!)
wait_for 60 "the gateway writing its ports file" test -s "$t/gw.ports"
gw=$(sed -n 's/^http=//p' "$t/gw.ports")
health_ok() { curl -sf "$gw/health" > "$t/health.json"; }
wait_for 60 "the installed gateway answering /health with 200" health_ok
grep -q '"status":"ok"' "$t/health.json" || fail "/health: $(cat "$t/health.json")"

if [ $have_analyze -eq 0 ]; then
  echo "systemd-analyze is not installed (Debian package systemd): the unit check was skipped" >&2
  exit 77
fi
echo "test_install: OK"

# Integration tests with the REAL workers (hired-encoder, hired-decoder) on the tiny fixture
# models, next to the real hired-broker: scale, faults, bad input, configuration examples,
# systemd units, CURVE, and the `hired submit` / `hired status` commands.
# (see tests/CMakeLists.txt for hired_add_test; harness: tests/integration/harness.h)
add_library(hired_rt_util STATIC integration/test_real_util.c)
target_include_directories(hired_rt_util PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/integration)
target_link_libraries(hired_rt_util PUBLIC hired_it_harness hired_run hired_wire hired_svc)

foreach(t scale faults badinput)
  hired_add_test(test_real_${t} SOURCES integration/test_real_${t}.c LIBS hired_rt_util LABELS integration)
  add_dependencies(test_real_${t} hired-broker hired-encoder hired-decoder)
endforeach()

# The example configuration files through the real binaries (--check-config, broker start).
hired_add_test(test_real_config SOURCES integration/test_real_config.c LIBS hired_rt_util LABELS integration)
add_dependencies(test_real_config hired-broker hired-encoder hired-decoder hired-gateway)
target_compile_definitions(test_real_config PRIVATE HIRED_SOURCE_DIR="${PROJECT_SOURCE_DIR}")

# The systemd units through `systemd-analyze verify` (skipped, exit 77, without it).
hired_add_test(test_real_systemd SOURCES integration/test_real_systemd.c LIBS hired_rt_util LABELS integration)
add_dependencies(test_real_systemd hired-broker hired-encoder hired-decoder hired-gateway)
target_compile_definitions(test_real_systemd PRIVATE HIRED_SOURCE_DIR="${PROJECT_SOURCE_DIR}")

# CURVE over real TCP sockets (common/curve.c): authorised keys served, others not.
hired_add_test(test_real_curve SOURCES integration/test_real_curve.c LIBS hired_rt_util hired_svc LABELS integration)
# CURVE end to end: the real broker with curve.*, real workers, libhired clients with and
# without authorised keys, and `hired status --curve-*`.
hired_add_test(test_real_curve_e2e SOURCES integration/test_real_curve_e2e.c LIBS hired_rt_util hired_svc LABELS integration)
add_dependencies(test_real_curve_e2e hired-broker hired-encoder hired-decoder hired)

# `hired submit` / `hired status` (client/cmd_submit.c) through the real `hired` binary.
hired_add_test(test_real_submit SOURCES integration/test_real_submit.c LIBS hired_rt_util hired_faultproxy LABELS integration)
add_dependencies(test_real_submit hired-broker hired-encoder hired-decoder hired)

# sd_notify (READY, WATCHDOG, STOPPING) and SIGTERM with a job in flight (drain, hand back).
hired_add_test(test_real_notify SOURCES integration/test_real_notify.c LIBS hired_rt_util LABELS integration)
add_dependencies(test_real_notify hired-broker hired-encoder hired-decoder)

# `hired keygen`: certificate files that czmq and common/curve.c load, and a CURVE connection
# made with them (authorised key served, others not).
hired_add_test(test_keygen SOURCES integration/test_keygen.c LIBS hired_rt_util hired_svc LABELS integration)
add_dependencies(test_keygen hired)

# The fault-injecting TCP proxy (a libevent loop on a thread of the test) and the delivery,
# fencing, isolation, memory and worker-trust tests built on it (docs/protocol.md §5).
pkg_check_modules(LIBEVENT REQUIRED IMPORTED_TARGET libevent)
add_library(hired_faultproxy STATIC integration/faultproxy.c)
target_include_directories(hired_faultproxy PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/integration)
target_link_libraries(hired_faultproxy PUBLIC PkgConfig::LIBEVENT Threads::Threads)
hired_add_test(test_delivery SOURCES integration/test_delivery.c LIBS hired_rt_util hired_faultproxy LABELS integration slow)
add_dependencies(test_delivery hired-broker hired-encoder hired-decoder)
hired_add_test(test_fence SOURCES integration/test_fence.c LIBS hired_rt_util hired_faultproxy LABELS integration slow)
add_dependencies(test_fence hired-broker hired-encoder hired-decoder)
hired_add_test(test_isolation SOURCES integration/test_isolation.c LIBS hired_rt_util hired_svc LABELS integration)
add_dependencies(test_isolation hired-broker fake_worker)
hired_add_test(test_worker_trust SOURCES integration/test_worker_trust.c LIBS hired_rt_util LABELS integration)
add_dependencies(test_worker_trust hired-broker hired-encoder hired-decoder fake_worker)
hired_add_test(test_broker_memory SOURCES integration/test_broker_memory.c LIBS hired_it_harness hired_faultproxy LABELS integration)
add_dependencies(test_broker_memory hired-broker fake_worker)
# Three hosts in network namespaces with CURVE, links cut mid-work (root + iproute2; else 77).
hired_add_test(test_netns SOURCES integration/test_netns.c LIBS hired_rt_util hired_svc LABELS integration)
add_dependencies(test_netns hired-broker hired-encoder hired-decoder)

# Conversations, several images and text-only requests through the wire (protocol v5): `hired
# submit` against the real broker and workers gives exactly what `hired run` gives; bad input
# (too many images, placeholder mismatch, empty, oversize) gets a clear ERROR.
hired_add_test(test_real_chat SOURCES integration/test_real_chat.c LIBS hired_rt_util LABELS integration)
add_dependencies(test_real_chat hired-broker hired-encoder hired-decoder hired)
# A decoder whose KV pool is full takes no new job: it waits in the broker for another decoder.
hired_add_test(test_real_kvwait SOURCES integration/test_real_kvwait.c LIBS hired_rt_util LABELS integration)
add_dependencies(test_real_kvwait hired-broker hired-decoder)

# tests of hired-gateway (gateway/): the pure parts in-process, then the live gateway in front of
# real brokers and workers, driven from Python (tests/gateway/*.py; see tests/gateway/run.sh for
# the venv with the official openai and prometheus_client packages, cached in the build tree).
hired_add_test(test_gateway SOURCES unit/test_gateway.c LIBS hired_gateway_core LABELS unit)
foreach(t openai errors load)
  add_test(NAME test_gateway_${t} COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/gateway/run.sh test_gateway_${t}.py)
  hired_test_properties(test_gateway_${t} LABELS integration)
  set_property(TEST test_gateway_${t} APPEND PROPERTY ENVIRONMENT "HIRED_TEST_TIMEOUT_SCALE=${HIRED_TEST_TIMEOUT_SCALE}")
endforeach()
# The benchmark (tools/bench/bench_gateway.c) must keep running: two requests each way, and its
# figures printed (their values are not checked: it is a benchmark).
add_test(NAME test_bench_gateway COMMAND hired-bench-gateway --requests 2 --max-tokens 2)
hired_test_properties(test_bench_gateway LABELS integration)
set_property(TEST test_bench_gateway PROPERTY PASS_REGULAR_EXPRESSION "gateway added per request \\(median of 2 pairs")

# tests of hired-gateway (gateway/): the pure parts in-process, then the live gateway in front of
# real brokers and workers, driven from Python (tests/gateway/*.py; see tests/gateway/run.sh for
# the venv with the official openai and prometheus_client packages, cached in the build tree).
hired_add_test(test_gateway SOURCES unit/test_gateway.c LIBS hired_gateway_core LABELS unit)
foreach(t openai errors load)
  add_test(NAME test_gateway_${t} COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/gateway/run.sh test_gateway_${t}.py)
  hired_test_properties(test_gateway_${t} LABELS integration)
  set_property(TEST test_gateway_${t} APPEND PROPERTY ENVIRONMENT "HIRED_TEST_TIMEOUT_SCALE=${HIRED_TEST_TIMEOUT_SCALE}")
endforeach()

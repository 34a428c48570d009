# tests for the wire protocol, the broker, libhired and the worker connection
# (see tests/CMakeLists.txt for hired_add_test).
hired_add_test(test_wire SOURCES unit/test_wire.c LIBS hired_wire TIMEOUT 60 LABELS unit)
hired_add_test(test_broker SOURCES unit/test_broker.c LIBS hired_broker_core TIMEOUT 60 LABELS unit)

# A fake encoder / decoder on common/worker_conn for broker-scale tests (not a test itself).
add_executable(fake_worker integration/fake_worker.c)
target_link_libraries(fake_worker PRIVATE hired_svc)

# Integration tests: real hired-broker and fake_worker processes on 127.0.0.1.
add_library(hired_it_harness STATIC integration/harness.c)
target_include_directories(hired_it_harness PUBLIC ${CMAKE_CURRENT_SOURCE_DIR} ${CMAKE_CURRENT_SOURCE_DIR}/integration)
target_link_libraries(hired_it_harness PUBLIC hired_client_static PkgConfig::CJSON)
foreach(t basic scale faults restart badinput limits)
  hired_add_test(test_int_${t} SOURCES integration/test_int_${t}.c LIBS hired_it_harness TIMEOUT 60 LABELS integration)
  add_dependencies(test_int_${t} hired-broker fake_worker)
endforeach()

# The fuzz property under the normal build: corpus files plus fixed-seed mutations.
hired_add_test(test_wire_mutate SOURCES unit/test_wire_mutate.c fuzz/fuzz_wire.c LIBS hired_wire TIMEOUT 120 LABELS unit)

# libFuzzer target (clang only): build-dir/tests/fuzz_wire tests/fuzz/corpus
if(CMAKE_C_COMPILER_ID MATCHES Clang)
  pkg_check_modules(ZMQ REQUIRED IMPORTED_TARGET libzmq)
  pkg_check_modules(MSGPACK REQUIRED IMPORTED_TARGET msgpack)
  add_executable(fuzz_wire fuzz/fuzz_wire.c
    ../common/wire.c ../common/wire_parse.c ../common/wire_records.c ../common/wire_io.c ../common/err.c ../common/mem.c ../common/log.c)
  target_include_directories(fuzz_wire PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/../common)
  target_compile_options(fuzz_wire PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_options(fuzz_wire PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(fuzz_wire PRIVATE PkgConfig::ZMQ PkgConfig::MSGPACK Threads::Threads m)
endif()

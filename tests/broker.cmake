# tests for the wire protocol, the broker, libhired and the worker connection
# (see tests/CMakeLists.txt for hired_add_test).
hired_add_test(test_wire SOURCES unit/test_wire.c LIBS hired_wire TIMEOUT 60)

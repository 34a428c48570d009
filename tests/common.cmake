# tests for common (see tests/CMakeLists.txt for hired_add_test)
hired_add_test(test_tensor SOURCES unit/test_tensor.c LIBS hired_common)

# tests for kernels (see tests/CMakeLists.txt for hired_add_test)

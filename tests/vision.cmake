# tests for vision (see tests/CMakeLists.txt for hired_add_test)

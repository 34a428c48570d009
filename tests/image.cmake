# tests for image (see tests/CMakeLists.txt for hired_add_test)

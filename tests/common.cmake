# tests for common (see tests/CMakeLists.txt for hired_add_test)
hired_add_test(test_tensor SOURCES unit/test_tensor.c LIBS hired_common)
hired_add_test(test_st SOURCES unit/test_st.c LIBS hired_common)
hired_add_test(test_hfconfig SOURCES unit/test_hfconfig.c LIBS hired_common)

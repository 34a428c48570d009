# tests for kernels (see tests/CMakeLists.txt for hired_add_test). Each op family compares the
# CPU fast path with its reference (kernels/kverify.h tolerances) and pins known values.
foreach(t compare matmul matmul_q8 norm softmax attention act rope add embed topk)
  hired_add_test(test_k_${t} SOURCES kernels/test_k_${t}.c LIBS hired_kernels LABELS kernels)
  target_include_directories(test_k_${t} PRIVATE ${PROJECT_SOURCE_DIR}/kernels/cpu)
endforeach()
hired_add_test(test_registry SOURCES kernels/test_registry.c LIBS hired_kernels LABELS kernels unit)
target_include_directories(test_registry PRIVATE ${PROJECT_SOURCE_DIR}/kernels/cpu)
# Every op of the registry on every backend that supports a case, against the reference.
hired_add_test(test_backend_ops SOURCES kernels/test_backend_ops.c LIBS hired_kernels LABELS kernels)

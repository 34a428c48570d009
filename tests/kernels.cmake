# tests for kernels (see tests/CMakeLists.txt for hired_add_test). Each op family compares the
# CPU fast path with its reference (kernels/kverify.h tolerances) and pins known values.
foreach(t compare matmul matmul_q8 norm softmax attention act rope add embed topk cast)
  hired_add_test(test_k_${t} SOURCES kernels/test_k_${t}.c LIBS hired_kernels LABELS kernels)
  target_include_directories(test_k_${t} PRIVATE ${PROJECT_SOURCE_DIR}/kernels/cpu)
endforeach()
hired_add_test(test_registry SOURCES kernels/test_registry.c LIBS hired_kernels LABELS kernels unit)
target_include_directories(test_registry PRIVATE ${PROJECT_SOURCE_DIR}/kernels/cpu)
# Every op of the registry on every backend that supports a case, against the reference.
hired_add_test(test_backend_ops SOURCES kernels/test_backend_ops.c LIBS hired_kernels LABELS kernels)
# HIRED_MAX_CPU_ISA: the cap takes (avx2) or is left alone (native; a value that is no ISA); the
# kernel tests of the paths that differ by ISA run again under the cap, so an AVX-512 machine
# also tests the AVX2 tiles and kernels an AVX2-only CPU runs.
hired_add_test(test_isa_cap SOURCES kernels/test_isa_cap.c LIBS hired_kernels LABELS kernels unit)
target_include_directories(test_isa_cap PRIVATE ${PROJECT_SOURCE_DIR}/kernels/cpu)
foreach(mode native bogus)
  add_test(NAME test_isa_cap_${mode} COMMAND test_isa_cap ${mode})
  hired_test_properties(test_isa_cap_${mode} LABELS kernels unit)
endforeach()
foreach(t matmul matmul_q8 attention)
  add_test(NAME test_k_${t}_avx2 COMMAND test_k_${t})
  hired_test_properties(test_k_${t}_avx2 LABELS kernels)
  set_property(TEST test_k_${t}_avx2 APPEND PROPERTY ENVIRONMENT HIRED_MAX_CPU_ISA=avx2)
endforeach()

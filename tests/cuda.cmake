# The CUDA backend's tests, built whenever the toolkit is present (a CUDA compile error fails CI)
# and labelled gpu as well: without a CUDA device they exit 77 (ctest: Not Run, never passed).
# scripts/gpu-check.sh runs `ctest -L gpu` on a machine with a GPU.
if(HIRED_HAVE_CUDA)
  hired_add_test(test_cuda_ctx SOURCES kernels/test_cuda_ctx.c LIBS hired_kernels LABELS kernels gpu)
  # every registry op on cuda:0 against the reference (the same program as test_backend_ops)
  add_test(NAME test_backend_ops_cuda COMMAND test_backend_ops --device cuda:0)
  hired_test_properties(test_backend_ops_cuda LABELS kernels gpu)
  # fidelity on cuda:0 (HIRED_TEST_DEVICE; CUDA tolerances stated in each test): the vision tower
  # and CLS rows, and the text model's logits and greedy tokens on both tiny models
  add_test(NAME test_vision_cuda COMMAND test_vision)
  hired_test_properties(test_vision_cuda LABELS fidelity gpu)
  set_property(TEST test_vision_cuda APPEND PROPERTY ENVIRONMENT HIRED_TEST_DEVICE=cuda:0)
  # HiRED's kept tokens with the tower on cuda:0 equal the CPU's, near-ties shown
  hired_add_test(test_select_cuda SOURCES fidelity/test_select_cuda.c LIBS hired_vision hired_image LABELS fidelity gpu)
  foreach(model llava-next-tiny llava15-tiny)
    add_test(NAME test_llm_${model}_cuda COMMAND test_llm ${model})
    hired_test_properties(test_llm_${model}_cuda LABELS fidelity gpu)
    set_property(TEST test_llm_${model}_cuda APPEND PROPERTY ENVIRONMENT HIRED_TEST_DEVICE=cuda:0)
  endforeach()
endif()

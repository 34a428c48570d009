# CUDA backend: built and linked whenever the toolkit is present; exits 77 (Not Run) with no GPU.
if(HIRED_HAVE_CUDA)
  hired_add_test(test_cuda_ctx SOURCES kernels/test_cuda_ctx.c LIBS hired_kernels LABELS kernels)
endif()

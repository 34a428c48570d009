# tests for image decoding, the PIL bicubic resize and LLaVA preprocessing
# (see tests/CMakeLists.txt for hired_add_test)
hired_add_test(test_image SOURCES unit/test_image.c LIBS hired_image LABELS unit)
hired_add_test(test_resize SOURCES unit/test_resize.c LIBS hired_image LABELS unit)
hired_add_test(test_preprocess SOURCES unit/test_preprocess.c LIBS hired_image LABELS unit)
# decode + preprocessing against transformers' processors (fixtures from tools/reference/make_fixtures.py)
hired_add_test(test_prep_fidelity SOURCES unit/test_prep_fidelity.c LIBS hired_image LABELS fidelity)

# vision tower fidelity and token selection
hired_add_test(test_vision SOURCES fidelity/test_vision.c LIBS hired_encoder PkgConfig::STB)
hired_add_test(test_select SOURCES unit/test_select.c LIBS hired_encoder)

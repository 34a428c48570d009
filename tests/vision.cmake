# vision tower fidelity and token selection
hired_add_test(test_vision SOURCES fidelity/test_vision.c LIBS hired_vision PkgConfig::STB LABELS fidelity slow)
hired_add_test(test_select SOURCES unit/test_select.c LIBS hired_vision LABELS unit)
hired_add_test(test_show_selection SOURCES integration/test_show_selection.c LIBS PkgConfig::STB LABELS integration slow)
add_dependencies(test_show_selection hired)
hired_add_test(test_select_fidelity SOURCES fidelity/test_select_fidelity.c LIBS hired_vision hired_image LABELS fidelity)

# tests for the tokenizer and chat templates (see tests/CMakeLists.txt for hired_add_test)
hired_add_test(test_tokenizer SOURCES unit/test_tokenizer.c LIBS hired_text LABELS unit fidelity)
hired_add_test(test_template SOURCES unit/test_template.c LIBS hired_text LABELS unit)

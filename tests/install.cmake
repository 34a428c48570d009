# The installation as a user gets it (tests/install/test_install.sh): `cmake --install` of this
# build into a temporary prefix, a C client compiled against the installed hired.pc, the
# installed units through systemd-analyze verify, and the installed broker and workers serving
# the compiled client. It installs every target, so it runs after the whole build (ctest does).
add_test(NAME test_install COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/install/test_install.sh)
hired_test_properties(test_install LABELS integration)
set(hired_install_cflags "")
if(HIRED_SANITIZE) # the installed libhired is instrumented: so must the client be
  set(hired_install_cflags "-fsanitize=address,undefined")
endif()
set_property(TEST test_install APPEND PROPERTY ENVIRONMENT
  "HIRED_SOURCE_DIR=${PROJECT_SOURCE_DIR}" "CC=${CMAKE_C_COMPILER}" "HIRED_TEST_CFLAGS=${hired_install_cflags}")

# The layering (docs/architecture.md §4): the CPU backend only behind the dispatcher, includes
# pointing down the DAG, the halves apart, and hired-decoder without the vision tower or an
# image decoder (checked on the binary). tests/layers/check_layers.sh says what it checks.
add_test(NAME test_layers COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/layers/check_layers.sh ${PROJECT_SOURCE_DIR}
         $<TARGET_FILE:hired-decoder> $<TARGET_FILE:hired-encoder>)
hired_test_properties(test_layers LABELS unit)

# `hired bench` (client/cmd_bench.c) through the real binary: it starts its own broker, encoder
# and decoder on the tiny LLaVA-NeXT model, and its JSON must show every figure and the wire
# saving of HiRED (r = 0.2 <= 21% of r = 1.0). See tests/integration/test_bench.c.
hired_add_test(test_bench SOURCES integration/test_bench.c LIBS PkgConfig::CJSON m LABELS integration slow)
add_dependencies(test_bench hired hired-broker hired-encoder hired-decoder)

# tests of hired-gateway (gateway/): the pure parts in-process, then the live gateway in front of
# real brokers and workers, driven from Python (tests/gateway/*.py; see tests/gateway/run.sh for
# the venv with the official openai and prometheus_client packages, cached in the build tree).
hired_add_test(test_gateway SOURCES unit/test_gateway.c LIBS hired_gateway_core LABELS unit)

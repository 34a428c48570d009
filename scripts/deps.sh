#!/usr/bin/env bash
# Installs the Debian packages hired builds against, if any is missing. Safe to re-run.
# libmicrohttpd and libcurl: hired-gateway (HTTP server, http(s) image fetching); curl and
# python3-venv: the gateway tests (curl's SSE, and a venv for the openai / prometheus_client
# packages from PyPI).
# libdnnl-dev: oneDNN, the CPU GEMM on AVX2+ CPUs (run-time ISA dispatch, kernels/cpu/gemm.c) and
# the bf16 matmul. libblis4-openmp: only hired-bench-gemm's BLIS candidate (loaded with dlopen;
# the bench reports it missing rather than failing).
# The CUDA toolkit is not a Debian package: when /usr/local/cuda/bin/nvcc exists the CUDA
# sources are compiled too (HIRED_CUDA=AUTO), otherwise the CPU backend is built alone.
set -euo pipefail
pkgs=(build-essential cmake pkg-config libopenblas-dev libjpeg62-turbo-dev libstb-dev libcjson-dev
      libconfig-dev libzmq3-dev libczmq-dev libmsgpack-dev libsystemd-dev libevent-dev iproute2 clang
      libclang-rt-14-dev libmicrohttpd-dev libcurl4-openssl-dev curl python3-venv libdnnl-dev libblis4-openmp)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "hired: installing ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

#!/usr/bin/env bash
# Configures and builds SlimTrain into build/ (Release, Ninja, ccache when present).
# SLIM_WITH_NCCL=ON|OFF builds the NCCL communicator against the CUDA toolkit in
# CUDA_HOME (default /usr/local/cuda); by default it is built when that toolkit has nccl.h.
set -euo pipefail
cd "$(dirname "$0")/.."
cuda_home="${CUDA_HOME:-/usr/local/cuda}"
if [[ -z "${SLIM_WITH_NCCL:-}" ]]; then
  SLIM_WITH_NCCL=$([[ -f "$cuda_home/include/nccl.h" ]] && echo ON || echo OFF)
fi
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DSLIM_WITH_NCCL="$SLIM_WITH_NCCL" \
      -DCUDAToolkit_ROOT="$cuda_home" >/dev/null
cmake --build build -j "${SLIM_BUILD_JOBS:-2}"

#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
scripts/build.sh
source scripts/mpi_env.sh
cd build
ctest --output-on-failure -j 2 --timeout 600 "$@"

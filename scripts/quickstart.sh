#!/usr/bin/env bash
# Installs what is missing, builds, generates the demo data and trains the bundled
# ResNet-20 on it with two MPI ranks: configs/quickstart.yaml.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
scripts/build.sh
if [ ! -f data/generated/quickstart/eval.h5 ]; then
  build/slim-data images --out data/generated/quickstart --train 10000 --eval 2000 --seed 1
fi
source scripts/mpi_env.sh
mpirun -np 2 build/slim-train configs/quickstart.yaml "$@"

#!/usr/bin/env bash
# Installs the Debian 12 packages SlimTrain needs to build, run, test and benchmark (Slurm
# and munge for the tests' one-node cluster, scripts/slurm/local_cluster.sh), then
# ONNX Runtime's CPU library from npm (scripts/install_onnxruntime.sh), which runs the
# exported ONNX models. Idempotent: does nothing when everything is already installed.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config
  libtorch-dev libopenmpi-dev openmpi-bin libboost-dev libyaml-cpp-dev
  libhdf5-dev hdf5-tools libgtest-dev nlohmann-json3-dev libcairo2-dev libcli11-dev libfmt-dev libexpat1-dev fonts-dejavu-core
  zlib1g-dev dataset-fashion-mnist libonnx-dev
  python3 python3-torch python3-torchvision python3-h5py python3-numpy python3-matplotlib
  python3-onnx python3-optuna
  slurm-wlm munge
)
# Node.js and npm run ONNX Runtime; a Node.js installed another way (it brings its own
# npm) is kept.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  packages+=(nodejs npm)
fi

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -q
  "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
"${sudo_cmd[@]}" "$(dirname "$0")/install_onnxruntime.sh" >/dev/null

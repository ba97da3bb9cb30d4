#!/usr/bin/env bash
# The GPU check. Run from the repository root on a machine with an NVIDIA GPU, CUDA
# (/usr/local/cuda, or CUDA_HOME) and a CUDA build of Python torch, with the Debian
# packages of scripts/gpu_deps.sh in .gpu-deps/. It
#   1. unpacks those packages into a prefix and builds SlimTrain in build-gpu/ against the
#      LibTorch inside Python torch, with the NCCL backend (torch's own NCCL where its
#      package has one, else the toolkit's);
#   2. runs the NCCL communicator's tests on the GPU (world size 1: NCCL takes one rank
#      per GPU);
#   3. trains on the GPU end to end: float32, AMP float16 and bfloat16, and QuantAware +
#      Distillation + ChannelPrune with ZeRO-1 and recompute, stopped by SIGTERM and
#      resumed;
#   4. times training steps, float32 against AMP, ours against eager PyTorch on the same
#      model file (bench/pytorch_amp.py), with the MFU of each.
# Everything it prints also goes to $OUT/gpu_check.log ($OUT: the folder the device tool
# brings back; build-gpu/results elsewhere), the step times to $OUT/gpu_steps.json. Exits
# non-zero at the first step that fails.
#
#   scripts/gpu_check.sh                # all of it
#   scripts/gpu_check.sh --build-only   # step 1 only (any machine; no GPU needed)
#   scripts/gpu_check.sh --skip-build   # steps 2-4 over an earlier build-gpu/
# Environment: PYTHON (default python3), CUDA_HOME, SLIM_TORCH_CMAKE (the directory that
# holds Torch's CMake files, default: Python torch's), SLIM_GPU_DEPS (unpack prefix),
# the GPU dense peaks for the MFU are bench/gpu_steps.py's (H100/H200).
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  "") build=1 run=1 ;;
  --build-only) build=1 run=0 ;;
  --skip-build) build=0 run=1 ;;
  *) echo "usage: scripts/gpu_check.sh [--build-only | --skip-build]" >&2; exit 2 ;;
esac
results=${OUT:-$PWD/build-gpu/results}
python=${PYTHON:-python3}
cuda_home=${CUDA_HOME:-/usr/local/cuda}
deps=${SLIM_GPU_DEPS:-/tmp/slim-gpu-deps}
multiarch=usr/lib/x86_64-linux-gnu
work=build-gpu/check

step() { echo; echo "=== $* ($(date +%T))"; }

# Unpacks Debian package $1 into $deps, with dpkg where the machine has it.
unpack() {
  if command -v dpkg >/dev/null; then
    dpkg -x "$1" "$deps"
    return
  fi
  local member
  member=$(ar t "$1" | grep '^data\.tar')
  case $member in
    *.xz) ar p "$1" "$member" | tar -xJ -C "$deps" ;;
    *.zst) ar p "$1" "$member" | tar --zstd -x -C "$deps" ;;
    *.gz) ar p "$1" "$member" | tar -xz -C "$deps" ;;
    *) ar p "$1" "$member" | tar -x -C "$deps" ;;
  esac
}

main() {
  step "machine"
  if [[ $run == 1 ]]; then
    nvidia-smi -L
    "$python" -c 'import torch; assert torch.cuda.is_available(), "Python torch sees no GPU"; '\
'print("torch", torch.__version__, "CUDA", torch.version.cuda, torch.cuda.get_device_name(0))'
  fi

  step "dependencies: .gpu-deps/ unpacked into $deps"
  if ! compgen -G ".gpu-deps/*.deb" >/dev/null; then
    echo ".gpu-deps/ holds no packages: run scripts/gpu_deps.sh on the development machine" \
         "and carry .gpu-deps"
    exit 2
  fi
  rm -rf "$deps"
  mkdir -p "$deps/pkgconfig"
  for package in .gpu-deps/*.deb; do unpack "$package"; done
  # cairo's own .pc file requires the .pc files of X, fontconfig and glib, whose -dev
  # packages are not carried: the build needs only cairo's headers and library.
  cat >"$deps/pkgconfig/cairo.pc" <<PC
Name: cairo
Description: cairo from the carried Debian package
Version: $(sed -n 's/^Version: //p' "$deps/$multiarch/pkgconfig/cairo.pc")
Cflags: -I$deps/usr/include/cairo
Libs: -L$deps/$multiarch -lcairo
PC
  export PKG_CONFIG_PATH=$deps/pkgconfig
  export OPAL_PREFIX=$deps/usr  # Open MPI, unpacked away from the /usr it was built for
  export LD_LIBRARY_PATH=$deps/$multiarch:$deps/$multiarch/hdf5/serial${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  mpirun=("$deps/usr/bin/mpirun.openmpi" --allow-run-as-root --oversubscribe)
  # Python torch runs without the carried libraries ahead of its own.
  py() { env -u LD_LIBRARY_PATH "$python" "$@"; }

  if [[ $build == 1 ]]; then
    build_gpu
  fi
  [[ $run == 1 ]] || { echo "built (--build-only)"; return 0; }
  run_checks
}

build_gpu() {
  step "configure and build build-gpu/"
  local torch_cmake nccl_root
  torch_cmake=${SLIM_TORCH_CMAKE:-$(py -c 'import torch; print(torch.utils.cmake_prefix_path)')}
  echo "Torch's CMake files: $torch_cmake"
  # LibTorch loads the NCCL of its own package; link the same one where it is there.
  local nccl=()
  nccl_root=$(py -c 'import nvidia.nccl; print(list(nvidia.nccl.__path__)[0])' 2>/dev/null || true)
  if [[ -n $nccl_root && -f $nccl_root/include/nccl.h ]]; then
    nccl=(-DNCCL_INCLUDE_DIR="$nccl_root/include"
          -DNCCL_LIBRARY="$(ls "$nccl_root"/lib/libnccl.so* | head -n 1)")
  fi
  local pkg_config
  pkg_config=$(command -v pkg-config || echo "$deps/usr/bin/pkgconf")
  # HDF5 is named by its two paths; the h5cc of a machine that has one (it would name its
  # own HDF5) is kept out by naming one that does not exist.
  cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DSLIM_WITH_NCCL=ON \
        -DCUDAToolkit_ROOT="$cuda_home" "${nccl[@]}" \
        -DCMAKE_PREFIX_PATH="$deps/usr;$torch_cmake" \
        -DPKG_CONFIG_EXECUTABLE="$pkg_config" \
        -DMPI_CXX_COMPILER="$deps/usr/bin/mpicxx.openmpi" \
        -DHDF5_C_COMPILER_EXECUTABLE="$deps/no-h5cc" \
        -DHDF5_C_INCLUDE_DIR="$deps/usr/include/hdf5/serial" \
        -DHDF5_hdf5_LIBRARY_RELEASE="$deps/$multiarch/hdf5/serial/libhdf5.so" \
        -DCMAKE_EXE_LINKER_FLAGS="-Wl,-rpath-link,$deps/$multiarch"
  grep -E "^(TORCH_LIBRARY|MPI_CXX_LIB_NAMES|HDF5_C_INCLUDE_DIR|NCCL_LIBRARY|NCCL_INCLUDE_DIR):" \
       build-gpu/CMakeCache.txt || true
  cmake --build build-gpu -j "$(nproc)" --target slim-train slim-data slim-model slim_gpu_tests
}

# Writes $work/<name>.yaml and prints its path: builtin ResNet-56 on the GPU, batch 256,
# $2 steps, with the TrainConfig lines $3 and the strategy sections $4.
config() {
  local name=$1 steps=$2 extra=${3:-} sections=${4:-}
  cat >"$work/$name.yaml" <<YAML
Global:
  model: $work/resnet56.pt
  train_data: $work/data/train.h5
  eval_data: $work/data/eval.h5
  batch_size: 256
  device: cuda
  output_dir: $work/out-$name
TrainConfig:
  train_iter: $steps
  logging_iter: 5
  learning_rate: 0.05
  checkpoint: {every_iter: 20, keep: 2}
$extra
$sections
YAML
  echo "$work/$name.yaml"
}

run_checks() {
  step "NCCL communicator tests on the GPU"
  "${mpirun[@]}" -np 1 build-gpu/tests/slim_gpu_tests

  step "training on the GPU"
  rm -rf "$work"
  mkdir -p "$work"
  build-gpu/slim-data images --out "$work/data" --train 8192 --eval 1024 --seed 1
  build-gpu/slim-model save resnet56 "$work/resnet56.pt"
  local run amp
  for run in fp32 fp16 bf16; do
    case $run in
      fp32) amp="" ;;
      fp16) amp="  amp_config: {dtype: float16}" ;;
      bf16) amp="  amp_config: {dtype: bfloat16}" ;;
    esac
    "${mpirun[@]}" -np 1 build-gpu/slim-train "$(config "$run" 60 "$amp")" --resume none
  done

  local everything stopped
  everything=$(config everything 40 "  amp_config: {dtype: bfloat16}
  sharding_config: {stage: 1}
  recompute_config: {modules: ['layer2.*']}" "QuantAware:
  quantize_op_types: [conv2d, linear]
Distillation:
  teacher_model: self
  node: [logits]
  loss: [soft_label]
ChannelPrune:
  pruned_ratio: 0.25")
  set +e
  SLIMTRAIN_INJECT_FAULT=0:25:sigterm "${mpirun[@]}" -np 1 build-gpu/slim-train "$everything" \
      --resume none
  stopped=$?
  set -e
  [[ $stopped == 75 ]] || { echo "the SIGTERM run exited $stopped, not 75"; exit 1; }
  "${mpirun[@]}" -np 1 build-gpu/slim-train "$everything"
  echo "QuantAware + Distillation + ChannelPrune, ZeRO-1, recompute, bfloat16: stopped (75)," \
       "resumed, done"

  step "step times: ours against eager PyTorch on the same model file"
  local dtype anchors=()
  for dtype in float16 bfloat16; do
    anchors+=("$(py bench/pytorch_amp.py --model "$work/resnet56.pt" --device cuda \
                   --dtype "$dtype" --batch 256 --steps 50 | tail -n 1)")
  done
  py bench/gpu_steps.py --runs "$work" --pytorch "${anchors[@]}" --out "$results/gpu_steps.json"
  echo "GPU check passed"
}

mkdir -p "$results"
main 2>&1 | tee "$results/gpu_check.log"
exit "${PIPESTATUS[0]}"

#!/usr/bin/env bash
# The GPU check. Run from the repository root on a machine with an NVIDIA GPU, CUDA
# (/usr/local/cuda with nccl.h, or CUDA_HOME) and a CUDA build of Python torch, with the
# Debian packages of scripts/gpu_deps.sh in .gpu-deps/. It
#   1. unpacks those packages into a prefix and builds SlimTrain in build-gpu/ against the
#      LibTorch inside Python torch, with the NCCL backend;
#   2. runs the NCCL communicator's tests on the GPU (world size 1: NCCL takes one rank
#      per GPU);
#   3. trains on the GPU end to end: float32, AMP float16 and bfloat16, and QuantAware +
#      Distillation + ChannelPrune with ZeRO-1 and recompute, stopped by SIGTERM and
#      resumed;
#   4. times training steps, float32 against AMP, ours against eager PyTorch on the same
#      model file (bench/pytorch_amp.py).
# Everything it prints also goes to $OUT/gpu_check.log ($OUT: the folder the device tool
# brings back; build-gpu/results elsewhere), the step times to $OUT/gpu_steps.json. Exits
# non-zero at the first step that fails.
#
#   scripts/gpu_check.sh                # all of it
#   scripts/gpu_check.sh --build-only   # steps 1 only (any machine; no GPU needed)
# Environment: PYTHON (default python3), CUDA_HOME, SLIM_TORCH_CMAKE (the directory that
# holds Torch's CMake files, default: Python torch's), SLIM_GPU_DEPS (unpack prefix),
# SLIM_GPU_PEAK_TFLOPS (float32,float16,bfloat16 dense peaks for the MFU; default H200's).
set -euo pipefail
cd "$(dirname "$0")/.."
build_only=$([[ "${1:-}" == "--build-only" ]] && echo 1 || echo 0)
results=${OUT:-$PWD/build-gpu/results}
mkdir -p "$results"
exec > >(tee "$results/gpu_check.log") 2>&1
python=${PYTHON:-python3}
cuda_home=${CUDA_HOME:-/usr/local/cuda}
deps=${SLIM_GPU_DEPS:-/tmp/slim-gpu-deps}
multiarch=usr/lib/x86_64-linux-gnu
work=build-gpu/check

step() { echo; echo "=== $* ($(date +%T))"; }

step "machine"
if [[ $build_only == 0 ]]; then
  nvidia-smi -L
  "$python" -c 'import torch; assert torch.cuda.is_available(), "Python torch sees no GPU"
print("torch", torch.__version__, "CUDA", torch.version.cuda, torch.cuda.get_device_name(0))'
fi
torch_cmake=${SLIM_TORCH_CMAKE:-$("$python" -c 'import torch; print(torch.utils.cmake_prefix_path)')}
echo "Torch's CMake files: $torch_cmake"

step "dependencies: .gpu-deps/ unpacked into $deps"
if ! compgen -G ".gpu-deps/*.deb" >/dev/null; then
  echo ".gpu-deps/ holds no packages: run scripts/gpu_deps.sh on the development machine" \
       "and carry .gpu-deps"
  exit 2
fi
rm -rf "$deps"
mkdir -p "$deps/pkgconfig"
for package in .gpu-deps/*.deb; do dpkg -x "$package" "$deps"; done
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
# HDF5 is found from the two paths given below; the h5cc of a machine that has one
# (it would name its own HDF5) is kept out by naming one that does not exist.
# Python torch runs without the carried libraries ahead of its own.
py() { env -u LD_LIBRARY_PATH "$python" "$@"; }

step "configure and build build-gpu/"
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DSLIM_WITH_NCCL=ON \
      -DCUDAToolkit_ROOT="$cuda_home" \
      -DCMAKE_PREFIX_PATH="$deps/usr;$torch_cmake" \
      -DMPI_CXX_COMPILER="$deps/usr/bin/mpicxx.openmpi" \
      -DHDF5_C_COMPILER_EXECUTABLE="$deps/no-h5cc" \
      -DHDF5_C_INCLUDE_DIR="$deps/usr/include/hdf5/serial" \
      -DHDF5_hdf5_LIBRARY_RELEASE="$deps/$multiarch/hdf5/serial/libhdf5.so" \
      -DCMAKE_EXE_LINKER_FLAGS="-Wl,-rpath-link,$deps/$multiarch"
grep -E "^(TORCH_LIBRARY|MPI_CXX_LIB_NAMES|HDF5_C_INCLUDE_DIR|NCCL_LIBRARY|CUDAToolkit_LIBRARY_ROOT):" \
     build-gpu/CMakeCache.txt || true
cmake --build build-gpu -j "$(nproc)" --target slim-train slim-data slim-model slim_gpu_tests
[[ $build_only == 1 ]] && { echo "built (--build-only)"; exit 0; }

step "NCCL communicator tests on the GPU"
"${mpirun[@]}" -np 1 build-gpu/tests/slim_gpu_tests

step "training on the GPU"
rm -rf "$work"
mkdir -p "$work"
build-gpu/slim-data images --out "$work/data" --train 8192 --eval 1024 --seed 1
build-gpu/slim-model save resnet56 "$work/resnet56.pt"
# Writes $work/<name>.yaml: builtin ResNet-56 on the GPU, batch 256, with `extra` lines
# appended under TrainConfig.
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
# The median seconds of a logged training step in $1/metrics.jsonl after the first two.
step_seconds() {
  py - "$1" <<'PY'
import json, statistics, sys
lines = [json.loads(l) for l in open(sys.argv[1] + "/metrics.jsonl") if '"train"' in l][2:]
print(statistics.median(256 / l["samples_per_s"] for l in lines))
PY
}
declare -A ours
for run in fp32 fp16 bf16; do
  case $run in
    fp32) amp="" ;;
    fp16) amp="  amp_config: {dtype: float16}" ;;
    bf16) amp="  amp_config: {dtype: bfloat16}" ;;
  esac
  "${mpirun[@]}" -np 1 build-gpu/slim-train "$(config "$run" 60 "$amp")" --resume none
  py -c "import json,sys; r=json.load(open('$work/out-$run/report.json'));
assert r['device'].startswith('cuda'), r['device']; print('$run: device', r['device'],
'peak tensor MiB', r['memory']['peak_tensor_mb'])"
  ours[$run]=$(step_seconds "$work/out-$run")
done

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
echo "QuantAware + Distillation + ChannelPrune, ZeRO-1, recompute, bf16: stopped (75), resumed, done"

step "step times: ours against eager PyTorch on the same model file"
declare -A theirs
for dtype in float16 bfloat16; do
  theirs[$dtype]=$(py bench/pytorch_amp.py --model "$work/resnet56.pt" --device cuda \
                      --dtype "$dtype" --batch 256 --steps 50 | tail -n 1)
done
# MFU: a training step does about 3 forward passes' work (forward, and backward for the
# activations and for the weights), 2 FLOPs a MAC, against the GPU's dense peak
# (SLIM_GPU_PEAK_TFLOPS: H100/H200 SXM, 989 for float16/bfloat16, 67 for float32).
py - "$results/gpu_steps.json" "$work/out-fp32/report.json" "${ours[fp32]}" "${ours[fp16]}" \
     "${ours[bf16]}" "${theirs[float16]}" "${theirs[bfloat16]}" <<'PY'
import json, os, sys
path, report, fp32, fp16, bf16 = sys.argv[1], sys.argv[2], *map(float, sys.argv[3:6])
pytorch = {"float16": json.loads(sys.argv[6]), "bfloat16": json.loads(sys.argv[7])}
macs = json.load(open(report))["input_model"]["macs"]
peak = {"float32": 67e12, "float16": 989e12, "bfloat16": 989e12}
if "SLIM_GPU_PEAK_TFLOPS" in os.environ:
    peak = dict(zip(["float32", "float16", "bfloat16"],
                    (float(t) * 1e12 for t in os.environ["SLIM_GPU_PEAK_TFLOPS"].split(","))))
mfu = lambda step_s, dtype: 6 * macs * 256 / step_s / peak[dtype]
ours = {"float32": fp32, "float16": fp16, "bfloat16": bf16}
theirs = {"float32": pytorch["float16"]["fp32_step_s"],
          "float16": pytorch["float16"]["amp_step_s"],
          "bfloat16": pytorch["bfloat16"]["amp_step_s"]}
summary = {"model": "resnet56", "batch": 256, "macs_per_sample": macs, "peak_flops": peak,
           "ours_step_s": ours, "pytorch_step_s": theirs,
           "ours_mfu": {d: mfu(s, d) for d, s in ours.items()},
           "pytorch_mfu": {d: mfu(s, d) for d, s in theirs.items()}, "pytorch": pytorch}
json.dump(summary, open(path, "w"), indent=1)
print(f"{'':9} {'ours s/step':>11} {'vs fp32':>7} {'MFU':>6}   "
      f"{'PyTorch s/step':>14} {'vs fp32':>7} {'MFU':>6}   {'ours/PyTorch':>12}")
for dtype in ours:
    print(f"{dtype:9} {ours[dtype]:11.4f} {ours[dtype] / fp32:7.2f} {mfu(ours[dtype], dtype):6.1%}"
          f"   {theirs[dtype]:14.4f} {theirs[dtype] / theirs['float32']:7.2f} "
          f"{mfu(theirs[dtype], dtype):6.1%}   {ours[dtype] / theirs[dtype]:12.2f}")
PY
echo "GPU check passed"

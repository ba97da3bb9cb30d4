// Measured figures of a model: multiply-accumulates counted from its graph, and latency
// timed on this machine after warm-up, the same way for every format.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "export/frozen_graph.h"

namespace slim::exporting {

// Multiply-accumulates of one sample through the convolutions, linear layers and
// matmuls of `frozen` (shapes observed on a zero input of `sample_shape`).
int64_t CountMacs(const FrozenModel& frozen, const std::vector<int64_t>& sample_shape);

// CountMacs of `model` in any form (float, fake-quant or quantize/dequantize pairs).
int64_t CountModelMacs(const torch::jit::Module& model, const std::vector<int64_t>& sample_shape);

struct Latency {
  int64_t batch = 0;
  int64_t threads = 0;
  int64_t iterations = 0;
  double median_ms = 0;
  double p90_ms = 0;
  double samples_per_second = 0;  // batch / median
};

// How long to time: at least `min_iterations` timed runs, more up to `max_iterations`
// while `budget_s` seconds last; `warmup` untimed runs first.
struct TimingPlan {
  int64_t warmup = 5;
  int64_t min_iterations = 10;
  int64_t max_iterations = 200;
  double budget_s = 2.0;
};

// Times `module`'s forward on a seeded random input [batch, sample_shape...] with
// LibTorch's current intra-op thread count.
Latency TimeTorchScript(torch::jit::Module& module, const std::vector<int64_t>& sample_shape,
                        int64_t batch, const TimingPlan& plan);

// Times the ONNX model at `path` in ONNX Runtime (CPU) with `threads` intra-op threads,
// through tools/onnx_run.mjs and the onnxruntime-node install (install_onnxruntime.sh).
// nullopt with `why_not` set when node, the runner or ONNX Runtime is not installed.
std::optional<Latency> TimeOnnx(const std::string& path, const std::vector<int64_t>& sample_shape,
                                int64_t batch, int64_t threads, const TimingPlan& plan,
                                std::string* why_not);

// The path of tools/onnx_run.mjs: $SLIM_ONNX_RUNNER, else onnx_run.mjs next to this
// executable (the build copies it there).
std::string OnnxRunnerPath();

}  // namespace slim::exporting

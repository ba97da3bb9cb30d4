// ONNX Runtime (CPU), for running and timing exported ONNX models: its npm package
// onnxruntime-node (scripts/install_onnxruntime.sh) driven through tools/onnx_run.mjs in
// a node process, since the package ships the library and a Node binding but no C
// headers. Every call reports a missing install as a reason, never as an error.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "export/model_measure.h"

namespace slim::exporting {

// The path of tools/onnx_run.mjs: $SLIM_ONNX_RUNNER, else onnx_run.mjs next to this
// executable (the build copies it there).
std::string OnnxRunnerPath();

// Times the ONNX model at `path` with `threads` intra-op threads on `example` (a batch of
// one) repeated to `batch`: plan.warmup untimed runs, then plan.min_iterations (at least
// 20) timed runs. nullopt with `why_not` set when it cannot run.
std::optional<Latency> TimeOnnx(const std::string& path, const at::Tensor& example, int64_t batch,
                                int64_t threads, const TimingPlan& plan, std::string* why_not);

// The output of the ONNX model at `path` on `input` (token ids as int64, anything else as
// float32), run with `threads`
// intra-op threads; nullopt with `why_not` set when it cannot run.
std::optional<at::Tensor> RunOnnx(const std::string& path, const at::Tensor& input,
                                  int64_t threads, std::string* why_not);

}  // namespace slim::exporting

// Automatic mixed precision (TrainConfig.amp_config): which lower-precision type a run
// autocasts to, and the autocast scope of the student's forward.
//
// Inside the scope, LibTorch's own autocast lists apply, as under torch.autocast:
// convolutions, linear layers and matrix products run in the lower precision; losses,
// softmax and reductions in float32; every other op (BatchNorm, activations, adds) in
// the type of its input. Weights, gradients and optimizer state stay float32.
#pragma once

#include <c10/util/Exception.h>
#include <torch/types.h>

#include <string>

#include "runtime/config/options.h"

namespace slim::engine {

// The type `options` autocasts to on `device`: kFloat when AMP is off, else kHalf or
// kBFloat16 (unset dtype: float16 on CUDA, bfloat16 on CPU). Throws ConfigError naming
// `config_file` and TrainConfig.amp_config.dtype for float16 on a CPU.
torch::ScalarType AutocastType(const config::AmpOptions& options, torch::Device device,
                               const std::string& config_file);

// Throws ConfigError naming `config_file`'s TrainConfig.amp_config when `error` says that
// LibTorch has no kernel of some op for the autocast type `type` (ReLU6's backward in
// bfloat16 on the CPU, for one); returns otherwise, for the caller to rethrow `error`.
void RefuseMissingLowPrecisionKernel(const c10::Error& error, torch::ScalarType type,
                                     const std::string& config_file);

// While alive, ops on `device` autocast to `type` (kHalf or kBFloat16; kFloat: the scope
// does nothing); the previous autocast state comes back on destruction. Thread-local, like
// torch.autocast.
class AutocastScope {
 public:
  AutocastScope(torch::Device device, torch::ScalarType type);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_;
  c10::DeviceType device_type_;
  bool was_enabled_ = false;
  torch::ScalarType previous_type_ = torch::kFloat;
};

}  // namespace slim::engine

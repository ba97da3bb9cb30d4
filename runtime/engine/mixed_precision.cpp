#include "runtime/engine/mixed_precision.h"

#include <ATen/autocast_mode.h>
#include <fmt/format.h>

#include "runtime/base/errors.h"
#include "runtime/base/torch_compat.h"

namespace slim::engine {

torch::ScalarType AutocastType(const config::AmpOptions& options, torch::Device device,
                               const std::string& config_file) {
  if (!options.enable) return torch::kFloat;
  const bool cuda = device.is_cuda();
  const std::string dtype = options.dtype.empty() ? (cuda ? "float16" : "bfloat16") : options.dtype;
  if (dtype == "bfloat16") return torch::kBFloat16;
  if (!cuda) {
    throw ConfigError(config_file + ": TrainConfig.amp_config.dtype: float16 autocast needs a "
                      "CUDA device and this run trains on the CPU; use dtype: bfloat16 there");
  }
  return torch::kHalf;
}

void RefuseMissingLowPrecisionKernel(const c10::Error& error, torch::ScalarType type,
                                     const std::string& config_file) {
  if (type == torch::kFloat) return;
  const std::string name = c10::toString(type);
  const std::string message = error.what_without_backtrace();
  if (message.find("not implemented for '" + name + "'") == std::string::npos) return;
  throw ConfigError(fmt::format(
      "{}: TrainConfig.amp_config: the model uses an op that this LibTorch cannot run in {} "
      "on this device ({}); train it in float32 (amp_config: {{enable: false}}) or replace the op",
      config_file, name, message.substr(0, message.find('\n'))));
}

AutocastScope::AutocastScope(torch::Device device, torch::ScalarType type)
    : active_(type != torch::kFloat), device_type_(device.type()) {
  if (!active_) return;
  was_enabled_ = compat::AutocastEnabled(device_type_);
  previous_type_ = compat::AutocastType(device_type_);
  compat::SetAutocast(device_type_, true, type);
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  // Leaving the outermost scope drops the cached lower-precision copies of the weights.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  compat::SetAutocast(device_type_, was_enabled_, previous_type_);
}

}  // namespace slim::engine

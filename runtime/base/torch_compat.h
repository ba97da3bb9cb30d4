// The one place where differences between LibTorch 1.13 (Debian) and 2.x (the Python
// wheels on GPU machines) are hidden. Everything else includes this header instead of
// testing TORCH_VERSION_* itself.
#pragma once

#include <torch/version.h>

#include <torch/types.h>

#include <sstream>
#include <string>

namespace slim::compat {

// "1.13.1" or "2.5.0": the LibTorch the binary was compiled against.
inline std::string TorchVersionString() {
  return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
         std::to_string(TORCH_VERSION_PATCH);
}

// The key under which torch::optim::Optimizer::state() keeps `parameter`'s state (the
// address of its TensorImpl, formatted as LibTorch's own optimizers format it).
inline std::string OptimizerStateKey(const torch::Tensor& parameter) {
  std::ostringstream key;
  key << parameter.unsafeGetTensorImpl();
  return key.str();
}

}  // namespace slim::compat

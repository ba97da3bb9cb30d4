// The one place where differences between LibTorch 1.13 (Debian) and 2.x (the Python
// wheels on GPU machines) are hidden. Everything else includes this header instead of
// testing TORCH_VERSION_* itself.
#pragma once

#include <ATen/autocast_mode.h>
#include <torch/types.h>
#include <torch/version.h>

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

// LibTorch 2.3 made c10::Allocator::allocate non-const and added the pure virtual
// copy_data; an allocator declares `allocate(...) SLIM_ALLOCATE_CONST override` and, where
// SLIM_ALLOCATOR_HAS_COPY_DATA, copy_data.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
#define SLIM_ALLOCATE_CONST
#define SLIM_ALLOCATOR_HAS_COPY_DATA 1
#else
#define SLIM_ALLOCATE_CONST const
#define SLIM_ALLOCATOR_HAS_COPY_DATA 0
#endif

// LibTorch 2.4 made autocast's state per device type; earlier versions have one set of
// calls for the CPU and one for CUDA ("gpu").
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define SLIM_AUTOCAST_PER_DEVICE_TYPE 1
#else
#define SLIM_AUTOCAST_PER_DEVICE_TYPE 0
#endif

// Whether autocast is on for `device_type` (kCPU or kCUDA) on this thread.
inline bool AutocastEnabled(c10::DeviceType device_type) {
#if SLIM_AUTOCAST_PER_DEVICE_TYPE
  return at::autocast::is_autocast_enabled(device_type);
#else
  return device_type == c10::kCUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}

// The type autocast lowers to on `device_type` (kCPU or kCUDA), whether or not it is on.
inline at::ScalarType AutocastType(c10::DeviceType device_type) {
#if SLIM_AUTOCAST_PER_DEVICE_TYPE
  return at::autocast::get_autocast_dtype(device_type);
#else
  return device_type == c10::kCUDA ? at::autocast::get_autocast_gpu_dtype()
                                   : at::autocast::get_autocast_cpu_dtype();
#endif
}

// Turns autocast on or off for `device_type` (kCPU or kCUDA) on this thread, lowering to
// `type`.
inline void SetAutocast(c10::DeviceType device_type, bool enabled, at::ScalarType type) {
#if SLIM_AUTOCAST_PER_DEVICE_TYPE
  at::autocast::set_autocast_enabled(device_type, enabled);
  at::autocast::set_autocast_dtype(device_type, type);
#else
  if (device_type == c10::kCUDA) {
    at::autocast::set_enabled(enabled);
    at::autocast::set_autocast_gpu_dtype(type);
  } else {
    at::autocast::set_cpu_enabled(enabled);
    at::autocast::set_autocast_cpu_dtype(type);
  }
#endif
}

}  // namespace slim::compat

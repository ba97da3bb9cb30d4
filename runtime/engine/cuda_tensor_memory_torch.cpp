#include <c10/cuda/CUDACachingAllocator.h>

#include "runtime/engine/cuda_tensor_memory.h"

namespace slim::engine {

int64_t PeakCudaTensorBytes(int device) {
  constexpr size_t kAggregate = 0;  // StatType::AGGREGATE: all pool kinds together
  return c10::cuda::CUDACachingAllocator::getDeviceStats(device).allocated_bytes[kAggregate].peak;
}

void ResetPeakCudaTensorBytes(int device) {
  c10::cuda::CUDACachingAllocator::resetPeakStats(device);
}

}  // namespace slim::engine

// The CUDA caching allocator's statistics. The one file that knows them is compiled only
// with a CUDA LibTorch (cuda_tensor_memory_torch.cpp); a CPU-only LibTorch makes no CUDA
// tensors, and its stand-in (cuda_tensor_memory_none.cpp) reports none.
#pragma once

#include <cstdint>

namespace slim::engine {

// The most bytes allocated for tensors on CUDA device `device` at once since the last
// reset (torch.cuda.max_memory_allocated).
int64_t PeakCudaTensorBytes(int device);

// Starts a new peak from the bytes allocated now (torch.cuda.reset_peak_memory_stats).
void ResetPeakCudaTensorBytes(int device);

}  // namespace slim::engine

// The CUDA stream the training's kernels run on, which the NCCL backend orders its
// collectives after. The one file that knows LibTorch's CUDA streams is compiled only with
// a CUDA LibTorch (cuda_compute_stream_torch.cpp); with a CPU LibTorch nothing of torch
// runs on the GPU and the legacy default stream stands in (cuda_compute_stream_default.cpp).
#pragma once

#include <cuda_runtime_api.h>

namespace slim::comm {

// The current compute stream of CUDA device `device` on this thread.
cudaStream_t ComputeStream(int device);

}  // namespace slim::comm

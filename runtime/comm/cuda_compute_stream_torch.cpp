#include <c10/cuda/CUDAStream.h>

#include "runtime/comm/cuda_compute_stream.h"

namespace slim::comm {

cudaStream_t ComputeStream(int device) {
  return c10::cuda::getCurrentCUDAStream(static_cast<c10::DeviceIndex>(device)).stream();
}

}  // namespace slim::comm

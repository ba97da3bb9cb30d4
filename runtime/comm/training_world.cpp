#include "runtime/comm/training_world.h"

#include <mpi.h>
#include <torch/cuda.h>

#include "runtime/base/errors.h"
#include "runtime/comm/device_routing_communicator.h"
#if SLIM_WITH_NCCL
#include "runtime/comm/nccl_communicator.h"
#endif

namespace slim::comm {

DeviceFacts LocalDeviceFacts() {
  DeviceFacts facts;
  facts.cuda_devices = static_cast<int>(torch::cuda::device_count());
  facts.nccl_built = SLIM_WITH_NCCL;
  return facts;
}

torch::Device ChooseDevice(const std::string& setting, int local_rank, const DeviceFacts& facts) {
  const bool cuda_usable = facts.cuda_devices > 0 && facts.nccl_built;
  if (setting == "cuda" && !cuda_usable) {
    throw ConfigError(
        facts.cuda_devices == 0
            ? "Global.device is 'cuda', but no CUDA device is visible to this process (or "
              "LibTorch was built without CUDA); use device: cpu, or run where a GPU is"
            : "Global.device is 'cuda', but this build has no NCCL backend to move CUDA "
              "tensors between ranks; rebuild with -DSLIM_WITH_NCCL=ON (scripts/build.sh "
              "does so when CUDA_HOME has nccl.h), or use device: cpu");
  }
  if (setting == "cpu" || !cuda_usable) return torch::Device(torch::kCPU);
  return torch::Device(torch::kCUDA,
                       static_cast<c10::DeviceIndex>(local_rank % facts.cuda_devices));
}

std::unique_ptr<Communicator> OpenWorld(const MpiSession& session, torch::Device device,
                                        std::chrono::milliseconds default_timeout) {
  auto host = session.World(default_timeout);
  if (!device.is_cuda()) return host;
#if SLIM_WITH_NCCL
  auto nccl = std::make_unique<NcclCommunicator>(MPI_COMM_WORLD, device.index(), default_timeout);
  return std::make_unique<DeviceRoutingCommunicator>(std::move(host), std::move(nccl));
#else
  throw ConfigError("Global.device: " + device.str() +
                    " needs the NCCL backend, which this "
                    "build lacks; rebuild with -DSLIM_WITH_NCCL=ON");
#endif
}

}  // namespace slim::comm

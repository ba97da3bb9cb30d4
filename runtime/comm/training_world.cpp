#include "runtime/comm/training_world.h"

#include <mpi.h>
#include <torch/cuda.h>

#include "runtime/base/errors.h"
#include "runtime/comm/device_routing_communicator.h"
#if SLIM_WITH_NCCL
#include "runtime/comm/nccl_communicator.h"
#endif

namespace slim::comm {

DeviceFacts LocalDeviceFacts(int local_ranks) {
  DeviceFacts facts;
  facts.cuda_devices = static_cast<int>(torch::cuda::device_count());
  facts.nccl_built = SLIM_WITH_NCCL;
  facts.local_ranks = local_ranks;
  return facts;
}

CudaBlocker BlockerOf(const DeviceFacts& facts) {
  if (facts.cuda_devices == 0) return CudaBlocker::kNoDevice;
  if (!facts.nccl_built) return CudaBlocker::kNoNccl;
  if (facts.local_ranks > facts.cuda_devices) return CudaBlocker::kRanksOutnumberDevices;
  return CudaBlocker::kNone;
}

CudaBlocker AgreedBlocker(CudaBlocker mine, Communicator& host) {
  auto worst = torch::tensor({static_cast<int64_t>(mine)}, torch::kInt64);
  host.AllReduceSync(worst, ReduceOp::kMax);
  return static_cast<CudaBlocker>(worst.item<int64_t>());
}

namespace {

// Why Global.device: cuda cannot be had, and what to do instead.
std::string RefusalOf(CudaBlocker blocker) {
  switch (blocker) {
    case CudaBlocker::kNoDevice:
      return "Global.device is 'cuda', but a rank sees no CUDA device (or LibTorch was built "
             "without CUDA); use device: cpu, or run where every rank has a GPU";
    case CudaBlocker::kNoNccl:
      return "Global.device is 'cuda', but this build has no NCCL backend to move CUDA tensors "
             "between ranks; rebuild with -DSLIM_WITH_NCCL=ON (scripts/build.sh does so when "
             "CUDA_HOME has nccl.h), or use device: cpu";
    case CudaBlocker::kRanksOutnumberDevices:
      return "Global.device is 'cuda', but a node runs more ranks than it has GPUs, and NCCL "
             "takes one rank per GPU; start at most one rank per GPU on each node (mpirun "
             "--map-by ppr:<gpus>:node, srun --ntasks-per-node=<gpus>), or use device: cpu";
    case CudaBlocker::kNone:
      break;
  }
  return "";
}

}  // namespace

torch::Device ChooseDevice(const std::string& setting, int local_rank, int cuda_devices,
                           CudaBlocker blocker) {
  if (setting == "cuda" && blocker != CudaBlocker::kNone) throw ConfigError(RefusalOf(blocker));
  if (setting == "cpu" || blocker != CudaBlocker::kNone) return torch::Device(torch::kCPU);
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(local_rank % cuda_devices));
}

std::unique_ptr<Communicator> OpenWorld(std::unique_ptr<Communicator> host, torch::Device device) {
  if (!device.is_cuda()) return host;
#if SLIM_WITH_NCCL
  auto nccl =
      std::make_unique<NcclCommunicator>(MPI_COMM_WORLD, device.index(), host->DefaultTimeout());
  return std::make_unique<DeviceRoutingCommunicator>(std::move(host), std::move(nccl));
#else
  throw ConfigError(RefusalOf(CudaBlocker::kNoNccl));
#endif
}

}  // namespace slim::comm

// The device a rank trains on, and the communicator over all ranks that suits it: MPI
// for a CPU run; for a CUDA run NCCL moves the device tensors (gradient buckets, model
// state broadcasts, ZeRO's parameter shares) and MPI the host ones (metrics, quantizer
// statistics, checkpoint gathers).
#pragma once

#include <torch/types.h>

#include <memory>
#include <string>

#include "runtime/comm/communicator.h"

namespace slim::comm {

// What a device choice depends on, as one process sees it.
struct DeviceFacts {
  int cuda_devices = 0;     // CUDA devices LibTorch sees (0 with a CPU-only LibTorch)
  bool nccl_built = false;  // whether this build has the NCCL backend (-DSLIM_WITH_NCCL=ON)
  int local_ranks = 1;      // ranks of the job on this process's node
};

// This process's facts, for a node that runs `local_ranks` ranks of the job.
DeviceFacts LocalDeviceFacts(int local_ranks);

// What keeps a rank from training on CUDA; the larger, the more basic.
enum class CudaBlocker : int {
  kNone = 0,
  kRanksOutnumberDevices = 1,  // NCCL takes one rank per GPU
  kNoNccl = 2,
  kNoDevice = 3,
};

// The blocker of a process with `facts`.
CudaBlocker BlockerOf(const DeviceFacts& facts);

// The most basic blocker over the ranks of `host`, the same on every rank, so that all of
// them choose the same device. Collective.
CudaBlocker AgreedBlocker(CudaBlocker mine, Communicator& host);

// The device this rank trains on; `setting` is Global.device: auto, cpu or cuda, and
// `blocker` is AgreedBlocker's.
// - cpu: the CPU.
// - cuda: CUDA device local_rank mod `cuda_devices`. Throws ConfigError naming
//   Global.device, what is missing and the way out when `blocker` is not kNone.
// - auto: as cuda when nothing blocks it, else the CPU.
torch::Device ChooseDevice(const std::string& setting, int local_rank, int cuda_devices,
                           CudaBlocker blocker);

// The communicator over all ranks for a run on `device` (one of ChooseDevice's), from
// `host`, an MPI communicator over all ranks: `host` itself for the CPU; for CUDA, a
// DeviceRoutingCommunicator of `host` and NCCL. Collective.
std::unique_ptr<Communicator> OpenWorld(std::unique_ptr<Communicator> host, torch::Device device);

}  // namespace slim::comm

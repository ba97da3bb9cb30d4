// The device a rank trains on, and the communicator over all ranks that suits it: MPI
// for a CPU run; for a CUDA run NCCL moves the device tensors (gradients, quantizer
// statistics) and MPI the host ones (metrics, checkpoint gathers).
#pragma once

#include <torch/types.h>

#include <chrono>
#include <memory>
#include <string>

#include "runtime/comm/communicator.h"
#include "runtime/comm/mpi_session.h"

namespace slim::comm {

// What a device choice depends on.
struct DeviceFacts {
  int cuda_devices = 0;     // CUDA devices LibTorch sees (0 with a CPU-only LibTorch)
  bool nccl_built = false;  // whether this build has the NCCL backend (-DSLIM_WITH_NCCL=ON)
};

// This process's facts.
DeviceFacts LocalDeviceFacts();

// The device this rank trains on; `setting` is Global.device: auto, cpu or cuda.
// - cpu: the CPU.
// - cuda: CUDA device local_rank mod the device count. Throws ConfigError naming
//   Global.device and the way out when there is no CUDA device or no NCCL backend,
//   at start-up rather than at the first collective.
// - auto: as cuda when both are there, else the CPU.
torch::Device ChooseDevice(const std::string& setting, int local_rank, const DeviceFacts& facts);

// A communicator over all ranks for a run on `device` (one of ChooseDevice's): MPI for
// the CPU; for CUDA, a DeviceRoutingCommunicator of MPI and NCCL. Collective.
std::unique_ptr<Communicator> OpenWorld(const MpiSession& session, torch::Device device,
                                        std::chrono::milliseconds default_timeout);

}  // namespace slim::comm

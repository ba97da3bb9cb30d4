#include "runtime/engine/rank_state.h"

#include <ATen/CPUGeneratorImpl.h>

#include <mutex>

namespace slim::engine {

torch::Tensor GatherCpuGeneratorStates(comm::Communicator& comm) {
  auto generator = at::detail::getDefaultCPUGenerator();
  torch::Tensor state;
  {
    std::lock_guard<std::mutex> lock(generator.mutex());
    state = generator.get_state();
  }
  auto states = torch::empty({comm.Size(), state.numel()}, torch::kUInt8);
  comm.AllGather(state, states)->Wait(comm.DefaultTimeout());
  return states;
}

bool RestoreCpuGeneratorState(const torch::Tensor& states, int rank) {
  if (rank >= states.size(0)) return false;
  auto generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_state(states[rank].contiguous());
  return true;
}

std::vector<double> GatherValues(double value, comm::Communicator& comm) {
  auto mine = torch::tensor({value}, torch::kFloat64);
  auto all = torch::empty({comm.Size()}, torch::kFloat64);
  comm.AllGather(mine, all)->Wait(comm.DefaultTimeout());
  return std::vector<double>(all.data_ptr<double>(), all.data_ptr<double>() + all.numel());
}

}  // namespace slim::engine

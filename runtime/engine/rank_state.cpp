#include "runtime/engine/rank_state.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>

#include <mutex>

namespace slim::engine {

at::Generator DefaultGenerator(torch::Device device) {
  if (device.is_cpu()) return at::detail::getDefaultCPUGenerator();
  return at::globalContext().defaultGenerator(device);
}

torch::Tensor GatherGeneratorStates(at::Generator generator, comm::Communicator& comm) {
  torch::Tensor state;
  {
    std::lock_guard<std::mutex> lock(generator.mutex());
    state = generator.get_state();
  }
  auto states = torch::empty({comm.Size(), state.numel()}, torch::kUInt8);
  comm.AllGather(state, states)->Wait(comm.DefaultTimeout());
  return states;
}

bool RestoreGeneratorState(at::Generator generator, const torch::Tensor& states, int rank) {
  if (!states.defined() || rank >= states.size(0)) return false;
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

#include "runtime/ddp/module_sync.h"

namespace slim::ddp {

void BroadcastModelState(const torch::jit::Module& model, comm::Communicator& comm) {
  torch::NoGradGuard no_grad;
  std::vector<comm::WorkPtr> works;
  for (const auto& parameter : model.parameters()) works.push_back(comm.Broadcast(parameter, 0));
  for (const auto& buffer : model.buffers()) works.push_back(comm.Broadcast(buffer, 0));
  comm::WaitAll(works, comm);
}

void AverageBuffers(const torch::jit::Module& model, comm::Communicator& comm) {
  std::vector<comm::WorkPtr> works;
  for (const auto& buffer : model.buffers()) {
    works.push_back(buffer.is_floating_point() ? comm.AllReduce(buffer, comm::ReduceOp::kAverage)
                                               : comm.Broadcast(buffer, 0));
  }
  comm::WaitAll(works, comm);
}

}  // namespace slim::ddp

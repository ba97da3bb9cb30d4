#include "runtime/ddp/module_sync.h"

namespace slim::ddp {

void BroadcastModelState(const torch::jit::Module& model, comm::Communicator& comm) {
  torch::NoGradGuard no_grad;
  std::vector<comm::WorkPtr> works;
  for (const auto& parameter : model.parameters()) works.push_back(comm.Broadcast(parameter, 0));
  for (const auto& buffer : model.buffers()) works.push_back(comm.Broadcast(buffer, 0));
  comm::WaitAll(works, comm);
}

std::map<std::string, torch::Tensor> GatherFloatingBuffers(const torch::jit::Module& model,
                                                           comm::Communicator& comm) {
  std::map<std::string, torch::Tensor> gathered;
  std::vector<comm::WorkPtr> works;
  for (const auto& item : model.named_buffers()) {
    if (!item.value.is_floating_point()) continue;
    std::vector<int64_t> shape = {comm.Size()};
    for (int64_t extent : item.value.sizes()) shape.push_back(extent);
    auto& all = gathered[item.name] = torch::empty(shape, item.value.options());
    works.push_back(comm.AllGather(item.value.contiguous(), all));
  }
  comm::WaitAll(works, comm);
  return gathered;
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

#include "runtime/comm/device_routing_communicator.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>

#include "runtime/base/errors.h"

namespace slim::comm {
namespace {

// Completes when both halves have.
class BothWork final : public Work {
 public:
  BothWork(WorkPtr first, WorkPtr second) : first_(std::move(first)), second_(std::move(second)) {}
  bool IsCompleted() override { return first_->IsCompleted() && second_->IsCompleted(); }
  void Wait(std::chrono::milliseconds timeout) override {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    first_->Wait(timeout);
    second_->Wait(std::max(std::chrono::milliseconds(0),
                           std::chrono::duration_cast<std::chrono::milliseconds>(
                               deadline - std::chrono::steady_clock::now())));
  }

 private:
  WorkPtr first_;
  WorkPtr second_;
};

}  // namespace

DeviceRoutingCommunicator::DeviceRoutingCommunicator(std::unique_ptr<Communicator> host,
                                                     std::unique_ptr<Communicator> device)
    : host_(std::move(host)), device_(std::move(device)) {}

Communicator& DeviceRoutingCommunicator::For(const torch::Tensor& tensor) {
  return tensor.defined() && !tensor.device().is_cpu() ? *device_ : *host_;
}

Communicator& DeviceRoutingCommunicator::For(const torch::Tensor& input,
                                             const torch::Tensor& output, const char* call) {
  if (input.defined() && output.defined() && input.device() != output.device()) {
    throw CommError(
        fmt::format("{}: the input is on {} and the output on {}; both must be on "
                    "one device",
                    call, input.device().str(), output.device().str()));
  }
  return For(input);
}

WorkPtr DeviceRoutingCommunicator::AllReduce(torch::Tensor tensor, ReduceOp op) {
  return For(tensor).AllReduce(std::move(tensor), op);
}

WorkPtr DeviceRoutingCommunicator::Broadcast(torch::Tensor tensor, int root) {
  return For(tensor).Broadcast(std::move(tensor), root);
}

WorkPtr DeviceRoutingCommunicator::AllGather(torch::Tensor input, torch::Tensor output) {
  return For(input, output, "allgather").AllGather(std::move(input), std::move(output));
}

WorkPtr DeviceRoutingCommunicator::ReduceScatter(torch::Tensor input, torch::Tensor output,
                                                 ReduceOp op) {
  return For(input, output, "reduce_scatter")
      .ReduceScatter(std::move(input), std::move(output), op);
}

WorkPtr DeviceRoutingCommunicator::Barrier() {
  auto host = host_->Barrier();
  return std::make_shared<BothWork>(std::move(host), device_->Barrier());
}

std::unique_ptr<Communicator> DeviceRoutingCommunicator::Split(int color, int key) {
  auto host = host_->Split(color, key);
  return std::make_unique<DeviceRoutingCommunicator>(std::move(host), device_->Split(color, key));
}

std::unique_ptr<Communicator> DeviceRoutingCommunicator::SplitNodeLocal() {
  auto host = host_->SplitNodeLocal();
  return std::make_unique<DeviceRoutingCommunicator>(std::move(host), device_->SplitNodeLocal());
}

std::unique_ptr<MessagePort> DeviceRoutingCommunicator::OpenMessagePort() {
  return host_->OpenMessagePort();
}

}  // namespace slim::comm

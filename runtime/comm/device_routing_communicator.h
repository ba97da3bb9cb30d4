// A communicator over two backends of the same ranks: collectives on host tensors go to
// one (MPI), collectives on device tensors to the other (NCCL for CUDA tensors). A CUDA
// run needs both: gradient buckets and model-state broadcasts are GPU tensors, while
// metrics, quantizer statistics, checkpoint gathers and the search's bookkeeping are host
// tensors.
//
// Contract: as Communicator. Every rank routes a collective by its tensors' device, so
// each backend sees the same collectives in the same order on every rank. Both backends
// span the same ranks in the same order. Barrier, Split, SplitNodeLocal and
// OpenMessagePort involve both backends (split, message port: the host's).
#pragma once

#include <memory>

#include "runtime/comm/communicator.h"

namespace slim::comm {

class DeviceRoutingCommunicator final : public Communicator {
 public:
  // REQUIRES: `host` and `device` span the same ranks, with the same rank numbers.
  DeviceRoutingCommunicator(std::unique_ptr<Communicator> host,
                            std::unique_ptr<Communicator> device);

  int Rank() const override { return host_->Rank(); }
  int Size() const override { return host_->Size(); }
  std::chrono::milliseconds DefaultTimeout() const override { return host_->DefaultTimeout(); }

  WorkPtr AllReduce(torch::Tensor tensor, ReduceOp op) override;
  WorkPtr Broadcast(torch::Tensor tensor, int root) override;
  // Throws CommError when `input` and `output` are on different devices.
  WorkPtr AllGather(torch::Tensor input, torch::Tensor output) override;
  // Throws CommError when `input` and `output` are on different devices.
  WorkPtr ReduceScatter(torch::Tensor input, torch::Tensor output, ReduceOp op) override;
  // Completes once every rank has reached it on both backends.
  WorkPtr Barrier() override;

  std::unique_ptr<Communicator> Split(int color, int key) override;
  std::unique_ptr<Communicator> SplitNodeLocal() override;
  std::unique_ptr<MessagePort> OpenMessagePort() override;

 private:
  // The backend for tensors on `tensor`'s device.
  Communicator& For(const torch::Tensor& tensor);
  // The backend for a collective from `input` into `output`; `call` names it in the error.
  Communicator& For(const torch::Tensor& input, const torch::Tensor& output, const char* call);

  std::unique_ptr<Communicator> host_;
  std::unique_ptr<Communicator> device_;
};

}  // namespace slim::comm

// Communicator backend over MPI for CPU tensors.
//
// Each communicator owns a progress thread that runs the submitted operations in
// submission order as MPI collectives; callers wait on the Work with a deadline. MPI must
// be initialised with MPI_THREAD_MULTIPLE (MpiSession does this).
#pragma once

#include <mpi.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "runtime/comm/communicator.h"

namespace slim::comm {

class MpiOpQueue;

class MpiCommunicator final : public Communicator {
 public:
  // Wraps `comm`. If `owned`, MPI_Comm_free is called on destruction.
  // REQUIRES: MPI initialised with MPI_THREAD_MULTIPLE.
  MpiCommunicator(MPI_Comm comm, bool owned, std::chrono::milliseconds default_timeout);
  ~MpiCommunicator() override;

  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  int Rank() const override { return rank_; }
  int Size() const override { return size_; }
  std::chrono::milliseconds DefaultTimeout() const override { return default_timeout_; }

  WorkPtr AllReduce(torch::Tensor tensor, ReduceOp op) override;
  WorkPtr Broadcast(torch::Tensor tensor, int root) override;
  WorkPtr AllGather(torch::Tensor input, torch::Tensor output) override;
  WorkPtr ReduceScatter(torch::Tensor input, torch::Tensor output, ReduceOp op) override;
  WorkPtr Barrier() override;

  std::unique_ptr<Communicator> Split(int color, int key) override;
  std::unique_ptr<Communicator> SplitNodeLocal() override;
  std::unique_ptr<MessagePort> OpenMessagePort() override;

 private:
  // Queues `run` (the MPI call) on the progress thread; see MpiOp.
  WorkPtr Enqueue(std::string description, std::function<void()> run);
  std::unique_ptr<Communicator> WrapSplit(MPI_Comm split);

  MPI_Comm comm_;
  bool owned_;
  int rank_ = 0;
  int size_ = 1;
  std::chrono::milliseconds default_timeout_;
  std::unique_ptr<MpiOpQueue> queue_;
};

}  // namespace slim::comm

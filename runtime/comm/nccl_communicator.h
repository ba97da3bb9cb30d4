// Communicator backend over NCCL for CUDA tensors (built with -DSLIM_WITH_NCCL=ON).
//
// The ranks of an MPI communicator form one NCCL communicator: rank 0's unique id travels
// over MPI. Every collective runs on the backend's own CUDA stream, after the work already
// queued on the compute stream (an event recorded there), and records a completion event;
// Wait() polls that event against the deadline, then orders the compute stream after it.
// A collective that misses its deadline, or an asynchronous NCCL error, aborts the NCCL
// communicator (ncclCommAbort) and throws CommError, so a lost peer ends the job with
// exit 4 within the bound. Split, SplitNodeLocal and OpenMessagePort go through the MPI
// communicator.
//
// Thread safety: as Communicator; operations are enqueued in call order under a mutex.
#pragma once

#include <mpi.h>

#include <chrono>
#include <memory>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/comm/communicator.h"

namespace slim::comm {

class NcclCommunicator final : public Communicator {
 public:
  // Joins the ranks of `comm` (duplicated, owned) on CUDA device `device`. Collective over
  // `comm`. Throws CommError when NCCL or CUDA fail, naming the call.
  NcclCommunicator(MPI_Comm comm, int device, std::chrono::milliseconds default_timeout);
  ~NcclCommunicator() override;

  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int Rank() const override { return rank_; }
  int Size() const override { return size_; }
  std::chrono::milliseconds DefaultTimeout() const override { return default_timeout_; }

  // Tensors must be contiguous CUDA tensors on this communicator's device.
  WorkPtr AllReduce(torch::Tensor tensor, ReduceOp op) override;
  WorkPtr Broadcast(torch::Tensor tensor, int root) override;
  WorkPtr AllGather(torch::Tensor input, torch::Tensor output) override;
  WorkPtr ReduceScatter(torch::Tensor input, torch::Tensor output, ReduceOp op) override;
  WorkPtr Barrier() override;

  std::unique_ptr<Communicator> Split(int color, int key) override;
  std::unique_ptr<Communicator> SplitNodeLocal() override;
  std::unique_ptr<MessagePort> OpenMessagePort() override;

  struct Handles;  // the NCCL communicator, the stream; shared with the Work handles

 private:
  // Runs `launch` (one NCCL call on the backend's stream) after the compute stream's
  // queued work; returns the Work waiting for it. `tensors` stay alive until it completes.
  WorkPtr Launch(std::string description, std::vector<torch::Tensor> tensors,
                 const std::function<int(void* stream)>& launch);

  MPI_Comm mpi_;
  int device_;
  int rank_ = 0;
  int size_ = 1;
  std::chrono::milliseconds default_timeout_;
  std::shared_ptr<Handles> handles_;
  std::mutex launch_mutex_;
};

}  // namespace slim::comm

// The communicator: collectives on tensors among the ranks of one group, in the shape of
// c10d's ProcessGroup. Backends: MpiCommunicator (CPU tensors).
//
// Contract for every collective: all ranks of the group call the same collectives in the
// same order with tensors of the same dtype and shape (broadcast/allreduce) or the shapes
// documented on the call. Calls return at once with a Work handle; the operation runs on
// the backend's own progress thread. Tensors passed in must stay alive and untouched
// until the Work has completed.
//
// Thread safety: a Communicator may be called from any thread; operations are executed in
// submission order.
#pragma once

#include <torch/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "runtime/comm/message_port.h"

namespace slim::comm {

enum class ReduceOp { kSum, kAverage, kMax, kMin };

// Name of a reduce op for messages: "sum", "avg", "max", "min".
const char* ReduceOpName(ReduceOp op);

// Handle on an operation in flight.
class Work {
 public:
  virtual ~Work() = default;
  // True once the operation finished (successfully or not). Never blocks.
  virtual bool IsCompleted() = 0;
  // Blocks until the operation finished or `timeout` passed. Throws CommError naming the
  // operation, the rank and the tensor sizes if it failed or did not finish in time.
  virtual void Wait(std::chrono::milliseconds timeout) = 0;
};

using WorkPtr = std::shared_ptr<Work>;

class Communicator {
 public:
  virtual ~Communicator() = default;

  // This process's rank in the group, 0 <= Rank() < Size().
  virtual int Rank() const = 0;
  // Number of ranks in the group.
  virtual int Size() const = 0;
  // The deadline Wait() uses when the caller gives none.
  virtual std::chrono::milliseconds DefaultTimeout() const = 0;

  // In place: every element of `tensor` becomes op over all ranks.
  virtual WorkPtr AllReduce(torch::Tensor tensor, ReduceOp op) = 0;
  // In place: `tensor` on every rank becomes root's `tensor`.
  virtual WorkPtr Broadcast(torch::Tensor tensor, int root) = 0;
  // `output` (Size() x input.numel() elements, contiguous) receives every rank's `input`
  // in rank order.
  virtual WorkPtr AllGather(torch::Tensor input, torch::Tensor output) = 0;
  // `input` holds Size() equal chunks; rank r's `output` (one chunk) receives op over all
  // ranks of chunk r.
  virtual WorkPtr ReduceScatter(torch::Tensor input, torch::Tensor output, ReduceOp op) = 0;
  // Completes once every rank has called it.
  virtual WorkPtr Barrier() = 0;

  // A new communicator over the ranks that pass the same `color`, ordered by `key`
  // (MPI_Comm_split semantics). Collective over this communicator.
  virtual std::unique_ptr<Communicator> Split(int color, int key) = 0;
  // The ranks of this group that share this node (MPI_COMM_TYPE_SHARED). Collective.
  virtual std::unique_ptr<Communicator> SplitNodeLocal() = 0;
  // A port for point-to-point messages among this group's ranks, apart from its
  // collectives. Collective over this communicator.
  virtual std::unique_ptr<MessagePort> OpenMessagePort() = 0;

  // Convenience: AllReduce + Wait(DefaultTimeout()).
  void AllReduceSync(torch::Tensor tensor, ReduceOp op) {
    AllReduce(std::move(tensor), op)->Wait(DefaultTimeout());
  }
  // Convenience: Broadcast + Wait(DefaultTimeout()).
  void BroadcastSync(torch::Tensor tensor, int root) {
    Broadcast(std::move(tensor), root)->Wait(DefaultTimeout());
  }
};

// Waits on every handle in order with the communicator's default timeout.
void WaitAll(const std::vector<WorkPtr>& works, const Communicator& comm);

}  // namespace slim::comm

// Data-parallel gradient averaging with communication overlapped with backward.
//
// Parameters are packed, in reverse registration order (roughly the order backward
// produces their gradients), into buckets of at most bucket_cap_mb per dtype. A hook on
// each parameter's gradient accumulator marks it ready; once a bucket is complete its
// flattened gradients are all-reduced (average) while backward continues. Buckets are
// always launched in bucket order, so every rank issues the same sequence of collectives
// whatever order its hooks fire in. FinishGradientSync() launches what is left (unused
// parameters contribute zeros), waits, and writes the averages back into .grad.
//
// Thread safety: hooks may fire on autograd threads; everything else is called from the
// training thread.
#pragma once

#include <torch/types.h>

#include <memory>
#include <vector>

#include "runtime/comm/communicator.h"

namespace torch::autograd {
struct Node;
}

namespace slim::ddp {

class GradientBucketer {
 public:
  // `parameters`: the trainable leaf tensors, in the same order on every rank.
  // REQUIRES: every parameter requires grad; `comm` outlives this object.
  GradientBucketer(std::vector<torch::Tensor> parameters, comm::Communicator& comm,
                   double bucket_cap_mb);
  ~GradientBucketer();
  GradientBucketer(const GradientBucketer&) = delete;
  GradientBucketer& operator=(const GradientBucketer&) = delete;

  // Whether the next backward passes average gradients. Turn off for the inner
  // micro-steps of gradient accumulation; turn on before the last one.
  void SetSyncEnabled(bool enabled);
  // Completes the averaging of this backward pass. Call after backward, before the
  // optimizer step, on every rank, when sync is enabled.
  void FinishGradientSync();

  // Number of buckets (same on every rank), for logging and benchmarks.
  size_t BucketCount() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators_;
};

}  // namespace slim::ddp

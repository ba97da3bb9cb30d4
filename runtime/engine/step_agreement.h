// The per-step decision, identical on every rank, whether to write a checkpoint, whether
// to stop, whether the step's loss was finite everywhere and whether rank 0's checkpoint
// writer failed for good: one 4-element allreduce (max) per step of {a stop signal arrived
// on this rank, rank 0's clock says a timed checkpoint is due, this rank's loss was NaN or
// Inf, this rank's checkpoint writer failed with no checkpoint left}. It runs right after the
// step, when the gradient sync has just aligned the ranks, so nobody waits in it.
#pragma once

#include <torch/types.h>

#include <chrono>

#include "runtime/comm/communicator.h"
#include "runtime/config/options.h"

namespace slim::engine {

class StepAgreement {
 public:
  struct Decision {
    bool checkpoint = false;
    bool stop = false;  // a stop signal arrived on some rank: checkpoint, then exit 75
    bool loss_not_finite = false;  // on some rank: the weights must not be checkpointed
    bool checkpoint_failed = false;  // the run cannot go on without a checkpoint
  };

  StepAgreement(const config::CheckpointOptions& options, comm::Communicator& comm);

  // Decides for the boundary after step `steps_done`, whose loss on this rank was
  // `local_loss`; `checkpoint_failed` when this rank's writer failed for good. Collective.
  Decision Decide(int64_t steps_done, double local_loss, bool checkpoint_failed);
  // Restarts the every_minutes clock (after any checkpoint).
  void MarkCheckpointed() { last_checkpoint_ = std::chrono::steady_clock::now(); }

 private:
  const config::CheckpointOptions& options_;
  comm::Communicator& comm_;
  torch::Tensor flags_;
  bool signal_reported_ = false;
  std::chrono::steady_clock::time_point last_checkpoint_ = std::chrono::steady_clock::now();
};

}  // namespace slim::engine

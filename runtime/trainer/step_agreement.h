// The per-step decision, identical on every rank, whether to write a checkpoint and
// whether to stop: one 2-element allreduce (max) per step of {a stop signal arrived on
// this rank, rank 0's clock says a timed checkpoint is due}. It is started before the
// step's forward pass and collected after the optimizer step, so it hides behind the
// step.
#pragma once

#include <torch/types.h>

#include <chrono>

#include "runtime/comm/communicator.h"
#include "runtime/config/options.h"

namespace slim::trainer {

class StepAgreement {
 public:
  struct Decision {
    bool checkpoint = false;
    bool stop = false;  // a stop signal arrived on some rank: checkpoint, then exit 75
  };

  StepAgreement(const config::CheckpointOptions& options, comm::Communicator& comm);

  // Starts the step's allreduce. Collective.
  void Launch();
  // Waits for it and decides for the boundary after step `steps_done`. Collective.
  Decision Collect(int64_t steps_done);
  // Restarts the every_minutes clock (after any checkpoint).
  void MarkCheckpointed() { last_checkpoint_ = std::chrono::steady_clock::now(); }

 private:
  const config::CheckpointOptions& options_;
  comm::Communicator& comm_;
  torch::Tensor flags_;
  comm::WorkPtr work_;
  bool signal_reported_ = false;
  std::chrono::steady_clock::time_point last_checkpoint_ = std::chrono::steady_clock::now();
};

}  // namespace slim::trainer

// Where a resumed run continues in the data and in its step count, from the progress a
// checkpoint recorded and the batch arithmetic of the run resuming it.
#pragma once

#include <cstdint>
#include <string>

#include "runtime/checkpoint/checkpoint_state.h"

namespace slim::engine {

struct ResumePoint {
  int64_t step = 0;         // optimizer steps already done
  int64_t micro_batch = 0;  // micro-batches per rank already consumed
  // True when the run continues exactly where the checkpoint stopped: the same samples
  // per micro-batch over all ranks, the same accumulation and the same epoch length.
  bool exact = true;
  // For a user, when not exact: what changed and where the run continues.
  std::string note;
};

// With the same global micro-batch (ranks x batch_size), accumulate_steps and epoch
// length, the run continues at the saved step and micro-batch: the global data order is
// unchanged whatever the rank count. Otherwise it continues in the same epoch at the
// first micro-batch that starts at or after the saved sample offset, rounded up to a
// whole optimizer step; the step count is re-derived from it, so step-based schedules
// keep their place in the epoch-based plan.
ResumePoint ResumePointFor(const checkpoint::TrainingProgress& saved, int64_t batches_per_epoch,
                           int64_t global_micro_batch, int64_t accumulate_steps);

}  // namespace slim::engine

#include "runtime/engine/resume_point.h"

namespace slim::engine {

namespace {

int64_t CeilDiv(int64_t numerator, int64_t denominator) {
  return (numerator + denominator - 1) / denominator;
}

}  // namespace

ResumePoint ResumePointFor(const checkpoint::TrainingProgress& saved, int64_t batches_per_epoch,
                           int64_t global_micro_batch, int64_t accumulate_steps) {
  ResumePoint point;
  if (saved.global_micro_batch == global_micro_batch &&
      saved.accumulate_steps == accumulate_steps &&
      saved.batches_per_epoch == batches_per_epoch) {
    point.step = saved.step;
    point.micro_batch = saved.micro_batch;
    return point;
  }
  point.exact = false;
  const int64_t epoch = saved.micro_batch / saved.batches_per_epoch;
  const int64_t offset = (saved.micro_batch % saved.batches_per_epoch) * saved.global_micro_batch;
  const int64_t micro_batch = epoch * batches_per_epoch + CeilDiv(offset, global_micro_batch);
  point.step = CeilDiv(micro_batch, accumulate_steps);
  point.micro_batch = point.step * accumulate_steps;
  const int64_t resumed_epoch = point.micro_batch / batches_per_epoch;
  const int64_t resumed_offset = (point.micro_batch % batches_per_epoch) * global_micro_batch;
  point.note = "the batch arithmetic changed (samples per micro-batch over all ranks " +
               std::to_string(saved.global_micro_batch) + " -> " +
               std::to_string(global_micro_batch) + ", accumulate_steps " +
               std::to_string(saved.accumulate_steps) + " -> " +
               std::to_string(accumulate_steps) + ", micro-batches per epoch " +
               std::to_string(saved.batches_per_epoch) + " -> " +
               std::to_string(batches_per_epoch) + "): the checkpoint stopped at sample " +
               std::to_string(offset) + " of epoch " + std::to_string(epoch) +
               "; continuing at sample " + std::to_string(resumed_offset) + " of epoch " +
               std::to_string(resumed_epoch) + " as step " + std::to_string(point.step) +
               " (was " + std::to_string(saved.step) +
               "). Keep ranks x Global.batch_size unchanged to continue exactly";
  return point;
}

}  // namespace slim::engine

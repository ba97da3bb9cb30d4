// Keeping the replicas of a model identical across ranks.
// Both functions are collective: every rank calls them at the same point.
#pragma once

#include <torch/script.h>

#include <map>
#include <string>

#include "runtime/comm/communicator.h"

namespace slim::ddp {

// Every parameter and buffer becomes rank 0's (called once before training).
void BroadcastModelState(const torch::jit::Module& model, comm::Communicator& comm);

// Every rank's floating-point buffers (BatchNorm running statistics), by name, stacked in
// rank order ([ranks, ...]), without changing the model: the checkpoint's view of them.
std::map<std::string, torch::Tensor> GatherFloatingBuffers(const torch::jit::Module& model,
                                                           comm::Communicator& comm);

// Floating-point buffers (BatchNorm running statistics) become their average over the
// ranks, so every rank evaluates and exports the same model; integer buffers (batch
// counters) become rank 0's.
void AverageBuffers(const torch::jit::Module& model, comm::Communicator& comm);

}  // namespace slim::ddp

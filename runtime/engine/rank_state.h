// Per-rank values a checkpoint keeps for every rank: gathering them at save time and
// picking this rank's one at resume.
#pragma once

#include <torch/types.h>

#include <vector>

#include "runtime/comm/communicator.h"

namespace slim::engine {

// Every rank's CPU generator state as the rows of a (ranks x bytes) uint8 tensor, on
// every rank. Collective.
torch::Tensor GatherCpuGeneratorStates(comm::Communicator& comm);

// Sets this process's CPU generator to row `rank` of `states`. Returns false (generator
// unchanged) when the checkpoint was written by fewer ranks.
bool RestoreCpuGeneratorState(const torch::Tensor& states, int rank);

// `value` of every rank, in rank order, on every rank. Collective.
std::vector<double> GatherValues(double value, comm::Communicator& comm);

}  // namespace slim::engine

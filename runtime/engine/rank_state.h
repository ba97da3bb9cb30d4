// Per-rank values a checkpoint keeps for every rank: gathering them at save time and
// picking this rank's one at resume.
#pragma once

#include <ATen/core/Generator.h>
#include <torch/types.h>

#include <vector>

#include "runtime/comm/communicator.h"

namespace slim::engine {

// The default random generator of `device`: the CPU's, or a CUDA device's (which dropout
// and random ops on that device draw from).
at::Generator DefaultGenerator(torch::Device device);

// Every rank's state of `generator` as the rows of a (ranks x bytes) uint8 tensor on the
// CPU, on every rank. Collective.
torch::Tensor GatherGeneratorStates(at::Generator generator, comm::Communicator& comm);

// Sets `generator` to row `rank` of `states`. Returns false (generator unchanged) when
// the checkpoint was written by fewer ranks or holds no states.
bool RestoreGeneratorState(at::Generator generator, const torch::Tensor& states, int rank);

// `value` of every rank, in rank order, on every rank. Collective.
std::vector<double> GatherValues(double value, comm::Communicator& comm);

}  // namespace slim::engine

// Checking that every rank computed the same pruning decision (masks, kept channels) from
// its replicated weights: one allreduce of a hash of the decision's bytes.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "runtime/comm/communicator.h"

namespace slim::prune {

// Collective. Throws CommError "<what> differ between ranks (rank r holds hash h); ..."
// when the bytes of `tensors` are not the same on every rank.
void CheckSameOnAllRanks(const std::vector<torch::Tensor>& tensors, comm::Communicator& comm,
                         const std::string& what);

}  // namespace slim::prune

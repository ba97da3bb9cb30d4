// ZeRO stage 1 (TrainConfig.sharding_config): each rank keeps the optimizer state of only
// its share of the parameters and steps only those; the updated parameters then travel
// from their owner to every rank.
//
// The share is made of whole parameters, dealt largest first to the least loaded rank, as
// PyTorch's ZeroRedundancyOptimizer does, rather than DeepSpeed's slices of one flattened
// buffer: the optimizer stays a plain torch::optim optimizer over the model's own tensors,
// so every hook that touches its state by parameter (pruning masks on momentum, channel
// removal slicing Adam moments) works unchanged, each rank on the state it holds, and the
// parameters come out bit-identical to unsharded data parallelism. Gradients stay
// all-reduced in buckets during backward (stage 1 keeps whole gradients on every rank).
//
// Thread safety: training thread only. Every method marked collective is called by all
// ranks in the same order.
#pragma once

#include <torch/optim.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "runtime/comm/communicator.h"

namespace slim::engine {

// Owner rank of each of `bytes.size()` parameters: largest first, each to the rank with
// the fewest bytes so far (ties: the lower parameter index, the lower rank).
std::vector<int> BalancedOwners(const std::vector<int64_t>& bytes, int ranks);

class OptimizerSharding {
 public:
  // Deals `optimizer`'s parameters (every group, in group order) over `comm` and drops the
  // state of the parameters this rank does not own. `type` is the TrainConfig optimizer
  // type. Collective. REQUIRES: the same parameter shapes on every rank; `optimizer` and
  // `comm` outlive this object.
  OptimizerSharding(torch::optim::Optimizer& optimizer, std::string type,
                    comm::Communicator& comm);

  // Deals the parameters again after the optimizer's groups changed (a strategy changed
  // the model's structure) or after its state was restored in full (resume); state moves
  // to the new owners. Collective.
  void Reshard();
  // Removes the gradients of the parameters other ranks own, so that the optimizer step
  // touches only this rank's share. Call after clipping, before the step.
  void DropForeignGradients();
  // Sends each updated parameter from its owner to every rank. Collective; call after
  // the step.
  void ShareUpdatedParameters();
  // Gives rank 0 the state of every parameter, in full, for a checkpoint; Reshard()
  // afterwards returns to one share per rank. Collective.
  void GatherStateOnRankZero();

  // How many of the optimizer's parameters this rank owns.
  int64_t OwnedParameterCount() const;

 private:
  // Moves state so that rank r holds parameter i's state exactly when keep(r, i). A rank
  // that holds state it should not keep drops it. Collective.
  void Redistribute(const std::function<bool(int rank, size_t index)>& keep);

  torch::optim::Optimizer& optimizer_;
  std::string type_;
  comm::Communicator& comm_;
  std::vector<int> owners_;  // by index into Parameters()
};

// Bytes of optimizer state `optimizer` holds, over every parameter it has state for.
int64_t OptimizerStateBytes(const torch::optim::Optimizer& optimizer);

}  // namespace slim::engine

#include "runtime/engine/optimizer_sharding.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <utility>

#include <fmt/format.h>

#include "runtime/base/errors.h"
#include "runtime/base/torch_compat.h"
#include "runtime/checkpoint/state_capture.h"
#include "runtime/engine/optimizer_factory.h"

namespace slim::engine {

namespace {

// The tensors a rank receives one parameter's state into, shaped as the holder sends them.
checkpoint::TensorMap EmptyState(const std::string& type, const torch::Tensor& parameter) {
  const auto like = torch::zeros(parameter.sizes(), parameter.options().device(torch::kCPU));
  if (type == "Adam" || type == "AdamW") {
    return {{"step", torch::zeros({}, torch::kInt64)}, {"exp_avg", like}, {"exp_avg_sq", like.clone()}};
  }
  return {{"momentum_buffer", like}};
}

std::string ParameterLabel(size_t index, const torch::Tensor& parameter) {
  return fmt::format("#{} (shape [{}])", index, fmt::join(parameter.sizes(), ", "));
}

}  // namespace

std::vector<int> BalancedOwners(const std::vector<int64_t>& bytes, int ranks) {
  std::vector<size_t> order(bytes.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return bytes[a] > bytes[b]; });
  std::vector<int64_t> load(ranks, 0);
  std::vector<int> owners(bytes.size(), 0);
  for (size_t index : order) {
    const auto lightest = std::min_element(load.begin(), load.end());
    owners[index] = static_cast<int>(lightest - load.begin());
    *lightest += bytes[index];
  }
  return owners;
}

int64_t OptimizerStateBytes(const torch::optim::Optimizer& optimizer) {
  int64_t bytes = 0;
  for (const auto& [key, state] : optimizer.state()) {
    checkpoint::VisitParamState(*state, key, [&](const std::string&, const torch::Tensor& tensor) {
      bytes += tensor.numel() * static_cast<int64_t>(tensor.element_size());
    });
  }
  return bytes;
}

OptimizerSharding::OptimizerSharding(torch::optim::Optimizer& optimizer, std::string type,
                                     comm::Communicator& comm)
    : optimizer_(optimizer), type_(std::move(type)), comm_(comm) {
  Reshard();
}

void OptimizerSharding::Reshard() {
  std::vector<int64_t> bytes;
  for (const auto& parameter : OptimizerParameters(optimizer_)) {
    bytes.push_back(parameter.numel() * static_cast<int64_t>(parameter.element_size()));
  }
  owners_ = BalancedOwners(bytes, comm_.Size());
  Redistribute([this](int rank, size_t index) { return owners_[index] == rank; });
}

void OptimizerSharding::GatherStateOnRankZero() {
  Redistribute([this](int rank, size_t index) { return rank == 0 || owners_[index] == rank; });
}

int64_t OptimizerSharding::OwnedParameterCount() const {
  return std::count(owners_.begin(), owners_.end(), comm_.Rank());
}

void OptimizerSharding::Redistribute(const std::function<bool(int rank, size_t index)>& keep) {
  const auto parameters = OptimizerParameters(optimizer_);
  const int rank = comm_.Rank();
  const auto count = static_cast<int64_t>(parameters.size());
  auto& states = optimizer_.state();
  std::vector<std::string> keys;
  std::vector<bool> held;
  // Row 0: the highest rank holding parameter i's state, plus one (0: none holds it).
  // Row 1: 1 when some rank must keep the state and lacks it.
  auto votes = torch::zeros({2, count}, torch::kInt64);
  auto vote = votes.accessor<int64_t, 2>();
  for (int64_t i = 0; i < count; ++i) {
    keys.push_back(compat::OptimizerStateKey(parameters[i]));
    held.push_back(states.count(keys.back()) > 0);
    if (held.back()) vote[0][i] = rank + 1;
    if (keep(rank, i) && !held.back()) vote[1][i] = 1;
  }
  comm_.AllReduceSync(votes, comm::ReduceOp::kMax);

  // The transfers go in batches of about kBatchBytes, so that a rank that only passes
  // state on (a checkpoint gathering on rank 0) never holds more than one batch of it.
  constexpr int64_t kBatchBytes = 64 << 20;
  std::vector<comm::WorkPtr> works;
  std::vector<std::pair<int64_t, checkpoint::TensorMap>> received;
  int64_t batch_bytes = 0;
  const auto finish_batch = [&] {
    comm::WaitAll(works, comm_);
    for (const auto& [i, tensors] : received) {
      if (keep(rank, i) && !held[i]) {
        states[keys[i]] = checkpoint::RestoreParamState(tensors, type_, parameters[i].device());
      }
    }
    works.clear();
    received.clear();
    batch_bytes = 0;
  };
  for (int64_t i = 0; i < count; ++i) {
    if (vote[0][i] == 0 || vote[1][i] == 0) continue;  // no state, or no rank lacks it
    const int source = static_cast<int>(vote[0][i] - 1);
    auto tensors = EmptyState(type_, parameters[i]);
    if (rank == source) {
      auto own = checkpoint::CaptureParamState(*states.at(keys[i]), ParameterLabel(i, parameters[i]));
      if (own.size() != tensors.size()) {
        throw ModelError(fmt::format(
            "sharding_config: the {} state of parameter {} holds {} tensors where {} were "
            "expected (amsgrad is not supported with sharding)",
            type_, ParameterLabel(i, parameters[i]), own.size(), tensors.size()));
      }
      tensors = std::move(own);
    }
    for (auto& [name, tensor] : tensors) {
      works.push_back(comm_.Broadcast(tensor, source));
      batch_bytes += tensor.numel() * static_cast<int64_t>(tensor.element_size());
    }
    received.emplace_back(i, std::move(tensors));
    if (batch_bytes >= kBatchBytes) finish_batch();
  }
  finish_batch();

  for (int64_t i = 0; i < count; ++i) {
    if (held[i] && !keep(rank, i)) states.erase(keys[i]);
  }
}

void OptimizerSharding::DropForeignGradients() {
  const auto parameters = OptimizerParameters(optimizer_);
  for (size_t i = 0; i < parameters.size(); ++i) {
    if (owners_[i] != comm_.Rank()) parameters[i].mutable_grad() = torch::Tensor();
  }
}

void OptimizerSharding::ShareUpdatedParameters() {
  torch::NoGradGuard no_grad;
  const auto parameters = OptimizerParameters(optimizer_);
  // One broadcast per owner and dtype, of that owner's parameters flattened in order.
  std::map<std::pair<int, int>, std::vector<size_t>> shares;
  for (size_t i = 0; i < parameters.size(); ++i) {
    shares[{owners_[i], static_cast<int>(parameters[i].scalar_type())}].push_back(i);
  }
  std::vector<comm::WorkPtr> works;
  std::vector<std::pair<torch::Tensor, const std::vector<size_t>*>> incoming;
  for (const auto& [share, indices] : shares) {
    const int owner = share.first;
    torch::Tensor flat;
    if (owner == comm_.Rank()) {
      std::vector<torch::Tensor> pieces;
      for (size_t i : indices) pieces.push_back(parameters[i].detach().reshape({-1}));
      flat = torch::cat(pieces);
    } else {
      int64_t numel = 0;
      for (size_t i : indices) numel += parameters[i].numel();
      flat = torch::empty({numel}, parameters[indices.front()].options());
      incoming.emplace_back(flat, &indices);
    }
    works.push_back(comm_.Broadcast(flat, owner));
  }
  comm::WaitAll(works, comm_);
  for (const auto& [flat, indices] : incoming) {
    int64_t offset = 0;
    for (size_t i : *indices) {
      const auto& parameter = parameters[i];
      parameter.copy_(flat.narrow(0, offset, parameter.numel()).view(parameter.sizes()));
      offset += parameter.numel();
    }
  }
}

}  // namespace slim::engine

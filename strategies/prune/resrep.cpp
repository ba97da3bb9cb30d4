#include "strategies/prune/resrep.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <tuple>

#include "export/model_measure.h"
#include "runtime/base/errors.h"
#include "runtime/base/logging.h"
#include "strategies/graph/conv_groups.h"
#include "strategies/prune/channel_removal.h"
#include "strategies/prune/prune_config.h"
#include "strategies/prune/rank_agreement.h"

namespace slim::prune {

namespace {

constexpr const char* kSection = "ResRep";
constexpr const char* kTargetReachedKey = "target_reached";
// The share of the run by which the automatic mask schedule reaches the target.
constexpr double kMaskingEnds = 0.25;

// True when channel c of `group` is row c of `weight` (no permutation in between).
bool RowsAreChannels(const ChannelGraph& graph, const ChannelGroup& group, const std::string& weight) {
  for (size_t c = 0; c < group.channels.size(); ++c) {
    for (const auto& slice : group.channels[c].slices) {
      const auto& axis = graph.axes[slice.axis];
      if (axis.tensor == weight && axis.dim == 0 && slice.begin != static_cast<int64_t>(c)) return false;
    }
  }
  return true;
}

std::string MaskKey(const ChannelGroup& group) { return group.name + "@masked"; }

}  // namespace

strategies::StrategyRegistration ResRep::Registration() {
  strategies::StrategyRegistration registration;
  registration.section = kSection;
  registration.order = strategies::PassOrder::kStructure;
  registration.combines_with = {"Distillation", "MultiTeacherDistillation"};
  const std::string second_run =
      "ResRep merges its compactors into the convolutions only at the end: quantize its "
      "model.pt in a second run";
  registration.refusals = {{"QuantAware", second_run}, {"QuantPost", second_run}};
  registration.parse = strategies::ParserOf(&ParseResRep);
  registration.create = strategies::FactoryOf<ResRep, ResRepOptions>();
  return registration;
}

ResRep::ResRep(const ResRepOptions& options, const strategies::StrategyEnvironment& environment)
    : options_(options), comm_(*environment.comm), example_(environment.context.example) {}

std::string ResRep::Name() const { return kSection; }

void ResRep::Prepare(torch::jit::Module& model) {
  graph::ReadConvolutionGroupsFromAttributes(model);
  graph_ = BuildChannelGraph(model, example_);
  input_model_ = model.clone();
  originals_ = AxisTensors(input_model_, graph_);
  macs_before_ = exporting::CountModelMacs(model, example_).total;
  std::map<std::string, graph::ConvBatchNorm> pairs;
  for (const auto& pair : graph::FindConvBatchNorms(model)) pairs.emplace(pair.conv_path, pair);
  const std::set<std::string> depthwise(graph_.depthwise_weights.begin(), graph_.depthwise_weights.end());
  std::vector<graph::ConvBatchNorm> selected;
  std::vector<size_t> owner;  // per selected pair, its entry in groups_
  for (size_t g = 0; g < graph_.groups.size(); ++g) {
    const auto& group = graph_.groups[g];
    std::vector<graph::ConvBatchNorm> group_pairs;
    for (const auto& producer : group.producers) {
      const auto found = pairs.find(SplitTensorPath(producer).first);
      if (found == pairs.end() || depthwise.count(producer) ||
          TensorAt(model, producer).size(0) != static_cast<int64_t>(group.channels.size()) ||
          !RowsAreChannels(graph_, group, producer)) {
        group_pairs.clear();
        break;
      }
      group_pairs.push_back(found->second);
    }
    if (group_pairs.empty()) continue;
    for (const auto& pair : group_pairs) {
      selected.push_back(pair);
      owner.push_back(groups_.size());
    }
    groups_.push_back(g);
  }
  if (groups_.empty()) {
    throw ModelError(fmt::format("{}: no prunable channel group of the model has producers that are "
                                 "convolutions each followed by a BatchNorm, where compactors go; "
                                 "prune such a model with ChannelPrune, or its Transformer "
                                 "encoder layers with TransformerPrune",
                                 kSection));
  }
  masked_.assign(groups_.size(), {});
  // With every candidate masked the order does not matter: a uniform metric.
  std::vector<std::vector<double>> uniform;
  for (const auto g : groups_) uniform.emplace_back(graph_.groups[g].channels.size(), 0.0);
  const double least =
      static_cast<double>(MacsWithout(SmallestChannels(uniform, CandidateCount(uniform))));
  if (least > options_.flops_target * static_cast<double>(macs_before_)) {
    throw ConfigError(fmt::format(
        "{}: {} cannot be reached: keeping num_at_least {} channel(s) in every group with "
        "compactors leaves {:.3f} of the MACs (groups kept whole and convolutions without a "
        "BatchNorm bound it); set flops_target to at least {:.3f} or lower num_at_least",
        options_.flops_target_at, options_.flops_target, options_.num_at_least,
        least / macs_before_, least / macs_before_));
  }
  const auto compactors = InsertCompactors(model, selected);
  compactors_.assign(groups_.size(), {});
  for (size_t k = 0; k < compactors.size(); ++k) compactors_[owner[k]].push_back(compactors[k]);
  model_ = model;
  logging::Info(fmt::format("{}: compactors after {} convolution(s) in {} group(s), {} group(s) kept "
                            "whole; target {} of {:.2f} M MACs",
                            kSection, compactors.size(), groups_.size(),
                            graph_.groups.size() - groups_.size() + graph_.fixed.size(),
                            options_.flops_target, macs_before_ / 1e6));
}

std::vector<strategies::ParameterGroup> ResRep::ParameterGroups() const {
  if (options_.compactor_lr <= 0) return {};
  strategies::ParameterGroup group;
  for (const auto& entry : compactors_) {
    for (const auto& compactor : entry) group.parameters.push_back(TensorAt(model_, compactor.weight));
  }
  group.learning_rate = options_.compactor_lr;
  return {group};
}

void ResRep::OnTrainBegin(strategies::HookContext& context) {
  const int64_t total = context.total_steps;
  before_mask_ = options_.before_mask_iters >= 0 ? options_.before_mask_iters : total / 20;
  interval_ = options_.mask_interval > 0 ? options_.mask_interval : std::max<int64_t>(1, total / 50);
  last_event_ = std::max(before_mask_, static_cast<int64_t>(kMaskingEnds * total));
  logging::Info(fmt::format("{}: masks from step {}, every {} step(s), {}", kSection, before_mask_,
                            interval_,
                            options_.num_per_mask > 0
                                ? fmt::format("{} channel(s) at a time", options_.num_per_mask)
                                : fmt::format("as many at a time as reach the target by step {}",
                                              last_event_)));
}

int64_t ResRep::NextIncrement(const std::vector<std::vector<double>>& metric, int64_t step,
                              int64_t candidates) const {
  if (options_.num_per_mask > 0) return options_.num_per_mask;
  const int64_t needed = CountForTarget(metric, MaskedCount(), candidates);
  const int64_t events_left = std::max<int64_t>(1, (last_event_ - step) / interval_ + 1);
  return std::max<int64_t>(1, (needed - MaskedCount() + events_left - 1) / events_left);
}

void ResRep::OnBeforeOptimizerStep(strategies::HookContext& context) {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < groups_.size(); ++i) {
    for (const auto& compactor : compactors_[i]) {
      auto weight = TensorAt(context.model, compactor.weight);
      auto gradient = weight.mutable_grad();
      if (!gradient.defined()) continue;
      const auto rows = weight.detach().flatten(1);
      auto gradient_rows = gradient.view({rows.size(0), rows.size(1)});
      for (const auto c : masked_[i]) {
        gradient_rows[c].copy_(rows[c] / rows[c].norm().clamp_min(1e-12) * options_.lasso_strength);
      }
    }
  }
}

void ResRep::OnAfterOptimizerStep(strategies::HookContext& context) {
  if (target_reached_ || context.step < before_mask_ || (context.step - before_mask_) % interval_ != 0) {
    return;
  }
  const auto metric = MergedNorms(context.model, comm_);
  const int64_t candidates = CandidateCount(metric);
  const int64_t high = std::min(MaskedCount() + NextIncrement(metric, context.step, candidates),
                                candidates);
  const int64_t count = CountForTarget(metric, MaskedCount(), high);
  masked_ = SmallestChannels(metric, count);
  const double macs = static_cast<double>(MacsWithout(masked_));
  target_reached_ = macs <= options_.flops_target * static_cast<double>(macs_before_);
  std::vector<torch::Tensor> decision;
  for (const auto& channels : masked_) decision.push_back(torch::tensor(channels, torch::kInt64));
  CheckSameOnAllRanks(decision, comm_, std::string(kSection) + ": the masked channels");
  logging::Info(fmt::format("{}: step {}: {} channel(s) masked, {:.3f} of the MACs{}", kSection,
                            context.step, count, macs / macs_before_,
                            target_reached_ ? " (target reached)" : ""));
}

std::vector<std::vector<int64_t>> ResRep::SmallestChannels(const std::vector<std::vector<double>>& metric,
                                                           int64_t count) const {
  std::vector<std::tuple<double, size_t, int64_t>> order;
  for (size_t i = 0; i < metric.size(); ++i) {
    for (size_t c = 0; c < metric[i].size(); ++c) order.emplace_back(metric[i][c], i, c);
  }
  std::sort(order.begin(), order.end());
  std::vector<std::vector<int64_t>> chosen(metric.size());
  int64_t taken = 0;
  for (const auto& [value, i, c] : order) {
    if (taken >= count) break;
    if (static_cast<int64_t>(metric[i].size() - chosen[i].size()) <= options_.num_at_least) continue;
    chosen[i].push_back(c);
    ++taken;
  }
  for (auto& channels : chosen) std::sort(channels.begin(), channels.end());
  return chosen;
}

int64_t ResRep::MacsWithout(const std::vector<std::vector<int64_t>>& removed) const {
  std::vector<std::vector<int64_t>> per_group(graph_.groups.size());
  for (size_t i = 0; i < groups_.size(); ++i) per_group[groups_[i]] = removed[i];
  auto copy = input_model_.clone();
  RemoveChannels(copy, originals_, KeptIndices(graph_, originals_, per_group), graph_.depthwise_weights);
  return exporting::CountModelMacs(copy, example_).total;
}

int64_t ResRep::CountForTarget(const std::vector<std::vector<double>>& metric, int64_t low,
                               int64_t high) const {
  const double target = options_.flops_target * static_cast<double>(macs_before_);
  const auto meets = [&](int64_t count) {
    return static_cast<double>(MacsWithout(SmallestChannels(metric, count))) <= target;
  };
  if (!meets(high)) return high;
  while (low < high) {
    const int64_t middle = low + (high - low) / 2;
    if (meets(middle)) {
      high = middle;
    } else {
      low = middle + 1;
    }
  }
  return low;
}

std::vector<std::vector<double>> ResRep::RowNorms(const torch::jit::Module& model) const {
  std::vector<std::vector<double>> norms;
  for (const auto& entry : compactors_) {
    torch::Tensor sum;
    for (const auto& compactor : entry) {
      const auto rows = TensorAt(model, compactor.weight).detach().flatten(1).norm(2, 1).to(torch::kDouble).cpu();
      sum = sum.defined() ? sum + rows : rows;
    }
    norms.push_back(std::vector<double>(sum.data_ptr<double>(), sum.data_ptr<double>() + sum.numel()));
  }
  return norms;
}

std::vector<std::vector<double>> ResRep::MergedNorms(const torch::jit::Module& model,
                                                     comm::Communicator& comm) const {
  std::vector<torch::Tensor> sums;
  for (const auto& entry : compactors_) {
    torch::Tensor sum;
    for (const auto& compactor : entry) {
      const auto channel = MergedFilterNorms(model, compactor);
      sum = sum.defined() ? sum + channel : channel;
    }
    sums.push_back(sum);
  }
  // The BatchNorms' running statistics differ between the ranks: average the norms.
  auto all = torch::cat(sums);
  comm.AllReduceSync(all, comm::ReduceOp::kSum);
  all.div_(comm.Size());
  std::vector<std::vector<double>> norms;
  int64_t offset = 0;
  for (const auto& sum : sums) {
    // Relative to the group's mean, so that one ranking over all groups compares channels
    // with their neighbours, not layers with small weights against layers with large ones.
    auto part = all.narrow(0, offset, sum.numel());
    part = (part / part.mean().clamp_min(1e-12)).contiguous();
    offset += sum.numel();
    norms.push_back(std::vector<double>(part.data_ptr<double>(), part.data_ptr<double>() + part.numel()));
  }
  return norms;
}

int64_t ResRep::CandidateCount(const std::vector<std::vector<double>>& metric) const {
  int64_t count = 0;
  for (const auto& channels : metric) {
    count += std::max<int64_t>(0, static_cast<int64_t>(channels.size()) - options_.num_at_least);
  }
  return count;
}

int64_t ResRep::MaskedCount() const {
  int64_t count = 0;
  for (const auto& channels : masked_) count += static_cast<int64_t>(channels.size());
  return count;
}

void ResRep::LoadState(const checkpoint::TensorMap& state, torch::jit::Module& model) {
  for (size_t i = 0; i < groups_.size(); ++i) {
    const auto& group = graph_.groups[groups_[i]];
    const auto found = state.find(MaskKey(group));
    const auto size = static_cast<int64_t>(group.channels.size());
    if (found == state.end() ||
        (found->second.numel() > 0 && found->second.max().item<int64_t>() >= size)) {
      throw ModelError(fmt::format(
          "{}: the checkpoint's masked channels '{}' do not fit this model: the checkpoint was "
          "written for another model. Use the model it was written for, --resume none to start "
          "over, or --resume-weights-only to load just the matching weights",
          kSection, MaskKey(group)));
    }
    const auto indices = found->second.to(torch::kInt64).contiguous();
    masked_[i].assign(indices.data_ptr<int64_t>(), indices.data_ptr<int64_t>() + indices.numel());
  }
  const auto reached = state.find(kTargetReachedKey);
  target_reached_ = reached != state.end() && reached->second.item<int64_t>() != 0;
}

checkpoint::TensorMap ResRep::SaveState() const {
  checkpoint::TensorMap state;
  for (size_t i = 0; i < groups_.size(); ++i) {
    state[MaskKey(graph_.groups[groups_[i]])] = torch::tensor(masked_[i], torch::kInt64);
  }
  state[kTargetReachedKey] = torch::tensor(int64_t{target_reached_}, torch::kInt64);
  return state;
}

void ResRep::Finalize(torch::jit::Module& model) const {
  const auto metric = RowNorms(model);
  std::vector<std::vector<int64_t>> removed(graph_.groups.size());
  for (size_t i = 0; i < groups_.size(); ++i) {
    std::vector<int64_t> going = masked_[i];
    for (size_t c = 0; c < metric[i].size(); ++c) {
      if (metric[i][c] < options_.threshold) going.push_back(static_cast<int64_t>(c));
    }
    std::sort(going.begin(), going.end());
    going.erase(std::unique(going.begin(), going.end()), going.end());
    const auto most = static_cast<int64_t>(metric[i].size()) - options_.num_at_least;
    if (static_cast<int64_t>(going.size()) > most) {
      std::sort(going.begin(), going.end(), [&](int64_t a, int64_t b) { return metric[i][a] < metric[i][b]; });
      going.resize(std::max<int64_t>(0, most));
      std::sort(going.begin(), going.end());
    }
    removed[groups_[i]] = going;
  }
  std::vector<Compactor> all;
  for (const auto& entry : compactors_) all.insert(all.end(), entry.begin(), entry.end());
  model = MergedAndPruned(model, all, graph_, removed);
}

void ResRep::Export(const torch::jit::Module& finalized, const std::string& output_dir,
                    nlohmann::json& report) const {
  nlohmann::json groups = nlohmann::json::array();
  for (size_t i = 0; i < groups_.size(); ++i) {
    const auto& group = graph_.groups[groups_[i]];
    groups.push_back({{"name", group.name},
                      {"producers", group.producers},
                      {"channels_before", group.channels.size()},
                      {"masked", masked_[i].size()},
                      {"channels_after", TensorAt(finalized, group.producers.front()).size(0)}});
  }
  const auto macs_after = exporting::CountModelMacs(finalized, example_).total;
  report["resrep"] = {{"flops_target", options_.flops_target},
                      {"lasso_strength", options_.lasso_strength},
                      {"macs_before", macs_before_},
                      {"macs_after", macs_after},
                      {"target_reached", target_reached_},
                      {"groups", groups}};
  logging::Info(fmt::format("{}: merged model: {:.2f} M -> {:.2f} M MACs ({:.3f}, target {})",
                            kSection, macs_before_ / 1e6, macs_after / 1e6,
                            static_cast<double>(macs_after) / macs_before_, options_.flops_target));
}

}  // namespace slim::prune

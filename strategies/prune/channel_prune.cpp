#include "strategies/prune/channel_prune.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "export/model_measure.h"
#include "runtime/base/errors.h"
#include "runtime/base/logging.h"
#include "runtime/base/text.h"
#include "runtime/config/config_section.h"
#include "runtime/models/model_loader.h"
#include "strategies/graph/conv_groups.h"
#include "strategies/graph/layer_finder.h"
#include "strategies/prune/channel_importance.h"
#include "strategies/prune/channel_selection.h"
#include "strategies/prune/prune_config.h"
#include "strategies/prune/rank_agreement.h"

namespace slim::prune {

namespace {

constexpr const char* kSection = "ChannelPrune";
// Bisection steps of the MACs target: the ratio ends within 2^-14 of the smallest that
// meets it.
constexpr int kTargetSteps = 14;
constexpr double kLargestRatio = 0.95;
// The checkpoint key of the number of rises done (the other keys are kept indices).
constexpr const char* kRisesKey = "rises_done";

bool AnyProducerMatches(const std::vector<std::string>& producers,
                        const std::vector<std::string>& patterns) {
  return std::any_of(producers.begin(), producers.end(), [&](const std::string& producer) {
    return std::any_of(patterns.begin(), patterns.end(), [&](const std::string& pattern) {
      return graph::MatchesModulePattern(pattern, producer);
    });
  });
}

// The checkpoint key of an axis: "layer1.0.conv1.weight@0".
std::string AxisKey(const std::pair<std::string, int64_t>& axis) {
  return fmt::format("{}@{}", axis.first, axis.second);
}

std::string Millions(int64_t count) { return fmt::format("{:.2f} M", count / 1e6); }

}  // namespace

std::vector<double> GroupRatios(const ChannelGraph& graph, const ChannelPruneOptions& options) {
  std::vector<std::string> candidates;
  for (const auto& group : graph.groups) {
    candidates.insert(candidates.end(), group.producers.begin(), group.producers.end());
  }
  for (const auto& name : options.prune_params_name) {
    if (AnyProducerMatches(candidates, {name})) continue;
    for (const auto& fixed : graph.fixed) {
      if (AnyProducerMatches(fixed.producers, {name})) {
        throw ModelError(fmt::format("{}: the output channels of '{}' cannot be removed: they "
                                     "are {}; remove it from the list",
                                     options.prune_params_name_at, name, fixed.reason));
      }
    }
    const auto nearest = config::NearestWord(name, candidates);
    throw ConfigError(fmt::format("{}: '{}' names no convolution or linear weight whose "
                                  "channels can be pruned{}",
                                  options.prune_params_name_at, name,
                                  nearest.empty() ? "" : "; did you mean '" + nearest + "'?"));
  }
  std::vector<double> ratios;
  for (const auto& group : graph.groups) {
    double ratio = options.pruned_ratio;
    if (!options.ratio_by_pattern.empty()) {
      ratio = 0;
      for (const auto& [pattern, value] : options.ratio_by_pattern) {
        if (AnyProducerMatches(group.producers, {pattern})) {
          ratio = value;
          break;
        }
      }
    }
    if (!options.prune_params_name.empty() &&
        !AnyProducerMatches(group.producers, options.prune_params_name)) {
      ratio = 0;
    }
    if (AnyProducerMatches(group.producers, options.ignored_layers)) ratio = 0;
    ratios.push_back(ratio);
  }
  return ratios;
}

strategies::StrategyRegistration ChannelPrune::Registration() {
  auto registration = strategies::PruningRegistration(kSection, strategies::PassOrder::kStructure, "fine-tuning");
  registration.refuses_with = [](const config::StrategyOptions& options, const std::string& other) {
    const auto& prune = static_cast<const ChannelPruneOptions&>(options);
    if (prune.prune_schedule != "iterative" || other == kSection) return std::string();
    return fmt::format("prune_schedule: iterative changes the model's shapes during training, "
                       "and {} is set up for the shapes before it; use prune_schedule: "
                       "one_shot with {}, or prune iteratively in a run of its own",
                       other, other);
  };
  registration.parse = strategies::ParserOf(&ParseChannelPrune);
  registration.create = strategies::FactoryOf<ChannelPrune, ChannelPruneOptions>();
  return registration;
}

ChannelPrune::ChannelPrune(const ChannelPruneOptions& options,
                           const strategies::StrategyEnvironment& environment)
    : options_(options), comm_(*environment.comm), example_(environment.context.example) {}

std::string ChannelPrune::Name() const { return kSection; }

int64_t ChannelPrune::Rises() const {
  return options_.prune_schedule == "iterative" ? options_.n_steps : 1;
}

void ChannelPrune::Prepare(torch::jit::Module& model) {
  // Scripted depthwise convolutions become prunable (the model has not run yet).
  graph::ReadConvolutionGroupsFromAttributes(model);
  graph_ = BuildChannelGraph(model, example_);
  originals_ = AxisTensors(model, graph_);
  ratios_ = GroupRatios(graph_, options_);
  if (options_.target_macs_ratio > 0) ratios_ = RatiosForMacsTarget(model, ratios_);
  macs_before_ = exporting::CountModelMacs(model, example_).total;
  parameters_before_ = models::ParameterCount(model);
  Rise(model, 1, nullptr);
  try {
    auto copy = model.clone();
    copy.eval();
    copy.forward({example_});
  } catch (const c10::Error& error) {
    throw ModelError(fmt::format("{}: the pruned model no longer runs ({}); leave the layer it "
                                 "names unpruned with ignored_layers",
                                 kSection, error.what_without_backtrace()));
  }
  LogGroups();
}

bool ChannelPrune::RestructureModel(strategies::HookContext& context) {
  if (rises_done_ >= Rises()) return false;
  const int64_t interval = std::max<int64_t>(1, context.total_steps / (2 * Rises()));
  if (context.step < rises_done_ * interval) return false;
  Rise(context.model, rises_done_ + 1, context.optimizer);
  logging::Info(fmt::format("{}: step {}: rise {} of {}", kSection, context.step, rises_done_,
                            Rises()));
  LogFigures();
  return true;
}

void ChannelPrune::Rise(torch::jit::Module& model, int64_t rise, torch::optim::Optimizer* optimizer) {
  std::vector<double> ratios;
  for (const auto ratio : ratios_) ratios.push_back(ratio * static_cast<double>(rise) / Rises());
  const auto full = FullTensors(model, originals_, kept_);
  const auto kept = KeptIndices(graph_, originals_, Choose(full, ratios));
  RemoveMoreChannels(model, optimizer, full, kept_, kept, graph_.depthwise_weights);
  kept_ = kept;
  rises_done_ = rise;
  std::vector<torch::Tensor> decision;
  for (const auto& [axis, indices] : kept_) decision.push_back(indices);
  CheckSameOnAllRanks(decision, comm_, std::string(kSection) + ": the kept channels");
  Summarise(model);
}

std::vector<std::vector<int64_t>> ChannelPrune::RemovedSoFar() const {
  std::vector<std::vector<int64_t>> removed(graph_.groups.size());
  for (size_t g = 0; g < graph_.groups.size(); ++g) {
    const auto& channels = graph_.groups[g].channels;
    for (size_t c = 0; c < channels.size(); ++c) {
      const auto& slice = channels[c].slices.front();
      const auto& axis = graph_.axes[slice.axis];
      const auto found = kept_.find({axis.tensor, axis.dim});
      if (found != kept_.end() && (found->second == slice.begin).sum().item<int64_t>() == 0) {
        removed[g].push_back(static_cast<int64_t>(c));
      }
    }
  }
  return removed;
}

std::vector<std::vector<int64_t>> ChannelPrune::Choose(
    const std::map<std::string, torch::Tensor>& tensors, const std::vector<double>& ratios) const {
  const auto gone = RemovedSoFar();
  std::vector<std::vector<double>> importance;
  for (size_t g = 0; g < graph_.groups.size(); ++g) {
    importance.push_back(ChannelImportance(tensors, graph_, graph_.groups[g], options_.criterion));
    for (const auto c : gone[g]) importance[g][c] = -std::numeric_limits<double>::infinity();
  }
  const auto counts = RemovedCounts(importance, ratios, options_.round_to, options_.global_pruning);
  std::vector<std::vector<int64_t>> removed;
  for (size_t g = 0; g < counts.size(); ++g) {
    removed.push_back(LeastImportant(importance[g], std::max<int64_t>(counts[g], gone[g].size())));
  }
  return removed;
}

std::vector<double> ChannelPrune::RatiosForMacsTarget(const torch::jit::Module& model,
                                                      const std::vector<double>& ratios) const {
  const double target = options_.target_macs_ratio *
                        static_cast<double>(exporting::CountModelMacs(model, example_).total);
  const auto scaled = [&](double ratio) {
    std::vector<double> result;
    for (const auto selected : ratios) result.push_back(selected > 0 ? ratio : 0);
    return result;
  };
  // MACs left at uniform ratio `ratio`.
  const auto macs_at = [&](double ratio) {
    auto copy = model.clone();
    RemoveChannels(copy, originals_, KeptIndices(graph_, originals_, Choose(originals_, scaled(ratio))),
                   graph_.depthwise_weights);
    return static_cast<double>(exporting::CountModelMacs(copy, example_).total);
  };
  const double at_largest = macs_at(kLargestRatio);
  if (at_largest > target) {
    throw ConfigError(fmt::format(
        "{}: {}: pruning every selected group by {} keeps {:.3f} of the MACs; the channels that "
        "stay whole (see the log) bound what pruning can remove. Raise target_macs_ratio",
        options_.target_macs_ratio_at, options_.target_macs_ratio, kLargestRatio,
        at_largest * options_.target_macs_ratio / target));
  }
  double low = 0;
  double high = kLargestRatio;
  for (int step = 0; step < kTargetSteps; ++step) {
    const double middle = (low + high) / 2;
    const double macs = macs_at(middle);
    (macs <= target ? high : low) = middle;
  }
  logging::Info(fmt::format("{}: target_macs_ratio {} reached at pruned_ratio {:.4f}", kSection,
                            options_.target_macs_ratio, high));
  return scaled(high);
}

void ChannelPrune::Summarise(const torch::jit::Module& model) {
  const auto removed = RemovedSoFar();
  summary_ = {{"criterion", options_.criterion},
              {"global_pruning", options_.global_pruning},
              {"prune_schedule", options_.prune_schedule},
              {"rises_done", rises_done_},
              {"macs_before", macs_before_},
              {"macs_after", exporting::CountModelMacs(model, example_).total},
              {"parameters_before", parameters_before_},
              {"parameters_after", models::ParameterCount(model)},
              {"groups", nlohmann::json::array()},
              {"kept_whole", nlohmann::json::array()}};
  for (size_t g = 0; g < graph_.groups.size(); ++g) {
    const auto& group = graph_.groups[g];
    const auto channels = static_cast<int64_t>(group.channels.size());
    nlohmann::json layers;
    for (const auto& producer : group.producers) layers[producer] = TensorAt(model, producer).size(0);
    summary_["groups"].push_back({{"name", group.name},
                                  {"producers", group.producers},
                                  {"ratio", ratios_[g]},
                                  {"channels_before", channels},
                                  {"channels_after", channels - static_cast<int64_t>(removed[g].size())},
                                  {"output_channels_after", layers}});
  }
  for (const auto& fixed : graph_.fixed) {
    summary_["kept_whole"].push_back({{"producers", fixed.producers}, {"reason", fixed.reason}});
  }
}

void ChannelPrune::LogGroups() const {
  logging::Info(fmt::format("{}: {} prunable group(s), {} kept whole; criterion {}{}{}", kSection,
                            graph_.groups.size(), graph_.fixed.size(), options_.criterion,
                            options_.global_pruning ? ", ranked globally" : "",
                            Rises() > 1 ? fmt::format(", {} rises", Rises()) : ""));
  for (const auto& group : summary_["groups"]) {
    std::vector<std::string> layers;
    for (const auto& [producer, kept] : group["output_channels_after"].items()) {
      layers.push_back(fmt::format("{} {}", producer, kept.get<int64_t>()));
    }
    logging::Info(fmt::format("  group {}: {} -> {} coupled channels; output channels kept: {}",
                              group["name"].get<std::string>(),
                              group["channels_before"].get<int64_t>(),
                              group["channels_after"].get<int64_t>(), JoinedList(layers)));
  }
  for (const auto& fixed : graph_.fixed) {
    logging::Info(fmt::format("  kept whole: {}: {}", JoinedList(fixed.producers), fixed.reason));
  }
  LogFigures();
}

void ChannelPrune::LogFigures() const {
  const auto macs_after = summary_["macs_after"].get<int64_t>();
  logging::Info(fmt::format("{}: MACs {} -> {} ({:.2f}x fewer), parameters {} -> {}", kSection,
                            Millions(macs_before_), Millions(macs_after),
                            macs_after > 0 ? static_cast<double>(macs_before_) / macs_after : 0.0,
                            parameters_before_, summary_["parameters_after"].get<int64_t>()));
}

void ChannelPrune::LoadState(const checkpoint::TensorMap& state, torch::jit::Module& model) {
  KeptChannels recorded;
  for (const auto& [key, indices] : state) {
    if (key == kRisesKey) continue;
    const auto at = key.rfind('@');
    const auto tensor = key.substr(0, at);
    const auto original = originals_.find(tensor);
    const int64_t dim = at == std::string::npos ? -1 : std::stoll(key.substr(at + 1));
    if (original == originals_.end() || dim < 0 || dim >= original->second.dim() ||
        indices.numel() == 0 || indices.max().item<int64_t>() >= original->second.size(dim)) {
      throw ModelError(fmt::format(
          "{}: the checkpoint's kept channels '{}' do not fit this model: the checkpoint was "
          "written for another model. Use the model it was written for, --resume none to "
          "start over, or --resume-weights-only to load just the matching weights",
          kSection, key));
    }
    recorded[{tensor, dim}] = indices.to(torch::kInt64);
  }
  const auto rises = state.find(kRisesKey);
  rises_done_ = rises == state.end() ? Rises() : rises->second.item<int64_t>();
  kept_ = recorded;
  RemoveChannels(model, originals_, kept_, graph_.depthwise_weights);
  Summarise(model);
}

checkpoint::TensorMap ChannelPrune::SaveState() const {
  checkpoint::TensorMap state;
  for (const auto& [axis, indices] : kept_) state[AxisKey(axis)] = indices;
  state[kRisesKey] = torch::tensor(rises_done_, torch::kInt64);
  return state;
}

void ChannelPrune::Export(const torch::jit::Module& finalized, const std::string& output_dir,
                          nlohmann::json& report) const {
  report["channel_prune"] = summary_;
}

}  // namespace slim::prune

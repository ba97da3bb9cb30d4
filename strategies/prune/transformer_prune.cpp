#include "strategies/prune/transformer_prune.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "export/model_measure.h"
#include "runtime/base/errors.h"
#include "runtime/base/logging.h"
#include "runtime/config/config_section.h"
#include "runtime/models/model_loader.h"
#include "strategies/graph/layer_finder.h"
#include "strategies/prune/channel_graph.h"
#include "strategies/prune/channel_selection.h"
#include "strategies/prune/encoder_importance.h"
#include "strategies/prune/prune_config.h"
#include "strategies/prune/rank_agreement.h"

namespace slim::prune {

namespace {

constexpr const char* kSection = "TransformerPrune";
// The pruned model's output may differ from the zeroed model's by rounding only: sums
// over fewer terms.
constexpr double kExactTolerance = 1e-4;

// The indices in [0, count) that `removed` (ascending) does not hold.
std::vector<int64_t> Complement(const std::vector<int64_t>& removed, int64_t count) {
  std::vector<int64_t> kept;
  for (int64_t i = 0; i < count; ++i) {
    if (!std::binary_search(removed.begin(), removed.end(), i)) kept.push_back(i);
  }
  return kept;
}

// The `ratio` least important of `scores` removed (floor, at least one kept): the rest.
std::vector<int64_t> KeptByScore(const std::vector<double>& scores, double ratio) {
  const auto count = static_cast<int64_t>(scores.size());
  if (count == 0) return {};
  auto removed = LeastImportant(scores, count - ChannelsKept(count, ratio, 1));
  std::sort(removed.begin(), removed.end());
  return Complement(removed, count);
}

// Checkpoint keys: "<attention module>@heads", "<feed-forward input weight>@units".
std::string HeadsKey(const EncoderLayer& layer) { return layer.attention.module + "@heads"; }
std::string UnitsKey(const EncoderLayer& layer) { return layer.feed_forward->in_weight + "@units"; }

std::string Millions(int64_t count) { return fmt::format("{:.2f} M", count / 1e6); }

// The output of a copy of `model` in evaluation mode. Autograd stays on, so that
// nn.TransformerEncoderLayer runs its regular code, not PyTorch's fused inference kernel,
// and the comparison is between the same operations with and without the removed units.
torch::Tensor EvalOutput(const torch::jit::Module& model, const torch::Tensor& example) {
  auto copy = model.clone();
  copy.eval();
  return copy.forward({example}).toTensor().detach().to(torch::kDouble);
}

}  // namespace

strategies::StrategyRegistration TransformerPrune::Registration() {
  auto registration = strategies::PruningRegistration(kSection, strategies::PassOrder::kStructure, "fine-tuning");
  registration.parse = strategies::ParserOf(&ParseTransformerPrune);
  registration.create = strategies::FactoryOf<TransformerPrune, TransformerPruneOptions>();
  return registration;
}

TransformerPrune::TransformerPrune(const TransformerPruneOptions& options,
                                   const strategies::StrategyEnvironment& environment)
    : options_(options), comm_(*environment.comm), context_(environment.context) {}

std::string TransformerPrune::Name() const { return kSection; }

std::vector<EncoderLayer> TransformerPrune::SelectedLayers(const torch::jit::Module& model) const {
  const auto found = FindEncoderLayers(model);
  if (found.empty()) {
    throw ModelError(fmt::format("{}: {} has no Transformer encoder layer: looked for {}; prune "
                                 "convolutions with ChannelPrune instead",
                                 kSection, context_.model_reference, EncoderLayerDescription()));
  }
  if (options_.layers.empty()) return found;
  std::vector<std::string> paths;
  for (const auto& layer : found) paths.push_back(layer.path);
  std::vector<EncoderLayer> selected;
  for (const auto& pattern : options_.layers) {
    if (std::none_of(paths.begin(), paths.end(), [&](const std::string& path) {
          return graph::MatchesModulePattern(pattern, path);
        })) {
      throw ConfigError(fmt::format("{}: '{}' names no encoder layer; the model's are {}",
                                    options_.layers_at, pattern, fmt::join(paths, ", ")));
    }
  }
  for (const auto& layer : found) {
    if (std::any_of(options_.layers.begin(), options_.layers.end(), [&](const std::string& pattern) {
          return graph::MatchesModulePattern(pattern, layer.path);
        })) {
      selected.push_back(layer);
    }
  }
  return selected;
}

std::vector<KeptUnits> TransformerPrune::Choose(torch::jit::Module& model) const {
  if (options_.importance == "weight_norm") return KeptOf(WeightNormScores(originals_, layers_));
  if (!context_.labelled_batches) {
    throw ModelError(fmt::format("{}: importance {} needs training data", kSection,
                                 options_.importance));
  }
  const auto batches = context_.labelled_batches(options_.batch_num);
  if (options_.importance == "loss_sensitivity") {
    return KeptOf(LossSensitivityScores(model, layers_, batches, comm_));
  }
  auto scores = WeightNormScores(originals_, layers_);
  scores.heads = HeadAblationDivergences(model, layers_, batches, comm_);
  return KeptOf(scores);
}

std::vector<KeptUnits> TransformerPrune::KeptOf(const UnitScores& scores) const {
  std::vector<KeptUnits> kept;
  for (size_t i = 0; i < layers_.size(); ++i) {
    kept.push_back({KeptByScore(scores.heads[i], options_.head_ratio),
                    KeptByScore(scores.units[i], options_.ffn_ratio)});
  }
  return kept;
}

void TransformerPrune::Prepare(torch::jit::Module& model) {
  layers_ = SelectedLayers(model);
  originals_ = EncoderTensors(model, layers_);
  macs_before_ = exporting::CountModelMacs(model, context_.example).total;
  parameters_before_ = models::ParameterCount(model);
  kept_ = Choose(model);
  const auto unpruned = model.clone();
  PruneEncoderLayers(model, originals_, layers_, kept_);
  CheckRemovalIsExact(unpruned, model);
  std::vector<torch::Tensor> decision;
  for (const auto& layer : kept_) {
    decision.push_back(torch::tensor(layer.heads, torch::kInt64));
    decision.push_back(torch::tensor(layer.units, torch::kInt64));
  }
  CheckSameOnAllRanks(decision, comm_, std::string(kSection) + ": the kept heads and units");
  Summarise(model);
  logging::Info(fmt::format("{}: {} encoder layer(s), importance {}", kSection, layers_.size(),
                            options_.importance));
  for (const auto& layer : summary_["layers"]) {
    logging::Info(fmt::format("  {}: heads {} -> {} (kept {}), feed-forward units {} -> {}",
                              layer["layer"].get<std::string>(), layer["heads_before"].get<int64_t>(),
                              layer["heads_after"].get<int64_t>(),
                              fmt::join(layer["kept_heads"].get<std::vector<int64_t>>(), ", "),
                              layer["units_before"].get<int64_t>(),
                              layer["units_after"].get<int64_t>()));
  }
  logging::Info(fmt::format("{}: MACs {} -> {}, parameters {} -> {}", kSection,
                            Millions(macs_before_), Millions(summary_["macs_after"].get<int64_t>()),
                            parameters_before_, summary_["parameters_after"].get<int64_t>()));
}

void TransformerPrune::CheckRemovalIsExact(const torch::jit::Module& unpruned,
                                           const torch::jit::Module& pruned) const {
  auto zeroed = unpruned.clone();
  {
    torch::NoGradGuard no_grad;
    for (const auto& [path, tensor] : FullTensors(pruned, originals_, KeptAxes(layers_, kept_))) {
      TensorAt(zeroed, path).copy_(tensor);
    }
  }
  const auto expected = EvalOutput(zeroed, context_.example);
  torch::Tensor actual;
  try {
    actual = EvalOutput(pruned, context_.example);
  } catch (const c10::Error& error) {
    throw ModelError(fmt::format("{}: the pruned model no longer runs ({}); leave the layer it "
                                 "names out with TransformerPrune.layers",
                                 kSection, error.what_without_backtrace()));
  }
  const double scale = std::max(1.0, expected.abs().max().item<double>());
  const double difference =
      actual.sizes() == expected.sizes() ? (actual - expected).abs().max().item<double>() : INFINITY;
  if (!(difference <= kExactTolerance * scale)) {
    std::vector<std::string> paths;
    for (const auto& layer : layers_) paths.push_back(layer.attention.module);
    throw ModelError(fmt::format(
        "{}: removing heads and units changes what the model computes (largest output "
        "difference {:.3g} against the input model with them zeroed): the attention of {} does "
        "not use its weights as head pruning assumes (q, k, v rows head after head, num_heads "
        "read from the attribute); leave such layers out with TransformerPrune.layers",
        kSection, difference, fmt::join(paths, ", ")));
  }
}

void TransformerPrune::Summarise(const torch::jit::Module& model) {
  summary_ = {{"importance", options_.importance},
              {"head_ratio", options_.head_ratio},
              {"ffn_ratio", options_.ffn_ratio},
              {"macs_before", macs_before_},
              {"macs_after", exporting::CountModelMacs(model, context_.example).total},
              {"parameters_before", parameters_before_},
              {"parameters_after", models::ParameterCount(model)},
              {"layers", nlohmann::json::array()}};
  for (size_t i = 0; i < layers_.size(); ++i) {
    const auto& layer = layers_[i];
    const int64_t units = layer.feed_forward ? layer.feed_forward->units : 0;
    summary_["layers"].push_back({{"layer", layer.path},
                                  {"attention", layer.attention.module},
                                  {"heads_before", layer.attention.heads},
                                  {"heads_after", kept_[i].heads.size()},
                                  {"kept_heads", kept_[i].heads},
                                  {"units_before", units},
                                  {"units_after", kept_[i].units.size()},
                                  {"kept_units", kept_[i].units}});
  }
}

void TransformerPrune::LoadState(const checkpoint::TensorMap& state, torch::jit::Module& model) {
  const auto read = [&](const std::string& key, int64_t count) {
    const auto found = state.find(key);
    if (found == state.end() || found->second.numel() == 0 ||
        found->second.max().item<int64_t>() >= count || found->second.min().item<int64_t>() < 0) {
      throw ModelError(fmt::format(
          "{}: the checkpoint's kept heads and units '{}' do not fit this model: the checkpoint "
          "was written for another model or TransformerPrune.layers. Use the config it was "
          "written with, --resume none to start over, or --resume-weights-only to load just "
          "the matching weights",
          kSection, key));
    }
    const auto indices = found->second.to(torch::kInt64).contiguous();
    return std::vector<int64_t>(indices.data_ptr<int64_t>(), indices.data_ptr<int64_t>() + indices.numel());
  };
  std::vector<KeptUnits> recorded;
  for (const auto& layer : layers_) {
    recorded.push_back({read(HeadsKey(layer), layer.attention.heads),
                        layer.feed_forward ? read(UnitsKey(layer), layer.feed_forward->units)
                                           : std::vector<int64_t>{}});
  }
  kept_ = recorded;
  PruneEncoderLayers(model, originals_, layers_, kept_);
  Summarise(model);
}

checkpoint::TensorMap TransformerPrune::SaveState() const {
  checkpoint::TensorMap state;
  for (size_t i = 0; i < layers_.size(); ++i) {
    state[HeadsKey(layers_[i])] = torch::tensor(kept_[i].heads, torch::kInt64);
    if (layers_[i].feed_forward) state[UnitsKey(layers_[i])] = torch::tensor(kept_[i].units, torch::kInt64);
  }
  return state;
}

void TransformerPrune::Export(const torch::jit::Module& finalized, const std::string& output_dir,
                              nlohmann::json& report) const {
  report["transformer_prune"] = summary_;
}

}  // namespace slim::prune

#include "launcher/resume_selection.h"

#include "runtime/base/text.h"

#include "runtime/checkpoint/checkpoint_file.h"
#include "runtime/checkpoint/state_capture.h"
#include "runtime/base/errors.h"

namespace slim::launcher {

namespace {

// At most this many differences are listed; the rest are counted.
constexpr size_t kMaxListed = 20;

// Differences between the saved optimizer state and this run's optimizer and model.
void CompareOptimizer(const checkpoint::CheckpointState& state, const torch::jit::Module& model,
                      const config::Config& config, std::vector<std::string>& differences) {
  if (state.optimizer_type != config.train.optimizer.type) {
    differences.push_back("optimizer: checkpoint " + state.optimizer_type + ", config " +
                          config.train.optimizer.type);
    return;
  }
  std::map<std::string, torch::Tensor> parameters;
  for (const auto& item : model.named_parameters()) parameters[item.name] = item.value;
  for (const auto& [name, tensors] : state.optimizer_state) {
    const auto parameter = parameters.find(name);
    if (parameter == parameters.end()) {
      differences.push_back("optimizer state for " + name + ", which is not a model parameter");
      continue;
    }
    for (const auto& [key, tensor] : tensors) {
      if (key != "step" && tensor.sizes() != parameter->second.sizes()) {
        differences.push_back("optimizer state " + name + "/" + key + " has another shape than "
                              "the parameter");
      }
    }
  }
}

std::string NameList(const std::vector<std::string>& names) {
  return names.empty() ? "none" : JoinedList(names);
}

}  // namespace

std::optional<checkpoint::LoadedCheckpoint> FindResumeCheckpoint(const CommandLine& command,
                                                                 const config::Config& config) {
  if (command.resume == "none") return std::nullopt;
  if (command.resume == "auto") {
    return checkpoint::LoadNewestValid(checkpoint::CheckpointDirectory(config.global.output_dir));
  }
  checkpoint::LoadedCheckpoint loaded;
  loaded.path = command.resume;
  loaded.state = checkpoint::ReadCheckpointFile(command.resume);
  return loaded;
}

void CheckResumable(const checkpoint::LoadedCheckpoint& loaded, const torch::jit::Module& model,
                    const config::Config& config, const std::vector<std::string>& strategies) {
  const auto& state = loaded.state;
  std::vector<std::string> differences;
  if (state.strategies != strategies) {
    differences.push_back("strategies: checkpoint " + NameList(state.strategies) + ", config " +
                          NameList(strategies));
  }
  for (auto& difference : checkpoint::ModelDifferences(state, model)) {
    differences.push_back(std::move(difference));
  }
  CompareOptimizer(state, model, config, differences);
  if (differences.empty()) return;
  std::string message = "checkpoint " + loaded.path + " (model " + state.model_reference +
                        ") does not match this run (model " + config.global.model + "):";
  for (size_t i = 0; i < differences.size() && i < kMaxListed; ++i) {
    message += "\n  " + differences[i];
  }
  if (differences.size() > kMaxListed) {
    message += "\n  ... and " + std::to_string(differences.size() - kMaxListed) + " more";
  }
  throw ModelError(message +
                   "\nUse the model and config the checkpoint was written with, "
                   "--resume-weights-only to load just the matching weights, or --resume none "
                   "to start over");
}

}  // namespace slim::launcher

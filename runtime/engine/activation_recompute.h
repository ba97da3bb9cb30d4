// Activation recompute (TrainConfig.recompute_config): the student's training forward
// with the chosen submodules' activations freed after the forward and computed again in
// backward, as torch.utils.checkpoint does (its reentrant form).
//
// Each call into a chosen module runs without autograd; only its inputs are kept. In
// backward the call runs again with autograd, from the same inputs and in the same
// conditions: the CPU generator is set to its state before the first run (dropout draws
// the same masks), the autocast state is the forward's, and the module tree's buffers and
// plain attributes (BatchNorm statistics, quantizer observers) are set to their values
// before the first run and put back afterwards. Gradients are therefore those of a run
// without recompute, and a second pass never moves running statistics twice.
#pragma once

#include <torch/csrc/jit/api/function_impl.h>
#include <torch/script.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace slim::engine {

class ActivationRecompute {
 public:
  // Recomputes, in `model`'s training forward, the outermost modules each of `patterns`
  // (module paths, shell wildcards allowed) names. `tapped_paths`: modules whose outputs
  // a loss reads through autograd after the forward (distillation's taps), which must not
  // lie inside a recomputed module. Throws ConfigError naming `config_file` and
  // TrainConfig.recompute_config.modules for a pattern that names no module (with the
  // closest path) or a recomputed module holding a tapped one; ModelError when the
  // forward never calls a chosen module by name.
  ActivationRecompute(torch::jit::Module model, const std::vector<std::string>& patterns,
                      const std::vector<std::string>& tapped_paths,
                      const std::string& config_file);
  ~ActivationRecompute();
  ActivationRecompute(const ActivationRecompute&) = delete;
  ActivationRecompute& operator=(const ActivationRecompute&) = delete;

  // The model's forward on `inputs`, with the chosen modules recomputed in backward.
  torch::jit::IValue Forward(const torch::Tensor& inputs);

  // The recomputed modules' paths, in model order.
  const std::vector<std::string>& Paths() const { return paths_; }

 private:
  torch::jit::Module model_;
  std::vector<std::string> paths_;
  std::vector<int64_t> regions_;  // one per call site, registered for slim::recompute
  std::unique_ptr<torch::jit::GraphFunction> forward_;
};

}  // namespace slim::engine

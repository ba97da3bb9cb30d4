// The plug-in interface of compression strategies: graph passes before training and
// callbacks at fixed points of the training loop, in the style of Neural Compressor's
// compression manager. The Compressor (compressor.h) runs any set of them in one job.
#pragma once

#include <nlohmann/json.hpp>
#include <torch/script.h>

#include <string>
#include <vector>

#include "runtime/checkpoint/checkpoint_state.h"
#include "runtime/models/builtin_models.h"

namespace slim::strategies {

// Parameters a strategy wants trained with their own optimizer settings.
struct ParameterGroup {
  std::vector<torch::Tensor> parameters;
  double learning_rate = 0;  // fixed; the LR schedule does not apply
  double weight_decay = 0;
};

// What strategies may use besides the model.
struct JobContext {
  std::string model_reference;  // Global.model
  models::ModelShape shape;     // what builtin models are built for
  torch::Tensor example;        // a transformed batch of training inputs, for probes
};

class Strategy {
 public:
  virtual ~Strategy() = default;

  // The config section (QuantAware, QuantPost, ...); also the strategy's checkpoint group.
  virtual std::string Name() const = 0;

  // False for strategies that only calibrate (QuantPost): the job then runs Calibrate
  // instead of training.
  virtual bool Trains() const { return true; }

  // The model as loaded, before any strategy's Prepare (distillation's teacher `self`
  // copies it).
  virtual void OnModelLoaded(const torch::jit::Module& model) {}

  // Graph passes on `model`, on every rank, before its first forward and before a
  // checkpoint is loaded into it. Throws ModelError when the model cannot be handled.
  virtual void Prepare(torch::jit::Module& model) = 0;

  // Parameters Prepare added that need their own optimizer settings (PACT alphas).
  virtual std::vector<ParameterGroup> ParameterGroups() const { return {}; }

  // The training objective: the weight of the labels' cross-entropy (the Compressor takes
  // the smallest any strategy asks for), and terms added to it for one micro-batch whose
  // `inputs` the model's forward turned into `outputs` (undefined when none).
  virtual double LabelLossWeight() const { return 1; }
  virtual torch::Tensor ExtraLoss(const torch::Tensor& inputs, const torch::Tensor& outputs) {
    return {};
  }

  // After the gradients of optimizer step `step` were averaged over the ranks and before
  // the optimizer step: synchronise statistics. Collective.
  virtual void OnBeforeOptimizerStep(int64_t step) {}

  // Calibration without training: `batches` are this rank's share of the calibration
  // inputs. Collective. Only called when Trains() is false.
  virtual void Calibrate(torch::jit::Module& model, const std::vector<torch::Tensor>& batches) {}

  // Turns `model` (a copy of the trained one) into the deployable model: fixed scales,
  // weights on their quantization grid.
  virtual void Finalize(torch::jit::Module& model) const {}

  // Writes the strategy's own outputs next to model.pt in `output_dir` and adds its
  // figures to the report. Rank 0, after Finalize on `finalized`.
  virtual void Export(const torch::jit::Module& finalized, const std::string& output_dir,
                      nlohmann::json& report) const {}

  // The strategy's training state for checkpoints (strategies/<Name()>/), and its restore.
  // Model tensors the strategy added travel with the model and are not repeated here.
  virtual checkpoint::TensorMap SaveState() const { return {}; }
  virtual void LoadState(const checkpoint::TensorMap& state) {}
};

}  // namespace slim::strategies

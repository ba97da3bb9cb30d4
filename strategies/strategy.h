// The plug-in interface of compression strategies: graph passes before training and hooks
// at fixed points of the training loop, in the style of Neural Compressor's compression
// manager. A strategy registers itself in registry.cpp; the Compressor (compressor.h) runs
// any set of them in one job, in the registered pass order.
//
// Where each call runs:
//   every rank, may call collectives on the communicator (all ranks call it in the same
//   order, with the same arguments where the text says so):
//     OnModelLoaded, Prepare, LoadState, OnTrainBegin, OnEpochBegin, ExtraLoss,
//     OnBeforeOptimizerStep, OnAfterOptimizerStep, RestructureModel, OnEpochEnd,
//     OnBeforeEvaluation, OnAfterEvaluation, OnTrainEnd, Calibrate
//   rank 0 only, must NOT call collectives (the other ranks are not there: a collective
//   hangs until Global.comm_timeout_s):
//     SaveState, Finalize, Export
//
// Order of one optimizer step: OnStepBegin; per micro-batch forward, ExtraLoss (through
// the Compressor's loss), backward; gradients averaged over the ranks;
// OnBeforeOptimizerStep; gradient clipping (global norm over every parameter group,
// TrainConfig.optimizer_builder.grad_clip); optimizer step; OnAfterOptimizerStep;
// RestructureModel. Evaluation, checkpoints and early stop follow the step.
#pragma once

#include <nlohmann/json.hpp>
#include <torch/script.h>
#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

#include "runtime/checkpoint/checkpoint_state.h"
#include "runtime/comm/communicator.h"
#include "runtime/models/builtin_models.h"

namespace slim::strategies {

// Parameters a strategy wants trained with their own optimizer settings.
struct ParameterGroup {
  std::vector<torch::Tensor> parameters;
  double learning_rate = 0;  // fixed; the LR schedule does not apply
  double weight_decay = 0;
};

// Training samples with their labels, for strategies that rank weights by the loss.
struct LabelledBatch {
  torch::Tensor inputs;  // transformed without augmentation
  torch::Tensor labels;  // int64 [n]
};

// What strategies may use besides the model, known before Prepare.
struct JobContext {
  std::string model_reference;  // Global.model
  models::ModelShape shape;     // what builtin models are built for
  torch::Tensor example;        // a transformed batch of training inputs, for probes
  // This rank's share of `count` batches of Global.batch_size training samples per rank:
  // the same samples in every run, different ones on each rank. Empty where a job has no
  // data (unit tests).
  std::function<std::vector<LabelledBatch>(int64_t count)> labelled_batches;
};

// What a strategy is constructed with, besides its options.
struct StrategyEnvironment {
  comm::Communicator* comm = nullptr;  // the job's communicator; set in every job
  JobContext context;
};

// Where the training loop stands when a hook runs. `optimizer` is null outside training
// (calibration). Counters: `step` optimizer steps and `micro_batch` micro-batches are
// done; `epoch` is the epoch of the next micro-batch.
struct HookContext {
  torch::jit::Module& model;
  torch::optim::Optimizer* optimizer;
  comm::Communicator& comm;
  int64_t step = 0;
  int64_t total_steps = 0;
  int64_t epoch = 0;
  int64_t micro_batch = 0;
};

// Evaluation figures handed to OnAfterEvaluation: global over all ranks.
struct EvalMetrics {
  double top1 = 0;  // fraction of samples whose arg-max logit is the label
  double loss = 0;  // mean cross-entropy over every eval sample
  int64_t samples = 0;
};

// The calibration data a strategy that does not train asks for: `batch_num` batches of
// `batch_size` samples over all ranks.
struct CalibrationNeeds {
  int64_t batch_num = 0;
  int64_t batch_size = 0;
};

class Strategy {
 public:
  virtual ~Strategy() = default;

  // The config section (QuantAware, QuantPost, ...); also the strategy's checkpoint group.
  virtual std::string Name() const = 0;

  // False for strategies that only calibrate (QuantPost): the job then runs Calibrate
  // instead of training, on the data CalibrationData() asks for.
  virtual bool Trains() const { return true; }
  virtual CalibrationNeeds CalibrationData() const { return {}; }

  // The model as loaded, before any strategy's Prepare (distillation's teacher `self`
  // copies it).
  virtual void OnModelLoaded(const torch::jit::Module& model) {}

  // Graph passes on `model`, before its first forward and before a checkpoint is loaded
  // into it. Throws ModelError when the model cannot be handled.
  virtual void Prepare(torch::jit::Module& model) = 0;

  // Restores the state SaveState wrote, when a run resumes: after Prepare and before the
  // checkpoint's model tensors are copied into `model`, so a strategy whose state changes
  // the graph or the tensor shapes (frozen BatchNorms, removed channels) brings `model` to
  // the checkpoint's structure here. Throws ModelError when the state does not fit.
  virtual void LoadState(const checkpoint::TensorMap& state, torch::jit::Module& model) {}

  // Parameters Prepare added that need their own optimizer settings (PACT alphas).
  virtual std::vector<ParameterGroup> ParameterGroups() const { return {}; }

  // Module paths of the model whose outputs a loss term reads through autograd after the
  // forward (distillation's taps): activation recompute must keep them. After Prepare.
  virtual std::vector<std::string> TappedModules() const { return {}; }

  // Training begins (also after a resume, at the resumed step) / ends (all steps done or
  // early stop; not when a stop signal ends the run).
  virtual void OnTrainBegin(HookContext& context) {}
  virtual void OnTrainEnd(HookContext& context) {}
  // An epoch begins (at its first micro-batch) / ends (after its last optimizer step).
  virtual void OnEpochBegin(HookContext& context) {}
  virtual void OnEpochEnd(HookContext& context) {}
  // Before the first micro-batch of optimizer step `context.step`.
  virtual void OnStepBegin(HookContext& context) {}

  // The training objective: the weight of the labels' cross-entropy (the Compressor takes
  // the smallest any strategy asks for), and terms added to it for one micro-batch whose
  // `inputs` the model's forward turned into `outputs` (undefined when none).
  virtual double LabelLossWeight() const { return 1; }
  virtual torch::Tensor ExtraLoss(const torch::Tensor& inputs, const torch::Tensor& outputs) {
    return {};
  }

  // After the gradients were averaged over the ranks and before clipping and the optimizer
  // step: synchronise statistics, mask gradients.
  virtual void OnBeforeOptimizerStep(HookContext& context) {}
  // After the optimizer step (`context.step` counts it): re-apply masks to the weights and
  // to the optimizer's state (momentum and Adam moments must not revive pruned weights),
  // advance schedules.
  virtual void OnAfterOptimizerStep(HookContext& context) {}

  // May change the model's structure (remove channels): replace parameters with smaller
  // tensors, slicing their optimizer state itself. Returns true when it replaced any
  // parameter; the engine then points the optimizer's groups at the model's current
  // parameters (state of the parameters that stayed is kept) and rebuilds the gradient
  // buckets. Checkpoints hold whatever the model holds.
  virtual bool RestructureModel(HookContext& context) { return false; }

  // Around every evaluation; `metrics` are the global results.
  virtual void OnBeforeEvaluation(HookContext& context) {}
  virtual void OnAfterEvaluation(HookContext& context, const EvalMetrics& metrics) {}

  // Calibration without training: `batches` are this rank's share of the calibration
  // inputs. Only called when Trains() is false.
  virtual void Calibrate(torch::jit::Module& model, const std::vector<torch::Tensor>& batches) {}

  // Turns `model` (a copy of the trained one) into the deployable model: fixed scales,
  // weights on their quantization grid, masks applied, adapters dropped.
  virtual void Finalize(torch::jit::Module& model) const {}

  // Writes the strategy's own outputs next to model.pt in `output_dir` and adds its
  // figures to the report. After Finalize on `finalized`.
  virtual void Export(const torch::jit::Module& finalized, const std::string& output_dir,
                      nlohmann::json& report) const {}

  // The strategy's training state for checkpoints (strategies/<Name()>/). Model tensors
  // the strategy added travel with the model and are not repeated here.
  virtual checkpoint::TensorMap SaveState() const { return {}; }
};

}  // namespace slim::strategies

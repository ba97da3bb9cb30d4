// The fake-quantization modules the quantization pass attaches to layers, written in
// TorchScript with standard ATen ops only, so a model holding them loads in stock PyTorch.
//
// WeightQuantizer (child "weight_quant" of a layer): symmetric abs-max quantization of
// the weight, per output channel or per tensor, to [-(2^(b-1)-1), 2^(b-1)-1]. While not
// frozen the scale follows the current weight in every forward; frozen, it uses the
// stored scale.
//
// ActivationQuantizer (child "input_quant"): per-tensor quantization of the layer's input
// with the stored scale, on the symmetric grid or, for inputs never seen negative, the
// unsigned one (ActivationGrid); while observing it records max|x| (batch_max) and the
// lowest value (batch_min, from 0), or a histogram of |x| over [0, hist_max], that the
// strategy reduces over the ranks and turns into the scale. The PACT variant first clips
// x to [-alpha, alpha] with a learnable alpha.
//
// Gradients pass straight through: ATen's fake-quantize backward (1 inside the range) for
// weights, identity for activations in training (see the activation source).
#pragma once

#include <torch/script.h>

#include <memory>
#include <optional>

namespace slim::quant {

// What an activation quantizer records in forward.
enum class Observe : int64_t {
  kNothing = 0,
  kMaxWhileTraining = 1,  // batch_max and batch_min, in training mode only (QAT)
  kMax = 2,               // batch_max and batch_min, in any mode (PTQ calibration)
  kHistogram = 3,         // histogram of |x| (PTQ calibration)
};

// Creates quantizer modules; each kind is one TorchScript class shared by its instances.
class QuantizerFactory {
 public:
  QuantizerFactory();

  // A weight quantizer for a weight with `channels` output channels (dim 0); one scale per
  // channel when `per_channel`, else one scale.
  torch::jit::Module NewWeightQuantizer(bool per_channel, int64_t channels, int64_t bits);
  // An activation quantizer; with `pact` the PACT variant (alpha starts at 20).
  torch::jit::Module NewActivationQuantizer(int64_t bits, bool pact);

 private:
  torch::jit::Module NewInstance(std::optional<torch::jit::Module>& prototype,
                                 const std::string& kind, bool pact);

  std::shared_ptr<torch::jit::CompilationUnit> unit_;
  std::optional<torch::jit::Module> weight_prototype_;
  std::optional<torch::jit::Module> activation_prototype_;
  std::optional<torch::jit::Module> pact_prototype_;
};

// The largest integer level of a symmetric b-bit grid: 2^(b-1) - 1.
int64_t QuantMax(int64_t bits);

// The integer grid of an activation quantizer; zero point 0 either way.
enum class ActivationGrid {
  kSymmetric,  // [-(2^(b-1)-1), 2^(b-1)-1]: scale T / 127 at 8 bits (the default)
  kUnsigned,   // [0, 2^b - 1]: scale T / 255 at 8 bits, negative inputs clip to 0
};

// Sets the grid of `activation_quantizer` for `bits`; its scale is then T / quant_max.
void SetActivationGrid(torch::jit::Module& activation_quantizer, ActivationGrid grid, int64_t bits);

// Quantizer attributes the strategies switch.
void SetEnabled(torch::jit::Module& quantizer, bool enabled);
void SetObserve(torch::jit::Module& activation_quantizer, Observe observe);
void SetQuantize(torch::jit::Module& activation_quantizer, bool quantize);
void SetFrozen(torch::jit::Module& weight_quantizer, bool frozen);
// Export as quantize/dequantize pairs (QDQ) instead of fake-quantize ops.
void SetExportQdq(torch::jit::Module& quantizer, bool qdq);
// Folds the BatchNorm of gamma `bn_weight` and running variance `bn_var` (the BatchNorm's
// own tensors, shared, so that updates reach the quantizer) into the weight quantizer.
void FoldBatchNorm(torch::jit::Module& weight_quantizer, const torch::Tensor& bn_weight,
                   const torch::Tensor& bn_var, double eps);
// Turns folding off and drops the shared tensors.
void UnfoldBatchNorm(torch::jit::Module& weight_quantizer);

}  // namespace slim::quant

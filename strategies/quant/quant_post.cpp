#include "strategies/quant/quant_post.h"

#include "runtime/base/logging.h"
#include "strategies/quant/accumulator_bias.h"
#include "strategies/quant/bias_correction.h"
#include "strategies/quant/quant_config.h"
#include "strategies/quant/quant_export.h"
#include "strategies/quant/quantizer_modules.h"
#include "strategies/quant/threshold_search.h"

namespace slim::quant {

namespace {

void RunBatches(torch::jit::Module& model, const std::vector<torch::Tensor>& batches) {
  for (const auto& batch : batches) model.forward({batch});
}

std::vector<double> ToVector(const torch::Tensor& tensor) {
  const auto flat = tensor.to(torch::kFloat64).contiguous();
  return {flat.data_ptr<double>(), flat.data_ptr<double>() + flat.numel()};
}

}  // namespace

strategies::StrategyRegistration QuantPost::Registration() {
  strategies::StrategyRegistration registration;
  registration.section = "QuantPost";
  registration.order = strategies::PassOrder::kQuantizers;
  const std::string nothing_to_distil =
      "QuantPost calibrates without training, so there is nothing to distil into; use "
      "QuantAware with distillation";
  registration.refusals = {{"Distillation", nothing_to_distil},
                           {"MultiTeacherDistillation", nothing_to_distil}};
  registration.parse = strategies::ParserOf(&ParseQuantPost);
  registration.create = strategies::FactoryOf<QuantPost, QuantPostOptions>();
  return registration;
}

QuantPost::QuantPost(const QuantPostOptions& options,
                     const strategies::StrategyEnvironment& environment)
    : options_(options), comm_(*environment.comm) {}

void QuantPost::Prepare(torch::jit::Module& model) {
  quantized_ = InsertQuantizers(model, options_, /*pact=*/false);
  activations_ = quantized_.ActivationQuantizers();
  // The model stays float until Calibrate: activations are observed on the float model.
  for (auto& layer : quantized_.layers) SetEnabled(layer.weight_quant, false);
  logging::Info("QuantPost: " + quantized_.Describe() + " to quantize with " +
                options_.ptq_algo + " (" + std::to_string(options_.weight_bits) + "/" +
                std::to_string(options_.activation_bits) + " bits)");
}

void QuantPost::ObserveMaxima(torch::jit::Module& model, const std::vector<torch::Tensor>& batches,
                              std::vector<double>& maxima, std::vector<double>& averages,
                              std::vector<double>& lowest) {
  const size_t layers = activations_.size();
  // Per quantizer the local max, then minus the local min (one max-reduction for both);
  // then the sums of per-batch maxima, the batch count last.
  std::vector<double> extremes(2 * layers, 0.0);
  std::vector<double> sums(layers + 1, 0.0);
  for (auto& quantizer : activations_) SetObserve(quantizer, Observe::kMax);
  for (const auto& batch : batches) {
    model.forward({batch});
    for (size_t i = 0; i < layers; ++i) {
      auto batch_max = activations_[i].attr("batch_max").toTensor();
      auto batch_min = activations_[i].attr("batch_min").toTensor();
      const double value = batch_max.item<double>();
      extremes[i] = std::max(extremes[i], value);
      extremes[layers + i] = std::max(extremes[layers + i], -batch_min.item<double>());
      sums[i] += value;
      batch_max.zero_();
      batch_min.zero_();
    }
    sums[layers] += 1;
  }
  auto reduced_extremes = torch::tensor(extremes, torch::kFloat64);
  auto reduced_sums = torch::tensor(sums, torch::kFloat64);
  comm_.AllReduceSync(reduced_extremes, comm::ReduceOp::kMax);
  comm_.AllReduceSync(reduced_sums, comm::ReduceOp::kSum);
  const auto count = static_cast<int64_t>(layers);
  maxima = ToVector(reduced_extremes.slice(0, 0, count));
  lowest = ToVector(-reduced_extremes.slice(0, count));
  averages = ToVector(reduced_sums.slice(0, 0, count) / reduced_sums[count]);
}

void QuantPost::ChooseGrids(const std::vector<double>& lowest) {
  for (size_t i = 0; i < activations_.size(); ++i) {
    const bool non_negative = options_.unsigned_activations && lowest[i] >= 0;
    SetActivationGrid(activations_[i],
                      non_negative ? ActivationGrid::kUnsigned : ActivationGrid::kSymmetric,
                      options_.activation_bits);
  }
}

std::vector<std::vector<double>> QuantPost::ObserveHistograms(
    torch::jit::Module& model, const std::vector<torch::Tensor>& batches,
    const std::vector<double>& maxima) {
  for (size_t i = 0; i < activations_.size(); ++i) {
    auto& quantizer = activations_[i];
    quantizer.setattr("hist_max", std::max(maxima[i], 1e-8));
    // On the device the quantizer observes on (its statistics follow the model there).
    quantizer.setattr("histogram", torch::zeros({kHistogramBins},
                                                quantizer.attr("batch_max").toTensor().options()));
    SetObserve(quantizer, Observe::kHistogram);
  }
  RunBatches(model, batches);
  std::vector<torch::Tensor> local;
  for (auto& quantizer : activations_) local.push_back(quantizer.attr("histogram").toTensor());
  auto histograms = torch::stack(local).to(torch::kCPU, torch::kFloat64).contiguous();
  comm_.AllReduceSync(histograms, comm::ReduceOp::kSum);
  std::vector<std::vector<double>> result;
  for (auto& quantizer : activations_) quantizer.setattr("histogram", torch::zeros({0}));
  for (int64_t i = 0; i < histograms.size(0); ++i) result.push_back(ToVector(histograms[i]));
  return result;
}

void QuantPost::QuantizeWeights() {
  torch::NoGradGuard no_grad;
  for (auto& layer : quantized_.layers) {
    auto weight = layer.layer.attr(QuantizedWeightName(layer.layer)).toTensor();
    SetEnabled(layer.weight_quant, true);
    SetFrozen(layer.weight_quant, false);
    const auto dequantized = layer.weight_quant.forward({weight}).toTensor();
    SetFrozen(layer.weight_quant, true);
    if (options_.bias_correct) {
      const bool per_channel = layer.weight_quant.attr("per_channel").toBool();
      weight.copy_(CorrectWeightQuantization(weight, dequantized, per_channel));
    }
  }
}

void QuantPost::Calibrate(torch::jit::Module& model, const std::vector<torch::Tensor>& batches) {
  torch::NoGradGuard no_grad;
  model.eval();
  std::vector<double> maxima, averages, lowest;
  ObserveMaxima(model, batches, maxima, averages, lowest);
  ChooseGrids(lowest);
  std::vector<double> thresholds = options_.ptq_algo == "avg" ? averages : maxima;
  const auto& algo = options_.ptq_algo;
  if (algo == "hist" || algo == "mse" || algo == "KL") {
    const auto histograms = ObserveHistograms(model, batches, maxima);
    for (size_t i = 0; i < activations_.size(); ++i) {
      const int64_t quant_max = activations_[i].attr("quant_max").toInt();
      if (algo == "hist") {
        thresholds[i] = PercentileThreshold(histograms[i], maxima[i], options_.hist_percent);
      } else if (algo == "mse") {
        thresholds[i] = MseThreshold(histograms[i], maxima[i], quant_max);
      } else {
        thresholds[i] = KlThreshold(histograms[i], maxima[i], quant_max);
      }
    }
  }
  QuantizeWeights();
  for (size_t i = 0; i < activations_.size(); ++i) {
    auto& quantizer = activations_[i];
    const double quant_max = static_cast<double>(quantizer.attr("quant_max").toInt());
    quantizer.attr("scale").toTensor().fill_(std::max(thresholds[i], 1e-8) / quant_max);
    SetObserve(quantizer, Observe::kNothing);
    SetQuantize(quantizer, true);
  }
}

void QuantPost::Finalize(torch::jit::Module& model) const {
  FreezeQuantizers(model, options_.onnx_format);
  SnapBiasesToAccumulatorGrid(model, quantized_.layers);
}

void QuantPost::Export(const torch::jit::Module& finalized, const std::string& output_dir,
                       nlohmann::json& report) const {
  WriteQuantTable(finalized, quantized_, options_, output_dir, report);
  report["quantization"]["ptq_algo"] = options_.ptq_algo;
  report["quantization"]["bias_correct"] = options_.bias_correct;
}

}  // namespace slim::quant

// QuantPost: post-training quantization. No training: each rank runs its share of the
// calibration batches through the float model; maxima, minima, per-batch averages and
// histograms of |x| are reduced over the ranks, so the scales depend on the calibration
// set, not on the number of ranks.
// ptq_algo picks the activation thresholds (threshold_search.h); weights get abs-max
// scales, optionally with bias_correct.
#pragma once

#include "runtime/comm/communicator.h"
#include "strategies/quant/quant_options.h"
#include "strategies/quant/quantize_pass.h"
#include "strategies/registry.h"

namespace slim::quant {

class QuantPost : public strategies::Strategy {
 public:
  QuantPost(const QuantPostOptions& options, const strategies::StrategyEnvironment& environment);

  // Section QuantPost; runs alone (it trains nothing).
  static strategies::StrategyRegistration Registration();

  std::string Name() const override { return "QuantPost"; }
  bool Trains() const override { return false; }
  strategies::CalibrationNeeds CalibrationData() const override {
    return {options_.batch_num, options_.batch_size};
  }
  void Prepare(torch::jit::Module& model) override;
  void Calibrate(torch::jit::Module& model, const std::vector<torch::Tensor>& batches) override;
  void Finalize(torch::jit::Module& model) const override;
  void Export(const torch::jit::Module& finalized, const std::string& output_dir,
              nlohmann::json& report) const override;

 private:
  // Per activation quantizer, over all ranks' batches: the max of |x|, the mean of the
  // per-batch maxima, and the lowest value (0 when none was negative).
  void ObserveMaxima(torch::jit::Module& model, const std::vector<torch::Tensor>& batches,
                     std::vector<double>& maxima, std::vector<double>& averages,
                     std::vector<double>& lowest);
  // Each quantizer's grid: with unsigned_activations the unsigned one where `lowest` says
  // no negative value was seen, else the symmetric one.
  void ChooseGrids(const std::vector<double>& lowest);
  // Per activation quantizer, the histogram of |x| over [0, maxima[layer]] summed over all ranks.
  std::vector<std::vector<double>> ObserveHistograms(torch::jit::Module& model,
                                                     const std::vector<torch::Tensor>& batches,
                                                     const std::vector<double>& maxima);
  void QuantizeWeights();

  quant::QuantPostOptions options_;
  comm::Communicator& comm_;
  QuantizedModel quantized_;
  std::vector<torch::jit::Module> activations_;  // quantized_.ActivationQuantizers()
};

}  // namespace slim::quant

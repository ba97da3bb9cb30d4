#include "export/model_measure.h"

#include <algorithm>
#include <chrono>

#include "export/quant_normal_form.h"
#include "export/value_probe.h"

namespace slim::exporting {

namespace {

std::vector<int64_t> WeightShape(const torch::jit::Value* weight) {
  if (const auto quantized = QuantizedWeightOf(weight)) return quantized->sizes().vec();
  const auto constant = ConstantOf(weight);
  if (constant && constant->isTensor()) return constant->toTensor().sizes().vec();
  return {};
}

int64_t Product(const std::vector<int64_t>& extents) {
  int64_t product = 1;
  for (const auto extent : extents) product *= extent;
  return product;
}

}  // namespace

Latency Summarise(std::vector<double> times_ms, int64_t batch, int64_t threads) {
  std::sort(times_ms.begin(), times_ms.end());
  Latency latency;
  latency.batch = batch;
  latency.threads = threads;
  latency.iterations = static_cast<int64_t>(times_ms.size());
  latency.median_ms = times_ms[times_ms.size() / 2];
  latency.p90_ms = times_ms[std::min(times_ms.size() - 1, times_ms.size() * 9 / 10)];
  latency.samples_per_second = batch * 1000.0 / latency.median_ms;
  return latency;
}

int64_t CountMacs(const FrozenModel& frozen, const at::Tensor& example) {
  std::vector<torch::jit::Value*> observed;
  std::vector<torch::jit::Node*> layers;
  for (auto* node : frozen.graph->nodes()) {
    const auto kind = node->kind();
    if (kind == c10::aten::conv2d || kind == c10::aten::linear) {
      layers.push_back(node);
      observed.push_back(node->output());
    } else if (kind == c10::aten::matmul) {
      layers.push_back(node);
      observed.push_back(node->input(0));
      observed.push_back(node->output());
    }
  }
  if (observed.empty()) return 0;
  const auto shapes = ValueShapes(frozen, observed, example);
  int64_t macs = 0;
  size_t next = 0;
  for (auto* node : layers) {
    if (node->kind() == c10::aten::matmul) {
      const auto& left = shapes[next++];
      macs += Product(shapes[next++]) * (left.empty() ? 1 : left.back());
      continue;
    }
    const auto weight = WeightShape(node->input(1));
    const auto per_output = weight.empty() ? 0 : Product(weight) / weight[0];
    macs += Product(shapes[next++]) * per_output;
  }
  return macs;
}

int64_t CountModelMacs(const torch::jit::Module& model, const at::Tensor& example) {
  return CountMacs(ExportForm(model), example);
}

Latency TimeTorchScript(torch::jit::Module& module, const at::Tensor& example,
                        int64_t batch, const TimingPlan& plan) {
  std::vector<int64_t> repeats(example.dim(), 1);
  repeats[0] = batch;
  torch::NoGradGuard no_grad;
  const auto input = example.cpu().repeat(repeats);
  for (int64_t i = 0; i < plan.warmup; ++i) module.forward({input});
  std::vector<double> times_ms;
  const auto start = std::chrono::steady_clock::now();
  while (static_cast<int64_t>(times_ms.size()) < plan.max_iterations) {
    const auto begin = std::chrono::steady_clock::now();
    module.forward({input});
    const auto end = std::chrono::steady_clock::now();
    times_ms.push_back(std::chrono::duration<double, std::milli>(end - begin).count());
    const double elapsed = std::chrono::duration<double>(end - start).count();
    if (static_cast<int64_t>(times_ms.size()) >= plan.min_iterations && elapsed > plan.budget_s) break;
  }
  return Summarise(times_ms, batch, at::get_num_threads());
}

}  // namespace slim::exporting

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

// A product of two tensors: aten::matmul, or the bmm and baddbmm of PyTorch's own
// attention code.
bool IsProduct(const torch::jit::Node* node) {
  const auto kind = node->kind();
  return kind == c10::aten::matmul || kind == c10::aten::bmm || kind == c10::aten::baddbmm;
}

// A convolution or linear of quantized weight and input, or a matmul of quantized operands.
bool IsQuantizedLayer(const torch::jit::Node* node) {
  if (node->kind() == c10::aten::matmul) {
    return IsDequantizedActivation(node->input(0)) && IsDequantizedActivation(node->input(1));
  }
  return IsQuantizedWeightLayer(node);
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

MacCount CountMacs(const FrozenModel& frozen, const at::Tensor& example) {
  // On a copy, each shape is taken in the block of the node that computes with it, so that
  // a node in a branch not taken counts nothing even when its inputs were computed.
  FrozenModel probe{frozen.module, frozen.graph->copy()};
  std::vector<torch::jit::Node*> layers;
  std::vector<torch::jit::Value*> shapes_at_layers;  // per layer: operand shape, output shape
  const auto shape_of = [&](torch::jit::Node* at, torch::jit::Value* value) {
    torch::jit::WithInsertPoint here(at);
    shapes_at_layers.push_back(probe.graph->insert(c10::aten::_shape_as_tensor, {value}));
  };
  for (auto* node : AllNodes(*probe.graph)) {
    const auto kind = node->kind();
    if (kind == c10::aten::conv2d || kind == c10::aten::linear || IsProduct(node)) {
      layers.push_back(node);
      // baddbmm(bias, left, right): its left operand is input 1.
      shape_of(node, node->input(kind == c10::aten::baddbmm ? 1 : 0));
      shape_of(node->next(), node->output());
    }
  }
  MacCount macs;
  if (layers.empty()) return macs;
  const auto observed = ProbeValues(probe, shapes_at_layers, {example},
                                    [](auto&, auto* shape) { return shape; })
                            .at(0);
  for (size_t i = 0; i < layers.size(); ++i) {
    auto* node = layers[i];
    int64_t node_macs = 0;
    const auto& inputs = observed[2 * i];
    const auto& outputs = observed[2 * i + 1];
    for (size_t run = 0; run < outputs.size(); ++run) {
      const auto input = ShapeFromTensor(inputs[run]);
      const auto output = ShapeFromTensor(outputs[run]);
      if (IsProduct(node)) {
        node_macs += Product(output) * (input.empty() ? 1 : input.back());
      } else {
        const auto weight = WeightShape(node->input(1));
        node_macs += weight.empty() ? 0 : Product(output) * (Product(weight) / weight[0]);
      }
    }
    macs.total += node_macs;
    if (IsQuantizedLayer(node)) macs.quantized += node_macs;
  }
  return macs;
}

MacCount CountModelMacs(const torch::jit::Module& model, const at::Tensor& example) {
  return CountMacs(ExportForm(model), example);
}

torch::jit::Module FrozenCpuCopy(const torch::jit::Module& model) {
  auto copy = model.clone();
  copy.to(torch::kCPU);
  copy.eval();
  return torch::jit::freeze(copy);
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

#include "export/model_measure.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>

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

std::string ShapeArgument(const std::vector<int64_t>& sample_shape, int64_t batch) {
  std::string text = std::to_string(batch);
  for (const auto extent : sample_shape) text += "," + std::to_string(extent);
  return text;
}

}  // namespace

int64_t CountMacs(const FrozenModel& frozen, const std::vector<int64_t>& sample_shape) {
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
  std::vector<int64_t> shape = {1};
  shape.insert(shape.end(), sample_shape.begin(), sample_shape.end());
  const auto shapes = ValueShapes(frozen, observed, at::zeros(shape));
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

int64_t CountModelMacs(const torch::jit::Module& model, const std::vector<int64_t>& sample_shape) {
  return CountMacs(ExportForm(model), sample_shape);
}

Latency TimeTorchScript(torch::jit::Module& module, const std::vector<int64_t>& sample_shape,
                        int64_t batch, const TimingPlan& plan) {
  std::vector<int64_t> shape = {batch};
  shape.insert(shape.end(), sample_shape.begin(), sample_shape.end());
  torch::NoGradGuard no_grad;
  const auto input = torch::randn(shape, torch::Generator(at::detail::createCPUGenerator(7)));
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

std::string OnnxRunnerPath() {
  if (const char* runner = std::getenv("SLIM_ONNX_RUNNER")) return runner;
  std::error_code error;
  const auto executable = std::filesystem::read_symlink("/proc/self/exe", error);
  return (executable.parent_path() / "onnx_run.mjs").string();
}

std::optional<Latency> TimeOnnx(const std::string& path, const std::vector<int64_t>& sample_shape,
                                int64_t batch, int64_t threads, const TimingPlan& plan,
                                std::string* why_not) {
  const auto runner = OnnxRunnerPath();
  if (!std::filesystem::exists(runner)) {
    *why_not = "the ONNX runner " + runner + " is missing";
    return std::nullopt;
  }
  // Iterations fixed up front: the runner has no time budget of its own.
  const std::string command =
      "node '" + runner + "' bench '" + path + "' --shape " + ShapeArgument(sample_shape, batch) +
      " --threads " + std::to_string(threads) + " --warmup " + std::to_string(plan.warmup) +
      " --iterations " + std::to_string(std::max(plan.min_iterations, int64_t{20})) + " 2>&1";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  if (!pipe) {
    *why_not = "cannot start node";
    return std::nullopt;
  }
  std::string output;
  std::array<char, 4096> buffer{};
  while (fgets(buffer.data(), buffer.size(), pipe.get()) != nullptr) output += buffer.data();
  const int status = pclose(pipe.release());
  if (status != 0) {
    *why_not = "ONNX Runtime did not run it: " + output.substr(0, output.find('\n'));
    return std::nullopt;
  }
  const auto result = nlohmann::json::parse(output.substr(output.rfind('{')));
  Latency latency;
  latency.batch = batch;
  latency.threads = threads;
  latency.iterations = result.at("iterations").get<int64_t>();
  latency.median_ms = result.at("median_ms").get<double>();
  latency.p90_ms = result.at("p90_ms").get<double>();
  latency.samples_per_second = batch * 1000.0 / latency.median_ms;
  return latency;
}

}  // namespace slim::exporting

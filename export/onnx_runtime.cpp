#include "export/onnx_runtime.h"

#include <nlohmann/json.hpp>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>

namespace slim::exporting {

namespace {

std::string ShapeArgument(at::IntArrayRef shape) {
  std::string text;
  for (const auto extent : shape) text += (text.empty() ? "" : ",") + std::to_string(extent);
  return text;
}

// Runs the runner with `arguments`; its last JSON line, or nullopt with `why_not` set.
std::optional<nlohmann::json> RunRunner(const std::string& arguments, std::string* why_not) {
  const auto runner = OnnxRunnerPath();
  if (!std::filesystem::exists(runner)) {
    *why_not = "the ONNX Runtime runner " + runner + " is missing";
    return std::nullopt;
  }
  const std::string command = "node '" + runner + "' " + arguments + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) {
    *why_not = "cannot start node";
    return std::nullopt;
  }
  std::string output;
  std::array<char, 4096> buffer{};
  while (fgets(buffer.data(), buffer.size(), pipe) != nullptr) output += buffer.data();
  const int status = pclose(pipe);
  const auto brace = output.rfind('{');
  if (status != 0 || brace == std::string::npos) {
    *why_not = "ONNX Runtime did not run it: " + output.substr(0, output.find('\n'));
    return std::nullopt;
  }
  return nlohmann::json::parse(output.substr(brace));
}

// A file in the temporary directory, removed with this object.
class TemporaryFile {
 public:
  explicit TemporaryFile(const std::string& suffix)
      : path_((std::filesystem::temp_directory_path() /
               ("slim-onnx-" + std::to_string(getpid()) + "-" + std::to_string(counter_++) + suffix))
                  .string()) {}
  ~TemporaryFile() {
    std::error_code ignored;
    std::filesystem::remove(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  inline static int counter_ = 0;
  std::string path_;
};

// Writes `input` to `file` as the runner reads it: int64 token ids as they are, anything
// else as float32. False when the file cannot be written.
bool WriteInput(const std::string& file, const at::Tensor& input) {
  const auto contiguous =
      (input.scalar_type() == at::kLong ? input : input.to(at::kFloat)).cpu().contiguous();
  std::ofstream stream(file, std::ios::binary);
  stream.write(static_cast<const char*>(contiguous.data_ptr()),
               static_cast<std::streamsize>(contiguous.nbytes()));
  return static_cast<bool>(stream);
}

}  // namespace

std::string OnnxRunnerPath() {
  if (const char* runner = std::getenv("SLIM_ONNX_RUNNER")) return runner;
  std::error_code error;
  const auto executable = std::filesystem::read_symlink("/proc/self/exe", error);
  return (executable.parent_path() / "onnx_run.mjs").string();
}

std::optional<Latency> TimeOnnx(const std::string& path, const at::Tensor& example, int64_t batch,
                                int64_t threads, const TimingPlan& plan, std::string* why_not) {
  std::vector<int64_t> repeats(example.dim(), 1);
  repeats[0] = batch;
  const auto input = example.repeat(repeats);
  TemporaryFile input_file(".in");
  if (!WriteInput(input_file.path(), input)) {
    *why_not = "cannot write " + input_file.path();
    return std::nullopt;
  }
  const auto result = RunRunner(
      "bench '" + path + "' '" + input_file.path() + "' --shape " + ShapeArgument(input.sizes()) +
          " --threads " + std::to_string(threads) + " --warmup " + std::to_string(plan.warmup) +
          " --iterations " + std::to_string(std::max<int64_t>(plan.min_iterations, 20)),
      why_not);
  if (!result) return std::nullopt;
  Latency latency;
  latency.batch = batch;
  latency.threads = threads;
  latency.iterations = result->at("iterations").get<int64_t>();
  latency.median_ms = result->at("median_ms").get<double>();
  latency.p90_ms = result->at("p90_ms").get<double>();
  latency.samples_per_second = batch * 1000.0 / latency.median_ms;
  return latency;
}

std::optional<at::Tensor> RunOnnx(const std::string& path, const at::Tensor& input,
                                  int64_t threads, std::string* why_not) {
  TemporaryFile input_file(".in"), output_file(".out");
  if (!WriteInput(input_file.path(), input)) {
    *why_not = "cannot write " + input_file.path();
    return std::nullopt;
  }
  const auto result = RunRunner("run '" + path + "' '" + input_file.path() + "' '" +
                                    output_file.path() + "' --shape " +
                                    ShapeArgument(input.sizes()) + " --threads " +
                                    std::to_string(threads),
                                why_not);
  if (!result) return std::nullopt;
  const auto shape = result->at("output_shape").get<std::vector<int64_t>>();
  auto output = at::empty(shape, at::kFloat);
  std::ifstream stream(output_file.path(), std::ios::binary);
  stream.read(static_cast<char*>(output.data_ptr()), static_cast<std::streamsize>(output.nbytes()));
  if (!stream) {
    *why_not = "ONNX Runtime wrote no complete output";
    return std::nullopt;
  }
  return output;
}

}  // namespace slim::exporting

// slim-model: saves a bundled model as a TorchScript file (to use it as a teacher or to
// inspect it in PyTorch), and times model files the way report.json does:
//   slim-model save resnet56 resnet56.pt --classes 10 --input-shape 3,32,32 --seed 1
//   slim-model bench output/run/model_int8.pt --input-shape 1,28,28 --batch 64 --threads 1
// Exit codes: 0 success, 2 bad usage, 3 model error (see runtime/base/errors.h).
#include <c10/util/Exception.h>
#include <torch/torch.h>

#include <CLI/CLI.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "export/model_measure.h"
#include "export/onnx_runtime.h"
#include "runtime/base/errors.h"
#include "runtime/models/builtin_models.h"
#include "runtime/models/model_loader.h"
#include "tools/parse_or_exit.h"

namespace {

namespace exporting = slim::exporting;
using slim::ModelError;

// The largest class count or input dimension a user may ask for.
constexpr int64_t kMaxSize = INT32_MAX;
// The largest seed. CLI11 2.1.2 wraps negative numbers and saturates too large ones to
// UINT64_MAX, so the bound is what rejects both.
constexpr uint64_t kMaxSeed = INT64_MAX;

// What to build and where to save it.
struct ModelRequest {
  std::string name;
  std::string out;
  // --classes and --input-shape; input_shape stays empty without --input-shape, which
  // means the model's usual input.
  slim::models::ModelShape shape;
  uint64_t seed = 42;
};

// What to time.
struct BenchRequest {
  std::string model;
  std::vector<int64_t> input_shape;
  int64_t batch = 1;
  int64_t threads = 1;
  int64_t iterations = 50;
  int64_t warmup = 10;
  bool json = false;
};

// Declares `save`'s arguments on `app`, bound to `request`.
void DeclareSaveOptions(CLI::App& app, ModelRequest& request) {
  app.add_option("NAME", request.name, "the builtin model")
      ->type_name("")
      ->required()
      ->check(CLI::IsMember(slim::models::BuiltinModelNames()));
  app.add_option("OUT.pt", request.out, "the TorchScript file to write")->type_name("")->required();
  app.add_option("--classes", request.shape.num_classes, "output classes")
      ->type_name("N")
      ->check(CLI::Range(int64_t{1}, kMaxSize))
      ->capture_default_str();
  app.add_option("--input-shape", request.shape.input_shape,
                 "per-sample input shape: C,H,W for image models (default 3,32,32),\n"
                 "L for the transformer (default 128)")
      ->type_name("C,H,W|L")
      ->delimiter(',')
      ->allow_extra_args(false)  // NAME and OUT.pt are not part of the shape
      ->expected(1, 3)
      ->check(CLI::Range(int64_t{1}, kMaxSize));
  app.add_option("--seed", request.seed, "seed of the initial weights")
      ->type_name("S")
      ->check(CLI::Range(uint64_t{0}, kMaxSeed))
      ->capture_default_str();
}

// Declares `bench`'s arguments on `app`, bound to `request`.
void DeclareBenchOptions(CLI::App& app, BenchRequest& request) {
  app.add_option("MODEL", request.model, "a TorchScript (.pt) or ONNX (.onnx) file")
      ->type_name("")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--input-shape", request.input_shape, "per-sample input shape, e.g. 1,28,28")
      ->type_name("C,H,W|L")
      ->delimiter(',')
      ->allow_extra_args(false)
      ->required()
      ->check(CLI::Range(int64_t{1}, kMaxSize));
  app.add_option("--batch", request.batch, "samples per run")
      ->type_name("N")
      ->check(CLI::Range(int64_t{1}, kMaxSize))
      ->capture_default_str();
  app.add_option("--threads", request.threads, "intra-op threads")
      ->type_name("T")
      ->check(CLI::Range(int64_t{1}, int64_t{1024}))
      ->capture_default_str();
  app.add_option("--iterations", request.iterations, "timed runs")
      ->type_name("K")
      ->check(CLI::Range(int64_t{1}, int64_t{1000000}))
      ->capture_default_str();
  app.add_option("--warmup", request.warmup, "untimed runs first")
      ->type_name("W")
      ->check(CLI::Range(int64_t{0}, int64_t{1000000}))
      ->capture_default_str();
  app.add_flag("--json", request.json, "print one JSON line instead of text");
}

// Times the model file: TorchScript in LibTorch, ONNX in ONNX Runtime, both after warm-up
// on one random input: floats, or byte token ids for a 1-D shape. Throws ModelError.
void BenchModel(const BenchRequest& request) {
  const exporting::TimingPlan plan{request.warmup, request.iterations, request.iterations, 0};
  std::vector<int64_t> shape = {1};
  shape.insert(shape.end(), request.input_shape.begin(), request.input_shape.end());
  const auto example = request.input_shape.size() == 1
                           ? torch::randint(0, 256, shape, torch::kLong)
                           : torch::randn(shape);
  std::optional<exporting::Latency> latency;
  std::string runtime;
  if (std::filesystem::path(request.model).extension() == ".onnx") {
    std::string why_not;
    latency = exporting::TimeOnnx(request.model, example, request.batch, request.threads, plan,
                                  &why_not);
    if (!latency) throw ModelError(request.model + ": " + why_not);
    runtime = "onnxruntime";
  } else {
    at::set_num_threads(static_cast<int>(request.threads));
    torch::jit::Module module;
    try {
      module = torch::jit::load(request.model);
    } catch (const c10::Error& error) {
      throw ModelError(request.model + ": not a TorchScript file torch.jit.load can read (" +
                       error.what_without_backtrace() + ")");
    }
    module.eval();
    latency = exporting::TimeTorchScript(module, example, request.batch, plan);
    runtime = "libtorch";
  }
  if (request.json) {
    std::cout << nlohmann::json{{"model", request.model},       {"runtime", runtime},
                                {"batch", latency->batch},      {"threads", latency->threads},
                                {"iterations", latency->iterations},
                                {"median_ms", latency->median_ms}, {"p90_ms", latency->p90_ms},
                                {"samples_per_s", latency->samples_per_second}}
                     .dump()
              << "\n";
    return;
  }
  std::cout << fmt::format("{} ({}): batch {}, {} thread(s), {} runs: median {:.3f} ms, p90 "
                           "{:.3f} ms, {:.1f} samples/s\n",
                           request.model, runtime, latency->batch, latency->threads,
                           latency->iterations, latency->median_ms, latency->p90_ms,
                           latency->samples_per_second);
}

// Builds the model, saves it and prints a one-line summary. Throws ConfigError or
// ModelError (builtin_models.h), or c10::Error when the file cannot be written.
void SaveModel(ModelRequest request) {
  if (request.shape.input_shape.empty()) {
    request.shape.input_shape =
        request.name == "transformer" ? std::vector<int64_t>{128} : std::vector<int64_t>{3, 32, 32};
  }
  torch::manual_seed(request.seed);
  auto model = slim::models::BuildBuiltinModel(request.name, request.shape);
  model.save(request.out);
  std::cout << "wrote " << request.out << ": " << request.name << ", "
            << slim::models::ParameterCount(model) << " parameters\n";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("Saves builtin SlimTrain models as TorchScript files and times model files.",
               "slim-model");
  app.footer("exit codes: 0 ok, 2 bad usage, 3 model error");
  app.require_subcommand(1);
  ModelRequest save_request;
  DeclareSaveOptions(*app.add_subcommand("save", "save a builtin model as a TorchScript file"),
                     save_request);
  BenchRequest bench_request;
  auto* bench = app.add_subcommand(
      "bench", "latency (median, p90) and throughput of a .pt or .onnx file after warm-up");
  DeclareBenchOptions(*bench, bench_request);
  if (const auto code = slim::tools::ParseOrExit(app, argc, argv)) return *code;
  try {
    if (bench->parsed()) {
      BenchModel(bench_request);
    } else {
      SaveModel(save_request);
    }
    return static_cast<int>(slim::ExitCode::kSuccess);
  } catch (const slim::SlimError& e) {
    std::cerr << "slim-model: " << e.what() << "\n";
    return static_cast<int>(e.exit_code());
  } catch (const c10::Error& e) {
    std::cerr << "slim-model: LibTorch: " << e.what_without_backtrace() << "\n";
    return static_cast<int>(slim::ExitCode::kDataOrModel);
  } catch (const std::exception& e) {
    std::cerr << "slim-model: unexpected error: " << e.what() << "\n";
    return static_cast<int>(slim::ExitCode::kDataOrModel);
  }
}

// slim-model: saves a bundled model as a TorchScript file, e.g. to use it as a teacher
// or to inspect it in PyTorch:
//   slim-model resnet56 resnet56.pt --classes 10 --input-shape 3,32,32 --seed 1
// Exit codes: 0 success, 2 bad usage, 3 model error (see runtime/base/errors.h).
#include <c10/util/Exception.h>
#include <torch/torch.h>

#include <CLI/CLI.hpp>

#include <cstdint>
#include <iostream>
#include <string>
#include <vector>

#include "runtime/base/errors.h"
#include "runtime/models/builtin_models.h"
#include "runtime/models/model_loader.h"
#include "tools/parse_or_exit.h"

namespace {

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

// Declares slim-model's arguments on `app`, bound to `request`.
void DeclareOptions(CLI::App& app, ModelRequest& request) {
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
  CLI::App app("Saves a builtin SlimTrain model as a TorchScript file.", "slim-model");
  app.footer("exit codes: 0 ok, 2 bad usage, 3 model error");
  ModelRequest request;
  DeclareOptions(app, request);
  if (const auto code = slim::tools::ParseOrExit(app, argc, argv)) return *code;
  try {
    SaveModel(request);
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

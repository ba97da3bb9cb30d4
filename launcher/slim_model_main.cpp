// slim-model: saves a bundled model as a TorchScript file, e.g. to use it as a teacher
// or to inspect it in PyTorch:
//   slim-model resnet56 resnet56.pt --classes 10 --input-shape 3,32,32 --seed 1
#include <torch/torch.h>

#include <iostream>
#include <sstream>

#include "runtime/errors.h"
#include "runtime/models/builtin_models.h"
#include "runtime/models/model_loader.h"

namespace {

constexpr const char* kUsage =
    "usage: slim-model NAME OUT.pt [--classes N] [--input-shape C,H,W | L] [--seed S]\n"
    "NAME: resnet20, resnet56, mobilenetv2, transformer. Defaults: 10 classes, input shape\n"
    "3,32,32 (128 for transformer), seed 42.\n";

std::vector<int64_t> ParseShape(const std::string& text) {
  std::vector<int64_t> shape;
  std::istringstream in(text);
  for (std::string part; std::getline(in, part, ',');) {
    try {
      shape.push_back(std::stoll(part));
    } catch (const std::exception&) {
      throw slim::ConfigError("--input-shape '" + text + "': expected numbers like 3,32,32");
    }
  }
  return shape;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::vector<std::string> positional;
    slim::models::ModelShape shape;
    uint64_t seed = 42;
    for (int i = 1; i < argc; ++i) {
      const std::string argument = argv[i];
      if (argument == "--help") {
        std::cout << kUsage;
        return 0;
      }
      const bool has_value = i + 1 < argc;
      if (argument == "--classes" && has_value) {
        shape.num_classes = std::stoll(argv[++i]);
      } else if (argument == "--input-shape" && has_value) {
        shape.input_shape = ParseShape(argv[++i]);
      } else if (argument == "--seed" && has_value) {
        seed = std::stoull(argv[++i]);
      } else if (argument.rfind("--", 0) == 0) {
        throw slim::ConfigError("unknown or incomplete option " + argument + "\n" + kUsage);
      } else {
        positional.push_back(argument);
      }
    }
    if (positional.size() != 2) throw slim::ConfigError(std::string("expected NAME OUT.pt\n") + kUsage);
    if (shape.input_shape.empty()) {
      shape.input_shape = positional[0] == "transformer" ? std::vector<int64_t>{128}
                                                         : std::vector<int64_t>{3, 32, 32};
    }
    torch::manual_seed(seed);
    auto model = slim::models::BuildBuiltinModel(positional[0], shape);
    model.save(positional[1]);
    std::cout << "wrote " << positional[1] << ": " << positional[0] << ", "
              << slim::models::ParameterCount(model) << " parameters\n";
    return 0;
  } catch (const slim::SlimError& e) {
    std::cerr << "slim-model: " << e.what() << "\n";
    return static_cast<int>(e.exit_code());
  } catch (const std::exception& e) {
    std::cerr << "slim-model: " << e.what() << "\n";
    return static_cast<int>(slim::ExitCode::kUsageOrConfig);
  }
}

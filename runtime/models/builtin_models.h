// Models that ship with SlimTrain, built in C++ as TorchScript (Module::define with
// TorchScript source), so demos and tests need no Python and the saved files load in
// stock PyTorch with nothing of ours installed.
#pragma once

#include <torch/script.h>

#include <cstdint>
#include <string>
#include <vector>

namespace slim::models {

// What a builtin model is built for; taken from the dataset.
struct ModelShape {
  // Per-sample input shape: {C, H, W} for images, {L} for byte sequences.
  std::vector<int64_t> input_shape;
  // Number of output classes (logits width).
  int64_t num_classes = 10;
};

// Names accepted after "builtin:": resnet20, resnet56, mobilenetv2, fmnist_resnet,
// transformer.
std::vector<std::string> BuiltinModelNames();

// Builds a freshly initialised builtin model (Kaiming-normal conv/linear weights drawn
// from the current torch generator, so seeding torch first makes it reproducible).
// The module is in training mode. Image models need input_shape of size 3, the
// transformer needs size 1 and takes int64 byte tokens (0..255).
// Throws ConfigError for an unknown name (listing the valid ones) and ModelError for a
// shape the model cannot take.
torch::jit::Module BuildBuiltinModel(const std::string& name, const ModelShape& shape);

}  // namespace slim::models

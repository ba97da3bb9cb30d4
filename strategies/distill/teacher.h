// A teacher: a frozen TorchScript model every rank holds, run on the rank's own batches in
// eval mode without autograd, optionally in reduced precision, with taps on the features
// the losses compare.
#pragma once

#include <torch/script.h>

#include <memory>
#include <string>
#include <vector>

#include "strategies/distill/feature_taps.h"

namespace slim::distill {

class Teacher {
 public:
  // `model` must not share classes with the student (load it, or clone it). `reference`
  // names it in messages; `paths` are its tap points (FeatureTaps; may throw ModelError).
  Teacher(torch::jit::Module model, std::string reference, const std::vector<std::string>& paths,
          c10::ScalarType precision);

  // The tapped features of the teacher's forward on `inputs`, as float32 tensors without
  // autograd. Moves the teacher to the inputs' device on first use.
  std::vector<torch::Tensor> Features(const torch::Tensor& inputs);

  const std::string& reference() const { return reference_; }
  // The teacher model (its parameters are frozen: no autograd).
  const torch::jit::Module& model() const { return model_; }

 private:
  torch::jit::Module model_;
  std::string reference_;
  std::unique_ptr<FeatureTaps> taps_;
  c10::ScalarType precision_;
  torch::Device device_ = torch::kCPU;
};

}  // namespace slim::distill

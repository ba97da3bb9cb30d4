// Distillation taps: a graph pass that routes the output of chosen modules through a Tap
// child which keeps it, so the losses can read student and teacher features after a
// forward without Python hooks. The kept tensor is the forward's own value, autograd and
// all.
#pragma once

#include <torch/script.h>

#include <optional>
#include <string>
#include <vector>

namespace slim::distill {

// The tap name of the model's own output.
inline constexpr const char* kLogits = "logits";
// The child every instance of a tapped module's class holds.
inline constexpr const char* kTapChild = "distill_tap";

class FeatureTaps {
 public:
  // Taps the modules of `model` at `paths` (kLogits needs no tap). `role` ("student",
  // "teacher <reference>") names the model in messages. Throws ModelError naming the path
  // and listing the module paths when a path is not a module of the model, and when a
  // tapped module's forward returns something other than one tensor.
  FeatureTaps(torch::jit::Module& model, const std::vector<std::string>& paths,
              const std::string& role);

  // The tapped values of the forward that returned `output`, in the order of the paths,
  // and clears the taps. Throws ModelError for a tapped module that did not run.
  std::vector<torch::Tensor> Take(const torch::Tensor& output);

 private:
  std::vector<std::string> paths_;
  std::vector<std::optional<torch::jit::Module>> taps_;  // none for kLogits
  std::string role_;
};

}  // namespace slim::distill

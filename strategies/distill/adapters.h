// FitNets-style adapters: learned maps from the student's channels to the teacher's
// (a 1x1 convolution on [N, C, H, W], a linear map on [N, C] and on the last dimension of
// token features [N, L, C]). They are TorchScript modules the strategy registers on the
// student, so they train, synchronise and checkpoint with it; the export drops them.
#pragma once

#include <torch/script.h>

#include <memory>
#include <optional>

namespace slim::distill {

// The channel dimension of a feature: 1 for [N, C] and [N, C, H, W], 2 for [N, L, C];
// nullopt for other ranks.
std::optional<int64_t> ChannelDim(const torch::Tensor& feature);

// True when `student` and `teacher` have the same rank, a channel dimension, and differ at
// most in the channel count.
bool DifferOnlyInChannels(const torch::Tensor& student, const torch::Tensor& teacher);

class AdapterFactory {
 public:
  AdapterFactory();

  // An adapter from `student_channels` to `teacher_channels`, its weight drawn like
  // nn.Linear's (uniform in +-1/sqrt(student_channels)) from the current generator. With
  // `vid` it also holds variance_raw [teacher_channels], the per-channel variance of VID
  // before softplus, starting at variance 1.
  torch::jit::Module NewAdapter(int64_t student_channels, int64_t teacher_channels, bool vid);

 private:
  std::shared_ptr<torch::jit::CompilationUnit> unit_;
  std::optional<torch::jit::Module> prototypes_[2];  // plain, VID
};

}  // namespace slim::distill

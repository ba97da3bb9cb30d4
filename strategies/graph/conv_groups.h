// Scripted PyTorch convolutions (nn.Conv1d/2d/3d) list `groups` in __constants__, so their
// compiled code holds the group count as a literal and no instance can change it. This
// pass turns the literal into an int attribute, as the bundled models have, so that
// removing channels from a depthwise convolution can update its group count.
#pragma once

#include <torch/script.h>

#include <cstdint>

namespace slim::graph {

// Rewrites each module class of `model` with a constant `groups` above 1 that its methods
// pass to a convolution: those arguments read self.groups, an int attribute every instance
// of the class gets (the constant's value), and the constant goes. Returns the number of
// classes rewritten. Must run before the model's first forward: a method that ran keeps
// its compiled plan.
int64_t ReadConvolutionGroupsFromAttributes(torch::jit::Module& model);

}  // namespace slim::graph

// Finding the BatchNorms that directly follow a convolution in a TorchScript model, the
// pairs that BatchNorm folding merges.
#pragma once

#include <torch/script.h>

#include <string>
#include <vector>

namespace slim::graph {

// A module with a 4-D `weight` whose output feeds only a BatchNorm.
struct ConvBatchNorm {
  std::string conv_path;  // e.g. "layer1.0.conv1"
  std::string bn_path;    // e.g. "layer1.0.bn1"
  double eps;             // the BatchNorm's epsilon
};

// Every pair where a method of some module calls `conv.forward(x)` and passes the result
// only to `bn.forward`, with `conv` called nowhere else, `bn` a BatchNorm (its forward
// calls aten::batch_norm with a constant or attribute epsilon; weight, bias and running
// statistics of one entry per output channel of `conv`). Sequential containers count:
// their forward calls their children in turn. Ordered by the caller's place in
// named_modules(), then by call.
std::vector<ConvBatchNorm> FindConvBatchNorms(const torch::jit::Module& model);

}  // namespace slim::graph

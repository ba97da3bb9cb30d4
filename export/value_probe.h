// Observing values inside a frozen graph while it runs on real inputs: the range of
// activations for calibration, the shapes of layer outputs for counting MACs.
#pragma once

#include <vector>

#include "export/frozen_graph.h"

namespace slim::exporting {

// For each of `values` (tensors of `frozen.graph`, nested blocks included), the tensors
// `observe` makes of it, on each of `inputs` in turn: one per time the value is computed,
// none in a branch not taken, several in a loop. `frozen` is left as it was.
// result[i][k][r] = observe(values[k] on inputs[i], r-th time computed).
std::vector<std::vector<std::vector<at::Tensor>>> ProbeValues(
    const FrozenModel& frozen, const std::vector<torch::jit::Value*>& values,
    const std::vector<at::Tensor>& inputs,
    const std::function<torch::jit::Value*(torch::jit::Graph&, torch::jit::Value*)>& observe);

// The smallest and largest element each of `values` takes over `inputs`: {min, max};
// {max double, lowest double} for a value never computed.
std::vector<std::pair<double, double>> ValueRanges(const FrozenModel& frozen,
                                                   const std::vector<torch::jit::Value*>& values,
                                                   const std::vector<at::Tensor>& inputs);

// The extents a shape tensor (aten::_shape_as_tensor) holds.
std::vector<int64_t> ShapeFromTensor(const at::Tensor& shape);

// The shapes of each of `values` on `input`, one per time it is computed (ProbeValues).
std::vector<std::vector<std::vector<int64_t>>> ValueShapes(const FrozenModel& frozen,
                                              const std::vector<torch::jit::Value*>& values,
                                              const at::Tensor& input);

}  // namespace slim::exporting

// How much each channel of a ChannelPrune group matters, by PaddleSlim's criteria.
#pragma once

#include <torch/script.h>

#include <map>
#include <string>
#include <vector>

#include "strategies/prune/channel_graph.h"

namespace slim::prune {

// The criteria: "l1_norm" (sum of |w| over the channel's filter of every producing
// weight), "bn_scale" (|gamma| of every BatchNorm on the channels; l1_norm for a group
// without one), "geometry_median" (FPGM: sum of the Euclidean distances from the
// channel's filter to the group's other filters; a filter near the geometric median is
// the most replaceable).
const std::vector<std::string>& ChannelCriteria();

// One score per channel of `group` (larger = more important), read from `tensors` (every
// tensor of the graph's axes at its full size, by path: AxisTensors). Each axis the
// criterion reads has its scores divided by their mean over the group, so layers of
// different scale weigh alike, and the channel's score is the mean of these over the axes
// (Torch-Pruning's group reduction): every group's scores average 1, so a group coupled
// through many layers (a residual stream) is not kept for the number of its layers when
// global pruning ranks all groups together.
std::vector<double> ChannelImportance(const std::map<std::string, torch::Tensor>& tensors,
                                      const ChannelGraph& graph, const ChannelGroup& group,
                                      const std::string& criterion);

}  // namespace slim::prune

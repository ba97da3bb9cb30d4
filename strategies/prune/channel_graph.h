// The channel dependency graph of a TorchScript model, for ChannelPrune: which slices of
// which parameters and buffers must be removed together when a channel goes.
//
// Built from the frozen, inlined graph of `forward` (tensors kept as attribute reads, so
// every operation names the tensors it uses) with the shapes of one example input. Every
// channel of every tensor value is a slot; operations tie slots that must be removed
// together: BatchNorm, activations, pooling and `mean` pass channels through; residual
// add/sub/mul/div tie their operands (broadcasting over channels ties nothing); `cat`
// along channels concatenates, `chunk` splits and ties the chunks' i-th channels (their
// sizes must stay equal); a depthwise convolution ties its input and output channels; a
// channel shuffle (view to [N, g, C/g, H, W], transpose, view back) follows the
// permutation and ties the groups; `flatten` gives each channel its spatial block of a
// following linear layer's columns. An operation the graph does not understand fixes the
// channels of the tensors it reads (they are never removed), as do the model's outputs.
#pragma once

#include <torch/script.h>

#include <cstdint>
#include <string>
#include <vector>

namespace slim::prune {

// What a tensor axis holds of the channels on it.
enum class AxisRole {
  kProducer,   // output channels of a convolution or linear weight (dim 0)
  kConsumer,   // input channels of a convolution or linear weight (dim 1)
  kNormScale,  // a BatchNorm's weight
  kCarried,    // biases and running statistics
};

// One axis of one model tensor from which channels are removed.
struct TensorAxis {
  std::string tensor;  // parameter or buffer path, e.g. "layer1.0.conv1.weight"
  int64_t dim = 0;
  AxisRole role = AxisRole::kCarried;
};

// The indices [begin, end) of axis `axis` (an index into ChannelGraph::axes) that belong
// to one channel: one index, or a flattened channel's spatial block.
struct AxisSlice {
  size_t axis = 0;
  int64_t begin = 0;
  int64_t end = 0;
};

// Slices that can only be removed together.
struct CoupledChannel {
  std::vector<AxisSlice> slices;
};

// Coupled channels that touch the same tensor axes (the channels of one residual stream,
// of one convolution's output): the unit a pruning ratio applies to.
struct ChannelGroup {
  std::string name;                    // the module of its first producer, e.g. "layer1.0.conv1"
  std::vector<std::string> producers;  // weights whose output channels these are
  std::vector<size_t> axes;            // indices into ChannelGraph::axes, ascending
  std::vector<CoupledChannel> channels;
};

// Output channels that stay, and why.
struct FixedChannels {
  std::vector<std::string> producers;  // weights whose output channels these are
  std::string reason;                  // e.g. "read by aten::pixel_shuffle in head.up"
};

struct ChannelGraph {
  std::vector<TensorAxis> axes;
  std::vector<ChannelGroup> groups;  // prunable, in model order
  std::vector<FixedChannels> fixed;
  // Weights of depthwise convolutions: the `groups` attribute of their module follows
  // their channels.
  std::vector<std::string> depthwise_weights;
};

// The graph of `model`'s forward on `example` (a batch of one). `model` is left
// unchanged. Throws ModelError when the model cannot be frozen or run on `example`.
ChannelGraph BuildChannelGraph(const torch::jit::Module& model, const at::Tensor& example);

// The module path and attribute name of a tensor path: "layer1.conv.weight" ->
// {"layer1.conv", "weight"}.
std::pair<std::string, std::string> SplitTensorPath(const std::string& tensor);

// The tensor at `path` in `model`.
torch::Tensor TensorAt(const torch::jit::Module& model, const std::string& path);

}  // namespace slim::prune

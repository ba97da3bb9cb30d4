// A model frozen for export: a copy in eval mode with every method call inlined and
// every parameter, buffer and attribute a constant of one graph, also the attributes the
// model writes in branches that plain freezing keeps (a quantizer's observed scale), so
// that the branches its settings rule out are gone. Tensor operations on constants are
// not evaluated yet: a quantizer applied to a constant weight must stay visible to
// quant_normal_form.h, whose ExportForm finishes the freezing.
#pragma once

#include <torch/script.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace slim::exporting {

struct FrozenModel {
  torch::jit::Module module;                 // owns `graph` as its forward
  std::shared_ptr<torch::jit::Graph> graph;  // input 0 is the module, then the model's inputs
};

// What freezing makes of the model's parameters and buffers.
enum class FrozenTensors {
  kConstants,   // constants of the graph, for export
  kAttributes,  // reads of the frozen module's attributes (prim::GetAttr chains from input
                // 0), so that an analysis can name the tensor each operation uses
};

// Freezes a copy of `model` (left unchanged) on the CPU; dropout is removed. With
// kConstants, PyTorch's attention and encoder layers take the path that runs through
// their layers (models::RunAttentionThroughItsLayers), not the fused inference kernels,
// whose operations no export or count could see. Throws
// ModelError naming the problem when the model cannot be frozen (no forward method).
FrozenModel FreezeForExport(const torch::jit::Module& model,
                            FrozenTensors tensors = FrozenTensors::kConstants);

// Evaluates what is constant in `frozen`'s graph and lets float convolutions absorb the
// BatchNorm after them.
void FoldConstants(FrozenModel& frozen);

// Every node of `graph`, nested blocks included, in order.
std::vector<torch::jit::Node*> AllNodes(const torch::jit::Graph& graph);

// The module path a node of a frozen graph was inlined from ("layer1.0.conv1"), or "" for
// the model's own forward; for messages that name a layer.
std::string LayerOf(const torch::jit::Node* node);

// The value of `value` when it is a constant or computed by one node from constants
// (scale * quant_max), or nullopt.
c10::optional<c10::IValue> ConstantOf(const torch::jit::Value* value);

}  // namespace slim::exporting

// The quantization graph pass shared by QuantAware and QuantPost: picks the layers
// (quantize_op_types, not_quant_pattern) and attaches a weight and an input quantizer to
// each (quantizer_modules.h).
#pragma once

#include <torch/script.h>

#include <string>
#include <vector>

#include "runtime/config/quant_options.h"
#include "strategies/graph/layer_finder.h"

namespace slim::quant {

// A layer that received quantizers.
struct QuantizedLayer {
  std::string path;
  graph::LayerKind kind;
  torch::jit::Module layer;
  torch::jit::Module weight_quant;  // child "weight_quant" of layer
  torch::jit::Module input_quant;   // child "input_quant" of layer
};

// Attaches quantizers to the selected layers of `model` and rewrites their forward graphs.
// Layers that share a TorchScript class with a selected layer but are not selected get
// disabled quantizers (the class's graph is shared). `pact` selects PACT activation
// quantizers. Logs a warning listing the module paths for a not_quant_pattern entry that
// matches nothing. Throws ModelError when the model is already quantized or has no layer
// of the requested types. Must run before the model's first forward.
std::vector<QuantizedLayer> InsertQuantizers(torch::jit::Module& model,
                                             const config::QuantCommonOptions& options,
                                             bool pact);

// True when `path` is `pattern` or lies below a module it names; shell wildcards allowed.
bool MatchesModulePattern(const std::string& pattern, const std::string& path);

}  // namespace slim::quant

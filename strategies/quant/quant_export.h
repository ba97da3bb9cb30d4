// Export of a quantized model: fixed scales, weights on their grid, and the
// quant_table.json that lists every scale.
#pragma once

#include <nlohmann/json.hpp>
#include <torch/script.h>

#include <string>
#include <vector>

#include "strategies/quant/quant_options.h"
#include "strategies/quant/quantize_pass.h"

namespace slim::quant {

// Fixes every enabled quantizer of `model`: a weight quantizer that still follows its
// weight (QAT) takes the current weight's scale and stops following it, and the weight is replaced by its quantized
// value (so weight / scale are integers); activation quantizers stop observing. With
// `qdq` the quantizers run as quantize/dequantize pairs (ONNX QDQ form). The forward
// graphs then hold only standard ATen ops with stored constant parameters.
void FreezeQuantizers(torch::jit::Module& model, bool qdq);

// Writes OUTPUT_DIR/quant_table.json for what `quantized` names, as it is in `finalized`
// (the frozen copy): per layer its kind, and for its weight and input the tensor name,
// bits, scales and zero points (per channel for channel_wise_abs_max); per matmul the same
// for its two operands. Adds a "quantization" entry to `report`: layers, matmuls, bits and
// the weight size as float32 and as stored with weight_bits per quantized weight.
void WriteQuantTable(const torch::jit::Module& finalized, const QuantizedModel& quantized,
                     const quant::QuantCommonOptions& options, const std::string& output_dir,
                     nlohmann::json& report);

}  // namespace slim::quant

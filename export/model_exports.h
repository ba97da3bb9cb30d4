// The files Global.export asks for next to model.pt (which the Compressor writes):
// <stem>_int8.pt (torchscript_int8) and <stem>.onnx (onnx), from the finalized model.
#pragma once

#include <torch/script.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "export/int8_lowering.h"

namespace slim::exporting {

// What an export needs besides the model.
struct ExportInputs {
  at::Tensor example;                     // one input sample, batch of 1
  std::vector<at::Tensor> calibration;    // inputs that calibrate layer output grids
  // What the integer exports (torchscript_int8, a quantized onnx) do with the quantized
  // layers whose outputs the model returns (int8_lowering.h).
  ModelOutput model_output = ModelOutput::kFloat;
};

struct ExportedFile {
  std::string format;  // torchscript_int8, onnx
  std::string path;
  int64_t file_bytes = 0;
};

// Throws ConfigError naming the format and the layer or operator when a format of
// `formats` cannot express `finalized` (the model as the Compressor finalizes it),
// torchscript_int8 is asked for a model no strategy will quantize (`quantizes` false), or
// a quantized model output is asked for (`model_output`) where the model returns no output
// of a layer with its input quantizer on, so that a run refuses at start-up, not after
// training.
void CheckExportable(const torch::jit::Module& finalized, const std::vector<std::string>& formats,
                     const at::Tensor& example, bool quantizes,
                     ModelOutput model_output = ModelOutput::kFloat);

// Writes the files of `formats` other than torchscript to DIRECTORY/<stem>_int8.pt and
// DIRECTORY/<stem>.onnx, each through a temporary file renamed into place; adds what the
// integer lowering did to `details` ("torchscript_int8": engine, integer ops, layers left
// in float, output grids, model outputs on a grid). Throws ModelError when the model cannot be
// exported, OutputError when a file cannot be written.
std::vector<ExportedFile> WriteExports(const torch::jit::Module& finalized,
                                       const std::vector<std::string>& formats,
                                       const std::string& directory, const std::string& stem,
                                       const ExportInputs& inputs, nlohmann::json& details);

// The file name of `format` for `stem`: model.pt, model_int8.pt, model.onnx.
std::string ExportFileName(const std::string& format, const std::string& stem);

}  // namespace slim::exporting

#include "export/model_exports.h"

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "export/frozen_graph.h"
#include "export/int8_lowering.h"
#include "export/onnx_export.h"
#include "export/quant_normal_form.h"
#include "runtime/base/errors.h"
#include "runtime/base/output_file.h"
#include "runtime/base/text.h"

namespace slim::exporting {

namespace {

// True when a layer whose output `frozen` returns has its input quantizer on (the child
// "input_quant" that strategies/quant attaches to the layers it selects; PTQ turns their
// weight quantizers on only at calibration, and instances of a selected layer's class
// that are not selected carry both quantizers off).
bool ReturnsQuantizedLayer(const torch::jit::Module& finalized, const FrozenModel& frozen) {
  const auto returned = ReturnedLayers(*frozen.graph);
  for (const auto& entry : finalized.named_modules()) {
    if (std::find(returned.begin(), returned.end(), entry.name) != returned.end() &&
        entry.value.hasattr("input_quant") &&
        entry.value.attr("input_quant").toModule().attr("enabled").toBool()) {
      return true;
    }
  }
  return false;
}

std::string Int8Bytes(const torch::jit::Module& finalized, const ExportInputs& inputs,
                      nlohmann::json& details) {
  QuantPoints points;
  auto frozen = ExportForm(finalized, &points);
  const auto grids = QuantizeLayerOutputs(frozen, inputs.calibration, inputs.model_output);
  const auto kernels = LowerToIntegerKernels(frozen);
  details["torchscript_int8"] = {
      {"quantized_engine", SelectQuantizedEngine()}, {"integer_ops", kernels.integer_ops},
      {"float_layers", kernels.float_layers},        {"output_grids_taken", grids.taken},
      {"output_grids_calibrated", grids.calibrated}, {"quantized_outputs", grids.model_outputs}};
  std::ostringstream bytes;
  frozen.module.save(bytes);
  return bytes.str();
}

std::string OnnxBytes(const torch::jit::Module& finalized, const ExportInputs& inputs,
                      const std::string& name) {
  QuantPoints points;
  auto frozen = ExportForm(finalized, &points, ReluZeroPoint::kZero);
  if (points.activations > 0) QuantizeLayerOutputs(frozen, inputs.calibration, inputs.model_output);
  const auto bytes = ExportOnnx(frozen, inputs.example, name);
  onnx::ModelProto model;
  model.ParseFromString(bytes);
  try {
    onnx::checker::check_model(model);
  } catch (const std::exception& error) {
    throw ModelError("the ONNX export of " + name + " fails the ONNX checker: " + error.what());
  }
  return bytes;
}

}  // namespace

std::string ExportFileName(const std::string& format, const std::string& stem) {
  if (format == "torchscript_int8") return stem + "_int8.pt";
  if (format == "onnx") return stem + ".onnx";
  return stem + ".pt";
}

void CheckExportable(const torch::jit::Module& finalized, const std::vector<std::string>& formats,
                     const at::Tensor& example, bool quantizes, ModelOutput model_output) {
  const bool int8 = Contains(formats, "torchscript_int8");
  const bool onnx = Contains(formats, "onnx");
  if (!int8 && !onnx) return;
  QuantPoints points;
  FrozenModel frozen;
  try {
    frozen = ExportForm(finalized, &points);
  } catch (const ModelError& error) {
    throw ConfigError(std::string("Global.export: ") + (int8 ? "torchscript_int8" : "onnx") +
                      " cannot express the model: " + error.what());
  }
  if (int8 && !quantizes) {
    throw ConfigError(
        "Global.export: torchscript_int8 needs a quantized model; add a QuantAware or "
        "QuantPost section, or export the float model as torchscript or onnx");
  }
  if (model_output == ModelOutput::kQuantized && !ReturnsQuantizedLayer(finalized, frozen)) {
    throw ConfigError(
        "Global.export_quantized_output: the model returns no output of a quantized layer "
        "directly (a convolution or linear layer, through a ReLU at most), so there are no "
        "logits to put on a grid; quantize its last layer (QuantAware or QuantPost, "
        "quantize_op_types, not_quant_pattern) or drop the key");
  }
  if (!onnx) return;
  const auto refused = OnnxUnsupported(frozen, example);
  if (!refused.empty()) {
    std::string list;
    for (const auto& entry : refused) list += "\n  " + entry;
    throw ConfigError("Global.export: onnx cannot express " + std::to_string(refused.size()) +
                      " operator(s) of the model; remove onnx from Global.export or change "
                      "the model:" + list);
  }
}

std::vector<ExportedFile> WriteExports(const torch::jit::Module& finalized,
                                       const std::vector<std::string>& formats,
                                       const std::string& directory, const std::string& stem,
                                       const ExportInputs& inputs, nlohmann::json& details) {
  std::vector<ExportedFile> files;
  for (const auto& format : formats) {
    if (format == "torchscript") continue;
    const auto path = (std::filesystem::path(directory) / ExportFileName(format, stem)).string();
    const auto bytes = format == "onnx" ? OnnxBytes(finalized, inputs, stem)
                                        : Int8Bytes(finalized, inputs, details);
    files::WriteAtomically(path, bytes);
    files.push_back({format, path, static_cast<int64_t>(bytes.size())});
  }
  return files;
}

}  // namespace slim::exporting

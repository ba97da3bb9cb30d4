#include "strategies/quant/quant_config.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "runtime/base/logging.h"
#include "runtime/base/text.h"

namespace slim::quant {

namespace {

// Op types the quantization pass knows: "linear" a layer with a weight matrix, "matmul" a
// product of two activations (as in attention), "add" a sum of two activations (a
// residual connection: its operands and its result).
const std::vector<std::string> kOpTypes = {"conv2d", "depthwise_conv2d", "linear", "matmul", "add"};
// ACT's names and the op types of the pass they select: "mul" is Paddle's old op of
// fully connected layers; "matmul_v2", Paddle 2's matrix product, is what both nn.Linear
// and activation products lower to; "elementwise_add" is Paddle's add; conv2d_transpose is
// not quantized here.
const std::vector<std::pair<std::string, std::vector<std::string>>> kActOpTypes = {
    {"mul", {"linear"}},
    {"matmul_v2", {"linear", "matmul"}},
    {"elementwise_add", {"add"}},
    {"conv2d_transpose", {}}};

// The pass's op types selected by `written` (quantize_op_types in ACT's or SlimTrain's
// names), each once, in the order written.
std::vector<std::string> PassOpTypes(const config::ConfigSection& section,
                                     const std::vector<std::string>& written) {
  std::vector<std::string> valid = kOpTypes;
  for (const auto& [name, types] : kActOpTypes) valid.push_back(name);
  std::vector<std::string> selected;
  for (const auto& type : written) {
    section.CheckChoice("quantize_op_types", type, valid);
    std::vector<std::string> types = {type};
    for (const auto& [name, pass_types] : kActOpTypes) {
      if (name == type) types = pass_types;
    }
    for (const auto& pass_type : types) {
      if (std::find(selected.begin(), selected.end(), pass_type) == selected.end()) {
        selected.push_back(pass_type);
      }
    }
  }
  if (std::find(written.begin(), written.end(), "conv2d_transpose") != written.end()) {
    logging::Warning(section.Where("quantize_op_types") + ": conv2d_transpose: transposed "
                     "convolutions are not quantized by SlimTrain; they stay in float");
  }
  if (selected.empty()) {
    section.Fail("quantize_op_types", "names no op type SlimTrain quantizes; valid: " +
                                          JoinedList(valid));
  }
  return selected;
}

// `alias` when the section writes ACT's alias of `key`, else `key`: where to point a
// message about the value.
std::string WrittenKey(const config::ConfigSection& section, const std::string& key,
                       const std::string& alias) {
  return section.Has(alias) ? alias : key;
}

void ParseCommon(config::ConfigSection& section, QuantCommonOptions& out,
                 const std::vector<std::string>& default_op_types) {
  out.is_full_quantize = section.Get<bool>("is_full_quantize", out.is_full_quantize);
  const auto written = section.Get<std::vector<std::string>>(
      "quantize_op_types", out.is_full_quantize ? kOpTypes : default_op_types);
  if (written.empty()) section.Fail("quantize_op_types", "must name an op type");
  out.quantize_op_types = PassOpTypes(section, written);
  out.weight_bits = section.Get<int64_t>("weight_bits", out.weight_bits);
  section.CheckRange<int64_t>("weight_bits", out.weight_bits, 2, 16);
  out.activation_bits = section.Get<int64_t>("activation_bits", out.activation_bits);
  section.CheckRange<int64_t>("activation_bits", out.activation_bits, 2, 16);
  out.weight_quantize_type =
      section.Get<std::string>("weight_quantize_type", out.weight_quantize_type);
  section.CheckChoice("weight_quantize_type", out.weight_quantize_type,
              {"channel_wise_abs_max", "abs_max"});
  out.not_quant_pattern =
      section.Get<std::vector<std::string>>("not_quant_pattern", out.not_quant_pattern);
  out.unsigned_activations = section.Get<bool>("unsigned_activations", out.unsigned_activations);
  out.onnx_format = section.Get<bool>("onnx_format", out.onnx_format);
  if (out.onnx_format && out.unsigned_activations) {
    logging::Warning(section.Where("unsigned_activations") +
                     ": with onnx_format, model.pt holds uint8 quantize/dequantize pairs after "
                     "ReLUs, which TensorRT does not take (signed int8 only); set it to false "
                     "for TensorRT");
  }
  if (out.onnx_format && std::max(out.weight_bits, out.activation_bits) > 8) {
    section.Fail("onnx_format", fmt::format(
        "stores int8 quantize/dequantize pairs, which hold at most 8 bits, but weight_bits is {} "
        "and activation_bits {}; lower them to 8 or set onnx_format: false",
        out.weight_bits, out.activation_bits));
  }
}

}  // namespace

void ParseQuantAware(config::ConfigSection section, QuantAwareOptions& out) {
  ParseCommon(section, out, {"conv2d", "depthwise_conv2d"});
  out.activation_quantize_type =
      section.Get<std::string>("activation_quantize_type", out.activation_quantize_type);
  section.CheckChoice("activation_quantize_type", out.activation_quantize_type,
              {"moving_average_abs_max", "range_abs_max", "abs_max"});
  out.moving_rate = section.Get<double>("moving_rate", out.moving_rate);
  section.CheckRange<double>("moving_rate", out.moving_rate, 0, 1);
  out.window_size = section.Get<int64_t>("window_size", out.window_size);
  section.CheckRange<int64_t>("window_size", out.window_size, 1, 1 << 24);
  out.use_pact = section.Get<bool>("use_pact", out.use_pact);
  out.pact_learning_rate = section.Get<double>("pact_learning_rate", out.pact_learning_rate);
  section.CheckRange<double>("pact_learning_rate", out.pact_learning_rate, 0, 1e6);
  out.freeze_bn_step = section.Get<int64_t>("freeze_bn_step", out.freeze_bn_step);
  section.CheckRange<int64_t>("freeze_bn_step", out.freeze_bn_step, -1, int64_t{1} << 40);
  if (section.Has("dtype")) {  // ACT's only value; the grid is int8 at 8 bits here too
    section.CheckChoice("dtype", section.Get<std::string>("dtype", ""), {"int8"});
  }
  if (section.Has("for_tensorrt") && section.Get<bool>("for_tensorrt", false)) {
    section.Fail("for_tensorrt", "ACT's TensorRT op list also quantizes the outputs of pool2d "
                                 "and leaky_relu, which SlimTrain does not; set it to false and "
                                 "list quantize_op_types (conv2d, depthwise_conv2d, linear, "
                                 "elementwise_add)");
  }
  section.RejectUnknownKeys();
}

void ParseQuantPost(config::ConfigSection section, QuantPostOptions& out) {
  ParseCommon(section, out, {"conv2d", "depthwise_conv2d", "linear"});
  out.ptq_algo = section.GetAliased<std::string>("ptq_algo", "algo", out.ptq_algo);
  section.CheckChoice(WrittenKey(section, "ptq_algo", "algo"), out.ptq_algo,
                      {"abs_max", "avg", "hist", "mse", "KL"});
  out.hist_percent = section.Get<double>("hist_percent", out.hist_percent);
  section.CheckRange<double>("hist_percent", out.hist_percent, 0.5, 1);
  out.bias_correct = section.GetAliased<bool>("bias_correct", "bias_correction", out.bias_correct);
  out.batch_num = section.GetAliased<int64_t>("batch_num", "batch_nums", out.batch_num);
  section.CheckRange<int64_t>(WrittenKey(section, "batch_num", "batch_nums"), out.batch_num, 1,
                              std::numeric_limits<int32_t>::max());
  out.batch_size = section.Get<int64_t>("batch_size", out.batch_size);
  section.CheckRange<int64_t>("batch_size", out.batch_size, 1, 1 << 20);
  out.activation_quantize_type =
      section.Get<std::string>("activation_quantize_type", out.activation_quantize_type);
  section.CheckChoice("activation_quantize_type", out.activation_quantize_type,
              {"range_abs_max", "moving_average_abs_max", "abs_max"});
  if (section.Has("recon_level")) {
    section.Fail("recon_level", "layer-wise and region-wise reconstruction (ACT's "
                                "quant_recon_static) is not available; remove recon_level to "
                                "calibrate without it");
  }
  for (const auto* key : {"epochs", "lr", "simulate_activation_quant", "regions",
                          "region_weights_names"}) {
    section.Ignore(key, "only reconstruction (recon_level) uses it, and ACT ignores it "
                        "without recon_level too");
  }
  section.Ignore("skip_tensor_list", "Paddle tensor names, which ACT passes to reconstruction "
                                     "only; keep layers in float with not_quant_pattern "
                                     "(module paths)");
  section.RejectUnknownKeys();
}

}  // namespace slim::quant

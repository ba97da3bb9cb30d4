#include "strategies/quant/quant_config.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

namespace slim::quant {

namespace {

// Op types the quantization pass knows; "mul" is ACT's name for linear, "matmul" a product
// of two activations.
const std::vector<std::string> kOpTypes = {"conv2d", "depthwise_conv2d", "linear", "mul",
                                           "matmul"};

void ParseCommon(config::ConfigSection& section, QuantCommonOptions& out,
                 const std::vector<std::string>& default_op_types) {
  out.is_full_quantize = section.Get<bool>("is_full_quantize", out.is_full_quantize);
  out.quantize_op_types = section.Get<std::vector<std::string>>(
      "quantize_op_types", out.is_full_quantize ? kOpTypes : default_op_types);
  if (out.quantize_op_types.empty()) section.Fail("quantize_op_types", "must name an op type");
  for (auto& type : out.quantize_op_types) {
    section.CheckChoice("quantize_op_types", type, kOpTypes);
    if (type == "mul") type = "linear";
  }
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
  out.onnx_format = section.Get<bool>("onnx_format", out.onnx_format);
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
  section.RejectUnknownKeys();
}

void ParseQuantPost(config::ConfigSection section, QuantPostOptions& out) {
  ParseCommon(section, out, {"conv2d", "depthwise_conv2d", "linear"});
  out.ptq_algo = section.Get<std::string>("ptq_algo", out.ptq_algo);
  section.CheckChoice("ptq_algo", out.ptq_algo, {"abs_max", "avg", "hist", "mse", "KL"});
  out.hist_percent = section.Get<double>("hist_percent", out.hist_percent);
  section.CheckRange<double>("hist_percent", out.hist_percent, 0.5, 1);
  out.bias_correct = section.Get<bool>("bias_correct", out.bias_correct);
  out.batch_num = section.Get<int64_t>("batch_num", out.batch_num);
  section.CheckRange<int64_t>("batch_num", out.batch_num, 1, std::numeric_limits<int32_t>::max());
  out.batch_size = section.Get<int64_t>("batch_size", out.batch_size);
  section.CheckRange<int64_t>("batch_size", out.batch_size, 1, 1 << 20);
  out.activation_quantize_type =
      section.Get<std::string>("activation_quantize_type", out.activation_quantize_type);
  section.CheckChoice("activation_quantize_type", out.activation_quantize_type,
              {"range_abs_max", "moving_average_abs_max", "abs_max"});
  section.RejectUnknownKeys();
}

}  // namespace slim::quant

// Options of the quantization strategies, QuantAware (QAT) and QuantPost (PTQ), with the
// key names and defaults of PaddleSlim ACT. docs/configuration.md shows the same text.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/config/options.h"

namespace slim::quant {

// Keys both quantization strategies share.
struct QuantCommonOptions : config::StrategyOptions {
  // quantize_op_types: which layers get quantized: conv2d, depthwise_conv2d, linear (or
  // its ACT name mul) and matmul; ACT's matmul_v2 selects linear and matmul, its
  // conv2d_transpose nothing (with a warning). Holds the pass's names, each once.
  // QuantAware default [conv2d, depthwise_conv2d]; QuantPost default [conv2d,
  // depthwise_conv2d, linear].
  std::vector<std::string> quantize_op_types;
  // is_full_quantize: quantize every op type slim-train supports. Default false.
  bool is_full_quantize = false;
  // weight_bits / activation_bits: 2..16. Default 8.
  int64_t weight_bits = 8;
  int64_t activation_bits = 8;
  // weight_quantize_type: channel_wise_abs_max (a scale per output channel) or abs_max
  // (one per tensor). Default channel_wise_abs_max.
  std::string weight_quantize_type = "channel_wise_abs_max";
  // not_quant_pattern: module paths left in float; a pattern matches a path, or a path
  // below it, with shell wildcards (`fc`, `layer1`, `layer*.0.conv1`). Default none.
  std::vector<std::string> not_quant_pattern;
  // unsigned_activations: an activation never seen negative in calibration (PTQ) or in
  // training so far (QAT), such as a ReLU's output, is quantized on the unsigned grid
  // [0, T] with 2^b levels and zero point 0 instead of the symmetric one: twice the
  // resolution, and the layout PyTorch's x86 integer kernels run fastest after a ReLU.
  // Exports then hold uint8 activations with zero point 0 there; TensorRT takes only the
  // symmetric grid. A value that turns negative later clips to 0 (PTQ), or switches that
  // activation back to the symmetric grid for good (QAT). Default false.
  bool unsigned_activations = false;
  // onnx_format: export quantize/dequantize pairs (QDQ, int8 [-128, 127], zero point 0;
  // uint8 on the unsigned grid) instead of fake-quantize ops. Default false.
  bool onnx_format = false;
};

// QuantAware: quantization-aware training.
struct QuantAwareOptions : QuantCommonOptions {
  // activation_quantize_type: how an activation's scale follows the statistics:
  // moving_average_abs_max (default), range_abs_max (max over the last window_size
  // steps) or abs_max (the max of the last step). Statistics are reduced over all ranks.
  std::string activation_quantize_type = "moving_average_abs_max";
  // moving_rate: decay of moving_average_abs_max. Default 0.9.
  double moving_rate = 0.9;
  // window_size: steps range_abs_max looks back over. Default 10000.
  int64_t window_size = 10000;
  // use_pact: clip each quantized activation to a learnable [-alpha, alpha] (PACT) before
  // quantizing it. alpha starts at 20 and is trained with its own learning rate.
  bool use_pact = false;
  // pact_learning_rate: learning rate of the PACT alphas (no weight decay). Default 1e-4.
  double pact_learning_rate = 1e-4;
  // freeze_bn_step: from this training step (0-based) on, each BatchNorm that directly
  // follows a quantized convolution stops updating its statistics and normalises with its
  // running ones, and the convolution's weight is quantized folded with it (w * gamma /
  // sqrt(var + eps)), as TensorRT and SparseML QAT recipes do; the export then holds the
  // folded weights. Default -1: never (BatchNorm stays in float, weights unfolded).
  int64_t freeze_bn_step = -1;
};

// QuantPost: post-training quantization (calibration, no training).
struct QuantPostOptions : QuantCommonOptions {
  // ptq_algo (ACT's QuantPost also spells it algo): abs_max, avg (mean of per-batch
  // maxima), hist (percentile hist_percent of |x|), mse (minimum quantization error) or KL
  // (minimum KL divergence). Default hist.
  std::string ptq_algo = "hist";
  // hist_percent: the percentile hist keeps. Default 0.999.
  double hist_percent = 0.999;
  // bias_correct (or ACT's bias_correction): after quantizing the weights, correct each
  // output channel's mean and spread to those of the float weights. Default false.
  bool bias_correct = false;
  // batch_num (or ACT's batch_nums) / batch_size: calibration batches over all ranks, and
  // samples per batch. Default 10 batches of 32.
  int64_t batch_num = 10;
  int64_t batch_size = 32;
  // activation_quantize_type: range_abs_max (default), moving_average_abs_max or abs_max.
  // Accepted for ACT configs; it does not change PTQ, whose scales come from ptq_algo.
  std::string activation_quantize_type = "range_abs_max";
};

}  // namespace slim::quant

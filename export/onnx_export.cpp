#include "export/onnx_export.h"

#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "export/batch_specialisation.h"
#include "export/onnx_graph.h"
#include "export/quant_normal_form.h"
#include "export/value_probe.h"
#include "runtime/base/errors.h"

namespace slim::exporting {

namespace {

using torch::jit::Node;
using torch::jit::Value;

// Per spatial pair [a, b] as ONNX pads [a, b, a, b].
std::vector<int64_t> Pads(const std::vector<int64_t>& padding) {
  std::vector<int64_t> pads(padding);
  pads.insert(pads.end(), padding.begin(), padding.end());
  return pads;
}

std::vector<int64_t> Twice(const std::vector<int64_t>& values) {
  return values.size() == 1 ? std::vector<int64_t>{values[0], values[0]} : values;
}

// The translation of one graph into ONNX nodes.
class Translator {
 public:
  Translator(OnnxGraph& onnx, std::map<const Value*, int64_t> ranks)
      : onnx_(onnx), ranks_(std::move(ranks)) {}

  void Translate(const Node* node) {
    const std::string kind = node->kind().toQualString();
    const auto output = node->outputs().empty() ? nullptr : node->output(0);
    if (kind == "aten::contiguous" || kind == "aten::detach" || kind == "aten::clone") {
      onnx_.Bind(output, In(node, 0));
      return;
    }
    if (output && output->type()->kind() == c10::TypeKind::IntType) {
      onnx_.Bind(output, IntArithmetic(node));
      return;
    }
    if (node->kind() == c10::prim::ListUnpack) {
      for (const auto* extent : node->outputs()) {
        onnx_.Bind(extent, UnpackedExtent(node->input(), extent->offset()));
      }
      return;
    }
    const auto unary = kUnary.find(kind);
    if (unary != kUnary.end()) {
      onnx_.Bind(output, onnx_.Add(unary->second, {In(node, 0)}));
      return;
    }
    const auto binary = kBinary.find(kind);
    if (binary != kBinary.end()) {
      if (node->inputs().size() == 3 && Number(node->input(2)) != 1) throw OnnxRefusal{"alpha != 1"};
      onnx_.Bind(output, onnx_.Add(binary->second, {In(node, 0), In(node, 1)}));
      return;
    }
    const auto special = Handlers().find(kind);
    if (special == Handlers().end()) throw OnnxRefusal{"no ONNX operator for " + kind};
    onnx_.Bind(output, special->second(*this, node));
  }

 private:
  using Handler = std::function<std::string(Translator&, const Node*)>;

  std::string In(const Node* node, size_t index) { return onnx_.NameOf(node->input(index)); }

  // An int of the graph as a 0-d int64: a constant, or computed from a shape at run time.
  std::string IntName(const Value* value) {
    if (const auto constant = torch::jit::toIValue(value)) {
      return onnx_.Initializer(at::scalar_tensor(constant->toInt(), at::kLong), "int");
    }
    return onnx_.NameOf(value);
  }

  // An int computed from shapes: the extent of a tensor, or arithmetic on such ints.
  std::string IntArithmetic(const Node* node) {
    if (node->kind() == c10::aten::size) {
      if (node->inputs().size() != 2) throw OnnxRefusal{"size of an unexpected form"};
      return Extent(node, Constant(node->input(1)).toInt());
    }
    const auto op = kIntArithmetic.find(node->kind().toQualString());
    if (op == kIntArithmetic.end()) throw OnnxRefusal{"an int operation with no ONNX counterpart"};
    std::vector<std::string> inputs;
    for (const auto* input : node->inputs()) inputs.push_back(IntName(input));
    return onnx_.Add(op->second, inputs);
  }

  // Extent `dim` of the tensor `size_node` (an aten::size) reads, a 0-d int64.
  std::string Extent(const Node* size_node, int64_t dim) {
    const auto index = onnx_.Initializer(at::scalar_tensor(dim, at::kLong), "dim");
    return onnx_.Add("Gather", {onnx_.Add("Shape", {In(size_node, 0)}), index});
  }
  // Extent `dim` of `shape`, which must be a tensor's aten::size list.
  std::string UnpackedExtent(const Value* shape, size_t dim) {
    if (shape->node()->kind() != c10::aten::size || shape->node()->inputs().size() != 1) {
      throw OnnxRefusal{"unpacking a list that is not a tensor's shape"};
    }
    return Extent(shape->node(), static_cast<int64_t>(dim));
  }

  // A list of ints as a 1-d int64 tensor: an initializer when constant, else the
  // extents concatenated at run time.
  std::string IntList(const Value* list) {
    if (const auto constant = ConstantOf(list)) {
      return onnx_.Initializer(at::tensor(constant->toIntVector(), at::kLong), "shape");
    }
    const Node* producer = list->node();
    if (producer->kind() == c10::aten::size && producer->inputs().size() == 1) {
      return onnx_.Add("Shape", {In(producer, 0)});
    }
    if (producer->kind() != c10::prim::ListConstruct) throw OnnxRefusal{"a shape built at run time"};
    std::vector<std::string> items;
    for (const auto* item : producer->inputs()) {
      const auto axes = onnx_.Initializer(at::tensor({int64_t{0}}, at::kLong), "axes");
      items.push_back(onnx_.Add("Unsqueeze", {IntName(item), axes}));
    }
    return onnx_.Add("Concat", items, [](auto& proto) { SetInt(proto, "axis", 0); });
  }

  // The rank of tensor `value`, observed on the example.
  int64_t RankOf(const Value* value) const {
    const auto rank = ranks_.find(value);
    if (rank == ranks_.end()) throw OnnxRefusal{"a tensor of unknown rank"};
    return rank->second;
  }

  std::string Transpose(const Node* node) {
    const auto rank = RankOf(node->input(0));
    std::vector<int64_t> order(rank);
    for (int64_t i = 0; i < rank; ++i) order[i] = i;
    const auto first = c10::maybe_wrap_dim(Constant(node->input(1)).toInt(), rank);
    const auto second = c10::maybe_wrap_dim(Constant(node->input(2)).toInt(), rank);
    std::swap(order[first], order[second]);
    return Transposed(node, order);
  }

  std::string Permute(const Node* node) {
    auto order = Ints(node->input(1));
    for (auto& axis : order) axis = c10::maybe_wrap_dim(axis, static_cast<int64_t>(order.size()));
    return Transposed(node, order);
  }

  std::string Transposed(const Node* node, const std::vector<int64_t>& order) {
    return onnx_.Add("Transpose", {In(node, 0)},
                     [&](auto& proto) { SetInts(proto, "perm", order); });
  }

  // select(x, dim, index): Gather with a scalar index drops the dimension as select does.
  std::string Select(const Node* node) {
    const auto index = IntName(node->input(2));
    return onnx_.Add("Gather", {In(node, 0), index}, [&](auto& proto) {
      SetInt(proto, "axis", Constant(node->input(1)).toInt());
    });
  }

  std::string Embedding(const Node* node) {
    return onnx_.Add("Gather", {In(node, 0), In(node, 1)},
                     [](auto& proto) { SetInt(proto, "axis", 0); });
  }

  // torch.arange of constant bounds (the positions of a fixed sequence length).
  std::string Arange(const Node* node) {
    const auto bounds = node->inputs().size() - 4;  // then dtype, layout, device, pin_memory
    std::vector<c10::Scalar> numbers;
    for (size_t i = 0; i < bounds; ++i) {
      const auto bound = ConstantOf(node->input(i));
      if (!bound) throw OnnxRefusal{"arange whose bounds follow the batch size"};
      numbers.push_back(bound->toScalar());
    }
    const auto start = bounds > 1 ? numbers[0] : c10::Scalar(0);
    const auto end = bounds > 1 ? numbers[1] : numbers[0];
    const auto step = bounds > 2 ? numbers[2] : c10::Scalar(1);
    auto values = at::arange(start, end, step);
    const auto dtype = Constant(node->input(bounds));
    if (!dtype.isNone()) values = values.to(static_cast<at::ScalarType>(dtype.toInt()));
    return onnx_.Initializer(values, "arange");
  }

  // Layer normalisation over the trailing dimensions, in the operators opset 13 has (the
  // pattern ONNX Runtime fuses into one LayerNormalization kernel).
  std::string LayerNorm(const Node* node) {
    const auto trailing = static_cast<int64_t>(Ints(node->input(1)).size());
    std::vector<int64_t> axes;
    for (int64_t i = -trailing; i < 0; ++i) axes.push_back(i);
    const auto mean = [&](const std::string& x) {
      return onnx_.Add("ReduceMean", {x}, [&](auto& proto) { SetInts(proto, "axes", axes); });
    };
    const auto centred = onnx_.Add("Sub", {In(node, 0), mean(In(node, 0))});
    const auto two = onnx_.Initializer(at::scalar_tensor(2.0, at::kFloat), "two");
    const auto variance = mean(onnx_.Add("Pow", {centred, two}));
    const auto epsilon =
        onnx_.Initializer(at::scalar_tensor(Number(node->input(4)), at::kFloat), "epsilon");
    const auto deviation = onnx_.Add("Sqrt", {onnx_.Add("Add", {variance, epsilon})});
    auto result = onnx_.Add("Div", {centred, deviation});
    if (!Constant(node->input(2)).isNone()) result = onnx_.Add("Mul", {result, In(node, 2)});
    if (!Constant(node->input(3)).isNone()) result = onnx_.Add("Add", {result, In(node, 3)});
    return result;
  }

  std::string Quantize(const Node* node) {
    double scale = 0;
    int64_t zero_point = 0;
    if (!IsActivationQuantize(node->output(), &scale, &zero_point)) {
      throw OnnxRefusal{"a quantization that is not in the exported form"};
    }
    const auto scale_name = onnx_.Initializer(at::scalar_tensor(scale, at::kFloat), "scale");
    const auto zero_name =
        onnx_.Initializer(at::scalar_tensor(zero_point, at::kLong).to(at::kByte), "zero_point");
    grids_[node->output()] = {scale_name, zero_name};
    return onnx_.Add("QuantizeLinear", {In(node, 0), scale_name, zero_name});
  }

  std::string Dequantize(const Node* node) {
    if (const auto weight = QuantizedWeightOf(node->output())) {
      return DequantizeWeight(*weight, /*transposed=*/false);
    }
    const auto grid = grids_.find(node->input());
    if (grid == grids_.end()) throw OnnxRefusal{"a dequantize of an unknown grid"};
    return onnx_.Add("DequantizeLinear", {In(node, 0), grid->second.first, grid->second.second});
  }

  // An int8 weight, per channel on axis 0 (axis 1 when stored transposed for MatMul).
  std::string DequantizeWeight(const at::Tensor& weight, bool transposed) {
    const bool per_channel = weight.qscheme() == at::kPerChannelAffine;
    auto integers = weight.int_repr();
    if (transposed) integers = integers.t();
    const auto name = onnx_.Initializer(integers, "weight_int8");
    const auto scales = per_channel ? weight.q_per_channel_scales().to(at::kFloat)
                                    : at::scalar_tensor(weight.q_scale(), at::kFloat);
    const auto zeros = at::zeros(scales.sizes(), at::kChar);
    const auto scale_name = onnx_.Initializer(scales, "weight_scale");
    const auto zero_name = onnx_.Initializer(zeros, "weight_zero_point");
    return onnx_.Add("DequantizeLinear", {name, scale_name, zero_name}, [&](auto& proto) {
      if (per_channel) SetInt(proto, "axis", transposed ? 1 : 0);
    });
  }

  // The weight's kernel size, from the float constant or the quantized weight.
  static std::vector<int64_t> KernelShape(const Value* weight) {
    const auto quantized = QuantizedWeightOf(weight);
    const auto tensor = quantized ? *quantized : Constant(weight).toTensor();
    return {tensor.size(2), tensor.size(3)};
  }

  std::string Conv(const Node* node, size_t groups_index) {
    std::vector<std::string> inputs = {In(node, 0), In(node, 1)};
    if (!Constant(node->input(2)).isNone()) inputs.push_back(In(node, 2));
    const auto padding = Constant(node->input(4));
    if (padding.isString()) throw OnnxRefusal{"padding='" + padding.toStringRef() + "'"};
    return onnx_.Add("Conv", inputs, [&](auto& proto) {
      SetInts(proto, "kernel_shape", KernelShape(node->input(1)));
      SetInts(proto, "strides", Twice(Ints(node->input(3))));
      SetInts(proto, "pads", Pads(Twice(padding.toIntVector())));
      SetInts(proto, "dilations", Twice(Ints(node->input(5))));
      SetInt(proto, "group", Constant(node->input(groups_index)).toInt());
    });
  }

  std::string Linear(const Node* node) {
    const auto rank = ranks_.find(node->input(0));
    const bool has_bias = !Constant(node->input(2)).isNone();
    if (rank != ranks_.end() && rank->second == 2) {
      std::vector<std::string> inputs = {In(node, 0), In(node, 1)};
      if (has_bias) inputs.push_back(In(node, 2));
      return onnx_.Add("Gemm", inputs, [](auto& proto) { SetInt(proto, "transB", 1); });
    }
    const auto quantized = QuantizedWeightOf(node->input(1));
    const auto weight = quantized ? DequantizeWeight(*quantized, /*transposed=*/true)
                                  : onnx_.Initializer(Constant(node->input(1)).toTensor().t(), "weight_t");
    const auto product = onnx_.Add("MatMul", {In(node, 0), weight});
    return has_bias ? onnx_.Add("Add", {product, In(node, 2)}) : product;
  }

  std::string Clip(const Node* node) {
    const auto grid = grids_.find(node->input(0));
    if (grid != grids_.end()) return IntegerClip(node, grid->second);
    std::vector<std::string> inputs = {In(node, 0)};
    for (size_t i = 1; i <= 2; ++i) {
      inputs.push_back(Constant(node->input(i)).isNone() ? "" : In(node, i));
    }
    return onnx_.Add("Clip", inputs);
  }

  // A clamp of quantized integers (the normal form's clip after a ReLU): a Clip of the
  // uint8 values, its bounds on the same grid, whose output dequantizes like its input.
  std::string IntegerClip(const Node* node, const std::pair<std::string, std::string>& grid) {
    double scale = 0;
    int64_t zero_point = 0;
    IsActivationQuantize(node->input(0), &scale, &zero_point);
    std::vector<std::string> inputs = {In(node, 0)};
    for (size_t i = 1; i <= 2; ++i) {
      const auto integer = std::lround(Number(node->input(i)) / scale) + zero_point;
      inputs.push_back(onnx_.Initializer(
          at::scalar_tensor(std::clamp<int64_t>(integer, 0, 255), at::kLong).to(at::kByte),
          i == 1 ? "clip_min" : "clip_max"));
    }
    grids_[node->output()] = grid;
    return onnx_.Add("Clip", inputs);
  }

  std::string Pool(const Node* node, const std::string& op) {
    const auto kernel = Twice(Ints(node->input(1)));
    auto strides = Ints(node->input(2));
    if (strides.empty()) strides = kernel;
    const bool max = op == "MaxPool";
    const bool ceil = Constant(node->input(max ? 5 : 4)).toBool();
    if (!max && node->inputs().size() > 6 && !Constant(node->input(6)).isNone()) {
      throw OnnxRefusal{"divisor_override"};
    }
    return onnx_.Add(op, {In(node, 0)}, [&](auto& proto) {
      SetInts(proto, "kernel_shape", kernel);
      SetInts(proto, "strides", Twice(strides));
      SetInts(proto, "pads", Pads(Twice(Ints(node->input(3)))));
      SetInt(proto, "ceil_mode", ceil ? 1 : 0);
      if (max) SetInts(proto, "dilations", Twice(Ints(node->input(4))));
      if (!max) SetInt(proto, "count_include_pad", Constant(node->input(5)).toBool() ? 1 : 0);
    });
  }

  std::string Mean(const Node* node) {
    return onnx_.Add("ReduceMean", {In(node, 0)}, [&](auto& proto) {
      SetInts(proto, "axes", Ints(node->input(1)));
      SetInt(proto, "keepdims", Constant(node->input(2)).toBool() ? 1 : 0);
    });
  }

  // flatten(start, end) as a Reshape to the extents before start, -1, the extents after end.
  std::string Flatten(const Node* node) {
    const auto rank = RankOf(node->input(0));
    const auto start = c10::maybe_wrap_dim(Constant(node->input(1)).toInt(), rank);
    const auto end = c10::maybe_wrap_dim(Constant(node->input(2)).toInt(), rank);
    if (start == 1 && end == rank - 1) {
      return onnx_.Add("Flatten", {In(node, 0)}, [](auto& proto) { SetInt(proto, "axis", 1); });
    }
    const auto shape = onnx_.Add("Shape", {In(node, 0)});
    const auto range = [&](int64_t from, int64_t to) {
      const auto bound = [&](int64_t index) {
        return onnx_.Initializer(at::tensor({index}, at::kLong), "bound");
      };
      return onnx_.Add("Slice", {shape, bound(from), bound(to)});
    };
    std::vector<std::string> parts;
    if (start > 0) parts.push_back(range(0, start));
    parts.push_back(onnx_.Initializer(at::tensor({int64_t{-1}}, at::kLong), "rest"));
    if (end + 1 < rank) parts.push_back(range(end + 1, rank));
    const auto target = onnx_.Add("Concat", parts, [](auto& proto) { SetInt(proto, "axis", 0); });
    return onnx_.Add("Reshape", {In(node, 0), target});
  }

  std::string Reshape(const Node* node) {
    return onnx_.Add("Reshape", {In(node, 0), IntList(node->input(1))});
  }

  std::string Concat(const Node* node) {
    const Node* list = node->input(0)->node();
    if (list->kind() != c10::prim::ListConstruct) throw OnnxRefusal{"cat of a list built at run time"};
    std::vector<std::string> inputs;
    for (const auto* item : list->inputs()) inputs.push_back(onnx_.NameOf(item));
    return onnx_.Add("Concat", inputs, [&](auto& proto) {
      SetInt(proto, "axis", Constant(node->input(1)).toInt());
    });
  }

  std::string Gelu(const Node* node) {
    if (node->inputs().size() > 1 && Constant(node->input(1)).toStringRef() != "none") {
      throw OnnxRefusal{"gelu with approximate='tanh'"};
    }
    const auto x = In(node, 0);
    const auto root2 = onnx_.Initializer(at::scalar_tensor(std::sqrt(2.0), at::kFloat), "sqrt2");
    const auto one = onnx_.Initializer(at::scalar_tensor(1.0, at::kFloat), "one");
    const auto half = onnx_.Initializer(at::scalar_tensor(0.5, at::kFloat), "half");
    const auto erf = onnx_.Add("Erf", {onnx_.Add("Div", {x, root2})});
    return onnx_.Add("Mul", {onnx_.Add("Mul", {x, half}), onnx_.Add("Add", {erf, one})});
  }

  std::string HardSigmoid(const std::string& x) {
    return onnx_.Add("HardSigmoid", {x}, [](auto& proto) {
      SetFloat(proto, "alpha", 1.0 / 6.0);
      SetFloat(proto, "beta", 0.5);
    });
  }

  std::string Softmax(const Node* node, const std::string& op) {
    return onnx_.Add(op, {In(node, 0)}, [&](auto& proto) {
      SetInt(proto, "axis", Constant(node->input(1)).toInt());
    });
  }

  std::string BatchNorm(const Node* node) {
    std::vector<std::string> inputs = {In(node, 0)};
    for (size_t i = 1; i <= 4; ++i) {
      if (Constant(node->input(i)).isNone()) throw OnnxRefusal{"batch_norm without affine parameters"};
      inputs.push_back(In(node, i));
    }
    return onnx_.Add("BatchNormalization", inputs, [&](auto& proto) {
      SetFloat(proto, "epsilon", Number(node->input(7)));
    });
  }

  static const std::map<std::string, Handler>& Handlers() {
    static const std::map<std::string, Handler> handlers = {
        {"aten::quantize_per_tensor", [](auto& t, auto* n) { return t.Quantize(n); }},
        {"aten::dequantize", [](auto& t, auto* n) { return t.Dequantize(n); }},
        {"aten::conv2d", [](auto& t, auto* n) { return t.Conv(n, 6); }},
        {"aten::linear", [](auto& t, auto* n) { return t.Linear(n); }},
        {"aten::clamp", [](auto& t, auto* n) { return t.Clip(n); }},
        {"aten::hardtanh", [](auto& t, auto* n) { return t.Clip(n); }},
        {"aten::hardtanh_", [](auto& t, auto* n) { return t.Clip(n); }},
        {"aten::max_pool2d", [](auto& t, auto* n) { return t.Pool(n, "MaxPool"); }},
        {"aten::avg_pool2d", [](auto& t, auto* n) { return t.Pool(n, "AveragePool"); }},
        {"aten::mean", [](auto& t, auto* n) { return t.Mean(n); }},
        {"aten::flatten", [](auto& t, auto* n) { return t.Flatten(n); }},
        {"aten::reshape", [](auto& t, auto* n) { return t.Reshape(n); }},
        {"aten::transpose", [](auto& t, auto* n) { return t.Transpose(n); }},
        {"aten::permute", [](auto& t, auto* n) { return t.Permute(n); }},
        {"aten::select", [](auto& t, auto* n) { return t.Select(n); }},
        {"aten::embedding", [](auto& t, auto* n) { return t.Embedding(n); }},
        {"aten::arange", [](auto& t, auto* n) { return t.Arange(n); }},
        {"aten::layer_norm", [](auto& t, auto* n) { return t.LayerNorm(n); }},
        // The device of a tensor, read by arange, which the ONNX model does not need.
        {"prim::device", [](auto&, auto*) { return std::string(); }},
        {"aten::size", [](auto& t, auto* n) { return t.IntList(n->output()); }},
        {"aten::view", [](auto& t, auto* n) { return t.Reshape(n); }},
        {"aten::cat", [](auto& t, auto* n) { return t.Concat(n); }},
        {"aten::gelu", [](auto& t, auto* n) { return t.Gelu(n); }},
        {"aten::softmax", [](auto& t, auto* n) { return t.Softmax(n, "Softmax"); }},
        {"aten::log_softmax", [](auto& t, auto* n) { return t.Softmax(n, "LogSoftmax"); }},
        {"aten::batch_norm", [](auto& t, auto* n) { return t.BatchNorm(n); }},
        {"aten::adaptive_avg_pool2d",
         [](auto& t, auto* n) {
           if (Twice(Ints(n->input(1))) != std::vector<int64_t>{1, 1}) {
             throw OnnxRefusal{"adaptive_avg_pool2d to a size other than 1x1"};
           }
           return t.onnx_.Add("GlobalAveragePool", {t.In(n, 0)});
         }},
        {"aten::hardsigmoid", [](auto& t, auto* n) { return t.HardSigmoid(t.In(n, 0)); }},
        {"aten::hardswish",
         [](auto& t, auto* n) {
           const auto x = t.In(n, 0);
           return t.onnx_.Add("Mul", {x, t.HardSigmoid(x)});
         }},
        {"aten::silu",
         [](auto& t, auto* n) {
           const auto x = t.In(n, 0);
           return t.onnx_.Add("Mul", {x, t.onnx_.Add("Sigmoid", {x})});
         }},
    };
    return handlers;
  }

  inline static const std::map<std::string, std::string> kUnary = {
      {"aten::relu", "Relu"},       {"aten::relu_", "Relu"},       {"aten::sigmoid", "Sigmoid"},
      {"aten::tanh", "Tanh"},       {"aten::neg", "Neg"},          {"aten::exp", "Exp"},
      {"aten::sqrt", "Sqrt"},       {"aten::erf", "Erf"},
  };
  inline static const std::map<std::string, std::string> kBinary = {
      {"aten::add", "Add"}, {"aten::add_", "Add"}, {"aten::sub", "Sub"},
      {"aten::mul", "Mul"}, {"aten::mul_", "Mul"}, {"aten::div", "Div"},
      {"aten::matmul", "MatMul"},
  };

  inline static const std::map<std::string, std::string> kIntArithmetic = {
      {"aten::mul", "Mul"}, {"aten::add", "Add"}, {"aten::sub", "Sub"},
      {"aten::floordiv", "Div"},  // of extents, which are not negative
      {"aten::neg", "Neg"},
  };

  OnnxGraph& onnx_;
  std::map<const Value*, int64_t> ranks_;
  std::map<const Value*, std::pair<std::string, std::string>> grids_;
};

// The nodes the outputs depend on, in graph order; shape assertions and other nodes
// without outputs drop out.
std::vector<const Node*> NeededNodes(const torch::jit::Graph& graph) {
  std::set<const Node*> needed;
  std::vector<const Value*> pending(graph.outputs().begin(), graph.outputs().end());
  while (!pending.empty()) {
    const Node* node = pending.back()->node();
    pending.pop_back();
    if (node->kind() == c10::prim::Param || !needed.insert(node).second) continue;
    for (const auto* input : node->inputs()) pending.push_back(input);
  }
  std::vector<const Node*> ordered;
  for (const Node* node : graph.nodes()) {
    const auto kind = node->kind();
    if (needed.count(node) && kind != c10::prim::Constant && kind != c10::prim::ListConstruct) {
      ordered.push_back(node);
    }
  }
  return ordered;
}

// The rank of the tensor each linear, transpose and flatten reads, observed on one sample.
std::map<const Value*, int64_t> InputRanks(const FrozenModel& frozen, const at::Tensor& example) {
  const std::set<c10::Symbol> kinds = {c10::aten::linear, c10::aten::transpose,
                                       c10::aten::flatten};
  std::vector<Value*> inputs;
  for (Node* node : frozen.graph->nodes()) {
    if (kinds.count(node->kind())) inputs.push_back(node->input(0));
  }
  std::map<const Value*, int64_t> ranks;
  if (inputs.empty()) return ranks;
  const auto shapes = ValueShapes(frozen, inputs, example);
  for (size_t i = 0; i < inputs.size(); ++i) ranks[inputs[i]] = static_cast<int64_t>(shapes[i].at(0).size());
  return ranks;
}

std::string Describe(const Node* node, const std::string& reason) {
  const auto layer = LayerOf(node);
  return std::string(node->kind().toQualString()) + " in " +
         (layer.empty() ? "the model's forward" : "layer '" + layer + "'") + " (" + reason + ")";
}

// Translates `frozen` into `model`; each refusal goes to `refused` when given, else throws.
void Translate(const FrozenModel& input_model, const at::Tensor& example,
               onnx::ModelProto& model, std::vector<std::string>* refused) {
  FrozenModel frozen{input_model.module, input_model.graph->copy()};
  SpecialiseToInputExtents(frozen, example);
  const auto& graph = *frozen.graph;
  if (graph.inputs().size() != 2 || graph.outputs().size() != 1) {
    throw ModelError("ONNX export takes a model with one tensor input and one tensor output");
  }
  auto& proto = *model.mutable_graph();
  OnnxGraph onnx(proto);
  onnx.Bind(graph.inputs()[1], "input");
  Translator translator(onnx, InputRanks(frozen, example));
  for (const Node* node : NeededNodes(graph)) {
    try {
      translator.Translate(node);
    } catch (const OnnxRefusal& refusal) {
      if (!refused) throw ModelError("ONNX cannot express " + Describe(node, refusal.reason));
      refused->push_back(Describe(node, refusal.reason));
      for (const auto* output : node->outputs()) onnx.Bind(output, onnx.Fresh("refused"));
    } catch (const c10::Error& error) {
      const std::string reason = error.what_without_backtrace();
      if (!refused) throw ModelError("ONNX cannot express " + Describe(node, reason));
      refused->push_back(Describe(node, reason));
      for (const auto* output : node->outputs()) onnx.Bind(output, onnx.Fresh("refused"));
    }
  }
  try {
    onnx.Add("Identity", {onnx.NameOf(graph.outputs()[0])}, nullptr, "output");
  } catch (const OnnxRefusal& refusal) {
    throw ModelError("ONNX export: the model's output is not a computed tensor");
  }
  const auto declare = [](onnx::ValueInfoProto& info, const std::string& name,
                          const std::vector<int64_t>& shape, bool tokens) {
    info.set_name(name);
    auto* tensor = info.mutable_type()->mutable_tensor_type();
    tensor->set_elem_type(tokens ? onnx::TensorProto::INT64 : onnx::TensorProto::FLOAT);
    auto* dims = tensor->mutable_shape();
    dims->add_dim()->set_dim_param("batch");
    for (const auto extent : shape) dims->add_dim()->set_dim_value(extent);
  };
  declare(*proto.add_input(), "input", example.sizes().slice(1).vec(),
          example.scalar_type() == at::kLong);
  const std::vector<Value*> output = {const_cast<Value*>(graph.outputs()[0])};
  const auto output_shape = ValueShapes(frozen, output, example).at(0).at(0);
  declare(*proto.add_output(), "output",
          std::vector<int64_t>(output_shape.begin() + 1, output_shape.end()), false);
}

}  // namespace

std::string ExportOnnx(const FrozenModel& frozen, const at::Tensor& example,
                       const std::string& model_name) {
  onnx::ModelProto model;
  model.set_ir_version(8);
  model.set_producer_name("SlimTrain");
  model.set_producer_version(SLIM_VERSION);
  model.add_opset_import()->set_version(kOnnxOpset);
  model.mutable_graph()->set_name(model_name);
  Translate(frozen, example, model, nullptr);
  return model.SerializeAsString();
}

std::vector<std::string> OnnxUnsupported(const FrozenModel& frozen,
                                         const at::Tensor& example) {
  onnx::ModelProto model;
  std::vector<std::string> refused;
  const auto& inputs = frozen.graph->inputs();
  if (inputs.size() != 2) return {"the model's forward takes " + std::to_string(inputs.size() - 1) + " inputs; ONNX export takes one"};
  Translate(frozen, example, model, &refused);
  return refused;
}

}  // namespace slim::exporting

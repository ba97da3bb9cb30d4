// The export layer on small models built here: MACs counted from the graph, the quantized
// normal form (BatchNorm folded exactly into per-channel weight scales), the integer
// kernels it lowers to, the specialisation to the input's extents that ONNX export starts
// from, and the ONNX refusals that name the layer.
#include <gtest/gtest.h>
#include <torch/csrc/jit/api/function_impl.h>
#include <torch/script.h>

#include <algorithm>

#include "export/batch_specialisation.h"
#include "export/int8_lowering.h"
#include "export/model_exports.h"
#include "export/model_measure.h"
#include "export/onnx_export.h"
#include "export/quant_normal_form.h"
#include "runtime/base/errors.h"

namespace slim::exporting {
namespace {

// How ConvNet quantizes the ReLU's output, the classifier's input: the symmetric grid of
// scale 0.04, or the unsigned grid [0, 255] of scale 0.02 (the same clip, 5.1).
enum class ReluGrid { kSymmetric, kUnsigned };

// ConvNet's activation: ReLU, or ReLU6 (hardtanh to [0, 6]; its grid then clips at 7.65,
// scale 0.03 unsigned, so that the 6 binds).
enum class Activation { kReLU, kReLU6 };

// conv 3->8 (3x3, padding 1) -> BatchNorm -> ReLU -> flatten -> linear 512->10; with
// `quantized`, fake-quant ops on the input (scale 0.05), on the ReLU's output (`relu_grid`)
// and on both weights (per channel).
torch::jit::Module ConvNet(bool quantized, ReluGrid relu_grid = ReluGrid::kSymmetric,
                           Activation activation = Activation::kReLU) {
  torch::jit::Module model("__torch__.slim.test.ConvNet");
  const auto conv_weight = torch::randn({8, 3, 3, 3}) * 0.3;
  const auto fc_weight = torch::randn({10, 512}) * 0.05;
  model.register_parameter("conv_weight", conv_weight, false);
  model.register_parameter("bn_weight", torch::rand({8}) + 0.5, false);
  model.register_parameter("bn_bias", torch::randn({8}) * 0.1, false);
  model.register_buffer("bn_mean", torch::randn({8}) * 0.1);
  model.register_buffer("bn_var", torch::rand({8}) + 0.5);
  model.register_parameter("fc_weight", fc_weight, false);
  model.register_parameter("fc_bias", torch::zeros({10}), false);
  // Per-channel weight scales, stored like the quantizers' (strategies/quant): written
  // by forward while observing, so freezing keeps them apart from the weights.
  const auto scale_of = [](const torch::Tensor& w) {
    return std::get<0>(w.abs().reshape({w.size(0), -1}).max(1)) / 127.0;
  };
  model.register_buffer("conv_scale", scale_of(conv_weight));
  model.register_buffer("fc_scale", scale_of(fc_weight));
  model.register_attribute("quantized", c10::BoolType::get(), quantized);
  model.register_attribute("observe", c10::BoolType::get(), false);
  const bool unsigned_grid = relu_grid == ReluGrid::kUnsigned;
  const bool relu6 = activation == Activation::kReLU6;
  model.register_attribute("relu6", c10::BoolType::get(), relu6);
  model.register_attribute("relu_scale", c10::FloatType::get(),
                           unsigned_grid ? (relu6 ? 0.03 : 0.02) : 0.04);
  model.register_attribute("relu_min", c10::IntType::get(), unsigned_grid ? 0 : -127);
  model.register_attribute("relu_max", c10::IntType::get(), unsigned_grid ? 255 : 127);
  model.define(R"(
    def quantize_weight(self, w, scale):
        zero = torch.zeros([w.size(0)], dtype=3)  # int32
        return torch.fake_quantize_per_channel_affine(w, scale, zero, 0, -127, 127)

    def forward(self, x):
        conv_weight = self.conv_weight
        fc_weight = self.fc_weight
        if self.observe:
            self.conv_scale = torch.amax(torch.abs(conv_weight.reshape([8, -1])), [1]) / 127.0
            self.fc_scale = torch.amax(torch.abs(fc_weight), [1]) / 127.0
        if self.quantized:
            x = torch.fake_quantize_per_tensor_affine(x, 0.05, 0, -127, 127)
            conv_weight = self.quantize_weight(conv_weight, self.conv_scale)
            fc_weight = self.quantize_weight(fc_weight, self.fc_scale)
        y = torch.conv2d(x, conv_weight, None, [1, 1], [1, 1])
        y = torch.batch_norm(y, self.bn_weight, self.bn_bias, self.bn_mean, self.bn_var,
                             False, 0.1, 1e-5, False)
        if self.relu6:
            y = torch.hardtanh(y, 0.0, 6.0)
        else:
            y = torch.relu(y)
        if self.quantized:
            y = torch.fake_quantize_per_tensor_affine(y, self.relu_scale, 0, self.relu_min, self.relu_max)
        return torch.linear(torch.flatten(y, 1), fc_weight, self.fc_bias)
  )");
  model.eval();
  return model;
}

TEST(ExportMacs, CountedFromTheGraphWithRealShapes) {
  // conv: 8 x 8 x 8 outputs x 27 inputs each; linear: 10 x 512.
  const auto example = torch::randn({1, 3, 8, 8});
  EXPECT_EQ(CountModelMacs(ConvNet(false), example).total, 8 * 8 * 8 * 27 + 10 * 512);
  EXPECT_EQ(CountModelMacs(ConvNet(true), example).total, 8 * 8 * 8 * 27 + 10 * 512);
}

TEST(QuantNormalForm, FoldsBatchNormExactlyAndKeepsTheFunction) {
  torch::manual_seed(3);
  const auto model = ConvNet(true);
  QuantPoints points;
  auto frozen = ExportForm(model, &points);
  EXPECT_EQ(points.activations, 2);
  EXPECT_EQ(points.weights, 2);
  int batch_norms = 0;
  for (const auto* node : AllNodes(*frozen.graph)) {
    if (node->kind() == c10::aten::batch_norm) ++batch_norms;
  }
  EXPECT_EQ(batch_norms, 0);
  const auto x = torch::randn({4, 3, 8, 8});
  auto copy = model;
  const auto expected = copy.forward({x}).toTensor();
  const auto actual = frozen.module.forward({x}).toTensor();
  EXPECT_TRUE(torch::allclose(actual, expected, 1e-4, 1e-4))
      << (actual - expected).abs().max().item<double>();
}

TEST(QuantNormalForm, OnnxGridAfterAReluIsTheFakeQuantGridExactly) {
  // Zero point 0 after the ReLU, its integers clamped at 127: the values of scale 0.04 up
  // to 5.08 that the fake-quant model computes, also where large inputs push the ReLU's
  // outputs past that clip (inputs kept inside the input grid's symmetric range).
  torch::manual_seed(5);
  const auto model = ConvNet(true);
  auto frozen = ExportForm(model, nullptr, ReluZeroPoint::kZero);
  const auto x = torch::clamp(torch::randn({4, 3, 8, 8}) * 4, -6.3, 6.3);
  auto copy = model;
  const auto expected = copy.forward({x}).toTensor();
  const auto actual = frozen.module.forward({x}).toTensor();
  EXPECT_TRUE(torch::allclose(actual, expected, 1e-4, 1e-4))
      << (actual - expected).abs().max().item<double>();
}

int64_t CountKind(const torch::jit::Graph& graph, const char* kind) {
  const auto symbol = c10::Symbol::fromQualString(kind);
  const auto nodes = AllNodes(graph);
  return std::count_if(nodes.begin(), nodes.end(),
                       [&](auto* node) { return node->kind() == symbol; });
}

TEST(IntegerKernels, ConvolutionRunsAsAnIntegerKernelCloseToFakeQuant) {
  torch::manual_seed(4);
  const auto model = ConvNet(true);
  auto frozen = ExportForm(model);
  const std::vector<torch::Tensor> calibration = {torch::randn({8, 3, 8, 8})};
  const auto grids = QuantizeLayerOutputs(frozen, calibration);
  EXPECT_EQ(grids.taken, 1);  // the ReLU output's quantizer
  const auto kernels = LowerToIntegerKernels(frozen);
  EXPECT_EQ(kernels.integer_ops, 1);  // quantized::conv2d_relu; the classifier stays float
  bool fused = false;
  for (const auto* node : AllNodes(*frozen.graph)) {
    fused = fused || std::string(node->kind().toQualString()) == "quantized::conv2d_relu";
  }
  EXPECT_TRUE(fused);
  if (at::hasMKLDNN()) {  // the float classifier runs on oneDNN from 4 rows on
    EXPECT_EQ(CountKind(*frozen.graph, "aten::mkldnn_linear"), 1);
    EXPECT_EQ(CountKind(*frozen.graph, "aten::linear"), 1);
  }
  auto copy = model;
  for (const int64_t batch : {1, 4}) {
    const auto x = torch::randn({batch, 3, 8, 8});
    const auto expected = copy.forward({x}).toTensor();
    const auto actual = frozen.module.forward({x}).toTensor();
    // One rounding step of the input grid at most, through the classifier.
    EXPECT_LT((actual - expected).abs().max().item<double>(), 0.1) << batch;
  }
}

// The zero point of the quantized::conv2d_relu in `graph`.
int64_t ConvReluZeroPoint(const torch::jit::Graph& graph) {
  for (const auto* node : AllNodes(graph)) {
    if (std::string(node->kind().toQualString()) == "quantized::conv2d_relu") {
      return ConstantOf(node->input(3))->toInt();
    }
  }
  ADD_FAILURE() << "no quantized::conv2d_relu";
  return -1;
}

TEST(IntegerKernels, UnsignedGridAfterAReluGivesTheKernelZeroPointZero) {
  torch::manual_seed(4);
  const auto symmetric = ConvNet(true);
  auto symmetric_frozen = ExportForm(symmetric);
  const std::vector<torch::Tensor> calibration = {torch::randn({8, 3, 8, 8})};
  QuantizeLayerOutputs(symmetric_frozen, calibration);
  LowerToIntegerKernels(symmetric_frozen);
  EXPECT_EQ(ConvReluZeroPoint(*symmetric_frozen.graph), kActivationZeroPoint);
  for (const auto relu_zero_point : {ReluZeroPoint::kSymmetric, ReluZeroPoint::kZero}) {
    const auto model = ConvNet(true, ReluGrid::kUnsigned);
    auto frozen = ExportForm(model, nullptr, relu_zero_point);
    // uint8 holds the grid as it is: nothing to clamp, in the TorchScript and ONNX forms.
    EXPECT_EQ(CountKind(*frozen.graph, "aten::clamp"), 0);
    QuantizeLayerOutputs(frozen, calibration);
    LowerToIntegerKernels(frozen);
    EXPECT_EQ(ConvReluZeroPoint(*frozen.graph), 0);
    auto copy = model;
    const auto x = torch::randn({4, 3, 8, 8}) * 3;
    const auto expected = copy.forward({x}).toTensor();
    const auto actual = frozen.module.forward({x}).toTensor();
    EXPECT_LT((actual - expected).abs().max().item<double>(), 0.1);
  }
}

TEST(IntegerKernels, ReluSixRunsOnTheIntegersBetweenKernels) {
  torch::manual_seed(6);
  const auto model = ConvNet(true, ReluGrid::kUnsigned, Activation::kReLU6);
  auto frozen = ExportForm(model);
  QuantizeLayerOutputs(frozen, {torch::randn({8, 3, 8, 8}) * 3});
  LowerToIntegerKernels(frozen);
  // quantized::conv2d -> aten::hardtanh on its quint8 output -> dequantize for the
  // float classifier: no float clamp between a dequantize and a quantize.
  ASSERT_EQ(CountKind(*frozen.graph, "aten::hardtanh"), 1);
  for (const auto* node : AllNodes(*frozen.graph)) {
    if (node->kind() != c10::aten::hardtanh) continue;
    EXPECT_STREQ(node->input(0)->node()->kind().toQualString(), "quantized::conv2d");
  }
  EXPECT_EQ(CountKind(*frozen.graph, "aten::dequantize"), 1);
  auto copy = model;
  const auto x = torch::randn({4, 3, 8, 8}) * 3;  // many outputs past 6
  const auto expected = copy.forward({x}).toTensor();
  const auto actual = frozen.module.forward({x}).toTensor();
  EXPECT_LT((actual - expected).abs().max().item<double>(), 0.1);
}

TEST(QuantNormalForm, ActivationZeroPointOtherThanZeroIsRefused) {
  torch::jit::Module model("__torch__.slim.test.Affine");
  model.define(R"(
    def forward(self, x):
        return torch.fake_quantize_per_tensor_affine(x, 0.1, 3, 0, 255)
  )");
  model.eval();
  try {
    ExportForm(model);
    FAIL() << "a zero point of 3 was exported";
  } catch (const ModelError& error) {
    EXPECT_NE(std::string(error.what()).find("zero point 3"), std::string::npos) << error.what();
  }
}

TEST(IntegerKernels, QuantizedModelOutputRunsTheClassifierAsAnIntegerKernel) {
  torch::manual_seed(4);
  const auto model = ConvNet(true);
  auto frozen = ExportForm(model);
  const std::vector<torch::Tensor> calibration = {torch::randn({64, 3, 8, 8})};
  const auto grids = QuantizeLayerOutputs(frozen, calibration, ModelOutput::kQuantized);
  EXPECT_EQ(grids.taken, 1);
  EXPECT_EQ(grids.calibrated, 1);  // the logits
  EXPECT_EQ(grids.model_outputs, 1);
  const auto kernels = LowerToIntegerKernels(frozen);
  EXPECT_EQ(kernels.integer_ops, 2);  // quantized::conv2d_relu and quantized::linear
  EXPECT_TRUE(kernels.float_layers.empty());
  EXPECT_EQ(CountKind(*frozen.graph, "quantized::linear"), 1);
  EXPECT_EQ(CountKind(*frozen.graph, "aten::mkldnn_linear"), 0);
  // The grid spans the logits seen in calibration, 0 included, on 256 levels.
  auto copy = model;
  const auto seen = copy.forward({calibration[0]}).toTensor();
  const double step =
      (std::max(seen.max().item<double>(), 0.0) - std::min(seen.min().item<double>(), 0.0)) / 255.0;
  const auto x = torch::randn({16, 3, 8, 8});
  const auto expected = copy.forward({x}).toTensor();
  const auto actual = frozen.module.forward({x}).toTensor();
  const auto levels = actual / step;
  EXPECT_LT((levels - levels.round()).abs().max().item<double>(), 0.01);
  // Half a step of the logits' grid besides the input rounding of the float classifier.
  EXPECT_LT((actual - expected).abs().max().item<double>(), 0.1 + step / 2);
}

// flatten -> linear 12->4 in a child "fc" with an input quantizer (the child "input_quant"
// strategies/quant attaches), on when `quantized`.
torch::jit::Module Classifier(bool quantized) {
  torch::jit::Module fc("__torch__.slim.test.Fc");
  fc.register_parameter("weight", torch::randn({4, 12}), false);
  fc.register_parameter("bias", torch::zeros({4}), false);
  fc.define(R"(
    def forward(self, x):
        return torch.linear(x, self.weight, self.bias)
  )");
  torch::jit::Module input_quant("__torch__.slim.test.InputQuant");
  input_quant.register_attribute("enabled", c10::BoolType::get(), quantized);
  fc.register_module("input_quant", input_quant);
  torch::jit::Module model("__torch__.slim.test.Classifier");
  model.register_module("fc", fc);
  model.define(R"(
    def forward(self, x):
        return self.fc.forward(torch.flatten(x, 1))
  )");
  model.eval();
  return model;
}

TEST(ModelExports, QuantizedOutputWithoutAQuantizedLastLayerIsRefused) {
  const auto example = torch::randn({1, 3, 2, 2});
  const std::vector<std::string> formats = {"torchscript", "onnx"};
  EXPECT_NO_THROW(
      CheckExportable(Classifier(true), formats, example, true, ModelOutput::kQuantized));
  try {
    CheckExportable(Classifier(false), formats, example, true, ModelOutput::kQuantized);
    ADD_FAILURE() << "no ConfigError";
  } catch (const ConfigError& error) {
    EXPECT_NE(std::string(error.what())
                  .find("Global.export_quantized_output: the model "
                        "returns no output of a quantized layer"),
              std::string::npos)
        << error.what();
  }
  EXPECT_NO_THROW(CheckExportable(Classifier(false), formats, example, true, ModelOutput::kFloat));
}

TEST(BatchSpecialisation, FoldsRankChecksAndKeepsTheBatchExtentComputed) {
  torch::jit::Module model("__torch__.slim.test.Layouts");
  model.define(R"(
    def forward(self, x):
        if x.dim() == 3:
            x = x.transpose(0, 1)
        else:
            x = x.unsqueeze(1)
        batch = x.size(1)
        width = x.size(2)
        return x.reshape([x.size(0), batch * 2, width // 2])
  )");
  auto frozen = ExportForm(model);
  const auto example = torch::randn({1, 4, 6});
  SpecialiseToInputExtents(frozen, example);
  // The rank check and its branch are gone; the width and the sequence length are
  // constants; only the batch extent is read at run time, and doubled.
  EXPECT_EQ(CountKind(*frozen.graph, "prim::If"), 0);
  EXPECT_EQ(CountKind(*frozen.graph, "aten::dim"), 0);
  EXPECT_EQ(CountKind(*frozen.graph, "aten::size"), 1);
  EXPECT_EQ(CountKind(*frozen.graph, "aten::mul"), 1);
  EXPECT_EQ(CountKind(*frozen.graph, "aten::floordiv"), 0);
  // The specialised graph computes what the model computes at another batch size.
  const auto x = torch::randn({5, 4, 6});
  torch::jit::GraphFunction specialised("specialised", frozen.graph, nullptr);
  torch::jit::Stack stack{frozen.module._ivalue(), x};
  specialised.run(stack);
  EXPECT_TRUE(torch::equal(stack.back().toTensor(), model.forward({x}).toTensor()));
}

TEST(OnnxExport, RefusalNamesTheOperatorAndTheLayer) {
  torch::jit::Module inner("__torch__.slim.test.Inner");
  inner.define(R"(
    def forward(self, x):
        return torch.erfinv(x)
  )");
  torch::jit::Module outer("__torch__.slim.test.Outer");
  outer.register_module("odd", inner);
  outer.define(R"(
    def forward(self, x):
        return torch.relu(self.odd.forward(x))
  )");
  const auto refused = OnnxUnsupported(ExportForm(outer), torch::randn({1, 4}));
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_NE(refused[0].find("aten::erfinv"), std::string::npos) << refused[0];
  EXPECT_NE(refused[0].find("layer 'odd'"), std::string::npos) << refused[0];
  EXPECT_THROW(CheckExportable(outer, {"torchscript", "onnx"}, torch::randn({1, 4}), false),
               ConfigError);
}

TEST(ModelExports, IntegerExportOfAModelNothingQuantizesIsRefused) {
  EXPECT_THROW(CheckExportable(ConvNet(false), {"torchscript_int8"}, torch::randn({1, 3, 8, 8}),
                               /*quantizes=*/false),
               ConfigError);
  EXPECT_NO_THROW(CheckExportable(ConvNet(false), {"onnx"}, torch::randn({1, 3, 8, 8}), false));
}

}  // namespace
}  // namespace slim::exporting

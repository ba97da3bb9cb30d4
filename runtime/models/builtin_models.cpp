// The builtin models, assembled in C++ as TorchScript modules: every layer is a
// torch::jit::Module of its own class whose forward is TorchScript source compiled with
// Module::define(), so the saved files are ordinary TorchScript archives.
//
// Facts about Module::define() (LibTorch 1.13) that shape this file:
//  - A child module is not callable in source: `self.conv1(x)` fails with "no attribute or
//    method '__call__'"; `self.conv1.forward(x)` works.
//  - Children may be named "0", "1", ... like nn.Sequential's; the source reaches them
//    with `getattr(self, "0")`, which is also how PyTorch prints such code.
//  - A class name may be defined once per compilation unit ("class ... already defined"),
//    so each instance gets its own class "__torch__.slim.<Kind>_<n>" and can bake stride,
//    padding, groups and eps into its source as literals.
//  - register_parameter() does not set requires_grad; AddParameter() does.
//  - Every module needs the bool attribute "training": train()/eval() set it and
//    batch_norm reads it.
#include "runtime/models/builtin_models.h"

#include <torch/nn/init.h>

#include <cctype>
#include <cmath>
#include <iomanip>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "runtime/base/errors.h"

namespace slim::models {
namespace {

using torch::jit::Module;
using NamedModules = std::vector<std::pair<std::string, Module>>;

// Transformer size: embedding width, attention heads per layer, encoder layers.
constexpr int64_t kTransformerDim = 64;
constexpr int64_t kTransformerHeads = 4;
constexpr int64_t kTransformerLayers = 2;
// Byte tokens take values 0..255.
constexpr int64_t kByteVocabulary = 256;

// `forward(self, x)` whose body is `lines`, one statement per line; a line may carry
// extra leading spaces to nest under the line before it.
std::string ForwardSource(const std::vector<std::string>& lines) {
  std::string source = "def forward(self, x):\n";
  for (const std::string& line : lines) source += "    " + line + "\n";
  return source;
}

// Source that runs child `child` of self on `arg`. Children named by digits are reached
// through getattr because `self.0` is not valid syntax.
std::string Call(const std::string& child, const std::string& arg) {
  const bool numeric = std::isdigit(static_cast<unsigned char>(child.front())) != 0;
  const std::string ref = numeric ? "getattr(self, \"" + child + "\")" : "self." + child;
  return ref + ".forward(" + arg + ")";
}

// Registers `value` as trainable parameter `name` of `module`, requiring grad like an
// nn.Parameter.
void AddParameter(Module& module, const std::string& name, const torch::Tensor& value) {
  module.register_parameter(name, value.detach().requires_grad_(), /*is_buffer=*/false);
}

// Source of the list [value, value], as conv2d takes stride and padding.
std::string Pair(int64_t value) {
  const std::string text = std::to_string(value);
  return "[" + text + ", " + text + "]";
}

// "{3, 32, 32}".
std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string text = "{";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "}";
}

// Source of bn<index>(conv<index>(arg)), the conv+BN pair the CNNs are built from.
std::string ConvBn(int index, const std::string& arg) {
  const std::string i = std::to_string(index);
  return Call("bn" + i, Call("conv" + i, arg));
}

// Creates the modules of one model, all in one compilation unit, each with a class of its
// own. Initial values come from the current torch generator in call order, so a seeded
// generator gives the same model. Not thread-safe; one factory per model.
class ModuleFactory {
 public:
  // Bias-free 2-D convolution with padding kernel/2 and Kaiming-normal (fan_out, ReLU)
  // weight [out, in/groups, kernel, kernel]. A grouped one reads its `groups` attribute,
  // as nn.Conv2d does, so that channel pruning can change it.
  Module Conv2d(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t groups = 1) {
    Module conv = NewModule("Conv2d");
    torch::Tensor weight = torch::empty({out, in / groups, kernel, kernel});
    torch::nn::init::kaiming_normal_(weight, 0.0, torch::kFanOut, torch::kReLU);
    AddParameter(conv, "weight", weight);
    if (groups > 1) conv.register_attribute("groups", c10::IntType::get(), groups);
    conv.define(ForwardSource({"return torch.conv2d(x, self.weight, None, " + Pair(stride) + ", " +
                               Pair(kernel / 2) + ", [1, 1], " +
                               (groups > 1 ? "self.groups" : "1") + ")"}));
    return conv;
  }

  // BatchNorm2d as in PyTorch: momentum 0.1, eps 1e-5, weight 1, bias 0, and buffers
  // running_mean, running_var, num_batches_tracked updated by forward in training mode.
  Module BatchNorm2d(int64_t channels) {
    Module bn = NewModule("BatchNorm2d");
    AddParameter(bn, "weight", torch::ones({channels}));
    AddParameter(bn, "bias", torch::zeros({channels}));
    bn.register_buffer("running_mean", torch::zeros({channels}));
    bn.register_buffer("running_var", torch::ones({channels}));
    bn.register_buffer("num_batches_tracked", torch::zeros({}, torch::kLong));
    bn.define(
        ForwardSource({"if self.training:", "    self.num_batches_tracked.add_(1)",
                       "return torch.batch_norm(x, self.weight, self.bias, self.running_mean, "
                       "self.running_var, self.training, 0.1, 1e-05, False)"}));
    return bn;
  }

  // Linear layer with Kaiming-normal weight for a linear gain (std 1/sqrt(in)), bias 0.
  Module Linear(int64_t in, int64_t out) {
    Module linear = NewModule("Linear");
    torch::Tensor weight = torch::empty({out, in});
    torch::nn::init::kaiming_normal_(weight, 0.0, torch::kFanIn, torch::kLinear);
    AddParameter(linear, "weight", weight);
    AddParameter(linear, "bias", torch::zeros({out}));
    linear.define(ForwardSource({"return torch.linear(x, self.weight, self.bias)"}));
    return linear;
  }

  // LayerNorm over the last dimension `dim`, eps 1e-5, weight 1, bias 0.
  Module LayerNorm(int64_t dim) {
    Module norm = NewModule("LayerNorm");
    AddParameter(norm, "weight", torch::ones({dim}));
    AddParameter(norm, "bias", torch::zeros({dim}));
    norm.define(ForwardSource({"return torch.layer_norm(x, [" + std::to_string(dim) +
                               "], self.weight, self.bias, 1e-05, False)"}));
    return norm;
  }

  // Lookup table of `count` vectors of width `dim`, drawn from normal(0, 0.02); forward
  // takes int64 indices in [0, count).
  Module Embedding(int64_t count, int64_t dim) {
    Module embedding = NewModule("Embedding");
    AddParameter(embedding, "weight", torch::randn({count, dim}) * 0.02);
    embedding.define(ForwardSource({"return torch.embedding(self.weight, x, -1, False, False)"}));
    return embedding;
  }

  // Container that runs its children "0", "1", ... in order, like nn.Sequential.
  Module Sequential(const std::vector<Module>& children) {
    NamedModules named;
    std::vector<std::string> body;
    for (size_t i = 0; i < children.size(); ++i) {
      named.emplace_back(std::to_string(i), children[i]);
      body.push_back("x = " + Call(named.back().first, "x"));
    }
    body.push_back("return x");
    return Composite("Sequential", named, body);
  }

  // Module of class kind `kind` holding `children` under their names and the int
  // attributes `sizes`, whose forward has the body `forward_body` (see ForwardSource).
  Module Composite(const std::string& kind, const NamedModules& children,
                   const std::vector<std::string>& forward_body,
                   const std::vector<std::pair<std::string, int64_t>>& sizes = {}) {
    Module module = NewModule(kind);
    for (const auto& [name, child] : children) module.register_module(name, child);
    for (const auto& [name, value] : sizes) {
      module.register_attribute(name, c10::IntType::get(), value);
    }
    module.define(ForwardSource(forward_body));
    return module;
  }

 private:
  // Empty module in training mode, of a new class "__torch__.slim.<kind>_<n>".
  Module NewModule(const std::string& kind) {
    Module module("__torch__.slim." + kind + "_" + std::to_string(next_class_id_++), unit_);
    module.register_attribute("training", c10::BoolType::get(), true);
    return module;
  }

  std::shared_ptr<torch::jit::CompilationUnit> unit_ =
      std::make_shared<torch::jit::CompilationUnit>();
  int64_t next_class_id_ = 0;
};

// ResNet basic block: conv1/bn1/relu, conv2/bn2, plus the input, then relu. When the
// shape changes the input passes through downsample.0 (1x1 conv) and downsample.1 (BN).
Module BasicBlock(ModuleFactory& factory, int64_t in, int64_t out, int64_t stride) {
  NamedModules children = {{"conv1", factory.Conv2d(in, out, 3, stride)},
                           {"bn1", factory.BatchNorm2d(out)},
                           {"conv2", factory.Conv2d(out, out, 3, 1)},
                           {"bn2", factory.BatchNorm2d(out)}};
  std::string shortcut = "x";
  if (stride != 1 || in != out) {
    children.emplace_back("downsample", factory.Sequential({factory.Conv2d(in, out, 1, stride),
                                                            factory.BatchNorm2d(out)}));
    shortcut = Call("downsample", "x");
  }
  return factory.Composite("BasicBlock", children,
                           {"out = torch.relu(" + ConvBn(1, "x") + ")", "out = " + ConvBn(2, "out"),
                            "return torch.relu(out + " + shortcut + ")"});
}

// CIFAR ResNet-(6n+2) of He et al. 2016: conv1/bn1 (16 channels), layer1..layer3 of
// `blocks_per_stage` basic blocks with widths 16/32/64 (stride 2 entering layer2 and
// layer3), global average pool, fc. With `zero_init_residual` each block's bn2 starts at
// weight 0, so every block starts as the identity (Goyal et al. 2017): ResNet-56 does not
// leave chance accuracy on the quickstart data without it.
Module ResNet(const ModelShape& shape, int64_t blocks_per_stage, bool zero_init_residual) {
  ModuleFactory factory;
  NamedModules children = {{"conv1", factory.Conv2d(shape.input_shape[0], 16, 3, 1)},
                           {"bn1", factory.BatchNorm2d(16)}};
  std::vector<std::string> body = {"x = torch.relu(" + ConvBn(1, "x") + ")"};
  int64_t in = 16;
  for (int stage = 0; stage < 3; ++stage) {
    const int64_t width = int64_t{16} << stage;
    std::vector<Module> blocks;
    for (int64_t block = 0; block < blocks_per_stage; ++block) {
      const int64_t stride = (stage > 0 && block == 0) ? 2 : 1;
      blocks.push_back(BasicBlock(factory, in, width, stride));
      if (zero_init_residual) {
        torch::NoGradGuard no_grad;
        blocks.back().attr("bn2").toModule().attr("weight").toTensor().zero_();
      }
      in = width;
    }
    const std::string name = "layer" + std::to_string(stage + 1);
    children.emplace_back(name, factory.Sequential(blocks));
    body.push_back("x = " + Call(name, "x"));
  }
  children.emplace_back("fc", factory.Linear(in, shape.num_classes));
  body.push_back("return " + Call("fc", "x.mean([2, 3])"));
  return factory.Composite("ResNet", children, body);
}

// Size of one spatial side after a 3x3 convolution with padding 1 and stride `stride`.
int64_t Conv3x3Output(int64_t size, int64_t stride) { return (size - 1) / stride + 1; }

// Small ResNet for 28x28 grayscale images (Fashion-MNIST): conv1/bn1 stem (32 channels,
// stride 1) and a 2x2 max pool (28 -> 14), then layer1..layer3 of one basic block each,
// widths 32/64/128 at 14x14, 7x7 and 4x4 (stride 2 entering layer2 and layer3), and fc
// on the flattened 128x4x4 map (fc's width follows the input size). Downsampling early
// keeps it at 10.3 M multiply-adds per 1x28x28 image, a third of ResNet-20's. The
// flattened head keeps where a feature is, which on centred images counts: on a trunk
// like this one it gave 1.6 points more eval top-1 than a global average pool after two
// epochs of Fashion-MNIST.
Module FmnistResNet(const ModelShape& shape) {
  constexpr int64_t kStemWidth = 32;
  constexpr int64_t kWidths[] = {32, 64, 128};
  if (shape.input_shape[1] < 2 || shape.input_shape[2] < 2) {
    throw ModelError(
        "builtin model 'fmnist_resnet' max-pools 2x2 and needs H, W >= 2; got "
        "input_shape " +
        ShapeString(shape.input_shape));
  }
  ModuleFactory factory;
  NamedModules children = {{"conv1", factory.Conv2d(shape.input_shape[0], kStemWidth, 3, 1)},
                           {"bn1", factory.BatchNorm2d(kStemWidth)}};
  std::vector<std::string> body = {
      "x = torch.relu(" + ConvBn(1, "x") + ")",
      "x = torch.max_pool2d(x, [2, 2], [2, 2], [0, 0], [1, 1], False)"};
  int64_t height = shape.input_shape[1] / 2;
  int64_t width = shape.input_shape[2] / 2;
  int64_t in = kStemWidth;
  for (size_t stage = 0; stage < std::size(kWidths); ++stage) {
    const int64_t stride = stage > 0 ? 2 : 1;
    const std::string name = "layer" + std::to_string(stage + 1);
    children.emplace_back(name,
                          factory.Sequential({BasicBlock(factory, in, kWidths[stage], stride)}));
    body.push_back("x = " + Call(name, "x"));
    height = Conv3x3Output(height, stride);
    width = Conv3x3Output(width, stride);
    in = kWidths[stage];
  }
  children.emplace_back("fc", factory.Linear(in * height * width, shape.num_classes));
  body.push_back("return " + Call("fc", "torch.flatten(x, 1)"));
  return factory.Composite("FmnistResNet", children, body);
}

// MobileNetV2 inverted residual: conv1/bn1 1x1 expansion + ReLU6, conv2/bn2 3x3
// depthwise + ReLU6, conv3/bn3 1x1 linear bottleneck; adds the input when stride is 1
// and the width is unchanged.
Module InvertedResidual(ModuleFactory& factory, int64_t in, int64_t out, int64_t expansion,
                        int64_t stride) {
  const int64_t hidden = in * expansion;
  const NamedModules children = {{"conv1", factory.Conv2d(in, hidden, 1, 1)},
                                 {"bn1", factory.BatchNorm2d(hidden)},
                                 {"conv2", factory.Conv2d(hidden, hidden, 3, stride, hidden)},
                                 {"bn2", factory.BatchNorm2d(hidden)},
                                 {"conv3", factory.Conv2d(hidden, out, 1, 1)},
                                 {"bn3", factory.BatchNorm2d(out)}};
  const bool residual = stride == 1 && in == out;
  return factory.Composite(
      "InvertedResidual", children,
      {"out = torch.relu6(" + ConvBn(1, "x") + ")", "out = torch.relu6(" + ConvBn(2, "out") + ")",
       "return " + ConvBn(3, "out") + (residual ? " + x" : "")});
}

// Small MobileNetV2 for 32x32 inputs: conv1/bn1 stem (32 channels, stride 1), layers.0..
// layers.7 inverted residuals, conv2/bn2 1x1 to 320 channels, global average pool, fc.
Module MobileNetV2(const ModelShape& shape) {
  struct Stage {
    int64_t expansion, width, blocks, stride;
  };
  const Stage kStages[] = {
      {1, 16, 1, 1}, {6, 24, 2, 1}, {6, 32, 2, 2}, {6, 64, 2, 2}, {6, 96, 1, 1}};
  constexpr int64_t kStemWidth = 32;
  constexpr int64_t kHeadWidth = 320;
  ModuleFactory factory;
  NamedModules children = {{"conv1", factory.Conv2d(shape.input_shape[0], kStemWidth, 3, 1)},
                           {"bn1", factory.BatchNorm2d(kStemWidth)}};
  std::vector<Module> blocks;
  int64_t in = kStemWidth;
  for (const Stage& stage : kStages) {
    for (int64_t block = 0; block < stage.blocks; ++block) {
      const int64_t stride = block == 0 ? stage.stride : 1;
      blocks.push_back(InvertedResidual(factory, in, stage.width, stage.expansion, stride));
      in = stage.width;
    }
  }
  children.emplace_back("layers", factory.Sequential(blocks));
  children.emplace_back("conv2", factory.Conv2d(in, kHeadWidth, 1, 1));
  children.emplace_back("bn2", factory.BatchNorm2d(kHeadWidth));
  children.emplace_back("fc", factory.Linear(kHeadWidth, shape.num_classes));
  return factory.Composite("MobileNetV2", children,
                           {"x = torch.relu6(" + ConvBn(1, "x") + ")",
                            "x = torch.relu6(" + ConvBn(2, Call("layers", "x")) + ")",
                            "return " + Call("fc", "x.mean([2, 3])")});
}

// Multi-head self-attention over [B, L, dim]: qkv projects to queries, keys and values,
// softmax(q k^T / sqrt(head_dim)) v per head, proj mixes the heads. The head count is the
// attribute num_heads, as in nn.MultiheadAttention, so that head pruning can lower it.
Module SelfAttention(ModuleFactory& factory, int64_t dim, int64_t heads) {
  const std::string head_dim = std::to_string(dim / heads);
  std::ostringstream scale;
  scale << std::setprecision(17) << 1.0 / std::sqrt(static_cast<double>(dim / heads));
  return factory.Composite(
      "SelfAttention", {{"qkv", factory.Linear(dim, 3 * dim)}, {"proj", factory.Linear(dim, dim)}},
      {"b = x.size(0)", "l = x.size(1)",
       "qkv = " + Call("qkv", "x") + ".reshape([b, l, 3, self.num_heads, " + head_dim +
           "]).permute([2, 0, 3, 1, 4])",
       "scores = torch.matmul(qkv[0], qkv[1].transpose(-2, -1)) * " + scale.str(),
       "heads = torch.matmul(torch.softmax(scores, -1), qkv[2])",
       "return " + Call("proj", "heads.transpose(1, 2).reshape([b, l, self.num_heads * " +
                                    head_dim + "])")},
      {{"num_heads", heads}});
}

// Pre-norm transformer encoder layer: x + attn(norm1(x)), then + ffn(norm2(x)) where ffn
// is fc1 (dim -> 4 dim), GELU, fc2 (4 dim -> dim).
Module EncoderLayer(ModuleFactory& factory, int64_t dim, int64_t heads) {
  Module attn = SelfAttention(factory, dim, heads);
  Module ffn = factory.Composite(
      "FeedForward", {{"fc1", factory.Linear(dim, 4 * dim)}, {"fc2", factory.Linear(4 * dim, dim)}},
      {"return " + Call("fc2", "torch.gelu(" + Call("fc1", "x") + ")")});
  return factory.Composite("EncoderLayer",
                           {{"norm1", factory.LayerNorm(dim)},
                            {"attn", attn},
                            {"norm2", factory.LayerNorm(dim)},
                            {"ffn", ffn}},
                           {"x = x + " + Call("attn", Call("norm1", "x")),
                            "return x + " + Call("ffn", Call("norm2", "x"))});
}

// Byte-sequence classifier: embed (256 x 64) + pos_embed (L x 64), layers.0..layers.1
// pre-norm encoder layers, norm, mean over the sequence, head.
Module Transformer(const ModelShape& shape) {
  ModuleFactory factory;
  NamedModules children = {{"embed", factory.Embedding(kByteVocabulary, kTransformerDim)},
                           {"pos_embed", factory.Embedding(shape.input_shape[0], kTransformerDim)}};
  std::vector<Module> layers;
  for (int64_t i = 0; i < kTransformerLayers; ++i) {
    layers.push_back(EncoderLayer(factory, kTransformerDim, kTransformerHeads));
  }
  children.emplace_back("layers", factory.Sequential(layers));
  children.emplace_back("norm", factory.LayerNorm(kTransformerDim));
  children.emplace_back("head", factory.Linear(kTransformerDim, shape.num_classes));
  return factory.Composite(
      "Transformer", children,
      {"positions = torch.arange(x.size(1), device=x.device)",
       "h = " + Call("embed", "x") + " + " + Call("pos_embed", "positions"),
       "h = " + Call("norm", Call("layers", "h")), "return " + Call("head", "h.mean(1)")});
}

// A builtin model: its name after "builtin:", the per-sample input it takes and how to
// build it.
struct BuiltinModel {
  const char* name;
  size_t input_rank;
  const char* input_layout;
  Module (*build)(const ModelShape&);
};

const BuiltinModel kBuiltinModels[] = {
    {"resnet20", 3, "{C, H, W}", [](const ModelShape& s) { return ResNet(s, 3, false); }},
    {"resnet56", 3, "{C, H, W}", [](const ModelShape& s) { return ResNet(s, 9, true); }},
    {"fmnist_resnet", 3, "{C, H, W}", FmnistResNet},
    {"mobilenetv2", 3, "{C, H, W}", MobileNetV2},
    {"transformer", 1, "{L} (byte sequence length)", Transformer},
};

// Throws ModelError unless `shape` has the rank `model` needs, positive sizes and at
// least one class.
void CheckShape(const BuiltinModel& model, const ModelShape& shape) {
  bool valid = shape.input_shape.size() == model.input_rank && shape.num_classes > 0;
  for (int64_t size : shape.input_shape) valid = valid && size > 0;
  if (!valid) {
    throw ModelError("builtin model '" + std::string(model.name) + "' needs input_shape " +
                     model.input_layout + " with positive sizes and num_classes >= 1; got " +
                     "input_shape " + ShapeString(shape.input_shape) + ", num_classes " +
                     std::to_string(shape.num_classes));
  }
}

}  // namespace

std::vector<std::string> BuiltinModelNames() {
  std::vector<std::string> names;
  for (const BuiltinModel& model : kBuiltinModels) names.emplace_back(model.name);
  return names;
}

torch::jit::Module BuildBuiltinModel(const std::string& name, const ModelShape& shape) {
  for (const BuiltinModel& model : kBuiltinModels) {
    if (name != model.name) continue;
    CheckShape(model, shape);
    return model.build(shape);
  }
  std::string valid;
  for (const std::string& known : BuiltinModelNames()) valid += (valid.empty() ? "" : ", ") + known;
  throw ConfigError("unknown builtin model '" + name + "'; valid: " + valid);
}

}  // namespace slim::models

#include "strategies/quant/quantizer_modules.h"

#include <string>

namespace slim::quant {

namespace {

// Initial PACT clip, as in PaddleSlim.
constexpr double kPactInitialAlpha = 20.0;

// In the sources, dtype 12 is torch.qint8 and 13 torch.quint8 (a C++-compiled module
// cannot name them). QDQ clamps an activation to the b-bit range first, as 8-bit storage
// alone would clamp only at its own bounds; exported weights already lie on their grid.
const char* const kWeightSource = R"(
def forward(self, w):
    if not self.enabled:
        return w
    if not self.fold_bn:
        return self.quantize(w)
    factor = self.bn_weight.detach() / torch.sqrt(self.bn_var + self.bn_eps)
    factor = factor.masked_fill(factor == 0, 1.0).reshape([-1] + [1] * (w.dim() - 1))
    return self.quantize(w * factor) / factor

def quantize(self, w):
    if not self.frozen:
        self.scale = self.abs_max_scale(w.detach())
    if self.per_channel:
        if self.qdq:
            return torch.dequantize(torch.quantize_per_channel(w, self.scale, self.zero_point, 0, 12))
        return torch.fake_quantize_per_channel_affine(w, self.scale, self.zero_point, 0, self.quant_min, self.quant_max)
    if self.qdq:
        return torch.dequantize(torch.quantize_per_tensor(w, self.scale, self.zero_point, 12))
    return torch.fake_quantize_per_tensor_affine(w, self.scale, self.zero_point, self.quant_min, self.quant_max)

def abs_max_scale(self, w):
    if self.per_channel:
        peak = torch.amax(torch.abs(w.reshape([w.size(0), -1])), [1])
    else:
        peak = torch.amax(torch.abs(w)).reshape([1])
    return torch.clamp_min(peak, 1e-8) / self.quant_max
)";

// The activation quantizer's forward; PACT_CLIP is replaced by the PACT line or nothing.
// In training the straight-through estimator is x + (q(x) - x).detach(): the same values as
// fake_quantize_per_tensor_affine (round half to even on x * (1 / scale), clamped), with
// the gradient passed unchanged, as PaddleSlim's STE does; clipping gradients is PACT's
// job. It runs in-place on one temporary and has no masked backward, which makes it 2.6x
// cheaper than ATen's CPU fake-quantize forward + backward.
const char* const kActivationSource = R"(
def forward(self, x):
    if not self.enabled:
        return x
PACT_CLIP
    if (self.observe == 1 and self.training) or self.observe == 2:
        low, high = torch.aminmax(x.detach())
        self.batch_max = torch.maximum(self.batch_max, torch.maximum(high, -low))
        self.batch_min = torch.minimum(self.batch_min, low)
    elif self.observe == 3:
        bins = self.histogram.size(0)
        self.histogram = self.histogram + torch.histc(torch.abs(x.detach()), bins, 0.0, self.hist_max)
    if not self.quantize:
        return x
    if self.qdq:
        x = torch.clamp(x, self.scale * self.quant_min, self.scale * self.quant_max)
        dtype = 13 if self.quant_min >= 0 else 12
        return torch.dequantize(torch.quantize_per_tensor(x, self.scale, self.zero_point, dtype))
    if self.training:
        plain = x.detach()
        grid = torch.clamp(plain * (1.0 / self.scale), self.quant_min, self.quant_max)
        return x + grid.round_().mul_(self.scale).sub_(plain)
    return torch.fake_quantize_per_tensor_affine(x, self.scale, self.zero_point, self.quant_min, self.quant_max)
)";

const char* const kPactClip =
    "    x = x - torch.relu(x - self.alpha) + torch.relu(-self.alpha - x)\n";

std::string ActivationSource(bool pact) {
  std::string source = kActivationSource;
  const std::string marker = "PACT_CLIP\n";
  source.replace(source.find(marker), marker.size(), pact ? kPactClip : "");
  return source;
}

void RegisterBool(torch::jit::Module& module, const std::string& name, bool value) {
  module.register_attribute(name, c10::BoolType::get(), value);
}

void RegisterInt(torch::jit::Module& module, const std::string& name, int64_t value) {
  module.register_attribute(name, c10::IntType::get(), value);
}

// Scale and zero point of `count` entries, and the integer range of `bits`.
void SetGrid(torch::jit::Module& quantizer, int64_t count, int64_t bits) {
  quantizer.register_buffer("scale", torch::ones({count}));
  quantizer.register_buffer("zero_point", torch::zeros({count}, torch::kInt32));
  quantizer.setattr("quant_min", -QuantMax(bits));
  quantizer.setattr("quant_max", QuantMax(bits));
}

// The learnable PACT clip, a leaf tensor of its own.
void AddPactAlpha(torch::jit::Module& quantizer) {
  quantizer.register_parameter("alpha", torch::full({1}, kPactInitialAlpha).requires_grad_(),
                               /*is_buffer=*/false);
}

}  // namespace

int64_t QuantMax(int64_t bits) { return (int64_t{1} << (bits - 1)) - 1; }

void SetActivationGrid(torch::jit::Module& activation_quantizer, ActivationGrid grid,
                       int64_t bits) {
  const bool non_negative = grid == ActivationGrid::kUnsigned;
  activation_quantizer.setattr("quant_min", non_negative ? int64_t{0} : -QuantMax(bits));
  activation_quantizer.setattr("quant_max",
                               non_negative ? (int64_t{1} << bits) - 1 : QuantMax(bits));
}

QuantizerFactory::QuantizerFactory() : unit_(std::make_shared<torch::jit::CompilationUnit>()) {}

torch::jit::Module QuantizerFactory::NewInstance(std::optional<torch::jit::Module>& prototype,
                                                 const std::string& kind, bool pact) {
  if (prototype) return prototype->deepcopy();
  torch::jit::Module module(c10::QualifiedName("__torch__.slim.quant." + kind), unit_,
                            /*shouldMangle=*/true);
  RegisterBool(module, "training", true);
  RegisterBool(module, "enabled", true);
  RegisterBool(module, "qdq", false);
  RegisterInt(module, "quant_min", -127);
  RegisterInt(module, "quant_max", 127);
  module.register_buffer("scale", torch::ones({1}));
  module.register_buffer("zero_point", torch::zeros({1}, torch::kInt32));
  if (kind == "WeightQuantizer") {
    RegisterBool(module, "per_channel", true);
    RegisterBool(module, "frozen", false);
    RegisterBool(module, "fold_bn", false);
    module.register_attribute("bn_eps", c10::FloatType::get(), 0.0);
    // Plain tensor attributes, not buffers: they share the BatchNorm's own tensors.
    module.register_attribute("bn_weight", c10::TensorType::get(), torch::ones({1}));
    module.register_attribute("bn_var", c10::TensorType::get(), torch::ones({1}));
    module.define(kWeightSource);
  } else {
    RegisterInt(module, "observe", static_cast<int64_t>(Observe::kNothing));
    RegisterBool(module, "quantize", false);
    module.register_attribute("hist_max", c10::FloatType::get(), 1.0);
    module.register_buffer("batch_max", torch::zeros({}));
    // Not a buffer: cleared after every reduction, it has nothing to keep in checkpoints
    // (which stay loadable across its introduction).
    module.register_attribute("batch_min", c10::TensorType::get(), torch::zeros({}));
    module.register_buffer("histogram", torch::zeros({0}));
    if (pact) AddPactAlpha(module);
    module.define(ActivationSource(pact));
  }
  prototype = module;
  return module.deepcopy();
}

torch::jit::Module QuantizerFactory::NewWeightQuantizer(bool per_channel, int64_t channels,
                                                        int64_t bits) {
  auto quantizer = NewInstance(weight_prototype_, "WeightQuantizer", false);
  quantizer.setattr("per_channel", per_channel);
  SetGrid(quantizer, per_channel ? channels : 1, bits);
  return quantizer;
}

torch::jit::Module QuantizerFactory::NewActivationQuantizer(int64_t bits, bool pact) {
  auto quantizer = pact ? NewInstance(pact_prototype_, "PactActivationQuantizer", true)
                        : NewInstance(activation_prototype_, "ActivationQuantizer", false);
  SetGrid(quantizer, 1, bits);
  // A deep copy clones alpha into a non-leaf tensor; each instance needs its own leaf.
  if (pact) AddPactAlpha(quantizer);
  return quantizer;
}

void SetEnabled(torch::jit::Module& quantizer, bool enabled) { quantizer.setattr("enabled", enabled); }

void SetObserve(torch::jit::Module& activation_quantizer, Observe observe) {
  activation_quantizer.setattr("observe", static_cast<int64_t>(observe));
}

void SetQuantize(torch::jit::Module& activation_quantizer, bool quantize) {
  activation_quantizer.setattr("quantize", quantize);
}

void SetFrozen(torch::jit::Module& weight_quantizer, bool frozen) {
  weight_quantizer.setattr("frozen", frozen);
}

void SetExportQdq(torch::jit::Module& quantizer, bool qdq) { quantizer.setattr("qdq", qdq); }

void FoldBatchNorm(torch::jit::Module& weight_quantizer, const torch::Tensor& bn_weight,
                   const torch::Tensor& bn_var, double eps) {
  weight_quantizer.setattr("bn_weight", bn_weight);
  weight_quantizer.setattr("bn_var", bn_var);
  weight_quantizer.setattr("bn_eps", eps);
  weight_quantizer.setattr("fold_bn", true);
}

void UnfoldBatchNorm(torch::jit::Module& weight_quantizer) {
  weight_quantizer.setattr("fold_bn", false);
  weight_quantizer.setattr("bn_weight", torch::ones({1}));
  weight_quantizer.setattr("bn_var", torch::ones({1}));
}

}  // namespace slim::quant

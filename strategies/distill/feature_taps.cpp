#include "strategies/distill/feature_taps.h"

#include <map>

#include "runtime/base/errors.h"
#include "runtime/base/text.h"
#include "strategies/graph/call_routing.h"
#include "strategies/graph/layer_finder.h"

namespace slim::distill {

namespace {

const char* const kTapSource = R"(
def forward(self, x):
    if self.active:
        self.value = x
    return x
)";

torch::Tensor Cleared() { return torch::empty({0}); }

// An inactive tap; instances share one class.
class TapFactory {
 public:
  torch::jit::Module NewTap() {
    if (!prototype_) {
      prototype_.emplace(c10::QualifiedName("__torch__.slim.distill.Tap"),
                         std::make_shared<torch::jit::CompilationUnit>(), /*shouldMangle=*/true);
      prototype_->register_attribute("training", c10::BoolType::get(), false);
      prototype_->register_attribute("active", c10::BoolType::get(), false);
      prototype_->register_attribute("value", c10::TensorType::get(), Cleared());
      prototype_->define(kTapSource);
    }
    return prototype_->deepcopy();
  }

 private:
  std::optional<torch::jit::Module> prototype_;
};

std::string TypeName(const torch::jit::Module& module) {
  return module.type()->name()->qualifiedName();
}

}  // namespace

FeatureTaps::FeatureTaps(torch::jit::Module& model, const std::vector<std::string>& paths,
                         const std::string& role)
    : paths_(paths), role_(role) {
  const auto modules = graph::ModulesByPath(model);
  std::map<std::string, torch::jit::Module> tapped_classes;  // by class name: an instance
  for (const auto& path : paths_) {
    if (path == kLogits) continue;
    const auto found = modules.find(path);
    if (found == modules.end() || path.empty()) {
      throw ModelError("node '" + path + "' is not a module of the " + role_ + "; use " +
                       std::string(kLogits) + " or one of its module paths: " +
                       JoinedList(graph::ModulePaths(model)));
    }
    tapped_classes.emplace(TypeName(found->second), found->second);
  }
  // A pass edits the class's graph: every instance of a tapped class gets an inactive tap.
  TapFactory factory;
  for (const auto& [path, module] : modules) {
    if (!tapped_classes.count(TypeName(module)) || module.hasattr(kTapChild)) continue;
    torch::jit::Module instance = module;
    instance.register_module(kTapChild, factory.NewTap());
  }
  for (const auto& [name, instance] : tapped_classes) {
    try {
      graph::RouteForwardOutput(instance, kTapChild);
    } catch (const ModelError& e) {
      throw ModelError("cannot tap a module of the " + role_ + ": " + e.what());
    }
  }
  for (const auto& path : paths_) {
    if (path == kLogits) {
      taps_.emplace_back();
      continue;
    }
    auto tap = modules.at(path).attr(kTapChild).toModule();
    tap.setattr("active", true);
    taps_.emplace_back(tap);
  }
}

std::vector<torch::Tensor> FeatureTaps::Take(const torch::Tensor& output) {
  std::vector<torch::Tensor> values;
  for (size_t i = 0; i < taps_.size(); ++i) {
    if (!taps_[i]) {
      values.push_back(output);
      continue;
    }
    auto value = taps_[i]->attr("value").toTensor();
    taps_[i]->setattr("value", Cleared());
    if (value.numel() == 0) {
      throw ModelError("node '" + paths_[i] + "' of the " + role_ + " did not run in forward; "
                       "tap a module that every forward calls");
    }
    values.push_back(value);
  }
  return values;
}

}  // namespace slim::distill

#include "runtime/engine/recompute_region.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <ATen/autocast_mode.h>
#include <fmt/format.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/jit/runtime/custom_operator.h>

#include <functional>
#include <mutex>
#include <unordered_map>

#include "runtime/base/errors.h"
#include "runtime/base/torch_compat.h"
#include "runtime/engine/mixed_precision.h"

namespace slim::engine {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using torch::jit::IValue;

// ---- The regions slim::recompute runs, by number.

struct RegionTable {
  std::mutex mutex;
  std::unordered_map<int64_t, graph::RecomputedCall> regions;
  int64_t next = 0;
};

RegionTable& Regions() {
  static RegionTable table;
  return table;
}

graph::RecomputedCall RegionNumbered(int64_t region) {
  auto& table = Regions();
  std::lock_guard<std::mutex> lock(table.mutex);
  const auto found = table.regions.find(region);
  if (found == table.regions.end()) {
    throw ModelError(fmt::format("slim::recompute: region {} is not registered: the graph "
                                 "that names it outlived its training run",
                                 region));
  }
  return found->second;
}

IValue Call(const graph::RecomputedCall& region, const IValue& arguments) {
  const auto& items = arguments.toTupleRef().elements();
  return region.module.get_method(region.method)(std::vector<IValue>(items.begin(), items.end()));
}

// ---- Values that hold tensors in tuples and lists.

// `value` with each tensor inside (depth first) replaced by map(tensor).
IValue MapTensors(const IValue& value, const std::function<at::Tensor(const at::Tensor&)>& map,
                  const std::string& region) {
  if (value.isTensor()) return map(value.toTensor());
  if (value.isTuple()) {
    std::vector<IValue> items;
    for (const auto& item : value.toTupleRef().elements()) {
      items.push_back(MapTensors(item, map, region));
    }
    return c10::ivalue::Tuple::create(std::move(items));
  }
  if (value.isList()) {
    const auto list = value.toList();
    c10::impl::GenericList mapped(list.elementType());
    for (size_t i = 0; i < list.size(); ++i) mapped.push_back(MapTensors(list.get(i), map, region));
    return mapped;
  }
  if (value.isGenericDict() || value.isObject()) {
    throw ModelError(fmt::format(
        "module '{}' takes or returns a {}, which activation recompute cannot follow "
        "(tensors, tuples and lists only); recompute a module around or inside it",
        region, value.tagKind()));
  }
  return value;
}

// `value` with its tensors replaced by undefined placeholders; the tensors go to `tensors`.
IValue SplitTensors(const IValue& value, variable_list& tensors, const std::string& region) {
  return MapTensors(value, [&](const at::Tensor& tensor) {
    tensors.push_back(tensor);
    return at::Tensor();
  }, region);
}

// The inverse of SplitTensors.
IValue JoinTensors(const IValue& skeleton, const variable_list& tensors, const std::string& region) {
  size_t next = 0;
  return MapTensors(skeleton, [&](const at::Tensor&) { return tensors.at(next++); }, region);
}

// ---- State a module's forward may change besides its result.

// The buffers and plain attributes (tensors, numbers, flags) of a module tree, copied.
class ModuleState {
 public:
  explicit ModuleState(const torch::jit::Module& root) {
    torch::NoGradGuard no_grad;
    for (const auto& entry : root.named_modules()) {
      const auto& object = entry.value._ivalue();
      const auto& type = object->type();
      for (size_t i = 0; i < type->numAttributes(); ++i) {
        if (type->is_parameter(i)) continue;
        const IValue& value = object->getSlot(i);
        if (value.isTensor()) {
          const auto& tensor = value.toTensor();
          slots_.push_back({object, i, tensor.defined() ? tensor.clone() : tensor});
        } else if (value.isInt() || value.isDouble() || value.isBool() || value.isNone()) {
          slots_.push_back({object, i, value});
        }
      }
    }
  }

  // Sets the tree's state to the copy: in place where the tensor kept its shape and type.
  void Restore() const {
    torch::NoGradGuard no_grad;
    for (const auto& slot : slots_) {
      const IValue& current = slot.object->getSlot(slot.index);
      if (!slot.value.isTensor() || !slot.value.toTensor().defined()) {
        slot.object->setSlot(slot.index, slot.value);
        continue;
      }
      const auto& saved = slot.value.toTensor();
      if (current.isTensor() && current.toTensor().defined() &&
          current.toTensor().sizes() == saved.sizes() &&
          current.toTensor().dtype() == saved.dtype()) {
        current.toTensor().copy_(saved);
      } else {
        slot.object->setSlot(slot.index, saved.clone());
      }
    }
  }

 private:
  struct Slot {
    c10::intrusive_ptr<c10::ivalue::Object> object;
    size_t index;
    IValue value;
  };
  std::vector<Slot> slots_;
};

// The CUDA device a call into `module` with `tensors` runs on: that of its first CUDA
// input, else of its first CUDA parameter; nullopt when neither is on CUDA.
c10::optional<torch::Device> CudaDeviceOf(const torch::jit::Module& module,
                                          const variable_list& tensors) {
  for (const auto& tensor : tensors) {
    if (tensor.defined() && tensor.is_cuda()) return tensor.device();
  }
  for (const auto& parameter : module.parameters()) {
    if (parameter.is_cuda()) return parameter.device();
  }
  return c10::nullopt;
}

// The states of the default generators a call can draw from: the CPU's, and that of the
// CUDA device it runs on (dropout there draws from the device's generator).
class GeneratorStates {
 public:
  GeneratorStates(const torch::jit::Module& module, const variable_list& tensors) {
    generators_.push_back(at::detail::getDefaultCPUGenerator());
    if (const auto cuda = CudaDeviceOf(module, tensors)) {
      generators_.push_back(at::globalContext().defaultGenerator(*cuda));
    }
    for (auto& generator : generators_) {
      std::lock_guard<std::mutex> lock(generator.mutex());
      states_.push_back(generator.get_state());
    }
  }
  // A snapshot of the same generators as they are now.
  GeneratorStates Now() const {
    GeneratorStates now = *this;
    for (size_t i = 0; i < now.generators_.size(); ++i) {
      std::lock_guard<std::mutex> lock(now.generators_[i].mutex());
      now.states_[i] = now.generators_[i].get_state();
    }
    return now;
  }
  // Puts every generator back into its state of the snapshot.
  void Restore() const {
    for (size_t i = 0; i < generators_.size(); ++i) {
      auto generator = generators_[i];
      std::lock_guard<std::mutex> lock(generator.mutex());
      generator.set_state(states_[i]);
    }
  }

 private:
  std::vector<at::Generator> generators_;
  std::vector<at::Tensor> states_;
};

// While alive: the module tree and the generators are as before the first run; on
// destruction they are as they were when it was created.
class ReplayConditions {
 public:
  ReplayConditions(const torch::jit::Module& module, const ModuleState& before,
                   const GeneratorStates& generators_before)
      : current_state_(module), current_generators_(generators_before.Now()) {
    before.Restore();
    generators_before.Restore();
  }
  ~ReplayConditions() {
    current_state_.Restore();
    current_generators_.Restore();
  }
  ReplayConditions(const ReplayConditions&) = delete;
  ReplayConditions& operator=(const ReplayConditions&) = delete;

 private:
  ModuleState current_state_;
  GeneratorStates current_generators_;
};

// While alive, autocast keeps no lower-precision copies of weights: those made without
// autograd must not serve later, differentiated, uses of the same weights.
class AutocastCacheOff {
 public:
  AutocastCacheOff() : was_enabled_(at::autocast::is_autocast_cache_enabled()) {
    at::autocast::set_autocast_cache_enabled(false);
  }
  ~AutocastCacheOff() { at::autocast::set_autocast_cache_enabled(was_enabled_); }
  AutocastCacheOff(const AutocastCacheOff&) = delete;
  AutocastCacheOff& operator=(const AutocastCacheOff&) = delete;

 private:
  bool was_enabled_;
};

// The type autocast lowers to on `device_type` on this thread; kFloat when it is off.
at::ScalarType AutocastTypeOrFloat(c10::DeviceType device_type) {
  return compat::AutocastEnabled(device_type) ? compat::AutocastType(device_type) : at::kFloat;
}

// What one call's backward needs to run it again.
struct RecomputedCallRecord : torch::CustomClassHolder {
  RecomputedCallRecord(graph::RecomputedCall call, const IValue& arguments, variable_list& tensors)
      : region(std::move(call)),
        arguments(SplitTensors(arguments, tensors, region.path)),
        state_before(region.module),
        generators_before(region.module, tensors),
        cpu_autocast(AutocastTypeOrFloat(torch::kCPU)),
        cuda_autocast(AutocastTypeOrFloat(torch::kCUDA)) {
    for (const auto& tensor : tensors) requires_grad.push_back(tensor.requires_grad());
  }

  graph::RecomputedCall region;
  IValue arguments;  // with placeholders for the tensors
  ModuleState state_before;
  GeneratorStates generators_before;
  at::ScalarType cpu_autocast, cuda_autocast;  // kFloat: autocast was off
  std::vector<bool> requires_grad;  // of each input tensor
  IValue result;  // with placeholders, set by the first run
};

class RecomputeFunction : public torch::autograd::Function<RecomputeFunction> {
 public:
  static variable_list forward(AutogradContext* context,
                               const c10::intrusive_ptr<RecomputedCallRecord>& record,
                               at::TensorList inputs) {
    context->save_for_backward(inputs.vec());
    IValue result;
    {
      AutocastCacheOff no_cache;
      result = Call(record->region,
                    JoinTensors(record->arguments, inputs.vec(), record->region.path));
    }
    variable_list outputs;
    record->result = SplitTensors(result, outputs, record->region.path);
    variable_list non_differentiable;
    for (const auto& output : outputs) {
      if (output.defined() && !output.is_floating_point()) non_differentiable.push_back(output);
    }
    context->mark_non_differentiable(non_differentiable);
    context->saved_data["record"] = IValue::make_capsule(record);
    return outputs;
  }

  static variable_list backward(AutogradContext* context, variable_list output_grads) {
    const auto record = c10::static_intrusive_pointer_cast<RecomputedCallRecord>(
        context->saved_data["record"].toCapsule());
    variable_list inputs = context->get_saved_variables();
    for (size_t i = 0; i < inputs.size(); ++i) {
      inputs[i] = inputs[i].detach().requires_grad_(record->requires_grad[i]);
    }
    {
      // The conditions stay until backward is done: it checks that the buffers it saved
      // (BatchNorm's running statistics) were not changed since.
      ReplayConditions replay(record->region.module, record->state_before,
                              record->generators_before);
      IValue result;
      {
        torch::AutoGradMode grad_mode(true);
        AutocastScope cpu_autocast(torch::kCPU, record->cpu_autocast);
        AutocastScope cuda_autocast(torch::kCUDA, record->cuda_autocast);
        result = Call(record->region, JoinTensors(record->arguments, inputs, record->region.path));
      }
      variable_list outputs;
      SplitTensors(result, outputs, record->region.path);
      variable_list roots, root_grads;
      for (size_t i = 0; i < outputs.size() && i < output_grads.size(); ++i) {
        if (outputs[i].defined() && outputs[i].requires_grad() && output_grads[i].defined()) {
          roots.push_back(outputs[i]);
          root_grads.push_back(output_grads[i]);
        }
      }
      if (!roots.empty()) torch::autograd::backward(roots, root_grads);
    }
    variable_list input_grads{at::Tensor()};  // none for the record
    for (const auto& input : inputs) {
      input_grads.push_back(input.requires_grad() ? input.grad() : at::Tensor());
    }
    return input_grads;
  }
};

void RunRecompute(torch::jit::Stack& stack) {
  const IValue arguments = torch::jit::pop(stack);
  const auto region = RegionNumbered(torch::jit::pop(stack).toInt());
  if (!at::GradMode::is_enabled()) {
    torch::jit::push(stack, Call(region, arguments));
    return;
  }
  variable_list tensors;
  auto record = c10::make_intrusive<RecomputedCallRecord>(region, arguments, tensors);
  const auto outputs = RecomputeFunction::apply(record, at::TensorList(tensors));
  torch::jit::push(stack, JoinTensors(record->result, outputs, region.path));
}

const torch::jit::RegisterOperators kRecomputeOperator({torch::jit::Operator(
    std::string(graph::kRecomputeOperator) + "(int region, Any args) -> Any", RunRecompute,
    c10::AliasAnalysisKind::CONSERVATIVE)});

}  // namespace

int64_t RegisterRecomputeRegion(const graph::RecomputedCall& call) {
  auto& table = Regions();
  std::lock_guard<std::mutex> lock(table.mutex);
  const int64_t region = table.next++;
  table.regions.emplace(region, call);
  return region;
}

void ForgetRecomputeRegion(int64_t region) {
  auto& table = Regions();
  std::lock_guard<std::mutex> lock(table.mutex);
  table.regions.erase(region);
}

}  // namespace slim::engine

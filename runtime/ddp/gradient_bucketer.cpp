#include "runtime/ddp/gradient_bucketer.h"

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <functional>
#include <mutex>

namespace slim::ddp {

struct GradientBucketer::State {
  struct Slot {
    size_t parameter;
    int64_t offset;
    int64_t numel;
  };
  struct Bucket {
    std::vector<Slot> slots;
    torch::Tensor buffer;
    size_t pending = 0;
    bool ready = false;
    comm::WorkPtr work;
  };

  std::vector<torch::Tensor> parameters;
  std::vector<size_t> bucket_of;  // parameter -> bucket
  std::vector<Bucket> buckets;
  comm::Communicator* comm = nullptr;
  std::mutex mutex;
  bool sync_enabled = true;
  size_t next_to_launch = 0;

  // Copies the bucket's gradients into its buffer and starts the average. Holds mutex.
  void Launch(Bucket& bucket) {
    for (const Slot& slot : bucket.slots) {
      auto destination = bucket.buffer.narrow(0, slot.offset, slot.numel);
      const auto& grad = parameters[slot.parameter].grad();
      if (grad.defined()) {
        destination.copy_(grad.reshape({-1}));
      } else {
        destination.zero_();
      }
    }
    bucket.work = comm->AllReduce(bucket.buffer, comm::ReduceOp::kAverage);
  }

  void LaunchReadyInOrder() {
    while (next_to_launch < buckets.size() && buckets[next_to_launch].ready) {
      Launch(buckets[next_to_launch++]);
    }
  }

  void MarkReady(size_t parameter) {
    std::lock_guard<std::mutex> lock(mutex);
    if (!sync_enabled) return;
    Bucket& bucket = buckets[bucket_of[parameter]];
    if (bucket.pending > 0 && --bucket.pending == 0) {
      bucket.ready = true;
      LaunchReadyInOrder();
    }
  }

  void ResetForNextPass() {
    for (auto& bucket : buckets) {
      bucket.pending = bucket.slots.size();
      bucket.ready = false;
      bucket.work.reset();
    }
    next_to_launch = 0;
  }
};

namespace {

// Post hook on a parameter's AccumulateGrad node: runs `on_ready` once .grad holds this
// pass's gradient.
class ReadyHook final : public torch::autograd::FunctionPostHook {
 public:
  explicit ReadyHook(std::function<void()> on_ready) : on_ready_(std::move(on_ready)) {}
  torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                            const torch::autograd::variable_list&) override {
    on_ready_();
    return outputs;
  }

 private:
  std::function<void()> on_ready_;
};

}  // namespace

GradientBucketer::GradientBucketer(std::vector<torch::Tensor> parameters,
                                   comm::Communicator& comm, double bucket_cap_mb)
    : state_(std::make_shared<State>()) {
  state_->parameters = std::move(parameters);
  state_->comm = &comm;
  const auto& params = state_->parameters;
  state_->bucket_of.resize(params.size());
  const auto cap_bytes = static_cast<int64_t>(bucket_cap_mb * 1024 * 1024);

  // Buckets fill in reverse order; a new one starts when the dtype changes or the cap
  // would be passed.
  std::vector<int64_t> bucket_bytes;
  std::vector<torch::ScalarType> bucket_types;
  for (size_t i = params.size(); i-- > 0;) {
    const auto& p = params[i];
    const int64_t bytes = p.numel() * static_cast<int64_t>(p.element_size());
    auto& buckets = state_->buckets;
    if (buckets.empty() || bucket_types.back() != p.scalar_type() ||
        bucket_bytes.back() + bytes > cap_bytes) {
      buckets.emplace_back();
      bucket_bytes.push_back(0);
      bucket_types.push_back(p.scalar_type());
    }
    auto& bucket = buckets.back();
    bucket.slots.push_back({i, bucket_bytes.back() / p.element_size(), p.numel()});
    bucket_bytes.back() += bytes;
    state_->bucket_of[i] = buckets.size() - 1;
  }
  for (size_t b = 0; b < state_->buckets.size(); ++b) {
    state_->buckets[b].buffer = torch::zeros(
        {bucket_bytes[b] / static_cast<int64_t>(c10::elementSize(bucket_types[b]))},
        torch::TensorOptions().dtype(bucket_types[b]).device(params[0].device()));
  }
  state_->ResetForNextPass();

  for (size_t i = 0; i < params.size(); ++i) {
    auto accumulator = torch::autograd::impl::grad_accumulator(params[i]);
    std::weak_ptr<State> weak_state = state_;
    accumulator->add_post_hook(std::make_unique<ReadyHook>([weak_state, i] {
      if (auto state = weak_state.lock()) state->MarkReady(i);
    }));
    accumulators_.push_back(std::move(accumulator));
  }
}

GradientBucketer::~GradientBucketer() = default;

void GradientBucketer::SetSyncEnabled(bool enabled) {
  std::lock_guard<std::mutex> lock(state_->mutex);
  state_->sync_enabled = enabled;
}

void GradientBucketer::FinishGradientSync() {
  std::lock_guard<std::mutex> lock(state_->mutex);
  auto& state = *state_;
  for (; state.next_to_launch < state.buckets.size(); ++state.next_to_launch) {
    state.Launch(state.buckets[state.next_to_launch]);
  }
  for (auto& bucket : state.buckets) {
    bucket.work->Wait(state.comm->DefaultTimeout());
    for (const auto& slot : bucket.slots) {
      auto& parameter = state.parameters[slot.parameter];
      auto averaged = bucket.buffer.narrow(0, slot.offset, slot.numel).view(parameter.sizes());
      if (parameter.grad().defined()) {
        parameter.mutable_grad().copy_(averaged);
      } else {
        parameter.mutable_grad() = averaged.clone();
      }
    }
  }
  state.ResetForNextPass();
}

size_t GradientBucketer::BucketCount() const { return state_->buckets.size(); }

}  // namespace slim::ddp

// Measured figures of a model: multiply-accumulates counted from its graph, and latency
// timed on this machine after warm-up, the same way for every format.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "export/frozen_graph.h"

namespace slim::exporting {

// Multiply-accumulates of one sample through the convolutions, linear layers and products
// (matmul, bmm, baddbmm) that run (branches taken, loops repeated) in `frozen` on
// `example`, a batch of one.
struct MacCount {
  int64_t total = 0;
  // Of those, the ones in the quantized layers of the normal form (quant_normal_form.h):
  // convolutions and linears with a quantized weight and input, matmuls of two quantized
  // operands.
  int64_t quantized = 0;
};
MacCount CountMacs(const FrozenModel& frozen, const at::Tensor& example);

// CountMacs of `model` in any form (float, fake-quant or quantize/dequantize pairs).
MacCount CountModelMacs(const torch::jit::Module& model, const at::Tensor& example);

// Latency is measured on one thread: the figure least disturbed by the other ranks of a
// job, and the one that compares runtimes on equal terms.
constexpr int kLatencyThreads = 1;

struct Latency {
  int64_t batch = 0;
  int64_t threads = 0;
  int64_t iterations = 0;
  double median_ms = 0;
  double p90_ms = 0;
  double samples_per_second = 0;  // batch / median
};

// How long to time: at least `min_iterations` timed runs, more up to `max_iterations`
// while `budget_s` seconds last; `warmup` untimed runs first.
struct TimingPlan {
  int64_t warmup = 5;
  int64_t min_iterations = 10;
  int64_t max_iterations = 200;
  double budget_s = 2.0;
};

// The latency figures of `times_ms`, one run each of a batch of `batch`.
Latency Summarise(std::vector<double> times_ms, int64_t batch, int64_t threads);

// A copy of `model` in eval mode on the CPU, frozen with torch.jit.freeze: the form whose
// latency is measured, as a deployment would run it.
torch::jit::Module FrozenCpuCopy(const torch::jit::Module& model);

// Times `module`'s forward on `batch` copies of `example` (a batch of one) with
// LibTorch's current intra-op thread count.
Latency TimeTorchScript(torch::jit::Module& module, const at::Tensor& example,
                        int64_t batch, const TimingPlan& plan);

// Sets LibTorch's intra-op threads for the lifetime of this object.
class IntraOpThreads {
 public:
  explicit IntraOpThreads(int threads) : previous_(at::get_num_threads()) {
    at::set_num_threads(threads);
  }
  ~IntraOpThreads() { at::set_num_threads(previous_); }
  IntraOpThreads(const IntraOpThreads&) = delete;
  IntraOpThreads& operator=(const IntraOpThreads&) = delete;

 private:
  int previous_;
};

}  // namespace slim::exporting

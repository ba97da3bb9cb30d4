#include "runtime/engine/evaluator.h"

#include "data/distributed_sampler.h"
#include "runtime/models/model_loader.h"

namespace slim::engine {

Evaluator::Evaluator(std::shared_ptr<const data::Hdf5Dataset> dataset, comm::Communicator& comm,
                     torch::Device device, int64_t batch_size, int loader_threads, int prefetch)
    : comm_(comm),
      device_(device),
      plan_(data::EvaluationBatches(dataset->info().size, comm.Rank(), comm.Size(), batch_size)),
      loader_(dataset, data::BatchTransform(dataset->info(), data::AugmentSettings{}),
              loader_threads, prefetch) {}

Evaluator::Evaluator(std::shared_ptr<const data::Hdf5Dataset> dataset, comm::Communicator& comm,
                     torch::Device device, const config::GlobalOptions& options)
    : Evaluator(std::move(dataset), comm, device, options.eval_batch_size,
                static_cast<int>(options.loader_threads),
                static_cast<int>(options.prefetch_batches)) {}

EvalResult Evaluator::Evaluate(torch::jit::Module& model) {
  torch::NoGradGuard no_grad;
  // [loss sum, correct, samples] in float64 so the sums stay exact.
  auto totals = torch::zeros({3}, torch::kFloat64);
  {
    models::EvalModeGuard eval_mode(model);
    loader_.Start(plan_, /*epoch=*/0);
    while (loader_.HasNext()) {
      auto batch = loader_.Next();
      auto labels = batch.labels.to(device_);
      auto logits = model.forward({batch.inputs.to(device_)}).toTensor();
      totals[0] += torch::nn::functional::cross_entropy(
                       logits, labels,
                       torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                       .item<double>();
      totals[1] += logits.argmax(1).eq(labels).sum().item<double>();
      totals[2] += static_cast<double>(labels.size(0));
    }
  }
  comm_.AllReduceSync(totals, comm::ReduceOp::kSum);
  EvalResult result;
  result.samples = static_cast<int64_t>(totals[2].item<double>());
  result.loss = totals[0].item<double>() / std::max<int64_t>(1, result.samples);
  result.top1 = totals[1].item<double>() / std::max<int64_t>(1, result.samples);
  return result;
}

}  // namespace slim::engine

#include "search/output_comparison.h"

#include <algorithm>

#include "runtime/models/model_loader.h"
#include "search/output_distance.h"

namespace slim::search {

namespace {

std::vector<std::vector<int64_t>> RankBatches(int64_t size, int64_t batch_size, int rank,
                                              int group_size) {
  std::vector<std::vector<int64_t>> plan;
  for (int64_t start = 0, k = 0; start < size; start += batch_size, ++k) {
    if (k % group_size != rank) continue;
    std::vector<int64_t> indices;
    for (int64_t i = start; i < std::min(size, start + batch_size); ++i) indices.push_back(i);
    plan.push_back(std::move(indices));
  }
  return plan;
}

}  // namespace

OutputComparison::OutputComparison(std::shared_ptr<const data::Hdf5Dataset> eval_data,
                                   int64_t batch_size, comm::Communicator& group,
                                   torch::Device device, torch::jit::Module float_model)
    : group_(group),
      device_(device),
      batches_((eval_data->info().size + batch_size - 1) / batch_size),
      plan_(RankBatches(eval_data->info().size, batch_size, group.Rank(), group.Size())),
      loader_(eval_data, data::BatchTransform(eval_data->info(), data::AugmentSettings{}),
              /*threads=*/1, /*prefetch=*/2) {
  Sums sums;
  ForEachBatch(float_model, [&](size_t, const torch::Tensor& labels, const torch::Tensor& outputs) {
    float_outputs_.push_back(outputs.to(torch::kCPU));
    sums.Add(labels, outputs);
  });
  float_scores_ = Reduce(sums);
}

void OutputComparison::Sums::Add(const torch::Tensor& labels, const torch::Tensor& outputs) {
  if (!outputs.isfinite().all().item<bool>()) {
    finite = false;
    return;
  }
  loss += torch::nn::functional::cross_entropy(
              outputs, labels,
              torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
              .item<double>();
  correct += outputs.argmax(1).eq(labels).sum().item<double>();
  samples += static_cast<double>(labels.size(0));
}

template <typename Each>
void OutputComparison::ForEachBatch(torch::jit::Module& model, Each each) {
  torch::NoGradGuard no_grad;
  models::EvalModeGuard eval_mode(model);
  loader_.Start(plan_, /*epoch=*/0);
  for (size_t k = 0; loader_.HasNext(); ++k) {
    auto batch = loader_.Next();
    const auto labels = batch.labels.to(device_);
    each(k, labels, model.forward({batch.inputs.to(device_)}).toTensor());
  }
}

OutputScores OutputComparison::Score(torch::jit::Module& model) {
  Sums sums;
  ForEachBatch(model, [&](size_t k, const torch::Tensor& labels, const torch::Tensor& outputs) {
    sums.Add(labels, outputs);
    if (sums.finite) sums.emd += StandardisedWasserstein(float_outputs_[k], outputs.to(torch::kCPU));
  });
  return Reduce(sums);
}

OutputScores OutputComparison::Reduce(const Sums& sums) {
  auto totals = torch::tensor(
      {sums.emd, sums.loss, sums.correct, sums.samples, sums.finite ? 0.0 : 1.0}, torch::kFloat64);
  group_.AllReduceSync(totals, comm::ReduceOp::kSum);
  OutputScores scores;
  scores.samples = static_cast<int64_t>(totals[3].item<double>());
  scores.finite = totals[4].item<double>() == 0;
  const double n = std::max<double>(1, totals[3].item<double>());
  scores.emd = totals[0].item<double>() / static_cast<double>(std::max<int64_t>(1, batches_));
  scores.loss = totals[1].item<double>() / n;
  scores.top1 = totals[2].item<double>() / n;
  return scores;
}

}  // namespace slim::search

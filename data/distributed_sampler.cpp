#include "data/distributed_sampler.h"

#include <algorithm>
#include <numeric>
#include <random>

namespace slim::data {

DistributedSampler::DistributedSampler(const SamplerOptions& options) : options_(options) {
  const int64_t global_batch = options_.batch_size * options_.world_size;
  if (options_.drop_last) {
    batches_per_epoch_ = options_.dataset_size / global_batch;
    padded_size_ = batches_per_epoch_ * global_batch;
  } else {
    padded_size_ = (options_.dataset_size + options_.world_size - 1) / options_.world_size *
                   options_.world_size;
    batches_per_epoch_ = (padded_size_ + global_batch - 1) / global_batch;
  }
}

const std::vector<int64_t>& DistributedSampler::Order(int64_t epoch) {
  if (epoch == cached_epoch_) return order_;
  order_.resize(options_.dataset_size);
  std::iota(order_.begin(), order_.end(), 0);
  if (options_.shuffle) {
    // Fisher-Yates with our own index draw: std::shuffle's algorithm is unspecified and
    // could differ between standard libraries.
    std::mt19937_64 generator(options_.seed * 0x9E3779B97F4A7C15ULL + epoch);
    for (int64_t i = options_.dataset_size - 1; i > 0; --i) {
      const auto j = static_cast<int64_t>(generator() % static_cast<uint64_t>(i + 1));
      std::swap(order_[i], order_[j]);
    }
  }
  cached_epoch_ = epoch;
  return order_;
}

std::vector<int64_t> DistributedSampler::BatchIndices(int64_t epoch, int64_t batch) {
  const auto& order = Order(epoch);
  const int64_t world = options_.world_size;
  const int64_t begin = batch * options_.batch_size * world;
  const int64_t end = std::min(begin + options_.batch_size * world, padded_size_);
  std::vector<int64_t> indices;
  for (int64_t position = begin + options_.rank; position < end; position += world) {
    indices.push_back(order[position % options_.dataset_size]);
  }
  return indices;
}

std::vector<std::vector<int64_t>> EvaluationBatches(int64_t dataset_size, int rank,
                                                    int world_size, int64_t batch_size) {
  std::vector<std::vector<int64_t>> batches;
  for (int64_t index = rank; index < dataset_size; index += world_size) {
    if (batches.empty() || static_cast<int64_t>(batches.back().size()) == batch_size) {
      batches.emplace_back();
    }
    batches.back().push_back(index);
  }
  return batches;
}

}  // namespace slim::data

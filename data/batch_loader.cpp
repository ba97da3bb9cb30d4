#include "data/batch_loader.h"

#include <boost/asio/post.hpp>

namespace slim::data {

BatchLoader::BatchLoader(std::shared_ptr<const Hdf5Dataset> dataset, BatchTransform transform,
                         int threads, int prefetch)
    : dataset_(std::move(dataset)),
      transform_(std::move(transform)),
      prefetch_(prefetch),
      pool_(threads) {}

BatchLoader::~BatchLoader() {
  for (auto& batch : pending_) batch.wait();
  pool_.join();
}

void BatchLoader::Start(std::vector<std::vector<int64_t>> plan, int64_t epoch) {
  for (auto& batch : pending_) batch.wait();
  pending_.clear();
  plan_ = std::move(plan);
  next_to_submit_ = 0;
  epoch_ = epoch;
  Refill();
}

Batch BatchLoader::Next() {
  Batch batch = pending_.front().get();
  pending_.pop_front();
  Refill();
  return batch;
}

void BatchLoader::Refill() {
  while (static_cast<int>(pending_.size()) < prefetch_ && next_to_submit_ < plan_.size()) {
    auto task = std::make_shared<std::packaged_task<Batch()>>(
        [this, indices = plan_[next_to_submit_], epoch = epoch_] {
          Batch batch;
          batch.inputs = transform_.Apply(dataset_->ReadInputs(indices), indices, epoch);
          batch.labels = dataset_->Labels(indices);
          return batch;
        });
    pending_.push_back(task->get_future());
    boost::asio::post(pool_, [task] { (*task)(); });
    ++next_to_submit_;
  }
}

}  // namespace slim::data

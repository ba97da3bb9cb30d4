// Background batch preparation: reads and transforms upcoming batches on a Boost.Asio
// thread pool while the training loop works on the current one.
#pragma once

#include <torch/types.h>

#include <boost/asio/thread_pool.hpp>
#include <deque>
#include <future>
#include <memory>
#include <vector>

#include "data/batch_transform.h"
#include "data/hdf5_dataset.h"

namespace slim::data {

// One prepared batch.
struct Batch {
  torch::Tensor inputs;
  torch::Tensor labels;
};

// Produces the batches of a plan, in plan order, `prefetch` batches ahead.
// Not thread-safe: one consumer thread calls Start/Next.
class BatchLoader {
 public:
  BatchLoader(std::shared_ptr<const Hdf5Dataset> dataset, BatchTransform transform,
              int threads, int prefetch);
  // Waits for batches still being prepared, then stops the pool.
  ~BatchLoader();

  // Replaces the plan: the batches with these sample indices, augmented as in `epoch`.
  void Start(std::vector<std::vector<int64_t>> plan, int64_t epoch);
  // The next batch of the plan. REQUIRES: HasNext(). Rethrows a read error (DataError).
  Batch Next();
  bool HasNext() const { return !pending_.empty(); }

 private:
  void Refill();

  std::shared_ptr<const Hdf5Dataset> dataset_;
  BatchTransform transform_;
  int prefetch_;
  boost::asio::thread_pool pool_;
  std::vector<std::vector<int64_t>> plan_;
  size_t next_to_submit_ = 0;
  int64_t epoch_ = 0;
  std::deque<std::future<Batch>> pending_;
};

}  // namespace slim::data

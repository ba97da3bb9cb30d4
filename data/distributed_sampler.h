// Which samples each rank reads in each step: disjoint shards of one global order.
//
// Epoch e shuffles all N indices with a permutation drawn from (seed, e), identical on
// every rank. Global batch g covers permutation positions [g*W*B, (g+1)*W*B) for W ranks
// and per-rank batch B; rank r takes positions g*W*B + r + k*W (k < B). So W ranks with
// batch B see exactly the samples that one rank with batch W*B sees, and the position in
// the data is just (epoch, batch), which is all a resume needs.
#pragma once

#include <cstdint>
#include <vector>

namespace slim::data {

struct SamplerOptions {
  int64_t dataset_size = 0;
  int rank = 0;
  int world_size = 1;
  // Samples per rank per batch.
  int64_t batch_size = 1;
  // Shuffle every epoch (training) or keep file order (evaluation).
  bool shuffle = true;
  // Drop the last global batch when it is incomplete; otherwise it is filled up to a
  // multiple of world_size by wrapping around to the start of the epoch's order and each
  // rank's last batch may be smaller than batch_size.
  bool drop_last = true;
  uint64_t seed = 0;
};

class DistributedSampler {
 public:
  // REQUIRES: dataset_size > 0, 0 <= rank < world_size, batch_size > 0.
  explicit DistributedSampler(const SamplerOptions& options);

  // Batches in every epoch (the same on every rank). 0 when drop_last leaves none.
  int64_t BatchesPerEpoch() const { return batches_per_epoch_; }
  // This rank's sample indices for batch `batch` of epoch `epoch`.
  // REQUIRES: 0 <= batch < BatchesPerEpoch().
  std::vector<int64_t> BatchIndices(int64_t epoch, int64_t batch);

 private:
  const std::vector<int64_t>& Order(int64_t epoch);

  SamplerOptions options_;
  int64_t batches_per_epoch_ = 0;
  int64_t padded_size_ = 0;
  int64_t cached_epoch_ = -1;
  std::vector<int64_t> order_;
};

// Indices of an evaluation shard: rank r takes r, r+W, r+2W, ... below dataset_size,
// split into batches of at most batch_size. No sample is seen twice.
std::vector<std::vector<int64_t>> EvaluationBatches(int64_t dataset_size, int rank,
                                                    int world_size, int64_t batch_size);

}  // namespace slim::data

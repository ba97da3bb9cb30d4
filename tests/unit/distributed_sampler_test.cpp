#include "data/distributed_sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

namespace slim::data {
namespace {

SamplerOptions Options(int64_t size, int rank, int world, int64_t batch, bool drop_last) {
  return SamplerOptions{size, rank, world, batch, /*shuffle=*/true, drop_last, /*seed=*/7};
}

TEST(DistributedSampler, RanksGetDisjointShardsCoveringTheGlobalBatch) {
  const int world = 3;
  std::vector<DistributedSampler> ranks;
  for (int r = 0; r < world; ++r) ranks.emplace_back(Options(100, r, world, 4, true));
  ASSERT_EQ(ranks[0].BatchesPerEpoch(), 100 / 12);
  std::set<int64_t> seen;
  for (int64_t b = 0; b < ranks[0].BatchesPerEpoch(); ++b) {
    for (auto& rank : ranks) {
      const auto indices = rank.BatchIndices(0, b);
      EXPECT_EQ(indices.size(), 4u);
      for (auto index : indices) EXPECT_TRUE(seen.insert(index).second) << "index " << index;
    }
  }
  EXPECT_EQ(seen.size(), 96u);
}

TEST(DistributedSampler, RanksTogetherSeeWhatOneRankWithTheGlobalBatchSees) {
  DistributedSampler single(Options(50, 0, 1, 8, true));
  DistributedSampler rank0(Options(50, 0, 2, 4, true));
  DistributedSampler rank1(Options(50, 1, 2, 4, true));
  for (int64_t b = 0; b < single.BatchesPerEpoch(); ++b) {
    auto both = rank0.BatchIndices(3, b);
    const auto second = rank1.BatchIndices(3, b);
    both.insert(both.end(), second.begin(), second.end());
    auto alone = single.BatchIndices(3, b);
    std::sort(both.begin(), both.end());
    std::sort(alone.begin(), alone.end());
    EXPECT_EQ(both, alone) << "batch " << b;
  }
}

TEST(DistributedSampler, ShufflesPerEpochDeterministically) {
  DistributedSampler a(Options(64, 0, 1, 64, true));
  DistributedSampler b(Options(64, 0, 1, 64, true));
  EXPECT_EQ(a.BatchIndices(0, 0), b.BatchIndices(0, 0));
  EXPECT_NE(a.BatchIndices(0, 0), a.BatchIndices(1, 0));
  auto sorted = a.BatchIndices(1, 0);
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 64; ++i) EXPECT_EQ(sorted[i], i);
}

TEST(DistributedSampler, KeepLastPadsToAMultipleOfTheRanks) {
  DistributedSampler rank0(Options(10, 0, 4, 2, false));
  DistributedSampler rank3(Options(10, 3, 4, 2, false));
  ASSERT_EQ(rank0.BatchesPerEpoch(), 2);  // 12 padded samples, 8 per global batch
  EXPECT_EQ(rank0.BatchIndices(0, 1).size(), 1u);
  EXPECT_EQ(rank3.BatchIndices(0, 1).size(), 1u);
  DistributedSampler dropping(Options(10, 0, 4, 2, true));
  EXPECT_EQ(dropping.BatchesPerEpoch(), 1);
}

TEST(EvaluationBatches, EverySampleExactlyOnce) {
  std::multiset<int64_t> seen;
  for (int rank = 0; rank < 3; ++rank) {
    for (const auto& batch : EvaluationBatches(20, rank, 3, 4)) {
      EXPECT_LE(batch.size(), 4u);
      seen.insert(batch.begin(), batch.end());
    }
  }
  EXPECT_EQ(seen.size(), 20u);
  for (int64_t i = 0; i < 20; ++i) EXPECT_EQ(seen.count(i), 1u);
}

}  // namespace
}  // namespace slim::data

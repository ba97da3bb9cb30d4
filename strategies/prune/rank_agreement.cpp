#include "strategies/prune/rank_agreement.h"

#include <fmt/format.h>

#include "runtime/base/errors.h"

namespace slim::prune {

namespace {

// Keeps hashes positive so that their negation cannot overflow.
constexpr uint64_t kHashBits = (uint64_t{1} << 62) - 1;

// FNV-1a over the bytes of `tensors`.
int64_t HashOf(const std::vector<torch::Tensor>& tensors) {
  uint64_t hash = 14695981039346656037ull;
  for (const auto& tensor : tensors) {
    const auto contiguous = tensor.cpu().contiguous();
    const auto* data = static_cast<const uint8_t*>(contiguous.data_ptr());
    for (size_t i = 0; i < contiguous.nbytes(); ++i) hash = (hash ^ data[i]) * 1099511628211ull;
  }
  return static_cast<int64_t>(hash & kHashBits);
}

}  // namespace

void CheckSameOnAllRanks(const std::vector<torch::Tensor>& tensors, comm::Communicator& comm,
                         const std::string& what) {
  const int64_t hash = HashOf(tensors);
  auto extremes = torch::tensor({hash, -hash}, torch::kInt64);
  comm.AllReduceSync(extremes, comm::ReduceOp::kMax);
  if (extremes[0].item<int64_t>() != -extremes[1].item<int64_t>()) {
    throw CommError(fmt::format("{} differ between ranks (rank {} holds hash {}); the ranks' "
                                "weights were not identical when they were computed",
                                what, comm.Rank(), hash));
  }
}

}  // namespace slim::prune

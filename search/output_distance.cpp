#include "search/output_distance.h"

#include <stdexcept>

namespace slim::search {

namespace {

torch::Tensor SortedStandardised(const torch::Tensor& values) {
  const auto flat = values.detach().reshape({-1}).to(torch::kFloat64);
  const auto deviation = flat.std(/*unbiased=*/false).clamp_min(1e-8);
  return std::get<0>(((flat - flat.mean()) / deviation).sort());
}

}  // namespace

double StandardisedWasserstein(const torch::Tensor& reference, const torch::Tensor& other) {
  if (reference.numel() != other.numel() || reference.numel() == 0) {
    throw std::invalid_argument("StandardisedWasserstein: the two tensors need the same, "
                                "non-zero number of elements");
  }
  return (SortedStandardised(reference) - SortedStandardised(other)).abs().mean().item<double>();
}

}  // namespace slim::search

#include "strategies/quant/threshold_search.h"

#include <cmath>
#include <limits>
#include <numeric>

namespace slim::quant {

double PercentileThreshold(const std::vector<double>& histogram, double max, double percent) {
  const double total = std::accumulate(histogram.begin(), histogram.end(), 0.0);
  const double width = max / static_cast<double>(histogram.size());
  double seen = 0;
  for (size_t bin = 0; bin < histogram.size(); ++bin) {
    seen += histogram[bin];
    if (seen >= percent * total) return width * static_cast<double>(bin + 1);
  }
  return max;
}

double MseThreshold(const std::vector<double>& histogram, double max, int64_t quant_max) {
  const auto bins = static_cast<int64_t>(histogram.size());
  const double width = max / static_cast<double>(bins);
  double best_error = std::numeric_limits<double>::infinity();
  double best = max;
  for (int64_t clip = 1; clip <= bins; ++clip) {
    const double threshold = width * static_cast<double>(clip);
    const double step = threshold / static_cast<double>(quant_max);
    double error = 0;
    for (int64_t bin = 0; bin < bins; ++bin) {
      if (histogram[bin] == 0) continue;
      const double value = width * (static_cast<double>(bin) + 0.5);
      const double level = std::min(std::nearbyint(value / step), static_cast<double>(quant_max));
      const double difference = value - level * step;
      error += histogram[bin] * difference * difference;
    }
    if (error < best_error) {
      best_error = error;
      best = threshold;
    }
  }
  return best;
}

double ClippedKlDivergence(const std::vector<double>& histogram, int64_t clip_bins,
                           int64_t levels) {
  // P: the first clip_bins bins, with everything beyond folded into the last one.
  std::vector<double> reference(histogram.begin(), histogram.begin() + clip_bins);
  reference.back() += std::accumulate(histogram.begin() + clip_bins, histogram.end(), 0.0);
  // Q: the unfolded bins merged into `levels` groups, each group's mass spread evenly
  // over the bins where P is non-empty.
  std::vector<double> quantized(clip_bins, 0.0);
  for (int64_t level = 0; level < levels; ++level) {
    const int64_t begin = level * clip_bins / levels;
    const int64_t end = (level + 1) * clip_bins / levels;
    double mass = 0;
    int64_t non_empty = 0;
    for (int64_t bin = begin; bin < end; ++bin) {
      mass += histogram[bin];
      non_empty += reference[bin] > 0 ? 1 : 0;
    }
    for (int64_t bin = begin; bin < end; ++bin) {
      if (reference[bin] > 0) quantized[bin] = mass / static_cast<double>(non_empty);
    }
  }
  const double p_total = std::accumulate(reference.begin(), reference.end(), 0.0);
  const double q_total = std::accumulate(quantized.begin(), quantized.end(), 0.0);
  if (p_total == 0 || q_total == 0) return 0;
  double divergence = 0;
  for (int64_t bin = 0; bin < clip_bins; ++bin) {
    if (reference[bin] == 0) continue;
    const double p = reference[bin] / p_total;
    // A group whose bins are all empty but P's folded last bin leaves Q empty there; a
    // tiny floor keeps the divergence finite (TensorRT smooths likewise).
    const double q = std::max(quantized[bin] / q_total, 1e-12);
    divergence += p * std::log(p / q);
  }
  return divergence;
}

double KlThreshold(const std::vector<double>& histogram, double max, int64_t quant_max) {
  const auto bins = static_cast<int64_t>(histogram.size());
  const int64_t levels = quant_max;
  const double width = max / static_cast<double>(bins);
  if (bins < 2 * levels) return max;
  double best_divergence = std::numeric_limits<double>::infinity();
  int64_t best_clip = bins;
  for (int64_t clip = bins / 2; clip <= bins; ++clip) {
    if (histogram[clip - 1] == 0) continue;
    const double divergence = ClippedKlDivergence(histogram, clip, levels);
    if (divergence < best_divergence) {
      best_divergence = divergence;
      best_clip = clip;
    }
  }
  return width * static_cast<double>(best_clip);
}

}  // namespace slim::quant

// Post-training quantization thresholds from a histogram of |x|: the clipping value T of
// one tensor, whose scale is then T / quant_max. The histogram has equal bins over
// [0, max]; counts are summed over all ranks before these run, so every rank finds the
// same T.
#pragma once

#include <cstdint>
#include <vector>

namespace slim::quant {

// Bins of the calibration histograms (as TensorRT and PaddleSlim use).
constexpr int64_t kHistogramBins = 2048;

// hist: the upper edge of the first bin at which the cumulative share of values reaches
// `percent` (0.5..1).
double PercentileThreshold(const std::vector<double>& histogram, double max, double percent);

// mse: the bin edge T that minimises the expected squared error of quantizing the
// histogram's values (taken at bin centres) to the symmetric grid of step T / quant_max,
// clipping beyond T.
double MseThreshold(const std::vector<double>& histogram, double max, int64_t quant_max);

// KL: the entropy calibration of TensorRT as PaddleSlim runs it: among the clips at
// T = i bin widths with i >= bins / 2 and bin i - 1 non-empty, the one whose clipped
// distribution P (the tail folded into its last bin) and P quantized to quant_max levels,
// Q, have the smallest KL(P || Q). The lower bound keeps a spike at zero (ReLU outputs)
// from pulling the clip far into the distribution.
double KlThreshold(const std::vector<double>& histogram, double max, int64_t quant_max);

// The KL divergence of the clipped reference distribution from its quantized version for
// a clip at `clip_bins` bins, as KlThreshold scores it (exposed for tests).
double ClippedKlDivergence(const std::vector<double>& histogram, int64_t clip_bins,
                           int64_t levels);

}  // namespace slim::quant

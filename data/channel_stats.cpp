#include "data/channel_stats.h"

#include <cmath>

namespace slim::data {

ChannelStats ComputeChannelStats(const ByteDataset& images) {
  const int64_t channels = images.sample_shape[0];
  const int64_t plane = images.sample_bytes() / channels;
  std::vector<double> sum(channels, 0.0), sum_squares(channels, 0.0);
  const uint8_t* pixel = images.inputs.data();
  for (int64_t n = 0; n < images.size(); ++n) {
    for (int64_t c = 0; c < channels; ++c) {
      // Exact integer sums per plane keep the double accumulation short.
      int64_t plane_sum = 0, plane_squares = 0;
      for (int64_t i = 0; i < plane; ++i, ++pixel) {
        plane_sum += *pixel;
        plane_squares += int64_t{*pixel} * *pixel;
      }
      sum[c] += plane_sum;
      sum_squares[c] += plane_squares;
    }
  }
  ChannelStats stats;
  const double count = static_cast<double>(images.size()) * plane;
  for (int64_t c = 0; c < channels; ++c) {
    const double mean = sum[c] / count / 255.0;
    const double variance = sum_squares[c] / count / (255.0 * 255.0) - mean * mean;
    const double std = variance > 0 ? std::sqrt(variance) : 0.0;
    stats.mean.push_back(static_cast<float>(mean));
    stats.std.push_back(std > 0 ? static_cast<float>(std) : 1.0f);
  }
  return stats;
}

}  // namespace slim::data

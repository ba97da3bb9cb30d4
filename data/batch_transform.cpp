#include "data/batch_transform.h"

namespace slim::data {

namespace {

// SplitMix64 finaliser: a well-mixed 64-bit value from any input.
uint64_t Mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

}  // namespace

BatchTransform::BatchTransform(const DatasetInfo& info, const AugmentSettings& augment)
    : kind_(info.kind), input_type_(info.input_type), augment_(augment) {
  if (kind_ == InputKind::kImage) {
    const int64_t channels = info.sample_shape[0];
    mean_ = torch::tensor(info.mean).view({1, channels, 1, 1});
    std_ = torch::tensor(info.std).view({1, channels, 1, 1});
  }
}

torch::Tensor BatchTransform::Apply(const torch::Tensor& raw, const std::vector<int64_t>& indices,
                                    int64_t epoch) const {
  if (kind_ == InputKind::kText) return raw.to(torch::kInt64);
  auto images = raw.to(torch::kFloat32);
  if (input_type_ == torch::kUInt8) images.div_(255.0);
  images.sub_(mean_).div_(std_);
  return augment_.enabled ? Augment(images, indices, epoch) : images;
}

torch::Tensor BatchTransform::Augment(torch::Tensor images, const std::vector<int64_t>& indices,
                                      int64_t epoch) const {
  const int64_t pad = augment_.crop_padding;
  const int64_t height = images.size(2);
  const int64_t width = images.size(3);
  auto padded = pad > 0 ? torch::constant_pad_nd(images, {pad, pad, pad, pad}, 0) : images;
  auto out = torch::empty_like(images);
  for (size_t i = 0; i < indices.size(); ++i) {
    uint64_t draw = Mix(Mix(Mix(augment_.seed) ^ static_cast<uint64_t>(epoch)) ^
                        static_cast<uint64_t>(indices[i]));
    const int64_t top = pad > 0 ? static_cast<int64_t>(draw % (2 * pad + 1)) : 0;
    draw = Mix(draw);
    const int64_t left = pad > 0 ? static_cast<int64_t>(draw % (2 * pad + 1)) : 0;
    draw = Mix(draw);
    auto crop = padded[i].narrow(1, top, height).narrow(2, left, width);
    if (augment_.horizontal_flip && (draw & 1)) crop = crop.flip({2});
    out[i].copy_(crop);
  }
  return out;
}

}  // namespace slim::data

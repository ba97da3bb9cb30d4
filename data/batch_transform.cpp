#include "data/batch_transform.h"

#include "data/seeded_random.h"

namespace slim::data {

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
  const uint64_t epoch_seed = DeriveSeed(augment_.seed, static_cast<uint64_t>(epoch));
  for (size_t i = 0; i < indices.size(); ++i) {
    const uint64_t sample_seed = DeriveSeed(epoch_seed, static_cast<uint64_t>(indices[i]));
    const uint64_t vertical = DeriveSeed(sample_seed, 0);
    const uint64_t horizontal = DeriveSeed(sample_seed, 1);
    const uint64_t flip = DeriveSeed(sample_seed, 2);
    const int64_t top = pad > 0 ? static_cast<int64_t>(vertical % (2 * pad + 1)) : 0;
    const int64_t left = pad > 0 ? static_cast<int64_t>(horizontal % (2 * pad + 1)) : 0;
    auto crop = padded[i].narrow(1, top, height).narrow(2, left, width);
    if (augment_.horizontal_flip && (flip & 1)) crop = crop.flip({2});
    out[i].copy_(crop);
  }
  return out;
}

}  // namespace slim::data

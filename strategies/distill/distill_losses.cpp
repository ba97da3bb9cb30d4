#include "strategies/distill/distill_losses.h"

namespace slim::distill {

namespace {

namespace F = torch::nn::functional;

// `values` [C] shaped to broadcast along `channel_dim` of a tensor of `dims` dimensions.
torch::Tensor AlongChannels(const torch::Tensor& values, int64_t channel_dim, int64_t dims) {
  std::vector<int64_t> shape(dims, 1);
  shape[channel_dim] = values.numel();
  return values.reshape(shape);
}

// x standardised over all non-batch dimensions, as PaddleSlim's layer_norm without affine.
torch::Tensor Standardised(const torch::Tensor& x) {
  const auto shape = x.sizes().slice(1).vec();
  return F::layer_norm(x, F::LayerNormFuncOptions(shape).eps(1e-7));
}

// PaddleSlim's kl_div(input, label, reduction='mean'): the mean over elements of
// label * (log label - input), 0 where label is 0.
torch::Tensor PaddleKlDiv(const torch::Tensor& input, const torch::Tensor& label) {
  const auto terms = label * (label.log() - input);
  return torch::where(label > 0, terms, torch::zeros_like(terms)).mean();
}

torch::Tensor NormalisedDistances(const torch::Tensor& features) {
  const auto flat = features.flatten(1);
  const auto distances = torch::cdist(flat.unsqueeze(0), flat.unsqueeze(0)).squeeze(0);
  const int64_t n = flat.size(0);
  const auto mean = distances.sum() / std::max<int64_t>(n * (n - 1), 1);
  return distances / mean.clamp_min(1e-12);
}

}  // namespace

torch::Tensor L2Loss(const torch::Tensor& student, const torch::Tensor& teacher) {
  return F::mse_loss(student, teacher);
}

torch::Tensor SoftLabelLoss(const torch::Tensor& student, const torch::Tensor& teacher,
                            double temperature) {
  const auto log_p_student = torch::log_softmax(student / temperature, -1);
  const auto log_p_teacher = torch::log_softmax(teacher / temperature, -1);
  const auto kl = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(-1);
  return kl.mean() * temperature * temperature;
}

torch::Tensor SkdLoss(const torch::Tensor& student, const torch::Tensor& teacher) {
  const auto multiplier = teacher.std({1}, /*unbiased=*/true, /*keepdim=*/true);
  const auto log_p = torch::log_softmax(Standardised(student) * multiplier, 1);
  const auto q = torch::softmax(Standardised(teacher) * multiplier, 1);
  return -(q * log_p).sum(-1).mean();
}

torch::Tensor DkdLoss(const torch::Tensor& student, const torch::Tensor& teacher,
                      double temperature) {
  const auto top = (teacher == teacher.amax(1, /*keepdim=*/true)).to(teacher.scalar_type());
  // The top-against-rest pair b and the distribution Q over the other classes of `x`.
  const auto parts = [&](const torch::Tensor& x) {
    const auto scaled = x / temperature;
    const auto top_probability = (torch::softmax(scaled, 1) * top).sum(1, /*keepdim=*/true);
    return std::pair{torch::cat({top_probability, 1 - top_probability}, 1),
                     torch::softmax(scaled - 1e5 * top, 1)};
  };
  const auto [student_binary, student_others] = parts(student);
  const auto [teacher_binary, teacher_others] = parts(teacher);
  return (PaddleKlDiv(student_binary, teacher_binary) +
          PaddleKlDiv(student_others, teacher_others)) *
         temperature * temperature;
}

torch::Tensor CosineLoss(const torch::Tensor& student, const torch::Tensor& teacher) {
  return (1 - F::cosine_similarity(student.flatten(1), teacher.flatten(1),
                                   F::CosineSimilarityFuncOptions().dim(1)))
      .mean();
}

torch::Tensor FspMatrix(const torch::Tensor& first, const torch::Tensor& second) {
  const int64_t positions = first.size(2) * first.size(3);
  return torch::bmm(first.flatten(2), second.flatten(2).transpose(1, 2)) / positions;
}

torch::Tensor FspLoss(const torch::Tensor& student_first, const torch::Tensor& student_second,
                      const torch::Tensor& teacher_first, const torch::Tensor& teacher_second) {
  return F::mse_loss(FspMatrix(student_first, student_second),
                     FspMatrix(teacher_first, teacher_second));
}

torch::Tensor IrgLoss(const torch::Tensor& student, const torch::Tensor& teacher) {
  return F::mse_loss(NormalisedDistances(student), NormalisedDistances(teacher));
}

torch::Tensor VidLoss(const torch::Tensor& mean, const torch::Tensor& teacher,
                      const torch::Tensor& variance_raw, int64_t channel_dim) {
  const auto variance =
      AlongChannels(F::softplus(variance_raw) + 1e-6, channel_dim, teacher.dim());
  return (0.5 * (variance.log() + (teacher - mean).pow(2) / variance)).mean();
}

}  // namespace slim::distill

// The distillation losses, as functions of a student and a teacher feature of the same
// shape (an adapter has already mapped the student's channels). Each returns a scalar;
// the teacher side is treated as a constant (callers pass tensors without autograd).
// docs/distillation.md gives the formulas.
#pragma once

#include <torch/torch.h>

namespace slim::distill {

// l2: mean over all elements of (s - t)^2.
torch::Tensor L2Loss(const torch::Tensor& student, const torch::Tensor& teacher);

// soft_label: KL(softmax(t / T) || softmax(s / T)) over the last dimension, summed over it,
// averaged over the other positions, times T^2 (Hinton et al.).
torch::Tensor SoftLabelLoss(const torch::Tensor& student, const torch::Tensor& teacher,
                            double temperature);

// skd (spherical knowledge distillation), as PaddleSlim's skd: both sides are
// standardised over all non-batch dimensions (layer norm without affine, epsilon 1e-7)
// and scaled by m, the teacher's unbiased standard deviation along dimension 1 (kept);
// p = softmax(s^) and q = softmax(t^) along dimension 1; the loss is the cross-entropy
// -sum q log p over the last dimension, averaged over the other positions. For logits
// [N, C]: the mean over samples of -sum_c q_c log p_c. REQUIRES: equal shapes of at least
// 2 dimensions (for more, PaddleSlim's axes are kept: softmax along 1, sum along the last).
torch::Tensor SkdLoss(const torch::Tensor& student, const torch::Tensor& teacher);

// dkd (decoupled knowledge distillation), as PaddleSlim's dkd with its alpha = beta = 1:
// m marks the teacher's top class (every tied one); for x in {s, t}, P = softmax(x / T),
// b = [sum m P, 1 - sum m P] (the top class against the rest) and Q = softmax(x / T - 1e5 m)
// (the other classes). loss = T^2 (mean over [N, 2] of b_t (log b_t - b_s) + mean over
// [N, C] of Q_t (log Q_t - Q_s)), where a zero teacher probability contributes 0. As in
// PaddleSlim, the student's probabilities stand where a KL divergence would take their
// logarithms. REQUIRES: equal shapes [N, C].
torch::Tensor DkdLoss(const torch::Tensor& student, const torch::Tensor& teacher,
                      double temperature);

// cosine: mean over samples of 1 - cos(s_i, t_i), each sample flattened.
torch::Tensor CosineLoss(const torch::Tensor& student, const torch::Tensor& teacher);

// The flow-of-solution-procedure matrix of two feature maps [N, Ca, H, W] and
// [N, Cb, H, W]: G[n, a, b] = sum over positions of x[n, a] * y[n, b] / (H * W).
torch::Tensor FspMatrix(const torch::Tensor& first, const torch::Tensor& second);

// fsp: mean squared difference of the student's and the teacher's FSP matrices.
torch::Tensor FspLoss(const torch::Tensor& student_first, const torch::Tensor& student_second,
                      const torch::Tensor& teacher_first, const torch::Tensor& teacher_second);

// irg: the instance-relationship graph's edges: D[i, j] = ||x_i - x_j|| between the samples
// of the batch (flattened), divided by the mean off-diagonal distance; the mean squared
// difference of the student's and the teacher's D. Channels may differ.
torch::Tensor IrgLoss(const torch::Tensor& student, const torch::Tensor& teacher);

// vid: the negative log-likelihood of the teacher under a Gaussian centred on the
// student's regression `mean` (the adapter's output) with a learned per-channel variance
// softplus(variance_raw) + 1e-6: mean over elements of
// 0.5 * (log var_c + (t - mean)^2 / var_c). `channel_dim` is the channel dimension.
torch::Tensor VidLoss(const torch::Tensor& mean, const torch::Tensor& teacher,
                      const torch::Tensor& variance_raw, int64_t channel_dim);

}  // namespace slim::distill

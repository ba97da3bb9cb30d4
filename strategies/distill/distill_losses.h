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

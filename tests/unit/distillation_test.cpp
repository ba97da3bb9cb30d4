// Distillation: each loss against its formula written out element by element (skd and
// dkd as PaddleSlim computes them), gradient flow (student and adapters, never the
// teacher), several teachers, the export without taps and adapters, and the refusals of
// bad nodes and unmatched shapes.
#include <gtest/gtest.h>

#include <cmath>

#include "runtime/base/errors.h"
#include "runtime/models/builtin_models.h"
#include "strategies/distill/distill_losses.h"
#include "strategies/distill/distillation.h"
#include "tests/unit/temp_file.h"

namespace slim::distill {
namespace {

torch::Tensor Random(std::vector<int64_t> shape, uint64_t seed) {
  torch::manual_seed(seed);
  return torch::randn(shape);
}

double Value(const torch::Tensor& scalar) { return scalar.item<double>(); }

TEST(DistillLosses, L2IsTheMeanSquaredDifference) {
  const auto s = Random({2, 3, 2}, 1), t = Random({2, 3, 2}, 2);
  double sum = 0;
  for (int64_t i = 0; i < s.numel(); ++i) {
    const double d = s.flatten()[i].item<double>() - t.flatten()[i].item<double>();
    sum += d * d;
  }
  EXPECT_NEAR(Value(L2Loss(s, t)), sum / s.numel(), 1e-6);
}

TEST(DistillLosses, SoftLabelIsTemperedKlTimesTSquared) {
  const auto s = Random({3, 5}, 3), t = Random({3, 5}, 4);
  const double temperature = 3;
  double total = 0;
  for (int64_t n = 0; n < 3; ++n) {
    double zs = 0, zt = 0;
    for (int64_t k = 0; k < 5; ++k) {
      zs += std::exp(s[n][k].item<double>() / temperature);
      zt += std::exp(t[n][k].item<double>() / temperature);
    }
    for (int64_t k = 0; k < 5; ++k) {
      const double ps = std::exp(s[n][k].item<double>() / temperature) / zs;
      const double pt = std::exp(t[n][k].item<double>() / temperature) / zt;
      total += pt * std::log(pt / ps);
    }
  }
  EXPECT_NEAR(Value(SoftLabelLoss(s, t, temperature)), total / 3 * temperature * temperature,
              1e-5);
  EXPECT_NEAR(Value(SoftLabelLoss(t, t, temperature)), 0, 1e-7);
}

// PaddleSlim's skd written out for x[N][A][B] (logits [N, A] as B = 1): x standardised
// over (A, B) with the biased variance, scaled by m[n][b], the unbiased standard deviation
// of t[n][.][b]; softmax along A; cross-entropy summed along the last dimension (A for
// logits, B otherwise), averaged over the other positions.
double Skd(const torch::Tensor& student, const torch::Tensor& teacher) {
  const auto s = student.dim() == 2 ? student.unsqueeze(2) : student;
  const auto t = teacher.dim() == 2 ? teacher.unsqueeze(2) : teacher;
  const auto sa = s.accessor<float, 3>(), ta = t.accessor<float, 3>();
  const int64_t n_size = s.size(0), a_size = s.size(1), b_size = s.size(2);
  const auto standardised = [&](const at::TensorAccessor<float, 2>& x) {
    double mean = 0, variance = 0;
    for (int64_t a = 0; a < a_size; ++a) {
      for (int64_t b = 0; b < b_size; ++b) mean += x[a][b];
    }
    mean /= static_cast<double>(a_size * b_size);
    for (int64_t a = 0; a < a_size; ++a) {
      for (int64_t b = 0; b < b_size; ++b) variance += (x[a][b] - mean) * (x[a][b] - mean);
    }
    variance /= static_cast<double>(a_size * b_size);
    std::vector<std::vector<double>> z(a_size, std::vector<double>(b_size));
    for (int64_t a = 0; a < a_size; ++a) {
      for (int64_t b = 0; b < b_size; ++b) z[a][b] = (x[a][b] - mean) / std::sqrt(variance + 1e-7);
    }
    return z;
  };
  double total = 0;
  for (int64_t n = 0; n < n_size; ++n) {
    auto zs = standardised(sa[n]), zt = standardised(ta[n]);
    std::vector<std::vector<double>> p(a_size, std::vector<double>(b_size)), q = p;
    for (int64_t b = 0; b < b_size; ++b) {
      double mean = 0, squares = 0;
      for (int64_t a = 0; a < a_size; ++a) mean += ta[n][a][b];
      mean /= static_cast<double>(a_size);
      for (int64_t a = 0; a < a_size; ++a) squares += (ta[n][a][b] - mean) * (ta[n][a][b] - mean);
      const double multiplier = std::sqrt(squares / static_cast<double>(a_size - 1));
      double sum_s = 0, sum_t = 0;
      for (int64_t a = 0; a < a_size; ++a) {
        sum_s += std::exp(zs[a][b] * multiplier);
        sum_t += std::exp(zt[a][b] * multiplier);
      }
      for (int64_t a = 0; a < a_size; ++a) {
        p[a][b] = std::exp(zs[a][b] * multiplier) / sum_s;
        q[a][b] = std::exp(zt[a][b] * multiplier) / sum_t;
      }
    }
    for (int64_t a = 0; a < a_size; ++a) {
      for (int64_t b = 0; b < b_size; ++b) total -= q[a][b] * std::log(p[a][b]);
    }
  }
  return total / static_cast<double>(student.dim() == 2 ? n_size : n_size * a_size);
}

TEST(DistillLosses, SkdIsPaddleSlimsSphericalCrossEntropy) {
  const auto s = Random({3, 5}, 16), t = Random({3, 5}, 17);
  EXPECT_NEAR(Value(SkdLoss(s, t)), Skd(s, t), 1e-5);
  // Only the direction of each sample counts: scaling and shifting the student changes
  // nothing; the loss is the teacher's entropy when the student matches it.
  EXPECT_NEAR(Value(SkdLoss(s * 3 + 1, t)), Value(SkdLoss(s, t)), 1e-5);
  EXPECT_NEAR(Value(SkdLoss(t * 0.5, t)), Skd(t, t), 1e-5);
  // Features [N, T, C], as PaddleSlim: softmax along T, cross-entropy along C.
  const auto s3 = Random({2, 4, 3}, 18), t3 = Random({2, 4, 3}, 19);
  EXPECT_NEAR(Value(SkdLoss(s3, t3)), Skd(s3, t3), 1e-5);
}

TEST(DistillLosses, DkdIsPaddleSlimsDecoupledLoss) {
  auto s = Random({3, 5}, 20), t = Random({3, 5}, 21);
  t[1][3] = t[1].max().item<float>();  // a tie: both top classes are masked
  t[1][0] = t[1][3].item<float>();
  const double temperature = 2;
  const auto sa = s.accessor<float, 2>(), ta = t.accessor<float, 2>();
  // b (top class against the rest) and Q (the other classes) of one sample of `x`.
  const auto parts = [&](const at::TensorAccessor<float, 1>& x, const std::vector<bool>& top) {
    double z = 0, z_others = 0;
    for (int64_t c = 0; c < 5; ++c) {
      z += std::exp(x[c] / temperature);
      if (!top[c]) z_others += std::exp(x[c] / temperature);
    }
    double top_probability = 0;
    std::vector<double> others(5, 0.0);
    for (int64_t c = 0; c < 5; ++c) {
      if (top[c]) top_probability += std::exp(x[c] / temperature) / z;
      if (!top[c]) others[c] = std::exp(x[c] / temperature) / z_others;
    }
    return std::pair{std::vector<double>{top_probability, 1 - top_probability}, others};
  };
  double tckd = 0, nckd = 0;
  for (int64_t n = 0; n < 3; ++n) {
    double max = -1e30;
    for (int64_t c = 0; c < 5; ++c) max = std::max<double>(max, ta[n][c]);
    std::vector<bool> top(5);
    for (int64_t c = 0; c < 5; ++c) top[c] = ta[n][c] == max;
    const auto [bs, qs] = parts(sa[n], top);
    const auto [bt, qt] = parts(ta[n], top);
    // PaddleSlim's kl_div takes the student's probabilities where KL takes their logarithm.
    for (int j = 0; j < 2; ++j) tckd += bt[j] * (std::log(bt[j]) - bs[j]);
    for (int64_t c = 0; c < 5; ++c) {
      if (qt[c] > 0) nckd += qt[c] * (std::log(qt[c]) - qs[c]);
    }
  }
  const double expected = temperature * temperature * (tckd / (3 * 2) + nckd / (3 * 5));
  EXPECT_NEAR(Value(DkdLoss(s, t, temperature)), expected, 1e-5);
}

TEST(DistillLosses, CosineIsOneMinusTheSampleCosine) {
  const auto s = Random({2, 3, 2, 2}, 5), t = Random({2, 3, 2, 2}, 6);
  double total = 0;
  for (int64_t n = 0; n < 2; ++n) {
    const auto a = s[n].flatten(), b = t[n].flatten();
    double dot = 0, na = 0, nb = 0;
    for (int64_t i = 0; i < a.numel(); ++i) {
      dot += a[i].item<double>() * b[i].item<double>();
      na += a[i].item<double>() * a[i].item<double>();
      nb += b[i].item<double>() * b[i].item<double>();
    }
    total += 1 - dot / std::sqrt(na * nb);
  }
  EXPECT_NEAR(Value(CosineLoss(s, t)), total / 2, 1e-6);
}

// G[n][a][b] = sum_hw x[n][a][h][w] * y[n][b][h][w] / (H * W), written out.
std::vector<double> Fsp(const torch::Tensor& x, const torch::Tensor& y) {
  const auto xa = x.accessor<float, 4>(), ya = y.accessor<float, 4>();
  std::vector<double> g;
  for (int64_t n = 0; n < x.size(0); ++n) {
    for (int64_t a = 0; a < x.size(1); ++a) {
      for (int64_t b = 0; b < y.size(1); ++b) {
        double sum = 0;
        for (int64_t h = 0; h < x.size(2); ++h) {
          for (int64_t w = 0; w < x.size(3); ++w) sum += xa[n][a][h][w] * ya[n][b][h][w];
        }
        g.push_back(sum / static_cast<double>(x.size(2) * x.size(3)));
      }
    }
  }
  return g;
}

TEST(DistillLosses, FspComparesFlowMatrices) {
  const auto s1 = Random({2, 2, 3, 3}, 7), s2 = Random({2, 3, 3, 3}, 8);
  const auto t1 = Random({2, 2, 3, 3}, 9), t2 = Random({2, 3, 3, 3}, 10);
  const auto gs = Fsp(s1, s2), gt = Fsp(t1, t2);
  double sum = 0;
  for (size_t i = 0; i < gs.size(); ++i) sum += (gs[i] - gt[i]) * (gs[i] - gt[i]);
  EXPECT_NEAR(Value(FspLoss(s1, s2, t1, t2)), sum / gs.size(), 1e-6);
  EXPECT_EQ(FspMatrix(s1, s2).sizes(), (std::vector<int64_t>{2, 2, 3}));
}

// Pairwise sample distances divided by their off-diagonal mean, written out.
std::vector<double> Relations(const torch::Tensor& x) {
  const auto flat = x.flatten(1);
  const int64_t n = flat.size(0);
  std::vector<double> d(n * n);
  double total = 0;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double sum = 0;
      for (int64_t k = 0; k < flat.size(1); ++k) {
        const double diff = flat[i][k].item<double>() - flat[j][k].item<double>();
        sum += diff * diff;
      }
      d[i * n + j] = std::sqrt(sum);
      total += d[i * n + j];
    }
  }
  for (auto& value : d) value /= total / static_cast<double>(n * (n - 1));
  return d;
}

TEST(DistillLosses, IrgComparesNormalisedSampleDistancesAcrossWidths) {
  const auto s = Random({4, 3}, 11), t = Random({4, 5, 2}, 12);
  const auto ds = Relations(s), dt = Relations(t);
  double sum = 0;
  for (size_t i = 0; i < ds.size(); ++i) sum += (ds[i] - dt[i]) * (ds[i] - dt[i]);
  EXPECT_NEAR(Value(IrgLoss(s, t)), sum / ds.size(), 1e-5);
  // Scaling a side does not change its relations.
  EXPECT_NEAR(Value(IrgLoss(s * 7, s)), 0, 1e-6);
}

TEST(DistillLosses, VidIsTheGaussianNegativeLogLikelihood) {
  const auto mean = Random({2, 3, 2, 2}, 13), t = Random({2, 3, 2, 2}, 14);
  const auto raw = Random({3}, 15);
  const auto ma = mean.accessor<float, 4>(), ta = t.accessor<float, 4>();
  double total = 0;
  for (int64_t n = 0; n < 2; ++n) {
    for (int64_t c = 0; c < 3; ++c) {
      const double variance = std::log1p(std::exp(raw[c].item<double>())) + 1e-6;
      for (int64_t h = 0; h < 2; ++h) {
        for (int64_t w = 0; w < 2; ++w) {
          const double d = ta[n][c][h][w] - ma[n][c][h][w];
          total += 0.5 * (std::log(variance) + d * d / variance);
        }
      }
    }
  }
  EXPECT_NEAR(Value(VidLoss(mean, t, raw, 1)), total / mean.numel(), 1e-5);
}

// A small teacher saved as TorchScript: `features` is a strided 3x3 convolution to
// [N, 24, H/4, W/4]; logits are a linear map of its spatial mean.
std::string SaveNarrowTeacher(const testing::TempDir& dir) {
  auto unit = std::make_shared<torch::jit::CompilationUnit>();
  torch::jit::Module features(c10::QualifiedName("__torch__.Features"), unit, true);
  features.register_attribute("training", c10::BoolType::get(), true);
  features.register_parameter("weight", torch::randn({24, 3, 3, 3}) * 0.2, false);
  features.define(R"(
def forward(self, x):
    return torch.relu(torch.conv2d(x, self.weight, None, [4], [1]))
)");
  torch::jit::Module teacher(c10::QualifiedName("__torch__.NarrowTeacher"), unit, true);
  teacher.register_attribute("training", c10::BoolType::get(), true);
  teacher.register_module("features", features);
  teacher.register_parameter("fc_weight", torch::randn({10, 24}) * 0.2, false);
  teacher.define(R"(
def forward(self, x):
    return torch.linear(torch.mean(self.features.forward(x), [2, 3]), self.fc_weight)
)");
  const auto path = dir.File("narrow_teacher.pt");
  teacher.save(path);
  return path;
}

distill::TeacherOptions TeacherOf(const std::string& model,
                                 std::vector<std::vector<std::string>> node,
                                 std::string loss, double alpha = 1) {
  distill::TeacherOptions teacher;
  teacher.teacher_model = model;
  teacher.node = node.empty() ? std::vector<std::vector<std::string>>{{kLogits}} : std::move(node);
  teacher.loss.assign(teacher.node.size(), loss);
  teacher.alpha.assign(teacher.node.size(), alpha);
  return teacher;
}

class DistillationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::manual_seed(0);
    student_ = models::BuildBuiltinModel("resnet20", {{3, 32, 32}, 10});
    inputs_ = Random({4, 3, 32, 32}, 21);
  }

  std::unique_ptr<Distillation> Prepared(std::vector<distill::TeacherOptions> teachers,
                                         double label_loss_weight = 0) {
    distill::DistillOptions options;
    options.section = teachers.size() > 1 ? "MultiTeacherDistillation" : "Distillation";
    options.teachers = std::move(teachers);
    options.label_loss_weight = label_loss_weight;
    auto distillation = std::make_unique<Distillation>(
        options, strategies::StrategyEnvironment{
                     nullptr, {"builtin:resnet20", {{3, 32, 32}, 10}, inputs_}});
    distillation->OnModelLoaded(student_);
    distillation->Prepare(student_);
    return distillation;
  }

  torch::Tensor Loss(Distillation& distillation) {
    return distillation.ExtraLoss(inputs_, student_.forward({inputs_}).toTensor());
  }

  static std::string ErrorOf(const std::function<void()>& action) {
    try {
      action();
    } catch (const ModelError& e) {
      return e.what();
    }
    return "no ModelError";
  }

  testing::TempDir dir_;
  torch::jit::Module student_;
  torch::Tensor inputs_;
};

TEST_F(DistillationTest, GradientsReachStudentAndAdaptersNeverTheTeacher) {
  const auto narrow = SaveNarrowTeacher(dir_);
  // layer3 is [N, 64, 8, 8]; the teacher's features [N, 24, 8, 8]: a 64 -> 24 adapter. VID
  // always regresses through an adapter, here 64 -> 64 with a variance per channel.
  auto distillation = Prepared({TeacherOf(narrow, {{"features", "layer3"}}, "l2"),
                                TeacherOf("self", {{"layer3"}}, "vid")});
  ASSERT_TRUE(student_.hasattr("distill_adapter0"));
  ASSERT_TRUE(student_.hasattr("distill_adapter1"));
  auto adapter = student_.attr("distill_adapter0").toModule();
  EXPECT_EQ(adapter.attr("weight").toTensor().sizes(), (std::vector<int64_t>{24, 64}));
  auto vid = student_.attr("distill_adapter1").toModule();
  Loss(*distillation).backward();
  for (const auto& name : {"conv1.weight", "layer3.2.conv2.weight", "distill_adapter0.weight",
                           "distill_adapter0.bias", "distill_adapter1.weight",
                           "distill_adapter1.variance_raw"}) {
    torch::Tensor grad;
    for (const auto& parameter : student_.named_parameters()) {
      if (parameter.name == name) grad = parameter.value.grad();
    }
    ASSERT_TRUE(grad.defined()) << name;
    EXPECT_GT(grad.abs().sum().item<double>(), 0) << name;
  }
  for (const auto* teacher : distillation->Teachers()) {
    for (const auto& parameter : teacher->model().parameters()) {
      EXPECT_FALSE(parameter.requires_grad()) << teacher->reference();
      EXPECT_FALSE(parameter.grad().defined()) << teacher->reference();
    }
  }
}

TEST_F(DistillationTest, TwoTeachersSumTheirWeightedLosses) {
  auto reference = student_.clone();
  auto distillation = Prepared({TeacherOf("self", {}, "l2", 0.5),
                                TeacherOf("self", {{"logits"}}, "soft_label", 2)});
  // Train the student away from its copy so the losses are not zero.
  torch::NoGradGuard no_grad;
  for (const auto& parameter : student_.parameters()) parameter.mul_(1.3);
  student_.eval();
  reference.eval();
  const auto student = student_.forward({inputs_}).toTensor();
  const auto teacher = reference.forward({inputs_}).toTensor();
  const double expected =
      0.5 * Value(L2Loss(student, teacher)) + 2 * Value(SoftLabelLoss(student, teacher, 1));
  EXPECT_GT(expected, 0.01);
  EXPECT_NEAR(Value(distillation->ExtraLoss(inputs_, student)), expected, 1e-5 * expected);
}

TEST_F(DistillationTest, SkdAndDkdTermsApplyTheirLossesToTheTappedFeatures) {
  auto reference = student_.clone();
  distill::TeacherOptions teacher;  // ACT's OCR recipe: skd and another loss on one node
  teacher.node = {{"fc"}, {"logits"}};
  teacher.loss = {"skd", "dkd"};
  teacher.alpha = {1, 0.5};
  teacher.temperature = 2;
  auto distillation = Prepared({teacher});
  torch::NoGradGuard no_grad;
  for (const auto& parameter : student_.parameters()) parameter.mul_(1.3);
  student_.eval();
  reference.eval();
  const auto student = student_.forward({inputs_}).toTensor();
  const auto logits = reference.forward({inputs_}).toTensor();
  const double expected =
      Value(SkdLoss(student, logits)) + 0.5 * Value(DkdLoss(student, logits, 2));
  // PaddleSlim's dkd may be negative: it is not a divergence (DkdLoss).
  EXPECT_NEAR(Value(distillation->ExtraLoss(inputs_, student)), expected,
              1e-5 * std::abs(expected));
}

TEST_F(DistillationTest, DkdOnFeatureMapsIsRefused) {
  const auto message = ErrorOf([&] { Prepared({TeacherOf("self", {{"layer3"}}, "dkd")}); });
  EXPECT_NE(message.find("dkd compares class logits [N, C]"), std::string::npos) << message;
}

TEST_F(DistillationTest, FinalizeDropsTapsAndAdaptersAndKeepsTheForward) {
  auto distillation = Prepared({TeacherOf(SaveNarrowTeacher(dir_), {{"features", "layer3"}},
                                          "cosine")});
  torch::jit::Module exported = student_.deepcopy();
  distillation->Finalize(exported);
  for (const auto& module : exported.named_modules()) {
    EXPECT_EQ(module.name.find("distill_"), std::string::npos) << module.name;
  }
  EXPECT_EQ(exported.parameters().size(), models::BuildBuiltinModel("resnet20", {{3, 32, 32}, 10})
                                              .parameters()
                                              .size());
  student_.eval();
  exported.eval();
  EXPECT_TRUE(torch::equal(exported.forward({inputs_}).toTensor(),
                           student_.forward({inputs_}).toTensor()));
  // The training model keeps its taps and adapters.
  student_.train();
  EXPECT_GT(Value(Loss(*distillation)), 0);
}

TEST_F(DistillationTest, UnknownNodeIsRefusedWithTheModulePaths) {
  const auto message = ErrorOf([&] { Prepared({TeacherOf("self", {{"layer9"}}, "l2")}); });
  EXPECT_NE(message.find("node 'layer9' is not a module of the student"), std::string::npos)
      << message;
  EXPECT_NE(message.find("layer3.2.conv2"), std::string::npos) << message;
}

TEST_F(DistillationTest, UnmatchableShapesAreRefusedWithBoth) {
  const auto message =
      ErrorOf([&] { Prepared({TeacherOf("self", {{"layer2", "layer3"}}, "l2")}); });
  EXPECT_NE(message.find("teacher 'self' node 'layer2' gives [4, 32, 16, 16]"), std::string::npos)
      << message;
  EXPECT_NE(message.find("student node 'layer3' gives [4, 64, 8, 8]"), std::string::npos)
      << message;
}

}  // namespace
}  // namespace slim::distill

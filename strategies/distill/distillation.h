// Distillation and MultiTeacherDistillation: the student learns from one or more frozen
// teachers through losses between tapped features (docs/distillation.md). Taps are graph
// passes on both models; adapters map the student's channels where they differ. Runs
// together with the quantization strategies (teacher `self` is the float model).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "strategies/distill/distill_options.h"
#include "strategies/distill/adapters.h"
#include "strategies/distill/feature_taps.h"
#include "strategies/distill/teacher.h"
#include "strategies/registry.h"

namespace slim::distill {

class Distillation : public strategies::Strategy {
 public:
  Distillation(const DistillOptions& options, const strategies::StrategyEnvironment& environment);

  // Sections Distillation (one teacher) and MultiTeacherDistillation (a list); each runs
  // with QuantAware, and not with the other.
  static strategies::StrategyRegistration Registration();
  static strategies::StrategyRegistration MultiTeacherRegistration();
  ~Distillation() override;

  std::string Name() const override { return options_.section; }
  void OnModelLoaded(const torch::jit::Module& model) override;
  // Loads the teachers, taps both sides, probes them on the example batch and registers
  // the adapters. Throws ModelError for a node that is not a module (listing the module
  // paths) and for features whose shapes cannot be matched (naming both), ConfigError for
  // a teacher_precision the device cannot run.
  void Prepare(torch::jit::Module& model) override;
  double LabelLossWeight() const override { return options_.label_loss_weight; }
  // The student's tapped module paths (not the logits).
  std::vector<std::string> TappedModules() const override { return tapped_modules_; }
  torch::Tensor ExtraLoss(const torch::Tensor& inputs, const torch::Tensor& outputs) override;
  // Drops the taps and the adapters.
  void Finalize(torch::jit::Module& model) const override;
  void Export(const torch::jit::Module& finalized, const std::string& output_dir,
              nlohmann::json& report) const override;

  // The teachers, in config order (after Prepare).
  std::vector<const Teacher*> Teachers() const;

 private:
  // One loss term between teacher and student features.
  struct Term {
    std::string teacher_node, student_node, loss;
    double alpha = 1;
    size_t teacher_feature = 0, student_feature = 0;
    // fsp: the second pair of the flow matrices.
    size_t teacher_second = 0, student_second = 0;
    std::optional<torch::jit::Module> adapter, second_adapter;
  };
  struct TeacherTerms {
    std::unique_ptr<Teacher> teacher;
    std::vector<Term> terms;
    double temperature = 1;
  };

  std::unique_ptr<Teacher> LoadTeacher(size_t index,
                                       const std::vector<std::string>& paths) const;
  // Checks the probed shapes of `term` and gives it the adapters it needs.
  void MatchShapes(Term& term, const std::vector<torch::Tensor>& teacher_features,
                   const std::vector<torch::Tensor>& student_features, const std::string& teacher,
                   torch::jit::Module& model);
  torch::jit::Module RegisterAdapter(torch::jit::Module& model, int64_t student_channels,
                                     int64_t teacher_channels, bool vid);
  torch::Tensor TermLoss(const Term& term, const TeacherTerms& owner,
                         const std::vector<torch::Tensor>& teacher_features,
                         const std::vector<torch::Tensor>& student_features) const;

  distill::DistillOptions options_;
  strategies::JobContext context_;
  std::optional<torch::jit::Module> original_;  // the student as loaded, for `self`
  std::vector<TeacherTerms> teachers_;
  std::unique_ptr<FeatureTaps> student_taps_;
  std::vector<std::string> tapped_modules_;
  AdapterFactory adapter_factory_;
  std::vector<std::string> adapter_names_;
};

}  // namespace slim::distill

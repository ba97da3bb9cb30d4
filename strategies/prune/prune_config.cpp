#include "strategies/prune/prune_config.h"

#include <limits>

namespace slim::prune {

namespace {

constexpr int64_t kMaxSteps = int64_t{1} << 40;

// A choice ACT writes as null for "none": the key written with no value reads as "none".
std::string NullableChoice(config::ConfigSection& section, const std::string& key,
                           const std::string& fallback, const std::vector<std::string>& valid) {
  if (section.IsWritten(key) && !section.Has(key)) return "none";
  const auto value = section.Get<std::string>(key, fallback);
  section.CheckChoice(key, value, valid);
  return value;
}

void CheckOpenUnitRange(const config::ConfigSection& section, const std::string& key,
                        double value) {
  if (!(value > 0 && value < 1)) {
    section.Fail(key, "must lie strictly between 0 and 1 (the share of weights pruned)");
  }
}

void ParseGmp(config::ConfigSection section, double ratio, GmpOptions& out) {
  for (auto [key, value] : {std::pair{"stable_iterations", &out.stable_iterations},
                            std::pair{"pruning_iterations", &out.pruning_iterations},
                            std::pair{"tunning_iterations", &out.tunning_iterations},
                            std::pair{"pruning_steps", &out.pruning_steps}}) {
    *value = section.Get<int64_t>(key, *value);
    section.CheckRange<int64_t>(key, *value, -1, kMaxSteps);
  }
  if (out.pruning_steps == 0) section.Fail("pruning_steps", "must be at least 1");
  out.initial_ratio = section.Get<double>("initial_ratio", out.initial_ratio);
  if (!(out.initial_ratio >= 0 && out.initial_ratio < ratio)) {
    section.Fail("initial_ratio", "must lie in [0, ratio): the schedule rises from it to ratio");
  }
  out.resume_iteration = section.Get<int64_t>("resume_iteration", out.resume_iteration);
  if (out.resume_iteration > 0) {
    section.Fail("resume_iteration", "checkpoints hold the schedule's position: resume the run "
                                     "with --resume (or from its output directory) and leave "
                                     "resume_iteration at -1");
  }
  out.schedule = section.Get<std::string>("schedule", out.schedule);
  section.CheckChoice("schedule", out.schedule, {"cubic", "linear"});
  section.RejectUnknownKeys();
}

}  // namespace

void ParseUnstructurePrune(config::ConfigSection section, UnstructurePruneOptions& out) {
  out.prune_strategy = NullableChoice(section, "prune_strategy", out.prune_strategy,
                                      {"none", "gmp"});
  out.prune_mode = section.Get<std::string>("prune_mode", out.prune_mode);
  section.CheckChoice("prune_mode", out.prune_mode, {"ratio", "threshold"});
  out.ratio = section.Get<double>("ratio", out.ratio);
  CheckOpenUnitRange(section, "ratio", out.ratio);
  out.threshold = section.Get<double>("threshold", out.threshold);
  if (!(out.threshold > 0)) section.Fail("threshold", "must be greater than 0");
  if (out.prune_strategy == "gmp" && out.prune_mode != "ratio") {
    section.Fail("prune_mode", "gmp raises a ratio; set prune_mode: ratio");
  }
  out.prune_params_type = NullableChoice(section, "prune_params_type", out.prune_params_type,
                                         {"conv1x1_only", "none"});
  out.skip_first_last = section.Get<bool>("skip_first_last", out.skip_first_last);
  out.local_sparsity = section.Get<bool>("local_sparsity", out.local_sparsity);
  if (out.local_sparsity && out.prune_mode != "ratio") {
    section.Fail("local_sparsity", "applies to prune_mode: ratio only");
  }
  out.skip_params = section.Get<std::vector<std::string>>("skip_params", out.skip_params);
  if (out.prune_strategy == "gmp") {
    ParseGmp(section.Section("gmp_config"), out.ratio, out.gmp_config);
  } else if (section.Has("gmp_config")) {
    section.Fail("gmp_config", "is read with prune_strategy: gmp only");
  }
  section.RejectUnknownKeys();
}

void ParseAspPrune(config::ConfigSection section, AspPruneOptions& out) {
  out.prune_params_name =
      section.Get<std::vector<std::string>>("prune_params_name", out.prune_params_name);
  out.skip_params = section.Get<std::vector<std::string>>("skip_params", out.skip_params);
  section.RejectUnknownKeys();
}

}  // namespace slim::prune

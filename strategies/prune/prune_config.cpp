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

void CheckChannelRatio(const config::ConfigSection& section, const std::string& key,
                       double ratio) {
  if (!(ratio >= 0 && ratio < 1)) {
    section.Fail(key, "must lie in [0, 1): the share of a group's channels removed");
  }
}

void CheckUnitRatio(const config::ConfigSection& section, const std::string& key, double ratio) {
  if (!(ratio >= 0 && ratio < 1)) {
    section.Fail(key, "must lie in [0, 1): the share of each layer's heads or feed-forward "
                      "units removed");
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

void ParseChannelPrune(config::ConfigSection section, ChannelPruneOptions& out) {
  if (section.IsMapping("pruned_ratio")) {
    auto ratios = section.Section("pruned_ratio");
    for (const auto& pattern : ratios.Keys()) {
      out.ratio_by_pattern.emplace_back(pattern, ratios.Get<double>(pattern, 0));
      CheckChannelRatio(ratios, pattern, out.ratio_by_pattern.back().second);
    }
  } else if (section.Has("pruned_ratio") || !section.Has("target_macs_ratio")) {
    // Read (and so written to config.resolved.yaml) only where it sets the ratio.
    out.pruned_ratio = section.Get<double>("pruned_ratio", out.pruned_ratio);
    CheckChannelRatio(section, "pruned_ratio", out.pruned_ratio);
  }
  out.prune_params_name =
      section.Get<std::vector<std::string>>("prune_params_name", out.prune_params_name);
  out.prune_params_name_at = section.Where("prune_params_name");
  out.target_macs_ratio_at = section.Where("target_macs_ratio");
  out.criterion = section.Get<std::string>("criterion", out.criterion);
  section.CheckChoice("criterion", out.criterion, {"l1_norm", "bn_scale", "geometry_median"});
  out.global_pruning = section.Get<bool>("global_pruning", out.global_pruning);
  out.round_to = section.Get<int64_t>("round_to", out.round_to);
  section.CheckRange<int64_t>("round_to", out.round_to, 1, 1 << 20);
  out.ignored_layers = section.Get<std::vector<std::string>>("ignored_layers", out.ignored_layers);
  if (section.Has("target_macs_ratio")) {  // unset (0) stays out of config.resolved.yaml
    out.target_macs_ratio = section.Get<double>("target_macs_ratio", out.target_macs_ratio);
    if (!(out.target_macs_ratio > 0 && out.target_macs_ratio < 1)) {
      section.Fail("target_macs_ratio", "must lie strictly between 0 and 1 (the share of the "
                                        "input model's MACs kept)");
    }
    if (section.Has("pruned_ratio")) {
      section.Fail("target_macs_ratio", "sets the ratio itself; remove pruned_ratio");
    }
  }
  out.prune_schedule = section.Get<std::string>("prune_schedule", out.prune_schedule);
  section.CheckChoice("prune_schedule", out.prune_schedule, {"one_shot", "iterative"});
  if (out.prune_schedule == "iterative") {
    out.n_steps = section.Get<int64_t>("n_steps", out.n_steps);
    section.CheckRange<int64_t>("n_steps", out.n_steps, 1, 1000);
  } else if (section.Has("n_steps")) {
    section.Fail("n_steps", "is read with prune_schedule: iterative");
  }
  section.RejectUnknownKeys();
}


void ParseTransformerPrune(config::ConfigSection section, TransformerPruneOptions& out) {
  out.pruned_ratio = section.Get<double>("pruned_ratio", out.pruned_ratio);
  CheckUnitRatio(section, "pruned_ratio", out.pruned_ratio);
  for (auto [key, ratio] : {std::pair{"head_ratio", &out.head_ratio},
                            std::pair{"ffn_ratio", &out.ffn_ratio}}) {
    *ratio = section.Get<double>(key, out.pruned_ratio);
    CheckUnitRatio(section, key, *ratio);
  }
  out.importance = section.Get<std::string>("importance", out.importance);
  section.CheckChoice("importance", out.importance, {"weight_norm", "loss_sensitivity", "kl"});
  if (out.importance != "weight_norm") {
    out.batch_num = section.Get<int64_t>("batch_num", out.batch_num);
    section.CheckRange<int64_t>("batch_num", out.batch_num, 1, 100000);
  } else if (section.Has("batch_num")) {
    section.Fail("batch_num", "is read with importance: loss_sensitivity or kl");
  }
  out.layers = section.Get<std::vector<std::string>>("layers", out.layers);
  out.layers_at = section.Where("layers");
  section.RejectUnknownKeys();
}


void ParseResRep(config::ConfigSection section, ResRepOptions& out) {
  out.flops_target = section.Get<double>("flops_target", out.flops_target);
  if (!(out.flops_target > 0 && out.flops_target < 1)) {
    section.Fail("flops_target", "must lie strictly between 0 and 1 (the share of the input "
                                 "model's MACs the merged model keeps)");
  }
  out.flops_target_at = section.Where("flops_target");
  out.lasso_strength = section.Get<double>("lasso_strength", out.lasso_strength);
  section.CheckRange<double>("lasso_strength", out.lasso_strength, 0, 1e3);
  out.before_mask_iters = section.Get<int64_t>("before_mask_iters", out.before_mask_iters);
  section.CheckRange<int64_t>("before_mask_iters", out.before_mask_iters, -1, kMaxSteps);
  out.mask_interval = section.Get<int64_t>("mask_interval", out.mask_interval);
  section.CheckRange<int64_t>("mask_interval", out.mask_interval, 0, kMaxSteps);
  out.num_per_mask = section.Get<int64_t>("num_per_mask", out.num_per_mask);
  section.CheckRange<int64_t>("num_per_mask", out.num_per_mask, 0, kMaxSteps);
  out.compactor_lr = section.Get<double>("compactor_lr", out.compactor_lr);
  section.CheckRange<double>("compactor_lr", out.compactor_lr, 0, 1e3);
  out.num_at_least = section.Get<int64_t>("num_at_least", out.num_at_least);
  section.CheckRange<int64_t>("num_at_least", out.num_at_least, 1, 1 << 20);
  out.threshold = section.Get<double>("threshold", out.threshold);
  section.CheckRange<double>("threshold", out.threshold, 0, 1e3);
  section.RejectUnknownKeys();
}

}  // namespace slim::prune

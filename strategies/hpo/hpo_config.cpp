#include "strategies/hpo/hpo_config.h"

#include <algorithm>
#include <limits>

namespace slim::hpo {

namespace {

// A key that ACT writes as a list of candidates; a single value reads as a list of one.
std::vector<std::string> Candidates(config::ConfigSection& section, const std::string& key,
                                    const std::vector<std::string>& fallback,
                                    const std::vector<std::string>& valid) {
  std::vector<std::string> values = fallback;
  if (section.IsWritten(key) && !section.Has(key)) {
    values.clear();
  } else if (section.IsList(key)) {
    values = section.Get<std::vector<std::string>>(key, fallback);
  } else if (section.Has(key)) {
    values = {section.Get<std::string>(key, "")};
  }
  if (values.empty()) section.Fail(key, "the candidate list is empty; give at least one value");
  for (const auto& value : values) section.CheckChoice(key, value, valid);
  return values;
}

// A [low, high] range; a single value reads as the range of that value alone.
template <typename T>
std::pair<T, T> Range(config::ConfigSection& section, const std::string& key, T low, T high,
                      T min, T max) {
  std::vector<T> bounds = {low, high};
  if (section.IsList(key)) {
    bounds = section.Get<std::vector<T>>(key, bounds);
  } else if (section.Has(key)) {
    const T value = section.Get<T>(key, low);
    bounds = {value, value};
  }
  if (bounds.size() != 2) {
    section.Fail(key, "must be a range [low, high] of two values (or one value)");
  }
  if (bounds[0] > bounds[1]) {
    section.Fail(key, "the range's low end is above its high end; write it as [low, high]");
  }
  section.CheckRange<T>(key, bounds[0], min, max);
  section.CheckRange<T>(key, bounds[1], min, max);
  return {bounds[0], bounds[1]};
}

std::vector<bool> BoolCandidates(config::ConfigSection& section, const std::string& key,
                                 const std::vector<bool>& fallback) {
  const auto texts = Candidates(section, key, {"true"}, {"true", "false", "True", "False"});
  if (!section.Has(key)) return fallback;
  std::vector<bool> values;
  for (const auto& text : texts) values.push_back(text == "true" || text == "True");
  return values;
}

}  // namespace

void ParseHpo(config::ConfigSection section, HpoOptions& out) {
  out.ptq_algo = Candidates(section, "ptq_algo", out.ptq_algo, {"abs_max", "avg", "hist", "mse", "KL"});
  out.bias_correct = BoolCandidates(section, "bias_correct", out.bias_correct);
  out.weight_quantize_type = Candidates(section, "weight_quantize_type", out.weight_quantize_type,
                                        {"channel_wise_abs_max", "abs_max"});
  std::tie(out.hist_percent_low, out.hist_percent_high) = Range<double>(
      section, "hist_percent", out.hist_percent_low, out.hist_percent_high, 0.5, 1);
  std::tie(out.batch_num_low, out.batch_num_high) =
      Range<int64_t>(section, "batch_num", out.batch_num_low, out.batch_num_high, 1,
                     std::numeric_limits<int32_t>::max());
  out.max_quant_count = section.Get<int64_t>("max_quant_count", out.max_quant_count);
  section.CheckRange<int64_t>("max_quant_count", out.max_quant_count, 1, 100000);
  out.sampler = section.Get<std::string>("sampler", out.sampler);
  section.CheckChoice("sampler", out.sampler, {"tpe", "random", "grid"});
  out.seed = section.Get<int64_t>("seed", out.seed);
  section.CheckRange<int64_t>("seed", out.seed, -1, std::numeric_limits<int64_t>::max());
  out.objective = section.Get<std::string>("objective", out.objective);
  section.CheckChoice("objective", out.objective, {"emd", "metric"});
  if (section.Has("accuracy_criterion")) {
    auto criterion = section.Section("accuracy_criterion");
    const bool relative = criterion.Has("relative");
    if (relative == criterion.Has("absolute")) {
      section.Fail("accuracy_criterion",
                   "give exactly one of relative (a share of the float top-1, e.g. 0.01) or "
                   "absolute (top-1 as a fraction, e.g. 0.005)");
    }
    const std::string key = relative ? "relative" : "absolute";
    out.has_accuracy_criterion = true;
    out.relative_criterion = relative;
    out.allowed_drop = criterion.Require<double>(key);
    criterion.CheckRange<double>(key, out.allowed_drop, 0, 1);
    criterion.RejectUnknownKeys();
  }
  out.stop_at_first_pass = section.Get<bool>("stop_at_first_pass", out.stop_at_first_pass);
  if (out.stop_at_first_pass && !out.has_accuracy_criterion) {
    section.Fail("stop_at_first_pass", "needs accuracy_criterion, which says what passes");
  }
  out.time_budget_minutes = section.Get<double>("time_budget_minutes", out.time_budget_minutes);
  section.CheckRange<double>("time_budget_minutes", out.time_budget_minutes, 0, 1e7);
  out.trial_group_size = section.Get<int64_t>("trial_group_size", out.trial_group_size);
  section.CheckRange<int64_t>("trial_group_size", out.trial_group_size, 1, 1 << 20);
  section.RejectUnknownKeys();
}

strategies::StrategyRegistration HpoRegistration() {
  strategies::StrategyRegistration registration;
  registration.section = "HyperParameterOptimization";
  registration.combines_with = {"QuantPost"};
  registration.required_section = "QuantPost";
  registration.parse = strategies::ParserOf<HpoOptions>(&ParseHpo);
  return registration;
}

}  // namespace slim::hpo

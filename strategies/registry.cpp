#include "strategies/registry.h"

#include <fmt/format.h>

#include <algorithm>

#include "runtime/base/logging.h"
#include "strategies/distill/distillation.h"
#include "strategies/hpo/hpo_config.h"
#include "strategies/prune/asp_prune.h"
#include "strategies/prune/channel_prune.h"
#include "strategies/prune/resrep.h"
#include "strategies/prune/transformer_prune.h"
#include "strategies/prune/unstructure_prune.h"
#include "strategies/quant/quant_aware.h"
#include "strategies/quant/quant_post.h"

namespace slim::strategies {

namespace {

// Top-level sections of ACT's example configs that ACT itself ignores (its example
// scripts read them for Paddle data readers, post-processing and metrics; Prune is a
// legacy name). Accepted with a warning.
const std::vector<std::string> kIgnoredSections = {"Eval",   "Train", "PostProcess",
                                                   "Metric", "Prune", "DataLoader"};

std::vector<StrategyRegistration> SortedByPassOrder(std::vector<StrategyRegistration> list) {
  std::stable_sort(list.begin(), list.end(), [](const auto& a, const auto& b) {
    return a.order < b.order;
  });
  return list;
}

bool Lists(const StrategyRegistration& registration, const std::string& section) {
  const auto& sections = registration.combines_with;
  return std::find(sections.begin(), sections.end(), section) != sections.end();
}

// Why `a` and `b` cannot run together, or "" when they can.
std::string RefusalReason(const StrategyRegistration& a, const StrategyRegistration& b) {
  if (Lists(a, b.section) || Lists(b, a.section)) return "";
  for (const auto* side : {&a, &b}) {
    const auto& other = side == &a ? b.section : a.section;
    const auto found = side->refusals.find(other);
    if (found != side->refusals.end()) return found->second;
  }
  return fmt::format("{} and {} do not run in one job; keep one of the two sections", a.section,
                     b.section);
}

}  // namespace

StrategyRegistration PruningRegistration(const std::string& section, PassOrder order,
                                         const std::string& needs) {
  StrategyRegistration registration;
  registration.section = section;
  registration.order = order;
  registration.combines_with = {"QuantAware", "Distillation", "MultiTeacherDistillation"};
  registration.refusals = {
      {"QuantPost", fmt::format("{} needs {} and QuantPost only calibrates: prune in one run, "
                                "then quantize its model.pt with QuantPost in a second, or use "
                                "QuantAware",
                                section, needs)}};
  return registration;
}

const std::vector<StrategyRegistration>& RegisteredStrategies() {
  static const auto registrations = SortedByPassOrder({
      prune::ChannelPrune::Registration(),
      prune::UnstructurePrune::Registration(),
      prune::AspPrune::Registration(),
      prune::TransformerPrune::Registration(),
      prune::ResRep::Registration(),
      quant::QuantAware::Registration(),
      quant::QuantPost::Registration(),
      distill::Distillation::Registration(),
      distill::Distillation::MultiTeacherRegistration(),
      hpo::HpoRegistration(),
  });
  return registrations;
}

void ParseStrategySections(config::ConfigSection& top, config::Config& config) {
  for (const auto& name : kIgnoredSections) {
    top.Ignore(name, fmt::format("ACT does not read the {} section (its example scripts do) "
                                 "and SlimTrain does not use it",
                                 name));
  }
  std::vector<const StrategyRegistration*> present;
  for (const auto& registration : RegisteredStrategies()) {
    if (!top.IsWritten(registration.section)) continue;
    if (!top.Has(registration.section)) {
      logging::Warning(fmt::format("{}: the {} section is empty; every key takes its default "
                                   "(docs/configuration.md)",
                                   top.file(), registration.section));
    }
    for (const auto* earlier : present) {
      const auto reason = RefusalReason(*earlier, registration);
      if (!reason.empty()) top.Fail(registration.section, reason);
    }
    present.push_back(&registration);
  }
  for (const auto* registration : present) {
    const auto& required = registration->required_section;
    if (!required.empty() && !top.IsWritten(required)) {
      top.Fail(registration->section,
               fmt::format("{} needs a {} section; add it", registration->section, required));
    }
  }
  for (const auto* registration : present) {
    config.strategies[registration->section] =
        registration->parse(top.Section(registration->section));
  }
  for (const auto* registration : present) {
    if (!registration->refuses_with) continue;
    for (const auto* other : present) {
      const auto reason =
          registration->refuses_with(*config.strategies.at(registration->section), other->section);
      if (!reason.empty()) top.Fail(registration->section, reason);
    }
  }
}

config::Config LoadJobConfig(const std::string& file, const std::vector<std::string>& overrides) {
  return config::LoadConfig(file, overrides, ParseStrategySections);
}

}  // namespace slim::strategies

#include "strategies/distill/distill_config.h"

namespace slim::distill {

namespace {

const std::vector<std::string> kLosses = {"l2", "soft_label", "fsp", "cosine", "irg", "vid"};
const std::vector<std::string> kPrecisions = {"float32", "bfloat16", "float16"};

// The value under `key`: a list, or a single value read as a list of one.
template <typename T>
std::vector<T> OneOrList(config::ConfigSection& section, const std::string& key,
                         const std::vector<T>& fallback) {
  if (section.IsList(key)) return section.Get<std::vector<T>>(key, fallback);
  return {section.Get<T>(key, fallback.front())};
}

// One per pair, or one for all (then repeated).
template <typename T>
void ExpandToPairs(const config::ConfigSection& section, const std::string& key, std::vector<T>& values,
                   size_t pairs) {
  if (values.size() == pairs) return;
  if (values.size() != 1) {
    section.Fail(key, "has " + std::to_string(values.size()) + " entries for " +
                          std::to_string(pairs) + " node pair(s); give one for all or one per "
                          "pair");
  }
  values.assign(pairs, values.front());
}

void ParseTeacher(config::ConfigSection& section, TeacherOptions& out) {
  out.teacher_model = section.Get<std::string>("teacher_model", out.teacher_model);
  if (out.teacher_model.empty()) section.Fail("teacher_model", "must not be empty");
  out.node = section.Get<std::vector<std::vector<std::string>>>("node", {});
  for (size_t i = 0; i < out.node.size(); ++i) {
    if (out.node[i].size() != 1 && out.node[i].size() != 2) {
      section.Fail("node", "entry " + std::to_string(i) + " has " +
                               std::to_string(out.node[i].size()) + " names; give a module path "
                               "(the same on both sides) or a [teacher, student] pair");
    }
  }
  if (out.node.empty()) out.node = {{"logits"}};
  out.loss = OneOrList<std::string>(section, "loss", out.loss);
  for (const auto& loss : out.loss) section.CheckChoice("loss", loss, kLosses);
  ExpandToPairs(section, "loss", out.loss, out.node.size());
  for (size_t i = 0; i < out.loss.size(); ++i) {
    if (out.loss[i] != "fsp") continue;
    if (i + 1 == out.loss.size() || out.loss[i + 1] != "fsp") {
      section.Fail("loss", "fsp compares the flow between two tap points: give it to two "
                           "consecutive node pairs (entry " + std::to_string(i) + " has no "
                           "partner)");
    }
    ++i;
  }
  out.alpha = OneOrList<double>(section, "alpha", out.alpha);
  ExpandToPairs(section, "alpha", out.alpha, out.node.size());
  for (double alpha : out.alpha) section.CheckRange<double>("alpha", alpha, 0, 1e9);
  out.temperature = section.Get<double>("temperature", out.temperature);
  section.CheckRange<double>("temperature", out.temperature, 1e-3, 1e3);
}

void ParseShared(config::ConfigSection& section, DistillOptions& out) {
  out.label_loss_weight = section.Get<double>("label_loss_weight", out.label_loss_weight);
  section.CheckRange<double>("label_loss_weight", out.label_loss_weight, 0, 1e9);
  out.teacher_precision = section.Get<std::string>("teacher_precision", out.teacher_precision);
  section.CheckChoice("teacher_precision", out.teacher_precision, kPrecisions);
}

}  // namespace

void ParseDistillation(config::ConfigSection section, DistillOptions& out) {
  out.section = "Distillation";
  ParseTeacher(section, out.teachers.emplace_back());
  ParseShared(section, out);
  section.RejectUnknownKeys();
}

void ParseMultiTeacherDistillation(config::ConfigSection section, DistillOptions& out) {
  out.section = "MultiTeacherDistillation";
  for (auto& teacher : section.Sections("teachers")) {
    ParseTeacher(teacher, out.teachers.emplace_back());
    teacher.RejectUnknownKeys();
  }
  if (out.teachers.empty()) {
    section.Fail("teachers", "list the teachers, each a mapping with teacher_model, node, "
                             "loss and alpha");
  }
  ParseShared(section, out);
  section.RejectUnknownKeys();
}

}  // namespace slim::distill

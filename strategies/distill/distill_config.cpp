#include "strategies/distill/distill_config.h"

#include <fmt/format.h>

#include "runtime/config/act_model_path.h"

namespace slim::distill {

namespace {

const std::vector<std::string> kLosses = {"l2",  "soft_label", "skd", "dkd",
                                          "fsp", "cosine",     "irg", "vid"};
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

// Checks the node, loss and alpha that `out` holds as read from `section`, and expands loss
// and alpha to one per node pair. `which` starts the messages ("" or "teacher 2: ").
void CompleteTerms(const config::ConfigSection& section, const std::string& which,
                   TeacherOptions& out) {
  for (size_t i = 0; i < out.node.size(); ++i) {
    if (out.node[i].size() != 1 && out.node[i].size() != 2) {
      section.Fail("node", which + "entry " + std::to_string(i) + " has " +
                               std::to_string(out.node[i].size()) + " names; give a module path "
                               "(the same on both sides) or a [teacher, student] pair");
    }
  }
  if (out.node.empty()) out.node = {{"logits"}};
  for (const auto& loss : out.loss) section.CheckChoice("loss", loss, kLosses);
  ExpandToPairs(section, "loss", out.loss, out.node.size());
  for (size_t i = 0; i < out.loss.size(); ++i) {
    if (out.loss[i] != "fsp") continue;
    if (i + 1 == out.loss.size() || out.loss[i + 1] != "fsp") {
      section.Fail("loss", which + "fsp compares the flow between two tap points: give it to "
                           "two consecutive node pairs (entry " + std::to_string(i) + " has no "
                           "partner)");
    }
    ++i;
  }
  ExpandToPairs(section, "alpha", out.alpha, out.node.size());
  for (double alpha : out.alpha) section.CheckRange<double>("alpha", alpha, 0, 1e9);
  section.CheckRange<double>("temperature", out.temperature, 1e-3, 1e3);
}

void ParseTeacher(config::ConfigSection& section, TeacherOptions& out) {
  if (section.IsList("teacher_model_dir")) {
    section.Fail("teacher_model_dir", "lists several teachers; give them as "
                                      "MultiTeacherDistillation");
  }
  out.config_key = section.path() +
                   (section.Has("teacher_model_dir") ? ".teacher_model_dir" : ".teacher_model");
  out.teacher_model = config::GetModelPath(section, "teacher_model", "teacher_", out.teacher_model);
  if (out.teacher_model.empty()) section.Fail("teacher_model", "must not be empty");
  out.node = section.Get<std::vector<std::vector<std::string>>>("node", {});
  out.loss = OneOrList<std::string>(section, "loss", out.loss);
  out.alpha = OneOrList<double>(section, "alpha", out.alpha);
  out.temperature = section.Get<double>("temperature", out.temperature);
  CompleteTerms(section, "", out);
}

// The list under `key` with one entry per teacher, or one value (or none: `fallback`) for
// all `teachers`.
template <typename T>
std::vector<T> OnePerTeacher(config::ConfigSection& section, const std::string& key,
                             const T& fallback, size_t teachers) {
  auto values = OneOrList<T>(section, key, {fallback});
  if (!section.IsList(key)) return std::vector<T>(teachers, values.front());
  if (values.size() != teachers) {
    section.Fail(key, fmt::format("has {} entries for {} teachers (teacher_model_dir); give one "
                                  "per teacher",
                                  values.size(), teachers));
  }
  return values;
}

// ACT's MultiTeacherDistillation: parallel lists with one entry per teacher.
// teacher_model_dir[k] (+ teacher_model_filename[k]) is teacher k's file; node[k] lists
// its [teacher, student, teacher, student, ...] module paths (ACT's explicit pairs);
// loss, alpha and temperature give one value per teacher, or one for all.
void ParseParallelTeachers(config::ConfigSection& section, DistillOptions& out) {
  const auto dirs = section.Get<std::vector<std::string>>("teacher_model_dir", {});
  const size_t count = dirs.size();
  if (count == 0) section.Fail("teacher_model_dir", "list one directory (or file) per teacher");
  auto filenames = std::vector<std::string>(count);
  if (section.Has("teacher_model_filename")) {
    filenames = OnePerTeacher<std::string>(section, "teacher_model_filename", "", count);
  }
  section.Ignore("teacher_params_filename", "a TorchScript file holds its weights");
  std::vector<std::vector<std::string>> nodes(count);
  if (section.Has("node")) {
    nodes = section.Get<std::vector<std::vector<std::string>>>("node", {});
    if (nodes.size() != count) {
      section.Fail("node", fmt::format("has {} entries for {} teachers (teacher_model_dir); "
                                       "give one list of [teacher, student, ...] module paths "
                                       "per teacher",
                                       nodes.size(), count));
    }
  }
  const auto losses = OnePerTeacher<std::string>(section, "loss", "l2", count);
  const auto alphas = OnePerTeacher<double>(section, "alpha", 1.0, count);
  const auto temperatures = OnePerTeacher<double>(section, "temperature", 1.0, count);
  for (size_t k = 0; k < count; ++k) {
    const std::string which = fmt::format("teacher {} of {}: ", k + 1, count);
    if (nodes[k].size() % 2 != 0) {
      section.Fail("node", which + fmt::format("lists {} names; ACT's form pairs them as "
                                               "[teacher, student, teacher, student, ...]",
                                               nodes[k].size()));
    }
    if (dirs[k].empty()) section.Fail("teacher_model_dir", which + "must not be empty");
    TeacherOptions& teacher = out.teachers.emplace_back();
    teacher.teacher_model = config::ActModelPath(dirs[k], filenames[k]);
    teacher.config_key = fmt::format("{}.teacher_model_dir[{}]", section.path(), k);
    for (size_t i = 0; i < nodes[k].size(); i += 2) {
      teacher.node.push_back({nodes[k][i], nodes[k][i + 1]});
    }
    teacher.loss = {losses[k]};
    teacher.alpha = {alphas[k]};
    teacher.temperature = temperatures[k];
    CompleteTerms(section, which, teacher);
  }
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
  if (section.Has("teacher_model_dir")) {
    if (section.Has("teachers")) {
      section.Fail("teachers", "and teacher_model_dir both list the teachers; keep teachers or "
                               "ACT's parallel lists (teacher_model_dir, teacher_model_filename, "
                               "node, loss, alpha)");
    }
    ParseParallelTeachers(section, out);
  } else {
    for (auto& teacher : section.Sections("teachers")) {
      ParseTeacher(teacher, out.teachers.emplace_back());
      teacher.RejectUnknownKeys();
    }
  }
  if (out.teachers.empty()) {
    section.Fail("teachers", "list the teachers, each a mapping with teacher_model, node, "
                             "loss and alpha (or give ACT's parallel lists teacher_model_dir, "
                             "teacher_model_filename, node, loss, alpha)");
  }
  ParseShared(section, out);
  section.RejectUnknownKeys();
}

}  // namespace slim::distill

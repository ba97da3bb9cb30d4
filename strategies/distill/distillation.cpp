#include "strategies/distill/distillation.h"

#include <unordered_set>

#include "runtime/base/errors.h"
#include "runtime/base/text.h"
#include "runtime/base/logging.h"
#include "runtime/models/model_loader.h"
#include "strategies/distill/adapters.h"
#include "strategies/distill/distill_config.h"
#include "strategies/distill/distill_losses.h"
#include "strategies/graph/call_routing.h"

namespace slim::distill {

namespace {

constexpr const char* kSelf = "self";
constexpr const char* kAdapterPrefix = "distill_adapter";

c10::ScalarType Precision(const std::string& name) {
  if (name == "bfloat16") return torch::kBFloat16;
  if (name == "float16") return torch::kHalf;
  return torch::kFloat32;
}

// The last non-empty line of an interpreter error (the lines before are its traceback).
std::string LastLine(const std::string& text) {
  const auto end = text.find_last_not_of("\n ");
  if (end == std::string::npos) return text;
  const auto newline = text.rfind('\n', end);
  const size_t start = newline == std::string::npos ? 0 : newline + 1;
  return text.substr(start, end + 1 - start);
}

// The position of `name` in `names`, appended when absent.
size_t IndexOf(std::vector<std::string>& names, const std::string& name) {
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == name) return i;
  }
  names.push_back(name);
  return names.size() - 1;
}

// `x` through `adapter` when there is one. Module handles share their object, so a copy
// runs the registered adapter.
torch::Tensor Mapped(std::optional<torch::jit::Module> adapter, const torch::Tensor& x) {
  return adapter ? adapter->forward({x}).toTensor() : x;
}

// The registration of `section`, read by `parse`.
strategies::StrategyRegistration RegistrationFor(
    const std::string& section, void (*parse)(config::ConfigSection, DistillOptions&)) {
  strategies::StrategyRegistration registration;
  registration.section = section;
  registration.order = strategies::PassOrder::kTaps;
  registration.combines_with = {"QuantAware"};
  registration.refusals = {{"Distillation", "Distillation and MultiTeacherDistillation are "
                                            "alternatives; list every teacher under "
                                            "MultiTeacherDistillation.teachers"}};
  registration.parse = strategies::ParserOf(parse);
  registration.create = strategies::FactoryOf<Distillation, DistillOptions>();
  return registration;
}

}  // namespace

strategies::StrategyRegistration Distillation::Registration() {
  return RegistrationFor("Distillation", &ParseDistillation);
}

strategies::StrategyRegistration Distillation::MultiTeacherRegistration() {
  return RegistrationFor("MultiTeacherDistillation", &ParseMultiTeacherDistillation);
}

Distillation::Distillation(const DistillOptions& options,
                           const strategies::StrategyEnvironment& environment)
    : options_(options), context_(environment.context) {}

Distillation::~Distillation() = default;

void Distillation::OnModelLoaded(const torch::jit::Module& model) {
  for (const auto& teacher : options_.teachers) {
    if (teacher.teacher_model == kSelf) original_ = model.clone();
  }
}

std::unique_ptr<Teacher> Distillation::LoadTeacher(size_t index,
                                                   const std::vector<std::string>& paths) const {
  const auto& options = options_.teachers[index];
  // A teacher never shares classes with the student: the taps edit class graphs.
  auto model = options.teacher_model == kSelf
                   ? original_->clone()
                   : models::LoadModel(options.teacher_model, context_.shape, options.config_key);
  return std::make_unique<Teacher>(model, options.teacher_model, paths,
                                   Precision(options_.teacher_precision));
}

void Distillation::Prepare(torch::jit::Module& model) {
  std::vector<std::string> student_paths;
  std::vector<std::vector<std::string>> teacher_paths;
  for (const auto& options : options_.teachers) {
    TeacherTerms& owner = teachers_.emplace_back();
    owner.temperature = options.temperature;
    auto& paths = teacher_paths.emplace_back();
    for (size_t i = 0; i < options.node.size(); ++i) {
      Term term;
      term.teacher_node = options.node[i].front();
      term.student_node = options.node[i].back();
      term.loss = options.loss[i];
      term.alpha = options.alpha[i];
      term.teacher_feature = IndexOf(paths, term.teacher_node);
      term.student_feature = IndexOf(student_paths, term.student_node);
      if (term.loss == "fsp") {  // the config checked the partner pair exists
        ++i;
        term.teacher_second = IndexOf(paths, options.node[i].front());
        term.student_second = IndexOf(student_paths, options.node[i].back());
      }
      owner.terms.push_back(term);
    }
  }
  student_taps_ = std::make_unique<FeatureTaps>(model, student_paths, "student");
  for (const auto& path : student_paths) {
    if (path != kLogits) tapped_modules_.push_back(path);
  }
  for (size_t t = 0; t < teachers_.size(); ++t) {
    teachers_[t].teacher = LoadTeacher(t, teacher_paths[t]);
  }
  // Probe both sides on the example batch to size the adapters.
  std::vector<torch::Tensor> student_features;
  {
    torch::NoGradGuard no_grad;
    models::EvalModeGuard eval_mode(model);
    student_features = student_taps_->Take(model.forward({context_.example}).toTensor());
  }
  for (auto& owner : teachers_) {
    std::vector<torch::Tensor> teacher_features;
    try {
      teacher_features = owner.teacher->Features(context_.example);
    } catch (const SlimError&) {
      throw;
    } catch (const std::exception& e) {
      const std::string problem =
          "teacher '" + owner.teacher->reference() + "' failed on a batch of shape " +
          ShapeText(context_.example.sizes()) + " in " + options_.teacher_precision +
          ": " + LastLine(e.what());
      if (options_.teacher_precision != "float32") {
        throw ConfigError(options_.section + ".teacher_precision: " + problem +
                          " Use float32 (or bfloat16 on CPU).");
      }
      throw ModelError(problem);
    }
    for (auto& term : owner.terms) {
      MatchShapes(term, teacher_features, student_features, owner.teacher->reference(), model);
    }
    logging::Info(options_.section + ": teacher " + owner.teacher->reference() + " (" +
                  std::to_string(models::ParameterCount(owner.teacher->model())) + " parameters, " +
                  options_.teacher_precision + "), " + std::to_string(owner.terms.size()) +
                  " loss term(s)");
  }
  logging::Info(options_.section + ": " + std::to_string(adapter_names_.size()) +
                " adapter(s) map student channels to the teacher's");
}

void Distillation::MatchShapes(Term& term, const std::vector<torch::Tensor>& teacher_features,
                               const std::vector<torch::Tensor>& student_features,
                               const std::string& teacher, torch::jit::Module& model) {
  const auto Refuse = [&](const torch::Tensor& t, const torch::Tensor& s, const std::string& why) {
    throw ModelError(options_.section + " loss " + term.loss + ": teacher '" + teacher +
                     "' node '" + term.teacher_node + "' gives " + ShapeText(t.sizes()) +
                     " but student node '" + term.student_node + "' gives " +
                     ShapeText(s.sizes()) + "; " + why);
  };
  // The adapter a student feature needs to meet its teacher feature, if any.
  const auto AdapterFor = [&](const torch::Tensor& s, const torch::Tensor& t) {
    std::optional<torch::jit::Module> adapter;
    const bool vid = term.loss == "vid";
    if (s.sizes() == t.sizes() && !vid) return adapter;
    if (!DifferOnlyInChannels(s, t)) {
      Refuse(t, s, "only the channel count may differ (an adapter maps it): tap nodes whose "
                   "other dimensions agree");
    }
    const int64_t dim = *ChannelDim(s);
    adapter = RegisterAdapter(model, s.size(dim), t.size(dim), vid);
    return adapter;
  };
  const auto& s = student_features[term.student_feature];
  const auto& t = teacher_features[term.teacher_feature];
  if (term.loss == "soft_label" || term.loss == "skd" || term.loss == "dkd") {
    if (s.sizes() != t.sizes()) {
      Refuse(t, s, term.loss + " compares distributions of equal shape");
    }
    if (term.loss == "dkd" && s.dim() != 2) {
      Refuse(t, s, "dkd compares class logits [N, C]: tap logits or another [N, C] node");
    }
    if (term.loss == "skd" && s.dim() < 2) Refuse(t, s, "skd needs features [N, C, ...]");
  } else if (term.loss == "irg") {
    if (s.size(0) != t.size(0)) Refuse(t, s, "irg needs the same batch");
  } else if (term.loss == "fsp") {
    const auto& s2 = student_features[term.student_second];
    const auto& t2 = teacher_features[term.teacher_second];
    for (const auto* pair : {&s, &s2, &t, &t2}) {
      if (pair->dim() != 4) Refuse(t, s, "fsp needs feature maps [N, C, H, W]");
    }
    if (s.sizes().slice(2) != s2.sizes().slice(2) || t.sizes().slice(2) != t2.sizes().slice(2)) {
      Refuse(t2, s2, "fsp pairs two taps of the same height and width on each side");
    }
    term.adapter = AdapterFor(s, t);
    term.second_adapter = AdapterFor(s2, t2);
  } else {
    term.adapter = AdapterFor(s, t);
  }
}

torch::jit::Module Distillation::RegisterAdapter(torch::jit::Module& model,
                                                 int64_t student_channels,
                                                 int64_t teacher_channels, bool vid) {
  const std::string name = kAdapterPrefix + std::to_string(adapter_names_.size());
  model.register_module(name, adapter_factory_.NewAdapter(student_channels, teacher_channels, vid));
  adapter_names_.push_back(name);
  return model.attr(name).toModule();
}

torch::Tensor Distillation::TermLoss(const Term& term, const TeacherTerms& owner,
                                     const std::vector<torch::Tensor>& teacher_features,
                                     const std::vector<torch::Tensor>& student_features) const {
  const auto& raw = student_features[term.student_feature];
  const auto& teacher = teacher_features[term.teacher_feature];
  const auto student = Mapped(term.adapter, raw);
  if (term.loss == "soft_label") return SoftLabelLoss(student, teacher, owner.temperature);
  if (term.loss == "skd") return SkdLoss(student, teacher);
  if (term.loss == "dkd") return DkdLoss(student, teacher, owner.temperature);
  if (term.loss == "cosine") return CosineLoss(student, teacher);
  if (term.loss == "irg") return IrgLoss(raw, teacher);
  if (term.loss == "vid") {
    return VidLoss(student, teacher, term.adapter->attr("variance_raw").toTensor(),
                   *ChannelDim(teacher));
  }
  if (term.loss == "fsp") {
    return FspLoss(student, Mapped(term.second_adapter, student_features[term.student_second]),
                   teacher, teacher_features[term.teacher_second]);
  }
  return L2Loss(student, teacher);
}

torch::Tensor Distillation::ExtraLoss(const torch::Tensor& inputs, const torch::Tensor& outputs) {
  const auto student = student_taps_->Take(outputs);
  torch::Tensor total;
  for (const auto& owner : teachers_) {
    const auto teacher = owner.teacher->Features(inputs);
    for (const auto& term : owner.terms) {
      auto loss = TermLoss(term, owner, teacher, student) * term.alpha;
      total = total.defined() ? total + loss : loss;
    }
  }
  return total;
}

std::vector<const Teacher*> Distillation::Teachers() const {
  std::vector<const Teacher*> teachers;
  for (const auto& owner : teachers_) teachers.push_back(owner.teacher.get());
  return teachers;
}

void Distillation::Finalize(torch::jit::Module& model) const {
  std::unordered_set<std::string> dropped(adapter_names_.begin(), adapter_names_.end());
  dropped.insert(kTapChild);
  model = graph::CloneWithoutChildren(model, dropped);
}

void Distillation::Export(const torch::jit::Module& finalized, const std::string& output_dir,
                          nlohmann::json& report) const {
  nlohmann::json teachers = nlohmann::json::array();
  for (const auto& owner : teachers_) {
    nlohmann::json terms = nlohmann::json::array();
    for (const auto& term : owner.terms) {
      terms.push_back({{"teacher_node", term.teacher_node}, {"student_node", term.student_node},
                       {"loss", term.loss}, {"alpha", term.alpha},
                       {"adapter", term.adapter.has_value()}});
    }
    teachers.push_back({{"teacher_model", owner.teacher->reference()},
                        {"parameters", models::ParameterCount(owner.teacher->model())},
                        {"temperature", owner.temperature},
                        {"terms", terms}});
  }
  report["distillation"] = {{"section", options_.section},
                            {"label_loss_weight", options_.label_loss_weight},
                            {"teacher_precision", options_.teacher_precision},
                            {"adapters", adapter_names_.size()},
                            {"teachers", teachers}};
}

}  // namespace slim::distill

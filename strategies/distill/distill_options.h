// Options of the distillation strategies, Distillation and MultiTeacherDistillation, with
// the key names of PaddleSlim ACT. docs/configuration.md shows the same text.
#pragma once

#include <string>
#include <vector>

#include "runtime/config/options.h"

namespace slim::distill {

// One teacher and what the student learns from it.
struct TeacherOptions {
  // teacher_model (or ACT's teacher_model_dir + teacher_model_filename): a TorchScript
  // file, "builtin:<name>" (a fresh builtin architecture, for tests), or "self": a frozen
  // copy of the uncompressed student (Global.model), ACT's default when distilling a
  // quantized or pruned student. Default self.
  std::string teacher_model = "self";
  // Where the config names the teacher's file (Distillation.teacher_model,
  // MultiTeacherDistillation.teacher_model_dir[1], ...), for messages. Set by the parser.
  std::string config_key;
  // node: tap points by module path (`layer3`, `layer3.2.conv2`, `fc`) or `logits` for the
  // model output. Each entry is a name (the same on both sides) or a [teacher, student]
  // pair. Default []: the outputs, as [logits].
  std::vector<std::vector<std::string>> node;
  // loss: one name for all pairs or one per pair: l2 (mean squared error, ACT's default),
  // soft_label (KL divergence of temperature-softened distributions, times T^2), skd and
  // dkd (PaddleSlim's spherical and decoupled knowledge distillation), fsp
  // (two consecutive pairs give one flow matrix), cosine (1 - cosine similarity), irg
  // (instance-relationship graph: pairwise sample distances) or vid (variational
  // information distillation).
  std::vector<std::string> loss = {"l2"};
  // alpha: weight of each loss, one for all or one per pair. Default 1.
  std::vector<double> alpha = {1.0};
  // temperature: softening of soft_label and dkd. Default 1 (ACT cannot change it).
  double temperature = 1.0;
};

// Distillation and MultiTeacherDistillation (one or several teachers).
struct DistillOptions : config::StrategyOptions {
  // The section name, for messages and checkpoints.
  std::string section;
  std::vector<TeacherOptions> teachers;
  // label_loss_weight: weight of the ordinary cross-entropy on the labels; 0 trains on the
  // distillation losses alone (ACT), > 0 mixes both. Default 0.
  double label_loss_weight = 0;
  // teacher_precision: float32, bfloat16 or float16 (GPU): the teachers' weights and
  // activations, to save memory. Losses are computed in float32. Default float32.
  std::string teacher_precision = "float32";
};

}  // namespace slim::distill

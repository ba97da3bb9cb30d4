// Parsing of the Distillation and MultiTeacherDistillation config sections.
#pragma once

#include "runtime/config/config_section.h"
#include "strategies/distill/distill_options.h"

namespace slim::distill {

// Reads Distillation (one teacher, its keys in the section itself) into `out`. The
// teacher is teacher_model, or ACT's teacher_model_dir + teacher_model_filename (joined;
// teacher_params_filename is accepted with a warning). Throws ConfigError naming the key
// for unknown losses, node entries that are not a name or a pair, loss or alpha lists
// whose length is neither 1 nor the number of pairs, an odd number of fsp pairs, both
// spellings of the teacher, and unknown keys.
void ParseDistillation(config::ConfigSection section, DistillOptions& out);

// Reads MultiTeacherDistillation: `teachers`, a list of mappings with the per-teacher keys
// of Distillation, or ACT's parallel lists with one entry per teacher (teacher_model_dir,
// teacher_model_filename, node as [teacher, student, ...] module paths, loss, alpha;
// loss, alpha and temperature may be one value for all), plus the shared
// label_loss_weight and teacher_precision. Throws ConfigError naming the key for a
// parallel list whose length is not the number of teachers and for both forms at once.
void ParseMultiTeacherDistillation(config::ConfigSection section, DistillOptions& out);

}  // namespace slim::distill

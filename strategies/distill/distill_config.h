// Parsing of the Distillation and MultiTeacherDistillation config sections.
#pragma once

#include "runtime/config/config_section.h"
#include "strategies/distill/distill_options.h"

namespace slim::distill {

// Reads Distillation (one teacher, its keys in the section itself) into `out`. Throws
// ConfigError naming the key for unknown losses, node entries that are not a name or a
// pair, loss or alpha lists whose length is neither 1 nor the number of pairs, an odd
// number of fsp pairs, and unknown keys.
void ParseDistillation(config::ConfigSection section, DistillOptions& out);

// Reads MultiTeacherDistillation: `teachers`, a list of mappings with the per-teacher keys
// of Distillation, plus the shared label_loss_weight and teacher_precision.
void ParseMultiTeacherDistillation(config::ConfigSection section, DistillOptions& out);

}  // namespace slim::distill

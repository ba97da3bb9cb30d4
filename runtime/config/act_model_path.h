// A model named in SlimTrain's spelling (`model: path`) or in PaddleSlim ACT's
// (`model_dir` + `model_filename` + `params_filename`), for Global's model and the
// distillation teachers (docs/configuration.md, "Porting an ACT config").
#pragma once

#include <string>

#include "runtime/config/config_section.h"

namespace slim::config {

// The file ACT names by a directory and a file name: `dir/filename`, or `dir` itself when
// `filename` is empty (ACT's YOLO configs give model_dir alone, naming a file).
std::string ActModelPath(const std::string& dir, const std::string& filename);

// Reads the model of `section` written as `model_key` (e.g. "model") or as ACT's
// `<prefix>model_dir` with an optional `<prefix>model_filename` ("" or "teacher_");
// `<prefix>params_filename` is accepted with a warning (a TorchScript file holds its
// weights). Returns `fallback` when neither spelling is present; an empty fallback makes
// the model required. Throws ConfigError naming both spellings when both are present, and
// for a file name without its directory.
std::string GetModelPath(ConfigSection& section, const std::string& model_key,
                         const std::string& prefix, const std::string& fallback);

}  // namespace slim::config

// The slim-train command line: what the user asked for, parsed and checked.
#pragma once

#include <string>
#include <vector>

namespace slim::launcher {

struct CommandLine {
  std::string config_file;
  // --set KEY.PATH=VALUE, in order; later ones win.
  std::vector<std::string> overrides;
  // --output-dir DIR (wins over Global.output_dir); empty when not given.
  std::string output_dir;
  // --resume auto|none|PATH. Default auto.
  std::string resume = "auto";
  // --resume-weights-only: load only the matching model weights of the checkpoint and
  // start training from step 0.
  bool resume_weights_only = false;
  bool dry_run = false;
  // --analyze quant: quantization sensitivity analysis instead of training; empty when
  // not given.
  std::string analyze;
  bool help = false;
  bool version = false;
};

// Parses argv with CLI11. Options take "--key value" or "--key=value"; a repeated
// single-value option keeps its last value. Throws ConfigError for an unknown option
// (suggesting the nearest one), a missing or mistyped value, --analyze other than quant,
// a second positional argument, --resume-weights-only with --resume none, or a missing
// config file argument (unless --help or --version).
CommandLine ParseCommandLine(int argc, char** argv);

// The --help text, generated from the same option declarations ParseCommandLine uses;
// it ends with the exit codes.
std::string UsageText();

}  // namespace slim::launcher

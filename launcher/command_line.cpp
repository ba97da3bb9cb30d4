#include "launcher/command_line.h"

#include "runtime/config/config_section.h"
#include "runtime/errors.h"

namespace slim::launcher {

namespace {
const std::vector<std::string> kOptions = {
    "--set", "--output-dir", "--resume", "--resume-weights-only", "--dry-run", "--analyze",
    "--help", "--version"};
}  // namespace

std::string UsageText() {
  return R"(usage: slim-train CONFIG.yaml [options]
       mpirun -np N slim-train CONFIG.yaml [options]

Trains and compresses a TorchScript model as described by CONFIG.yaml, data-parallel
over all MPI ranks.

options:
  --set KEY.PATH=VALUE   override a config key, e.g. --set TrainConfig.epochs=3
                         (repeatable; the value is parsed as YAML)
  --output-dir DIR       write outputs to DIR instead of Global.output_dir
  --resume auto|none|PATH
                         auto (default): continue from the newest valid checkpoint in
                         OUTPUT_DIR/checkpoints when there is one; none: start over (old
                         checkpoints are moved aside); PATH: continue from that file
  --resume-weights-only  take only the model weights that match from the checkpoint and
                         train from step 0 with a fresh optimizer
  --dry-run              validate the config, load the model and data headers, print the
                         resolved config and the plan, and exit without training
  --analyze quant        quantization sensitivity: calibrate post-training quantizers (the
                         QuantPost section, or QuantAware's keys with QuantPost defaults),
                         evaluate with one layer quantized at a time, write
                         sensitivity.{md,json,png} to the output directory and suggest
                         not_quant_pattern entries; trains nothing
  --help                 show this text
  --version              show the version

exit codes: 0 success, 2 usage or configuration error, 3 data or model error,
            4 distributed/communication failure, 75 stopped by a signal after a checkpoint
)";
}

CommandLine ParseCommandLine(int argc, char** argv) {
  CommandLine command;
  auto value_of = [&](int& i, const std::string& option) -> std::string {
    if (i + 1 >= argc) throw ConfigError(option + " needs a value; see slim-train --help");
    return argv[++i];
  };
  for (int i = 1; i < argc; ++i) {
    const std::string argument = argv[i];
    if (argument == "--help" || argument == "-h") {
      command.help = true;
    } else if (argument == "--version") {
      command.version = true;
    } else if (argument == "--dry-run") {
      command.dry_run = true;
    } else if (argument == "--analyze") {
      command.analyze = value_of(i, argument);
      if (command.analyze != "quant") {
        throw ConfigError("--analyze " + command.analyze + ": the analysis available is "
                          "'quant' (quantization sensitivity); see slim-train --help");
      }
    } else if (argument == "--set") {
      command.overrides.push_back(value_of(i, argument));
    } else if (argument == "--output-dir") {
      command.output_dir = value_of(i, argument);
    } else if (argument == "--resume") {
      command.resume = value_of(i, argument);
    } else if (argument == "--resume-weights-only") {
      command.resume_weights_only = true;
    } else if (argument.rfind("--", 0) == 0) {
      const std::string nearest = config::NearestWord(argument, kOptions);
      throw ConfigError("unknown option " + argument +
                        (nearest.empty() ? "" : "; did you mean " + nearest + "?") +
                        " See slim-train --help");
    } else if (command.config_file.empty()) {
      command.config_file = argument;
    } else {
      throw ConfigError("unexpected argument '" + argument +
                        "': slim-train takes one config file; see slim-train --help");
    }
  }
  if (command.resume_weights_only && command.resume == "none") {
    throw ConfigError("--resume-weights-only needs a checkpoint: use it with --resume auto or "
                      "--resume PATH, not --resume none");
  }
  if (command.config_file.empty() && !command.help && !command.version) {
    throw ConfigError("no config file given; usage: slim-train CONFIG.yaml [options]");
  }
  return command;
}

}  // namespace slim::launcher

#include "launcher/command_line.h"

#include <CLI/CLI.hpp>

#include "runtime/base/errors.h"
#include "runtime/config/config_section.h"

namespace slim::launcher {

namespace {

constexpr char kDescription[] =
    "Trains and compresses a TorchScript model as described by CONFIG.yaml, data-parallel\n"
    "over all MPI ranks when started as mpirun -np N slim-train CONFIG.yaml [options].\n";

constexpr char kExitCodes[] =
    "exit codes: 0 success, 2 usage or configuration error, 3 data or model error,\n"
    "            4 distributed/communication failure, 75 stopped by a signal after a checkpoint";

constexpr char kSeeHelp[] = "see slim-train --help";

// Accepts the analyses there are.
std::string CheckAnalysis(std::string& name) {
  if (name == "quant" || name == "prune") return "";
  return "got '" + name + "', but the analyses available are 'quant' (quantization "
         "sensitivity) and 'prune' (pruning sensitivity)";
}

// Declares every slim-train option on `app`, each bound to its field of `command`; the
// one place that names the options, used both to parse and to print --help.
// REQUIRES: `command` outlives every parse by `app`.
void DeclareOptions(CLI::App& app, CommandLine& command) {
  app.description(kDescription);
  app.footer(kExitCodes);
  app.get_formatter()->column_width(25);
  // A repeated single-value option: the last one wins.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  // Unknown arguments are collected, so that they can be reported with a suggestion.
  app.allow_extras();
  app.set_help_flag();  // --help is reported in CommandLine::help, not by CLI11

  app.add_option("CONFIG.yaml", command.config_file, "the configuration file")->type_name("");
  app.add_option("--set", command.overrides,
                 "override a config key, e.g. --set TrainConfig.epochs=3\n"
                 "(repeatable, later ones win; the value is parsed as YAML)")
      ->type_name("KEY.PATH=VALUE")
      ->allow_extra_args(false);  // one KEY.PATH=VALUE per --set
  app.add_option("--output-dir", command.output_dir,
                 "write outputs to DIR instead of Global.output_dir")
      ->type_name("DIR");
  app.add_option("--resume", command.resume,
                 "auto (default): continue from the newest valid checkpoint in\n"
                 "OUTPUT_DIR/checkpoints when there is one; none: start over (old\n"
                 "checkpoints are moved aside); PATH: continue from that file")
      ->type_name("auto|none|PATH");
  app.add_flag("--resume-weights-only", command.resume_weights_only,
               "take only the model weights that match from the checkpoint and\n"
               "train from step 0 with a fresh optimizer");
  app.add_flag("--dry-run", command.dry_run,
               "validate the config, load the model and data headers, print the\n"
               "resolved config and the plan, and exit without training");
  app.add_option("--analyze", command.analyze,
                 "quant: calibrate post-training quantizers (the QuantPost section,\n"
                 "or QuantAware's keys with QuantPost defaults), evaluate with one\n"
                 "layer quantized at a time, write sensitivity.{md,json,png} to the\n"
                 "output directory and suggest not_quant_pattern entries;\n"
                 "prune: evaluate with one weight (as UnstructurePrune selects them)\n"
                 "pruned at a time to 30/50/70/90 %, or with a ChannelPrune section\n"
                 "one channel group at a time to 10..70 %, write\n"
                 "prune_sensitivity.{md,json,png} and suggest per-layer ratios\n"
                 "(for ChannelPrune also per-group ratios for a MACs target);\n"
                 "both train nothing")
      ->type_name("quant|prune")
      ->check(CLI::Validator(CheckAnalysis, ""));
  app.add_flag("-h,--help", command.help, "show this text");
  app.add_flag("--version", command.version, "show the version");
}

// The long option names declared on `app`, e.g. "--dry-run".
std::vector<std::string> OptionNames(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::Option* option : app.get_options()) {
    for (const std::string& name : option->get_lnames()) names.push_back("--" + name);
  }
  return names;
}

// Throws ConfigError for the first argument CLI11 did not take: an unknown option (with the
// nearest valid one as a suggestion) before a second positional argument.
void RejectExtras(const CLI::App& app) {
  const std::vector<std::string> extras = app.remaining();
  for (const std::string& extra : extras) {
    if (extra.rfind('-', 0) != 0) continue;
    const std::string option = extra.substr(0, extra.find('='));
    const std::string nearest = config::NearestWord(option, OptionNames(app));
    throw ConfigError("unknown option " + option +
                      (nearest.empty() ? "" : " (did you mean " + nearest + "?)") + "; " +
                      kSeeHelp);
  }
  if (!extras.empty()) {
    throw ConfigError("unexpected argument '" + extras.front() +
                      "': slim-train takes one config file; " + kSeeHelp);
  }
}

}  // namespace

std::string UsageText() {
  CommandLine unused;
  CLI::App app("", "slim-train");
  DeclareOptions(app, unused);
  return app.help();
}

CommandLine ParseCommandLine(int argc, char** argv) {
  CommandLine command;
  CLI::App app("", "slim-train");
  DeclareOptions(app, command);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    throw ConfigError(std::string(error.what()) + "; " + kSeeHelp);
  }
  RejectExtras(app);
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

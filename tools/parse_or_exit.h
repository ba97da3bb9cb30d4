// The command-line parse shared by the tools (slim-data, slim-model, slim-bench): --help
// prints and ends the run with 0, a usage error prints one line and ends it with 2.
#pragma once

#include <CLI/CLI.hpp>

#include <iostream>
#include <optional>
#include <string>

#include "runtime/base/errors.h"

namespace slim::tools {

// Parses argv into `app`'s options. Returns the exit code when the run ends here (help or
// a usage error, already reported), nothing when the tool should go on.
inline std::optional<int> ParseOrExit(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
    return std::nullopt;
  } catch (const CLI::ParseError& error) {
    if (error.get_exit_code() == 0) return app.exit(error);  // --help, --help-all
    std::cerr << app.get_name() << ": " << error.what() << "; see " << app.get_name()
              << " --help\n";
    return static_cast<int>(ExitCode::kUsageOrConfig);
  }
}

}  // namespace slim::tools

// Reads a SlimTrain YAML config (ACT vocabulary) into typed options.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "runtime/config/config_section.h"
#include "runtime/config/options.h"

namespace slim::config {

// Parses `file`, applies `overrides` ("Section.key=value", the value parsed as YAML, so
// "[3,32,32]" is a list), and validates every key. Relative paths in the config are
// relative to the working directory.
// Throws ConfigError naming file, line and key path for malformed YAML, unknown keys
// (with the nearest valid key), wrong types, out-of-range values and missing keys.
//
// `parse_strategies` reads the strategy sections of the top-level mapping into
// Config::strategies (the strategy registry's ParseStrategySections); every top-level key
// it does not read is refused as unknown.
using StrategySectionParser = std::function<void(ConfigSection& top, Config& config)>;
Config LoadConfig(const std::string& file, const std::vector<std::string>& overrides,
                  const StrategySectionParser& parse_strategies);

}  // namespace slim::config

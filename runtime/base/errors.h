// Typed errors and the exit codes they map to. Every failure a user can cause or meet is
// thrown as one of these; the launcher catches them in one place, prints one message and
// exits with the documented code. Messages say where (file:line, key path, module path,
// rank) and what to do.
#pragma once

#include <stdexcept>
#include <string>

namespace slim {

// Process exit codes, documented in the README.
enum class ExitCode : int {
  kSuccess = 0,
  kUsageOrConfig = 2,
  kDataOrModel = 3,
  kDistributed = 4,
  kOutput = 5,
  kStoppedForRequeue = 75,
};

// Base of all SlimTrain errors.
class SlimError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
  // The exit code the launcher uses for this error.
  virtual ExitCode exit_code() const = 0;
};

// Bad command line, malformed YAML, unknown or mistyped keys, impossible values.
class ConfigError : public SlimError {
 public:
  using SlimError::SlimError;
  ExitCode exit_code() const override { return ExitCode::kUsageOrConfig; }
};

// Missing or malformed data files, labels out of range.
class DataError : public SlimError {
 public:
  using SlimError::SlimError;
  ExitCode exit_code() const override { return ExitCode::kDataOrModel; }
};

// Missing model files, models that cannot be loaded, trained or handled by a strategy.
class ModelError : public SlimError {
 public:
  using SlimError::SlimError;
  ExitCode exit_code() const override { return ExitCode::kDataOrModel; }
};

// A communicator call failed or passed its deadline, or a peer rank failed.
class CommError : public SlimError {
 public:
  using SlimError::SlimError;
  ExitCode exit_code() const override { return ExitCode::kDistributed; }
};

// An output (model.pt, report.json, metrics, plots, checkpoints) could not be written:
// disk full, permissions, a path that is not a directory.
class OutputError : public SlimError {
 public:
  using SlimError::SlimError;
  ExitCode exit_code() const override { return ExitCode::kOutput; }
};

}  // namespace slim

// Deliberate failures for tests of the failure paths: a rank that dies, hangs or raises
// at a given step. Off unless the environment variable named kFaultEnvVariable is set,
// as "RANK:STEP:MODE" with MODE one of exit (the process dies without a word, like a
// SIGKILL'd rank), hang (the rank stops responding) or raise (the rank throws a
// ModelError). This is the only environment knob SlimTrain reads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace slim {

constexpr const char* kFaultEnvVariable = "SLIMTRAIN_INJECT_FAULT";

class FaultInjector {
 public:
  // Reads kFaultEnvVariable. Throws ConfigError when it is set but malformed.
  explicit FaultInjector(int rank);
  // Fails as configured when this rank reaches `step` (1-based); otherwise returns.
  void AtStep(int64_t step) const;

 private:
  enum class Mode { kExit, kHang, kRaise };
  struct Fault {
    int64_t step;
    Mode mode;
  };
  std::optional<Fault> fault_;
};

}  // namespace slim

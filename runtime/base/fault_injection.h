// Deliberate failures for tests of the failure paths: a rank that dies, hangs or raises
// at a given step. Off unless the environment variable named kFaultEnvVariable is set,
// as "RANK:STEP:MODE" with MODE one of exit (the process dies without a word, like a
// SIGKILL'd rank), hang (the rank stops responding), raise (the rank throws a
// ModelError), sigterm (the rank sends itself SIGTERM, as Slurm would), kill_in_write
// (the rank SIGKILLs itself halfway through writing the checkpoint of that step) or
// slow_write (that write stalls for kSlowWriteSeconds, as on a slow file system). This is
// the only environment knob SlimTrain reads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace slim {

constexpr const char* kFaultEnvVariable = "SLIMTRAIN_INJECT_FAULT";
constexpr int kSlowWriteSeconds = 8;

class FaultInjector {
 public:
  // Reads kFaultEnvVariable. Throws ConfigError when it is set but malformed.
  explicit FaultInjector(int rank);
  // Fails as configured when this rank reaches `step` (1-based); otherwise returns.
  void AtStep(int64_t step) const;
  // Called halfway through writing the checkpoint of `step`: kill_in_write dies here,
  // slow_write stalls here.
  void InCheckpointWrite(int64_t step) const;

 private:
  enum class Mode { kExit, kHang, kRaise, kSigterm, kKillInWrite, kSlowWrite };
  struct Fault {
    int64_t step;
    Mode mode;
  };
  std::optional<Fault> fault_;
};

}  // namespace slim

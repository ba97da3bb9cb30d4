#include "runtime/base/fault_injection.h"

#include <chrono>
#include <csignal>
#include <map>
#include <cstdlib>
#include <sstream>
#include <thread>

#include "runtime/base/errors.h"

namespace slim {

FaultInjector::FaultInjector(int rank) {
  const char* setting = std::getenv(kFaultEnvVariable);
  if (setting == nullptr || *setting == '\0') return;
  std::istringstream in(setting);
  int fault_rank = -1;
  int64_t step = 0;
  std::string mode;
  char colon1 = 0, colon2 = 0;
  static const std::map<std::string, Mode> kModes = {{"exit", Mode::kExit},
                                                     {"hang", Mode::kHang},
                                                     {"raise", Mode::kRaise},
                                                     {"sigterm", Mode::kSigterm},
                                                     {"kill_in_write", Mode::kKillInWrite},
                                                     {"slow_write", Mode::kSlowWrite}};
  if (!(in >> fault_rank >> colon1 >> step >> colon2) || colon1 != ':' || colon2 != ':' ||
      !std::getline(in, mode) || !kModes.count(mode)) {
    throw ConfigError(std::string(kFaultEnvVariable) + "='" + setting +
                      "': expected RANK:STEP:MODE with MODE exit, hang, raise, sigterm, "
                      "kill_in_write or slow_write");
  }
  if (fault_rank != rank) return;
  fault_ = Fault{step, kModes.at(mode)};
}

void FaultInjector::InCheckpointWrite(int64_t step) const {
  if (!fault_ || fault_->step != step) return;
  if (fault_->mode == Mode::kKillInWrite) raise(SIGKILL);
  if (fault_->mode == Mode::kSlowWrite) {
    std::this_thread::sleep_for(std::chrono::seconds(kSlowWriteSeconds));
  }
}

void FaultInjector::AtStep(int64_t step) const {
  if (!fault_ || fault_->step != step) return;
  switch (fault_->mode) {
    case Mode::kExit:
      std::_Exit(9);
    case Mode::kHang:
      for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
    case Mode::kRaise:
      throw ModelError("fault injected by " + std::string(kFaultEnvVariable) + " at step " +
                       std::to_string(step));
    case Mode::kSigterm:
      raise(SIGTERM);
      return;
    case Mode::kKillInWrite:
    case Mode::kSlowWrite:
      return;  // these act in InCheckpointWrite
  }
}

}  // namespace slim

#include "runtime/engine/step_agreement.h"

#include <cmath>
#include <csignal>
#include <cstring>

#include "runtime/base/logging.h"
#include "runtime/base/stop_signals.h"

namespace slim::engine {

StepAgreement::StepAgreement(const config::CheckpointOptions& options, comm::Communicator& comm)
    : options_(options), comm_(comm), flags_(torch::zeros({4}, torch::kInt32)) {}

StepAgreement::Decision StepAgreement::Decide(int64_t steps_done, double local_loss,
                                              bool checkpoint_failed) {
  const int signal_number = ReceivedStopSignal();
  if (signal_number != 0 && !signal_reported_) {
    signal_reported_ = true;
    logging::Warning(std::string("received ") + strsignal(signal_number) +
                     ": stopping after a checkpoint at the next step boundary");
  }
  const double minutes =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - last_checkpoint_).count() /
      60;
  const bool time_due =
      comm_.Rank() == 0 && options_.every_minutes > 0 && minutes >= options_.every_minutes;
  auto* flags = flags_.data_ptr<int32_t>();
  flags[0] = signal_number != 0;
  flags[1] = time_due;
  flags[2] = !std::isfinite(local_loss);
  flags[3] = checkpoint_failed;
  comm_.AllReduceSync(flags_, comm::ReduceOp::kMax);
  Decision decision;
  decision.stop = flags[0] != 0;
  decision.loss_not_finite = flags[2] != 0;
  decision.checkpoint_failed = flags[3] != 0;
  decision.checkpoint = decision.stop || flags[1] != 0 ||
                        (options_.every_iter > 0 && steps_done % options_.every_iter == 0);
  return decision;
}

}  // namespace slim::engine

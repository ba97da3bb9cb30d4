#include "runtime/base/stop_signals.h"

#include <atomic>
#include <csignal>
#include <initializer_list>

#include <unistd.h>

#include "runtime/base/errors.h"

namespace slim {

namespace {

std::atomic<int> first_signal{0};
std::atomic<int> signal_count{0};
std::atomic<bool> deferring{false};

static_assert(std::atomic<int>::is_always_lock_free, "signal handlers need lock-free atomics");

// A third signal means the user insists: die of it at once (a checkpoint write in
// progress leaves only its temporary file behind).
constexpr int kSignalsToForceExit = 3;

// Outside the training loop: say so and exit for requeue (async-signal-safe calls only).
void ExitForRequeue() {
  constexpr char kMessage[] =
      "slim-train: stopped by a signal outside the training loop; nothing to save: run the "
      "same command again to continue (exit code 75)\n";
  [[maybe_unused]] const auto written = ::write(STDERR_FILENO, kMessage, sizeof(kMessage) - 1);
  ::_exit(static_cast<int>(ExitCode::kStoppedForRequeue));
}

extern "C" void RecordStopSignal(int signal_number) {
  if (!deferring.load()) ExitForRequeue();
  int none = 0;
  first_signal.compare_exchange_strong(none, signal_number);
  if (signal_count.fetch_add(1) + 1 >= kSignalsToForceExit) {
    std::signal(signal_number, SIG_DFL);
    std::raise(signal_number);
  }
}

}  // namespace

void InstallStopSignalHandlers() {
  struct sigaction action {};
  action.sa_handler = RecordStopSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  for (int signal_number : {SIGTERM, SIGINT, SIGUSR1}) sigaction(signal_number, &action, nullptr);
}

DeferredStopSignals::DeferredStopSignals() { deferring.store(true); }

DeferredStopSignals::~DeferredStopSignals() { deferring.store(false); }

int ReceivedStopSignal() { return first_signal.load(); }

int StopSignalCount() { return signal_count.load(); }

}  // namespace slim

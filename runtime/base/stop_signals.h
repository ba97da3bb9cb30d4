// SIGTERM, SIGINT and SIGUSR1 (Slurm preemption, scancel, Ctrl-C, `mpirun` forwarding
// SIGUSR1). Inside the training loop they are requests to stop at the next step boundary
// after a checkpoint: the handlers only record the signal, the trainer polls and all ranks
// agree on the stop. Anywhere else (start-up, calibration, --analyze, the final export)
// there is no training state to save and every output is written atomically, so the
// first signal ends the process at once with exit code 75 (ExitCode::kStoppedForRequeue):
// the same command continues from the newest checkpoint, and the Slurm script requeues.
#pragma once

namespace slim {

// Installs the handlers (idempotent).
void InstallStopSignalHandlers();

// While an instance lives (the training loop), stop signals are recorded instead of ending
// the process. A second signal is recorded and does not interrupt the checkpoint being
// written; a third one ends the process at once. Not nestable.
class DeferredStopSignals {
 public:
  DeferredStopSignals();
  ~DeferredStopSignals();
  DeferredStopSignals(const DeferredStopSignals&) = delete;
  DeferredStopSignals& operator=(const DeferredStopSignals&) = delete;
};

// The first stop signal received (e.g. SIGTERM), or 0 when none arrived.
int ReceivedStopSignal();

// How many stop signals arrived so far.
int StopSignalCount();

}  // namespace slim

// SIGTERM, SIGINT and SIGUSR1 as requests to stop at the next step boundary after a
// checkpoint (Slurm preemption, scancel, Ctrl-C, `mpirun` forwarding SIGUSR1). The
// handlers only record the signal; the trainer polls and all ranks agree on the stop.
#pragma once

namespace slim {

// Installs the handlers (idempotent). A second signal is recorded and does not interrupt
// the checkpoint being written; a third one ends the process at once, as the signal
// would without a handler.
void InstallStopSignalHandlers();

// The first stop signal received (e.g. SIGTERM), or 0 when none arrived.
int ReceivedStopSignal();

// How many stop signals arrived so far.
int StopSignalCount();

}  // namespace slim

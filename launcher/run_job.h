// One slim-train job on this rank: config, data, model, then dry-run or training.
#pragma once

#include "launcher/command_line.h"
#include "runtime/comm/mpi_session.h"

namespace slim::launcher {

// Runs the job described by `command`. Collective over all ranks. Throws SlimError
// subclasses for everything a user can cause.
void RunJob(const CommandLine& command, const comm::MpiSession& session,
            const comm::ProcessPlacement& placement);

}  // namespace slim::launcher

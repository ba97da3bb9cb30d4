// One slim-train job on this rank: config, data, model, then dry-run or training.
#pragma once

#include <memory>

#include "launcher/command_line.h"
#include "runtime/comm/mpi_session.h"
#include "runtime/config/options.h"
#include "runtime/engine/trainer.h"
#include "strategies/prune/prune_sensitivity.h"

namespace slim::launcher {

// Everything a job needs once start-up succeeded.
struct PreparedJob {
  config::Config config;
  std::unique_ptr<comm::Communicator> comm;
  std::unique_ptr<strategies::Compressor> compressor;
  engine::TrainingSetup setup;
  torch::Tensor example;               // the first training sample, transformed (batch of one)
  strategies::JobContext context;      // what the strategies are built with
  prune::PruneAnalysis prune_analysis;  // what --analyze prune analyses
};

// Start-up: reads the config, opens the data, loads and checks the model, reads and
// checks the checkpoint to resume from, creates the communicator. Does no collective besides creating the communicator. Throws SlimError
// subclasses for everything a user can cause.
std::unique_ptr<PreparedJob> PrepareJob(const CommandLine& command,
                                        const comm::MpiSession& session,
                                        const comm::ProcessPlacement& placement);

// Prints the plan (--dry-run), trains, or calibrates when no strategy trains. Returns the exit code: 0, or 75 when a stop
// signal ended training after a checkpoint. Collective over all ranks.
int RunJob(const CommandLine& command, const comm::ProcessPlacement& placement,
            PreparedJob& job);

}  // namespace slim::launcher

// Process-wide MPI lifetime and the facts every rank needs about its place in the job.
// Rank and node-local rank come from MPI itself, so mpirun, srun and sbatch all work.
#pragma once

#include <torch/types.h>

#include <chrono>
#include <memory>
#include <string>

#include "runtime/comm/communicator.h"

namespace slim::comm {

// Where this process sits in the job.
struct ProcessPlacement {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_size = 1;
};

// Initialises MPI with MPI_THREAD_MULTIPLE on construction and finalises it on
// destruction. Exactly one per process, created before any communicator.
class MpiSession {
 public:
  // Throws CommError when MPI cannot provide MPI_THREAD_MULTIPLE.
  MpiSession(int* argc, char*** argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  // A communicator over all ranks (a duplicate of MPI_COMM_WORLD).
  std::unique_ptr<Communicator> World(std::chrono::milliseconds default_timeout) const;
  // Rank, world size and node-local rank and size. Collective over all ranks.
  ProcessPlacement Placement() const;

  // Ends the whole job at once with `exit_code` on every rank (MPI_Abort).
  [[noreturn]] static void AbortJob(int exit_code);
};

}  // namespace slim::comm

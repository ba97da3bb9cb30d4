#include "runtime/comm/mpi_session.h"

#include <mpi.h>

#include "runtime/base/errors.h"
#include "runtime/comm/mpi_check.h"
#include "runtime/comm/mpi_communicator.h"

namespace slim::comm {

MpiSession::MpiSession(int* argc, char*** argv) {
  int provided = 0;
  SLIM_MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided));
  if (provided < MPI_THREAD_MULTIPLE) {
    throw CommError(
        "this MPI library does not provide MPI_THREAD_MULTIPLE, which slim-train's "
        "communication thread needs; use an MPI built with thread support (Open MPI does)");
  }
}

MpiSession::~MpiSession() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

std::unique_ptr<Communicator> MpiSession::World(std::chrono::milliseconds default_timeout) const {
  MPI_Comm world;
  SLIM_MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &world));
  return std::make_unique<MpiCommunicator>(world, /*owned=*/true, default_timeout);
}

ProcessPlacement MpiSession::Placement() const {
  ProcessPlacement placement;
  SLIM_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &placement.rank));
  SLIM_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &placement.world_size));
  MPI_Comm node;
  SLIM_MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, placement.rank,
                                     MPI_INFO_NULL, &node));
  SLIM_MPI_CHECK(MPI_Comm_rank(node, &placement.local_rank));
  SLIM_MPI_CHECK(MPI_Comm_size(node, &placement.local_size));
  MPI_Comm_free(&node);
  return placement;
}

void MpiSession::AbortJob(int exit_code) {
  MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::_Exit(exit_code);
}

}  // namespace slim::comm

#include "launcher/startup_agreement.h"

#include <mpi.h>

#include <chrono>
#include <thread>

#include "runtime/comm/mpi_session.h"
#include "runtime/base/errors.h"
#include "runtime/base/logging.h"

namespace slim::launcher {

namespace {

// MPI_Iallreduce(max) polled until `timeout_s`; aborts the job past it.
int MaxOverRanks(int value, double timeout_s) {
  MPI_Request request;
  int result = value;
  MPI_Iallreduce(&value, &result, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD, &request);
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration<double>(timeout_s);
  for (int done = 0;;) {
    MPI_Test(&request, &done, MPI_STATUS_IGNORE);
    if (done) return result;
    if (std::chrono::steady_clock::now() > deadline) {
      logging::Error("some rank did not finish start-up within " + std::to_string(timeout_s) +
                     " s (Global.comm_timeout_s); aborting the job");
      comm::MpiSession::AbortJob(static_cast<int>(ExitCode::kDistributed));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

std::string RootMessage(const std::string& local_message, int rank) {
  int length = rank == 0 ? static_cast<int>(local_message.size()) : 0;
  MPI_Bcast(&length, 1, MPI_INT, 0, MPI_COMM_WORLD);
  std::string message = rank == 0 ? local_message : std::string(length, '\0');
  MPI_Bcast(message.data(), length, MPI_CHAR, 0, MPI_COMM_WORLD);
  return message;
}

}  // namespace

int AgreeOnStartup(int local_code, const std::string& local_message, int rank, double timeout_s) {
  const int code = MaxOverRanks(local_code, timeout_s);
  if (code == 0) return 0;
  const std::string root_message = RootMessage(local_message, rank);
  if (local_code != 0 && (rank == 0 || local_message != root_message)) {
    logging::Error(local_message);
  }
  return code;
}

}  // namespace slim::launcher

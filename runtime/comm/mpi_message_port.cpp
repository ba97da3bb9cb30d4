#include "runtime/comm/mpi_message_port.h"

#include <fmt/format.h>

#include <thread>

#include "runtime/base/errors.h"
#include "runtime/comm/mpi_check.h"

namespace slim::comm {

MpiMessagePort::MpiMessagePort(MPI_Comm comm) {
  SLIM_MPI_CHECK(MPI_Comm_dup(comm, &comm_));
  SLIM_MPI_CHECK(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
  SLIM_MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
  SLIM_MPI_CHECK(MPI_Comm_size(comm_, &size_));
}

MpiMessagePort::~MpiMessagePort() { MPI_Comm_free(&comm_); }

void MpiMessagePort::Send(int destination, int tag, const std::string& text) {
  SLIM_MPI_CHECK(MPI_Send(text.data(), static_cast<int>(text.size()), MPI_CHAR, destination, tag,
                          comm_));
}

Message MpiMessagePort::Receive(int tag, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  MPI_Status status;
  MPI_Message matched;
  int arrived = 0;
  while (true) {
    // A matched probe: no other thread can receive the message between probe and receive.
    SLIM_MPI_CHECK(MPI_Improbe(MPI_ANY_SOURCE, tag, comm_, &arrived, &matched, &status));
    if (arrived) break;
    if (std::chrono::steady_clock::now() > deadline) {
      throw CommError(fmt::format("rank {}: no message with tag {} arrived within {} s; a peer "
                                  "rank stopped answering",
                                  rank_, tag, timeout.count() / 1000.0));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  int length = 0;
  SLIM_MPI_CHECK(MPI_Get_count(&status, MPI_CHAR, &length));
  Message message{status.MPI_SOURCE, std::string(static_cast<size_t>(length), '\0')};
  SLIM_MPI_CHECK(MPI_Mrecv(message.text.data(), length, MPI_CHAR, &matched, MPI_STATUS_IGNORE));
  return message;
}

}  // namespace slim::comm

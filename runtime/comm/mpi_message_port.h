// MessagePort over MPI point-to-point calls on a duplicate of the group's communicator,
// so its messages never match another communicator's traffic.
#pragma once

#include <mpi.h>

#include "runtime/comm/message_port.h"

namespace slim::comm {

class MpiMessagePort final : public MessagePort {
 public:
  // Duplicates `comm` (collective over it). REQUIRES: MPI_THREAD_MULTIPLE.
  explicit MpiMessagePort(MPI_Comm comm);
  ~MpiMessagePort() override;
  MpiMessagePort(const MpiMessagePort&) = delete;
  MpiMessagePort& operator=(const MpiMessagePort&) = delete;

  int Rank() const override { return rank_; }
  int Size() const override { return size_; }
  void Send(int destination, int tag, const std::string& text) override;
  // Polls (MPI_Iprobe) every millisecond, so a waiting receiver leaves the cores to the
  // ranks that compute.
  Message Receive(int tag, std::chrono::milliseconds timeout) override;

 private:
  MPI_Comm comm_;
  int rank_ = 0;
  int size_ = 1;
};

}  // namespace slim::comm

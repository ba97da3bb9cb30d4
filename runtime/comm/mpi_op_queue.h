// Internal to the MPI backend: the progress thread that runs one communicator's
// operations in submission order, and the Work handle it completes.
#pragma once

#include <mpi.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "runtime/comm/communicator.h"

namespace slim::comm {

// Work handle completed by the progress thread. Thread-safe.
class MpiWork final : public Work {
 public:
  MpiWork(std::string description, int rank, int size);
  bool IsCompleted() override;
  void Wait(std::chrono::milliseconds timeout) override;
  // Called once by the progress thread; an empty `error` means success.
  void MarkDone(std::string error);

 private:
  const std::string description_;
  const int rank_;
  const int size_;
  std::mutex mutex_;
  std::condition_variable done_cv_;
  bool done_ = false;
  std::string error_;
};

// One queued operation.
struct MpiOp {
  // Starts the non-blocking MPI call and returns its request (MPI_REQUEST_NULL when
  // already complete). Runs on the progress thread.
  std::function<MPI_Request()> start;
  // Runs on the progress thread after the request completed (copy back, divide).
  std::function<void()> finish;
  std::shared_ptr<MpiWork> work;
};

// Runs MpiOps one after another on its own thread, polling each request with a back-off
// from a few microseconds up to half a millisecond.
class MpiOpQueue {
 public:
  MpiOpQueue();
  // Abandons operations still queued or in flight (their Work reports an error).
  ~MpiOpQueue();
  // Queues `op`; it starts after every op submitted before it finished.
  void Submit(MpiOp op);

 private:
  void Run();
  // Polls `request` until complete or the queue is stopping; true when complete.
  bool PollUntilComplete(MPI_Request* request);

  std::mutex mutex_;
  std::condition_variable queue_cv_;
  std::deque<MpiOp> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace slim::comm

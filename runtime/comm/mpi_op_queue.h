// Internal to the MPI backend: the progress thread that runs one communicator's
// operations in submission order, and the Work handle it completes.
//
// Operations run as blocking MPI collectives on the progress thread. Open MPI's blocking
// collectives use its tuned algorithms, which measured 2-3x faster than the non-blocking
// ones (libnbc) for large messages (docs/performance.md), and the caller keeps its
// deadline because it waits on the Work, not on MPI.
#pragma once

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

// One queued operation: `run` performs the MPI call (and any copy back) on the progress
// thread and throws on failure; `work` is completed afterwards.
struct MpiOp {
  std::function<void()> run;
  std::shared_ptr<MpiWork> work;
};

// Runs MpiOps one after another on its own thread.
class MpiOpQueue {
 public:
  MpiOpQueue();
  // Operations still queued are abandoned (their Work reports an error). An operation in
  // flight that never completes (a dead peer) cannot be interrupted: the thread is then
  // detached and left to the job abort that follows.
  ~MpiOpQueue();
  // Queues `op`; it starts after every op submitted before it finished.
  void Submit(MpiOp op);

 private:
  struct State;
  static void Run(std::shared_ptr<State> state);

  std::shared_ptr<State> state_;
  std::thread thread_;
};

}  // namespace slim::comm

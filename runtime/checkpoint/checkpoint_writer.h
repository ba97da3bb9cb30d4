// Writes checkpoints on a background thread (a one-thread Boost.Asio pool) so that
// training only pauses for the in-memory snapshot, not for the disk.
//
// A write that fails (disk full, I/O error) is reported at once, from the writer thread.
// While an earlier checkpoint is still on disk the run can go on and try again at the next
// checkpoint; when none is left, the failure is fatal: FatalFailure() says so at once and
// Wait() throws it as OutputError.
#pragma once

#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <functional>
#include <future>
#include <memory>
#include <string>

#include "runtime/checkpoint/checkpoint_state.h"

namespace slim::checkpoint {

class CheckpointWriter {
 public:
  // Called with the step halfway through each write (fault injection), or null.
  using MidWriteHook = std::function<void(int64_t step)>;

  // Writes into `directory` (created if needed), keeping the `keep` newest checkpoints.
  // `previous` is the checkpoint the run resumed from ("" for none).
  CheckpointWriter(std::string directory, int64_t keep, std::string previous,
                   MidWriteHook mid_write = nullptr);
  // Waits for a write in progress; errors are dropped (call Wait() to see them).
  ~CheckpointWriter();
  CheckpointWriter(const CheckpointWriter&) = delete;
  CheckpointWriter& operator=(const CheckpointWriter&) = delete;

  // Starts writing `state` as ckpt-<step>.h5 and returns. A write still in progress is
  // waited for first (see Wait()).
  void Start(std::shared_ptr<const CheckpointState> state);

  // Blocks until the write in progress (if any) has ended; throws OutputError when a write
  // failed with no earlier checkpoint left to resume from.
  void Wait();

  // True as soon as a write failed with no earlier checkpoint left. Thread-safe.
  bool FatalFailure() const { return fatal_.load(); }

 private:
  void WriteAndPrune(const CheckpointState& state);
  // Reports a failed write of step `step` and decides whether it is fatal.
  void HandleFailure(int64_t step, const std::string& problem);

  std::string directory_;
  int64_t keep_;
  MidWriteHook mid_write_;
  boost::asio::thread_pool pool_{1};
  std::string last_written_;  // the newest checkpoint known good; writer thread only
  std::atomic<bool> fatal_{false};
  std::string fatal_message_;  // set before fatal_
  std::future<void> pending_;
};

}  // namespace slim::checkpoint

// Writes checkpoints on a background thread (a one-thread Boost.Asio pool) so that
// training only pauses for the in-memory snapshot, not for the disk.
#pragma once

#include <boost/asio/thread_pool.hpp>

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
  CheckpointWriter(std::string directory, int64_t keep, MidWriteHook mid_write = nullptr);
  // Waits for a write in progress; errors are dropped (call Wait() to see them).
  ~CheckpointWriter();
  CheckpointWriter(const CheckpointWriter&) = delete;
  CheckpointWriter& operator=(const CheckpointWriter&) = delete;

  // Starts writing `state` as ckpt-<step>.h5 and returns. A write still in progress is
  // waited for first; its error, if any, is thrown here.
  void Start(std::shared_ptr<const CheckpointState> state);

  // Blocks until the write in progress (if any) is on disk; throws DataError if it failed.
  void Wait();

 private:
  void WriteAndPrune(const CheckpointState& state);

  std::string directory_;
  int64_t keep_;
  MidWriteHook mid_write_;
  boost::asio::thread_pool pool_{1};
  std::future<void> pending_;
};

}  // namespace slim::checkpoint

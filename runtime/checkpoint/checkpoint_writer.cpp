#include "runtime/checkpoint/checkpoint_writer.h"

#include <boost/asio/post.hpp>

#include <chrono>
#include <filesystem>
#include <iomanip>
#include <sstream>

#include "runtime/checkpoint/checkpoint_directory.h"
#include "runtime/checkpoint/checkpoint_file.h"
#include "runtime/base/errors.h"
#include "runtime/base/logging.h"

namespace slim::checkpoint {

CheckpointWriter::CheckpointWriter(std::string directory, int64_t keep, MidWriteHook mid_write)
    : directory_(std::move(directory)), keep_(keep), mid_write_(std::move(mid_write)) {}

CheckpointWriter::~CheckpointWriter() {
  if (pending_.valid()) pending_.wait();
  pool_.join();
}

void CheckpointWriter::Start(std::shared_ptr<const CheckpointState> state) {
  Wait();
  std::packaged_task<void()> task([this, state] { WriteAndPrune(*state); });
  pending_ = task.get_future();
  boost::asio::post(pool_, std::move(task));
}

void CheckpointWriter::Wait() {
  if (!pending_.valid()) return;
  auto finished = std::move(pending_);
  finished.get();
}

void CheckpointWriter::WriteAndPrune(const CheckpointState& state) {
  const auto start = std::chrono::steady_clock::now();
  std::error_code error;
  std::filesystem::create_directories(directory_, error);
  if (error) {
    throw DataError("cannot create the checkpoint directory " + directory_ + ": " +
                    error.message() + "; check Global.output_dir");
  }
  const std::string path = CheckpointPath(directory_, state.progress.step);
  const int64_t step = state.progress.step;
  const int64_t bytes = WriteCheckpointFile(path, state, [&] {
    if (mid_write_) mid_write_(step);
  });
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  PruneCheckpoints(directory_, keep_, path);
  std::ostringstream message;
  message << std::fixed << std::setprecision(1) << "checkpoint " << path << ": "
          << bytes / 1e6 << " MB written in " << seconds << " s ("
          << bytes / 1e6 / std::max(seconds, 1e-9) << " MB/s)";
  logging::Info(message.str());
}

}  // namespace slim::checkpoint

#include "runtime/checkpoint/checkpoint_writer.h"

#include <boost/asio/post.hpp>

#include <chrono>
#include <filesystem>
#include <iomanip>
#include <sstream>

#include <fmt/format.h>

#include "runtime/checkpoint/checkpoint_directory.h"
#include "runtime/checkpoint/checkpoint_file.h"
#include "runtime/base/errors.h"
#include "runtime/base/logging.h"

namespace slim::checkpoint {

CheckpointWriter::CheckpointWriter(std::string directory, int64_t keep, std::string previous,
                                   MidWriteHook mid_write)
    : directory_(std::move(directory)),
      keep_(keep),
      mid_write_(std::move(mid_write)),
      last_written_(std::move(previous)) {}

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
  if (fatal_.load()) throw OutputError(fatal_message_);
}

void CheckpointWriter::HandleFailure(int64_t step, const std::string& problem) {
  std::error_code error;
  const std::string failed = fmt::format("the checkpoint at step {} could not be written: {}",
                                         step, problem);
  if (!last_written_.empty() && std::filesystem::is_regular_file(last_written_, error)) {
    logging::Warning(fmt::format("{}. {} is still valid, so training goes on and tries again "
                                 "at the next checkpoint; free space in {}",
                                 failed, last_written_, directory_));
    return;
  }
  fatal_message_ = failed + ". No earlier checkpoint is left to resume from, so the run stops; "
                            "free space in " + directory_ + " and run the same command again";
  logging::Error(fatal_message_);
  fatal_.store(true);
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
  int64_t bytes = 0;
  try {
    bytes = WriteCheckpointFile(path, state, [&] {
      if (mid_write_) mid_write_(step);
    });
  } catch (const SlimError& failure) {
    HandleFailure(step, failure.what());
    return;
  }
  last_written_ = path;
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

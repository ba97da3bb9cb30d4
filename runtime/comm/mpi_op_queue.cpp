#include "runtime/comm/mpi_op_queue.h"

#include <algorithm>
#include <sstream>

#include "runtime/comm/mpi_check.h"
#include "runtime/errors.h"

namespace slim::comm {

namespace {
constexpr auto kFirstPollSleep = std::chrono::microseconds(5);
constexpr auto kMaxPollSleep = std::chrono::microseconds(500);
}  // namespace

MpiWork::MpiWork(std::string description, int rank, int size)
    : description_(std::move(description)), rank_(rank), size_(size) {}

bool MpiWork::IsCompleted() {
  std::lock_guard<std::mutex> lock(mutex_);
  return done_;
}

void MpiWork::Wait(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (!done_cv_.wait_for(lock, timeout, [this] { return done_; })) {
    std::ostringstream message;
    message << description_ << " on rank " << rank_ << " of " << size_
            << " did not complete within " << timeout.count() / 1000.0
            << " s: another rank has probably died, hung or diverged from this rank's "
               "sequence of collectives. Check the other ranks' output; raise "
               "Global.comm_timeout_s if a step legitimately takes longer.";
    throw CommError(message.str());
  }
  if (!error_.empty()) {
    throw CommError(description_ + " failed on rank " + std::to_string(rank_) + ": " + error_);
  }
}

void MpiWork::MarkDone(std::string error) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    done_ = true;
    error_ = std::move(error);
  }
  done_cv_.notify_all();
}

MpiOpQueue::MpiOpQueue() : thread_([this] { Run(); }) {}

MpiOpQueue::~MpiOpQueue() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  queue_cv_.notify_all();
  thread_.join();
  for (auto& op : queue_) op.work->MarkDone("the communicator was shut down");
}

void MpiOpQueue::Submit(MpiOp op) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(std::move(op));
  }
  queue_cv_.notify_one();
}

void MpiOpQueue::Run() {
  for (;;) {
    MpiOp op;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      queue_cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      op = std::move(queue_.front());
      queue_.pop_front();
    }
    try {
      MPI_Request request = op.start();
      if (!PollUntilComplete(&request)) {
        op.work->MarkDone("the communicator was shut down while the operation was in flight");
        return;
      }
      op.finish();
      op.work->MarkDone("");
    } catch (const std::exception& e) {
      op.work->MarkDone(e.what());
    }
  }
}

bool MpiOpQueue::PollUntilComplete(MPI_Request* request) {
  auto sleep = kFirstPollSleep;
  for (;;) {
    int complete = 0;
    SLIM_MPI_CHECK(MPI_Test(request, &complete, MPI_STATUS_IGNORE));
    if (complete) return true;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) return false;
    }
    std::this_thread::sleep_for(sleep);
    sleep = std::min(sleep * 2, kMaxPollSleep);
  }
}

}  // namespace slim::comm

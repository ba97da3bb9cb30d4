#include "runtime/comm/mpi_op_queue.h"

#include <sstream>

#include "runtime/base/errors.h"

namespace slim::comm {

// Shared between the queue and its thread, so a detached thread never touches freed memory.
struct MpiOpQueue::State {
  std::mutex mutex;
  std::condition_variable queue_cv;
  std::condition_variable idle_cv;
  std::deque<MpiOp> queue;
  bool stopping = false;
  bool busy = false;
};

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

MpiOpQueue::MpiOpQueue() : state_(std::make_shared<State>()), thread_(Run, state_) {}

MpiOpQueue::~MpiOpQueue() {
  std::deque<MpiOp> abandoned;
  bool busy = false;
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->stopping = true;
    abandoned.swap(state_->queue);
    busy = state_->busy;
  }
  state_->queue_cv.notify_all();
  for (auto& op : abandoned) op.work->MarkDone("the communicator was shut down");
  if (busy && std::uncaught_exceptions() > 0) {
    thread_.detach();  // its collective may never complete; see the header
  } else {
    thread_.join();
  }
}

void MpiOpQueue::Submit(MpiOp op) {
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->queue.push_back(std::move(op));
  }
  state_->queue_cv.notify_one();
}

void MpiOpQueue::Run(std::shared_ptr<State> state) {
  for (;;) {
    MpiOp op;
    {
      std::unique_lock<std::mutex> lock(state->mutex);
      state->busy = false;
      state->queue_cv.wait(lock, [&] { return state->stopping || !state->queue.empty(); });
      if (state->stopping) return;
      op = std::move(state->queue.front());
      state->queue.pop_front();
      state->busy = true;
    }
    try {
      op.run();
      op.work->MarkDone("");
    } catch (const std::exception& e) {
      op.work->MarkDone(e.what());
    }
  }
}

}  // namespace slim::comm

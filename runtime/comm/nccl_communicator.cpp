#include "runtime/comm/nccl_communicator.h"

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <algorithm>
#include <functional>
#include <thread>

#include <fmt/format.h>

#include "runtime/base/errors.h"
#include "runtime/comm/cuda_compute_stream.h"
#include "runtime/comm/mpi_check.h"
#include "runtime/comm/mpi_message_port.h"

namespace slim::comm {

namespace {

using Clock = std::chrono::steady_clock;

void CheckCuda(cudaError_t result, const std::string& call) {
  if (result != cudaSuccess) {
    throw CommError(fmt::format("{} failed: {}", call, cudaGetErrorString(result)));
  }
}

// Accepts ncclInProgress: a non-blocking communicator's call that is still being set up.
ncclResult_t CheckNccl(ncclResult_t result, const std::string& call) {
  if (result != ncclSuccess && result != ncclInProgress) {
    throw CommError(fmt::format("{} failed: {}", call, ncclGetErrorString(result)));
  }
  return result;
}

ncclDataType_t NcclTypeOf(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat: return ncclFloat32;
    case torch::kDouble: return ncclFloat64;
    case torch::kHalf: return ncclFloat16;
    case torch::kBFloat16: return ncclBfloat16;
    case torch::kInt: return ncclInt32;
    case torch::kLong: return ncclInt64;
    case torch::kByte:
    case torch::kBool:
      return ncclUint8;  // a bool is one byte, 0 or 1; max/min keep it so
    case torch::kChar: return ncclInt8;
    default:
      throw CommError(fmt::format("the NCCL communicator has no counterpart of dtype {}",
                                  c10::toString(type)));
  }
}

ncclRedOp_t NcclOpOf(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum: return ncclSum;
    case ReduceOp::kAverage: return ncclAvg;
    case ReduceOp::kMax: return ncclMax;
    case ReduceOp::kMin: return ncclMin;
  }
  return ncclSum;
}

}  // namespace

struct NcclCommunicator::Handles {
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;
  float* barrier_word = nullptr;  // one float on the device, for Barrier()
  int device = 0;
  std::mutex mutex;  // guards `aborted`
  bool aborted = false;

  ~Handles() {
    if (comm != nullptr && !aborted) ncclCommDestroy(comm);
    if (stream != nullptr) cudaStreamDestroy(stream);
    if (barrier_word != nullptr) cudaFree(barrier_word);
  }

  // Ends every collective in flight; the communicator is unusable afterwards.
  void Abort() {
    std::lock_guard<std::mutex> lock(mutex);
    if (comm != nullptr && !aborted) ncclCommAbort(comm);
    aborted = true;
  }

  // The communicator's asynchronous state: ncclSuccess, ncclInProgress or an error.
  ncclResult_t State() {
    std::lock_guard<std::mutex> lock(mutex);
    ncclResult_t state = ncclSuccess;
    if (comm != nullptr && !aborted) ncclCommGetAsyncError(comm, &state);
    return aborted ? ncclRemoteError : state;
  }

  // Polls `finished` with a back-off from 5 us to 0.5 ms until it returns true. Aborts
  // and throws CommError naming `what` when NCCL reports an error or `timeout` passed.
  void PollUntil(const std::string& what, std::chrono::milliseconds timeout,
                 const std::function<bool()>& finished) {
    const auto deadline = Clock::now() + timeout;
    for (auto pause = std::chrono::microseconds(5);;
         pause = std::min(2 * pause, std::chrono::microseconds(500))) {
      if (finished()) return;
      const ncclResult_t state = State();
      if (state != ncclSuccess && state != ncclInProgress) {
        Abort();
        throw CommError(fmt::format("{}: NCCL reported {}", what, ncclGetErrorString(state)));
      }
      if (Clock::now() >= deadline) {
        Abort();
        throw CommError(fmt::format("{} did not complete within {} ms; the NCCL communicator "
                                    "was aborted (a peer rank is lost or stuck)",
                                    what, timeout.count()));
      }
      std::this_thread::sleep_for(pause);
    }
  }
};

namespace {

// A collective on the backend's stream, done when its event is.
class NcclWork final : public Work {
 public:
  NcclWork(std::shared_ptr<NcclCommunicator::Handles> handles, cudaEvent_t done,
           std::string description, std::vector<torch::Tensor> tensors)
      : handles_(std::move(handles)),
        done_(done),
        description_(std::move(description)),
        tensors_(std::move(tensors)) {}
  ~NcclWork() override { cudaEventDestroy(done_); }

  bool IsCompleted() override { return cudaEventQuery(done_) != cudaErrorNotReady; }

  void Wait(std::chrono::milliseconds timeout) override {
    handles_->PollUntil(description_, timeout, [this] {
      const cudaError_t event = cudaEventQuery(done_);
      if (event != cudaSuccess && event != cudaErrorNotReady) {
        handles_->Abort();
        throw CommError(fmt::format("{} failed: {}", description_, cudaGetErrorString(event)));
      }
      return event == cudaSuccess;
    });
    // Kernels queued on the compute stream from now on see the result.
    CheckCuda(cudaStreamWaitEvent(ComputeStream(handles_->device), done_, 0), "cudaStreamWaitEvent");
    tensors_.clear();
  }

 private:
  std::shared_ptr<NcclCommunicator::Handles> handles_;
  cudaEvent_t done_;
  std::string description_;
  std::vector<torch::Tensor> tensors_;
};

}  // namespace

NcclCommunicator::NcclCommunicator(MPI_Comm comm, int device,
                                   std::chrono::milliseconds default_timeout)
    : device_(device), default_timeout_(default_timeout), handles_(std::make_shared<Handles>()) {
  SLIM_MPI_CHECK(MPI_Comm_dup(comm, &mpi_));
  SLIM_MPI_CHECK(MPI_Comm_rank(mpi_, &rank_));
  SLIM_MPI_CHECK(MPI_Comm_size(mpi_, &size_));
  handles_->device = device;
  CheckCuda(cudaSetDevice(device), fmt::format("cudaSetDevice({})", device));
  ncclUniqueId id;
  if (rank_ == 0) CheckNccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
  SLIM_MPI_CHECK(MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, mpi_));
  // Non-blocking, so that a rank that never joins is caught by the deadline.
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  CheckNccl(ncclCommInitRankConfig(&handles_->comm, size_, id, rank_, &config),
            "ncclCommInitRankConfig");
  handles_->PollUntil(fmt::format("joining the NCCL communicator of {} ranks", size_),
                      default_timeout_, [this] { return handles_->State() == ncclSuccess; });
  CheckCuda(cudaStreamCreateWithFlags(&handles_->stream, cudaStreamNonBlocking),
            "cudaStreamCreateWithFlags");
  CheckCuda(cudaMalloc(reinterpret_cast<void**>(&handles_->barrier_word), sizeof(float)),
            "cudaMalloc");
}

NcclCommunicator::~NcclCommunicator() {
  handles_.reset();  // works still in flight keep the handles alive
  MPI_Comm_free(&mpi_);
}

WorkPtr NcclCommunicator::Launch(std::string description, std::vector<torch::Tensor> tensors,
                                 const std::function<int(void* stream)>& launch) {
  for (const auto& tensor : tensors) {
    if (!tensor.defined() || !tensor.is_cuda() || tensor.device().index() != device_ ||
        !tensor.is_contiguous()) {
      throw CommError(fmt::format("{}: needs contiguous tensors on cuda:{}", description, device_));
    }
  }
  std::lock_guard<std::mutex> lock(launch_mutex_);
  CheckCuda(cudaSetDevice(device_), "cudaSetDevice");
  cudaEvent_t ready;
  CheckCuda(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming), "cudaEventCreate");
  CheckCuda(cudaEventRecord(ready, ComputeStream(device_)), "cudaEventRecord");
  CheckCuda(cudaStreamWaitEvent(handles_->stream, ready, 0), "cudaStreamWaitEvent");
  cudaEventDestroy(ready);  // released once the wait is done
  const auto result = CheckNccl(static_cast<ncclResult_t>(launch(handles_->stream)), description);
  if (result == ncclInProgress) {
    handles_->PollUntil(description, default_timeout_,
                        [this] { return handles_->State() == ncclSuccess; });
  }
  cudaEvent_t done;
  CheckCuda(cudaEventCreateWithFlags(&done, cudaEventDisableTiming), "cudaEventCreate");
  CheckCuda(cudaEventRecord(done, handles_->stream), "cudaEventRecord");
  return std::make_shared<NcclWork>(handles_, done, std::move(description), std::move(tensors));
}

WorkPtr NcclCommunicator::AllReduce(torch::Tensor tensor, ReduceOp op) {
  const auto type = NcclTypeOf(tensor.scalar_type());
  return Launch(fmt::format("NCCL allreduce({}) of {} elements", ReduceOpName(op), tensor.numel()),
                {tensor}, [&](void* stream) {
                  return ncclAllReduce(tensor.data_ptr(), tensor.data_ptr(), tensor.numel(), type,
                                       NcclOpOf(op), handles_->comm,
                                       static_cast<cudaStream_t>(stream));
                });
}

WorkPtr NcclCommunicator::Broadcast(torch::Tensor tensor, int root) {
  if (root < 0 || root >= size_) {
    throw CommError(fmt::format("broadcast: root {} is not a rank of a group of {}", root, size_));
  }
  const auto type = NcclTypeOf(tensor.scalar_type());
  return Launch(fmt::format("NCCL broadcast from rank {} of {} elements", root, tensor.numel()),
                {tensor}, [&](void* stream) {
                  return ncclBroadcast(tensor.data_ptr(), tensor.data_ptr(), tensor.numel(), type,
                                       root, handles_->comm, static_cast<cudaStream_t>(stream));
                });
}

WorkPtr NcclCommunicator::AllGather(torch::Tensor input, torch::Tensor output) {
  if (output.numel() != input.numel() * size_ || output.scalar_type() != input.scalar_type()) {
    throw CommError("allgather: the output must hold Size() inputs of the input's dtype");
  }
  const auto type = NcclTypeOf(input.scalar_type());
  return Launch(fmt::format("NCCL allgather of {} elements", input.numel()), {input, output},
                [&](void* stream) {
                  return ncclAllGather(input.data_ptr(), output.data_ptr(), input.numel(), type,
                                       handles_->comm, static_cast<cudaStream_t>(stream));
                });
}

WorkPtr NcclCommunicator::ReduceScatter(torch::Tensor input, torch::Tensor output, ReduceOp op) {
  if (input.numel() != output.numel() * size_ || output.scalar_type() != input.scalar_type()) {
    throw CommError("reduce_scatter: the input must hold Size() outputs of the output's dtype");
  }
  const auto type = NcclTypeOf(input.scalar_type());
  return Launch(fmt::format("NCCL reduce_scatter({}) of {} elements", ReduceOpName(op),
                            input.numel()),
                {input, output}, [&](void* stream) {
                  return ncclReduceScatter(input.data_ptr(), output.data_ptr(), output.numel(),
                                           type, NcclOpOf(op), handles_->comm,
                                           static_cast<cudaStream_t>(stream));
                });
}

WorkPtr NcclCommunicator::Barrier() {
  return Launch("NCCL barrier", {}, [&](void* stream) {
    return ncclAllReduce(handles_->barrier_word, handles_->barrier_word, 1, ncclFloat32, ncclSum,
                         handles_->comm, static_cast<cudaStream_t>(stream));
  });
}

std::unique_ptr<Communicator> NcclCommunicator::Split(int color, int key) {
  Barrier()->Wait(default_timeout_);
  MPI_Comm split;
  SLIM_MPI_CHECK(MPI_Comm_split(mpi_, color, key, &split));
  auto result = std::make_unique<NcclCommunicator>(split, device_, default_timeout_);
  MPI_Comm_free(&split);
  return result;
}

std::unique_ptr<Communicator> NcclCommunicator::SplitNodeLocal() {
  Barrier()->Wait(default_timeout_);
  MPI_Comm split;
  SLIM_MPI_CHECK(MPI_Comm_split_type(mpi_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &split));
  auto result = std::make_unique<NcclCommunicator>(split, device_, default_timeout_);
  MPI_Comm_free(&split);
  return result;
}

std::unique_ptr<MessagePort> NcclCommunicator::OpenMessagePort() {
  Barrier()->Wait(default_timeout_);
  return std::make_unique<MpiMessagePort>(mpi_);
}

}  // namespace slim::comm

#include "runtime/comm/mpi_communicator.h"

#include <exception>
#include <sstream>

#include "runtime/comm/mpi_check.h"
#include "runtime/comm/mpi_message_port.h"
#include "runtime/comm/mpi_op_queue.h"
#include "runtime/base/errors.h"

namespace slim::comm {

namespace {

MPI_Datatype MpiTypeOf(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat32:
      return MPI_FLOAT;
    case torch::kFloat64:
      return MPI_DOUBLE;
    case torch::kInt32:
      return MPI_INT32_T;
    case torch::kInt64:
      return MPI_INT64_T;
    case torch::kUInt8:
    case torch::kBool:
      return MPI_UINT8_T;
    case torch::kFloat16:
    case torch::kBFloat16:
      return MPI_UINT16_T;  // moved as raw bits, reduced in float32
    default:
      throw CommError(std::string("the MPI communicator does not support dtype ") +
                      c10::toString(type) +
                      "; use float32, float64, bfloat16, float16, int32, int64, uint8 or bool");
  }
}

MPI_Op MpiOpOf(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
    case ReduceOp::kAverage:
      return MPI_SUM;
    case ReduceOp::kMax:
      return MPI_MAX;
    case ReduceOp::kMin:
      return MPI_MIN;
  }
  return MPI_SUM;
}

bool IsHalfType(const torch::Tensor& t) {
  return t.scalar_type() == torch::kFloat16 || t.scalar_type() == torch::kBFloat16;
}

// Throws unless `t` can be handed to MPI directly.
void CheckTensor(const torch::Tensor& t, const char* op) {
  if (!t.defined() || !t.device().is_cpu() || !t.is_contiguous()) {
    throw CommError(std::string(op) +
                    ": the MPI communicator needs a defined, contiguous CPU tensor");
  }
  MpiTypeOf(t.scalar_type());
}

std::string Describe(const char* op, const torch::Tensor& t) {
  std::ostringstream out;
  out << op << " of " << t.numel() << " " << c10::toString(t.scalar_type()) << " elements";
  return out.str();
}

// The tensor MPI reduces: `t` itself, or a float32 copy for half types.
torch::Tensor ReductionBuffer(const torch::Tensor& t) {
  return IsHalfType(t) ? t.to(torch::kFloat32) : t;
}

// Writes the reduced `buffer` back into `target`, dividing for averages.
void FinishReduction(torch::Tensor buffer, torch::Tensor target, ReduceOp op, int size) {
  if (op == ReduceOp::kAverage) {
    if (buffer.is_floating_point()) {
      buffer.div_(size);
    } else {
      buffer.div_(size, "trunc");
    }
  }
  if (!buffer.is_same(target)) target.copy_(buffer);
}

}  // namespace

const char* ReduceOpName(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return "sum";
    case ReduceOp::kAverage:
      return "avg";
    case ReduceOp::kMax:
      return "max";
    case ReduceOp::kMin:
      return "min";
  }
  return "?";
}

void ThrowMpiError(int code, const char* what, const char* file, int line) {
  char text[MPI_MAX_ERROR_STRING] = {0};
  int length = 0;
  MPI_Error_string(code, text, &length);
  int rank = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  std::ostringstream message;
  message << what << " failed at " << file << ":" << line << " on rank " << rank << ": "
          << std::string(text, length);
  throw CommError(message.str());
}

void WaitAll(const std::vector<WorkPtr>& works, const Communicator& comm) {
  for (const auto& work : works) work->Wait(comm.DefaultTimeout());
}

MpiCommunicator::MpiCommunicator(MPI_Comm comm, bool owned,
                                 std::chrono::milliseconds default_timeout)
    : comm_(comm), owned_(owned), default_timeout_(default_timeout) {
  SLIM_MPI_CHECK(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
  SLIM_MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
  SLIM_MPI_CHECK(MPI_Comm_size(comm_, &size_));
  queue_ = std::make_unique<MpiOpQueue>();
}

MpiCommunicator::~MpiCommunicator() {
  queue_.reset();
  // While an error unwinds, peers may still be inside collectives on this communicator:
  // freeing it could block, so it is left to the job abort that follows.
  if (owned_ && std::uncaught_exceptions() == 0) MPI_Comm_free(&comm_);
}

WorkPtr MpiCommunicator::AllReduce(torch::Tensor tensor, ReduceOp op) {
  CheckTensor(tensor, "allreduce");
  std::string description =
      Describe((std::string("allreduce(") + ReduceOpName(op) + ")").c_str(), tensor);
  return Enqueue(std::move(description), [this, tensor, op] {
    auto buffer = ReductionBuffer(tensor);
    SLIM_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, buffer.data_ptr(), buffer.numel(),
                                 MpiTypeOf(buffer.scalar_type()), MpiOpOf(op), comm_));
    FinishReduction(buffer, tensor, op, size_);
  });
}

WorkPtr MpiCommunicator::Broadcast(torch::Tensor tensor, int root) {
  CheckTensor(tensor, "broadcast");
  if (root < 0 || root >= size_) {
    throw CommError("broadcast: root " + std::to_string(root) + " is not a rank of a group of " +
                    std::to_string(size_));
  }
  std::string description = Describe("broadcast", tensor);
  return Enqueue(std::move(description), [this, tensor, root] {
    SLIM_MPI_CHECK(MPI_Bcast(tensor.data_ptr(), tensor.numel(), MpiTypeOf(tensor.scalar_type()),
                             root, comm_));
  });
}

WorkPtr MpiCommunicator::AllGather(torch::Tensor input, torch::Tensor output) {
  CheckTensor(input, "allgather");
  CheckTensor(output, "allgather");
  if (output.numel() != input.numel() * size_ || output.scalar_type() != input.scalar_type()) {
    throw CommError("allgather: output must hold " + std::to_string(size_) + " x " +
                    std::to_string(input.numel()) + " elements of the input's dtype");
  }
  std::string description = Describe("allgather", input);
  return Enqueue(std::move(description), [this, input, output] {
    MPI_Datatype type = MpiTypeOf(input.scalar_type());
    SLIM_MPI_CHECK(MPI_Allgather(input.data_ptr(), input.numel(), type, output.data_ptr(),
                                 input.numel(), type, comm_));
  });
}

WorkPtr MpiCommunicator::ReduceScatter(torch::Tensor input, torch::Tensor output, ReduceOp op) {
  CheckTensor(input, "reduce_scatter");
  CheckTensor(output, "reduce_scatter");
  if (input.numel() != output.numel() * size_ || output.scalar_type() != input.scalar_type()) {
    throw CommError("reduce_scatter: input must hold " + std::to_string(size_) +
                    " chunks of the output's size and dtype");
  }
  std::string description =
      Describe((std::string("reduce_scatter(") + ReduceOpName(op) + ")").c_str(), input);
  return Enqueue(std::move(description), [this, input, output, op] {
    auto send = ReductionBuffer(input);
    auto receive = ReductionBuffer(output);
    SLIM_MPI_CHECK(MPI_Reduce_scatter_block(send.data_ptr(), receive.data_ptr(), receive.numel(),
                                            MpiTypeOf(receive.scalar_type()), MpiOpOf(op),
                                            comm_));
    FinishReduction(receive, output, op, size_);
  });
}

WorkPtr MpiCommunicator::Barrier() {
  std::string description = "barrier";
  return Enqueue(std::move(description), [this] { SLIM_MPI_CHECK(MPI_Barrier(comm_)); });
}

std::unique_ptr<Communicator> MpiCommunicator::Split(int color, int key) {
  Barrier()->Wait(default_timeout_);  // drains this communicator's queue first
  MPI_Comm split;
  SLIM_MPI_CHECK(MPI_Comm_split(comm_, color, key, &split));
  return WrapSplit(split);
}

std::unique_ptr<Communicator> MpiCommunicator::SplitNodeLocal() {
  Barrier()->Wait(default_timeout_);
  MPI_Comm split;
  SLIM_MPI_CHECK(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &split));
  return WrapSplit(split);
}

std::unique_ptr<MessagePort> MpiCommunicator::OpenMessagePort() {
  Barrier()->Wait(default_timeout_);
  return std::make_unique<MpiMessagePort>(comm_);
}

WorkPtr MpiCommunicator::Enqueue(std::string description, std::function<void()> run) {
  auto work = std::make_shared<MpiWork>(std::move(description), rank_, size_);
  queue_->Submit(MpiOp{std::move(run), work});
  return work;
}

std::unique_ptr<Communicator> MpiCommunicator::WrapSplit(MPI_Comm split) {
  return std::make_unique<MpiCommunicator>(split, /*owned=*/true, default_timeout_);
}

}  // namespace slim::comm

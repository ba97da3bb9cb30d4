// The NCCL communicator on a CUDA device: every collective on every dtype it maps, and
// the ordering of its stream after the compute stream. Built with -DSLIM_WITH_NCCL=ON and
// run by ctest under mpirun; on a machine without a CUDA device every test is skipped.
// Device memory comes from cudaMalloc and is wrapped as CUDA tensors with from_blob, so
// the tests need no CUDA LibTorch.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>
#include <mpi.h>
#include <torch/torch.h>

#include "runtime/base/errors.h"
#include "runtime/comm/cuda_compute_stream.h"
#include "runtime/comm/nccl_communicator.h"

namespace slim::comm {
namespace {

using std::chrono::milliseconds;

// A device copy of a CPU tensor, freed with the returned tensor.
torch::Tensor ToDevice(const torch::Tensor& host) {
  void* memory = nullptr;
  const size_t bytes = host.numel() * host.element_size();
  if (cudaMalloc(&memory, std::max<size_t>(bytes, 1)) != cudaSuccess) throw std::bad_alloc();
  cudaMemcpy(memory, host.data_ptr(), bytes, cudaMemcpyHostToDevice);
  return torch::from_blob(memory, host.sizes(), [](void* p) { cudaFree(p); },
                          host.options().device(torch::Device(torch::kCUDA, 0)));
}

torch::Tensor ToHost(const torch::Tensor& device) {
  auto host = torch::empty(device.sizes(), device.options().device(torch::kCPU));
  cudaMemcpy(host.data_ptr(), device.data_ptr(), host.numel() * host.element_size(),
             cudaMemcpyDeviceToHost);
  return host;
}

class NcclCommunicatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
      GTEST_SKIP() << "no CUDA device";
    }
    comm_ = std::make_unique<NcclCommunicator>(MPI_COMM_WORLD, 0, milliseconds(60000));
  }

  std::unique_ptr<NcclCommunicator> comm_;
};

TEST_F(NcclCommunicatorTest, AllReduceOnEveryDtype) {
  const int size = comm_->Size();
  for (auto type : {torch::kFloat, torch::kDouble, torch::kHalf, torch::kBFloat16, torch::kInt,
                    torch::kLong, torch::kByte, torch::kChar}) {
    auto tensor = ToDevice(torch::full({5}, comm_->Rank() + 1, torch::kFloat).to(type));
    comm_->AllReduce(tensor, ReduceOp::kSum)->Wait(comm_->DefaultTimeout());
    const auto expected = torch::full({5}, size * (size + 1) / 2, torch::kFloat).to(type);
    EXPECT_TRUE(torch::equal(ToHost(tensor), expected)) << c10::toString(type);
  }
}

TEST_F(NcclCommunicatorTest, BroadcastAllGatherReduceScatterAndBarrier) {
  const int rank = comm_->Rank();
  const int size = comm_->Size();
  auto broadcast = ToDevice(torch::full({3}, rank == 0 ? 7.f : 0.f));
  comm_->Broadcast(broadcast, 0)->Wait(comm_->DefaultTimeout());
  EXPECT_TRUE(torch::equal(ToHost(broadcast), torch::full({3}, 7.f)));

  auto gathered = ToDevice(torch::zeros({size, 2}));
  comm_->AllGather(ToDevice(torch::full({2}, static_cast<float>(rank))), gathered)
      ->Wait(comm_->DefaultTimeout());
  EXPECT_TRUE(torch::equal(ToHost(gathered),
                           torch::arange(size, torch::kFloat).unsqueeze(1).expand({size, 2})));

  auto scattered = ToDevice(torch::zeros({2}));
  comm_->ReduceScatter(ToDevice(torch::ones({2 * size})), scattered, ReduceOp::kAverage)
      ->Wait(comm_->DefaultTimeout());
  EXPECT_TRUE(torch::equal(ToHost(scattered), torch::ones({2})));
  comm_->Barrier()->Wait(comm_->DefaultTimeout());
}

TEST_F(NcclCommunicatorTest, CollectivesRunAfterTheComputeStreamsQueuedWork) {
  // A copy queued on the compute stream before the allreduce must land before it runs.
  auto tensor = ToDevice(torch::zeros({1 << 20}));
  const auto ones = torch::ones({1 << 20});
  cudaMemcpyAsync(tensor.data_ptr(), ones.data_ptr(), ones.numel() * sizeof(float),
                  cudaMemcpyHostToDevice, ComputeStream(0));
  comm_->AllReduce(tensor, ReduceOp::kSum)->Wait(comm_->DefaultTimeout());
  cudaStreamSynchronize(ComputeStream(0));
  EXPECT_TRUE(torch::equal(ToHost(tensor), torch::full({1 << 20}, 1.f * comm_->Size())));
}

TEST_F(NcclCommunicatorTest, RefusesHostTensorsNamingTheDevice) {
  try {
    comm_->AllReduce(torch::ones({2}), ReduceOp::kSum);
    FAIL() << "a CPU tensor was accepted";
  } catch (const CommError& error) {
    EXPECT_NE(std::string(error.what()).find("needs contiguous tensors on cuda:0"),
              std::string::npos)
        << error.what();
  }
}

}  // namespace
}  // namespace slim::comm

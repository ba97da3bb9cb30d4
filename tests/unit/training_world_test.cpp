// The training device choice and the routing of collectives by device. Meta tensors stand
// in for CUDA tensors: like them they are not on the CPU, and they need no GPU.
#include "runtime/comm/training_world.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "runtime/base/errors.h"
#include "runtime/comm/device_routing_communicator.h"

namespace slim::comm {
namespace {

TEST(BlockerOf, NamesTheMostBasicThingMissing) {
  EXPECT_EQ(BlockerOf({0, false, 4}), CudaBlocker::kNoDevice);
  EXPECT_EQ(BlockerOf({2, false, 4}), CudaBlocker::kNoNccl);
  EXPECT_EQ(BlockerOf({2, true, 4}), CudaBlocker::kRanksOutnumberDevices);
  EXPECT_EQ(BlockerOf({2, true, 2}), CudaBlocker::kNone);
  EXPECT_EQ(BlockerOf({8, true, 1}), CudaBlocker::kNone);
}

TEST(ChooseDevice, CpuIsTheCpuWhateverTheMachineHas) {
  EXPECT_EQ(ChooseDevice("cpu", 0, 2, CudaBlocker::kNone), torch::Device(torch::kCPU));
}

TEST(ChooseDevice, AutoTakesCudaOnlyWhenNothingBlocksIt) {
  EXPECT_EQ(ChooseDevice("auto", 0, 0, CudaBlocker::kNoDevice), torch::Device(torch::kCPU));
  EXPECT_EQ(ChooseDevice("auto", 0, 2, CudaBlocker::kNoNccl), torch::Device(torch::kCPU));
  EXPECT_EQ(ChooseDevice("auto", 0, 1, CudaBlocker::kRanksOutnumberDevices),
            torch::Device(torch::kCPU));
  EXPECT_EQ(ChooseDevice("auto", 1, 2, CudaBlocker::kNone), torch::Device(torch::kCUDA, 1));
}

TEST(ChooseDevice, CudaGivesEachNodeLocalRankItsOwnDevice) {
  EXPECT_EQ(ChooseDevice("cuda", 0, 4, CudaBlocker::kNone), torch::Device(torch::kCUDA, 0));
  EXPECT_EQ(ChooseDevice("cuda", 2, 4, CudaBlocker::kNone), torch::Device(torch::kCUDA, 2));
}

// The ConfigError message of ChooseDevice("cuda", ...) under `blocker`, or "" when it
// accepts.
std::string CudaRefusal(CudaBlocker blocker) {
  try {
    ChooseDevice("cuda", 0, 1, blocker);
  } catch (const ConfigError& error) {
    return error.what();
  }
  return "";
}

TEST(ChooseDevice, CudaIsRefusedSayingWhatIsMissingAndWhatToDo) {
  const std::string no_device = CudaRefusal(CudaBlocker::kNoDevice);
  EXPECT_NE(no_device.find("Global.device"), std::string::npos) << no_device;
  EXPECT_NE(no_device.find("no CUDA device"), std::string::npos) << no_device;
  EXPECT_NE(no_device.find("use device: cpu"), std::string::npos) << no_device;
  const std::string no_nccl = CudaRefusal(CudaBlocker::kNoNccl);
  EXPECT_NE(no_nccl.find("-DSLIM_WITH_NCCL=ON"), std::string::npos) << no_nccl;
  const std::string crowded = CudaRefusal(CudaBlocker::kRanksOutnumberDevices);
  EXPECT_NE(crowded.find("one rank per GPU"), std::string::npos) << crowded;
  EXPECT_EQ(CudaRefusal(CudaBlocker::kNone), "");
}

// A one-rank backend that records the collectives it is given, as "<name>:<call>".
class RecordingCommunicator final : public Communicator {
 public:
  RecordingCommunicator(std::string name, std::vector<std::string>* log)
      : name_(std::move(name)), log_(log) {}
  int Rank() const override { return 0; }
  int Size() const override { return 1; }
  std::chrono::milliseconds DefaultTimeout() const override { return std::chrono::seconds(1); }
  WorkPtr AllReduce(torch::Tensor, ReduceOp) override { return Record("allreduce"); }
  WorkPtr Broadcast(torch::Tensor, int) override { return Record("broadcast"); }
  WorkPtr AllGather(torch::Tensor, torch::Tensor) override { return Record("allgather"); }
  WorkPtr ReduceScatter(torch::Tensor, torch::Tensor, ReduceOp) override {
    return Record("reduce_scatter");
  }
  WorkPtr Barrier() override { return Record("barrier"); }
  std::unique_ptr<Communicator> Split(int, int) override {
    Record("split");
    return std::make_unique<RecordingCommunicator>(name_ + ".split", log_);
  }
  std::unique_ptr<Communicator> SplitNodeLocal() override {
    Record("split_node_local");
    return std::make_unique<RecordingCommunicator>(name_ + ".node", log_);
  }
  std::unique_ptr<MessagePort> OpenMessagePort() override {
    Record("message_port");
    return nullptr;
  }

 private:
  class DoneWork final : public Work {
   public:
    bool IsCompleted() override { return true; }
    void Wait(std::chrono::milliseconds) override {}
  };
  WorkPtr Record(const std::string& call) {
    log_->push_back(name_ + ":" + call);
    return std::make_shared<DoneWork>();
  }

  std::string name_;
  std::vector<std::string>* log_;
};

DeviceRoutingCommunicator Routing(std::vector<std::string>* log) {
  return DeviceRoutingCommunicator(std::make_unique<RecordingCommunicator>("host", log),
                                   std::make_unique<RecordingCommunicator>("device", log));
}

torch::Tensor OnDevice(std::vector<int64_t> sizes) {
  return torch::empty(sizes, torch::TensorOptions().device(torch::kMeta));
}

TEST(DeviceRoutingCommunicator, SendsEachCollectiveToTheBackendOfItsTensorsDevice) {
  std::vector<std::string> log;
  auto comm = Routing(&log);
  comm.AllReduce(torch::ones({2}), ReduceOp::kSum)->Wait(comm.DefaultTimeout());
  comm.AllReduce(OnDevice({2}), ReduceOp::kSum)->Wait(comm.DefaultTimeout());
  comm.Broadcast(OnDevice({2}), 0);
  comm.Broadcast(torch::ones({2}), 0);
  comm.AllGather(torch::ones({2}), torch::ones({2}));
  comm.AllGather(OnDevice({2}), OnDevice({2}));
  comm.ReduceScatter(OnDevice({2}), OnDevice({2}), ReduceOp::kSum);
  const std::vector<std::string> expected = {
      "host:allreduce", "device:allreduce", "device:broadcast",     "host:broadcast",
      "host:allgather", "device:allgather", "device:reduce_scatter"};
  EXPECT_EQ(log, expected);
}

TEST(DeviceRoutingCommunicator, RefusesAnInputAndAnOutputOnDifferentDevices) {
  std::vector<std::string> log;
  auto comm = Routing(&log);
  EXPECT_THROW(comm.AllGather(torch::ones({2}), OnDevice({2})), CommError);
  EXPECT_THROW(comm.ReduceScatter(OnDevice({2}), torch::ones({2}), ReduceOp::kSum), CommError);
  EXPECT_TRUE(log.empty());
}

TEST(DeviceRoutingCommunicator, BarriersAndSplitsSpanBothBackends) {
  std::vector<std::string> log;
  auto comm = Routing(&log);
  comm.Barrier()->Wait(comm.DefaultTimeout());
  auto group = comm.Split(0, 0);
  group->AllReduce(OnDevice({1}), ReduceOp::kMax);
  group->AllReduce(torch::ones({1}), ReduceOp::kMax);
  comm.OpenMessagePort();
  const std::vector<std::string> expected = {
      "host:barrier",           "device:barrier",       "host:split",       "device:split",
      "device.split:allreduce", "host.split:allreduce", "host:message_port"};
  EXPECT_EQ(log, expected);
}

}  // namespace
}  // namespace slim::comm

#include "runtime/checkpoint/checkpoint_file.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "runtime/checkpoint/checkpoint_directory.h"
#include "runtime/base/errors.h"
#include "tests/unit/temp_file.h"

namespace slim::checkpoint {
namespace {

// A state with every kind of content the file holds.
CheckpointState SampleState(int64_t step) {
  CheckpointState state;
  state.libtorch_version = "1.2.3";
  state.world_size = 2;
  state.created = "2026-01-01T00:00:00Z";
  state.model_reference = "builtin:test";
  state.config_yaml = "Global: {model: builtin:test}\n";
  state.strategies = {"QuantAware"};
  state.progress = {step, 2 * step, 12, 32, 2, 1, 64 * step, 0.025};
  state.trainer = {{1.5, 2.25}, 3, 0.75, 8, 11, true};
  torch::manual_seed(step);
  state.parameters = {{"conv.weight", torch::randn({4, 3, 3, 3})},
                      {"fc.bias", torch::randn({10}, torch::kFloat64)},
                      {"half", torch::randn({5}).to(torch::kFloat16)},
                      {"brain", torch::randn({2, 2}).to(torch::kBFloat16)}};
  state.buffers = {{"bn.num_batches_tracked", torch::tensor(7, torch::kInt64)},
                   {"empty", torch::empty({0, 3})},
                   {"mask", torch::tensor({true, false, true})}};
  state.optimizer_type = "Adam";
  state.optimizer_state["conv.weight"] = {{"step", torch::tensor(int64_t{5})},
                                          {"exp_avg", torch::randn({4, 3, 3, 3})}};
  state.cpu_rng_states = torch::randint(0, 255, {2, 16}, torch::kUInt8);
  state.strategy_state["QuantAware"] = {{"scale", torch::tensor({0.5f, 0.25f})},
                                        {"int8", torch::tensor({-3, 4}, torch::kInt8)},
                                        {"count", torch::tensor({1, 2}, torch::kInt32)}};
  return state;
}

void ExpectSameTensors(const TensorMap& expected, const TensorMap& actual) {
  ASSERT_EQ(expected.size(), actual.size());
  for (const auto& [name, tensor] : expected) {
    ASSERT_TRUE(actual.count(name)) << name;
    const auto& other = actual.at(name);
    EXPECT_EQ(tensor.scalar_type(), other.scalar_type()) << name;
    EXPECT_EQ(tensor.sizes(), other.sizes()) << name;
    EXPECT_TRUE(torch::equal(tensor, other)) << name;
  }
}

std::string ReadError(const std::string& path) {
  try {
    ReadCheckpointFile(path);
  } catch (const DataError& e) {
    return e.what();
  }
  return "";
}

TEST(CheckpointFileTest, RoundTripKeepsEveryValueBitForBit) {
  testing::TempDir dir;
  const auto state = SampleState(4);
  const std::string path = dir.File("ckpt-4.h5");
  EXPECT_GT(WriteCheckpointFile(path, state), 0);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  const auto read = ReadCheckpointFile(path);
  EXPECT_EQ(read.libtorch_version, "1.2.3");
  EXPECT_EQ(read.world_size, 2);
  EXPECT_EQ(read.created, state.created);
  EXPECT_EQ(read.model_reference, state.model_reference);
  EXPECT_EQ(read.config_yaml, state.config_yaml);
  EXPECT_EQ(read.strategies, state.strategies);
  EXPECT_EQ(read.progress.step, 4);
  EXPECT_EQ(read.progress.micro_batch, 8);
  EXPECT_EQ(read.progress.batches_per_epoch, 12);
  EXPECT_EQ(read.progress.global_micro_batch, 32);
  EXPECT_EQ(read.progress.accumulate_steps, 2);
  EXPECT_EQ(read.progress.epoch, 1);
  EXPECT_EQ(read.progress.samples_seen, 256);
  EXPECT_EQ(read.progress.learning_rate, 0.025);
  EXPECT_EQ(read.trainer.window_loss, state.trainer.window_loss);
  EXPECT_EQ(read.trainer.window_steps, 3);
  EXPECT_EQ(read.trainer.best_top1, 0.75);
  EXPECT_EQ(read.trainer.best_step, 8);
  EXPECT_EQ(read.trainer.metrics_lines, 11);
  EXPECT_TRUE(read.trainer.finished);
  ExpectSameTensors(state.parameters, read.parameters);
  ExpectSameTensors(state.buffers, read.buffers);
  EXPECT_EQ(read.buffers.at("bn.num_batches_tracked").dim(), 0);
  EXPECT_EQ(read.optimizer_type, "Adam");
  ExpectSameTensors(state.optimizer_state.at("conv.weight"),
                    read.optimizer_state.at("conv.weight"));
  EXPECT_TRUE(torch::equal(state.cpu_rng_states, read.cpu_rng_states));
  ExpectSameTensors(state.strategy_state.at("QuantAware"), read.strategy_state.at("QuantAware"));
}

TEST(CheckpointFileTest, TruncatedFileIsRejected) {
  testing::TempDir dir;
  const std::string path = dir.File("ckpt-1.h5");
  WriteCheckpointFile(path, SampleState(1));
  std::filesystem::resize_file(path, std::filesystem::file_size(path) / 2);
  const std::string error = ReadError(path);
  EXPECT_NE(error.find("ckpt-1.h5' is damaged, incomplete or not a checkpoint"), std::string::npos)
      << error;
}

TEST(CheckpointFileTest, FlippedByteInTensorDataFailsItsChecksum) {
  testing::TempDir dir;
  CheckpointState state = SampleState(1);
  // One large tensor, so the middle of the file is tensor data.
  state.parameters["big"] = torch::zeros({1 << 18});
  const std::string path = dir.File("ckpt-1.h5");
  WriteCheckpointFile(path, state);
  {
    std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(std::filesystem::file_size(path) / 2);
    file.put('\x5a');
  }
  const std::string error = ReadError(path);
  EXPECT_NE(error.find("damaged"), std::string::npos) << error;
}

TEST(CheckpointFileTest, ForeignFilesAreRejectedWithTheReason) {
  testing::TempDir dir;
  EXPECT_NE(ReadError(dir.File("absent.h5")).find("does not exist"), std::string::npos);
  const std::string text = dir.Write("text.h5", "not hdf5");
  EXPECT_NE(ReadError(text).find("not an HDF5 file"), std::string::npos);
}

TEST(CheckpointDirectoryTest, ListsNewestFirstAndSkipsDamagedNewest) {
  testing::TempDir dir;
  for (int64_t step : {3, 12, 9}) WriteCheckpointFile(CheckpointPath(dir.File(""), step), SampleState(step));
  const auto paths = ListCheckpoints(dir.File(""));
  ASSERT_EQ(paths.size(), 3u);
  EXPECT_NE(paths[0].find("ckpt-12.h5"), std::string::npos);
  EXPECT_NE(paths[2].find("ckpt-3.h5"), std::string::npos);

  std::filesystem::resize_file(paths[0], 100);
  const auto loaded = LoadNewestValid(dir.File(""));
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->state.progress.step, 9);
  ASSERT_EQ(loaded->skipped.size(), 1u);
  EXPECT_NE(loaded->skipped[0].find("ckpt-12.h5"), std::string::npos);
}

TEST(CheckpointDirectoryTest, NoValidCheckpointIsAnErrorListingEveryFile) {
  testing::TempDir dir;
  EXPECT_FALSE(LoadNewestValid(dir.File("missing")));
  dir.Write("ckpt-5.h5", "garbage");
  dir.Write("ckpt-6.h5", "garbage");
  try {
    LoadNewestValid(dir.File(""));
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("ckpt-5.h5"), std::string::npos) << message;
    EXPECT_NE(message.find("ckpt-6.h5"), std::string::npos) << message;
    EXPECT_NE(message.find("--resume none"), std::string::npos) << message;
  }
}

TEST(CheckpointDirectoryTest, PruneKeepsTheNewestAndRemovesTemporaries) {
  testing::TempDir dir;
  for (int64_t step : {1, 2, 3, 4}) WriteCheckpointFile(CheckpointPath(dir.File(""), step), SampleState(step));
  dir.Write("ckpt-5.h5.tmp", "partial");
  const auto deleted = PruneCheckpoints(dir.File(""), 2, CheckpointPath(dir.File(""), 4));
  EXPECT_EQ(deleted.size(), 3u);
  const auto left = ListCheckpoints(dir.File(""));
  ASSERT_EQ(left.size(), 2u);
  EXPECT_NE(left[0].find("ckpt-4.h5"), std::string::npos);
  EXPECT_NE(left[1].find("ckpt-3.h5"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dir.File("ckpt-5.h5.tmp")));
}

TEST(CheckpointDirectoryTest, MoveAsideKeepsOldCheckpoints) {
  testing::TempDir dir;
  const std::string checkpoints = dir.File("checkpoints");
  EXPECT_EQ(MoveAsideCheckpoints(checkpoints), "");
  std::filesystem::create_directories(checkpoints);
  WriteCheckpointFile(CheckpointPath(checkpoints, 1), SampleState(1));
  const std::string moved = MoveAsideCheckpoints(checkpoints);
  EXPECT_FALSE(std::filesystem::exists(checkpoints));
  EXPECT_EQ(ListCheckpoints(moved).size(), 1u);
}

}  // namespace
}  // namespace slim::checkpoint

// Checkpoint cost: how long training pauses for the in-memory snapshot, and how fast the
// HDF5 checkpoint reaches the disk compared with a plain fwrite + fsync of the same bytes.
#include <torch/script.h>
#include <torch/torch.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <unistd.h>

#include "bench/bench_common.h"
#include "runtime/checkpoint/checkpoint_file.h"
#include "runtime/checkpoint/state_capture.h"
#include "runtime/models/model_loader.h"
#include "runtime/engine/optimizer_factory.h"

namespace slim::bench {

namespace {

// A model to checkpoint: the TorchScript file, or with --synthetic-mb a module holding one
// float32 parameter of that size (a stand-in for a large model).
torch::jit::Module ModelToCheckpoint(const BenchArgs& args) {
  const int64_t synthetic_mb = args.GetInt("synthetic-mb", 0);
  if (synthetic_mb == 0) return torch::jit::load(args.Get("model", "model.pt"));
  torch::jit::Module model("__torch__.slim.bench.Synthetic");
  model.register_parameter("weight", torch::randn({synthetic_mb, 1 << 18}).requires_grad_(),
                           false);
  return model;
}

// Writes the bytes of every tensor of `state` with fwrite and fsyncs: the disk's rate for
// the same payload without HDF5.
double RawWriteSeconds(const checkpoint::CheckpointState& state, const std::string& path) {
  const auto start = Clock::now();
  FILE* file = std::fopen(path.c_str(), "wb");
  if (file == nullptr) throw std::runtime_error("cannot write " + path);
  auto write_all = [&](const checkpoint::TensorMap& tensors) {
    for (const auto& [name, tensor] : tensors) std::fwrite(tensor.data_ptr(), 1, tensor.nbytes(), file);
  };
  write_all(state.parameters);
  write_all(state.buffers);
  for (const auto& [name, tensors] : state.optimizer_state) write_all(tensors);
  std::fflush(file);
  fsync(fileno(file));
  std::fclose(file);
  return SecondsSince(start);
}

}  // namespace

int RunCheckpointBench(const BenchArgs& args) {
  torch::set_num_threads(1);
  const std::string directory = args.Get("dir", "checkpoint-bench");
  const int repeats = static_cast<int>(args.GetInt("repeats", 3));
  std::filesystem::create_directories(directory);
  auto model = ModelToCheckpoint(args);
  config::OptimizerOptions options;  // Momentum: one state tensor per parameter
  auto optimizer = engine::BuildOptimizer(options, models::TrainableParameters(model), 0.01);
  for (auto& parameter : optimizer->parameters()) parameter.mutable_grad() = torch::ones_like(parameter);
  optimizer->step();  // creates the momentum buffers

  std::vector<double> snapshot_s, write_s, raw_s;
  int64_t bytes = 0, payload = 0;
  for (int i = 0; i < repeats; ++i) {
    auto start = Clock::now();
    checkpoint::CheckpointState state;
    checkpoint::CaptureModel(model, state);
    checkpoint::CaptureOptimizer(*optimizer, options.type, model, state);
    state.cpu_rng_states = torch::zeros({1, 8}, torch::kUInt8);
    snapshot_s.push_back(SecondsSince(start));
    start = Clock::now();
    bytes = checkpoint::WriteCheckpointFile(directory + "/ckpt-bench.h5", state);
    write_s.push_back(SecondsSince(start));
    raw_s.push_back(RawWriteSeconds(state, directory + "/raw.bin"));
    payload = static_cast<int64_t>(std::filesystem::file_size(directory + "/raw.bin"));
  }
  std::filesystem::remove_all(directory);
  const double write = Median(write_s), raw = Median(raw_s);
  std::cout << nlohmann::json{{"bench", "checkpoint"},
                              {"file_bytes", bytes},
                              {"payload_bytes", payload},
                              {"snapshot_s", Median(snapshot_s)},
                              {"write_s", write},
                              {"raw_write_s", raw},
                              {"write_mb_s", bytes / 1e6 / write},
                              {"raw_mb_s", payload / 1e6 / raw}}
                   .dump()
            << "\n";
  return 0;
}

}  // namespace slim::bench

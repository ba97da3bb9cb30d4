// How much of the gradient allreduce the bucketer hides behind backward, per bucket size.
// A = forward+backward without communication, C = averaging every bucket after backward
// (nothing to hide behind), T = forward+backward with buckets launched during backward
// plus the final wait. Hidden share = (A + C - T) / C.
#include <mpi.h>
#include <torch/torch.h>

#include <iostream>
#include <sstream>

#include "bench/bench_common.h"
#include "runtime/comm/mpi_communicator.h"
#include "runtime/ddp/gradient_bucketer.h"
#include "runtime/models/model_loader.h"

namespace slim::bench {

namespace {

struct OverlapTimes {
  double compute = 0;  // A
  double comm = 0;     // C
  double overlapped = 0;  // T
  size_t buckets = 0;
};

OverlapTimes Measure(const std::string& model_path, double bucket_mb, int64_t batch, int steps,
                     comm::Communicator& comm) {
  auto model = torch::jit::load(model_path);
  model.train();
  ddp::GradientBucketer bucketer(models::TrainableParameters(model), comm, bucket_mb);
  auto inputs = torch::randn({batch, 3, 32, 32});
  auto labels = torch::randint(0, 10, {batch});
  auto backward = [&] {
    torch::nn::functional::cross_entropy(model.forward({inputs}).toTensor(), labels).backward();
  };
  std::vector<double> compute, communicate, overlapped;
  for (int step = 0; step < steps + 2; ++step) {
    MPI_Barrier(MPI_COMM_WORLD);
    bucketer.SetSyncEnabled(false);
    auto start = Clock::now();
    backward();
    const double a = SecondsSince(start);
    MPI_Barrier(MPI_COMM_WORLD);
    start = Clock::now();
    bucketer.FinishGradientSync();
    const double c = SecondsSince(start);
    bucketer.SetSyncEnabled(true);
    MPI_Barrier(MPI_COMM_WORLD);
    start = Clock::now();
    backward();
    bucketer.FinishGradientSync();
    const double t = SecondsSince(start);
    if (step >= 2) {
      compute.push_back(a);
      communicate.push_back(c);
      overlapped.push_back(t);
    }
  }
  return {Median(compute), Median(communicate), Median(overlapped), bucketer.BucketCount()};
}

}  // namespace

int RunOverlapBench(const BenchArgs& args) {
  torch::set_num_threads(static_cast<int>(args.GetInt("threads", 1)));
  comm::MpiCommunicator comm(MPI_COMM_WORLD, false, std::chrono::seconds(600));
  nlohmann::json rows = nlohmann::json::array();
  std::istringstream sizes(args.Get("bucket-mb", "0.25,1,5,25"));
  for (std::string size; std::getline(sizes, size, ',');) {
    const auto times = Measure(args.Get("model", "model.pt"), std::stod(size),
                               args.GetInt("batch", 64), args.GetInt("steps", 10), comm);
    const double hidden = (times.compute + times.comm - times.overlapped) / times.comm;
    rows.push_back({{"bucket_mb", std::stod(size)},
                    {"buckets", times.buckets},
                    {"compute_s", times.compute},
                    {"comm_s", times.comm},
                    {"overlapped_s", times.overlapped},
                    {"hidden_share", std::clamp(hidden, 0.0, 1.0)}});
  }
  if (comm.Rank() == 0) {
    std::cout << nlohmann::json{{"bench", "overlap"}, {"ranks", comm.Size()}, {"rows", rows}}.dump()
              << "\n";
  }
  return 0;
}

}  // namespace slim::bench

// Allreduce bandwidth of the communicator against plain MPI_Allreduce on the same buffers
// (the floor for the MPI backend) and against single-threaded memcpy. Bandwidths follow
// nccl-tests: algBw = bytes / time, busBw = algBw * 2(n-1)/n.
#include <mpi.h>
#include <torch/torch.h>

#include <cstring>
#include <iostream>

#include "bench/bench_common.h"
#include "runtime/comm/mpi_communicator.h"

namespace slim::bench {

namespace {

// Median seconds of `op` over enough repetitions (at least 3, about 0.3 s in total),
// agreed across ranks so every rank runs the same number of repetitions.
template <typename Op>
double TimeCollective(Op op) {
  op();  // warm-up
  const auto probe = Clock::now();
  op();
  double once = SecondsSince(probe);
  MPI_Allreduce(MPI_IN_PLACE, &once, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  const int repetitions = std::max(3, std::min(50, static_cast<int>(0.3 / once)));
  std::vector<double> times;
  for (int i = 0; i < repetitions; ++i) {
    MPI_Barrier(MPI_COMM_WORLD);
    const auto start = Clock::now();
    op();
    times.push_back(SecondsSince(start));
  }
  return Median(times);
}

double MemcpyBandwidth(int64_t bytes) {
  std::vector<char> source(bytes, 1), target(bytes);
  std::vector<double> times;
  for (int i = 0; i < 5; ++i) {
    const auto start = Clock::now();
    std::memcpy(target.data(), source.data(), bytes);
    times.push_back(SecondsSince(start));
  }
  return bytes / Median(times);
}

}  // namespace

int RunAllReduceBench(const BenchArgs& args) {
  comm::MpiCommunicator comm(MPI_COMM_WORLD, false, std::chrono::seconds(600));
  const int64_t max_bytes = args.GetInt("max-mb", 256) * 1024 * 1024;
  const double ranks = comm.Size();
  const double bus_factor = 2 * (ranks - 1) / ranks;
  nlohmann::json rows = nlohmann::json::array();
  for (int64_t bytes = 4096; bytes <= max_bytes; bytes *= 4) {
    auto tensor = torch::ones({bytes / 4});
    const double ours = TimeCollective([&] {
      comm.AllReduce(tensor, comm::ReduceOp::kSum)->Wait(comm.DefaultTimeout());
    });
    const double mpi = TimeCollective([&] {
      MPI_Allreduce(MPI_IN_PLACE, tensor.data_ptr(), tensor.numel(), MPI_FLOAT, MPI_SUM,
                    MPI_COMM_WORLD);
    });
    rows.push_back({{"bytes", bytes},
                    {"slim_s", ours},
                    {"mpi_s", mpi},
                    {"slim_alg_gbs", bytes / ours / 1e9},
                    {"slim_bus_gbs", bytes / ours / 1e9 * bus_factor},
                    {"mpi_bus_gbs", bytes / mpi / 1e9 * bus_factor}});
  }
  if (comm.Rank() == 0) {
    std::cout << nlohmann::json{{"bench", "allreduce"},
                                {"ranks", comm.Size()},
                                {"memcpy_gbs", MemcpyBandwidth(max_bytes) / 1e9},
                                {"rows", rows}}
                     .dump()
              << "\n";
  }
  return 0;
}

}  // namespace slim::bench

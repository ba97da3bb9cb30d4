// slim-bench: the measurements behind bench/run_bench.py (see docs/performance.md).
//   slim-bench floor --model M.pt --batch B --steps N      bare LibTorch training loop
//   mpirun -np N slim-bench allreduce --max-mb 256          communicator vs MPI_Allreduce
//   mpirun -np N slim-bench overlap --model M.pt --batch B  allreduce hidden behind backward
//   slim-bench loader --data D.h5 --batch B                 HDF5 loader throughput
//   slim-bench checkpoint --model M.pt | --synthetic-mb N    snapshot stall, write vs raw disk
#include <iostream>
#include <stdexcept>

#include "bench/bench_common.h"
#include "runtime/comm/mpi_session.h"

namespace slim::bench {

BenchArgs::BenchArgs(int argc, char** argv, int first) {
  for (int i = first; i + 1 < argc; i += 2) values_.emplace_back(argv[i], argv[i + 1]);
}

std::string BenchArgs::Get(const std::string& key, const std::string& fallback) const {
  for (const auto& [name, value] : values_) {
    if (name == "--" + key) return value;
  }
  return fallback;
}

int64_t BenchArgs::GetInt(const std::string& key, int64_t fallback) const {
  return std::stoll(Get(key, std::to_string(fallback)));
}

double BenchArgs::GetDouble(const std::string& key, double fallback) const {
  return std::stod(Get(key, std::to_string(fallback)));
}

}  // namespace slim::bench

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: slim-bench floor|allreduce|overlap|loader|checkpoint [--key value]...\n";
    return 2;
  }
  const std::string what = argv[1];
  slim::comm::MpiSession session(&argc, &argv);
  const slim::bench::BenchArgs args(argc, argv, 2);
  try {
    if (what == "floor") return slim::bench::RunFloorBench(args);
    if (what == "allreduce") return slim::bench::RunAllReduceBench(args);
    if (what == "overlap") return slim::bench::RunOverlapBench(args);
    if (what == "loader") return slim::bench::RunLoaderBench(args);
    if (what == "checkpoint") return slim::bench::RunCheckpointBench(args);
  } catch (const std::exception& e) {
    std::cerr << "slim-bench " << what << ": " << e.what() << "\n";
    return 3;
  }
  std::cerr << "unknown measurement '" << what << "'\n";
  return 2;
}

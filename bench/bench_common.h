// Shared pieces of the slim-bench measurements: timing, statistics and JSON output.
// Each measurement prints one JSON object on stdout (rank 0) for bench/run_bench.py.
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

namespace slim::bench {

using Clock = std::chrono::steady_clock;

inline double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Median of `values` (copied). REQUIRES: non-empty.
inline double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t middle = values.size() / 2;
  return values.size() % 2 ? values[middle] : (values[middle - 1] + values[middle]) / 2;
}

// Command-line options of one measurement: "--key value" pairs.
class BenchArgs {
 public:
  BenchArgs(int argc, char** argv, int first);
  std::string Get(const std::string& key, const std::string& fallback) const;
  int64_t GetInt(const std::string& key, int64_t fallback) const;
  double GetDouble(const std::string& key, double fallback) const;

 private:
  std::vector<std::pair<std::string, std::string>> values_;
};

// The measurements; each returns the process exit code.
int RunFloorBench(const BenchArgs& args);
int RunAllReduceBench(const BenchArgs& args);
int RunOverlapBench(const BenchArgs& args);
int RunLoaderBench(const BenchArgs& args);
int RunCheckpointBench(const BenchArgs& args);

}  // namespace slim::bench

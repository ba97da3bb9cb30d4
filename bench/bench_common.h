// Shared pieces of the slim-bench measurements: timing, statistics and JSON output.
// Each measurement prints one JSON object on stdout (rank 0) for bench/run_bench.py.
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
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

// The options of one measurement. bench_main.cpp declares every option of every
// measurement, with its type, range and default, in one place; CLI11 checks the command
// line against those declarations, and this class hands the checked values over.
class BenchArgs {
 public:
  // One declared option: its value on the command line, else its declared default.
  struct Option {
    std::string value;
    std::string declared_default;
  };

  explicit BenchArgs(std::map<std::string, Option> options);

  // The value of --key. `fallback` repeats the default declared in bench_main.cpp for the
  // reader of the measurement; it is not used otherwise.
  // Throws std::logic_error when --key is not declared for this measurement or when
  // `fallback` differs from the declared default, so the two cannot drift apart silently.
  std::string Get(const std::string& key, const std::string& fallback) const;
  // Get for an option declared as a whole number (so the value converts).
  int64_t GetInt(const std::string& key, int64_t fallback) const;

 private:
  std::map<std::string, Option> options_;
};

// The measurements; each returns the process exit code.
int RunFloorBench(const BenchArgs& args);
int RunAllReduceBench(const BenchArgs& args);
int RunOverlapBench(const BenchArgs& args);
int RunLoaderBench(const BenchArgs& args);
int RunCheckpointBench(const BenchArgs& args);
int RunSamplerBench(const BenchArgs& args);

}  // namespace slim::bench

// slim-bench: the measurements behind bench/run_bench.py (see docs/performance.md).
//   slim-bench floor --model M.pt --batch B --steps N      bare LibTorch training loop
//   mpirun -np N slim-bench allreduce --max-mb 256          communicator vs MPI_Allreduce
//   mpirun -np N slim-bench overlap --model M.pt --batch B  allreduce hidden behind backward
//   slim-bench loader --data D.h5 --batch B                 HDF5 loader throughput
//   slim-bench checkpoint --model M.pt | --synthetic-mb N    snapshot stall, write vs raw disk
//   slim-bench sampler --space S.json --table T.jsonl       samplers replayed on measured trials
// Every option of every measurement is declared in DeclareMeasurements below; `slim-bench
// MEASUREMENT --help` lists them with their defaults. Exit codes: 0 success, 2 bad usage,
// 3 the measurement failed.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <list>
#include <sstream>
#include <stdexcept>

#include "bench/bench_common.h"
#include "runtime/base/errors.h"
#include "runtime/comm/mpi_session.h"
#include "tools/parse_or_exit.h"

namespace slim::bench {

BenchArgs::BenchArgs(std::map<std::string, Option> options) : options_(std::move(options)) {}

std::string BenchArgs::Get(const std::string& key, const std::string& fallback) const {
  const auto found = options_.find(key);
  if (found == options_.end()) {
    throw std::logic_error("--" + key + " is read but not declared in bench_main.cpp");
  }
  if (fallback != found->second.declared_default) {
    throw std::logic_error("the default of --" + key + " is '" + found->second.declared_default +
                           "' in bench_main.cpp but '" + fallback + "' where it is read");
  }
  return found->second.value;
}

int64_t BenchArgs::GetInt(const std::string& key, int64_t fallback) const {
  // Base 0, as CLI11 reads whole numbers when it checks them.
  return std::stoll(Get(key, std::to_string(fallback)), nullptr, 0);
}

namespace {

// The largest whole-number option value: every count and size in MB fits it with room.
constexpr int64_t kMaxNumber = INT32_MAX;

// Accepts comma-separated positive numbers such as "0.25,1,5,25", split as the
// measurement splits them.
std::string CheckPositiveList(std::string& text) {
  std::istringstream parts(text);
  int count = 0;
  for (std::string part; std::getline(parts, part, ','); ++count) {
    char* parsed_end = nullptr;
    const double value = std::strtod(part.c_str(), &parsed_end);
    if (part.empty() || *parsed_end != '\0' || !(value > 0)) {
      return "'" + part + "' in '" + text + "' is not a positive number";
    }
  }
  return count > 0 ? "" : "needs at least one number";
}

// One measurement: its subcommand, the function that runs it, and its declared options,
// which CLI11 fills in. Not copyable: CLI11 keeps references into `options_`.
class Measurement {
 public:
  Measurement(CLI::App& app, const std::string& name, const std::string& description,
              int (*run)(const BenchArgs&))
      : command_(app.add_subcommand(name, description)), run_(run) {}
  Measurement(const Measurement&) = delete;
  Measurement& operator=(const Measurement&) = delete;

  // Each Declare-like method declares --key with its default `fallback` (shown by --help)
  // and returns *this, so that a measurement's options read as one list.
  // Declares --key: a whole number in [minimum, kMaxNumber].
  Measurement& Number(const std::string& key, int64_t fallback, int64_t minimum,
                      const std::string& description) {
    Declare(key, std::to_string(fallback), "N", description)
        ->check(CLI::Range(minimum, kMaxNumber));
    return *this;
  }
  // Declares --key: a file or folder path.
  Measurement& Path(const std::string& key, const std::string& fallback,
                    const std::string& description) {
    Declare(key, fallback, "PATH", description);
    return *this;
  }
  // Declares --key: comma-separated positive numbers.
  Measurement& PositiveList(const std::string& key, const std::string& fallback,
                            const std::string& description) {
    Declare(key, fallback, "X,Y,...", description)->check(CLI::Validator(CheckPositiveList, ""));
    return *this;
  }

  // True when the command line chose this measurement. REQUIRES: the app was parsed.
  bool Chosen() const { return command_->parsed(); }
  const std::string& Name() const { return command_->get_name(); }
  // Runs the measurement with the parsed options; returns its exit code.
  int Run() const { return run_(BenchArgs(options_)); }

 private:
  CLI::Option* Declare(const std::string& key, const std::string& fallback,
                       const std::string& type_name, const std::string& description) {
    BenchArgs::Option& option = options_[key];
    option.value = option.declared_default = fallback;
    return command_->add_option("--" + key, option.value, description)
        ->type_name(type_name)
        ->capture_default_str();
  }

  CLI::App* command_;
  int (*run_)(const BenchArgs&);
  std::map<std::string, BenchArgs::Option> options_;
};

// Declares every measurement on `app`, with each option's type, range and default.
void DeclareMeasurements(CLI::App& app, std::list<Measurement>& measurements) {
  measurements.emplace_back(app, "floor", "bare LibTorch training loop, one process",
                            RunFloorBench);
  measurements.back()
      .Path("model", "model.pt", "TorchScript model taking 3x32x32 inputs")
      .Number("batch", 64, 1, "samples per step")
      .Number("steps", 30, 1, "timed steps")
      .Number("warmup", 5, 0, "untimed steps before them")
      .Number("classes", 10, 1, "label range of the random labels")
      .Number("threads", 1, 1, "LibTorch intra-op threads");
  measurements.emplace_back(app, "allreduce", "communicator allreduce vs MPI_Allreduce (mpirun)",
                            RunAllReduceBench);
  measurements.back().Number("max-mb", 256, 1, "largest message in MB (from 4 KB, x4 per row)");
  measurements.emplace_back(app, "overlap", "allreduce hidden behind backward (mpirun)",
                            RunOverlapBench);
  measurements.back()
      .Path("model", "model.pt", "TorchScript model taking 3x32x32 inputs")
      .Number("batch", 64, 1, "samples per step")
      .Number("steps", 10, 1, "timed steps per bucket size")
      .Number("threads", 1, 1, "LibTorch intra-op threads")
      .PositiveList("bucket-mb", "0.25,1,5,25", "gradient bucket caps in MB, one row each");
  measurements.emplace_back(app, "loader", "HDF5 batch loader throughput with augmentation",
                            RunLoaderBench);
  measurements.back()
      .Path("data", "train.h5", "dataset file (docs/data-format.md)")
      .Number("batch", 64, 1, "samples per batch")
      .Number("threads", 2, 1, "loader threads");
  measurements.emplace_back(app, "checkpoint", "snapshot stall and checkpoint write vs raw disk",
                            RunCheckpointBench);
  measurements.back()
      .Path("model", "model.pt", "TorchScript model to checkpoint")
      .Number("synthetic-mb", 0, 0, "instead of --model, one float32 parameter of N MB")
      .Path("dir", "checkpoint-bench", "scratch folder, removed afterwards")
      .Number("repeats", 3, 1, "checkpoints written; the medians are reported");
  measurements.emplace_back(app, "sampler", "search samplers over many seeds on measured trials",
                            RunSamplerBench);
  measurements.back()
      .Path("space", "space.json", "the search space, as bench/fmnist_quant_search.py writes it")
      .Path("table", "trials.jsonl",
            "measured trials (trials.jsonl records) to look objectives up in")
      .PositiveList("budgets", "10,20", "trials per search, one result per budget")
      .Number("seeds", 100, 1, "searches per sampler and budget, seeds 1 to N");
}

}  // namespace
}  // namespace slim::bench

int main(int argc, char** argv) {
  CLI::App app("The measurements behind bench/run_bench.py (docs/performance.md).", "slim-bench");
  app.require_subcommand(1);
  app.footer(
      "slim-bench MEASUREMENT --help lists its options.\n"
      "exit codes: 0 success, 2 bad usage, 3 the measurement failed");
  std::list<slim::bench::Measurement> measurements;  // stable addresses for CLI11
  slim::bench::DeclareMeasurements(app, measurements);
  if (const auto code = slim::tools::ParseOrExit(app, argc, argv)) return *code;
  // require_subcommand(1): exactly one measurement was chosen.
  const auto& chosen = *std::find_if(measurements.begin(), measurements.end(),
                                     [](const auto& measurement) { return measurement.Chosen(); });
  slim::comm::MpiSession session(&argc, &argv);
  try {
    return chosen.Run();
  } catch (const std::exception& e) {
    std::cerr << "slim-bench " << chosen.Name() << ": " << e.what() << "\n";
    return static_cast<int>(slim::ExitCode::kDataOrModel);
  }
}

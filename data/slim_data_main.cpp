// slim-data: writes SlimTrain datasets (docs/data-format.md) as DIR/train.h5 and
// DIR/eval.h5, either procedural images or byte windows of text files.
// Exit codes: 0 success, 2 bad usage, 3 data error (see runtime/errors.h).

#include <charconv>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "data/byte_dataset.h"
#include "data/channel_stats.h"
#include "data/hdf5_dataset_writer.h"
#include "data/seeded_random.h"
#include "data/synthetic_images.h"
#include "data/text_corpus.h"
#include "runtime/errors.h"

namespace slim::data {
namespace {

constexpr char kUsage[] =
    "Usage:\n"
    "  slim-data images --out DIR [--train N] [--eval N] [--seed S]\n"
    "      Procedural 10-class 32x32 RGB images (uint8 CHW).\n"
    "      --train N   train images (default 10000)\n"
    "      --eval N    eval images (default 2000), drawn from a seed derived from S\n"
    "      --seed S    seed (default 1); the same seed gives the same files\n"
    "  slim-data text --out DIR [--seq-len L] [--train-per-class N] [--eval-per-class N]\n"
    "                 [--seed S] PATH...\n"
    "      Byte windows of L bytes from text; one class per PATH (a file, or a folder whose\n"
    "      files are concatenated), named after its base name. Train windows come from the\n"
    "      first 90% of each text, eval windows from the rest.\n"
    "      --seq-len L           window length in bytes (default 128)\n"
    "      --train-per-class N   train windows per class (default 2000)\n"
    "      --eval-per-class N    eval windows per class (default 200)\n"
    "      --seed S              seed (default 1)\n"
    "  slim-data --help\n"
    "Writes DIR/train.h5 and DIR/eval.h5 (creating DIR). Exit codes: 0 ok, 2 bad usage,\n"
    "3 data error.\n";

// A parsed command line: the command, its --key value options and its positional args.
struct CommandLine {
  std::string command;
  std::map<std::string, std::string> options;
  std::vector<std::string> positional;
  bool help = false;
};

// Parses argv. Options take "--key value" or "--key=value"; keys are checked against
// those of the command. Throws ConfigError on misuse.
CommandLine ParseCommandLine(int argc, char** argv) {
  static const std::map<std::string, std::set<std::string>> kKeys = {
      {"images", {"out", "train", "eval", "seed"}},
      {"text", {"out", "seq-len", "train-per-class", "eval-per-class", "seed"}}};
  CommandLine line;
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) throw ConfigError("no command given");
  if (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    line.help = true;
    return line;
  }
  line.command = args[0];
  const auto keys = kKeys.find(line.command);
  if (keys == kKeys.end()) throw ConfigError("unknown command '" + line.command + "'");
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") {
      line.help = true;
      return line;
    }
    if (arg.rfind("--", 0) != 0) {
      line.positional.push_back(arg);
      continue;
    }
    const size_t equals = arg.find('=');
    const std::string key = arg.substr(2, equals == std::string::npos ? equals : equals - 2);
    if (keys->second.count(key) == 0) {
      throw ConfigError("unknown option --" + key + " for '" + line.command + "'");
    }
    if (equals != std::string::npos) {
      line.options[key] = arg.substr(equals + 1);
    } else if (i + 1 < args.size()) {
      line.options[key] = args[++i];
    } else {
      throw ConfigError("option --" + key + " needs a value");
    }
  }
  return line;
}

// The unsigned integer value of option `key`, or `fallback` when absent. Throws
// ConfigError unless the value is a whole number in [minimum, UINT64_MAX].
uint64_t UnsignedOption(const CommandLine& line, const std::string& key, uint64_t fallback,
                        uint64_t minimum) {
  const auto found = line.options.find(key);
  if (found == line.options.end()) return fallback;
  const std::string& text = found->second;
  uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value < minimum) {
    throw ConfigError("--" + key + " needs a whole number >= " + std::to_string(minimum) +
                      ", got '" + text + "'");
  }
  return value;
}

// A positive count option that fits int64.
int64_t CountOption(const CommandLine& line, const std::string& key, int64_t fallback) {
  const uint64_t value = UnsignedOption(line, key, static_cast<uint64_t>(fallback), 1);
  if (value > static_cast<uint64_t>(INT32_MAX)) {
    throw ConfigError("--" + key + " is too large: " + std::to_string(value));
  }
  return static_cast<int64_t>(value);
}

// The --out folder, created if missing. Throws ConfigError if not given, DataError if it
// cannot be created.
std::filesystem::path OutputFolder(const CommandLine& line) {
  const auto found = line.options.find("out");
  if (found == line.options.end()) throw ConfigError("--out DIR is required");
  std::error_code error;
  std::filesystem::create_directories(found->second, error);
  if (error) {
    throw DataError("cannot create output folder '" + found->second + "': " + error.message());
  }
  return found->second;
}

// Writes `split` to folder/name and prints its one-line summary.
void WriteAndReport(const std::filesystem::path& folder, const std::string& name,
                    const ByteDataset& split, const std::optional<ChannelStats>& stats) {
  const std::string path = (folder / name).string();
  WriteDatasetFile(path, split, stats);
  std::ostringstream shape;
  shape << split.size();
  for (int64_t dim : split.sample_shape) shape << "x" << dim;
  std::ostringstream classes;
  for (size_t k = 0; k < split.class_names.size(); ++k) {
    classes << (k ? "," : "") << split.class_names[k];
  }
  std::cout << "wrote " << path << ": kind=" << SampleKindName(split.kind) << " N=" << split.size()
            << " inputs=uint8[" << shape.str() << "] classes=" << split.class_names.size() << " ("
            << classes.str() << ")\n";
}

// Seconds since `start`.
double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void RunImages(const CommandLine& line) {
  if (!line.positional.empty()) {
    throw ConfigError("'images' takes no paths, got '" + line.positional[0] + "'");
  }
  const int64_t train_count = CountOption(line, "train", 10000);
  const int64_t eval_count = CountOption(line, "eval", 2000);
  const uint64_t seed = UnsignedOption(line, "seed", 1, 0);
  const std::filesystem::path folder = OutputFolder(line);

  const auto start = std::chrono::steady_clock::now();
  const ByteDataset train = GenerateImages(train_count, DeriveSeed(seed, 0));
  const ByteDataset eval = GenerateImages(eval_count, DeriveSeed(seed, 1));
  const double seconds = SecondsSince(start);
  std::cout << "generated " << train_count + eval_count << " images in " << seconds << " s ("
            << static_cast<int64_t>((train_count + eval_count) / seconds) << " images/s)\n";
  // Both splits are normalised with the train statistics.
  const ChannelStats stats = ComputeChannelStats(train);
  WriteAndReport(folder, "train.h5", train, stats);
  WriteAndReport(folder, "eval.h5", eval, stats);
}

void RunText(const CommandLine& line) {
  if (line.positional.empty()) throw ConfigError("'text' needs at least 2 PATHs, one per class");
  TextCorpusOptions options;
  options.seq_len = CountOption(line, "seq-len", options.seq_len);
  options.train_per_class = CountOption(line, "train-per-class", options.train_per_class);
  options.eval_per_class = CountOption(line, "eval-per-class", options.eval_per_class);
  options.seed = UnsignedOption(line, "seed", options.seed, 0);
  const std::filesystem::path folder = OutputFolder(line);

  const TextSplits splits = BuildTextCorpus(line.positional, options);
  WriteAndReport(folder, "train.h5", splits.train, std::nullopt);
  WriteAndReport(folder, "eval.h5", splits.eval, std::nullopt);
}

int Run(int argc, char** argv) {
  try {
    const CommandLine line = ParseCommandLine(argc, argv);
    if (line.help) {
      std::cout << kUsage;
    } else if (line.command == "images") {
      RunImages(line);
    } else {
      RunText(line);
    }
    return static_cast<int>(ExitCode::kSuccess);
  } catch (const ConfigError& error) {
    std::cerr << "slim-data: " << error.what() << "\n\n" << kUsage;
    return static_cast<int>(error.exit_code());
  } catch (const SlimError& error) {
    std::cerr << "slim-data: " << error.what() << "\n";
    return static_cast<int>(error.exit_code());
  }
}

}  // namespace
}  // namespace slim::data

int main(int argc, char** argv) { return slim::data::Run(argc, argv); }
